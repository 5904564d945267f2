"""Where the embedded MLflow store is, also from a queued experiment's temporary copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.adapters.tracking import tracking_uri
from driftloop.config.schema import TrackingConfig


def test_embedded_store_is_the_projects_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking_uri(TrackingConfig(), tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_a_queued_experiment_tracks_into_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, workspace = tmp_path / "project", tmp_path / "project/.dvc/tmp/exps/tmp1"
    monkeypatch.setenv("DVC_ROOT", str(project))  # what DVC sets for queued experiments
    assert tracking_uri(TrackingConfig(), workspace) == f"sqlite:///{project}/mlflow.db"


def test_a_server_uri_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    server = TrackingConfig(uri="http://127.0.0.1:5000")
    assert tracking_uri(server, tmp_path / "elsewhere") == "http://127.0.0.1:5000"
