"""Compose conf/ into params.yaml, and load params.yaml back as typed config.

``compose`` uses the very function ``dvc exp run -S`` uses, so params.yaml is
byte-for-byte what DVC would write. The composed file carries a digest of
conf/; ``check_fresh`` compares it with conf/ as it is now, so a plain
``dvc repro`` after an edit of conf/ stops and names ``driftloop compose``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from driftloop.config import schema
from driftloop.config.schema import DriftloopConfig
from driftloop.config.validate import Where, validate
from driftloop.errors import ConfigError

CONFIG_NAME = "config"
DIGEST_RESOLVER = "driftloop_conf_digest"
HYDRA_PLUGINS_PATH = "driftloop"


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder upwards holding conf/config.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "conf" / f"{CONFIG_NAME}.yaml").is_file():
            return folder
    raise ConfigError(f"no conf/{CONFIG_NAME}.yaml in {here} or any folder above it")


# folders of conf/ that are read as they are, never composed into params.yaml
# (simulation scenarios): editing them does not make params.yaml stale
NOT_COMPOSED = ("simulate",)


def conf_digest(conf_dir: Path) -> str:
    """sha256 over every composed YAML file under conf_dir, by relative path and content."""
    digest = hashlib.sha256()
    for path in sorted(conf_dir.rglob("*.yaml")):
        if path.relative_to(conf_dir).parts[0] in NOT_COMPOSED:
            continue
        digest.update(path.relative_to(conf_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def register() -> None:
    """Register the schema and the digest resolver (DVC loads this too)."""
    schema.register()
    OmegaConf.register_new_resolver(
        DIGEST_RESOLVER, lambda: conf_digest(find_root() / "conf"), replace=True
    )


def compose(root: Path, output: Path, overrides: list[str] | None = None) -> DriftloopConfig:
    """Compose root/conf into output atomically; return the validated config."""
    from dvc.utils.hydra import compose_and_dump

    register()
    tmp = Path(tempfile.mkstemp(dir=output.parent, prefix=".params-", suffix=".yaml")[1])
    try:
        cwd = Path.cwd()
        os.chdir(root)
        try:
            compose_and_dump(
                tmp,
                str(root / "conf"),
                None,
                CONFIG_NAME,
                str(root / HYDRA_PLUGINS_PATH),
                list(overrides or []),
            )
        finally:
            os.chdir(cwd)
        files = group_files(root, list(overrides or []))
        config = load(tmp, where=lambda group: files.get(group, "conf/"), name="conf/")
        tmp.replace(output)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(explain_hydra_error(exc)) from exc
    return config


def group_files(root: Path, overrides: list[str]) -> dict[str, str]:
    """Which conf file each group was composed from (for error messages)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(root / "conf"), version_base=None):
        cfg = hydra_compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    return {
        group: f"conf/{group}/{choices[group]}.yaml" if choices.get(group) else "conf/config.yaml"
        for group in schema.GROUPS
    }


def load(path: Path, where: Where | None = None, name: str | None = None) -> DriftloopConfig:
    """Read a composed params file and return it typed and validated."""
    name = name or str(path)
    if not path.is_file():
        raise ConfigError(f"{name}: file not found; run `driftloop compose`")
    raw = OmegaConf.load(path)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(DriftloopConfig), raw)
        missing = sorted(OmegaConf.missing_keys(merged))
        groups = [key for key in missing if key in schema.GROUPS]
        if groups:
            raise ConfigError(
                f"{name}: no config selected for group '{groups[0]}' "
                f"(conf/config.yaml defaults need '- {groups[0]}: <name>')"
            )
        if missing:
            raise ConfigError(f"{name}: missing value for {', '.join(missing)}")
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{name}: {first_line(exc)} (key {full_key(exc)})") from exc
    assert isinstance(config, DriftloopConfig)
    validate(config, where or (lambda _: name))
    return config


def check_fresh(config: DriftloopConfig, root: Path) -> None:
    """Fail when conf/ changed after params.yaml was composed."""
    current = conf_digest(root / "conf")
    if config.conf_digest != current:
        raise ConfigError(
            "params.yaml is stale: conf/ changed since it was composed; "
            "run `driftloop compose` (or `dvc exp run`), then `dvc repro`"
        )


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def full_key(exc: BaseException) -> str:
    match = re.search(r"full_key:\s*(\S+)", str(exc))
    return match.group(1) if match else "?"


def explain_hydra_error(exc: BaseException) -> str:
    """One line naming the conf file and the key a composition error is about."""
    text = str(exc).strip()
    lines = text.splitlines()
    located = re.match(
        r"In '([^']+)': \w+ raised while composing config:", lines[0] if lines else ""
    )
    if located and len(lines) > 1:
        return f"conf/{located.group(1)}.yaml: {lines[1].strip()} (key {full_key(exc)})"
    missing = re.search(r"Could not find '([^']+)'", text)
    if missing:
        option = missing.group(1)
        return f"conf/{CONFIG_NAME}.yaml: no config '{option}' under conf/ ({first_line(exc)})"
    detail = f": {lines[1].strip()}" if len(lines) > 1 else ""
    return f"conf/: {first_line(exc)}{detail}"
