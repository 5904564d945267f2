"""The typed config: the schema of conf/, its composition into params.yaml, its checks."""
