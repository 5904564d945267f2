"""End-to-end tests: whole pipelines, real servers and processes on a run project.

Every test here is slow (marked so automatically); `make test-fast` leaves them out.
"""

from __future__ import annotations

import pytest

# the service's fixtures (a trained model folder, a real uvicorn server), shared with
# its unit tests
from tests.unit.serve.conftest import models, raw, server_factory, trained  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.slow)
