"""docs/decisions/ keeps the measurements behind the code's choices: what the code names there exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DECISIONS = REPO / "docs" / "decisions"
NAMED = re.compile(r"docs/decisions/([\w.-]+\.md)")


def test_every_decision_named_in_the_code_exists() -> None:
    missing = [
        f"{path.relative_to(REPO)}: {name}"
        for folder in ("src", "tests", "bench", "tools", "scripts")
        for path in sorted((REPO / folder).rglob("*.py"))
        for name in NAMED.findall(path.read_text(encoding="utf-8"))
        if not (DECISIONS / name).is_file()
    ]
    assert not missing, missing


def test_the_index_lists_every_numbered_decision() -> None:
    index = (DECISIONS / "README.md").read_text(encoding="utf-8")
    numbered = sorted(p.name for p in DECISIONS.glob("[0-9][0-9][0-9][0-9]-*.md"))
    assert numbered, "no numbered decision files"
    assert [name for name in numbered if f"({name})" not in index] == []
