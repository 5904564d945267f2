"""A shared MLflow tracking server for tests: PostgreSQL from Debian's packages
as the backend store and an artifact folder the server proxies, both started
on loopback in a temporary folder and stopped by process id.

What a team runs, in miniature:

    initdb -D DATA --auth=trust -U driftloop
    postgres -D DATA -h 127.0.0.1 -p PGPORT
    mlflow server --backend-store-uri postgresql://driftloop@127.0.0.1:PGPORT/mlflow \
        --artifacts-destination ARTIFACTS --host 127.0.0.1 --port PORT
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.core.host import free_port
from tests.conftest import BIN, env

USER = "driftloop"


def postgres_bin() -> Path:
    """The newest installed PostgreSQL server's bin folder (Debian: postgresql-NN)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL is not installed: `apt-get install -y postgresql` (.ci/run does it)"
        )
    return Path(initdb).parent


def _major(path: str) -> int:
    return int(Path(path).parts[-3])


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _own(folder: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)


@dataclass
class Process:
    """A started server: its process (own process group) and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


def start(name: str, args: list[str], folder: Path, environ: dict[str, str]) -> Process:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=environ, start_new_session=True
        )
    return Process(name, popen, log)


def wait_until(process: Process, ready: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited ({process.popen.returncode}):\n{process.output()}"
            )
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{process.name} not ready after {timeout:.0f} s:\n{process.output()}")


@contextmanager
def postgres(folder: Path) -> Iterator[str]:
    """A PostgreSQL server with an empty `mlflow` database; yields its SQLAlchemy URI."""
    import psycopg

    bindir, data, port = postgres_bin(), folder / "data", free_port()
    _own(folder)
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    args = [
        str(bindir / "postgres"),
        "-D",
        str(data),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        str(folder),
        "-c",
        "fsync=off",
        "-c",
        "full_page_writes=off",
    ]
    server = start("postgres", _as_postgres(args), folder, dict(os.environ))
    try:
        dsn = f"host=127.0.0.1 port={port} user={USER} dbname=postgres"
        wait_until(server, lambda: _accepts(dsn), 60)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlflow")
        yield f"postgresql://{USER}@127.0.0.1:{port}/mlflow"
    finally:
        server.stop(signal.SIGINT)  # fast shutdown: no waiting for clients


def _accepts(dsn: str) -> bool:
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


@dataclass(frozen=True)
class TrackingServer:
    uri: str  # http://127.0.0.1:PORT
    backend: str  # the PostgreSQL URI
    artifacts: Path

    def api(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One call of MLflow's REST API (GET without a body, POST with one)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.uri}/api/2.0/mlflow/{path}",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def runs(self, experiment: str) -> list[dict[str, Any]]:
        found = self.api("experiments/get-by-name?experiment_name=" + experiment)
        ids = [found["experiment"]["experiment_id"]]
        runs: list[dict[str, Any]] = []
        token = None
        while True:
            body: dict[str, Any] = {"experiment_ids": ids, "max_results": 1000}
            if token:
                body["page_token"] = token
            page = self.api("runs/search", body)
            runs += page.get("runs", [])
            token = page.get("next_page_token")
            if not token:
                return runs


@contextmanager
def tracking_server(folder: Path) -> Iterator[TrackingServer]:
    """`mlflow server` on PostgreSQL with a proxied artifact folder, on loopback."""
    with ExitStack() as stack:
        backend = stack.enter_context(postgres(_private(folder / "pg")))
        artifacts, port = folder / "artifacts", free_port()
        args = [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(artifacts),
            "--workers",
            "2",
        ]
        server = start("mlflow", args, folder, env())
        stack.callback(server.stop)
        uri = f"http://127.0.0.1:{port}"
        wait_until(server, lambda: urllib.request.urlopen(f"{uri}/health", timeout=5), 120)
        yield TrackingServer(uri, backend, artifacts)


def _private(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def temporary_folder() -> Iterator[Path]:
    """A folder the postgres user can reach (pytest's tmp folders are root's, mode 700)."""
    folder = Path(tempfile.mkdtemp(prefix="driftloop-tracking-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
