"""Benchmarks of driftloop's stages (run as ``python -m benchmarks.<name>``)."""
