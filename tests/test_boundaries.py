"""The core speaks to no chat, web or database library and imports nothing around it;
the sandbox knows nothing of paybot."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_LIBRARIES = {"telegram", "twilio", "starlette", "uvicorn", "aiosqlite", "asyncpg"}
# Metrics too: the core counts through bot/telemetry.py's Meter, handlers/metrics.py keeps them.
OUTSIDE_LIBRARIES |= {"prometheus_client"}
# The core's ports are implemented around it, wired by the root above it: it imports neither.
AROUND_THE_CORE = {"handlers", "storage", "sandbox", "paybot"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


CORE_FILES = sorted((ROOT / "bot").rglob("*.py"))


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_no_chat_web_or_database_library(path: Path) -> None:
    assert imported_roots(path) & OUTSIDE_LIBRARIES == set()


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_no_handler_store_sandbox_or_root(path: Path) -> None:
    assert imported_roots(path) & AROUND_THE_CORE == set()


@pytest.mark.parametrize("path", sorted((ROOT / "sandbox").glob("*.py")), ids=lambda p: p.name)
def test_sandbox_knows_nothing_of_paybot(path: Path) -> None:
    assert imported_roots(path) & {"bot", "handlers", "storage"} == set()


def test_the_check_sees_imports() -> None:
    # The rule above would pass vacuously if the parser missed imports.
    seen = imported_roots(ROOT / "handlers" / "web.py")
    seen |= imported_roots(ROOT / "handlers" / "telegram.py")
    assert {"telegram", "starlette"} <= seen
    assert len(CORE_FILES) >= 10
