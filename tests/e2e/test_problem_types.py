"""Multiclass and regression data sets train and evaluate from config alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from driftloop.adapters import gx
from driftloop.config.compose import compose
from driftloop.config.schema import DriftloopConfig
from driftloop.core import data, evaluation, plan, validation
from driftloop.core import gate as gate_core
from driftloop.core import model as model_core
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CASES = {
    "multiclass": (
        [
            "data=credit_card",
            "features=credit_card",
            "expectations=credit_card",
            "evaluate=multiclass",
        ],
        "hgb",
        {"accuracy", "log_loss", "roc_auc", "f1"},
    ),
    "regression": (
        [
            "data=used_car_price",
            "features=used_car_price",
            "expectations=used_car_price",
            "evaluate=regression",
        ],
        "hgb_regression",
        {"rmse", "mae", "r2"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_problem_type_trains_and_passes_its_gate(case: str, tmp_path: Path) -> None:
    overrides, model, metric_names = CASES[case]
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    config = compose(tmp_path, tmp_path / "params.yaml", [*overrides, f"model={model}"])
    metrics = train_through_the_gates(config, Path("unused"))
    assert set(metrics) == metric_names


def train_through_the_gates(config: DriftloopConfig, source: Path) -> dict[str, float]:
    """The pipeline's cores in process: ingest, the data gate, features, training,
    evaluation and the model gate (every rule must pass); the holdout metrics."""
    frame, name = data.load_source(config.data, source)
    raw = data.combine([data.conform(frame, config.data, name)], config.data)
    gate = gx.validate(
        validation.frame_for_gate(data.to_arrow(raw, config.data)),
        config.expectations.suite,
        validation.build_specs(config.data, config.expectations),
        None,
    )
    assert gate.success, gate.failures
    table = plan.featurize_pandas(raw, plan.plan(config.features, config.data))
    holdout = plan.holdout_mask(table[config.data.columns.id], config.features.split)
    cols = model_core.columns(config)
    estimator = model_core.build_estimator(config.model, config.data.problem)
    pipeline = model_core.build_pipeline(estimator, cols, config.data, config.train.scale_numeric)
    pipeline.fit(*model_core.split_xy(table[~holdout], cols, "train"))
    result = evaluation.evaluate_model(pipeline, table[holdout], config, cols)
    verdicts = gate_core.judge({"candidate": result["metrics"]}, config.evaluate)
    assert all(v.passed for v in verdicts), gate_core.table(verdicts)
    metrics: dict[str, float] = result["metrics"]
    return metrics
