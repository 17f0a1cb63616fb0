"""Imports flow one way: the image core knows nothing of the service that uses it.

handlers -> service -> adapters, imaging; cli -> imaging. A module of `photoveil.imaging` may import
only the image core itself and the shared leaves (errors, deadline); anything else would tie the pure
core to AWS jobs, queues or events.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "photoveil"
IMAGING_MAY_IMPORT = ("photoveil.imaging", "photoveil.errors", "photoveil.deadline")
SERVICE_MAY_NOT_IMPORT = ("photoveil.handlers", "photoveil.local", "photoveil.cli")


def _photoveil_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names if node.module == "photoveil"}
    return {name for name in names if name == "photoveil" or name.startswith("photoveil.")}


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("path", _modules("imaging"), ids=lambda p: str(p.relative_to(SRC)))
def test_the_image_core_imports_only_itself_and_shared_leaves(path: Path) -> None:
    # `from photoveil import x` is recorded as photoveil.x; a bare `photoveil` is the package root.
    outside = {
        n for n in _photoveil_imports(path) if n != "photoveil" and not _allowed(n, IMAGING_MAY_IMPORT)
    }
    assert not outside, f"{path.relative_to(SRC)} imports {sorted(outside)}"


@pytest.mark.parametrize("package", ["service", "adapters"])
def test_the_domain_and_adapters_never_import_handlers_or_the_local_stack(package: str) -> None:
    wrong = {
        f"{path.relative_to(SRC)}: {name}"
        for path in _modules(package)
        for name in _photoveil_imports(path)
        if _allowed(name, SERVICE_MAY_NOT_IMPORT)
    }
    assert not wrong, sorted(wrong)


def test_adapters_never_import_the_service() -> None:
    wrong = {
        f"{path.relative_to(SRC)}: {name}"
        for path in _modules("adapters")
        for name in _photoveil_imports(path)
        if _allowed(name, ("photoveil.service",))
    }
    assert not wrong, sorted(wrong)


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from photoveil.service.jobflow import x\nfrom photoveil import settings\n")
    names = _photoveil_imports(module)
    assert {n for n in names if not _allowed(n, IMAGING_MAY_IMPORT)} >= {
        "photoveil.service.jobflow",
        "photoveil.settings",
    }
