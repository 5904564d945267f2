"""Several data sets in one project: which there are, and switching the
project's one composition between them.

The DVC pipeline runs the composed data set (params.yaml). Everything else a
data set owns lives under its name: its champion (data/models/<name>), its
batches (data/incoming/<name>), its prediction log, its loop reports and its
controller state (.driftloop/<name>). Switching keeps the outgoing data set's
pipeline state (params.yaml, dvc.lock and the outputs DVC does not cache) in
.driftloop/<name>/pipeline and brings the incoming one's back, its cached
outputs by `dvc checkout`: a switch costs seconds, not a re-run, and `dvc
status` afterwards says what changed since that data set last ran.

`driftloop compose` records each data set's choices (the option of every
group that describes a data set), so the controller can compose a data set
that is not the project's for one pass and put the project's back after it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from driftloop.config.compose import compose, group_files
from driftloop.config.schema import DriftloopConfig
from driftloop.controller.workspace import locked, run, tail
from driftloop.core.champion import MODELS, PARAMS_FILE
from driftloop.core.outputs import atomic_dir, write_json
from driftloop.errors import DriftloopError

log = logging.getLogger("driftloop")
# the groups that describe a data set; the others (train, serve, monitor, ...)
# are the project's and follow conf/config.yaml
DATA_GROUPS = ("data", "features", "expectations", "evaluate", "model")
PIPELINE_FILES = ("params.yaml", "dvc.lock")
STATE = Path(".driftloop")
LENT = STATE / "lent.json"


def state_dir(root: Path, name: str) -> Path:
    """.driftloop/<name>: the controller's lock, journal and saved pipeline."""
    return root / STATE / name


def composed_name(root: Path) -> str:
    params = root / "params.yaml"
    if not params.is_file():
        raise DriftloopError(f"{params}: not found; run `driftloop compose`")
    return str(yaml.safe_load(params.read_text())["data"]["name"])


def with_champion(root: Path) -> list[str]:
    """The data sets that have a champion, by name."""
    models = root / MODELS
    found = models.iterdir() if models.is_dir() else iter(())
    return sorted(d.name for d in found if (d / "champion").is_symlink())


# --- choices ------------------------------------------------------------------------


def compose_project(root: Path, output: Path, overrides: list[str]) -> DriftloopConfig:
    """`driftloop compose`: compose conf/ into ``output`` and record the data
    set's choices. Composing the project's params.yaml for another data set
    switches to it (the outgoing one's pipeline kept, the incoming one's back)."""
    project = output.resolve() == (root / "params.yaml").resolve()
    outgoing = composed_name(root) if project and output.is_file() else None
    staged = output.with_name(f".{output.name}.composing")
    try:
        config = compose(root, staged, overrides)  # nothing switches when this fails
        choices = {g: Path(f).stem for g, f in group_files(root, overrides).items()}
        if outgoing is not None and config.data.name != outgoing:
            save_pipeline(root, outgoing)
            restore_pipeline(root, config.data.name)
        staged.replace(output)
    finally:
        staged.unlink(missing_ok=True)
    if project:
        record_choices(root, config.data.name, choices, overrides)
    return config


def record_choices(root: Path, name: str, choices: dict[str, str], overrides: list[str]) -> None:
    """What composes data set ``name``: the options of the groups that describe a
    data set, and any other override given (e.g. monitor.primary_metric=rmse)."""
    own = [f"{group}={choices[group]}" for group in DATA_GROUPS if group in choices]
    other = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in DATA_GROUPS]
    write_json(state_dir(root, name) / "composition.json", {"overrides": own + other})


def overrides_of(root: Path, name: str) -> list[str]:
    """The Hydra overrides that compose data set ``name`` as it was last composed."""
    path = state_dir(root, name) / "composition.json"
    if not path.is_file():
        raise DriftloopError(
            f"data set '{name}' was never composed in this project ({path} is missing): "
            f"compose it once (`driftloop compose data={name} ...`)"
        )
    overrides: list[str] = json.loads(path.read_text())["overrides"]
    return overrides


def kept_params(root: Path, name: str) -> Path:
    """The params of data set ``name`` while the project is composed for another
    one: its kept pipeline's, else those its champion was trained with."""
    for params in (
        state_dir(root, name) / "pipeline" / "params.yaml",
        root / MODELS / name / "champion" / PARAMS_FILE,
    ):
        if params.is_file():
            return params
    raise DriftloopError(f"data set '{name}' has no kept pipeline and no champion here")


# --- pipeline state -----------------------------------------------------------------


def uncached_outputs(root: Path) -> list[str]:
    """The outputs dvc.yaml keeps out of the cache (metrics, plots): `dvc
    checkout` cannot bring them back, so a switch keeps them. Outputs under a
    data set's own name (``${data.name}``) need no keeping."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    found: set[str] = set()
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                if isinstance(entry, dict):
                    (path, options), *_ = entry.items()
                    if options and options.get("cache") is False and "${" not in path:
                        found.add(path)
    return sorted(found)


def save_pipeline(root: Path, name: str) -> None:
    """Keep params.yaml, dvc.lock and the uncached outputs as ``name``'s."""
    with atomic_dir(state_dir(root, name) / "pipeline") as folder:
        for each in [*PIPELINE_FILES, *uncached_outputs(root)]:
            source, target = root / each, folder / each
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            elif source.is_file():
                shutil.copy2(source, target)


def restore_pipeline(root: Path, name: str) -> bool:
    """Bring ``name``'s kept pipeline back (False when none was kept): the
    files first, then its cached outputs with `dvc checkout`."""
    folder = state_dir(root, name) / "pipeline"
    if not (folder / "dvc.lock").is_file():
        return False
    for each in [*PIPELINE_FILES, *uncached_outputs(root)]:
        source, target = folder / each, root / each
        if target.is_dir():
            shutil.rmtree(target)
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    done = run(["dvc", "checkout", "--force"], root, check=False)
    if done.returncode != 0:  # outputs not in the cache: `dvc repro` makes them again
        log.warning("datasets: %s: %s", name, tail(done.stdout + done.stderr))
    log.info("datasets: %s's pipeline is back (dvc checkout)", name)
    return True


@contextmanager
def composed_for(root: Path, name: str, project: str) -> Iterator[bool]:
    """The project's DVC workspace, taken for one pass at a time (others wait)
    and composed for data set ``name`` (see ``borrowed``)."""
    with locked(root / STATE, "workspace.lock", wait=True), borrowed(root, name, project) as kept:
        yield kept


@contextmanager
def borrowed(root: Path, name: str, project: str) -> Iterator[bool]:
    """The project composed for data set ``name`` for the block, the project's
    own data set put back after it (also when the block fails). Yields whether
    ``name``'s pipeline state was there (False: its stages must run first).

    A marker says whose the project is while it is lent: a controller killed
    mid-pass leaves it, and the next one puts the project's data set back."""
    if give_back(root):
        project = composed_name(root)
    if name == project:
        yield True
        return
    overrides = overrides_of(root, name)
    log.info("datasets: composing %s for this pass (the project's is %s)", name, project)
    save_pipeline(root, project)
    write_json(root / LENT, {"project": project, "lent_to": name})
    try:
        kept = restore_pipeline(root, name)
        compose(root, root / "params.yaml", overrides)
        yield kept
    finally:
        give_back(root)


def give_back(root: Path) -> bool:
    """Put the project's own data set back if it is lent to another one; whether it was."""
    marker = root / LENT
    if not marker.is_file():
        return False
    lent = json.loads(marker.read_text())
    save_pipeline(root, lent["lent_to"])
    if not restore_pipeline(root, lent["project"]):
        raise DriftloopError(f"{marker}: the pipeline of {lent['project']} was not kept")
    marker.unlink()
    log.info("datasets: the project is %s again", lent["project"])
    return True
