"""The drift policy: deviation from the primary metric, the band, and data alerts."""

from __future__ import annotations

import pandas as pd
import pytest

from stages.config.schema import DriftBand
from stages.errors import DataError
from stages.monitor import band_of, decide, primary

BANDS = [
    DriftBand("none", 0, 2),
    DriftBand("warn", 2, 5),
    DriftBand("retrain", 5, 10),
    DriftBand("experiment", 10, None),
]


def rows(
    signal: str, measure: str, reference: float, analysis: list[float], **extra: object
) -> list[dict[str, object]]:
    out = [
        {
            "signal": signal,
            "measure": measure,
            "period": "reference",
            "value": reference,
            "realized": extra.get("realized", float("nan")),
            "alert": False,
            "column": None,
        }
    ]
    out += [
        {
            "signal": signal,
            "measure": measure,
            "period": "analysis",
            "value": v,
            "realized": float("nan"),
            "alert": False,
            "column": None,
        }
        for v in analysis
    ]
    return out


@pytest.mark.parametrize(
    ("current", "action"),
    [(0.99, "none"), (0.96, "warn"), (0.92, "retrain"), (0.80, "experiment"), (1.2, "none")],
)
def test_bands_follow_the_relative_drop(current: float, action: str) -> None:
    table = pd.DataFrame(rows("estimated_performance", "roc_auc", 1.0, [current, current]))
    decision = decide(table, "roc_auc", BANDS)
    assert decision.action == action
    assert decision.primary.basis == "estimated"


def test_realised_wins_over_estimated_when_labels_exist() -> None:
    table = pd.DataFrame(
        rows("estimated_performance", "roc_auc", 0.9, [0.9], realized=0.9)
        + rows("realised_performance", "roc_auc", 0.9, [0.81, float("nan")])
    )
    found = primary(table, "roc_auc")
    assert (found.basis, found.current) == ("realised", 0.81)
    assert found.deviation == pytest.approx(10.0)


def test_lower_is_better_metrics_drop_upwards() -> None:
    table = pd.DataFrame(rows("estimated_performance", "rmse", 100.0, [107.0]))
    assert primary(table, "rmse").deviation == pytest.approx(7.0)


def test_data_drift_without_a_drop_warns() -> None:
    table = pd.DataFrame(
        [
            *rows("estimated_performance", "roc_auc", 0.9, [0.9]),
            {
                "signal": "univariate_drift",
                "measure": "jensen_shannon",
                "period": "analysis",
                "value": 0.3,
                "realized": float("nan"),
                "alert": True,
                "column": "car_value",
            },
        ]
    )
    decision = decide(table, "roc_auc", BANDS)
    assert decision.action == "warn"
    assert decision.alerts == ["univariate_drift: car_value (jensen_shannon)"]


def test_a_missing_metric_is_named() -> None:
    table = pd.DataFrame(rows("estimated_performance", "roc_auc", 0.9, [0.9]))
    with pytest.raises(DataError, match="no value of 'f1'"):
        decide(table, "f1", BANDS)
    assert band_of(0.0, BANDS) == "none" and band_of(10.0, BANDS) == "experiment"
