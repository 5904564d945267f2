"""The service as an ASGI app for any server command line, e.g.

    uvicorn driftloop.serve.asgi:app --port 8000
    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) \\
        gunicorn -k uvicorn.workers.UvicornWorker -w 2 driftloop.serve.asgi:app

It reads params.yaml from the working folder (or DRIFTLOOP_PARAMS), the
models folder from DRIFTLOOP_MODELS (default data/models) and the prediction
log folder from DRIFTLOOP_PREDICTION_LOG (default serve.prediction_log_dir).

With more than one worker process, PROMETHEUS_MULTIPROC_DIR must name an empty
folder (a fresh one each start) in the server's environment, or every worker
answers /metrics with its own counts only. `driftloop serve --workers N` sets
it up by itself.
"""

from __future__ import annotations

from driftloop.serve.app import create_app
from driftloop.serve.command import settings_from_env

app = create_app(settings_from_env())
