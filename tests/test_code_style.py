"""The code is as `make lint` wants it (ruff check and format): `make test` says so, not a later review."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The same folders as `make lint`.
LINTED = ["src", "tests", "scripts", "bench", "tools", "build-support"]

pytest.importorskip("ruff", reason="ruff is not installed: `make install`")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *LINTED],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"ruff {' '.join(command)} (fix with `make format`):\n{result.stdout}{result.stderr}"
    )


MAX_FUNCTION_LINES = 60  # a function a reader takes in at once; longer ones are split by what they do


def test_no_function_in_src_is_longer_than_a_screen() -> None:
    import ast

    long = []
    for path in sorted((REPO / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these by what they do:\n" + "\n".join(long)
