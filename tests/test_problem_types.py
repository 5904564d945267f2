"""Multiclass and regression data sets train and evaluate from config alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stages import evaluate, featurize, ingest, promote, train, validate_data
from stages.adapters import gx
from stages.config.compose import compose
from stages.config.schema import DriftloopConfig

ROOT = Path(__file__).resolve().parents[1]
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
    frame, name = ingest.load_source(config.data, source)
    raw = ingest.combine([ingest.conform(frame, config.data, name)], config.data)
    gate = gx.validate(
        validate_data.frame_for_gate(ingest.to_arrow(raw, config.data)),
        config.expectations.suite,
        validate_data.build_specs(config.data, config.expectations),
        None,
    )
    assert gate.success, gate.failures
    table = featurize.featurize_pandas(raw, featurize.plan(config.features, config.data))
    holdout = featurize.holdout_mask(table[config.data.columns.id], config.features.split)
    cols = train.columns(config)
    estimator = train.build_estimator(config.model, config.data.problem)
    pipeline = train.build_pipeline(estimator, cols, config.data, config.train.scale_numeric)
    pipeline.fit(*train.split_xy(table[~holdout], cols, "train"))
    result = evaluate.evaluate_model(pipeline, table[holdout], config, cols)
    verdicts = promote.judge({"candidate": result["metrics"]}, config.evaluate)
    assert all(v.passed for v in verdicts), promote.table(verdicts)
    metrics: dict[str, float] = result["metrics"]
    return metrics
