"""The project's own import graph, read from its source (nothing is imported).

Used by the architecture tests: the layout's rules and the dvc.yaml code deps
are checked against what the modules really import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("driftloop", "stages")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # a project module, or an outside top-level package
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`: never runs


@cache
def module_files() -> dict[str, Path]:
    """Every project module by dotted name (a package by its __init__.py)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    modules = module_files()
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        parts = parts if is_package else parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in modules else base


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    path = module_files()[module]
    tree = ast.parse(path.read_text(), str(path))
    type_only = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(node, module, path.name == "__init__.py"):
                found.append(Import(module, target, node.lineno, node.lineno in type_only))
    return tuple(found)


def project(target: str) -> bool:
    return target.split(".")[0] in PACKAGES


def runtime_project_imports(module: str) -> set[str]:
    """Project modules ``module`` imports when it runs, its packages' __init__ included."""
    modules = module_files()
    found = set()
    for each in imports_of(module):
        if each.type_only or not project(each.target):
            continue
        parts = each.target.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {name for name in found if name in modules and name != module}


def closure(module: str) -> set[str]:
    """``module`` and every project module it imports, transitively."""
    parts = module.split(".")
    todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(runtime_project_imports(name) - seen)
    return seen


def cycles() -> list[list[str]]:
    """Import cycles between project modules (package __init__ edges left out)."""
    graph = {
        name: {i.target for i in imports_of(name) if not i.type_only and project(i.target)}
        for name in module_files()
    }
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def path_of(module: str) -> str:
    return str(module_files()[module].relative_to(ROOT))


def files_under(folder: str) -> set[str]:
    return {str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.py")}


def code_deps(module: str) -> list[str]:
    """The closure as dvc.yaml should list it: a folder where every module in it
    is in the closure, single files elsewhere."""
    files = {path_of(name) for name in closure(module)}
    folders = sorted(
        {str(Path(f).parent) for f in files} - set(PACKAGES) - {"driftloop/core"},
        key=lambda f: f.count("/"),
    )
    deps: list[str] = []
    for folder in folders:
        inside = files_under(folder)
        if inside <= files and not any(folder.startswith(f"{d}/") for d in deps):
            deps.append(folder)
    covered = set().union(*(files_under(d) for d in deps)) if deps else set()
    return sorted(deps + sorted(files - covered))


def stage_modules() -> dict[str, str]:
    """dvc.yaml stage name -> the module its `driftloop <command>` runs."""
    import yaml

    from driftloop.cli import COMMANDS

    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    found = {}
    for stage, body in spec.items():
        command = body["cmd"].split()[1]
        module = COMMANDS[command][1]
        assert module is not None, f"dvc.yaml stage {stage}: `driftloop {command}` is no stage"
        found[stage] = module
    return found


if __name__ == "__main__":  # print each stage's code deps, to paste into dvc.yaml
    for stage, module in stage_modules().items():
        print(f"{stage}:")
        for dep in code_deps(module):
            print(f"      - {dep}")
