"""Property-based fuzz of the running service from its own OpenAPI document:
whatever schemathesis sends (valid or not), no 5xx, and every answer matches
what the document promises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from driftloop.config.schema import DriftloopConfig
from tests.conftest import ROOT
from tests.unit.serve.conftest import Server, files, make_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, trained: dict[str, Any]) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("fuzz")
    server = Server(ROOT, *files(ROOT, make_models(folder / "models", trained), folder / "log"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def api(live: Server) -> Any:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def operations(api: Any) -> list[Any]:
    return [result.ok() for result in api.get_all_operations()]


# Hypothesis drives schemathesis' strategies directly (its pytest plugin does
# not support this pytest version): valid data must never fail, invalid data
# must get a 4xx, and no input may cause a 5xx.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_answers_match_the_document(
    api: Any, mode: GenerationMode, config: DriftloopConfig
) -> None:
    tried: list[str] = []
    for operation in operations(api):
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # nothing to make invalid in a GET without parameters

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call()
            if mode is GenerationMode.NEGATIVE and response.status_code == 413:
                # too many records made a body over serve.max_body_bytes: it is
                # refused before it is read, with the 413 the service documents
                assert len(response.request.body or b"") > config.serve.max_body_bytes
                return
            case.validate_response(response)

        check()
        tried.append(operation.label)
    # the common routes, and the default data set's own /predict/<name> and /model/<name>
    assert {"POST /predict", "POST /predict/car_loan"} <= set(tried)
    assert len(tried) == (7 if mode is GenerationMode.POSITIVE else 2)
