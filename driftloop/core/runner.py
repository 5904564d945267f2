"""What every stage wrapper shares: logging, typed params, one-line errors."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from driftloop.config.compose import check_fresh, find_root, load
from driftloop.config.schema import DriftloopConfig
from driftloop.errors import DriftloopError

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


def live_progress() -> bool:
    """One redrawn progress line on a terminal; plain log lines in CI, pipes and files.

    DRIFTLOOP_PROGRESS=live|plain overrides the guess (a TTY on stderr, no CI
    variable, a TERM other than dumb).
    """
    mode = os.environ.get("DRIFTLOOP_PROGRESS", "auto")
    if mode in ("live", "plain"):
        return mode == "live"
    interactive = sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"
    return interactive and not os.environ.get("CI")


class Progress:
    """A stage's steps as they start, and the one-line summary it ends with.

    Calling it adds to the summary; `step` says what the stage is doing now:
    a plain log line, or on a terminal one line redrawn with the time taken.
    """

    def __init__(self, stage: str, live: bool, stream: TextIO) -> None:
        self.stage, self.live, self.stream = stage, live, stream
        self.summary: list[str] = []
        self.current = ""
        self.started = time.perf_counter()
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.ticker = threading.Thread(target=self._tick, daemon=True)

    def __call__(self, text: str) -> None:
        self.summary.append(text)

    def step(self, text: str) -> None:
        if not self.live:
            log.info("%s: %s", self.stage, text)
            return
        with self.lock:
            self.current = text
            self._draw()
        if not self.ticker.is_alive():
            self.ticker.start()

    def clear(self) -> None:
        """Wipe the live line (before a log line, and when the stage ends)."""
        if self.live and self.current:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def stop(self) -> None:
        self.stopped.set()
        with self.lock:
            self.clear()
            self.current = ""

    def _draw(self) -> None:
        elapsed = time.perf_counter() - self.started
        self.stream.write(f"\r\x1b[K{self.stage}: {self.current} ... {elapsed:.0f} s")
        self.stream.flush()

    def _tick(self) -> None:
        while not self.stopped.wait(0.5):
            with self.lock:
                if self.current:
                    self._draw()


class _ClearLine(logging.Filter):
    """Lets a log line through on its own line while a live progress line shows."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        with self.progress.lock:
            self.progress.clear()
        return True


@contextmanager
def timed(stage: str) -> Iterator[Progress]:
    """Progress while the stage runs; one summary line when it ends, with its time."""
    progress = Progress(stage, live_progress(), sys.stderr)
    handlers = logging.getLogger().handlers if progress.live else []
    guard = _ClearLine(progress)
    for handler in handlers:
        handler.addFilter(guard)
    try:
        yield progress
    finally:
        progress.stop()
        for handler in handlers:
            handler.removeFilter(guard)
    log.info(
        "%s: %s (%.1f s)",
        stage,
        "; ".join(progress.summary) or "done",
        time.perf_counter() - progress.started,
    )


def run(main: Callable[[], None]) -> int:
    """Run a stage; a DriftloopError becomes one line on stderr and exit code 1."""
    try:
        main()
    except DriftloopError as exc:
        log.error("error: %s", exc)
        return 1
    return 0
