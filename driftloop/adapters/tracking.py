"""The one place that talks to MLflow: tracking runs and the model registry.

The embedded default is a SQLite store (``mlflow.db``) and an artifact folder
(``mlruns/``) at the project root; ``tracking.uri`` points at a shared
``mlflow server`` instead.

Experiments that `dvc exp run --queue` runs in temporary copies of the project
track into the project's own embedded store: DVC names the project in
``DVC_ROOT``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from driftloop.config.schema import TrackingConfig

log = logging.getLogger(__name__)
CHAMPION = "champion"
HOLDOUT_TAG = "driftloop.holdout."


def store_root(root: Path) -> Path:
    """Where the embedded store lives: the project, also for a queued experiment
    running in a temporary copy (DVC sets DVC_ROOT to the project there)."""
    project = os.environ.get("DVC_ROOT")
    return Path(project).resolve() if project else root.resolve()


def tracking_uri(cfg: TrackingConfig, root: Path) -> str:
    return cfg.uri or f"sqlite:///{store_root(root) / 'mlflow.db'}"


def configure(cfg: TrackingConfig, root: Path) -> None:
    """Point MLflow at the store and make sure the experiment exists."""
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # the pickle-format warning is about loading untrusted files; these are our own
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri(cfg, root))
    if mlflow.get_experiment_by_name(cfg.experiment) is None:
        location = None if cfg.uri else (store_root(root) / "mlruns").as_uri()
        try:
            mlflow.create_experiment(cfg.experiment, artifact_location=location)
        except MlflowException:
            # another client (a parallel training) created it in between
            if mlflow.get_experiment_by_name(cfg.experiment) is None:
                raise
    mlflow.set_experiment(cfg.experiment)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config as dotted keys with short string values (MLflow params)."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]
    return flat


@contextmanager
def run(name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """An MLflow run; yields its id."""
    import mlflow

    with mlflow.start_run(run_name=name, tags=dict(tags)) as active:
        yield active.info.run_id


def log_params(params: Mapping[str, str]) -> None:
    import mlflow

    items = list(params.items())
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start : start + 100]))


def log_metrics(metrics: Mapping[str, float]) -> None:
    import mlflow

    mlflow.log_metrics({key: float(value) for key, value in metrics.items()})


def log_sklearn_model(model: Any, example: Any) -> str:
    """Log the fitted model with its signature and an input example; return its URI."""
    import mlflow
    from mlflow.models import infer_signature

    signature = None
    if example is not None:
        predict = model.predict_proba if hasattr(model, "predict_proba") else model.predict
        signature = infer_signature(example, predict(example))
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        serialization_format="pickle",
        pip_requirements=pinned_requirements(),
    )
    return str(info.model_uri)


def pinned_requirements() -> list[str]:
    """What the model needs, from the installed versions. Given explicitly because
    MLflow's own inference imports the model in a subprocess: seconds a run."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "numpy", "pandas", "scipy")]


def log_artifact(path: Path) -> None:
    import mlflow

    mlflow.log_artifact(str(path))


# --- the model registry ---------------------------------------------------------------


def register(model_uri: str, name: str, tags: Mapping[str, str]) -> str:
    """Register a logged model as a new version of ``name``; return the version."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags=dict(tags))
    return str(version.version)


def set_alias(name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    """Remove an alias (nothing when it is not set)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with suppress(MlflowException):
        MlflowClient().delete_registered_model_alias(name, alias)


def tag_version(name: str, version: str, tags: Mapping[str, str]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def alias_version(name: str, alias: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def rename_model(old: str, new: str) -> bool:
    """Rename registered model ``old`` to ``new`` when ``old`` exists and ``new``
    does not (its versions, tags and aliases go with it); whether it did."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.get_registered_model(new)
        return False
    except MlflowException:
        pass
    try:
        client.rename_registered_model(old, new)
    except MlflowException:
        return False  # no model under the old name
    return True


def version_tags(name: str, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return dict(MlflowClient().get_model_version(name, version).tags)


def version_info(name: str, version: str) -> dict[str, Any]:
    """What the service reports about a registered version: run, times, metrics."""
    from mlflow import MlflowClient

    found = MlflowClient().get_model_version(name, version)
    tags = dict(found.tags)
    metrics = {
        key.removeprefix(HOLDOUT_TAG): float(value)
        for key, value in tags.items()
        if key.startswith(HOLDOUT_TAG)
    }
    return {
        "version": str(found.version),
        "run_id": found.run_id,
        "trained_at": tags.get("driftloop.trained_at"),
        "promoted_at": tags.get("driftloop.promoted_at"),
        "holdout_metrics": metrics or None,
    }


def log_model_file(model: Any, example: Any, run_name: str, tags: Mapping[str, str]) -> str:
    """Log an already fitted model in a run of its own; return its URI."""
    with run(run_name, tags):
        return log_sklearn_model(model, example)


def download_model(name: str, version: str) -> Any:
    import mlflow

    return mlflow.sklearn.load_model(f"models:/{name}/{version}")
