"""The drift policy: the primary metric's deviation from the reference period
(realised where labels arrived, estimated elsewhere), the band of conf/monitor
that holds it, and the action it names; data alerts without a performance drop
warn. Pure: NannyML's long table in, a decision out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config.schema import DriftBand
from driftloop.core.metrics import LOWER_IS_BETTER
from driftloop.errors import DataError

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
