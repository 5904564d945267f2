"""The drift policy: the primary metric's deviation from the reference period
(realised where labels arrived, estimated elsewhere), the band of conf/monitor
that holds it, and the action it names; data alerts without a performance drop
warn. Pure: NannyML's long table in, a decision out."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
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


def summary(batches: list[str], decision: Decision, table: pd.DataFrame) -> DriftRecord:
    """The record of a decision: the primary metric and each signal's latest chunk."""
    found = decision.primary
    latest = (
        table[table["period"] == "analysis"]
        .groupby(["signal", "column", "measure"], dropna=False)
        .tail(1)
    )
    signals = [
        Signal(
            signal=str(row.signal),
            column=None if pd.isna(row.column) else str(row.column),
            measure=str(row.measure),
            chunk=str(row.key),
            value=_number(row.value),
            lower_threshold=_number(row.lower_threshold),
            upper_threshold=_number(row.upper_threshold),
            alert=bool(row.alert),
        )
        for row in latest.itertuples()
    ]
    evidence = [
        Evidence(
            each.basis, round(each.reference, 6), round(each.current, 6), round(each.deviation, 4)
        )
        for each in decision.evidence
    ]
    return DriftRecord(
        action=decision.action,
        batch=batches[-1],
        batches=batches,
        deviation_percent=decision.deviation,
        primary=replace(
            found, reference=round(found.reference, 6), current=round(found.current, 6)
        ),
        evidence=evidence,
        alerts=decision.alerts,
        signals=signals,
    )


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


# --- the drift record (metrics/drift.json) ---------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """The primary metric measured one way (realised or estimated), as recorded."""

    basis: str
    reference: float
    current: float
    deviation_percent: float


@dataclass(frozen=True)
class Signal:
    """One signal's latest analysis chunk."""

    signal: str
    column: str | None
    measure: str
    chunk: str
    value: float | None
    lower_threshold: float | None
    upper_threshold: float | None
    alert: bool


@dataclass(frozen=True)
class DriftRecord:
    """What the monitor decided (metrics/drift.json), read by the controller, the
    review report, status and experiments. With no production batch yet it holds
    only the action none and the reason."""

    action: str
    batch: str | None = None
    batches: list[str] = field(default_factory=list)
    deviation_percent: float = 0.0
    primary: Primary | None = None
    evidence: list[Evidence] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    reason: str | None = None

    @property
    def monitored(self) -> bool:
        return self.batch is not None

    def to_json(self) -> dict[str, Any]:
        if not self.monitored:
            return {"batch": None, "action": self.action, "reason": self.reason}
        assert self.primary is not None
        return {
            "batch": self.batch,
            "batches": self.batches,
            "action": self.action,
            "deviation_percent": self.deviation_percent,
            "primary": asdict(self.primary),
            "evidence": [asdict(each) for each in self.evidence],
            "alerts": self.alerts,
            "signals": [asdict(each) for each in self.signals],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DriftRecord:
        primary = raw.get("primary")
        return cls(
            action=raw["action"],
            batch=raw.get("batch"),
            batches=list(raw.get("batches", [])),
            deviation_percent=float(raw.get("deviation_percent", 0.0)),
            primary=Primary(**primary) if primary else None,
            evidence=[Evidence(**each) for each in raw.get("evidence", [])],
            alerts=list(raw.get("alerts", [])),
            signals=[Signal(**each) for each in raw.get("signals", [])],
            reason=raw.get("reason"),
        )

    @classmethod
    def read(cls, path: Path) -> DriftRecord | None:
        """The record at ``path``; None when there is none yet."""
        if not path.is_file():
            return None
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not a drift record ({exc})") from exc

    def text(self) -> str:
        """One line for the decision, shared by status, the loop and the review report."""
        if not self.monitored:
            return f"nothing monitored: {self.reason or 'no production batch yet'}"
        found = self.primary
        basis = (
            f" ({found.metric} {found.basis} {found.current} vs {found.reference})" if found else ""
        )
        return f"batch {self.batch}: {self.action}, deviation {self.deviation_percent:.2f} %{basis}"


def nothing_monitored(reason: str) -> DriftRecord:
    return DriftRecord(action="none", reason=reason)
