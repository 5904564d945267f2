"""check_params: the first stage. Stops the DAG on a stale or invalid params.yaml.

DVC does not compose Hydra on `dvc repro`, so after an edit of conf/ the
composed params.yaml would silently be old. This stage depends on conf/ and
fails with the command that fixes it; its output is constant, so a passing
check never re-runs anything downstream.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from driftloop.core import runner
from driftloop.core.outputs import atomic_file

OK_TEXT = "params.yaml matches conf/\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="marker file for downstream")


def main(args: argparse.Namespace) -> None:
    with runner.timed("check_params") as say:
        runner.params(args.params)
        with atomic_file(args.out) as tmp:
            tmp.write_text(OK_TEXT)
        say("params.yaml is valid and matches conf/")
