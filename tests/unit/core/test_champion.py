"""One champion per data set: the folder layout, the adoption of an older
project's single champion, and the lock that keeps a champion of another data
set or problem type out of a comparison."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from driftloop.config.schema import DriftloopConfig
from driftloop.core import evaluation
from driftloop.core.champion import MODELS, adopt_legacy, current_version, models_folder
from driftloop.core.evaluation import comparable_champion
from driftloop.core.model import columns
from driftloop.core.plan import featurize_pandas, plan
from driftloop.core.promotion import point_champion
from tests.unit.serve.conftest import store


def legacy_project(root: Path, model: object, data: str = "car_loan") -> Path:
    """data/models as a single-champion project left it: versions/, champion, promoted.json."""
    models = root / MODELS
    store(models, "3", model)
    card = models / "versions/3/card.json"
    card.write_text(json.dumps({**json.loads(card.read_text()), "data": data}))
    point_champion(models, "3")
    (models / "promoted.json").write_text('{"model_md5": "x"}')
    return models


def test_each_data_set_has_its_own_folder(tmp_path: Path) -> None:
    assert models_folder(tmp_path, "housing") == tmp_path / "data/models/housing"
    assert models_folder(tmp_path, "housing") != models_folder(tmp_path, "car_loan")


def test_the_single_champion_is_adopted_by_its_data_set(
    tmp_path: Path, trained: dict[str, object]
) -> None:
    legacy = legacy_project(tmp_path, trained["1"])
    assert adopt_legacy(models_folder(tmp_path, "housing")) is None  # not its champion
    mine = models_folder(tmp_path, "car_loan")
    assert adopt_legacy(mine) == "3"
    assert os.readlink(mine / "champion") == "versions/3"
    assert current_version(mine) == "3" and (mine / "champion/model.pkl").is_file()
    assert (mine / "promoted.json").is_file()
    assert not any((legacy / name).exists() for name in ("champion", "versions", "promoted.json"))
    assert adopt_legacy(mine) is None  # once


def test_a_folder_with_a_champion_of_its_own_adopts_nothing(
    tmp_path: Path, trained: dict[str, object]
) -> None:
    legacy = legacy_project(tmp_path, trained["1"])
    mine = models_folder(tmp_path, "car_loan")
    store(mine, "1", trained["2"])
    point_champion(mine, "1")
    assert adopt_legacy(mine) is None
    assert os.readlink(legacy / "champion") == "versions/3"


def test_a_champion_of_another_data_set_or_problem_is_never_compared(
    config: DriftloopConfig,
    models: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert comparable_champion(models / "champion", config) is not None
    assert comparable_champion(tmp_path / "none", config) is None  # the first model
    card = models / "champion/card.json"
    for change in ({"data": "housing"}, {"problem": "regression"}):
        card.write_text(json.dumps({**json.loads(card.read_text()), **change}))
        with caplog.at_level(logging.WARNING):
            assert comparable_champion(models / "champion", config) is None
        assert "comparing to the minimums only" in caplog.records[-1].getMessage()
        card.write_text(json.dumps({**json.loads(card.read_text()), "data": "car_loan"}))


def test_a_champion_that_cannot_score_the_holdout_is_one_line(
    config: DriftloopConfig,
    trained: dict[str, object],
    raw: pd.DataFrame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The crash of an older layout: a regressor taken as a binary data set's champion."""
    frame = featurize_pandas(raw.head(2000), plan(config.features, config.data))
    cols = columns(config)
    result = evaluation.evaluate_model(trained["1"], frame, config, cols)
    regressor = HistGradientBoostingRegressor()  # no classes_
    with caplog.at_level(logging.WARNING):
        report = evaluation.build_report(trained["1"], frame, config, cols, result, regressor)
    assert report["champion"] is None and report["candidate"] == result["metrics"]
    warned = [r.getMessage() for r in caplog.records if "cannot score" in r.getMessage()]
    assert len(warned) == 1 and "(AttributeError:" in warned[0]
