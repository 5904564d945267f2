"""The model gate: each rule of conf/evaluate judged on evaluate's report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftloop.config.schema import EvaluateConfig
from driftloop.core.metrics import LOWER_IS_BETTER  # moved


@dataclass(frozen=True)
class Verdict:
    rule: str
    value: float | None
    limit: float
    passed: bool

    @property
    def margin(self) -> float | None:
        return None if self.value is None else round(self.value - self.limit, 6)


def judge(report: dict[str, Any], rules: EvaluateConfig) -> list[Verdict]:
    """Every rule's verdict; the first model (no champion) skips regressions."""
    verdicts: list[Verdict] = []
    candidate, champion = report["candidate"], report.get("champion")
    for rule in rules.rules:
        value = candidate.get(rule.metric)
        lower = rule.metric in LOWER_IS_BETTER
        if rule.min is not None:
            verdicts.append(
                _bound(
                    f"{rule.metric} {'<=' if lower else '>='} {rule.min}", value, rule.min, lower
                )
            )
        if rule.max_regression is not None and champion and rule.metric in champion:
            base = champion[rule.metric]
            limit = base + rule.max_regression if lower else base - rule.max_regression
            verdicts.append(_bound(f"{rule.metric} vs champion {base:.4f}", value, limit, lower))
        for column in rules.required_slices:
            for name, metrics in report.get("slices", {}).get(column, {}).items():
                if rule.min is not None:
                    verdicts.append(
                        _bound(
                            f"{rule.metric} on {column}={name}",
                            metrics.get(rule.metric),
                            rule.min,
                            lower,
                        )
                    )
    verdicts.extend(
        Verdict(c["check"], c["value"], c["limit"], c["passed"])
        for c in report.get("behaviour", [])
    )
    gate = report.get("predictions_gate", {"success": True})
    verdicts.append(Verdict("predictions suite", None, 0.0, bool(gate["success"])))
    return verdicts


def _bound(name: str, value: float | None, limit: float, lower_is_better: bool) -> Verdict:
    if value is None:
        return Verdict(name, None, limit, False)
    passed = value <= limit if lower_is_better else value >= limit
    return Verdict(name, value, limit, passed)


def table(verdicts: list[Verdict]) -> str:
    """A short table: rule, value, limit, margin, result."""
    rows = [f"{'rule':40} {'value':>9} {'limit':>9} {'margin':>9}  result"]
    for v in verdicts:
        value = "-" if v.value is None else f"{v.value:.4f}"
        margin = "-" if v.margin is None else f"{v.margin:+.4f}"
        rows.append(
            f"{v.rule:40} {value:>9} {v.limit:>9.4f} {margin:>9}  {'pass' if v.passed else 'FAIL'}"
        )
    return "\n".join(rows)
