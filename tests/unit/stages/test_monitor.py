"""The drift policy: deviation from the primary metric, the band, and data alerts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from driftloop.config.schema import DriftBand
from driftloop.core.drift import (
    DriftRecord,
    band_of,
    decide,
    evidence,
    nothing_monitored,
    primary,
    primary_by_chunk,
)
from driftloop.errors import DataError

BANDS = [
    DriftBand("none", 0, 2),
    DriftBand("warn", 2, 5),
    DriftBand("retrain", 5, 10),
    DriftBand("experiment", 10, None),
]


def rows(
    signal: str, measure: str, reference: float, analysis: list[float], **extra: object
) -> list[dict[str, object]]:
    """One reference chunk and analysis chunks m0, m1, ... of one signal."""
    out = [
        {
            "key": "reference",
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
            "key": f"m{index}",
            "signal": signal,
            "measure": measure,
            "period": "analysis",
            "value": v,
            "realized": float("nan"),
            "alert": False,
            "column": None,
        }
        for index, v in enumerate(analysis)
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


def test_realised_counts_where_labels_arrived_and_estimated_elsewhere() -> None:
    # m0 is labelled (realised 0.81); m1 waits for labels (estimated 0.9)
    table = pd.DataFrame(
        rows("estimated_performance", "roc_auc", 0.9, [0.9, 0.9], realized=0.9)
        + rows("realised_performance", "roc_auc", 0.9, [0.81, float("nan")])
    )
    measured = {each.basis: each for each in evidence(table, "roc_auc")}
    assert measured["realised"].current == 0.81 and measured["estimated"].current == 0.9
    found = primary(table, "roc_auc")
    assert (found.basis, found.current) == ("realised", 0.81)
    assert found.deviation == pytest.approx(10.0)


def test_the_estimate_of_unlabelled_chunks_decides_when_it_is_worse() -> None:
    # the estimate of the labelled chunk m0 (0.5) is replaced by its realised value
    table = pd.DataFrame(
        rows("estimated_performance", "roc_auc", 1.0, [0.5, 0.93], realized=1.0)
        + rows("realised_performance", "roc_auc", 1.0, [0.99, float("nan")])
    )
    decision = decide(table, "roc_auc", BANDS)
    assert decision.primary.basis == "estimated" and decision.primary.current == 0.93
    assert decision.action == "retrain"
    assert [each.basis for each in decision.evidence] == ["realised", "estimated"]


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


# --- the stage ---------------------------------------------------------------------------


def test_estimated_and_realised_per_chunk_for_the_plot() -> None:
    table = pd.DataFrame(
        rows("estimated_performance", "roc_auc", 0.9, [0.88, 0.87], realized=0.9)
        + rows("realised_performance", "roc_auc", 0.9, [0.85, float("nan")])
        + rows("estimated_performance", "f1", 0.5, [0.4, 0.4])
    )
    wide = primary_by_chunk(table, "roc_auc")
    assert list(wide.columns) == ["key", "period", "estimated", "realised"]
    assert wide["key"].tolist() == ["reference", "m0", "m1"]
    assert wide.loc[1, "estimated"] == 0.88 and wide.loc[1, "realised"] == 0.85
    assert pd.isna(wide.loc[2, "realised"])


def test_the_drift_record_reads_back_what_it_wrote(tmp_path: Path) -> None:
    raw = {
        "batch": "2018-11",
        "batches": ["2018-10", "2018-11"],
        "action": "retrain",
        "deviation_percent": 6.5,
        "primary": {"metric": "roc_auc", "basis": "realised", "reference": 0.97, "current": 0.907},
        "evidence": [
            {"basis": "realised", "reference": 0.97, "current": 0.907, "deviation_percent": 6.5}
        ],
        "alerts": ["univariate drift: car_value"],
        "signals": [
            {
                "signal": "univariate_drift",
                "column": "car_value",
                "measure": "jensen_shannon",
                "chunk": "2018-11",
                "value": 0.12,
                "lower_threshold": None,
                "upper_threshold": 0.1,
                "alert": True,
            }
        ],
    }
    record = DriftRecord.from_json(raw)
    assert record.to_json() == raw
    assert list(record.to_json()) == list(raw)  # the key order of metrics/drift.json
    assert (
        record.text() == "batch 2018-11: retrain, deviation 6.50 % (roc_auc realised 0.907 vs 0.97)"
    )
    waiting = nothing_monitored("no production batch under data/incoming/x")
    assert DriftRecord.from_json(waiting.to_json()) == waiting
    assert waiting.text() == "nothing monitored: no production batch under data/incoming/x"
    path = tmp_path / "drift.json"
    assert DriftRecord.read(path) is None
    path.write_text('{"batch": "b"}')
    with pytest.raises(DataError, match=r"drift\.json: not a drift record"):
        DriftRecord.read(path)
