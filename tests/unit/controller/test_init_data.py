"""`driftloop init-data`: the profile and the configs it writes, then new data
sets onboarded with YAML only: two of NannyML's (multiclass and regression)
through the pipeline's cores, and a CSV written here through `dvc repro` to a
promoted champion."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.config.schema import ColumnType, Problem
from driftloop.controller import init_data
from driftloop.errors import ConfigError
from tests.conftest import sh


def loans(rows: int, seed: int = 0) -> pd.DataFrame:
    """A small binary data set with a learnable target, nulls and a text column."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, rows).round(2)
    region = rng.choice(["north", "south", "east", "west"], rows)
    debt = rng.uniform(0, 1, rows).round(4)
    score = (income - 50_000) / 15_000 - 2 * debt + (region == "north") + rng.normal(0, 0.5, rows)
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(1, rows + 1),
            "applied_on": pd.date_range("2024-01-01", periods=rows, freq="h").strftime(
                "%Y-%m-%d %H:%M"
            ),
            "income": income,
            "debt_ratio": debt,
            "region": region,
            "children": rng.integers(0, 4, rows),
            "note": [f"free text {i}" for i in range(rows)],
            "repaid": (score > 0).astype(int),
        }
    )
    frame.loc[rng.choice(rows, rows // 20, replace=False), "income"] = np.nan
    return frame


def args(**given: object) -> argparse.Namespace:
    defaults = {"timestamp": None, "id": None, "drop": [], "positive": None}
    return argparse.Namespace(**(defaults | given))


def test_profile_types_roles_and_problem() -> None:
    found = init_data.profile(
        loans(400), "loans", "loans.csv", "repaid", args(timestamp="applied_on")
    )
    assert found.problem is Problem.binary and found.id == "loan_id"
    assert found.schema["applied_on"] is ColumnType.timestamp
    assert found.schema["income"] is ColumnType.float and found.schema["children"] is ColumnType.int
    assert found.numeric == ["income", "debt_ratio", "children"]
    assert found.categories == {"region": ["east", "north", "south", "west"]}
    assert "note" in found.left_out  # 400 distinct texts: not a category
    document = init_data.data_yaml(found)
    assert document["optional"] == ["income"] and "note" not in document["schema"]
    gate = init_data.expectations_yaml(found)["columns"]
    assert gate["loan_id"] == {"not_null": 1.0, "unique": True}
    assert gate["income"]["not_null"] == 0.95
    assert (gate["children"]["min"], gate["children"]["max"]) == (0, 4)  # 0..3 with a margin
    low, high = found.ranges["debt_ratio"]
    margin = (high - low) * init_data.RANGE_MARGIN
    assert gate["debt_ratio"] == {"not_null": 1.0, "min": 0.0, "max": round(high + margin, 6)}


def test_problem_kinds_and_what_is_refused() -> None:
    frame = loans(300)
    frame["grade"] = frame["children"]
    frame["amount"] = frame["income"].fillna(1.0) * 3.3
    frame["y_pred"] = frame["repaid"]
    assert init_data.profile(frame, "n", "f", "grade", args()).problem is Problem.multiclass
    regression = init_data.profile(frame, "n", "f", "amount", args(drop=["children"]))
    assert regression.problem is Problem.regression
    assert regression.left_out["y_pred"] == "an earlier model's prediction"
    assert regression.left_out["children"] == "dropped (--drop)"
    assert "model=hgb_regression monitor.primary_metric=rmse" in init_data.override(regression)
    assert "monitor.chunk_period=null" in init_data.override(regression)  # no timestamp
    with pytest.raises(ConfigError, match="--positive: target 'repaid' is not two text classes"):
        init_data.profile(frame, "n", "f", "repaid", args(positive="1"))
    with pytest.raises(ConfigError, match="no id column found"):
        init_data.profile(frame.drop(columns="loan_id"), "n", "f", "repaid", args())
    with pytest.raises(ConfigError, match="--timestamp region: its values are not dates"):
        init_data.profile(frame, "n", "f", "repaid", args(timestamp="region"))
    with pytest.raises(ConfigError, match="--target nope: no such column in f"):
        init_data.profile(frame, "n", "f", "nope", args())


def test_a_text_binary_target_gets_labels() -> None:
    frame = loans(300)
    frame["answer"] = np.where(frame["repaid"] == 1, "Yes", "No")
    frame["grade"] = np.where(frame["repaid"] == 1, "good", "bad")
    found = init_data.profile(frame, "n", "f", "answer", args(drop=["repaid", "grade"]))
    assert (found.problem, found.labels) == (Problem.binary, ["No", "Yes"])
    document = init_data.data_yaml(found)
    assert document["columns"]["labels"] == ["No", "Yes"] and document["schema"]["answer"] == "int"
    assert "labels:\n  - 'No'\n  - 'Yes'" in init_data.text(found, "data", document)  # quoted
    chosen = init_data.profile(frame, "n", "f", "grade", args(positive="bad", drop=["repaid"]))
    assert chosen.labels == ["good", "bad"]
    with pytest.raises(ConfigError, match=r"two text classes \['bad', 'good'\]: .* --positive"):
        init_data.profile(frame, "n", "f", "grade", args(drop=["repaid"]))
    with pytest.raises(ConfigError, match=r"--positive fine: not a class of target 'grade'"):
        init_data.profile(frame, "n", "f", "grade", args(positive="fine", drop=["repaid"]))


def onboard(root: Path, file: Path, name: str, target: str, *extra: str) -> list[str]:
    """Run init-data in the project; the overrides it prints."""
    out = sh(
        ["driftloop", "init-data", str(file), "--name", name, "--target", target, *extra], root
    )
    line = out.stdout.strip().splitlines()[-1].split()
    assert line[:2] == ["driftloop", "compose"], out.stdout
    return line[2:]


NANNYML = {
    "regression": ("regression_synthetic", "y_true", {"rmse", "mae", "r2"}),
    "multiclass": ("mc", "y_true", {"accuracy", "log_loss", "roc_auc", "f1"}),
}
