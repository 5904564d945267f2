"""The one place that talks to NannyML.

Packaged data sets are read straight from the installed wheel's data folder:
``import nannyml`` costs seconds and pulls in FLAML, which starts a JVM when
pyspark is importable, and ingest needs none of that.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from stages.errors import DataError

TARGET_SUFFIXES = ("_analysis_target", "_analysis_targets", "_analysis_gt", "_target")


def datasets_dir() -> Path:
    spec = importlib.util.find_spec("nannyml")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("data.source: kind nannyml needs the nannyml package installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def packaged_files(dataset: str, part: str) -> tuple[Path, Path | None]:
    """The data file of a packaged data set's part, and its separate targets file."""
    folder = datasets_dir()
    stem = f"{dataset}_{part}"
    data = _first_existing(folder, [stem])
    if data is None:
        known = sorted({p.stem.rsplit("_", 1)[0] for p in folder.glob("*_reference.*")})
        raise DataError(
            f"data.source: nannyml has no data set '{dataset}' with part '{part}' "
            f"(known: {', '.join(known)})"
        )
    targets = None
    if part == "analysis":
        targets = _first_existing(folder, [f"{dataset}{suffix}" for suffix in TARGET_SUFFIXES])
    return data, targets


def _first_existing(folder: Path, stems: list[str]) -> Path | None:
    for stem in stems:
        for ext in (".csv", ".pq", ".parquet"):
            if (folder / f"{stem}{ext}").is_file():
                return folder / f"{stem}{ext}"
    return None
