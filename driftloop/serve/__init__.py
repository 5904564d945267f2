"""The inference service: a FastAPI app over the champion model."""
