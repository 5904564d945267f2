"""How good a model is on labelled rows: metrics by problem type, slices,
behavioural checks (invariance and directional), the prediction suite, the
champion on the same rows, and the curves DVC plots renders."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from driftloop.adapters import gx
from driftloop.config.schema import DriftloopConfig, Problem
from driftloop.core.metrics import compute_metrics, scores  # moved
from driftloop.core.model import (
    CARD_FILE,
    Columns,
    load_model,
    model_input,
    split_xy,
)
from driftloop.core.outputs import read_json
from driftloop.core.plan import FeaturePlan, featurize_pandas, plan
from driftloop.errors import DataError

log = logging.getLogger(__name__)
CURVE_POINTS = 101
# what a model that cannot score a holdout raises (missing columns, a regressor
# asked for classes, a wrong feature count): reported in one line, not a traceback
SCORING_ERRORS = (AttributeError, KeyError, TypeError, ValueError)


def comparable_champion(folder: Path, config: DriftloopConfig) -> Any | None:
    """The champion to hold the candidate against, or None (the first model).

    Each data set has its own champion folder, so this is a second lock: a
    champion whose card names another data set or problem type is never
    compared, and one line says so."""
    model = load_model(folder)
    if model is None:
        return None
    card = read_json(folder / CARD_FILE) or {}
    expected = (config.data.name, config.data.problem.value)
    found = (card.get("data", expected[0]), card.get("problem", expected[1]))
    if found != expected:
        log.warning(
            "evaluate: the champion at %s is a %s model of data set '%s', not a %s model of "
            "'%s'; comparing to the minimums only",
            folder, found[1], found[0], expected[1], expected[0],
        )  # fmt: skip
        return None
    return model


def slice_metrics(
    frame: pd.DataFrame, out: np.ndarray, config: DriftloopConfig, classes: list[Any]
) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per value of each slice column (slices too small or single-class skipped)."""
    target, problem = config.data.columns.target, config.data.problem
    result: dict[str, dict[str, dict[str, float]]] = {}
    for column in config.evaluate.slices:
        result[column] = {}
        for value in sorted(frame[column].dropna().unique(), key=str):
            rows = (frame[column] == value).to_numpy()
            y = frame[target][rows]
            if rows.sum() < config.evaluate.slice_min_rows or (
                problem is not Problem.regression and y.nunique() < 2
            ):
                continue
            result[column][str(value)] = compute_metrics(problem, y, out[rows], classes)
    return result


def behaviour(
    model: Any, raw: pd.DataFrame, config: DriftloopConfig, cols: Columns
) -> list[dict[str, Any]]:
    """Invariance and directional checks on the holdout's raw columns."""
    feature_plan = plan(config.features, config.data)
    base = _score(model, raw, feature_plan, cols, config.data.problem)
    results = []
    for inv in config.evaluate.invariance:
        moved = _score(
            model, _shifted(raw, inv.column, inv.shift), feature_plan, cols, config.data.problem
        )
        changed = float(np.mean(_label(moved) != _label(base)))
        results.append(
            _check("invariance <=", inv.column, inv.shift, changed, inv.max_changed_share)
        )
    for rule in config.evaluate.directional:
        moved = _score(
            model, _shifted(raw, rule.column, rule.shift), feature_plan, cols, config.data.problem
        )
        delta = _primary(moved) - _primary(base)
        share = float(np.mean(delta < 0 if rule.expect == "decrease" else delta > 0))
        results.append(
            _check(f"{rule.expect} share >=", rule.column, rule.shift, share, rule.min_share)
        )
    return results


def _check(kind: str, column: str, shift: float, value: float, limit: float) -> dict[str, Any]:
    passed = value <= limit if "<=" in kind else value >= limit
    return {
        "check": f"{column}{shift:+g}: {kind}",
        "value": round(value, 6),
        "limit": limit,
        "passed": passed,
    }


def _shifted(raw: pd.DataFrame, column: str, shift: float) -> pd.DataFrame:
    if column not in raw.columns:
        raise DataError(f"evaluate: behavioural check names unknown column '{column}'")
    moved = raw.copy()
    moved[column] = moved[column] + shift
    return moved


def _score(
    model: Any, raw: pd.DataFrame, feature_plan: FeaturePlan, cols: Columns, problem: Problem
) -> np.ndarray:
    table = featurize_pandas(raw, feature_plan)
    return scores(model, model_input(table, cols.numeric, cols.categorical), problem)


def _label(out: np.ndarray) -> np.ndarray:
    return out.argmax(axis=1) if out.ndim == 2 else np.round(out, 6)


def _primary(out: np.ndarray) -> np.ndarray:
    return out[:, -1] if out.ndim == 2 else out


def prediction_specs(rows: int, problem: Problem, names: list[str]) -> list[gx.Spec]:
    """Predictions are finite, present, one per holdout row; probabilities in [0, 1]."""
    specs = [gx.Spec("expect_table_row_count_to_equal", {"value": rows})]
    for name in names:
        specs.append(gx.Spec("expect_column_values_to_not_be_null", {"column": name}))
        if problem is not Problem.regression:
            specs.append(
                gx.Spec(
                    "expect_column_values_to_be_between",
                    {"column": name, "min_value": 0, "max_value": 1},
                )
            )
    return specs


def predictions_frame(out: np.ndarray, classes: list[Any]) -> pd.DataFrame:
    if out.ndim == 1:
        return pd.DataFrame({"prediction": out})
    # NaN and inf fail not-null / between; keep them visible to the suite as null
    clean = np.where(np.isfinite(out), out, np.nan)
    return pd.DataFrame({f"proba_{c}": clean[:, i] for i, c in enumerate(classes)})


def curves(y: pd.Series, out: np.ndarray, classes: list[Any], bins: int) -> dict[str, pd.DataFrame]:
    """ROC, precision-recall and calibration on fixed grids; confusion as pairs."""
    if out.ndim == 1:
        return {
            "predicted_vs_actual": pd.DataFrame({"actual": np.asarray(y), "predicted": out}).round(
                6
            )
        }
    predicted = np.asarray(classes)[out.argmax(axis=1)]
    plots = {
        "confusion": pd.DataFrame(
            {"actual": y.astype(str).to_numpy(), "predicted": predicted.astype(str)}
        )
    }
    if len(classes) != 2:
        return plots
    positive, score = (np.asarray(y) == classes[1]).astype(int), out[:, 1]
    fpr, tpr, _ = skm.roc_curve(positive, score)
    grid = np.linspace(0, 1, CURVE_POINTS)
    plots["roc"] = pd.DataFrame({"fpr": grid, "tpr": np.interp(grid, fpr, tpr)}).round(6)
    precision, recall, _ = skm.precision_recall_curve(positive, score)
    order = np.argsort(recall)
    plots["precision_recall"] = pd.DataFrame(
        {"recall": grid, "precision": np.interp(grid, recall[order], precision[order])}
    ).round(6)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(score, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "score": score, "positive": positive}).groupby("bin")
    plots["calibration"] = pd.DataFrame(
        {"mean_predicted": frame["score"].mean(), "fraction_positive": frame["positive"].mean()}
    ).round(6)
    return plots


def evaluate_model(
    model: Any, frame: pd.DataFrame, config: DriftloopConfig, cols: Columns
) -> dict[str, Any]:
    x, y = split_xy(frame, cols, "holdout")
    classes = [] if config.data.problem is Problem.regression else list(model.classes_)
    out = scores(model, x, config.data.problem)
    return {
        "metrics": compute_metrics(config.data.problem, y, out, classes),
        "out": out,
        "classes": classes,
        "y": y,
    }


def build_report(
    model: Any,
    frame: pd.DataFrame,
    config: DriftloopConfig,
    cols: Columns,
    result: dict[str, Any],
    champion: Any,
) -> dict[str, Any]:
    names = list(predictions_frame(result["out"], result["classes"]).columns)
    gate = gx.validate(
        predictions_frame(result["out"], result["classes"]),
        "predictions",
        prediction_specs(len(frame), config.data.problem, names),
        None,
    )
    champion_metrics = None
    if champion is not None:
        try:
            champion_metrics = evaluate_model(champion, frame, config, cols)["metrics"]
        except SCORING_ERRORS as exc:
            log.warning(
                "evaluate: the champion cannot score this holdout (%s: %s); comparing to the "
                "minimums only",
                type(exc).__name__, exc,
            )  # fmt: skip
    return {
        "candidate": result["metrics"],
        "champion": champion_metrics,
        "slices": slice_metrics(frame, result["out"], config, result["classes"]),
        "behaviour": behaviour(model, frame[list(config.data.schema)], config, cols),
        "predictions_gate": {
            "success": gate.success,
            "failed": [f["expectation"] for f in gate.failures],
        },
        "holdout_rows": len(frame),
    }
