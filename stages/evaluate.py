"""evaluate: the testing pipeline for a candidate model.

Holdout metrics by problem type, per-slice metrics, behavioural checks
(invariance and directional, declared in conf/evaluate), a Great Expectations
suite on the predictions, the same metrics for the current champion, and the
curves DVC plots renders (ROC, precision-recall, confusion, calibration).
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from stages import runner
from stages.adapters import gx
from stages.config.schema import DriftloopConfig, Problem
from stages.errors import DataError
from stages.featurize import FeaturePlan, featurize_pandas, plan
from stages.outputs import atomic_file, write_json
from stages.train import MODEL_FILE, Columns, columns, model_input, read_features, split_xy

log = logging.getLogger(__name__)
CURVE_POINTS = 101


# --- metrics ---------------------------------------------------------------------


def scores(model: Any, x: pd.DataFrame, problem: Problem) -> np.ndarray:
    """Class probabilities (classification) or predictions (regression)."""
    out = model.predict(x) if problem is Problem.regression else model.predict_proba(x)
    return np.asarray(out, dtype="float64")


def compute_metrics(
    problem: Problem, y: pd.Series, out: np.ndarray, classes: list[Any]
) -> dict[str, float]:
    if problem is Problem.regression:
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, out))),
            "mae": float(skm.mean_absolute_error(y, out)),
            "r2": float(skm.r2_score(y, out)),
        }
    predicted = np.asarray(classes)[out.argmax(axis=1)]
    result = {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "log_loss": float(skm.log_loss(y, out, labels=classes)),
    }
    if problem is Problem.binary:
        positive = (np.asarray(y) == classes[1]).astype(int)
        result |= {
            "roc_auc": float(skm.roc_auc_score(positive, out[:, 1])),
            "pr_auc": float(skm.average_precision_score(positive, out[:, 1])),
            "f1": float(skm.f1_score(positive, (out[:, 1] >= 0.5).astype(int))),
            "brier": float(skm.brier_score_loss(positive, out[:, 1])),
        }
    else:
        result |= {
            "roc_auc": float(skm.roc_auc_score(y, out, multi_class="ovr", labels=classes)),
            "f1": float(skm.f1_score(y, predicted, average="macro")),
        }
    return {key: round(value, 6) for key, value in result.items()}


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


# --- behaviour ---------------------------------------------------------------------


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


# --- predictions gate and plots -------------------------------------------------------


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


# --- wrapper ---------------------------------------------------------------------


def load_model(folder: Path) -> Any | None:
    path = folder / MODEL_FILE
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return pickle.load(handle)


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--holdout", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="candidate model folder")
    parser.add_argument("--champion", type=Path, required=True, help="current champion folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="folder for plot data")


def main(args: argparse.Namespace) -> None:
    config = runner.params(args.params)
    cols = columns(config)
    with runner.timed("evaluate") as say:
        model = load_model(args.model)
        if model is None:
            raise DataError(f"{args.model}: no candidate model (run the train stage)")
        frame = read_features(args.holdout, None)
        say.step(f"scoring the candidate on {len(frame)} holdout rows, slices and checks")
        result = evaluate_model(model, frame, config, cols)
        say.step("the prediction suite and the champion on the same rows")
        report = build_report(model, frame, config, cols, result, load_model(args.champion))
        for name, table in curves(
            result["y"], result["out"], result["classes"], config.evaluate.calibration_bins
        ).items():
            with atomic_file(args.plots / f"{name}.csv") as tmp:
                table.to_csv(tmp, index=False)
        write_json(args.metrics, report)
        primary = config.evaluate.primary_metric
        say(f"candidate {primary} {report['candidate'].get(primary)} on {len(frame)} holdout rows")
        champion = report["champion"]
        say(f"champion {primary} {champion.get(primary) if champion else 'none yet'}")


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
        except (KeyError, ValueError) as exc:
            log.warning(
                "evaluate: the champion cannot score this holdout (%s); comparing to minimums only",
                exc,
            )
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
