"""The DVC stages: one thin module per stage of dvc.yaml."""
