"""The feature language of conf/features: parsed once, evaluated in-process here and
compiled to Spark columns by driftloop.adapters.spark."""
