"""evaluate: the testing pipeline for a candidate model.

Holdout metrics by problem type, per-slice metrics, behavioural checks
(invariance and directional, declared in conf/evaluate), a Great Expectations
suite on the predictions, the same metrics for the current champion, and the
curves DVC plots renders (ROC, precision-recall, confusion, calibration).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from driftloop.config.compose import find_root
from driftloop.core import runner
from driftloop.core.evaluation import (
    SCORING_ERRORS,
    build_report,
    comparable_champion,
    curves,
    evaluate_model,
)
from driftloop.core.model import (
    columns,
    load_model,
    read_features,
)
from driftloop.core.outputs import atomic_file, write_json
from driftloop.core.promotion import adopt
from driftloop.errors import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--holdout", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="candidate model folder")
    parser.add_argument("--champion", type=Path, required=True, help="current champion folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="folder for plot data")


def main(args: argparse.Namespace) -> None:
    config = runner.params(args.params)
    cols = columns(config)
    with runner.timed("evaluate") as say:
        model = load_model(args.model)
        if model is None:
            raise DataError(f"{args.model}: no candidate model (run the train stage)")
        frame = read_features(args.holdout, None)
        say.step(f"scoring the candidate on {len(frame)} holdout rows, slices and checks")
        try:
            result = evaluate_model(model, frame, config, cols)
        except SCORING_ERRORS as exc:
            raise DataError(
                f"{args.model}: the candidate cannot score the holdout {args.holdout} "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        say.step("the prediction suite and the champion on the same rows")
        adopt(config, find_root(args.params.resolve().parent), args.champion.parent)
        champion = comparable_champion(args.champion, config)
        report = build_report(model, frame, config, cols, result, champion)
        for name, table in curves(
            result["y"], result["out"], result["classes"], config.evaluate.calibration_bins
        ).items():
            with atomic_file(args.plots / f"{name}.csv") as tmp:
                table.to_csv(tmp, index=False)
        write_json(args.metrics, report)
        primary = config.evaluate.primary_metric
        say(f"candidate {primary} {report['candidate'].get(primary)} on {len(frame)} holdout rows")
        held = report["champion"]
        say(f"champion {primary} {held.get(primary) if held else 'none yet'}")
