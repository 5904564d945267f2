"""One module per outside library (Spark, MLflow, Great Expectations, NannyML,
parquet): the only modules that import their APIs."""
