"""Shared fixtures: the composed config, a Spark session, and throw-away
copies of the project (a git repository with DVC) for pipeline tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import driftloop  # noqa: F401 - sets the offline environment first
from driftloop.config.compose import load
from driftloop.config.schema import DriftloopConfig

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def config() -> DriftloopConfig:
    return load(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def spark(config: DriftloopConfig) -> Iterator[object]:
    from driftloop.adapters.spark import session

    cfg = config.spark
    cfg.master = "local[2]"
    spark = session(cfg)
    yield spark
    spark.stop()


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [name for name in out.split("\0") if name and (ROOT / name).is_file()]


def env() -> dict[str, str]:
    """The environment of a user's shell with the project's venv on PATH."""
    result = dict(os.environ)
    result["PATH"] = f"{BIN}{os.pathsep}{result.get('PATH', '')}"
    return result


def sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def make_project(dest: Path) -> Path:
    """A fresh copy of the project as a new git repository (no DVC outputs)."""
    for name in tracked_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    (dest / "dvc.lock").unlink(missing_ok=True)
    sh(["git", "init", "-q"], dest)
    commit(dest, "copy of the project")
    return dest


def commit(root: Path, message: str) -> None:
    """Commit everything in the project, as its team would."""
    git = ["git", "-c", "user.name=driftloop-test", "-c", "user.email=test@driftloop.local"]
    sh([*git, "add", "-A"], root)
    sh([*git, "commit", "-qm", message], root)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def full_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The project after `make run`'s two steps (compose, a full dvc repro), and its output."""
    root = make_project(tmp_path_factory.mktemp("done") / "project")
    sh(["driftloop", "compose"], root)
    return root, sh(["dvc", "repro"], root)


@pytest.fixture(scope="session")
def done(full_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    return full_run[0]


@pytest.fixture()
def copy(done: Path, tmp_path: Path) -> Path:
    """A private copy of the fully run project, to change as a test likes."""
    dest = tmp_path / "project"
    shutil.copytree(done, dest, symlinks=True)
    return dest
