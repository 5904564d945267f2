"""The one place that talks to NannyML.

Packaged data sets are read straight from the installed wheel's data folder:
``import nannyml`` costs seconds and pulls in FLAML, which starts a JVM when
pyspark is importable, and ingest needs none of that. Monitoring imports it
through ``nannyml()``, which keeps those side effects out.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from driftloop.errors import DataError

TARGET_SUFFIXES = ("_analysis_target", "_analysis_targets", "_analysis_gt", "_target")


def datasets_dir() -> Path:
    spec = importlib.util.find_spec("nannyml")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("data.source: kind nannyml needs the nannyml package installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def packaged_files(dataset: str, part: str) -> tuple[Path, Path | None]:
    """The data file of a packaged data set's part, and its separate targets file."""
    folder = datasets_dir()
    stem = f"{dataset}_{part}"
    data = _first_existing(folder, [stem])
    if data is None:
        known = sorted({p.stem.rsplit("_", 1)[0] for p in folder.glob("*_reference.*")})
        raise DataError(
            f"data.source: nannyml has no data set '{dataset}' with part '{part}' "
            f"(known: {', '.join(known)})"
        )
    targets = None
    if part == "analysis":
        targets = _first_existing(folder, [f"{dataset}{suffix}" for suffix in TARGET_SUFFIXES])
    return data, targets


def _first_existing(folder: Path, stems: list[str]) -> Path | None:
    for stem in stems:
        for ext in (".csv", ".pq", ".parquet"):
            if (folder / f"{stem}{ext}").is_file():
                return folder / f"{stem}{ext}"
    return None


# --- monitoring -------------------------------------------------------------------------

# The figures' plotly.js is written into the report once, inline, so it opens
# with no network.
FLOAT_FIELDS = ("value", "upper_threshold", "lower_threshold", "realized", "sampling_error")
REGRESSION_METRICS = {"rmse", "mae", "mape", "mse", "msle", "rmsle"}


@contextmanager
def _unimportable(*names: str) -> Iterator[None]:
    """Make ``names`` (and their submodules) fail to import inside the block."""
    saved = {
        key: module
        for key, module in sys.modules.items()
        if any(key == name or key.startswith(f"{name}.") for name in names)
    }
    for key in saved:
        del sys.modules[key]
    for name in names:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def nannyml() -> ModuleType:
    """nannyml, imported once without its side effects.

    Through FLAML, ``import nannyml`` imports pyspark.pandas, which starts a
    JVM (and flips ANSI mode on a live Spark session), and MLflow; with both
    hidden during the import it takes ~2.5 s instead of ~16 s. Usage logging
    is off whenever NML_DISABLE_USAGE_LOGGING is set, to any value.
    """
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    # threshold clipping and column conversions are logged as warnings, per chunk
    logging.getLogger("nannyml").setLevel(logging.ERROR)
    if "nannyml" not in sys.modules:
        with _unimportable("pyspark", "mlflow"):
            importlib.import_module("nannyml")
    return sys.modules["nannyml"]


@dataclass(frozen=True)
class Frames:
    """What NannyML needs to know about the reference and analysis frames."""

    problem: str  # binary | multiclass | regression
    features: list[str]
    categorical: list[str]
    target: str
    y_pred: str
    # binary: one column; multiclass: class -> column; regression: None
    y_pred_proba: str | dict[str, str] | None
    timestamp: str | None


@dataclass(frozen=True)
class Chunking:
    period: str | None = None
    size: int | None = None
    # rows of each period chunk the domain classifier reads (a seeded sample;
    # its cross-validated LightGBM costs ~1 s per 5,000 rows per chunk)
    classifier_rows: int | None = None

    def classifier_sample(self, analysis: pd.DataFrame, frames: Frames) -> pd.DataFrame:
        """At most ``classifier_rows`` rows of every period chunk, in their order."""
        if self.size or not self.classifier_rows or frames.timestamp is None:
            return analysis
        periods = pd.to_datetime(analysis[frames.timestamp]).dt.to_period(self.period)
        # integer period ordinals: no Period object per row
        keys = np.asarray(periods.array.asi8)  # type: ignore[attr-defined]
        rng = np.random.default_rng(0)
        keep = np.zeros(len(analysis), dtype=bool)
        order = np.argsort(keys, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0])
        for rows in np.split(order, starts[1:]):
            if len(rows) > self.classifier_rows:
                rows = rng.choice(rows, self.classifier_rows, replace=False)
            keep[rows] = True
        return analysis[keep]

    def kwargs(self, frames: Frames) -> dict[str, Any]:
        if self.size:
            return {"chunk_size": self.size, "timestamp_column_name": frames.timestamp}
        return {"chunk_period": self.period, "timestamp_column_name": frames.timestamp}


@dataclass
class Signals:
    """Every signal per chunk as one long table, and a figure per signal."""

    table: pd.DataFrame
    figures: dict[str, Any] = field(default_factory=dict)


def monitor(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    frames: Frames,
    chunking: Chunking,
    methods: tuple[list[str], list[str]],
    metrics: list[str],
) -> Signals:
    """Drift, estimated and realised performance and data quality, chunk by chunk."""
    nml = nannyml()
    chunks = chunking.kwargs(frames)
    reference, analysis = plain(reference, frames), plain(analysis, frames)
    parts: list[pd.DataFrame] = []
    figures: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The resulting number of chunks is too low")
        warnings.filterwarnings("ignore", message="Too many missing values")
        warnings.filterwarnings("ignore", message="Not enough data to compute realized")
        warnings.filterwarnings("ignore", category=FutureWarning)
        sampled = chunking.classifier_sample(analysis, frames)
        calculators = _calculators(nml, frames, chunks, methods, metrics, analysis, sampled)
        for name, run in calculators.items():
            result = run(reference)
            parts.append(tidy(result).assign(signal=name))
            figures[name] = result
    return Signals(pd.concat(parts, ignore_index=True), figures)


def plain(frame: pd.DataFrame, frames: Frames) -> pd.DataFrame:
    """Features as NannyML's methods read them: pandas' nullable string and
    boolean columns as objects (chi2 fails on them and NannyML only logs it),
    nullable numbers as float64 with NaN."""
    columns = {}
    for name in frames.features:
        series = frame[name]
        if not isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
            continue
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            columns[name] = series.astype("float64")
        else:
            columns[name] = series.astype(object).where(series.notna(), np.nan)
    return frame.assign(**columns) if columns else frame


def _calculators(
    nml: Any,
    frames: Frames,
    chunks: dict[str, Any],
    methods: tuple[list[str], list[str]],
    metrics: list[str],
    analysis: pd.DataFrame,
    sampled: pd.DataFrame,
) -> dict[str, Callable[[pd.DataFrame], Any]]:
    continuous, categorical = methods
    features = frames.features
    lgbm = {"verbosity": -1, "n_jobs": 1}
    out: dict[str, Callable[[pd.DataFrame], Any]] = {
        "univariate_drift": lambda ref: (
            nml.UnivariateDriftCalculator(
                column_names=features,
                treat_as_categorical=frames.categorical,
                continuous_methods=continuous,
                categorical_methods=categorical,
                **chunks,
            )
            .fit(ref)
            .calculate(analysis)
        ),
        "pca_reconstruction_error": lambda ref: (
            nml.DataReconstructionDriftCalculator(column_names=features, **chunks)
            .fit(ref)
            .calculate(analysis)
        ),
        "domain_classifier": lambda ref: (
            nml.DomainClassifierCalculator(
                feature_column_names=features,
                treat_as_categorical=frames.categorical,
                hyperparameters=_domain_hyperparameters() | lgbm,
                **chunks,
            )
            .fit(ref)
            .calculate(sampled)
        ),
        "estimated_performance": lambda ref: (
            _estimator(nml, frames, chunks, metrics, lgbm).fit(ref).estimate(analysis)
        ),
        "missing_values": lambda ref: (
            nml.MissingValuesCalculator(column_names=features, **chunks)
            .fit(ref)
            .calculate(analysis)
        ),
    }
    if frames.categorical:
        out["unseen_values"] = lambda ref: (
            nml.UnseenValuesCalculator(column_names=frames.categorical, **chunks)
            .fit(ref)
            .calculate(analysis)
        )
    if frames.target in analysis.columns and analysis[frames.target].notna().any():
        out["realised_performance"] = lambda ref: (
            nml.PerformanceCalculator(
                problem_type=_problem(frames),
                y_true=frames.target,
                y_pred=frames.y_pred,
                y_pred_proba=frames.y_pred_proba,
                metrics=metrics,
                **chunks,
            )
            .fit(ref)
            .calculate(analysis)
        )
    return out


def _estimator(
    nml: Any, frames: Frames, chunks: dict[str, Any], metrics: list[str], lgbm: dict[str, Any]
) -> Any:
    if frames.problem == "regression":
        return nml.DLE(
            feature_column_names=frames.features,
            y_pred=frames.y_pred,
            y_true=frames.target,
            metrics=metrics,
            hyperparameters=lgbm,
            **chunks,
        )
    return nml.CBPE(
        problem_type=_problem(frames),
        y_pred_proba=frames.y_pred_proba,
        y_pred=frames.y_pred,
        y_true=frames.target,
        metrics=metrics,
        **chunks,
    )


def _problem(frames: Frames) -> str:
    if frames.problem == "regression":
        return "regression"
    return f"classification_{frames.problem}"


def _domain_hyperparameters() -> dict[str, Any]:
    """The domain classifier's LightGBM defaults without 'silent' (unknown to LightGBM 4)."""
    from nannyml.drift.multivariate.domain_classifier.calculator import DEFAULT_LGBM_HYPERPARAMS

    return {k: v for k, v in DEFAULT_LGBM_HYPERPARAMS.items() if k != "silent"}


def tidy(result: Any) -> pd.DataFrame:
    """A NannyML result as one row per chunk and measured thing: chunk key, period,
    column (or None), method or metric, value, thresholds, alert."""
    frame = result.to_df()
    three = frame.columns.nlevels == 3
    chunk = frame["chunk"]["chunk"] if three else frame["chunk"]
    chunk = chunk[["key", "period", "start_index", "end_index"]]
    parts = []
    for group in dict.fromkeys(c[:-1] for c in frame.columns if c[0] != "chunk"):
        sub = frame.loc[:, [c for c in frame.columns if c[:-1] == group]]
        sub.columns = [c[-1] for c in sub.columns]
        values = pd.DataFrame(index=sub.index)
        for name in FLOAT_FIELDS:
            values[name] = pd.to_numeric(sub[name], errors="coerce") if name in sub else np.nan
        values["alert"] = sub["alert"].fillna(False).astype(bool) if "alert" in sub else False
        column, measure = (group[0], group[1]) if three else _names(result, group[0])
        parts.append(chunk.join(values).assign(column=column, measure=measure))
    table: pd.DataFrame = pd.concat(parts, ignore_index=True)
    return table


def _names(result: Any, key: str) -> tuple[str | None, str]:
    """Data-quality results are keyed by column; the others by metric."""
    name = type(result).__module__
    if "data_quality" in name:
        return key, "missing_rate" if "missing" in name else "unseen_rate"
    return None, key


def write_report(
    path: Path, title: str, sections: list[tuple[str, str]], figures: dict[str, Any]
) -> None:
    """One self-contained HTML file: plotly.js inline once, then each figure."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    parts = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>',
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<h2>{html.escape(h)}</h2>{body}" for h, body in sections]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Discarding nonzero nanoseconds")
        for index, (name, figure) in enumerate(figures.items()):
            div = pio.to_html(
                figure,
                full_html=False,
                include_plotlyjs=False,
                include_mathjax=False,
                div_id=f"figure{index}",
                config={"displaylogo": False},
            )
            parts.append(f"<h2>{html.escape(name)}</h2>{div}")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
