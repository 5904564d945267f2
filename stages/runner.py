"""What every stage wrapper shares: logging, typed params, one-line errors."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stages.config.compose import check_fresh, find_root, load
from stages.config.schema import DriftloopConfig
from stages.errors import DriftloopError

log = logging.getLogger("driftloop")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s" if verbose else "%(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("py4j", "great_expectations", "urllib3", "hydra", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def params(path: Path) -> DriftloopConfig:
    """params.yaml, typed, validated and checked against conf/ (for stages)."""
    config = load(path)
    check_fresh(config, find_root(path.resolve().parent))
    return config


def load_params(path: Path) -> DriftloopConfig:
    """params.yaml, typed and validated (for commands that act on the current state)."""
    return load(path)


@contextmanager
def timed(stage: str) -> Iterator[Callable[[str], None]]:
    """Log one summary line when the stage ends: what it did and how long it took."""
    start = time.perf_counter()
    summary: list[str] = []
    yield summary.append
    log.info("%s: %s (%.1f s)", stage, "; ".join(summary) or "done", time.perf_counter() - start)


def run(main: Callable[[], None]) -> int:
    """Run a stage; a DriftloopError becomes one line on stderr and exit code 1."""
    try:
        main()
    except DriftloopError as exc:
        log.error("error: %s", exc)
        return 1
    return 0
