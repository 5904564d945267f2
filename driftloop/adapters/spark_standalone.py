"""A Spark standalone cluster on this machine, started from the installed pyspark.

For tests and benchmarks of ``conf/spark/cluster.yaml``: one master and N
workers on loopback, each a JVM started with pyspark's ``bin/spark-class``
in a process group of its own. ``start_cluster`` waits until the master lists
every worker as ALIVE and, however the block ends, stops every process it
started (the groups, and the executors' Python workers, which leave their
executor's group), then waits for them.

The workers run with this interpreter's environment (its ``bin`` first on
PATH, PYSPARK_PYTHON set to it), so executors start the same Python as the
driver. Logs, work and scratch folders all live under the folder given.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from driftloop.core.host import free_port
from driftloop.errors import DriftloopError

HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# heap of the master and worker daemons themselves (executors get their own)
DAEMON_MEMORY = "512m"
POLL_SECONDS = 0.5
STOP_SECONDS = 15.0
LOG_TAIL_LINES = 30


class ClusterError(DriftloopError):
    """The local cluster did not come up (the message carries the daemons' logs)."""


def spark_home() -> Path:
    """The installed pyspark package: it ships bin/spark-class and the jars."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ClusterError("pyspark is not installed in this Python environment")
    return Path(spec.origin).parent


@dataclass(frozen=True)
class Daemon:
    """One JVM of the cluster: the leader of its own process group."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    """A running cluster: its master URL, web UI and daemons."""

    master: str
    web_ui: str
    work_dirs: list[Path]
    daemons: list[Daemon] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        """The master's state as its web UI serves it (workers, active and completed apps)."""
        with urllib.request.urlopen(f"{self.web_ui}/json/", timeout=5) as response:
            state: dict[str, Any] = json.load(response)
            return state

    def alive_workers(self) -> int:
        try:
            workers = self.status().get("workers", [])
        except (urllib.error.URLError, OSError, ValueError):
            return 0
        return sum(1 for worker in workers if worker.get("state") == "ALIVE")

    def app_dirs(self) -> list[list[str]]:
        """Per worker, the application folders its executors ran in."""
        return [sorted(p.name for p in folder.glob("app-*")) for folder in self.work_dirs]

    def pids(self) -> list[int]:
        return [daemon.process.pid for daemon in self.daemons]

    def logs(self) -> str:
        """The last lines of every daemon's log, for error messages."""
        parts = []
        for daemon in self.daemons:
            text = daemon.log.read_text(errors="replace") if daemon.log.exists() else ""
            tail = "\n".join(text.splitlines()[-LOG_TAIL_LINES:])
            parts.append(f"--- {daemon.name} ({daemon.log}) ---\n{tail}")
        return "\n".join(parts)


def daemon_env(tmp: Path) -> dict[str, str]:
    """This interpreter's environment for the daemons and the executors they start."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        SPARK_HOME=str(spark_home()),
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP=HOST,
        SPARK_LOG_DIR=str(tmp / "logs"),
        SPARK_LOCAL_DIRS=str(tmp / "local"),
        SPARK_DAEMON_MEMORY=DAEMON_MEMORY,
        # no REST submission server: it would take the fixed port 6066
        SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
    )
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    return env


def launch(name: str, args: list[str], env: dict[str, str], tmp: Path) -> Daemon:
    log = tmp / "logs" / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Daemon(name, process, log)


@contextmanager
def start_cluster(
    workers: int, cores: int, memory: str, tmp: Path, timeout: float = 120.0
) -> Iterator[Cluster]:
    """A master and ``workers`` workers (``cores`` and ``memory`` each), stopped on exit."""
    for folder in ("logs", "local"):
        (tmp / folder).mkdir(parents=True, exist_ok=True)
    env = daemon_env(tmp)
    port, ui = free_port(), free_port()
    work_dirs = [tmp / f"work-{index}" for index in range(workers)]
    cluster = Cluster(f"spark://{HOST}:{port}", f"http://{HOST}:{ui}", work_dirs)
    try:
        master = [MASTER_CLASS, "--host", HOST, "--port", str(port), "--webui-port", str(ui)]
        cluster.daemons.append(launch("master", master, env, tmp))
        for index, work in enumerate(work_dirs):
            work.mkdir(parents=True, exist_ok=True)
            worker = [WORKER_CLASS, cluster.master, "--host", HOST, "--cores", str(cores)]
            worker += ["--memory", memory, "--webui-port", str(free_port())]
            worker += ["--work-dir", str(work)]
            cluster.daemons.append(launch(f"worker-{index}", worker, env, tmp))
        wait_ready(cluster, workers, timeout)
        yield cluster
    finally:
        stop(cluster.daemons)


def wait_ready(cluster: Cluster, workers: int, timeout: float) -> None:
    """Return once the master lists ``workers`` ALIVE workers; fail naming why."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [d for d in cluster.daemons if d.process.poll() is not None]
        if dead:
            codes = ", ".join(f"{d.name} exit code {d.process.returncode}" for d in dead)
            raise ClusterError(f"Spark standalone cluster: {codes}\n{cluster.logs()}")
        if cluster.alive_workers() == workers:
            return
        time.sleep(POLL_SECONDS)
    raise ClusterError(
        f"Spark standalone cluster: {cluster.alive_workers()} of {workers} workers ALIVE at "
        f"{cluster.web_ui}/json/ after {timeout:.0f} s\n{cluster.logs()}"
    )


def stop(daemons: list[Daemon]) -> None:
    """SIGTERM each daemon's group, SIGKILL what is left, and wait for every process."""
    started = _members(daemons)
    for daemon in reversed(daemons):  # workers first: they stop their executors
        _signal_group(daemon, signal.SIGTERM)
    for daemon in reversed(daemons):
        try:
            daemon.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(daemon, signal.SIGKILL)
            daemon.process.wait()
    # executors a worker left behind, and their Python workers (groups of their own)
    left = [proc for proc in started if proc.is_running()]
    for proc in left:
        with suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=STOP_SECONDS)


def _members(daemons: list[Daemon]) -> list[psutil.Process]:
    """Every process the running daemons started: their trees and their groups' members.

    A daemon already reaped is left out: its id may belong to another process now.
    """
    groups = {daemon.process.pid for daemon in daemons if daemon.process.returncode is None}
    found: dict[int, psutil.Process] = {}
    for pid in groups:
        with suppress(psutil.Error):
            root = psutil.Process(pid)
            found.update({p.pid: p for p in [root, *root.children(recursive=True)]})
    for proc in psutil.process_iter():
        with suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) in groups:
                found.setdefault(proc.pid, proc)
    return list(found.values())


def _signal_group(daemon: Daemon, signum: signal.Signals) -> None:
    """Signal the group while its leader is not reaped yet (its id cannot be reused)."""
    if daemon.process.returncode is None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(daemon.process.pid, signum)
