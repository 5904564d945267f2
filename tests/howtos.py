"""The how-tos of docs/howto/ as data, so tests run what a user reads.

A how-to is a page `docs/howto/<name>.md` whose first line is its `# Title`,
found by that heading. Its ```sh blocks are the commands (a line ending in a
backslash goes on with the next); its ```yaml blocks whose lines start with
`# conf/<file>` are edits of that file. In `conf/config.yaml`, a defaults line
`- group: new  # was: old` picks another option; in any other file the YAML is
merged in (mappings key by key, lists replaced unless the how-to says to
append to them).

Every page is run by some test (a `howto("Title")` call), and every relative
link of README.md and docs/ leads to a file: tests/unit/test_docs.py checks both.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT, sh

HOWTOS = ROOT / "docs" / "howto"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"^# (conf/\S+\.yaml)\s*$")
CHOICE = re.compile(r"^\s*- (\w+): (\S+)\s+# was: (\S+)")


@dataclass(frozen=True)
class Edit:
    path: str
    text: str


@dataclass(frozen=True)
class HowTo:
    title: str
    commands: list[str]
    edits: list[Edit]

    def command(self, start: str) -> str:
        """The one command that starts with ``start``."""
        found = [line for line in self.commands if line.startswith(start)]
        assert len(found) == 1, f"how-to '{self.title}': {found} start with {start!r}"
        return found[0]

    def edit(self, path: str) -> Edit:
        found = [each for each in self.edits if each.path == path]
        assert len(found) == 1, f"how-to '{self.title}' edits {path} {len(found)} times"
        return found[0]


def pages() -> dict[str, Path]:
    """Each how-to page of docs/howto/ by its title (its `# ` first line)."""
    found: dict[str, Path] = {}
    for page in sorted(HOWTOS.glob("*.md")):
        first = page.read_text().split("\n", 1)[0]
        assert first.startswith("# "), f"{page}: the first line is not a `# Title`"
        assert first[2:] not in found, f"{page}: a second how-to titled {first[2:]!r}"
        found[first[2:]] = page
    return found


def howto(title: str) -> HowTo:
    page = pages().get(title)
    assert page is not None, f"docs/howto has no how-to '{title}'"
    body = section(page.read_text().split("\n", 1)[1])
    commands: list[str] = []
    edits: list[Edit] = []
    for lang, block in FENCE.findall(body):
        if lang == "sh":
            commands += shell_lines(block)
        elif lang == "yaml":
            edits += yaml_edits(block)
    return HowTo(title, commands, edits)


def section(text: str) -> str:
    """The text up to the next heading (a `#` line inside a code block is not one)."""
    kept: list[str] = []
    fenced = False
    for line in text.splitlines():
        fenced ^= line.startswith("```")
        if not fenced and re.match(r"#{1,3} ", line):
            break
        kept.append(line)
    return "\n".join(kept) + "\n"


def shell_lines(block: str) -> list[str]:
    """Commands, one per entry: a trailing backslash or an open quote goes on."""
    lines: list[str] = []
    pending, joiner = "", ""
    for raw in block.splitlines():
        pending = f"{pending}{joiner}{raw}" if pending else raw
        joiner = "\n"  # inside an open quote the newline is part of the text
        if pending.endswith("\\"):
            pending, joiner = pending[:-1].rstrip(), " "
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote
            continue
        if words:
            lines.append(pending.strip())
        pending, joiner = "", ""
    return lines


def yaml_edits(block: str) -> list[Edit]:
    edits: list[Edit] = []
    path, body = "", []
    for line in [*block.splitlines(), "# conf/end.yaml"]:
        match = PATH.match(line)
        if match:
            if path:
                edits.append(Edit(path, "\n".join(body)))
            path, body = match.group(1), []
        else:
            body.append(line)
    return edits


def apply(edit: Edit, root: Path, append: tuple[str, ...] = (), **values: Any) -> None:
    """Make the edit in the project at ``root``; ``values`` set keys the user
    fills in for their site (a server's address)."""
    target = root / edit.path
    if edit.path == "conf/config.yaml":
        text = target.read_text()
        for line in edit.text.splitlines():
            match = CHOICE.match(line)
            assert match, f"how-to: not a defaults choice: {line!r}"
            group, new, old = match.groups()
            assert f"  - {group}: {old}\n" in text, f"conf/config.yaml has no '{group}: {old}'"
            text = text.replace(f"  - {group}: {old}\n", f"  - {group}: {new}\n")
        target.write_text(text)
        return
    change = yaml.safe_load(edit.text) or {}
    current = yaml.safe_load(target.read_text()) if target.exists() else {}
    merged = merge(current, change, append)
    merged.update(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))


def merge(current: Any, change: Any, append: tuple[str, ...], key: str = "") -> Any:
    if isinstance(current, dict) and isinstance(change, dict):
        out = dict(current)
        for name, value in change.items():
            out[name] = merge(current.get(name), value, append, name)
        return out
    if key in append and isinstance(current, list) and isinstance(change, list):
        return [*current, *change]
    return change


def links(page: Path) -> list[str]:
    """The relative links of a markdown page (a path, an #anchor or both),
    outside code blocks."""
    targets = LINK.findall(prose(page.read_text()))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def anchors(page: Path) -> set[str]:
    """The #anchors of a markdown page's headings, as GitHub makes them."""
    headings = re.findall(r"^#{1,6} (.+)$", prose(page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def prose(text: str) -> str:
    """Markdown without its fenced code blocks."""
    return "\n".join(part for i, part in enumerate(text.split("```")) if i % 2 == 0)


def run(command: str, root: Path, check: bool = True) -> str:
    """One how-to command in bash, as a user types it, with the project's venv."""
    done = sh(["bash", "-c", command], root, check=check)
    return done.stdout + done.stderr
