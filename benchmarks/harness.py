"""The benchmarks' shared harness; each script keeps its set-up, engines and measures.

* process trees: peak RSS (summed over a process and its children, by group) and
  CPU seconds, VmHWM, the cores other tenants kept busy; a child command run
  under a sampler with a timeout, and the JSON result a child hands back;
* timing and stats: phases, the median run, the spread of repeats;
* environment: machine, cores, load, library versions, the git commit of the code;
* reports: markdown tables, number formats, the first notes of a report, the
  results file under benchmarks/results/ (or $DRIFTLOOP_BENCH_RESULTS, for a
  trial run that must not replace the published tables).

Only the standard library and psutil are imported here: the monitor benchmark's
child must start with cold imports, as the stage does.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
RESULTS = Path(os.environ.get("DRIFTLOOP_BENCH_RESULTS") or ROOT / "benchmarks" / "results")
CODE = ("stages", "driftloop", "conf", "params.yaml")
# the benchmarks' inputs are the default data set's (car_loan): its champion
CHAMPION = ROOT / "data" / "models" / "car_loan" / "champion"
MIB = 2**20
GIB = 2**30
POLL_SECONDS = 0.1
SPARK_GROUPS = ("driver", "jvm", "workers")
Result = dict[str, Any]
T = TypeVar("T")


# --- process trees ------------------------------------------------------------------


def vm_hwm(pid: int | str = "self") -> int:
    """A process's peak RSS in bytes: VmHWM, the high-water mark of its own memory.

    Not ru_maxrss: Linux carries the pre-exec peak over, and subprocess spawns
    with vfork, so ru_maxrss would start at the parent's RSS.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    own = pid == "self" or pid == os.getpid()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 if own else 0


def reset_vm_hwm() -> None:
    """Reset this process's VmHWM, so the next vm_hwm() is the peak of one run (Linux)."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (or stolen by the hypervisor)."""
    times = psutil.cpu_times()
    idle: float = times.idle + getattr(times, "iowait", 0.0)
    return float(sum(times)) - idle


def spark_group(proc: psutil.Process, root: int) -> str:
    """A Spark driver's tree: the driver (root), its JVM, its Python workers."""
    if proc.pid == root:
        return "driver"
    return "jvm" if "java" in proc.name() else "workers"


def tree_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process and its descendants, by group."""
    me = psutil.Process()
    spent = dict.fromkeys(SPARK_GROUPS, 0.0)
    for proc in [me, *me.children(recursive=True)]:
        with suppress(psutil.Error):
            times = proc.cpu_times()
            spent[spark_group(proc, me.pid)] += times.user + times.system
    return spent


@contextmanager
def cpu_delta(out: dict[str, float]) -> Iterator[None]:
    """Fills ``out`` with the CPU seconds this process tree spent in the block, by group."""
    before = tree_cpu()
    yield
    after = tree_cpu()
    out.update({group: after[group] - before[group] for group in SPARK_GROUPS})


def cpu_text(cpu: dict[str, float] | None) -> str:
    """CPU seconds of a Spark tree as "JVM / Python workers / driver"."""
    if not cpu:
        return "-"
    return " / ".join(f"{cpu.get(group, 0.0):.1f}" for group in ("jvm", "workers", "driver"))


class TreeSampler(threading.Thread):
    """Polls a process tree: the peak of its summed RSS (total and by group), each
    process's CPU seconds and VmHWM. Short spikes between polls may be missed."""

    def __init__(
        self, pid: int, groups: Sequence[str] = SPARK_GROUPS, interval: float = POLL_SECONDS
    ) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peaks = dict.fromkeys((*groups, "total"), 0)
        self.cpu: dict[int, float] = {}
        self.groups: dict[int, str] = {}
        self.hwm: dict[int, tuple[str, int]] = {}
        self.done = threading.Event()

    def processes(self) -> list[psutil.Process]:
        """The root and its descendants now (none once the root has gone)."""
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []

    def grouped(self) -> list[tuple[psutil.Process, str]]:
        """The processes to sample, each with its group."""
        found = []
        for proc in self.processes():
            with suppress(psutil.Error):
                found.append((proc, spark_group(proc, self.root.pid)))
        return found

    def sample(self) -> None:
        sizes = dict.fromkeys(self.peaks, 0)
        for proc, group in self.grouped():
            try:
                rss, times = proc.memory_info().rss, proc.cpu_times()
                self.hwm[proc.pid] = (proc.name(), vm_hwm(proc.pid))
            except (psutil.Error, OSError, ValueError):
                continue
            sizes[group] += rss
            sizes["total"] += rss
            self.cpu[proc.pid] = times.user + times.system
            self.groups[proc.pid] = group
        self.peaks = {key: max(value, sizes[key]) for key, value in self.peaks.items()}

    def run(self) -> None:
        while True:
            self.sample()
            if self.done.wait(self.interval):
                return

    def stop(self) -> None:
        """A last sample, then the thread ends."""
        self.sample()
        self.done.set()
        if self.is_alive():
            self.join()

    def live_cpu(self) -> float:
        """CPU seconds (user + system) of the processes of the tree alive now."""
        spent = 0.0
        for proc in self.processes():
            with suppress(psutil.Error):
                times = proc.cpu_times()
                spent += times.user + times.system
        return spent


def supervise(
    command: list[str], log_file: Path, timeout: float
) -> tuple[int, dict[str, int], float]:
    """Run a child command from the project root under a TreeSampler, killing its tree
    on timeout; its exit code, RSS peaks, and the cores others kept busy meanwhile."""
    busy, start = busy_seconds(), time.perf_counter()
    with log_file.open("w") as log:
        child = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(child.pid)
        sampler.start()
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tree(child)
            code = child.wait()
        sampler.done.set()
        sampler.join()
    others = busy_seconds() - busy - sum(sampler.cpu.values())
    return code, sampler.peaks, max(0.0, others) / (time.perf_counter() - start)


def kill_tree(child: subprocess.Popen[bytes]) -> None:
    with suppress(psutil.Error):
        for proc in psutil.Process(child.pid).children(recursive=True):
            proc.kill()
    child.kill()


# --- children: one measured run in a fresh process --------------------------------------


def child_files(work: Path, tag: str) -> tuple[Path, Path, Path]:
    """A fresh output folder work/out/<tag>, the run's log file and its cleared result file."""
    out, logs = work / "out" / tag, work / "logs"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    logs.mkdir(parents=True, exist_ok=True)
    result = logs / f"{tag}.json"
    result.unlink(missing_ok=True)
    return out, logs / f"{tag}.log", result


def child_main(work: Callable[[], Result], result: Path) -> None:
    """In the child: run the work, write its result (or why it failed) and peak RSS as JSON."""
    try:
        out = work()
    except Exception as exc:  # reported to the parent, which prints it in the table
        logging.getLogger("benchmarks").exception("the child failed")
        out = {"status": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}
    out["maxrss"] = vm_hwm()
    result.write_text(json.dumps(out))


def read_result(result: Path, code: int, log: Path) -> Result:
    """In the parent: the child's result (status "ok" unless it says otherwise), or why not."""
    data: Result = json.loads(result.read_text()) if result.exists() else {}
    if data and (code == 0 or "status" in data):
        return {"status": "ok", **data}
    return {"status": f"child exit code {code}; see {log}"}


# --- timing and stats ---------------------------------------------------------------


@contextmanager
def phase(phases: dict[str, float], name: str) -> Iterator[None]:
    """Adds the block's wall seconds to ``phases[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - start


def lower_median(items: Sequence[T], key: Callable[[T], float]) -> T:
    """The item with the median key: a real run, the lower middle one of an even count."""
    return sorted(items, key=key)[(len(items) - 1) // 2]


def median(values: Iterable[float]) -> float:
    done = sorted(values)
    return done[(len(done) - 1) // 2] if done else float("nan")


def spread(values: Iterable[float]) -> str:
    """Every repeat's value, so the spread behind a median is visible."""
    return ", ".join(f"{value:.2f}" for value in values)


def arguments(module: str, doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line, its module docstring as the help."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def child_arguments(parser: argparse.ArgumentParser, *names: str) -> None:
    """The hidden path options the parent passes to a child (--input, --result, ...)."""
    for name in names:
        parser.add_argument(f"--{name}", type=Path, help=argparse.SUPPRESS)


# --- environment --------------------------------------------------------------------


def machine(load_start: float) -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    memory = psutil.virtual_memory().total / GIB
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} logical CPUs ({model}), "
        f"{memory:.1f} GiB RAM; 1-min load average {load_start:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )


def java_version() -> str:
    probe = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return (probe.stderr.splitlines() or ["unknown"])[0]


def versions(packages: Sequence[str], extra: Sequence[str] = ()) -> str:
    """Python's version and the installed packages' (those missing are left out)."""
    found = [f"Python {platform.python_version()}"]
    for name in packages:
        with suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{name} {importlib.metadata.version(name)}")
    return ", ".join([*found, *extra])


def code_version() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", *CODE)
    return f"commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}" + (
        " plus uncommitted changes in stages/, driftloop/ or conf/" if dirty else ""
    )


@dataclass(frozen=True)
class Session:
    """One benchmark run: its command, when it started, the load and code it started on."""

    module: str
    started: float = field(default_factory=time.perf_counter)
    load: float = field(default_factory=lambda: os.getloadavg()[0])
    code: str = field(default_factory=code_version)

    @property
    def command(self) -> str:
        return " ".join([f"python -m {self.module}", *sys.argv[1:]])

    def total(self) -> float:
        return time.perf_counter() - self.started

    def about(self, generation: float | None = None, what: str = "input generation") -> str:
        """The first note of a report: date, command, time taken, code."""
        took = "" if generation is None else (
            f"; whole benchmark {self.total():.0f} s ({what} {generation:.0f} s of it)"
        )  # fmt: skip
        date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"- Date: {date}; command: `{self.command}`{took}; code: {self.code}."

    def machine(self, remark: str) -> str:
        return f"- Machine: {machine(self.load)}. {remark}"


# --- reports ------------------------------------------------------------------------


def markdown(rows: list[list[str]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def seconds(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"


def mib(value: float | None, digits: int = 0) -> str:
    return f"{value / MIB:,.{digits}f} MiB" if value else "-"


def write_results(name: str, text: str, write: bool = True) -> None:
    """The report as benchmarks/results/<name> (unless not to write), and on stdout."""
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / name).write_text(text)
    print(text)
