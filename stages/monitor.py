"""monitor: how far the champion has drifted, and what the policy says to do.

The signals come from NannyML (``stages.adapters.nml``) as one long table:
one row per chunk and measured thing. The decision is pure: the deviation
is the relative drop (in %) of the primary metric from the reference
period, realised where labels exist and estimated otherwise; the band of
conf/monitor that holds it names the action. Data drift or data-quality
alerts with no performance drop still warn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stages.config.schema import DriftBand
from stages.errors import DataError
from stages.promote import LOWER_IS_BETTER

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


def primary(table: pd.DataFrame, metric: str) -> Primary:
    """The primary metric, realised when the analysis has labels, else estimated."""
    for basis in ("realised", "estimated"):
        rows = table[(table["signal"] == PERFORMANCE[basis]) & (table["measure"] == metric)]
        current = rows.loc[rows["period"] == "analysis", "value"].dropna()
        if current.empty:
            continue
        reference = rows[rows["period"] == "reference"]
        column = "realized" if reference["realized"].notna().any() else "value"
        return Primary(metric, basis, float(reference[column].mean()), float(current.mean()))
    raise DataError(f"monitor.primary_metric: no value of '{metric}' for the analysis data")


def data_alerts(table: pd.DataFrame) -> list[str]:
    """Drift and data-quality alerts in the analysis period, one line each."""
    rows = table[table["signal"].isin(DATA_SIGNALS) & (table["period"] == "analysis")]
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


def decide(table: pd.DataFrame, metric: str, bands: list[DriftBand]) -> Decision:
    found = primary(table, metric)
    action = band_of(found.deviation, bands)
    alerts = data_alerts(table)
    if action == bands[0].action and alerts:
        action = "warn"  # data drift without a performance drop
    return Decision(action, round(found.deviation, 4), found, alerts)
