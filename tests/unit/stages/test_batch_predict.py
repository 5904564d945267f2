"""batch_predict: Spark scoring equals the in-process predictor, deterministic
files, the output columns, and clear errors that leave the last output alone."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from driftloop import cli
from driftloop.adapters import parquet
from driftloop.config.schema import ColumnType, DriftloopConfig, Problem
from driftloop.core import champion as champion_core
from driftloop.core import data as data_core
from driftloop.core import predictor as predictor_core
from driftloop.core import scoring as scoring_core
from driftloop.core.champion import Champion, load_champion
from driftloop.core.model import (
    CARD_FILE,
    MODEL_FILE,
    build_pipeline,
    columns,
    model_bytes,
    split_xy,
)
from driftloop.core.outputs import write_json
from driftloop.core.plan import featurize_pandas, plan
from driftloop.core.predictor import Outputs, Predictor, Scores
from driftloop.core.scoring import Written
from driftloop.errors import DataError, DriftloopError
from stages import batch_predict
from tests.conftest import ROOT

ROWS = 6000
VERSION = "7"


@pytest.fixture(scope="module")
def raw(config: DriftloopConfig) -> pd.DataFrame:
    """Reference rows with some inputs missing (numbers, text and booleans)."""
    frame, _ = data_core.load_source(config.data, Path("unused"))
    rows = data_core.combine([data_core.conform(frame.head(ROWS), config.data, "ref")], config.data)
    rng = np.random.default_rng(0)
    for name in ("car_value", "salary_range", "repaid_loan_on_prev_car"):
        rows[name] = rows[name].astype(object).where(rng.random(len(rows)) > 0.05, None)
    return rows


@pytest.fixture(scope="module")
def raw_file(config: DriftloopConfig, raw: pd.DataFrame, tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("raw") / "data.parquet"
    parquet.write_table(data_core.to_arrow(raw, config.data), path, 1000)
    return path


@pytest.fixture(scope="module")
def model(config: DriftloopConfig, raw: pd.DataFrame) -> Any:
    cols = columns(config)
    x, y = split_xy(featurize_pandas(raw, plan(config.features, config.data)), cols, "test")
    estimator = HistGradientBoostingClassifier(max_iter=40, random_state=0)
    return build_pipeline(estimator, cols, config.data, scale=True).fit(x, y)


def champion_folder(models: Path, data: bytes) -> Path:
    """models/champion -> versions/<VERSION>, as promote leaves it."""
    folder = models / "versions" / VERSION
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(data)
    write_json(folder / CARD_FILE, {"version": VERSION, "model": "hgb"})
    (models / "champion").symlink_to(Path("versions") / VERSION)
    return models / "champion"


@pytest.fixture(scope="module")
def champion(model: Any, tmp_path_factory: Any) -> Path:
    return champion_folder(tmp_path_factory.mktemp("models"), model_bytes(model))


@pytest.fixture()
def splits(spark: Any, config: DriftloopConfig) -> Iterator[None]:
    """Several input splits and several Arrow batches per split (small last ones too)."""
    spark.conf.set("spark.sql.files.maxPartitionBytes", "40k")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "700")
    yield
    spark.conf.set("spark.sql.files.maxPartitionBytes", config.spark.max_partition_bytes)
    spark.conf.set(
        "spark.sql.execution.arrow.maxRecordsPerBatch", str(config.spark.arrow_batch_rows)
    )


def run(spark: Any, source: Path, champion: Path, config: DriftloopConfig, out: Path) -> Written:
    loaded = champion_core.load_champion(champion)
    return batch_predict.write_predictions(spark, source, loaded, config, out)


def read(folder: Path) -> pd.DataFrame:
    return parquet.read_table(folder).to_pandas().sort_values("id").reset_index(drop=True)


def in_process(config: DriftloopConfig, model: Any, raw_file: Path) -> Scores:
    feature_plan = plan(config.features, config.data)
    inputs = predictor_core.input_columns(config.data, feature_plan)
    table = parquet.read_table(raw_file).sort_by("id")
    columns_ = scoring_core.predictor_columns(table, {c: config.data.schema[c] for c in inputs})
    return Predictor(model, feature_plan, config.data.problem).predict(columns_)


# --- Spark ------------------------------------------------------------------------------


@pytest.mark.slow
def test_predictions_equal_the_in_process_predictor(
    spark: Any,
    splits: None,
    raw_file: Path,
    champion: Path,
    model: Any,
    config: DriftloopConfig,
    tmp_path: Path,
) -> None:
    done = run(spark, raw_file, champion, config, tmp_path / "out")
    assert done.rows == ROWS and done.files > 2
    out = read(tmp_path / "out")
    expected = in_process(config, model, raw_file)
    np.testing.assert_array_equal(out["y_pred"].to_numpy(), expected.label)
    assert expected.proba is not None
    np.testing.assert_array_equal(out["y_pred_proba"].to_numpy(), expected.proba[:, 1])
    source = parquet.read_table(raw_file).to_pandas().sort_values("id").reset_index(drop=True)
    pd.testing.assert_series_equal(out["timestamp"], source["timestamp"])
    assert set(out["model_digest"]) == {load_champion(champion).digest}


@pytest.mark.slow
def test_output_is_byte_identical_across_runs(
    spark: Any,
    splits: None,
    raw_file: Path,
    champion: Path,
    config: DriftloopConfig,
    tmp_path: Path,
) -> None:
    first = run(spark, raw_file, champion, config, tmp_path / "a")
    second = run(spark, raw_file, champion, config, tmp_path / "b")
    assert (first.rows, first.files) == (second.rows, second.files)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == first.files > 1
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert names[0] == "part-00000.parquet"
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.slow
def test_the_model_is_unpickled_once_per_python_worker(
    spark: Any, splits: None, raw_file: Path, model: Any, config: DriftloopConfig, tmp_path: Path
) -> None:
    fresh = pickle.dumps(model, protocol=4)  # bytes no worker has cached yet
    done = run(spark, raw_file, champion_folder(tmp_path / "models", fresh), config, tmp_path / "o")
    assert 1 <= done.loads <= done.workers < done.files


@pytest.mark.slow
def test_stage_command_writes_the_output_columns_and_metrics(
    spark: Any, raw_file: Path, champion: Path, tmp_path: Path
) -> None:
    out, metrics = tmp_path / "predictions", tmp_path / "metrics.json"
    args = ["batch-predict", "--params", str(ROOT / "params.yaml"), "--input", str(raw_file)]
    args += ["--champion", str(champion), "--out", str(out), "--metrics", str(metrics)]
    assert cli.main(args) == 0
    schema = parquet.read_table(out).schema
    assert [(f.name, str(f.type)) for f in schema] == [
        ("id", "int64"),
        ("timestamp", "timestamp[us]"),
        ("y_pred", "int64"),
        ("y_pred_proba", "double"),
        ("model_digest", "string"),
    ]
    assert json.loads(metrics.read_text()) == {
        "rows": ROWS,
        "model_digest": load_champion(champion).digest,
        "columns": schema.names,
    }


@pytest.mark.slow
def test_missing_input_column_fails_and_keeps_the_last_output(
    spark: Any,
    raw_file: Path,
    champion: Path,
    config: DriftloopConfig,
    raw: pd.DataFrame,
    tmp_path: Path,
) -> None:
    run(spark, raw_file, champion, config, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    data = copy.deepcopy(config.data)
    del data.schema["driver_tenure"]
    broken = tmp_path / "broken.parquet"
    parquet.write_table(data_core.to_arrow(raw.drop(columns=["driver_tenure"]), data), broken, 1000)
    with pytest.raises(DataError, match=f"{broken}: missing input column\\(s\\) driver_tenure"):
        run(spark, broken, champion, config, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


# --- without Spark ------------------------------------------------------------------------


def test_missing_champion_names_the_model_file(tmp_path: Path) -> None:
    with pytest.raises(DriftloopError, match=f"no champion model at {tmp_path}/champion/model.pkl"):
        champion_core.load_champion(tmp_path / "champion")


def test_stage_command_without_champion_is_one_error(raw_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions"
    out.mkdir()
    (out / "part-00000.parquet").write_bytes(b"old")
    args = ["batch-predict", "--params", str(ROOT / "params.yaml"), "--input", str(raw_file)]
    args += ["--champion", str(tmp_path / "none"), "--out", str(out)]
    assert cli.main([*args, "--metrics", str(tmp_path / "m.json")]) == 1
    assert (out / "part-00000.parquet").read_bytes() == b"old"
    assert not (tmp_path / "m.json").exists()


def test_check_input_names_missing_and_mistyped_columns() -> None:
    schema = pa.schema([("id", pa.int64()), ("car_value", pa.string())])
    needed = {"id": ColumnType.int, "car_value": ColumnType.float, "loan_length": ColumnType.float}
    with pytest.raises(DataError, match=r"^in.parquet: missing input column\(s\) loan_length$"):
        scoring_core.check_input(schema, needed, "in.parquet")
    del needed["loan_length"]
    with pytest.raises(DataError, match=r"column 'car_value' is string, data\.schema says float"):
        scoring_core.check_input(schema, needed, "in.parquet")


def test_predictor_columns_types_and_nulls() -> None:
    table = pa.table(
        {
            "n": pa.array([1, None, 3], pa.int64()),
            "b": pa.array([True, None, False]),
            "s": pa.array(["a", None, "c"]),
        }
    )
    types = {"n": ColumnType.int, "b": ColumnType.bool, "s": ColumnType.string}
    out = scoring_core.predictor_columns(table, types)
    np.testing.assert_array_equal(out["n"], [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(out["b"], [1.0, np.nan, 0.0])
    assert out["n"].dtype == np.float64 and out["s"].dtype == object
    assert out["s"][0] == "a" and np.isnan(out["s"][1])


def test_multiclass_gets_one_probability_column_per_class(config: DriftloopConfig) -> None:
    data = copy.deepcopy(config.data)
    data.problem = Problem.multiclass
    data.schema[data.columns.target] = ColumnType.string
    scores = Scores(
        np.array(["low", "high"], dtype=object),
        np.array([[0.7, 0.3], [0.2, 0.8]]),
        ["low", "high"],
    )
    predictor = type("Fitted", (), {"classes": ["low", "high"]})()
    types = scoring_core.prediction_types(data, predictor)  # type: ignore[arg-type]
    scoring: Any = type("S", (), {})()
    scoring.keep, scoring.types, scoring.digest = ["id"], types, "0123abcd"
    scoring.outputs = Outputs.of(data)
    batch = pa.record_batch({"id": pa.array([5, 6], pa.int64())})
    table = scoring_core.output_table(batch, scores, scoring)
    assert table.column_names == [
        "id",
        "y_pred",
        "y_pred_proba_low",
        "y_pred_proba_high",
        "model_digest",
    ]
    assert table.column("y_pred").to_pylist() == ["low", "high"]
    assert table.column("y_pred_proba_high").to_pylist() == [0.3, 0.8]


class Loads:
    def __init__(self) -> None:
        self.count = 0

    def add(self, value: int) -> None:
        self.count += value


def test_worker_unpickles_the_model_once_per_digest(
    config: DriftloopConfig, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring_core, "_LOADED", {})
    data = model_bytes(model)
    champion = Champion(Path("unused"), data, model, VERSION)
    scoring: Any = type("S", (), {})()
    scoring.model = type("Broadcast", (), {"value": data})()
    scoring.digest, scoring.loads, scoring.probe = champion.digest, Loads(), {}
    scoring.feature_plan, scoring.problem = plan(config.features, config.data), Problem.binary
    first = scoring_core.worker_predictor(scoring)
    assert scoring_core.worker_predictor(scoring) is first
    assert scoring.loads.count == 1
    scoring.digest = "another model"
    assert scoring_core.worker_predictor(scoring) is not first
    assert scoring.loads.count == 2 and len(scoring_core._LOADED) == 1


def fail(batch: pa.RecordBatch) -> pa.Table:
    raise ValueError(f"cannot score {batch.num_rows} rows")


@pytest.mark.slow
def test_a_failing_python_task_is_one_line(spark: Any, raw_file: Path, tmp_path: Path) -> None:
    from driftloop.adapters.spark import write_splits

    frame = spark.read.parquet(str(raw_file))
    with pytest.raises(DriftloopError) as caught:
        write_splits(frame, fail, tmp_path, 1000)
    assert str(caught.value).startswith("a Spark Python task failed: ValueError: cannot score")
    assert "\n" not in str(caught.value)
