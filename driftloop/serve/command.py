"""`driftloop serve`: run the service with uvicorn (host, port, workers from conf/serve)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from driftloop.config.compose import find_root
from driftloop.core import runner
from driftloop.core.champion import MODELS
from driftloop.core.model import MODEL_FILE
from driftloop.core.promotion import adopt
from driftloop.errors import DriftloopError
from driftloop.serve.metrics import MULTIPROC_ENV
from driftloop.serve.service import Settings, data_sets

log = logging.getLogger("driftloop.serve")
ENV_PARAMS = "DRIFTLOOP_PARAMS"
ENV_MODELS = "DRIFTLOOP_MODELS"
ENV_LOG = "DRIFTLOOP_PREDICTION_LOG"


def settings_from_env() -> Settings:
    params = Path(os.environ.get(ENV_PARAMS, "params.yaml")).resolve()
    config = runner.load_params(params)
    root = find_root(params.parent)
    models = Path(os.environ.get(ENV_MODELS) or root / MODELS)
    log_dir = Path(os.environ.get(ENV_LOG) or root / config.serve.prediction_log_dir)
    return Settings(config, root, models.resolve(), log_dir.resolve())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--models", type=Path, default=MODELS, help="the folder of every data set's models"
    )
    parser.add_argument("--log-dir", type=Path, help="default: serve.prediction_log_dir")
    parser.add_argument("--host", help="default: serve.host")
    parser.add_argument("--port", type=int, help="default: serve.port")
    parser.add_argument("--workers", type=int, help="default: serve.workers")
    parser.add_argument("--access-log", action="store_true", help="log every request")


def main(args: argparse.Namespace) -> None:
    import uvicorn

    config = runner.load_params(args.params)
    serve = config.serve
    root = find_root(args.params.resolve().parent)
    if not serve.from_registry:
        adopt(config, root, args.models / config.data.name)
    for name in data_sets(Settings(config, root, args.models, Path())):
        champion = args.models / name / "champion"
        if not serve.from_registry and not (champion / MODEL_FILE).is_file():
            raise DriftloopError(
                f"no champion model at {champion}: run `make run` (dvc repro) first"
            )
    os.environ[ENV_PARAMS] = str(args.params.resolve())
    os.environ[ENV_MODELS] = str(args.models.resolve())
    if args.log_dir is not None:
        os.environ[ENV_LOG] = str(args.log_dir.resolve())
    host, port = args.host or serve.host, args.port if args.port is not None else serve.port
    workers = args.workers or serve.workers
    log.info("serve: http://%s:%s (%d worker(s)); docs at /docs", host, port, workers)
    with shared_metrics(workers):
        uvicorn.run(
            "driftloop.serve.asgi:app",
            host=host,
            port=port,
            workers=workers,
            access_log=args.access_log,
            log_level="info",
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=30,
        )


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh empty folder for prometheus_client's multiprocess
    mode, named in the environment the workers inherit, removed when the server stops.

    uvicorn spawns its workers: they import prometheus_client after this is set."""
    if workers <= 1:
        yield
        return
    folder = tempfile.mkdtemp(prefix="driftloop-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = folder
    log.info("serve: metrics of all workers are merged through %s", folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)
