"""The layout's rules, checked from the code's own imports (docs/architecture.md).

- a stage module never imports another stage module;
- the service, the controller and the rest of the engine never import a stage
  (the controller runs stages through dvc);
- only adapters import Spark, MLflow, Great Expectations and NannyML (type hints
  aside), and only driftloop/config imports Hydra, OmegaConf and DVC's Python API;
- no import cycles;
- each dvc.yaml stage lists as code deps exactly its module and the project
  modules it imports, transitively.
"""

from __future__ import annotations

import yaml

from tests.unit import imports
from tests.unit.imports import ROOT

ADAPTED = {
    "pyspark": "driftloop.adapters.",
    "mlflow": "driftloop.adapters.",
    "great_expectations": "driftloop.adapters.",
    "nannyml": "driftloop.adapters.",
    "hydra": "driftloop.config.",
    "omegaconf": "driftloop.config.",
    "dvc": "driftloop.config.",
}


def stage_module(name: str) -> bool:
    return name.startswith("stages.")


def all_imports() -> list[imports.Import]:
    return [each for name in imports.module_files() for each in imports.imports_of(name)]


def broken_stage_rules(found: list[imports.Import]) -> list[str]:
    broken = []
    for each in found:
        if not stage_module(each.target) or each.target == each.module:
            continue
        where = f"{imports.path_of(each.module)}:{each.line}"
        if stage_module(each.module):
            broken.append(f"{where}: stage {each.module} imports stage {each.target}")
        else:
            broken.append(
                f"{where}: {each.module} imports stage {each.target} (run it through dvc)"
            )
    return broken


def broken_adapter_rules(found: list[imports.Import]) -> list[str]:
    broken = []
    for each in found:
        home = ADAPTED.get(each.target.split(".")[0])
        if home and not each.type_only and not each.module.startswith(home):
            where = f"{imports.path_of(each.module)}:{each.line}"
            broken.append(f"{where}: {each.module} imports {each.target}; only {home}* may")
    return broken


def test_stages_import_no_stage_and_nothing_imports_a_stage() -> None:
    assert broken_stage_rules(all_imports()) == []


def test_only_adapters_import_the_adapted_libraries() -> None:
    assert broken_adapter_rules(all_imports()) == []


def test_no_import_cycles() -> None:
    assert imports.cycles() == []


def test_the_rules_catch_what_they_are_about() -> None:
    """The checks fail on a broken rule, not only pass on this code."""
    bad = [
        imports.Import("stages.monitor", "stages.train", 1, False),
        imports.Import("driftloop.controller.loop", "stages.promote", 2, False),
        imports.Import("driftloop.core.plan", "pyspark.sql", 3, False),
    ]
    assert len(broken_stage_rules(bad)) == 2
    assert len(broken_adapter_rules(bad)) == 1
    assert broken_adapter_rules([imports.Import("stages.featurize", "pyspark", 4, True)]) == []


def declared_code_deps() -> dict[str, set[str]]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = {}
    for stage, body in spec.items():
        files: set[str] = set()
        for dep in body.get("deps", []):
            if not dep.startswith(imports.PACKAGES):
                continue
            files |= imports.files_under(dep) if (ROOT / dep).is_dir() else {dep}
        declared[stage] = files
    return declared


def code_dep_errors(declared: dict[str, set[str]]) -> list[str]:
    errors = []
    for stage, module in imports.stage_modules().items():
        needed = {imports.path_of(name) for name in imports.closure(module)}
        have = declared.get(stage, set())
        errors += [f"dvc.yaml stage {stage}: missing code dep {p}" for p in sorted(needed - have)]
        errors += [f"dvc.yaml stage {stage}: extra code dep {p}" for p in sorted(have - needed)]
    return errors


def test_dvc_code_deps_are_the_import_closure() -> None:
    errors = code_dep_errors(declared_code_deps())
    assert errors == [], "\n".join([*errors, "(python -m tests.unit.imports prints the lists)"])


def test_a_drifted_code_dep_is_named() -> None:
    declared = declared_code_deps()
    declared["monitor"] = declared["monitor"] - {"driftloop/core/drift.py"}
    declared["ingest"] = declared["ingest"] | {"stages/train.py"}
    assert code_dep_errors(declared) == [
        "dvc.yaml stage ingest: extra code dep stages/train.py",
        "dvc.yaml stage monitor: missing code dep driftloop/core/drift.py",
    ]
