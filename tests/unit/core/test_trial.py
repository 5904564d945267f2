"""Judging a model on live rows: the pairing of logged outputs, the paired
evidence, and the promote / reject / wait and rollback verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from driftloop.config.schema import Problem, RolloutConfig
from driftloop.core import rollout, trial
from driftloop.core.predictor import Outputs

OUT = Outputs(Problem.binary, "prediction", "prediction_proba")
RULES = RolloutConfig(min_rows=500, min_labelled=300, bootstrap=200)


def scores(y: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities that rank the positives higher the more ``skill``."""
    logit = skill * (2 * y - 1) + rng.normal(0, 1, len(y))
    return np.asarray(1 / (1 + np.exp(-logit)))


def logged(
    n: int, champion: float, challenger: float, canary: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    """A prediction log of v1 (champion) with v2 scoring beside it; a ``canary``
    share of the rows answered by v2 with v1 in shadow; labels on every row."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    one, two = scores(y, champion, rng), scores(y, challenger, rng)
    by_two = rng.random(n) < canary
    answer, shadow = np.where(by_two, two, one), np.where(by_two, one, two)
    return pd.DataFrame(
        {
            "model_version": np.where(by_two, "2", "1"),
            rollout.ROLE: np.where(by_two, "challenger", "champion"),
            rollout.SHADOW_VERSION: np.where(by_two, "1", "2"),
            rollout.SHADOW_STATUS: rollout.OK,
            rollout.MODEL_MS: 0.01,
            rollout.SHADOW_MS: 0.02,
            "prediction": (answer >= 0.5).astype(int),
            "prediction_proba": answer,
            rollout.shadow_column("prediction"): (shadow >= 0.5).astype(int),
            rollout.shadow_column("prediction_proba"): shadow,
            "target": y,
        }
    )


def judged(frame: pd.DataFrame, rules: RolloutConfig = RULES, days: float = 1.0) -> trial.Evidence:
    found = trial.pairs(frame, "1", "2", OUT, "target")
    return trial.evidence(found, ("1", "2"), OUT, [0, 1], "roc_auc", rules, days)


def test_pairs_put_each_models_outputs_side_by_side_whoever_answered() -> None:
    frame = logged(2000, 1.0, 2.0, canary=0.3)
    found = trial.pairs(frame, "1", "2", OUT, "target")
    answered_by_two = (frame["model_version"] == "2").to_numpy()
    expect_new = np.where(
        answered_by_two, frame["prediction_proba"], frame[rollout.shadow_column("prediction_proba")]
    )
    np.testing.assert_allclose(found.new["prediction_proba"], expect_new)
    # the answering model's time is model_ms: v2 took 0.01 where it answered
    assert found.new_ms[answered_by_two][0] == 0.01 and found.new_ms[~answered_by_two][0] == 0.02


def test_a_better_challenger_is_promoted_with_a_paired_interval_above_zero() -> None:
    found = judged(logged(3000, 1.0, 2.0))
    assert found.rows == found.labelled == 3000
    assert found.new_metric is not None and found.base_metric is not None
    assert found.new_metric > found.base_metric
    assert found.interval is not None and found.interval[0] > 0
    assert found.latency_ratio == pytest.approx(2.0)
    verdict = trial.judge_challenger(found, RULES)
    assert verdict.action == trial.PROMOTE and "roc_auc" in verdict.reason


def test_a_worse_challenger_is_rejected() -> None:
    verdict = trial.judge_challenger(judged(logged(3000, 2.0, 0.8)), RULES)
    assert verdict.action == trial.REJECT and "worse than the champion" in verdict.reason


def test_too_little_evidence_waits_then_is_rejected_after_max_days() -> None:
    frame = logged(3000, 1.0, 2.0)
    frame.loc[200:, "target"] = np.nan  # labels of most rows not arrived
    found = judged(frame)
    assert found.labelled == 200
    assert trial.judge_challenger(found, RULES).action == trial.WAIT
    late = dataclasses.replace(found, days=RULES.max_days + 1)
    assert "not enough evidence" in trial.judge_challenger(late, RULES).reason


def test_failures_and_disagreement_reject_whatever_the_metric() -> None:
    frame = logged(3000, 1.0, 2.0)
    frame.loc[:99, rollout.SHADOW_STATUS] = rollout.ERROR
    found = judged(frame)
    assert found.errors == 100 and found.rows == 2900
    assert "failed on 3.33 %" in trial.judge_challenger(found, RULES).reason
    flipped = logged(3000, 1.0, -1.0)  # a challenger that answers the opposite
    verdict = trial.judge_challenger(judged(flipped), RULES)
    assert verdict.action == trial.REJECT and "agrees with the champion" in verdict.reason


def test_skipped_rows_are_counted_not_judged() -> None:
    frame = logged(1000, 1.0, 1.0)
    frame.loc[:49, rollout.SHADOW_STATUS] = rollout.SKIPPED
    found = judged(frame)
    assert (found.rows, found.skipped, found.errors) == (950, 50, 0)


def test_rows_of_other_versions_are_left_out() -> None:
    frame = pd.concat([logged(1000, 1.0, 1.0), logged(500, 1.0, 1.0).assign(model_version="0")])
    assert judged(frame).rows == 1000


def test_the_watch_rolls_back_a_worse_new_champion_and_ends_in_time() -> None:
    worse = judged(logged(3000, 2.0, 0.8))  # base: the previous champion; new: the champion
    assert trial.judge_watch(worse, RULES).action == trial.ROLLBACK
    same = judged(logged(3000, 1.5, 1.5))
    assert trial.judge_watch(same, RULES).action == trial.KEEP
    over = dataclasses.replace(same, days=RULES.watch_days + 0.5)
    assert trial.judge_watch(over, RULES).action == trial.END_WATCH


def test_canary_assignment_is_sticky_and_near_its_share() -> None:
    keys = [f"id-{i}" for i in range(20000)]
    chosen = [rollout.in_canary(k, 0.1) for k in keys]
    assert abs(np.mean(chosen) - 0.1) < 0.01
    assert chosen == [rollout.in_canary(k, 0.1) for k in keys]
    assert not any(rollout.in_canary(k, 0.0) for k in keys[:100])
