"""monitor: how far the champion has drifted, and what the policy says to do.

The signals come from NannyML (``driftloop.adapters.nml``) as one long table:
one row per chunk and measured thing. The decision is pure: the deviation
is the relative drop (in %) of the primary metric from the reference
period, realised where labels exist and estimated otherwise; the band of
conf/monitor that holds it names the action. Data drift or data-quality
alerts with no performance drop still warn.
"""

from __future__ import annotations

import argparse
import html
from pathlib import Path

from threadpoolctl import threadpool_limits

from driftloop.adapters import nml
from driftloop.core import runner
from driftloop.core.champion import load_champion
from driftloop.core.drift import (
    Decision,
    DriftRecord,
    decide,
    nothing_monitored,
    primary_by_chunk,
    summary,
)
from driftloop.core.model import read_features
from driftloop.core.monitoring import (
    frames_spec,
    recent_batches,
    run_signals,
    scored,
)
from driftloop.core.outputs import atomic_dir, atomic_file, write_json
from driftloop.core.plan import plan
from driftloop.core.predictor import Outputs, Predictor, input_columns


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--holdout", type=Path, required=True, help="the reference period")
    parser.add_argument("--champion", type=Path, required=True, help="champion model folder")
    parser.add_argument("--incoming", type=Path, required=True, help="production batches")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics/drift.json")
    parser.add_argument("--plots", type=Path, required=True, help="per-chunk signal CSVs")
    parser.add_argument("--report", type=Path, required=True, help="self-contained HTML")


def main(args: argparse.Namespace) -> None:
    config = runner.params(args.params)
    with runner.timed("monitor") as say:
        champion = load_champion(args.champion)
        predictor = Predictor(
            champion.model, plan(config.features, config.data), config.data.problem
        )
        outputs = Outputs.of(config.data)
        keep = [*outputs.names(predictor.classes), "model_version"]
        found = recent_batches(args.incoming, config.data, config.monitor.analysis_batches, keep)
        if found is None:
            write_nothing(args)
            say(f"no production batch under {args.incoming}: nothing to monitor (action none)")
            return
        batches, analysis = found
        names = input_columns(config.data, predictor.plan)
        say.step(f"scoring the reference and {', '.join(batches)} with the champion")
        with threadpool_limits(config.monitor.model_threads):
            holdout = read_features(args.holdout, None)
            reference = scored(holdout, predictor, outputs, names, config)
            analysis = scored(analysis, predictor, outputs, names, config, champion.version)
        say.step(f"NannyML on {len(analysis)} rows: drift, domain classifier, performance")
        signals = run_signals(
            config, reference, analysis, frames_spec(config, outputs, predictor.classes)
        )
        monitor_cfg = config.monitor
        decision = decide(
            signals.table, monitor_cfg.primary_metric, monitor_cfg.bands, monitor_cfg.min_chunk_rows
        )
        say.step("writing metrics, per-chunk plots and the HTML report")
        write_outputs(args, batches, decision, signals)
        for each in decision.evidence:
            say(
                f"{', '.join(batches)}: {each.basis} {each.metric} {each.current:.4f} "
                f"vs {each.reference:.4f} ({each.deviation:.2f} % drop)"
            )
        say(f"deviation {decision.deviation:.2f} % -> {decision.action}")


def write_outputs(
    args: argparse.Namespace, batches: list[str], decision: Decision, signals: nml.Signals
) -> None:
    record = summary(batches, decision, signals.table)
    with atomic_dir(args.plots) as folder:
        for name, rows in signals.table.groupby("signal"):
            columns = [
                "key",
                "period",
                "column",
                "measure",
                "value",
                "lower_threshold",
                "upper_threshold",
                "alert",
            ]
            rows[columns].to_csv(folder / f"{name}.csv", index=False, float_format="%.6g")
        primary_by_chunk(signals.table, decision.primary.metric).to_csv(
            folder / "primary.csv", index=False, float_format="%.6g"
        )
    figures = {name: result.plot() for name, result in signals.figures.items()}
    with atomic_file(args.report) as tmp:
        nml.write_report(
            tmp,
            f"Monitoring: {', '.join(batches)}",
            [("Decision", _decision_html(record))],
            figures,
        )
    write_json(args.metrics, record.to_json())


def write_nothing(args: argparse.Namespace) -> None:
    """Outputs that say there was nothing to monitor (a data set with no batches yet)."""
    reason = f"no production batch under {args.incoming}"
    with atomic_dir(args.plots):
        pass
    with atomic_file(args.report) as tmp:
        nml.write_report(tmp, "Monitoring", [("Decision", f"<p>none: {reason}</p>")], {})
    write_json(args.metrics, nothing_monitored(reason).to_json())


def _decision_html(record: DriftRecord) -> str:
    found = record.primary
    assert found is not None
    alerts = "".join(f"<li>{html.escape(a)}</li>" for a in record.alerts) or "<li>none</li>"
    return (
        f"<p><b>{html.escape(record.action)}</b>: {found.basis} {found.metric} "
        f"{found.current} against {found.reference} in the reference period, "
        f"a drop of {record.deviation_percent:.2f} %.</p><p>Data alerts:</p><ul>{alerts}</ul>"
    )
