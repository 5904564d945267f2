"""NannyML behind the adapter: imported without Spark or MLflow, every signal
as one long table, and a report that opens with no network."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.adapters import nml
from driftloop.core.data import read_table_file

FEATURES = [
    "car_value",
    "salary_range",
    "debt_to_income_ratio",
    "loan_length",
    "repaid_loan_on_prev_car",
    "size_of_downpayment",
    "driver_tenure",
]
FRAMES = nml.Frames(
    problem="binary",
    features=FEATURES,
    categorical=["salary_range", "size_of_downpayment", "repaid_loan_on_prev_car"],
    target="repaid",
    y_pred="y_pred",
    y_pred_proba="y_pred_proba",
    timestamp="timestamp",
)


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = read_table_file(nml.packaged_files("synthetic_car_loan", "reference")[0])
    data, targets = nml.packaged_files("synthetic_car_loan", "analysis")
    assert targets is not None
    analysis = read_table_file(data).merge(read_table_file(targets), on="id")
    # the packaged analysis drifts in its second half
    return reference.head(6000), pd.concat([analysis.head(3000), analysis.tail(3000)])


def test_import_starts_no_jvm_and_no_mlflow() -> None:
    code = (
        "import sys, driftloop.adapters.nml as a; a.nannyml(); "
        "print('pyspark' in sys.modules, 'mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_signals_and_report(frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    reference, analysis = frames
    signals = nml.monitor(
        reference,
        analysis,
        FRAMES,
        nml.Chunking(size=1000),
        (["kolmogorov_smirnov", "jensen_shannon"], ["chi2", "jensen_shannon"]),
        ["roc_auc"],
    )
    table = signals.table
    assert set(table["signal"]) == {
        "univariate_drift",
        "pca_reconstruction_error",
        "domain_classifier",
        "estimated_performance",
        "realised_performance",
        "missing_values",
        "unseen_values",
    }
    analysed = table[table["period"] == "analysis"]
    assert len(analysed[analysed.signal == "domain_classifier"]) == 6
    drifted = analysed[analysed["start_index"] >= 3000]
    assert drifted[drifted.signal == "pca_reconstruction_error"]["alert"].all()
    realised = analysed[
        (analysed.signal == "realised_performance") & (analysed.measure == "roc_auc")
    ]
    early, late = realised["value"].iloc[:3].mean(), realised["value"].iloc[3:].mean()
    assert late < early  # the drifted half is harder to predict
    estimated = analysed[analysed.signal == "estimated_performance"]
    assert estimated["value"].notna().all() and estimated["realized"].notna().all()
    report = tmp_path / "report.html"
    figures = {name: result.plot() for name, result in signals.figures.items()}
    nml.write_report(report, "Monitoring", [("Decision", "<p>none</p>")], figures)
    text = report.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", text) and "<link" not in text
    assert text.count('class="plotly-graph-div"') == len(figures)


def test_nullable_string_and_boolean_columns_get_every_method() -> None:
    """pandas' string and boolean dtypes (what ingest and the log give) made
    NannyML's chi2 fail, logged and skipped; the adapter hands them over plain."""
    rng = np.random.default_rng(0)

    def frame(start: str) -> pd.DataFrame:
        n = 2000
        return pd.DataFrame(
            {
                "timestamp": pd.date_range(start, periods=n, freq="h"),
                "salary_range": pd.Series(rng.choice(["a", "b"], n), dtype="string"),
                "repaid_loan_on_prev_car": pd.Series(rng.random(n) < 0.5, dtype="boolean"),
                "car_value": pd.Series(rng.normal(size=n)).astype("Float64"),
            }
        )

    columns = ["salary_range", "repaid_loan_on_prev_car", "car_value"]
    spec = nml.Frames(
        "binary", columns, columns[:2], "repaid", "y_pred", "y_pred_proba", "timestamp"
    )
    reference, analysis = (nml.plain(frame(s), spec) for s in ("2018-01-01", "2018-07-01"))
    calculator = nml.nannyml().UnivariateDriftCalculator(
        column_names=columns,
        treat_as_categorical=columns[:2],
        continuous_methods=["kolmogorov_smirnov"],
        categorical_methods=["chi2"],
        chunk_period="M",
        timestamp_column_name="timestamp",
    )
    table = nml.tidy(calculator.fit(reference).calculate(analysis))
    chi2 = table[table["measure"] == "chi2"]
    assert set(chi2["column"]) == {"salary_range", "repaid_loan_on_prev_car"}
    assert chi2["value"].notna().all()


def test_the_domain_classifier_reads_a_capped_sample_of_each_period() -> None:
    stamps = pd.date_range("2019-01-01", "2019-03-31 23:00", freq="h")
    analysis = pd.DataFrame({"timestamp": stamps, "x": range(len(stamps))})
    sampled = nml.Chunking("M", None, 100).classifier_sample(analysis, FRAMES)
    months = sampled["timestamp"].dt.month.value_counts().sort_index()
    assert months.tolist() == [100, 100, 100]
    assert sampled.index.is_monotonic_increasing
    assert sampled.equals(nml.Chunking("M", None, 100).classifier_sample(analysis, FRAMES))
    assert nml.Chunking("M", None, None).classifier_sample(analysis, FRAMES) is analysis
