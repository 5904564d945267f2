"""What the compilers refuse: those parts go through scikit-learn unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from driftloop.core.fastpath import compile_forest, compile_prep, model_columns, run_blocks

FRAME = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "x", "z"]})


def test_known_parts_compile_and_match() -> None:
    prep = ColumnTransformer(
        [("num", StandardScaler(), ["a"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["b"])],
        sparse_threshold=0.0,
    ).fit(FRAME)
    blocks = compile_prep(prep)
    assert blocks is not None
    columns = {"a": np.array([2.0, 9.0]), "b": np.array(["z", "new"], dtype=object)}
    got = run_blocks(blocks, columns, 2)
    assert np.array_equal(got, prep.transform(pd.DataFrame(columns)))
    assert model_columns(prep) == (["a"], ["b"])


def test_unknown_transformers_and_remainders_are_refused() -> None:
    other = ColumnTransformer([("num", MinMaxScaler(), ["a"])]).fit(FRAME)
    assert compile_prep(other) is None
    passthrough = ColumnTransformer(
        [("num", StandardScaler(), ["a"])], remainder="passthrough"
    ).fit(FRAME[["a"]].assign(c=1.0))
    assert compile_prep(passthrough) is None
    assert compile_prep(None) is None


def test_categorical_splits_are_left_to_scikit_learn() -> None:
    x = pd.DataFrame({"a": [0, 1, 2, 0, 1, 2] * 20, "b": np.arange(120.0)})
    y = (x["a"] == 1).astype(int)
    native = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(x, y)
    assert compile_forest(native) is None
    values = x.to_numpy(dtype="float64")
    plain = HistGradientBoostingClassifier(max_iter=5).fit(values, y)
    forest = compile_forest(plain)
    assert forest is not None
    assert np.array_equal(forest.raw(values), plain._raw_predict(values))
