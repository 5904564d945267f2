"""The shipped CI workflows (GitHub Actions, GitLab) cannot run here; these
check that they are valid YAML and that the commands they run and the file
they post are the ones the project has."""

from __future__ import annotations

import argparse

import yaml

from driftloop.controller import report
from tests.conftest import ROOT


def report_path() -> str:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    return str(parser.parse_args(["--base", "main"]).out)


def github_commands() -> str:
    workflow = yaml.safe_load((ROOT / ".github/workflows/pipeline.yml").read_text())
    steps = workflow["jobs"]["pipeline"]["steps"]
    return "\n".join(step.get("run", "") for step in steps)


def gitlab_commands() -> str:
    job = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())["pipeline"]
    return "\n".join([*job["before_script"], *job["script"]])


def test_both_workflows_run_push_report_and_post_it() -> None:
    for commands in (github_commands(), gitlab_commands()):
        assert "make venv" in commands and "make run" in commands
        assert "dvc pull" in commands and "dvc push" in commands
        # the base's outputs fetched too, so data and models are compared
        assert "git branch --force driftloop-base" in commands
        assert "dvc fetch --all-branches" in commands
        assert "driftloop report --base driftloop-base" in commands
        assert report_path() in commands  # the file the report writes is the one posted
    assert "gh pr comment" in github_commands()
    assert "/merge_requests/$CI_MERGE_REQUEST_IID/notes" in gitlab_commands()


def test_the_workflows_turn_telemetry_off_like_the_makefile() -> None:
    github = yaml.safe_load((ROOT / ".github/workflows/pipeline.yml").read_text())["env"]
    gitlab = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())["variables"]
    makefile = (ROOT / "Makefile").read_text()
    for name in (
        "NML_DISABLE_USAGE_LOGGING",
        "GX_ANALYTICS_ENABLED",
        "MLFLOW_DISABLE_TELEMETRY",
        "DO_NOT_TRACK",
        "DVC_NO_ANALYTICS",
    ):
        assert f"export {name} := {github[name]}" in makefile
        assert gitlab[name] == github[name]
