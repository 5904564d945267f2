"""monitor: how far the champion has drifted, and what the policy says to do.

The signals come from NannyML (``stages.adapters.nml``) as one long table:
one row per chunk and measured thing. The decision is pure: the deviation
is the relative drop (in %) of the primary metric from the reference
period, realised where labels exist and estimated otherwise; the band of
conf/monitor that holds it names the action. Data drift or data-quality
alerts with no performance drop still warn.
"""

from __future__ import annotations

import argparse
import html
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from stages import runner
from stages.adapters import nml
from stages.config.schema import ColumnType, DataConfig, DriftBand, DriftloopConfig, Problem
from stages.errors import DataError
from stages.featurize import plan
from stages.ingest import batch_data, batch_labels, conform
from stages.outputs import atomic_dir, atomic_file, write_json
from stages.predictor import Outputs, Predictor, frame_columns, input_columns
from stages.promote import LOWER_IS_BETTER, load_champion
from stages.train import read_features

PERFORMANCE = {"realised": "realised_performance", "estimated": "estimated_performance"}
DATA_SIGNALS = (
    "univariate_drift",
    "pca_reconstruction_error",
    "domain_classifier",
    "missing_values",
    "unseen_values",
)


@dataclass(frozen=True)
class Primary:
    metric: str
    basis: str  # realised | estimated
    reference: float
    current: float

    @property
    def deviation(self) -> float:
        """The drop from the reference, in % of it (0 when it improved)."""
        change = self.current - self.reference
        drop = change if self.metric in LOWER_IS_BETTER else -change
        return float(max(0.0, 100.0 * drop / abs(self.reference))) if self.reference else 0.0


@dataclass(frozen=True)
class Decision:
    action: str
    deviation: float
    primary: Primary
    alerts: list[str]
    evidence: list[Primary] = field(default_factory=list)


def evidence(table: pd.DataFrame, metric: str, min_rows: int = 0) -> list[Primary]:
    """The primary metric measured two ways: realised on the chunks whose labels
    arrived and estimated on the chunks still waiting for them. Each analysis
    value is the row-weighted mean of its chunks of ``min_rows`` or more (of all
    chunks when no chunk of either kind is that big)."""
    parts = {basis: _analysis_rows(table, basis, metric) for basis in PERFORMANCE}
    labelled = set(parts["realised"]["key"]) if "key" in parts["realised"] else set()
    if labelled:
        parts["estimated"] = parts["estimated"][~parts["estimated"]["key"].isin(labelled)]
    big = {basis: rows[_sizes(rows) >= min_rows] for basis, rows in parts.items()}
    if any(not rows.empty for rows in big.values()):
        parts = big
    found = []
    for basis, current in parts.items():
        if current.empty:
            continue
        reference = table[
            (table["signal"] == PERFORMANCE[basis])
            & (table["measure"] == metric)
            & (table["period"] == "reference")
        ]
        column = "realized" if reference["realized"].notna().any() else "value"
        value = np.average(current["value"], weights=_sizes(current))
        found.append(Primary(metric, basis, float(reference[column].mean()), float(value)))
    if not found:
        raise DataError(f"monitor.primary_metric: no value of '{metric}' for the analysis data")
    return found


def primary(table: pd.DataFrame, metric: str, min_rows: int = 0) -> Primary:
    """The worse of the realised and the estimated evidence (realised on a tie)."""
    return max(evidence(table, metric, min_rows), key=lambda found: found.deviation)


def _analysis_rows(table: pd.DataFrame, basis: str, metric: str) -> pd.DataFrame:
    rows = table[
        (table["signal"] == PERFORMANCE[basis])
        & (table["measure"] == metric)
        & (table["period"] == "analysis")
    ]
    return rows.dropna(subset=["value"])


def _sizes(rows: pd.DataFrame) -> np.ndarray:
    if "start_index" not in rows:
        return np.ones(len(rows))
    return (rows["end_index"] - rows["start_index"] + 1).to_numpy(dtype="float64")


def counted(rows: pd.DataFrame, min_rows: int) -> pd.DataFrame:
    """The chunks big enough to count (all of them when none is)."""
    big = rows[_sizes(rows) >= min_rows]
    return big if not big.empty else rows


def data_alerts(table: pd.DataFrame, min_rows: int = 0) -> list[str]:
    """Drift and data-quality alerts in the analysis period, one line each."""
    rows = table[table["signal"].isin(DATA_SIGNALS) & (table["period"] == "analysis")]
    rows = counted(rows, min_rows)
    rows = rows[rows["alert"]]
    names = (
        rows["signal"]
        + np.where(rows["column"].notna(), ": " + rows["column"].astype(str), "")
        + " ("
        + rows["measure"].astype(str)
        + ")"
    )
    return sorted(set(names))


def band_of(deviation: float, bands: list[DriftBand]) -> str:
    for band in bands:
        if deviation >= band.min and (band.max is None or deviation < band.max):
            return band.action
    raise DataError(f"monitor.bands: no band holds a deviation of {deviation:.2f} %")


def decide(table: pd.DataFrame, metric: str, bands: list[DriftBand], min_rows: int = 0) -> Decision:
    measured = evidence(table, metric, min_rows)
    found = max(measured, key=lambda each: each.deviation)
    action = band_of(found.deviation, bands)
    alerts = data_alerts(table, min_rows)
    if action == bands[0].action and alerts:
        action = "warn"  # data drift without a performance drop
    return Decision(action, round(found.deviation, 4), found, alerts, measured)


# --- frames for NannyML ---------------------------------------------------------------


def frames_spec(config: DriftloopConfig, outputs: Outputs, classes: list[Any]) -> nml.Frames:
    data = config.data
    inputs = input_columns(data, plan(config.features, data))
    categorical = [c for c in inputs if data.schema[c] in (ColumnType.string, ColumnType.bool)]
    proba: str | dict[str, str] | None = None
    if data.problem is Problem.binary:
        proba = outputs.proba
    elif data.problem is Problem.multiclass:
        proba = dict(zip(map(str, classes), outputs.class_columns(classes), strict=True))
    return nml.Frames(
        problem=data.problem.value,
        features=inputs,
        categorical=categorical,
        target=data.columns.target,
        y_pred=outputs.label,
        y_pred_proba=proba,
        timestamp=data.columns.timestamp,
    )


def scored(
    frame: pd.DataFrame,
    predictor: Predictor,
    outputs: Outputs,
    names: list[str],
    config: DriftloopConfig,
    version: str | None = None,
) -> pd.DataFrame:
    """The frame with the champion's prediction columns. Rows the champion
    ``version`` scored already (the prediction log says so) keep their logged
    predictions; the rest (older models, dropped-in batches) are scored now."""
    wanted = outputs.names(predictor.classes)
    logged = np.zeros(len(frame), dtype=bool)
    if version is not None and "model_version" in frame and all(c in frame for c in wanted):
        logged = (frame["model_version"].astype("string") == version).fillna(False).to_numpy()
    if logged.all():
        return frame
    todo = frame[~logged]
    predictions = outputs.columns(predictor.predict(frame_columns(todo, names, config.data.schema)))
    columns = {}
    for name, values in predictions.items():
        new = np.asarray(values)
        column = (
            frame[name].to_numpy(copy=True) if logged.any() else np.empty(len(frame), new.dtype)
        )
        column[~logged] = new
        columns[name] = column
    return frame.assign(**columns)


def batch_rows(batch: Path, data: DataConfig, keep: list[str]) -> pd.DataFrame:
    """One batch conformed to the data set's schema, labels joined where they
    arrived (the target is missing elsewhere), plus the ``keep`` columns it has."""
    target = data.columns.target
    rows = batch_data(batch).drop(columns=[target], errors="ignore")
    labels = batch_labels(batch, data)
    if labels is not None:
        rows = rows.merge(labels, on=data.columns.id, how="left")
    else:
        rows[target] = np.nan
    schema = {k: v for k, v in data.schema.items() if k != target}
    kept = conform(rows, replace(data, schema=schema), str(batch))
    extra = {name: rows[name].to_numpy() for name in keep if name in rows}
    return kept.assign(**{target: rows[target].to_numpy()}, **extra)


def recent_batches(
    incoming: Path, data: DataConfig, count: int, keep: list[str]
) -> tuple[list[str], pd.DataFrame] | None:
    """The ``count`` newest batches under data/incoming (by name), as one frame."""
    batches = sorted(p for p in incoming.iterdir() if p.is_dir()) if incoming.is_dir() else []
    if not batches:
        return None
    chosen = batches[-count:]
    frames = [batch_rows(batch, data, keep) for batch in chosen]
    return [b.name for b in chosen], pd.concat(frames, ignore_index=True)


# --- wrapper ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--holdout", type=Path, required=True, help="the reference period")
    parser.add_argument("--champion", type=Path, required=True, help="champion model folder")
    parser.add_argument("--incoming", type=Path, required=True, help="production batches")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics/drift.json")
    parser.add_argument("--plots", type=Path, required=True, help="per-chunk signal CSVs")
    parser.add_argument("--report", type=Path, required=True, help="self-contained HTML")


def main(args: argparse.Namespace) -> None:
    config = runner.params(args.params)
    with runner.timed("monitor") as say:
        champion = load_champion(args.champion)
        predictor = Predictor(
            champion.model, plan(config.features, config.data), config.data.problem
        )
        outputs = Outputs.of(config.data)
        keep = [*outputs.names(predictor.classes), "model_version"]
        found = recent_batches(args.incoming, config.data, config.monitor.analysis_batches, keep)
        if found is None:
            write_nothing(args)
            say(f"no production batch under {args.incoming}: nothing to monitor (action none)")
            return
        batches, analysis = found
        names = input_columns(config.data, predictor.plan)
        say.step(f"scoring the reference and {', '.join(batches)} with the champion")
        with threadpool_limits(config.monitor.model_threads):
            holdout = read_features(args.holdout, None)
            reference = scored(holdout, predictor, outputs, names, config)
            analysis = scored(analysis, predictor, outputs, names, config, champion.version)
        say.step(f"NannyML on {len(analysis)} rows: drift, domain classifier, performance")
        signals = run_signals(
            config, reference, analysis, frames_spec(config, outputs, predictor.classes)
        )
        monitor_cfg = config.monitor
        decision = decide(
            signals.table, monitor_cfg.primary_metric, monitor_cfg.bands, monitor_cfg.min_chunk_rows
        )
        say.step("writing metrics, per-chunk plots and the HTML report")
        write_outputs(args, batches, decision, signals)
        for each in decision.evidence:
            say(
                f"{', '.join(batches)}: {each.basis} {each.metric} {each.current:.4f} "
                f"vs {each.reference:.4f} ({each.deviation:.2f} % drop)"
            )
        say(f"deviation {decision.deviation:.2f} % -> {decision.action}")


def run_signals(
    config: DriftloopConfig, reference: pd.DataFrame, analysis: pd.DataFrame, frames: nml.Frames
) -> nml.Signals:
    monitor_cfg = config.monitor
    return nml.monitor(
        reference,
        analysis,
        frames,
        nml.Chunking(
            monitor_cfg.chunk_period, monitor_cfg.chunk_size, monitor_cfg.domain_classifier_rows
        ),
        (monitor_cfg.continuous_methods, monitor_cfg.categorical_methods),
        metrics_for(config),
    )


def metrics_for(config: DriftloopConfig) -> list[str]:
    base = ["rmse", "mae"] if config.data.problem is Problem.regression else ["roc_auc", "f1"]
    primary_metric = config.monitor.primary_metric
    return [primary_metric, *[m for m in base if m != primary_metric]]


def summary(batches: list[str], decision: Decision, table: pd.DataFrame) -> dict[str, Any]:
    """metrics/drift.json: the decision, the primary metric, each signal's latest chunk."""
    found = decision.primary
    latest = (
        table[table["period"] == "analysis"]
        .groupby(["signal", "column", "measure"], dropna=False)
        .tail(1)
    )
    signals = [
        {
            "signal": row.signal,
            "column": None if pd.isna(row.column) else row.column,
            "measure": row.measure,
            "chunk": row.key,
            "value": _number(row.value),
            "lower_threshold": _number(row.lower_threshold),
            "upper_threshold": _number(row.upper_threshold),
            "alert": bool(row.alert),
        }
        for row in latest.itertuples()
    ]
    return {
        "batch": batches[-1],
        "batches": batches,
        "action": decision.action,
        "deviation_percent": decision.deviation,
        "primary": {
            "metric": found.metric,
            "basis": found.basis,
            "reference": round(found.reference, 6),
            "current": round(found.current, 6),
        },
        "evidence": [
            {
                "basis": each.basis,
                "reference": round(each.reference, 6),
                "current": round(each.current, 6),
                "deviation_percent": round(each.deviation, 4),
            }
            for each in decision.evidence
        ],
        "alerts": decision.alerts,
        "signals": signals,
    }


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 6)


def write_outputs(
    args: argparse.Namespace, batches: list[str], decision: Decision, signals: nml.Signals
) -> None:
    payload = summary(batches, decision, signals.table)
    with atomic_dir(args.plots) as folder:
        for name, rows in signals.table.groupby("signal"):
            columns = [
                "key",
                "period",
                "column",
                "measure",
                "value",
                "lower_threshold",
                "upper_threshold",
                "alert",
            ]
            rows[columns].to_csv(folder / f"{name}.csv", index=False, float_format="%.6g")
        primary_by_chunk(signals.table, decision.primary.metric).to_csv(
            folder / "primary.csv", index=False, float_format="%.6g"
        )
    figures = {name: result.plot() for name, result in signals.figures.items()}
    with atomic_file(args.report) as tmp:
        nml.write_report(
            tmp,
            f"Monitoring: {', '.join(batches)}",
            [("Decision", _decision_html(payload))],
            figures,
        )
    write_json(args.metrics, payload)


def primary_by_chunk(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The primary metric per chunk, estimated and realised side by side (a DVC plot)."""
    rows = table[table["signal"].isin(PERFORMANCE.values()) & (table["measure"] == metric)]
    wide = rows.pivot_table(
        index=["key", "period"], columns="signal", values="value", aggfunc="first", sort=False
    ).reset_index()
    wide.columns.name = None
    names = {signal: basis for basis, signal in PERFORMANCE.items()}
    wide = wide.rename(columns=names)
    for basis in PERFORMANCE:
        if basis not in wide:
            wide[basis] = np.nan
    return wide[["key", "period", "estimated", "realised"]]


def write_nothing(args: argparse.Namespace) -> None:
    """Outputs that say there was nothing to monitor (a data set with no batches yet)."""
    reason = f"no production batch under {args.incoming}"
    with atomic_dir(args.plots):
        pass
    with atomic_file(args.report) as tmp:
        nml.write_report(tmp, "Monitoring", [("Decision", f"<p>none: {reason}</p>")], {})
    write_json(args.metrics, {"batch": None, "action": "none", "reason": reason})


def _decision_html(payload: dict[str, Any]) -> str:
    primary_ = payload["primary"]
    alerts = "".join(f"<li>{html.escape(a)}</li>" for a in payload["alerts"]) or "<li>none</li>"
    return (
        f"<p><b>{html.escape(payload['action'])}</b>: {primary_['basis']} {primary_['metric']} "
        f"{primary_['current']} against {primary_['reference']} in the reference period, "
        f"a drop of {payload['deviation_percent']:.2f} %.</p><p>Data alerts:</p><ul>{alerts}</ul>"
    )
