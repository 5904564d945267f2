"""The monitor stage on a fully run project, with and without a production batch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest


@pytest.mark.slow
def test_make_run_monitors_the_first_month_of_production(done: Path) -> None:
    drift = json.loads((done / "metrics/drift.json").read_text())
    assert drift["batch"] == "2018-11" and drift["action"] == "none"
    assert drift["deviation_percent"] < 2 and drift["primary"]["basis"] == "estimated"
    assert {s["signal"] for s in drift["signals"]} >= {
        "univariate_drift",
        "pca_reconstruction_error",
        "domain_classifier",
        "estimated_performance",
        "missing_values",
        "unseen_values",
    }
    report = (done / "reports/monitoring.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc=", report) and "<link" not in report
    plots = {p.name for p in (done / "reports/monitoring").iterdir()}
    assert "estimated_performance.csv" in plots and "univariate_drift.csv" in plots


@pytest.mark.slow
def test_no_batch_yet_records_none(done: Path, tmp_path: Path) -> None:
    from driftloop.cli import main

    out = tmp_path / "out"
    args = [
        "monitor",
        "--params",
        str(done / "params.yaml"),
        "--holdout",
        str(done / "data/features/holdout"),
        "--champion",
        str(done / "data/models/car_loan/champion"),
        "--incoming",
        str(tmp_path / "none"),
        "--metrics",
        str(out / "drift.json"),
        "--plots",
        str(out / "plots"),
        "--report",
        str(out / "report.html"),
    ]
    assert main(args) == 0
    drift = json.loads((out / "drift.json").read_text())
    assert drift["action"] == "none" and "no production batch" in drift["reason"]
    assert (out / "report.html").is_file()
