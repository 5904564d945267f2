"""Composition of conf/ into params.yaml, the typed schema and staleness."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from driftloop.config.compose import check_fresh, compose, conf_digest, load
from driftloop.config.schema import DriftloopConfig, Problem
from driftloop.errors import ConfigError
from tests.conftest import ROOT


@pytest.fixture()
def conf_copy(tmp_path: Path) -> Path:
    """A project root holding a copy of conf/ only."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    return tmp_path


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / "conf" / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1))


def test_committed_params_equal_composition_of_conf(tmp_path: Path) -> None:
    composed = tmp_path / "params.yaml"
    compose(ROOT, composed)
    assert composed.read_text() == (ROOT / "params.yaml").read_text(), (
        "params.yaml is stale: run `driftloop compose` and commit it"
    )


def test_composition_is_typed(conf_copy: Path) -> None:
    config = compose(conf_copy, conf_copy / "params.yaml")
    assert isinstance(config, DriftloopConfig)
    assert config.data.problem is Problem.binary
    assert config.model.estimator["_target_"].startswith("sklearn.")
    assert config.model.estimator["random_state"] == config.train.seed


def test_override_selects_another_option(conf_copy: Path) -> None:
    config = compose(conf_copy, conf_copy / "params.yaml", ["model=logreg", "train.seed=7"])
    assert config.model.name == "logreg"
    assert config.train.seed == 7


def test_unknown_key_names_file_and_key(conf_copy: Path) -> None:
    edit(conf_copy, "spark/local.yaml", "app_name:", "app_nam:")
    with pytest.raises(ConfigError, match=r"conf/spark/local\.yaml.*app_nam"):
        compose(conf_copy, conf_copy / "params.yaml")
    assert not (conf_copy / "params.yaml").exists(), "a failed compose must not write params.yaml"


def test_wrong_type_names_file_and_key(conf_copy: Path) -> None:
    edit(conf_copy, "train/default.yaml", "seed: 0", "seed: zero")
    with pytest.raises(ConfigError, match=r"conf/train/default\.yaml.*train\.seed"):
        compose(conf_copy, conf_copy / "params.yaml")


def test_unknown_group_option(conf_copy: Path) -> None:
    with pytest.raises(ConfigError, match=r"model.*nosuchmodel"):
        compose(conf_copy, conf_copy / "params.yaml", ["model=nosuchmodel"])


def test_missing_group(conf_copy: Path) -> None:
    edit(conf_copy, "config.yaml", "  - spark: local\n", "")
    with pytest.raises(ConfigError, match=r"group 'spark'"):
        compose(conf_copy, conf_copy / "params.yaml")


def test_feature_with_unknown_column_names_file(conf_copy: Path) -> None:
    edit(conf_copy, "features/car_loan.yaml", "log1p(car_value)", "log1p(car_valu)")
    with pytest.raises(
        ConfigError, match=r"conf/features/car_loan\.yaml.*unknown column 'car_valu'"
    ):
        compose(conf_copy, conf_copy / "params.yaml")


def test_feature_with_unknown_function(conf_copy: Path) -> None:
    edit(conf_copy, "features/car_loan.yaml", "log1p(car_value)", "logg(car_value)")
    with pytest.raises(ConfigError, match=r"unknown function 'logg'"):
        compose(conf_copy, conf_copy / "params.yaml")


def test_drift_bands_must_cover_without_gaps(conf_copy: Path) -> None:
    edit(
        conf_copy, "monitor/default.yaml", "{action: retrain, min: 5,", "{action: retrain, min: 6,"
    )
    with pytest.raises(ConfigError, match=r"conf/monitor/default\.yaml.*bands\[2\].*gaps"):
        compose(conf_copy, conf_copy / "params.yaml")


def test_model_that_does_not_fit_the_problem(conf_copy: Path) -> None:
    edit(conf_copy, "data/car_loan.yaml", "problem: binary", "problem: regression")
    with pytest.raises(ConfigError, match=r"conf/model/hgb\.yaml.*regression"):
        compose(conf_copy, conf_copy / "params.yaml")


def test_target_labels_need_a_binary_int_target(conf_copy: Path) -> None:
    labels = 'target: repaid\n  labels: ["no", "no"]'
    edit(conf_copy, "data/car_loan.yaml", "target: repaid", labels)
    with pytest.raises(ConfigError, match=r"conf/data/car_loan\.yaml.*data\.columns\.labels"):
        compose(conf_copy, conf_copy / "params.yaml")


def test_stale_params_are_detected(conf_copy: Path) -> None:
    params = conf_copy / "params.yaml"
    config = compose(conf_copy, params)
    check_fresh(config, conf_copy)
    edit(conf_copy, "model/hgb.yaml", "max_iter: 300", "max_iter: 301")
    with pytest.raises(ConfigError, match=r"run `driftloop compose`"):
        check_fresh(load(params), conf_copy)


def test_digest_covers_every_conf_file(conf_copy: Path) -> None:
    before = conf_digest(conf_copy / "conf")
    (conf_copy / "conf" / "model" / "extra.yaml").write_text("name: extra\n")
    assert conf_digest(conf_copy / "conf") != before


def test_hand_edited_params_with_bad_type_fail_on_load(tmp_path: Path) -> None:
    text = (
        (ROOT / "params.yaml")
        .read_text()
        .replace("holdout_fraction: 0.2", "holdout_fraction: lots")
    )
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"params\.yaml.*features\.split\.holdout_fraction"):
        load(tmp_path / "params.yaml")


def test_tracking_server_option_and_a_bad_uri(tmp_path: Path) -> None:
    uri = "http://mlflow.internal:5000"
    chosen = compose(ROOT, tmp_path / "params.yaml", ["tracking=server", f"tracking.uri={uri}"])
    assert chosen.tracking.uri == uri
    assert compose(ROOT, tmp_path / "params.yaml", []).tracking.uri is None  # embedded default
    with pytest.raises(ConfigError, match=r"^conf/tracking/server\.yaml: tracking\.uri: 'mlflow"):
        compose(ROOT, tmp_path / "params.yaml", ["tracking=server", "tracking.uri=mlflow:5000"])
