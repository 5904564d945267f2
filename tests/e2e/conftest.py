"""End-to-end tests: whole pipelines, real servers and processes on a run project.

Every test here is slow (marked so automatically); `make test-fast` leaves them out.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.slow)
