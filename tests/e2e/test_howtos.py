"""The how-tos of docs/howto/, run as written on a copy of a fully run project
(tests/unit/test_docs.py checks that every how-to is run by some test).

The Spark cluster, the shared MLflow server and the CSV how-tos are run by
tests/test_spark_cluster.py, tests/test_tracking_server.py and
tests/test_init_data.py. There is no S3 here: the S3 remote's commands run
against moto's S3-compatible server on loopback.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from driftloop.controller.experiments import queue_status
from driftloop.core.host import free_port
from tests.conftest import BIN, commit, env, sh
from tests.e2e.test_model_loop import client, registry_champion
from tests.e2e.test_pipeline import INFERENCE_STAGES, MODEL_STAGES, stages_run
from tests.e2e.test_server import model_info, wait_for
from tests.howtos import apply, howto, run
from tests.unit.serve import load
from tests.unit.serve.conftest import Server, get, scrape
from tests.unit.serve.test_app import EXAMPLE

pytestmark = pytest.mark.slow


def champion(root: Path) -> str:
    return os.readlink(root / "data/models/car_loan/champion")


def test_add_a_feature_then_roll_back(copy: Path) -> None:
    feature = howto("Add a feature")
    apply(feature.edit("conf/features/car_loan.yaml"), copy, append=("derived",))
    compose, repro, diff = feature.commands
    run(compose, copy)
    assert stages_run(run(repro, copy)) == [
        "check_params", "featurize", *MODEL_STAGES, *INFERENCE_STAGES
    ]  # fmt: skip
    names = json.loads((copy / "metrics/featurize.json").read_text())["features"]
    assert "value_per_month" in names
    assert os.readlink(copy / "data/models/car_loan/challenger") == "versions/2"
    status, approve = howto("Roll out a model").commands
    assert "challenger 2 on trial beside champion 1" in run(status, copy)
    assert "promote: version 2; the champion is 2" in run(approve, copy)
    assert not (copy / "data/models/car_loan/challenger").exists()
    assert os.readlink(copy / "data/models/car_loan/previous") == "versions/1"
    card = json.loads((copy / "data/models/car_loan/champion/card.json").read_text())
    assert "value_per_month" in card["numeric"] and card["version"] == "2"
    assert "metrics/eval.json" in run(diff, copy)

    rollback, status = howto("Roll back").commands
    assert "is now version 1 (was 2)" in run(rollback, copy)
    assert champion(copy) == "versions/1" and registry_champion(copy) == "1"
    assert not (copy / "data/models/car_loan/previous").exists()
    assert "version 1: hgb on car_loan" in run(status, copy)
    again = run(rollback, copy, check=False)
    assert "nothing to roll back to" in again


def test_add_an_expectation(copy: Path) -> None:
    expectation = howto("Add an expectation")
    apply(expectation.edit("conf/expectations/car_loan.yaml"), copy)
    compose, repro, show = expectation.commands
    run(compose, copy)
    assert stages_run(run(repro, copy)) == ["check_params", "validate_data"]
    result = (copy / "reports/validate_data/result.json").read_text()
    assert '"max_value": 36' in result and '"mostly": 0.999' in result
    assert "evaluated" in run(show, copy)


def test_change_the_drift_policy(copy: Path) -> None:
    policy = howto("Change the drift policy")
    edit = policy.edit("conf/monitor/default.yaml")
    apply(edit, copy)
    compose, repro, status = policy.commands
    run(compose, copy)
    assert stages_run(run(repro, copy)) == ["check_params", "monitor"]
    params = yaml.safe_load((copy / "params.yaml").read_text())
    assert params["monitor"]["bands"] == yaml.safe_load(edit.text)["bands"]
    drift = json.loads((copy / "metrics/drift.json").read_text())
    band = next(
        b for b in params["monitor"]["bands"]
        if b["min"] <= drift["deviation_percent"] < (b["max"] or float("inf"))
    )  # fmt: skip
    assert drift["action"] == band["action"]
    assert f"batch {drift['batch']}: {drift['action']}" in run(status, copy)


def test_serve_then_switch_the_model_under_load(copy: Path) -> None:
    """Serve the champion, then switch the model while requests keep coming:
    the promoted model is served with no failed request, every answer logged."""
    serve, predict = howto("Serve the champion").commands
    server = Server(copy, *shlex.split(serve, comments=True)[2:])
    try:
        server.wait_ready()
        answer = json.loads(
            run(predict.replace("localhost:8000", f"127.0.0.1:{server.port}"), copy)
        )
        assert answer["model_version"] == "1"
        (prediction,) = answer["predictions"]
        assert prediction["prediction"] in (0, 1) and 0.0 <= prediction["probability"] <= 1.0

        switch = howto("Switch or tune the model")
        apply(switch.edit("conf/model/extra_trees.yaml"), copy)
        with load.Background(server.port, EXAMPLE, threads=2) as generator:
            out = run(switch.command("driftloop compose model=extra_trees"), copy)
            # the passing candidate is the challenger; a person promotes it at once
            run(howto("Roll out a model").command("driftloop approve 2"), copy)
            time.sleep(3.0)  # past serve.reload_seconds
        assert get(f"{server.url}/model")[1]["model"] == "extra_trees"
    finally:
        server.terminate()
    assert stages_run(out) == ["check_params", *MODEL_STAGES, *INFERENCE_STAGES], out
    card = json.loads((copy / "data/models/car_loan/champion/card.json").read_text())
    assert card["model"] == "extra_trees" and champion(copy) == "versions/2"
    tally = generator.tally
    assert not tally.errors, tally.errors[:5]
    assert all(answers[-1][1] == "2" for answers in tally.versions)
    logged = pq.read_table(copy / "data/prediction_log/car_loan")
    assert logged.num_rows == tally.ok + 1  # and the how-to's own request
    assert set(logged.column("model_version").to_pylist()) == {"1", "2"}


def test_run_the_loop(copy: Path) -> None:
    once, status, last = howto("Run the loop").commands
    run(once, copy)
    decision = json.loads(run(last, copy))
    drift = json.loads((copy / "metrics/drift.json").read_text())
    assert decision["batch"] == drift["batch"] and decision["action"] == drift["action"]
    assert f"nothing: batch {drift['batch']}" in run(status, copy)


@pytest.fixture()
def s3(tmp_path: Path) -> Iterator[str]:
    """An S3-compatible server (moto) on a loopback port."""
    port = free_port()
    log = (tmp_path / "s3.log").open("w")
    args = [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(args, env=env(), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "s3.log").read_text()) from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_use_an_s3_remote(
    copy: Path, tmp_path: Path, s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "driftloop-test")
    for key in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{key}_NAME", "driftloop-test")
        monkeypatch.setenv(f"{key}_EMAIL", "test@driftloop.local")
    add, region, commit_config, push, pull, repro = howto("Use an S3 DVC remote").commands
    bucket = add.split("s3://", 1)[1].split("/", 1)[0]
    location = region.split()[-1]
    boto3.client("s3", endpoint_url=s3, region_name=location).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": location}
    )
    commit(copy, "a full run")  # dvc.lock in git, as the team keeps it
    run(add, copy)
    run(region, copy)
    run(f"dvc remote modify storage endpointurl {s3}", copy)  # not AWS: this server
    run(commit_config, copy)
    assert "files pushed" in run(push, copy)

    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(copy), str(clone)], tmp_path)
    run(pull, clone)
    for name in ("data/raw/data.parquet", "data/features/train", "data/models/car_loan/candidate"):
        path = copy / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            other = clone / file.relative_to(copy)
            assert other.read_bytes() == file.read_bytes(), other
    assert stages_run(run(repro, clone)) == ["promote"]
    assert champion(clone) == "versions/1"
    assert "Data and pipelines are up to date." in sh(["dvc", "status"], clone).stdout


def test_score_a_batch(copy: Path) -> None:
    """The stage has nothing to do after a full run; the command scores the same
    input with the same champion into the same bytes."""
    repro, score = howto("Score a batch").commands
    assert stages_run(run(repro, copy)) == []
    run(score, copy)
    args = shlex.split(score, comments=True)
    out, metrics = (copy / args[args.index(flag) + 1] for flag in ("--out", "--metrics"))
    staged = copy / "data/predictions"
    files = sorted(p.relative_to(staged) for p in staged.rglob("*.parquet"))
    assert files and files == sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    for name in files:
        assert (out / name).read_bytes() == (staged / name).read_bytes(), name
    assert json.loads(metrics.read_text()) == json.loads(
        (copy / "metrics/batch_predict.json").read_text()
    )


def test_run_experiments_in_parallel(copy: Path) -> None:
    queue, start, status, show = howto("Run experiments in parallel").commands
    run(queue, copy)
    run(start, copy)
    deadline = time.monotonic() + 900
    while {"Queued", "Running"} & set(queue_status(run(status, copy)).values()):
        assert time.monotonic() < deadline, run(status, copy)
        time.sleep(2)
    states = queue_status(run(status, copy))
    assert list(states.values()) == ["Success", "Success"], states
    shown = run(show, copy)
    assert all(name in shown for name in states), shown
    tracking = client(copy)
    experiment = tracking.get_experiment_by_name("driftloop")
    assert experiment is not None
    runs = tracking.search_runs([experiment.experiment_id])
    tagged = {r.data.tags.get("dvc.experiment") for r in runs} - {None}
    assert tagged == set(states), tagged


def test_serve_with_several_workers(copy: Path, tmp_path: Path) -> None:
    once, compose, serve, export, gunicorn = howto("Serve with several workers").commands
    run(compose, copy)
    assert yaml.safe_load((copy / "params.yaml").read_text())["serve"]["workers"] == 2
    for args in (shlex.split(once, comments=True)[2:], shlex.split(serve, comments=True)[2:]):
        server = Server(copy, *args)
        try:
            server.wait_ready()
            assert_two_workers(server.url)
        finally:
            assert server.terminate().count("Application shutdown complete.") == 2

    port = free_port()
    command = gunicorn.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    process = subprocess.Popen(
        ["bash", "-c", f"{export}\n{command}"],
        cwd=copy,
        env={**env(), "TMPDIR": str(tmp_path)},  # where mktemp makes the metrics folder
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: ready(url), timeout=90)
        assert_two_workers(url)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def assert_two_workers(url: str) -> None:
    """Both workers serve the champion, each its own series in /metrics."""
    wait_for(lambda: len(model_info(scrape(url))) == 2, timeout=60)
    assert sorted(model_info(scrape(url)).values()) == ["1", "1"]


def ready(url: str) -> bool:
    try:
        return get(f"{url}/ready")[0] == 200
    except OSError:
        return False
