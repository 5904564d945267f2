"""The one place that talks to Great Expectations (1.x).

Suites are built from plain ``(expectation type, kwargs)`` specs, validated in
an ephemeral context (nothing written but the Data Docs folder), and results
come back as plain dicts. Progress bars are turned off: GX prints them even
when stderr is not a terminal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.errors import DriftloopError

log = logging.getLogger(__name__)
SITE = "driftloop"
EXAMPLES = 5


@dataclass(frozen=True)
class Spec:
    """One expectation: its snake_case type and its arguments."""

    type: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    success: bool
    evaluated: int
    failures: list[dict[str, Any]]
    result: dict[str, Any]


def _expectation(spec: Spec) -> Any:
    import great_expectations.expectations as gxe

    class_name = "".join(part.title() for part in spec.type.split("_"))
    cls = getattr(gxe, class_name, None)
    if cls is None:
        raise DriftloopError(f"unknown expectation type '{spec.type}'")
    return cls(**spec.kwargs)


def validate(frame: pd.DataFrame, suite_name: str, specs: list[Spec], docs: Path | None) -> Outcome:
    """Validate a pandas frame against the specs; write Data Docs into ``docs``."""
    import great_expectations as gx

    context = _context(docs)
    suite = gx.ExpectationSuite(name=suite_name)
    for spec in specs:
        suite.add_expectation(_expectation(spec))
    asset = context.data_sources.add_pandas("frame").add_dataframe_asset("frame")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name=suite_name,
            data=asset.add_batch_definition_whole_dataframe("all"),
            suite=context.suites.add(suite),
        )
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=suite_name,
            validation_definitions=[definition],
            actions=_docs_actions(docs),
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES},
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": frame})
    result = next(iter(run.run_results.values()))
    return Outcome(
        success=bool(result.success),
        evaluated=int(result.statistics["evaluated_expectations"]),
        failures=[_failure(r) for r in result.results if not r.success],
        result=stable(result.to_json_dict()),
    )


# Run ids, times and random expectation ids: they make every run's result
# differ, which DVC would read as a changed output.
VOLATILE = {
    "ge_load_time",
    "checkpoint_id",
    "run_id",
    "run_time",
    "validation_id",
    "validation_time",
    "id",
}


def stable(tree: Any) -> Any:
    """The result without the keys that change from run to run."""
    if isinstance(tree, dict):
        return {k: stable(v) for k, v in tree.items() if k not in VOLATILE}
    if isinstance(tree, list):
        return [stable(v) for v in tree]
    return tree


def _context(docs: Path | None) -> Any:
    """An ephemeral context with no progress bars and at most our one docs site."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)  # GX sets INFO on some of its own
    context: Any = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    for site in list(context.list_data_docs_sites()):
        context.delete_data_docs_site(site)
    if docs is not None:
        context.add_data_docs_site(site_name=SITE, site_config=_site(docs))
    return context


def _docs_actions(docs: Path | None) -> list[Any]:
    from great_expectations.checkpoint.actions import UpdateDataDocsAction

    return [] if docs is None else [UpdateDataDocsAction(name="docs", site_names=[SITE])]


def _site(folder: Path) -> dict[str, Any]:
    return {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(folder.resolve()),
        },
    }


def _failure(result: Any) -> dict[str, Any]:
    config = result.expectation_config
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
    payload = result.to_json_dict()
    detail = payload.get("result") or {}
    exception = payload.get("exception_info") or {}
    return {
        "expectation": config.type,
        "column": kwargs.get("column"),
        "kwargs": kwargs,
        "examples": (detail.get("partial_unexpected_list") or [])[:EXAMPLES],
        "unexpected_percent": detail.get("unexpected_percent"),
        "observed_value": detail.get("observed_value"),
        "error": exception.get("exception_message") if exception.get("raised_exception") else None,
    }
