"""`driftloop report --base REV`: one markdown document for a pull request.

It compares the working tree (or ``--head REV``) with the base revision:
params that changed (`dvc params diff`), metrics with old value, new value
and change (`dvc metrics diff`), the data gate's result, the model gate's
verdict rule by rule, the latest drift decision, the DVC-tracked outputs that
changed (`dvc diff`) and the plots of both revisions in one HTML file
(`dvc plots diff`). Params, metrics and plot data are committed in git; the
output hashes compare through the DVC cache, so a fresh clone needs `dvc pull`
(or `dvc fetch`) for that part. What cannot be compared is listed with the
reason, never silently left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from driftloop.config.compose import find_root
from driftloop.controller import loop, rollout
from driftloop.controller.datasets import composed_for
from driftloop.controller.workspace import Paths
from driftloop.core import runner
from driftloop.core.champion import ROLES, role_version
from driftloop.core.drift import DriftRecord
from driftloop.core.gate import judge
from driftloop.core.outputs import atomic_file, read_json
from driftloop.errors import DriftloopError

DATA_GATE = "metrics/data_validation.json"
EVALUATION = "metrics/eval.json"
DRIFT = "metrics/drift.json"


@dataclass
class Report:
    """The sections, and what could not be compared (with why)."""

    base: str
    head: str
    lines: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def section(self, title: str, body: list[str]) -> None:
        self.lines += ["", f"## {title}", "", *body]


# --- core: markdown from what the commands returned -----------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def params_table(diff: dict[str, Any]) -> list[str]:
    rows = [
        f"| `{name}` | {_cell(change.get('old'))} | {_cell(change.get('new'))} |"
        for changes in diff.values()
        for name, change in sorted(changes.items())
        if name != "conf_digest"
    ]
    if not rows:
        return ["No params changed."]
    return ["| param | base | this change |", "|---|---|---|", *rows]


def metrics_table(diff: dict[str, Any]) -> list[str]:
    rows = []
    for path, changes in sorted(diff.items()):
        for name, change in sorted(changes.items()):
            old, new = change.get("old"), change.get("new")
            rows.append(
                f"| {path} | `{name}` | {_cell(old)} | {_cell(new)} | {_change(old, new)} |"
            )
    if not rows:
        return ["No metrics changed."]
    return ["| file | metric | base | this change | change |", "|---|---|---|---|---|", *rows]


def _change(old: Any, new: Any) -> str:
    if isinstance(old, int | float) and isinstance(new, int | float) and not isinstance(old, bool):
        diff = new - old
        relative = f" ({diff / old * 100:+.2f} %)" if old else ""
        return f"{diff:+.6g}{relative}"
    return "-" if old == new else "changed"


def data_gate_lines(result: dict[str, Any] | None, base: dict[str, Any] | None) -> list[str]:
    if result is None:
        return ["The data gate has not run in this change (no " + DATA_GATE + ")."]
    verdict = "passed" if result.get("success") else "FAILED"
    lines = [f"**{verdict}**: {result.get('evaluated')} expectations evaluated."]
    lines += [f"- failed: `{_cell(item)}`" for item in result.get("failed", [])]
    if base is not None and bool(base.get("success")) != bool(result.get("success")):
        lines.append(f"(The base {'passed' if base.get('success') else 'failed'} the gate.)")
    return lines


def model_gate_lines(evaluation: dict[str, Any] | None, config: Any) -> list[str]:
    if evaluation is None:
        return ["The model has not been evaluated in this change (no " + EVALUATION + ")."]
    verdicts = judge(evaluation, config.evaluate)
    passed = all(v.passed for v in verdicts)
    strategy = config.rollout.strategy.value
    role = "the champion" if strategy == "direct" else f"the challenger ({strategy})"
    head = (
        f"**passes**: promote makes the candidate {role} (the first model of a data set: "
        "the champion)"
        if passed
        else "**refused**: the champion stays"
    )
    rows = [
        f"| {_cell(v.rule)} | {_cell(v.value)} | {_cell(v.limit)} | {_cell(v.margin)} "
        f"| {'pass' if v.passed else 'FAIL'} |"
        for v in verdicts
    ]
    return [head, "", "| rule | value | limit | margin | result |", "|---|---|---|---|---|", *rows]


def rollout_lines(root: Path, config: Any) -> list[str]:
    """Who serves, who is on trial or watched, and the last rollout verdict."""
    paths = Paths.of(root, config)
    roles = {role: role_version(paths.models, role) for role in ROLES}
    lines = [
        f"Strategy **{config.rollout.strategy.value}**, approval {config.rollout.approval.value}.",
        "",
        "| role | version |",
        "|---|---|",
        *[f"| {role} | {version or '-'} |" for role, version in roles.items()],
    ]
    last = loop.last_decision(rollout.decisions(paths))
    if last is not None:
        lines += [
            "",
            f"Last verdict ({last['at']}, {last['kind']}): **{last['verdict']}**, "
            f"{last['reason']}. Evidence: `{rollout.report(paths).relative_to(root)}`.",
        ]
    return lines


def drift_lines(drift: DriftRecord | None, base: DriftRecord | None) -> list[str]:
    if drift is None:
        return ["No monitoring decision yet (no " + DRIFT + ")."]
    text = drift.text()
    lines = [text[:1].upper() + text[1:] + "."]
    lines += [f"- alert: {_cell(alert)}" for alert in drift.alerts]
    if base is not None and base.action != drift.action:
        lines.append(
            f"(The base decided {base.action} on batch {base.batch}, "
            f"{base.deviation_percent:.2f} %.)"
        )
    return lines


def drift_at(root: Path, rev: str | None) -> DriftRecord | None:
    found = at_revision(root, rev, DRIFT)
    return None if found is None else DriftRecord.from_json(found)


def outputs_lines(diff: dict[str, Any]) -> list[str]:
    """Changed outputs; ones missing from the cache are unknown, not deleted."""
    unknown = {entry.get("path") for entry in diff.get("not in cache", [])}
    rows = [
        f"| {kind} | `{entry.get('path')}` |"
        for kind in ("added", "modified", "deleted", "renamed")
        for entry in diff.get(kind, [])
        if entry.get("path") not in unknown
    ]
    if not rows:
        return [
            "No DVC-tracked data or model changed"
            + (" (of those in the cache)." if unknown else ".")
        ]
    return ["| change | output |", "|---|---|", *rows]


def not_in_cache(diff: dict[str, Any]) -> list[str]:
    paths = sorted(str(entry.get("path")) for entry in diff.get("not in cache", []))
    if not paths:
        return []
    return [
        f"data and models: {len(paths)} output(s) are not in this clone's DVC cache, so "
        f"their change is unknown ({', '.join(paths)}): `dvc pull` brings this revision's "
        "outputs, `dvc fetch --all-commits` the base's too"
    ]


def plots_lines(changed: list[str], html: Path | None, out: Path) -> list[str]:
    if not changed:
        return ["No plot data changed."]
    lines = [f"- `{name}`" for name in changed]
    if html is not None:
        lines.append(f"\nBoth revisions' plots, side by side: `{html.relative_to(out.parent)}`")
    return lines


# --- reading both revisions -------------------------------------------------------------


def command(args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=root, capture_output=True, text=True, check=False)


def _reason(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    found = errors or lines
    return found[0].strip() if found else f"exit code {done.returncode}"


def dvc_json(report: Report, args: list[str], root: Path, what: str) -> dict[str, Any] | None:
    done = command(["dvc", *args, "--json"], root)
    if done.returncode != 0:
        report.missing.append(f"{what}: `dvc {' '.join(args)}` failed: {_reason(done)}")
        return None
    result: dict[str, Any] = json.loads(done.stdout or "{}")
    return result


def revisions(base: str, head: str | None) -> list[str]:
    return [base] if head is None else [base, head]


def data_set_lines(root: Path, base: str, head: str | None, composed: str) -> list[str]:
    """Which data set each side is composed for; a warning when they differ."""
    theirs = command(["git", "show", f"{base}:params.yaml"], root)
    base_set = yaml.safe_load(theirs.stdout)["data"]["name"] if theirs.returncode == 0 else None
    head_set: str | None = composed
    if head is not None:
        ours = command(["git", "show", f"{head}:params.yaml"], root)
        head_set = yaml.safe_load(ours.stdout)["data"]["name"] if ours.returncode == 0 else None
    lines = ["", f"Data set: {head_set} (base: {base_set})."]
    if base_set != head_set:
        lines.append("**The two sides are different data sets**: their metrics are not comparable.")
    return lines


def at_revision(root: Path, rev: str | None, path: str) -> dict[str, Any] | None:
    """A committed JSON file at a revision (None: the working tree), or None if absent."""
    if rev is None:
        found: dict[str, Any] | None = read_json(root / path)
        return found
    done = command(["git", "show", f"{rev}:{path}"], root)
    return json.loads(done.stdout) if done.returncode == 0 else None


def resolve(root: Path, rev: str) -> str:
    done = command(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root)
    if done.returncode != 0:
        raise DriftloopError(f"--base {rev}: not a commit of the repository at {root}")
    return done.stdout.strip()


def changed_plots(root: Path, base: str, head: str | None) -> list[str]:
    """Plot data files (dvc.yaml's plots) that differ between the revisions."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    sources = {
        file
        for stage in spec.get("stages", {}).values()
        for entry in stage.get("plots", [])
        for file in ([entry] if isinstance(entry, str) else list(entry))
    }
    done = command(
        ["git", "diff", "--name-only", *revisions(base, head), "--", *sorted(sources)], root
    )
    return sorted(done.stdout.split())


def render_plots(report: Report, root: Path, out: Path, base: str, head: str | None) -> Path | None:
    folder = out.parent / "plots"
    folder.parent.mkdir(parents=True, exist_ok=True)  # dvc writes the folder, not its parents
    done = command(["dvc", "plots", "diff", *revisions(base, head), "-o", str(folder)], root)
    if done.returncode != 0:
        report.missing.append(f"plots: `dvc plots diff` failed: {_reason(done)}")
        return None
    return folder / "index.html"


def build(root: Path, params: Path, base: str, head: str | None, out: Path) -> Report:
    config = runner.load_params(params)
    sha = resolve(root, base)
    report = Report(base=f"{base} ({sha[:8]})", head=head or "the working tree")
    report.lines = [f"# driftloop review: {report.head} against {report.base}"]
    report.lines += data_set_lines(root, base, head, config.data.name)
    diff = dvc_json(report, ["params", "diff", *revisions(base, head)], root, "params")
    report.section("Params", params_table(diff) if diff is not None else ["Not compared."])
    diff = dvc_json(report, ["metrics", "diff", *revisions(base, head)], root, "metrics")
    report.section("Metrics", metrics_table(diff) if diff is not None else ["Not compared."])
    report.section(
        "Data gate",
        data_gate_lines(at_revision(root, head, DATA_GATE), at_revision(root, base, DATA_GATE)),
    )
    report.section("Model gate", model_gate_lines(at_revision(root, head, EVALUATION), config))
    report.section("Rollout", rollout_lines(root, config))
    report.section("Drift", drift_lines(drift_at(root, head), drift_at(root, base)))
    outputs = dvc_json(report, ["diff", *revisions(base, head)], root, "data and models")
    report.missing += not_in_cache(outputs or {})
    report.section(
        "Data and models",
        outputs_lines(outputs) if outputs is not None else ["Not compared (see below)."],
    )
    changed = changed_plots(root, base, head)
    html = render_plots(report, root, out, base, head) if changed else None
    report.section("Plots", plots_lines(changed, html, out))
    report.section(
        "Not compared", [f"- {item}" for item in report.missing] or ["Everything was compared."]
    )
    return report


# --- wrapper -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, help="the revision to compare with, e.g. main")
    parser.add_argument("--head", help="a revision instead of the working tree")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("reports/review/report.md"))
    parser.add_argument(
        "--data",
        metavar="NAME",
        help="the working tree composed for this data set for the report (default: as it is)",
    )


def main(args: argparse.Namespace) -> None:
    root = find_root(args.params.resolve().parent)
    project = runner.load_params(args.params).data.name
    with runner.timed("report") as say, composed_for(root, args.data or project, project):
        report = build(root, args.params, args.base, args.head, args.out)
        with atomic_file(args.out) as tmp:
            tmp.write_text("\n".join(report.lines) + "\n")
        say(f"{args.out}: {report.head} against {report.base}, {len(report.missing)} not compared")
