"""Judging a model on live traffic against another on the same rows.

The rows are the prediction log's: each carries the answering model's outputs
and, when a second model scored it off the answer's path, that model's
(driftloop.core.rollout). Two uses:

- a challenger against the champion: promote, reject or wait;
- after a promotion, the new champion against the previous one: roll back,
  keep watching, or end the watch.

Both compare the two models on exactly the rows both scored; once labels have
arrived, the metric of each on the same labelled rows, with a paired bootstrap
interval of the difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from driftloop.config.schema import Problem, RolloutConfig
from driftloop.core import rollout
from driftloop.core.metrics import LOWER_IS_BETTER, compute_metric
from driftloop.core.predictor import Outputs

PROMOTE, REJECT, WAIT = "promote", "reject", "wait"
ROLLBACK, KEEP, END_WATCH = "rollback", "keep", "end_watch"


@dataclass(frozen=True)
class Pairs:
    """The rows both models scored: each model's outputs, the labels where known."""

    base: pd.DataFrame  # the model judged against (the champion, or the previous one)
    new: pd.DataFrame  # the model on trial (the challenger, or the new champion)
    label: pd.Series  # NaN where the label has not arrived
    base_ms: np.ndarray
    new_ms: np.ndarray
    errors: int  # rows the model on trial failed to score
    skipped: int  # rows it was too far behind to score


@dataclass(frozen=True)
class Evidence:
    base: str
    new: str
    rows: int
    labelled: int
    errors: int
    skipped: int
    agreement: float | None
    score_shift: float | None  # mean |new - base| of the score
    score_ks: float | None  # Kolmogorov-Smirnov statistic between the two score distributions
    latency_ratio: float | None  # scoring time per row, new over base
    metric: str
    base_metric: float | None
    new_metric: float | None
    # new minus base, signed so that positive means the new model is better
    difference: float | None
    interval: tuple[float, float] | None
    days: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def error_share(self) -> float:
        scored = self.rows + self.errors
        return self.errors / scored if scored else 0.0


@dataclass(frozen=True)
class Verdict:
    action: str
    reason: str


# --- the rows -----------------------------------------------------------------------


def pairs(frame: pd.DataFrame, base: str, new: str, outputs: Outputs, target: str | None) -> Pairs:
    """The logged rows on which ``base`` and ``new`` both scored, each model's
    outputs side by side (whichever of them answered)."""
    answered = frame["model_version"].astype("string")
    second = frame[rollout.SHADOW_VERSION].astype("string")
    status = frame[rollout.SHADOW_STATUS].astype("string")
    both = ((answered == base) & (second == new)) | ((answered == new) & (second == base))
    both = both.fillna(False)
    errors = int((both & (status == rollout.ERROR) & (second == new)).fillna(False).sum())
    skipped = int((both & (status == rollout.SKIPPED)).fillna(False).sum())
    rows = frame[both & (status == rollout.OK).fillna(False)]
    new_answered = (rows["model_version"].astype("string") == new).to_numpy()
    columns = [c for c in rows.columns if rollout.shadow_column(c) in rows.columns]
    answer = rows[columns].reset_index(drop=True)
    shadow = rows[[rollout.shadow_column(c) for c in columns]].set_axis(columns, axis=1)
    shadow = shadow.reset_index(drop=True)
    mask = pd.Series(new_answered)
    base_out = answer.where(~mask, shadow, axis=0)
    new_out = answer.where(mask, shadow, axis=0)
    model_ms = rows[rollout.MODEL_MS].to_numpy(dtype="float64")
    shadow_ms = rows[rollout.SHADOW_MS].to_numpy(dtype="float64")
    label = rows[target] if target and target in rows else pd.Series(np.nan, index=rows.index)
    return Pairs(
        base_out,
        new_out,
        label.reset_index(drop=True),
        np.where(new_answered, shadow_ms, model_ms),
        np.where(new_answered, model_ms, shadow_ms),
        errors,
        skipped,
    )


def score_matrix(
    frame: pd.DataFrame, outputs: Outputs, classes: list[Any], prefix: str = ""
) -> np.ndarray:
    """The model outputs the metrics take: class probabilities (classification)
    or predictions (regression), from logged output columns."""
    if outputs.problem is Problem.regression:
        return frame[prefix + outputs.label].to_numpy(dtype="float64")
    if outputs.problem is Problem.binary:
        proba = frame[prefix + outputs.proba].to_numpy(dtype="float64")
        return np.column_stack([1 - proba, proba])
    names = [prefix + c for c in outputs.class_columns(classes)]
    return frame[names].to_numpy(dtype="float64")


# --- the evidence ---------------------------------------------------------------------


def evidence(
    found: Pairs,
    names: tuple[str, str],
    outputs: Outputs,
    classes: list[Any],
    metric: str,
    rules: RolloutConfig,
    days: float,
) -> Evidence:
    base = score_matrix(found.base, outputs, classes)
    new = score_matrix(found.new, outputs, classes)
    labelled = found.label.notna().to_numpy()
    compared = _compare(found, outputs, base, new)
    measured = (
        _paired(
            found.label[labelled], base[labelled], new[labelled], outputs, classes, metric, rules
        )
        if labelled.sum() >= 2
        else (None, None, None, None)
    )
    return Evidence(
        names[0],
        names[1],
        len(found.label),
        int(labelled.sum()),
        found.errors,
        found.skipped,
        *compared,
        metric,
        *measured,
        round(days, 4),
    )


def _compare(
    found: Pairs, outputs: Outputs, base: np.ndarray, new: np.ndarray
) -> tuple[float | None, float | None, float | None, float | None]:
    """Agreement, score shift, score KS and latency ratio on the rows both scored."""
    if len(base) == 0:
        return None, None, None, None
    if outputs.problem is Problem.regression:
        scale = np.maximum(np.abs(base), 1e-9)
        agreement = float(np.mean(np.abs(new - base) <= 0.1 * scale))
        one, two = base, new
    else:
        agreement = float(np.mean(base.argmax(axis=1) == new.argmax(axis=1)))
        one, two = base.max(axis=1), new.max(axis=1)
        if outputs.problem is Problem.binary:
            one, two = base[:, 1], new[:, 1]
    shift = float(np.mean(np.abs(two - one)))
    ks = float(stats.ks_2samp(one, two).statistic)
    spent = float(np.sum(found.base_ms))
    ratio = float(np.sum(found.new_ms)) / spent if spent > 0 else None
    return round(agreement, 6), round(shift, 6), round(ks, 6), _round(ratio)


def _paired(
    label: pd.Series,
    base: np.ndarray,
    new: np.ndarray,
    outputs: Outputs,
    classes: list[Any],
    metric: str,
    rules: RolloutConfig,
) -> tuple[float | None, float | None, float | None, tuple[float, float] | None]:
    """Each model's metric on the same labelled rows, and a paired bootstrap
    interval of the difference (rows drawn once per replicate, for both)."""
    y = label.to_numpy()
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0

    def score(rows: np.ndarray, out: np.ndarray) -> float:
        return compute_metric(outputs.problem, metric, y[rows], out[rows], classes)

    everything = np.arange(len(y))
    try:
        one, two = score(everything, base), score(everything, new)
    except ValueError:  # one class only among the labels: the metric is undefined
        return None, None, None, None
    rng = np.random.default_rng(rules.seed)
    draws = []
    for _ in range(rules.bootstrap):
        rows = rng.integers(0, len(y), len(y))
        try:
            draws.append(sign * (score(rows, new) - score(rows, base)))
        except ValueError:
            continue
    tail = 100 * (1 - rules.confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail]) if draws else (np.nan, np.nan)
    return one, two, round(sign * (two - one), 6), (round(float(low), 6), round(float(high), 6))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


# --- the decisions ------------------------------------------------------------------------


def judge_challenger(found: Evidence, rules: RolloutConfig) -> Verdict:
    """Promote, reject or wait, with the reason in one line."""
    refused = _unfit(found, rules)
    if refused is not None:
        return Verdict(REJECT, refused)
    counted = f"{found.rows} rows both scored, {found.labelled} labelled"
    late = found.days > rules.max_days
    if found.rows < rules.min_rows or found.labelled < rules.min_labelled or not found.interval:
        need = f"needs {rules.min_rows} and {rules.min_labelled}"
        if late:
            late_by = f"after {found.days:.1f} days ({counted}; {need})"
            return Verdict(REJECT, f"not enough evidence {late_by}")
        return Verdict(WAIT, f"{counted}; {need}")
    low, high = found.interval
    said = _said(found)
    if low > -rules.margin:
        return Verdict(PROMOTE, f"{said}: not worse than the champion by {rules.margin:g}")
    if high < -rules.margin:
        return Verdict(REJECT, f"{said}: worse than the champion by more than {rules.margin:g}")
    if late:
        return Verdict(REJECT, f"{said}: still undecided after {found.days:.1f} days")
    return Verdict(WAIT, f"{said}: undecided")


def _unfit(found: Evidence, rules: RolloutConfig) -> str | None:
    """Why the challenger is refused whatever its metric: failures, slowness,
    or answers too unlike the champion's (the last two once min_rows are in)."""
    if found.error_share > rules.max_error_share:
        share, limit = 100 * found.error_share, 100 * rules.max_error_share
        return f"it failed on {share:.2f} % of the rows (at most {limit:g} %)"
    if found.rows < rules.min_rows:
        return None
    if found.latency_ratio is not None and found.latency_ratio > rules.max_latency_ratio:
        limit = rules.max_latency_ratio
        return f"it scores {found.latency_ratio:.2f}x slower than the champion (at most {limit:g}x)"
    if found.agreement is not None and found.agreement < rules.min_agreement:
        share, limit = 100 * found.agreement, 100 * rules.min_agreement
        return f"it agrees with the champion on {share:.1f} % of the rows (at least {limit:g} %)"
    return None


def judge_watch(found: Evidence, rules: RolloutConfig) -> Verdict:
    """After a promotion: roll back, keep watching, or end the watch."""
    counted = f"{found.rows} rows both scored, {found.labelled} labelled"
    worse = (
        found.labelled >= rules.min_labelled
        and found.interval is not None
        and found.difference is not None
        and found.difference < -rules.rollback_margin
        and found.interval[1] < 0
    )
    if worse:
        why = f"worse than the previous one by more than {rules.rollback_margin:g}"
        return Verdict(ROLLBACK, f"{_said(found)}: the new champion is {why}")
    if found.days > rules.watch_days:
        return Verdict(END_WATCH, f"watched {found.days:.1f} days ({counted}): no rollback")
    return Verdict(KEEP, f"watching, day {found.days:.1f} of {rules.watch_days:g} ({counted})")


def _said(found: Evidence) -> str:
    assert found.interval is not None
    low, high = found.interval
    return (
        f"{found.metric} {found.new_metric} vs {found.base_metric} on the same rows, "
        f"difference {found.difference:+.4f} [{low:+.4f}, {high:+.4f}], "
        f"{found.rows} rows both scored, {found.labelled} labelled"
    )
