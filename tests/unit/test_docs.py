"""The docs hold together: every how-to of docs/howto/ is run by some test (a
new page without one fails here), and every relative link of README.md and
docs/ leads to a file, and its #anchor to a heading there."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.howtos import anchors, howto, links, pages

# a test runs a how-to when it reads it by its title: a call of howto with the title
HOWTO_CALL = re.compile(r"""\bhowto\(\s*["']([^"']+)["']""")


def test_every_howto_is_run_by_a_test() -> None:
    called: set[str] = set()
    for source in sorted((ROOT / "tests").rglob("*.py")):
        if source.name != "howtos.py":
            called |= set(HOWTO_CALL.findall(source.read_text()))
    found = pages()
    for title, page in found.items():
        name = page.relative_to(ROOT)
        assert page.stem == re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"), name
        assert howto(title).commands, f"{name}: no ```sh commands to run"
        assert title in called, f"{name}: no test runs it (howto({title!r}))"
    assert called <= found.keys(), f"tests read missing how-tos: {called - found.keys()}"


def test_every_relative_link_leads_to_a_file() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for link in links(page):
            path, _, anchor = link.partition("#")
            target = page.parent / path if path else page
            if not target.exists() or (
                anchor and target.suffix == ".md" and anchor not in anchors(target)
            ):
                broken.append(f"{page.relative_to(ROOT)}: {link}")
    assert not broken, broken
