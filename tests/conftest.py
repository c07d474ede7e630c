from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.sqlite import SqliteStore
from tests.harness import World, running_world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(tmp_path) as running:
        yield running


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "paybot.db")


@pytest.fixture
async def store(db_path: str) -> AsyncIterator[SqliteStore]:
    """A fresh SQLite store at `db_path`, migrated and open."""
    opened = SqliteStore(db_path)
    await opened.open()
    yield opened
    await opened.close()
