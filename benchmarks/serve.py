"""Serving load benchmark: `driftloop serve` against `mlflow models serve`, same model, same run.

    python -m benchmarks.serve [--duration 15] [--repeats 3] [--warmup 5] [--quiet-minutes 20]

Both servers serve the same champion: ours the local data/models/car_loan/champion
(model.pkl, the registered model's own pipeline; a copy of its folder), the
peer the registry alias ``models:/driftloop@champion`` of the project's SQLite
store. They are started
side by side on free loopback ports and left running for the whole benchmark:

* ours: ``driftloop serve`` with conf/serve's defaults (1 uvicorn worker,
  validation, in-process features, micro-batching, the parquet prediction log
  (into a temporary folder), Prometheus metrics, the hot-reload watcher);
* the peer: ``mlflow models serve --env-manager local`` as in
  /work/shared/ANCHORS.md, telemetry off. Its input is the model's feature
  columns, so each record is featurized beforehand with
  driftloop.core.plan.featurize_pandas and driftloop.core.model.model_input and sent in
  ``dataframe_split`` form.

Records are the first rows of NannyML's synthetic car loan *analysis* part
(the period the service sees). One request to each server first checks that
both give the same probability.

Single-record load: ``wrk -t2 -c32 -d<duration>s --latency -s post.lua`` (POST,
JSON, one record), one server at a time: a warm-up run of each, then the
measured runs alternating ours / peer so that other tenants' noise falls on
both; the median run by requests/s is reported, every run is listed. Around
each run the servers' CPU seconds (psutil, whole process tree), wrk's own CPU
(RUSAGE_CHILDREN) and the machine's busy time give the cores each used; for
ours, /metrics before and after gives the mean server time per request and the
mean rows per model call (``driftloop_batch_rows``).

Batch: 1,000 records as one list to /predict, 50 sequential requests on one
keep-alive connection after warm-up; the server time of each request is the
delta of ``driftloop_request_seconds_sum{path="/predict"}`` (scraped between
requests), the client time is measured around each request. The same 1,000
rows go to the peer's /invocations.

Memory: a thread polls each server's process tree (psutil); the peak of the
summed RSS and each process's VmHWM are reported. Every process the benchmark
starts is stopped by pid, also on failure. Results: benchmarks/results/serve.md.

Challenger in shadow: a third server of ours (``driftloop serve (challenger in
shadow)``) serves the same champion with a second copy of it as version 2,
linked as ``challenger`` with ``rollout.strategy: shadow`` in its card; it takes
part in the same alternating wrk runs. After the run its log gives the rows
with both models' predictions and the shadow skips, beside /metrics'
``driftloop_shadow_rows_total``; the report compares it with ours without a
challenger (ratio of the median runs). Ours always serves copies of the
project's champion folder in a temporary models folder, so a challenger linked
in the project itself changes nothing here.

Workers: ``python -m benchmarks.serve --compare-workers 2`` runs only ours, with
1 worker and with ``--workers 2`` side by side (same model, same wrk settings,
warm-up, then the measured runs alternating, median of ``--repeats``), and
writes benchmarks/results/serve_workers.md. /metrics of the several-worker
server is merged over its workers (prometheus_client's multiprocess mode), so
the server time and rows per model call are over all of them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psutil
import pyarrow.parquet as pq

from benchmarks.harness import (
    CHAMPION,
    ROOT,
    Session,
    TreeSampler,
    arguments,
    busy_seconds,
    lower_median,
    markdown,
    mib,
    versions,
    write_results,
)
from driftloop.adapters import nml, tracking
from driftloop.config.compose import load
from driftloop.config.schema import ColumnType, DriftloopConfig
from driftloop.core import rollout
from driftloop.core.champion import CHALLENGER
from driftloop.core.champion import CHAMPION as CHAMPION_ROLE
from driftloop.core.host import free_port
from driftloop.core.model import CARD_FILE, model_input
from driftloop.core.plan import featurize_pandas, plan
from driftloop.core.predictor import input_columns
from driftloop.core.promotion import point

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
THREADS, CONNECTIONS = 2, 32
BATCH_ROWS, BATCH_REQUESTS, BATCH_WARMUP = 1_000, 50, 5
READY_SECONDS = 180.0
STOP_SECONDS = 30.0
POLL_SECONDS = 0.25
QUIET_POLL_SECONDS = 20
BUSY_PATTERNS = ("pytest", "benchmarks.batch_predict", "benchmarks.featurize", "dvc repro")
TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
SHOWN_ENV = {*TELEMETRY_OFF, "MLFLOW_TRACKING_URI", "OMP_NUM_THREADS"}
PREDICT_SECONDS = 'driftloop_request_seconds_{}{{path="/predict"}}'
# the benchmark serves the default data set only: its series of rows per model call
CALL_ROWS = 'driftloop_batch_rows_{}{{data="car_loan"}}'
VERSIONS = ("fastapi", "uvicorn", "pydantic", "scikit-learn", "mlflow", "numpy", "pandas",
            "pyarrow", "psutil")  # fmt: skip
# the targets
TARGET_RPS, TARGET_P99_MS, TARGET_RATIO, TARGET_BATCH_MS = 2_000, 25.0, 10.0, 20.0
# the safe rollout issue's: a challenger in shadow
SHADOW_ROW = "challenger in shadow"
TARGET_SHADOW_RPS, TARGET_SHADOW_P99_MS = 3_000, 20.0
SHADOW_ROWS = 'driftloop_shadow_rows_total{{data="car_loan",role="challenger",status="{}"}}'
SHADOW_STATUSES = (rollout.OK, rollout.SKIPPED, rollout.ERROR)
Metrics = dict[str, float]


# --- wrk ------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk's path; installed with apt-get when missing (one `apt-get update` if needed)."""
    found = shutil.which("wrk")
    if found:
        return found
    install = ["apt-get", "install", "-y", "wrk"]
    for steps in ([install], [["apt-get", "update"], install]):
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode:
                break
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "benchmarks.serve needs wrk and could not install it (`apt-get install -y wrk` failed; "
        "run it as root, or put a wrk binary on PATH)"
    )


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (done.stdout.strip().splitlines() or ["wrk (version unknown)"])[0].split(" Copyright")[0]


def lua_script(path: Path, body: bytes) -> Path:
    """post.lua: POST, the JSON content type, the body (a Lua long string: no escaping)."""
    text = body.decode()
    level = "=" * next(n for n in range(1, 10) if f"]{'=' * n}]" not in text)
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [{level}[{text}]{level}]\n"
    )
    return path


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"wrk: cannot read the latency '{text}'")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms), max, request count and errors from wrk --latency."""
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if found is None:
        raise RuntimeError(f"wrk gave no Requests/sec line:\n{text}")
    out: dict[str, Any] = {"rps": float(found.group(1))}
    for pct in (50, 90, 99):
        line = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.MULTILINE)
        out[f"p{pct}"] = to_ms(line.group(1)) if line else float("nan")
    latency = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text)
    out["max"] = to_ms(latency.group(1)) if latency else float("nan")
    count = re.search(r"(\d+) requests in", text)
    out["requests"] = int(count.group(1)) if count else 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    sockets = re.search(r"Socket errors: (.*)", text)
    out["socket"] = sockets.group(1).strip() if sockets else ""
    out["socket_errors"] = sum(int(n) for n in re.findall(r"\d+", out["socket"]))
    return out


# --- the records ----------------------------------------------------------------------


@dataclass(frozen=True)
class Payloads:
    ours_one: bytes
    ours_many: bytes
    peer_one: bytes
    peer_many: bytes
    columns: list[str]


def raw_rows(cfg: DriftloopConfig, rows: int) -> tuple[pd.DataFrame, list[str]]:
    """The first rows of the car loan analysis part: the columns a request carries."""
    inputs = input_columns(cfg.data, plan(cfg.features, cfg.data))
    data_file, _ = nml.packaged_files("synthetic_car_loan", "analysis")
    return pd.read_csv(data_file, nrows=rows)[inputs], inputs


def as_records(frame: pd.DataFrame, types: dict[str, ColumnType]) -> list[dict[str, Any]]:
    """JSON-ready records typed as conf/data declares (the request model is strict)."""
    cast = {ColumnType.bool: bool, ColumnType.int: int, ColumnType.string: str}
    records = []
    for row in frame.itertuples(index=False):
        record = {}
        for name, value in zip(frame.columns, row, strict=True):
            missing = value is None or (isinstance(value, float) and np.isnan(value))
            record[name] = None if missing else cast.get(types[name], float)(value)
        records.append(record)
    return records


def peer_body(frame: pd.DataFrame, cfg: DriftloopConfig, card: dict[str, Any]) -> bytes:
    """The model's input columns, featurized here, in MLflow's dataframe_split form."""
    featured = featurize_pandas(frame.reset_index(drop=True), plan(cfg.features, cfg.data))
    x = model_input(featured, card["numeric"], card["categorical"])
    split = {"columns": list(x.columns), "data": x.astype(object).values.tolist()}
    return orjson.dumps({"dataframe_split": split})


def payloads(cfg: DriftloopConfig, card: dict[str, Any]) -> Payloads:
    frame, inputs = raw_rows(cfg, BATCH_ROWS)
    records = as_records(frame, {name: cfg.data.schema[name] for name in inputs})
    return Payloads(
        ours_one=orjson.dumps(records[0]),
        ours_many=orjson.dumps(records),
        peer_one=peer_body(frame.iloc[:1], cfg, card),
        peer_many=peer_body(frame, cfg, card),
        columns=inputs,
    )


# --- processes ------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    predict: str
    ready: str
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    watch: TreeSampler | None = None
    started: float = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.watch = TreeSampler(self.process.pid, interval=POLL_SECONDS)
        self.watch.start()

    @property
    def peak(self) -> int:
        """The peak of the tree's summed RSS so far."""
        return self.watch.peaks["total"] if self.watch else 0

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the root pid, then to every descendant left, then SIGKILL."""
        if self.process is None or self.watch is None:
            return
        procs = self.watch.processes()
        self.watch.stop()
        for proc in procs:
            with suppress(psutil.Error):
                proc.terminate()
            _, alive = psutil.wait_procs([proc], timeout=STOP_SECONDS if proc is procs[0] else 5)
            for left in alive:
                with suppress(psutil.Error):
                    left.kill()
        self.process.wait()


def base_env() -> dict[str, str]:
    env = {**os.environ, **TELEMETRY_OFF}
    # the peer starts `uvicorn` through the shell: the venv's must come first
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def ours(folder: Path, workers: int = 1, shadow: bool = False) -> Server:
    """``driftloop serve`` of a copy of the project's champion; with ``shadow``, a
    second copy of it is the challenger, in shadow."""
    port = free_port()
    models = bench_models(folder / ("models-shadow" if shadow else "models"), shadow)
    command = [
        str(BIN / "driftloop"), "serve", "--params", str(ROOT / "params.yaml"),
        "--models", str(models), "--log-dir", str(log_folder(folder, workers, shadow)),
        "--port", str(port), *(["--workers", str(workers)] if workers > 1 else []),
    ]  # fmt: skip
    env = base_env()
    env.pop("MLFLOW_TRACKING_URI", None)  # ours reads the local champion, not the registry
    name = "driftloop serve" + (f" --workers {workers}" if workers > 1 else "")
    name += f" ({SHADOW_ROW})" if shadow else ""
    log = folder / ("ours" + (f"-{workers}" if workers > 1 else "") + ("-shadow" if shadow else ""))
    return Server(name, command, env, port, "/predict", "/ready", log.with_suffix(".log"))


def bench_models(models: Path, challenger: bool) -> Path:
    """A models folder with the project's champion (its version folder copied, so a
    challenger linked in the project changes nothing here) and, with ``challenger``,
    the same model again as version 2, the challenger in shadow (rollout in its card)."""
    folder = models / "car_loan"
    if folder.is_dir():
        return models
    versions = ["1", "2"] if challenger else ["1"]
    for version in versions:
        shutil.copytree(CHAMPION.resolve(), folder / "versions" / version)
        card_file = folder / "versions" / version / CARD_FILE
        card = json.loads(card_file.read_text()) | {"version": version}
        if version == "2":
            card["rollout"] = {"strategy": "shadow", "canary_share": 0.0}
        card_file.write_text(json.dumps(card))
    point(folder, CHAMPION_ROLE, "1")
    if challenger:
        point(folder, CHALLENGER, "2")
    return models


def log_folder(folder: Path, workers: int, shadow: bool = False) -> Path:
    """Ours' prediction log: one per server."""
    name = "prediction_log" + (f"-{workers}" if workers > 1 else "") + ("-shadow" if shadow else "")
    return folder / name


def peer(folder: Path, cfg: DriftloopConfig, omp_threads: int | None = None) -> Server:
    """The anchor's peer command; with ``omp_threads`` the same under OMP_NUM_THREADS."""
    port = free_port()
    model = cfg.model_name
    command = [
        str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{model}@{tracking.CHAMPION}",
        "--env-manager", "local", "-h", HOST, "-p", str(port),
    ]  # fmt: skip
    env = {**base_env(), "MLFLOW_TRACKING_URI": tracking.tracking_uri(cfg.tracking, ROOT)}
    name, log = "mlflow models serve", folder / "peer.log"
    if omp_threads:
        env["OMP_NUM_THREADS"] = str(omp_threads)
        name, log = f"{name} (OMP_NUM_THREADS={omp_threads})", folder / "peer-omp.log"
    return Server(name, command, env, port, "/invocations", "/ping", log)


def wait_ready(server: Server, timeout: float | None = None) -> float:
    """Seconds until the readiness path answers 200; fails with the server's log tail."""
    assert server.process is not None
    timeout = READY_SECONDS if timeout is None else timeout
    start = server.started
    while time.perf_counter() - start < timeout:
        if server.process.poll() is not None:
            break
        with suppress(OSError, http.client.HTTPException):
            client = Client(server.port, timeout=2)
            status, _, _ = client.call("GET", server.ready)
            client.close()
            if status == 200:
                return time.perf_counter() - start
        time.sleep(0.5)
    raise RuntimeError(f"{server.name} did not become ready:\n{server.log_tail()}")


# --- HTTP -----------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - start

    def json(self, path: str, body: bytes) -> Any:
        status, data, _ = self.call("POST", path, body)
        if status != 200:
            raise RuntimeError(f"POST {path}: HTTP {status}: {data[:300]!r}")
        return orjson.loads(data)

    def metrics(self) -> Metrics:
        status, data, _ = self.call("GET", "/metrics")
        if status != 200:
            raise RuntimeError(f"GET /metrics: HTTP {status}")
        return parse_metrics(data.decode())

    def close(self) -> None:
        self.conn.close()


def scrape(port: int) -> Metrics:
    """/metrics on a new connection (uvicorn closes idle keep-alive ones after 5 s)."""
    client = Client(port)
    try:
        return client.metrics()
    finally:
        client.close()


def parse_metrics(text: str) -> Metrics:
    """Prometheus text format: 'name{labels}' -> value."""
    out: Metrics = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def delta(after: Metrics, before: Metrics, key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def peer_answer(row: Any) -> tuple[Any, float | None]:
    """The peer's label, and its probability if the model's pyfunc serves predict_proba."""
    if isinstance(row, list):
        return int(np.argmax(row)), float(row[-1])
    return row, None


# --- measurements ---------------------------------------------------------------------


def parity(us: Server, them: Server, body: Payloads, reference: list[float]) -> dict[str, Any]:
    """One record, then the 1,000 rows, to each server: the same answers?

    ``reference``: the registered model's own predict_proba on the peer's rows."""
    mine, theirs = Client(us.port), Client(them.port)
    try:
        one = mine.json(us.predict, body.ours_one)["predictions"][0]
        other = peer_answer(theirs.json(them.predict, body.peer_one)["predictions"][0])
        many = mine.json(us.predict, body.ours_many)["predictions"]
        other_many = [
            peer_answer(row) for row in theirs.json(them.predict, body.peer_many)["predictions"]
        ]
        status, data, _ = mine.call("GET", "/model")
    finally:
        mine.close()
        theirs.close()
    pairs = list(zip(many, other_many, reference, strict=True))
    return {
        "ours": one, "peer": other, "registry": reference[0],
        "agree": sum(a["prediction"] == b[0] for a, b, _ in pairs),
        "diff": max(abs(a["probability"] - r) for a, _, r in pairs),
        "peer_diff": max(abs((b[1] if b[1] is not None else r) - r) for _, b, r in pairs),
        "ours_version": orjson.loads(data).get("version") if status == 200 else None,
    }  # fmt: skip


@dataclass
class LoadRun:
    server: str
    warmup: bool
    wrk: dict[str, Any]
    server_cpu: float
    wrk_cpu: float
    other_cpu: float
    server_ms: float | None = None
    rows_per_call: float | None = None

    @property
    def errors(self) -> int:
        return int(self.wrk["non2xx"] + self.wrk["socket_errors"])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_command(wrk: str, seconds: int, script: Path, url: str) -> list[str]:
    return [
        wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-s", str(script), url,
    ]  # fmt: skip


def load_run(server: Server, wrk: str, seconds: int, script: Path, warmup: bool = False) -> LoadRun:
    """One wrk run against one server, with the CPU each side used meanwhile."""
    assert server.watch is not None
    is_ours = server.predict == "/predict"
    before = scrape(server.port) if is_ours else {}
    cpu, kids = server.watch.live_cpu(), children_cpu()
    busy, start = busy_seconds(), time.perf_counter()
    url = f"http://{HOST}:{server.port}{server.predict}"
    done = subprocess.run(wrk_command(wrk, seconds, script, url), capture_output=True, text=True)
    wall = time.perf_counter() - start
    server_cpu, wrk_cpu = server.watch.live_cpu() - cpu, children_cpu() - kids
    others = max(0.0, busy_seconds() - busy - server_cpu - wrk_cpu) / wall
    if done.returncode:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    run = LoadRun(server.name, warmup, parse_wrk(done.stdout), server_cpu / wall, wrk_cpu / wall,
                  others)  # fmt: skip
    if is_ours:
        after = scrape(server.port)
        count = delta(after, before, PREDICT_SECONDS.format("count"))
        run.server_ms = 1e3 * delta(after, before, PREDICT_SECONDS.format("sum")) / max(count, 1)
        calls = delta(after, before, CALL_ROWS.format("count"))
        run.rows_per_call = delta(after, before, CALL_ROWS.format("sum")) / max(calls, 1)
    print(run_line(run), flush=True)
    return run


def single_load(
    servers: list[Server], wrk: str, scripts: dict[str, Path], args: argparse.Namespace
) -> tuple[list[LoadRun], Metrics, Metrics]:
    """Warm-up of each, then the measured runs alternating between the servers.

    Returns the runs and ours' /metrics before and after the measured runs."""
    runs = [load_run(s, wrk, args.warmup, scripts[s.name], warmup=True) for s in servers]
    before = scrape(servers[0].port)
    for _ in range(args.repeats):
        runs += [load_run(s, wrk, args.duration, scripts[s.name]) for s in servers]
    return runs, before, scrape(servers[0].port)


@dataclass
class BatchRun:
    server: str
    path: str
    client_ms: list[float]
    server_ms: list[float] = field(default_factory=list)
    failures: int = 0
    versions: set[str] = field(default_factory=set)


def batch(server: Server, body: bytes, scrape: bool) -> BatchRun:
    """BATCH_REQUESTS sequential requests of BATCH_ROWS records on one connection."""
    client = Client(server.port)
    out = BatchRun(server.name, server.predict, [])
    try:
        for _ in range(BATCH_WARMUP):
            client.call("POST", server.predict, body)
        before = client.metrics() if scrape else {}
        for _ in range(BATCH_REQUESTS):
            status, data, seconds = client.call("POST", server.predict, body)
            out.client_ms.append(1e3 * seconds)
            out.failures += status != 200
            if scrape:
                after = client.metrics()
                out.server_ms.append(1e3 * delta(after, before, PREDICT_SECONDS.format("sum")))
                out.versions.add(str(orjson.loads(data).get("model_version")))
                before = after
    finally:
        client.close()
    return out


def logged_rows(folder: Path) -> tuple[int, int]:
    """Rows and files of the prediction log (read after ours has stopped), every
    data set's folder under the log root."""
    files = sorted(folder.glob("*/*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files), len(files)


# --- report ---------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:,.1f} ms"


def median_run(runs: list[LoadRun], name: str) -> LoadRun:
    measured = [r for r in runs if r.server == name and not r.warmup]
    return lower_median(measured, key=lambda r: float(r.wrk["rps"]))


def run_line(run: LoadRun) -> str:
    w = run.wrk
    head = f"{run.server}{' (warm-up)' if run.warmup else ''}: {w['rps']:,.0f} requests/s"
    tail = (
        f", p50 {ms(w['p50'])}, p90 {ms(w['p90'])}, p99 {ms(w['p99'])}, max {ms(w['max'])}, "
        f"{w['requests']:,} requests, errors {run.errors}"
        + (f" ({w['socket']})" if w["socket"] else "")
        + f"; CPU cores: server {run.server_cpu:.2f}, wrk {run.wrk_cpu:.2f}, "
        f"others {run.other_cpu:.2f}"
    )
    if run.server_ms is not None:
        tail += f"; server time {run.server_ms:.2f} ms/request, {run.rows_per_call:.1f} rows/call"
    return head + tail


LOAD_HEADER = [
    "server", "requests/s", "p50", "p90", "p99", "max", "errors", "ratio vs mlflow",
    "server CPU (cores)", "peak RSS (tree)",
]  # fmt: skip
BATCH_HEADER = [
    "server", "endpoint", "rows/request", "requests", "server time p50", "client p50",
    "client p99", "client ratio mlflow / ours",
]  # fmt: skip


def load_table(runs: list[LoadRun], servers: list[Server]) -> list[str]:
    base = median_run(runs, servers[1].name).wrk["rps"]
    rows = []
    for server in servers:
        run = median_run(runs, server.name)
        w = run.wrk
        assert server.watch is not None
        rows.append([
            server.name, f"{w['rps']:,.0f}", ms(w["p50"]), ms(w["p90"]), ms(w["p99"]),
            ms(w["max"]), f"{run.errors:,}", f"{w['rps'] / base:.1f}x", f"{run.server_cpu:.2f}",
            mib(server.peak),
        ])  # fmt: skip
    return markdown(rows, LOAD_HEADER)


def batch_table(batches: list[BatchRun]) -> list[str]:
    ours_p50 = statistics.median(batches[0].client_ms)
    rows = []
    for run in batches:
        p50 = statistics.median(run.client_ms)
        rows.append([
            run.server, run.path, f"{BATCH_ROWS:,}", f"{len(run.client_ms)}",
            ms(statistics.median(run.server_ms)) if run.server_ms else "- (not exposed)",
            ms(p50), ms(float(np.percentile(run.client_ms, 99))), f"{p50 / ours_p50:.1f}x",
        ])  # fmt: skip
    return markdown(rows, BATCH_HEADER)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def target_notes(runs: list[LoadRun], servers: list[Server], batches: list[BatchRun]) -> list[str]:
    mine, theirs = median_run(runs, servers[0].name), median_run(runs, servers[1].name)
    rps, p99, ratio = mine.wrk["rps"], mine.wrk["p99"], mine.wrk["rps"] / theirs.wrk["rps"]
    server_p50 = statistics.median(batches[0].server_ms)
    return [
        f"- Target 1, ours >= {TARGET_RPS:,} requests/s with p99 < {TARGET_P99_MS:.0f} ms "
        "(validation, features, prediction log, metrics all on): "
        f"{verdict(rps >= TARGET_RPS and p99 < TARGET_P99_MS)} ({rps:,.0f} requests/s, p99 "
        f"{p99:.1f} ms, median run; runs: {rps_list(runs, servers[0].name)}).",
        f"- Target 2, ours >= {TARGET_RATIO:.0f}x `mlflow models serve` in requests/s: "
        f"{verdict(ratio >= TARGET_RATIO)} ({ratio:.1f}x; mlflow runs: "
        f"{rps_list(runs, servers[1].name)}).",
        f"- Target 3, a {BATCH_ROWS:,}-record request in < {TARGET_BATCH_MS:.0f} ms server time: "
        f"{verdict(server_p50 < TARGET_BATCH_MS)} (median {server_p50:.1f} ms, p90 "
        f"{np.percentile(batches[0].server_ms, 90):.1f} ms, max {max(batches[0].server_ms):.1f} "
        f"ms over {len(batches[0].server_ms)} requests).",
    ]


def rps_list(runs: list[LoadRun], name: str) -> str:
    return ", ".join(f"{r.wrk['rps']:,.0f}" for r in runs if r.server == name and not r.warmup)


def batching_note(before: Metrics, after: Metrics) -> str:
    """Rows per model call over ours' measured single-record runs (driftloop_batch_rows)."""
    calls = delta(after, before, CALL_ROWS.format("count"))
    rows = delta(after, before, CALL_ROWS.format("sum"))
    requests = delta(after, before, PREDICT_SECONDS.format("count"))
    bounds = {
        float(key.split('le="')[1].split('"')[0]): key
        for key in after
        if key.startswith("driftloop_batch_rows_bucket") and "+Inf" not in key
    }
    buckets = [
        f"<= {bound:.0f}: {100 * delta(after, before, bounds[bound]) / max(calls, 1):.0f} %"
        for bound in sorted(bounds)
    ]
    server_ms = 1e3 * delta(after, before, PREDICT_SECONDS.format("sum")) / max(requests, 1)
    return (
        f"- Micro-batching during ours' measured single-record runs (`driftloop_batch_rows` "
        f"delta): {requests:,.0f} requests, {calls:,.0f} model calls, {rows / max(calls, 1):.1f} "
        f"rows per model call on average; share of calls by size (cumulative): "
        f"{', '.join(buckets)}. Mean server time per request (`driftloop_request_seconds`: "
        f"from the middleware's first look at the request to its response, the wait for its "
        f"micro-batch included): {server_ms:.2f} ms; the rest of the client latency is "
        "waiting in the socket and event-loop queues."
    )


def memory_note(server: Server) -> str:
    assert server.watch is not None
    parts = ", ".join(f"{name} (pid {pid}) {mib(hwm)}" for pid, (name, hwm) in
                      sorted(server.watch.hwm.items()))  # fmt: skip
    return (
        f"- Memory, {server.name}: peak of the tree's summed RSS (polled every "
        f"{POLL_SECONDS} s from start to stop) {mib(server.peak)}; VmHWM per process: "
        f"{parts}."
    )


def command_notes(servers: list[Server], wrk: str, args: argparse.Namespace) -> list[str]:
    lines = []
    for server in servers:
        env = " ".join(f"{k}={v}" for k, v in server.env.items() if k in SHOWN_ENV)
        lines.append(f"- {server.name}: `{env} {' '.join(server.command)}` (from {ROOT}).")
    for server in servers:
        url = f"http://{HOST}:{server.port}{server.predict}"
        command = " ".join(wrk_command(Path(wrk).name, args.duration, Path("post.lua"), url))
        lines.append(f"- Load, {server.name}: `{command}`.")
    return lines


SHADOW_HEADER = [
    "server", "requests/s", "p50", "p99", "ratio vs no challenger", "rows logged",
    "with both predictions", "shadow skipped", "shadow errors", "model_ms (mean)",
    "shadow_ms (mean)",
]  # fmt: skip


def shadow_report(runs: list[LoadRun], servers: list[Server], shadow: ShadowLog) -> str:
    """The challenger-in-shadow row against ours without one, from the same run."""
    plain, second = servers[0].name, servers[-1].name
    base, mine = median_run(runs, plain).wrk, median_run(runs, second).wrk
    rows = []
    for name, w in ((plain, base), (second, mine)):
        ratio = f"{w['rps'] / base['rps']:.2f}x"
        row = [name, f"{w['rps']:,.0f}", ms(w["p50"]), ms(w["p99"]), ratio]
        row += ["-"] * 6 if name == plain else shadow_cells(shadow)
        rows.append(row)
    met = mine["rps"] >= TARGET_SHADOW_RPS and mine["p99"] <= TARGET_SHADOW_P99_MS
    lines = ["", f"## {SHADOW_ROW.capitalize()}", ""]
    lines += [f"The same wrk runs (median of each server's runs, alternating with the others): "
              f"`{second}` serves the same champion, and a second copy of it as version 2 "
              "linked as `challenger` with `rollout.strategy: shadow` in its card.",
              ""]  # fmt: skip
    lines += markdown(rows, SHADOW_HEADER)
    lines += ["", f"- Target, >= {TARGET_SHADOW_RPS:,} requests/s and p99 <= "
              f"{TARGET_SHADOW_P99_MS:.0f} ms with the challenger in shadow: {verdict(met)} "
              f"({mine['rps']:,.0f} requests/s, p99 {mine['p99']:.1f} ms; runs: "
              f"{rps_list(runs, second)}; without a challenger: {rps_list(runs, plain)}).",
              *shadow_notes(shadow)]  # fmt: skip
    return "\n".join(lines) + "\n"


def shadow_cells(shadow: ShadowLog) -> list[str]:
    status = shadow.status
    return [
        f"{shadow.rows:,}", f"{shadow.both:,}", f"{status.get(rollout.SKIPPED, 0):,}",
        f"{status.get(rollout.ERROR, 0):,}", f"{shadow.model_ms:.3f} ms",
        f"{shadow.shadow_ms:.3f} ms",
    ]  # fmt: skip


def shadow_notes(shadow: ShadowLog) -> list[str]:
    counted = ", ".join(f"{k} {v:,.0f}" for k, v in shadow.counted.items())
    logged = ", ".join(f"{k} {v:,}" for k, v in sorted(shadow.status.items()))
    agree = shadow.both == shadow.rows and shadow.scored == shadow.rows
    return [
        f"- Log of the shadow server (read after shutdown, warm-up included): {shadow.rows:,} rows "
        f"(records scored, `driftloop_batch_rows_sum`: {shadow.scored:,.0f}); by `shadow_status`: "
        f"{logged}; {shadow.both:,} rows carry both models' probabilities, equal on "
        f"{shadow.same:,} (the challenger is a copy of the champion). /metrics "
        f"`driftloop_shadow_rows_total` at the end of the load: {counted}."
        + (" Every row has both predictions." if agree else ""),
        "- How: the champion answers each micro-batch; a thread gathers the answered batches "
        "(up to 2,048 rows or 1 s) and sends them to the shadow scoring process (a child of the "
        "server at the lowest CPU priority), which scores each micro-batch on its own and "
        "sends the scores back; the rows are logged then. The shadow row's server CPU and "
        "memory are its whole process tree: the server, the fork server and the child.",
        "- model_ms / shadow_ms: each model's scoring time per row of its call, on calls of the "
        "same rows: the champion's wall time on the answer's path, the challenger's CPU time in "
        f"the child; the same model in both roles: shadow_ms / model_ms = "
        f"{shadow.shadow_ms / max(shadow.model_ms, 1e-9):.2f}.",
        "- Skipped rows: the child yields the cores to everything else; when it falls behind, the "
        "queue (2 x serve.max_batch_rows = 8,192 rows) fills and the batches that find it full "
        "are logged without the challenger's outputs (`shadow_status: skipped`). Compare the "
        "`others` CPU of each run above.",
        "- The machine has 2 cores shared with other tenants (and wrk): requests/s vary by tens "
        "of percent between runs of the same server; the ratio compares runs of one session.",
    ]


@dataclass
class Context:
    session: Session
    waited: str
    wrk: str
    card: dict[str, Any]
    registry: tuple[str, str]  # the alias's version, the pyfunc method the peer serves
    parity: dict[str, Any]
    ready: dict[str, float]
    logged: tuple[int, int, float]
    after: str  # the model versions seen at the end


def report(
    ctx: Context,
    servers: list[Server],
    runs: list[LoadRun],
    metrics: tuple[Metrics, Metrics],
    batches: list[BatchRun],
    args: argparse.Namespace,
) -> str:
    lines = ["# serve benchmark: `driftloop serve` against `mlflow models serve`", ""]
    lines += [f"Single-record requests, wrk -t{THREADS} -c{CONNECTIONS} -d{args.duration}s, "
              f"median of {args.repeats} runs by requests/s:", ""]  # fmt: skip
    lines += load_table(runs, servers)
    lines += ["", f"{BATCH_ROWS:,} records in one request, {BATCH_REQUESTS} sequential requests "
              "on one keep-alive connection after warm-up:", ""]  # fmt: skip
    lines += batch_table(batches)
    lines += ["", "## Targets (from the issue)", "", *target_notes(runs, servers, batches)]
    lines += ["", "## Every run", ""]
    lines += [f"- {run_line(run)}" for run in runs]
    lines += ["", "## Notes", "", *context_notes(ctx, args), *method_notes()]
    lines += [batching_note(*metrics), *[memory_note(s) for s in servers]]
    lines += ["", "## Exact commands (ports of this run)", ""]
    lines += command_notes(servers, ctx.wrk, args)
    return "\n".join(lines) + "\n"


def context_notes(ctx: Context, args: argparse.Namespace) -> list[str]:
    p, (rows, files, scored) = ctx.parity, ctx.logged
    return [
        ctx.session.about(),
        ctx.session.machine(
            "Shared and noisy; the cores other tenants kept busy are listed per run. "
            f"Before the run: {ctx.waited}."
        ),
        f"- Versions: {versions(VERSIONS, [wrk_version(ctx.wrk)])}.",
        f"- Model: champion version {ctx.card.get('version')} ({ctx.card.get('model')}, "
        f"{ctx.card.get('estimator', {}).get('_target_')}); registry alias "
        f"`{tracking.CHAMPION}` -> version {ctx.registry[0]}; ours reported version "
        f"{p['ours_version']} at the start; {ctx.after}. Startup to ready: "
        + ", ".join(f"{name} {secs:.1f} s" for name, secs in ctx.ready.items())
        + ".",
        *parity_notes(p, ctx.registry[1]),
        f"- Prediction log (ours, read after shutdown): {rows:,} rows in {files} parquet "
        f"files; records scored (`driftloop_batch_rows_sum` at the end): {scored:,.0f}"
        + (" - every record logged." if rows == scored else " - MISMATCH."),
    ]


def parity_notes(p: dict[str, Any], predict_fn: str) -> list[str]:
    ours, (label, proba) = p["ours"], p["peer"]
    peer = f"label {label}" + ("" if proba is None else f", probability {proba:.10f}")
    served = (
        "class labels only" if proba is None else "probabilities"
    ) + f": the registered model's pyfunc predict_fn is `{predict_fn}`"
    return [
        f"- Same answer, one record: ours label {ours['prediction']}, probability "
        f"{ours['probability']:.10f}; the peer {peer} (`mlflow models serve` returns "
        f"{served}); the registered model itself (tracking.download_model, predict_proba on "
        f"the peer's request row, in this process) {p['registry']:.10f}, a difference of "
        f"{abs(ours['probability'] - p['registry']):.2e} from ours. Over the {BATCH_ROWS:,} "
        f"rows: labels agree on {p['agree']:,}; largest probability difference ours vs the "
        f"registered model {p['diff']:.2e}"
        + ("." if proba is None else f", peer vs the registered model {p['peer_diff']:.2e}."),
    ]


def method_notes() -> list[str]:
    return [
        "- Records: the first rows of NannyML's synthetic_car_loan analysis part; ours gets the "
        "raw columns of conf/data (one JSON object, or a list), the peer the model's input "
        "columns (raw + derived features, computed with driftloop.core.plan.featurize_pandas and "
        'driftloop.core.model.model_input) as `{"dataframe_split": ...}`. The single-record load '
        "sends the first record, the batch the first 1,000.",
        "- ratio vs mlflow: requests/s of the server's median run over the peer's median run. "
        "server CPU: CPU seconds of the server's process tree during the run / wall seconds "
        "(cores of 2); wrk runs on the same 2 cores. Latencies are wrk's, client side, "
        "including queueing: with 32 connections and one event loop, p50 ~ 32 / requests/s.",
        "- Batch server time: per request, the delta of "
        '`driftloop_request_seconds_sum{path="/predict"}` scraped from /metrics between the '
        "sequential requests (the Guard middleware's timer: body read, validation, features, "
        "model, prediction log append, response). The peer has no such metric: client time "
        "only. p99 of 50 requests lies between the two largest (numpy.percentile, linear).",
        "- Both servers run with their defaults: ours limits the model's native threads to "
        "serve.model_threads (1); the peer's scikit-learn uses OpenMP threads on both cores "
        "(HistGradientBoosting predict), which compete with wrk and the event loop. The row "
        "`mlflow models serve (OMP_NUM_THREADS=1)` is not the anchor's command: the same "
        "command with one OpenMP thread, to show how much of the gap is thread "
        "oversubscription on 2 cores; the ratio and the targets use the anchor's command.",
    ]


# --- workers: one process against several -----------------------------------------------


@dataclass(frozen=True)
class Start:
    session: Session
    waited: str
    wrk: str
    card: dict[str, Any]


@dataclass(frozen=True)
class WorkersResult:
    servers: list[Server]
    runs: list[LoadRun]
    ready: dict[str, float]
    logged: dict[str, tuple[int, int, float]]  # rows, files, records scored


WORKERS_HEADER = [
    "server", "requests/s", "p50", "p90", "p99", "max", "errors", "ratio vs 1 worker",
    "server CPU (cores)", "wrk CPU (cores)", "others (cores)", "peak RSS (tree)",
]  # fmt: skip


def live_workers(port: int) -> int:
    """How many processes /metrics lists as serving a model (merged over the workers)."""
    return sum(
        1
        for key, value in scrape(port).items()
        if key.startswith("driftloop_model_info{") and value
    )


def wait_workers(server: Server, workers: int) -> None:
    """Each worker loads the model on its own: wait until all of them serve."""
    deadline = time.perf_counter() + READY_SECONDS
    while time.perf_counter() < deadline:
        if live_workers(server.port) >= workers:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{server.name}: fewer than {workers} workers serve:\n{server.log_tail()}")


def compare_workers(body: bytes, wrk: str, folder: Path, args: argparse.Namespace) -> WorkersResult:
    counts = [1, args.compare_workers]
    servers = [ours(folder, n) for n in counts]
    script = lua_script(folder / "ours-post.lua", body)
    with running(servers) as ready:
        wait_workers(servers[1], counts[1])
        runs, _, _ = single_load(servers, wrk, {s.name: script for s in servers}, args)
        scored = [scrape(s.port).get(CALL_ROWS.format("sum"), 0.0) for s in servers]
    logged = {
        s.name: (*logged_rows(log_folder(folder, n)), done)
        for s, n, done in zip(servers, counts, scored, strict=True)
    }
    return WorkersResult(servers, runs, ready, logged)


def workers_main(start: Start, body: bytes, args: argparse.Namespace) -> str:
    folder = Path(tempfile.mkdtemp(prefix="driftloop-serve-workers-"))
    try:
        result = compare_workers(body, start.wrk, folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return workers_report(start, result, args)


def workers_table(result: WorkersResult) -> list[str]:
    base = median_run(result.runs, result.servers[0].name).wrk["rps"]
    rows = []
    for server in result.servers:
        run = median_run(result.runs, server.name)
        w = run.wrk
        assert server.watch is not None
        rows.append([
            server.name, f"{w['rps']:,.0f}", ms(w["p50"]), ms(w["p90"]), ms(w["p99"]),
            ms(w["max"]), f"{run.errors:,}", f"{w['rps'] / base:.2f}x", f"{run.server_cpu:.2f}",
            f"{run.wrk_cpu:.2f}", f"{run.other_cpu:.2f}", mib(server.peak),
        ])  # fmt: skip
    return markdown(rows, WORKERS_HEADER)


def workers_report(start: Start, result: WorkersResult, args: argparse.Namespace) -> str:
    one, many = result.servers
    lines = [f"# serve benchmark: `{one.name}` against `{many.name}`", ""]
    lines += [f"Single-record requests, wrk -t{THREADS} -c{CONNECTIONS} -d{args.duration}s, "
              f"median of {args.repeats} runs by requests/s, both servers up side by side, "
              "the measured runs alternating:", ""]  # fmt: skip
    lines += workers_table(result)
    lines += ["", f"- Runs, requests/s: {one.name}: {rps_list(result.runs, one.name)}; "
              f"{many.name}: {rps_list(result.runs, many.name)}."]  # fmt: skip
    lines += ["", "## Every run", "", *[f"- {run_line(run)}" for run in result.runs]]
    lines += ["", "## Notes", "", *workers_notes(start, result), *[memory_note(s) for s in
              result.servers]]  # fmt: skip
    lines += ["", "## Exact commands (ports of this run)", ""]
    lines += command_notes(result.servers, start.wrk, args)
    return "\n".join(lines) + "\n"


def workers_notes(start: Start, result: WorkersResult) -> list[str]:
    logged = [
        f"{name}: {rows:,} rows in {files} files, {scored:,.0f} records scored"
        + (" - every record logged" if rows == scored else " - MISMATCH")
        for name, (rows, files, scored) in result.logged.items()
    ]
    return [
        start.session.about(),
        start.session.machine(
            "wrk runs on the same cores as the servers; the cores other tenants kept busy are "
            f"listed per run. Before the run: {start.waited}."
        ),
        f"- Versions: {versions(VERSIONS, [wrk_version(start.wrk)])}.",
        f"- Model: champion version {start.card.get('version')} ({start.card.get('model')}); "
        "both servers read data/models/car_loan/champion, conf/serve's defaults otherwise "
        "(micro-batching per worker, a prediction log per server, written by every worker). "
        "Startup to ready (first worker): "
        + ", ".join(f"{n} {s:.1f} s" for n, s in result.ready.items())
        + ".",
        f"- Prediction log (read after shutdown): {'; '.join(logged)}.",
        "- server CPU: CPU seconds of the server's process tree (uvicorn's parent and its "
        "workers) during the run / wall seconds; wrk CPU likewise; others: the machine's busy "
        "time minus both.",
    ]


# --- entry point ----------------------------------------------------------------------


def wait_quiet(minutes: float) -> str:
    """Poll until no other benchmark, test or pipeline run is running (up to ``minutes``)."""
    start, busy = time.monotonic(), busy_processes()
    while busy and time.monotonic() - start < minutes * 60:
        print(f"waiting for a quiet machine: {', '.join(busy)}", flush=True)
        time.sleep(QUIET_POLL_SECONDS)
        busy = busy_processes()
    waited = time.monotonic() - start
    if busy:
        return f"still running after {waited / 60:.0f} min of waiting: {', '.join(busy)}"
    return f"no {' / '.join(BUSY_PATTERNS)} process running (waited {waited:.0f} s)"


def busy_processes() -> list[str]:
    mine = {os.getpid(), os.getppid()}
    found = []
    for pattern in BUSY_PATTERNS:
        done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        if {int(pid) for pid in done.stdout.split()} - mine:
            found.append(pattern)
    return found


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = arguments("benchmarks.serve", __doc__)
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per server")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of the warm-up wrk run")
    parser.add_argument(
        "--quiet-minutes", type=float, default=20.0,
        help="wait up to this long for tests/benchmarks/dvc repro to finish (0: do not wait)",
    )  # fmt: skip
    parser.add_argument(
        "--no-omp-peer", dest="omp_peer", action="store_false",
        help="leave out the extra peer run with OMP_NUM_THREADS=1",
    )  # fmt: skip
    parser.add_argument(
        "--compare-workers", type=int, metavar="N",
        help="instead: ours with 1 worker against ours with N workers; serve_workers.md",
    )  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only; keep the results")
    return parser.parse_args(argv)


def champion_card() -> dict[str, Any]:
    card = CHAMPION / CARD_FILE
    if not card.is_file():
        raise SystemExit(f"no champion at {card.parent}: run `make run` first")
    result: dict[str, Any] = json.loads(card.read_text())
    return result


@dataclass(frozen=True)
class Registered:
    version: str
    predict_fn: str
    model: Any


def registered(cfg: DriftloopConfig) -> Registered:
    """The registry's champion: version, the pyfunc method the peer serves, the model."""
    from mlflow.models import get_model_info

    tracking.configure(cfg.tracking, ROOT)
    name = cfg.model_name
    version = tracking.alias_version(name, tracking.CHAMPION)
    if version is None:
        raise SystemExit(f"the registry has no '{name}@{tracking.CHAMPION}': run `make run` first")
    info = get_model_info(f"models:/{name}/{version}")
    predict_fn = str(info.flavors.get("python_function", {}).get("predict_fn", "predict"))
    return Registered(version, predict_fn, tracking.download_model(name, version))


def versions_after(cfg: DriftloopConfig, ours_batch: BatchRun) -> str:
    """Did the champion change during the run? Ours' answers in the batch test, the alias now."""
    alias = tracking.alias_version(cfg.model_name, tracking.CHAMPION)
    served = ", ".join(sorted(ours_batch.versions))
    return (
        f"ours answered with version {served} in the batch test, the alias is on {alias} at the end"
    )


def registry_proba(model: Any, body: bytes) -> list[float]:
    """The registered model's positive-class probabilities on the peer's request rows."""
    split = orjson.loads(body)["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    proba: list[float] = model.predict_proba(frame)[:, 1].tolist()
    return proba


@contextmanager
def running(servers: list[Server]) -> Iterator[dict[str, float]]:
    """Start the servers, wait until each is ready; stop them all by pid however this ends."""
    try:
        for server in servers:
            server.start()
        yield {server.name: wait_ready(server) for server in servers}
    finally:
        for server in servers:
            server.stop()


def is_ours(server: Server) -> bool:
    return server.predict == "/predict"


def measure(
    servers: list[Server],
    body: Payloads,
    reference: list[float],
    wrk: str,
    folder: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """servers: ours, the peer(s), then ours with a challenger in shadow."""
    ours_lua = lua_script(folder / "ours-post.lua", body.ours_one)
    peer_lua = lua_script(folder / "peer-post.lua", body.peer_one)
    scripts = {s.name: ours_lua if is_ours(s) else peer_lua for s in servers}
    peers = [s for s in servers if not is_ours(s)]
    with running(servers) as ready:
        checked = parity(servers[0], servers[1], body, reference)
        runs, before, after = single_load(servers, wrk, scripts, args)
        batches = [batch(servers[0], body.ours_many, scrape=True)]
        batches += [batch(s, body.peer_many, scrape=False) for s in peers]
        scored = scrape(servers[0].port).get(CALL_ROWS.format("sum"), 0.0)
        shadow_metrics = scrape(servers[-1].port)
    rows, files = logged_rows(folder / "prediction_log")
    shadow = shadow_log(log_folder(folder, 1, shadow=True), shadow_metrics)
    return {"ready": ready, "parity": checked, "runs": runs, "metrics": (before, after),
            "batches": batches, "logged": (rows, files, scored), "shadow": shadow}  # fmt: skip


@dataclass(frozen=True)
class ShadowLog:
    """What the server with a challenger in shadow logged and counted."""

    rows: int
    status: dict[str, int]  # log rows by shadow_status
    both: int  # rows with both models' probabilities
    same: int  # of these, rows where both are equal (the challenger is a copy)
    model_ms: float  # mean per-row scoring time of the answering model, ms
    shadow_ms: float  # and of the challenger (status ok rows)
    counted: dict[str, float]  # /metrics: driftloop_shadow_rows_total by status
    scored: float  # /metrics: driftloop_batch_rows_sum


def shadow_log(folder: Path, metrics: Metrics) -> ShadowLog:
    """The shadow server's prediction log (read after it stopped) and its /metrics."""
    columns = ["shadow_status", "y_pred_proba", rollout.shadow_column("y_pred_proba"),
               rollout.MODEL_MS, rollout.SHADOW_MS]  # fmt: skip
    files = sorted(folder.glob("*/*.parquet"))
    frame = pd.concat([pq.read_table(f, columns=columns).to_pandas() for f in files])
    answer, second = frame["y_pred_proba"], frame[rollout.shadow_column("y_pred_proba")]
    both = answer.notna() & second.notna()
    status = frame["shadow_status"].fillna("none").value_counts().to_dict()
    return ShadowLog(
        rows=len(frame),
        status={str(k): int(v) for k, v in status.items()},
        both=int(both.sum()),
        same=int((answer[both] == second[both]).sum()),
        model_ms=float(frame[rollout.MODEL_MS].mean()),
        shadow_ms=float(frame[rollout.SHADOW_MS].mean()),
        counted={name: metrics.get(SHADOW_ROWS.format(name), 0.0) for name in SHADOW_STATUSES},
        scored=metrics.get(CALL_ROWS.format("sum"), 0.0),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    # a SIGTERM (timeout, kill) unwinds like an error: the servers are stopped, temp dirs removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    waited = wait_quiet(args.quiet_minutes) if args.quiet_minutes > 0 else "no wait asked"
    session, wrk = Session("benchmarks.serve"), ensure_wrk()
    cfg = load(ROOT / "params.yaml")
    card = champion_card()
    body = payloads(cfg, card)
    if args.compare_workers:
        start = Start(session, waited, wrk, card)
        text = workers_main(start, body.ours_one, args)
        write_results("serve_workers.md", text, write=not args.no_write)
        return
    champion = registered(cfg)
    reference = registry_proba(champion.model, body.peer_many)
    folder = Path(tempfile.mkdtemp(prefix="driftloop-serve-bench-"))
    try:
        servers = [ours(folder), peer(folder, cfg)]
        servers += [peer(folder, cfg, omp_threads=1)] if args.omp_peer else []
        servers += [ours(folder, shadow=True)]
        result = measure(servers, body, reference, wrk, folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ctx = Context(
        session=session, waited=waited, wrk=wrk, card=card,
        registry=(champion.version, champion.predict_fn), parity=result["parity"],
        ready=result["ready"], logged=result["logged"],
        after=versions_after(cfg, result["batches"][0]),
    )  # fmt: skip
    text = report(ctx, servers, result["runs"], result["metrics"], result["batches"], args)
    text += shadow_report(result["runs"], servers, result["shadow"])
    write_results("serve.md", text, write=not args.no_write)


if __name__ == "__main__":
    main()
