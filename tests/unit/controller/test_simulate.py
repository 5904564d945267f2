"""Drift injection and the replayed months (pure parts of driftloop.controller.simulate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.config.schema import DriftloopConfig
from driftloop.controller.simulate import Injection, analysis_months, inject, load_scenario, records
from driftloop.errors import ConfigError
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def months(config: DriftloopConfig) -> list[tuple[str, pd.DataFrame]]:
    return analysis_months(config.data, config.monitor.min_chunk_rows)


def test_the_analysis_period_is_replayed_by_whole_month(
    months: list[tuple[str, pd.DataFrame]],
) -> None:
    names = [name for name, _ in months]
    assert names[0] == "2018-11" and names[-1] == "2019-08" and len(names) == 10
    assert all(len(rows) >= 4000 for _, rows in months)  # the partial 2018-10 is left out


def test_injections_apply_from_their_month_and_repeat_with_the_seed(
    months: list[tuple[str, pd.DataFrame]], config: DriftloopConfig
) -> None:
    rows = months[0][1]
    drift = [Injection("scale", "car_value", value=3.0, share=0.2, label=0, from_month=2)]
    assert inject(rows, drift, 1, 0, config.data).equals(rows)
    once, again = (inject(rows, drift, 2, 0, config.data) for _ in range(2))
    assert once.equals(again)
    hit = once["car_value"] != rows["car_value"]
    assert 0.17 < hit.mean() < 0.23
    assert np.allclose(once.loc[hit, "car_value"], rows.loc[hit, "car_value"] * 3)
    assert (once.loc[hit, "repaid"] == 0).all()
    assert once.loc[~hit].equals(rows.loc[~hit])


def test_every_kind_of_drift(
    months: list[tuple[str, pd.DataFrame]], config: DriftloopConfig
) -> None:
    rows = months[0][1]
    data = config.data
    shifted = inject(rows, [Injection("shift", "driver_tenure", value=2.0)], 1, 0, data)
    assert np.allclose(shifted["driver_tenure"], rows["driver_tenure"] + 2)
    flipped = inject(rows, [Injection("flip_labels", share=0.1)], 1, 0, data)
    assert 0.08 < (flipped["repaid"] != rows["repaid"]).mean() < 0.12
    mix = {"60K+ €": 1.0}
    mixed = inject(rows, [Injection("category_mix", "salary_range", mix=mix)], 1, 0, data)
    assert (mixed["salary_range"] == "60K+ €").all()
    optional = data.__class__(**{**data.__dict__, "optional": ["driver_tenure"]})
    holes = inject(rows, [Injection("missing", "driver_tenure", share=0.5)], 1, 0, optional)
    assert 0.45 < holes["driver_tenure"].isna().mean() < 0.55


def test_records_are_json_with_null_for_missing(
    months: list[tuple[str, pd.DataFrame]], config: DriftloopConfig
) -> None:
    rows = months[0][1].head(3).copy()
    rows.loc[0, "driver_tenure"] = np.nan
    sent = records(rows, config.data)
    assert json.loads(json.dumps(sent)) == sent
    assert "repaid" not in sent[0] and sent[0]["driver_tenure"] is None
    assert sent[0]["timestamp"].startswith("2018-11") and isinstance(sent[1]["id"], int)


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        ("[{kind: tilt, column: car_value}]", "kind 'tilt'"),
        ("[{kind: shift, column: nope, value: 1}]", "column 'nope'"),
        ("[{kind: scale, column: salary_range, value: 2}]", "numeric column"),
        ("[{kind: missing, column: car_value}]", "add it to data.optional"),
        ("[{kind: category_mix, column: salary_range, mix: {x: 1}}]", "allowed categories"),
        ("[{kind: flip_labels, share: 1.5}]", "share must be"),
    ],
)
def test_bad_scenarios_are_named(
    tmp_path: Path, config: DriftloopConfig, drift: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\ndrift: {drift}\n")
    with pytest.raises(ConfigError, match=message):
        load_scenario(path, config.data)


def test_the_shipped_scenarios_load(config: DriftloopConfig) -> None:
    names = {p.stem for p in (ROOT / "conf/simulate").glob("*.yaml")}
    assert names == {
        "none", "warn", "retrain", "experiment", "shadow", "canary", "bad_candidate", "rollback"
    }
    for name in names:
        assert load_scenario(ROOT / f"conf/simulate/{name}.yaml", config.data).name == name


def test_an_injection_can_end(config: DriftloopConfig) -> None:
    frame = pd.DataFrame({"car_value": [1.0, 2.0], "repaid": [1, 1]})
    shift = Injection(kind="shift", column="car_value", value=10.0, from_month=1, to_month=1)
    assert inject(frame, [shift], 1, 0, config.data)["car_value"].tolist() == [11.0, 12.0]
    assert inject(frame, [shift], 2, 0, config.data)["car_value"].tolist() == [1.0, 2.0]
