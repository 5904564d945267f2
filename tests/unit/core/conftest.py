"""The service's small real models (tests/unit/serve/conftest.py), shared with
the tests of the champion's layout."""

from __future__ import annotations

from tests.unit.serve.conftest import models, raw, trained  # noqa: F401
