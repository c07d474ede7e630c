from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.sqlite import SqliteStore
from tests.databases import drop_database, fresh_postgres_url
from tests.harness import World, running_world


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """What PAYBOT_DATABASE names: a SQLite file, or a fresh PostgreSQL database.

    Every test that takes it (or `world`) runs once on each store.
    """
    if request.param == "sqlite":
        yield str(tmp_path / "paybot.db")
        return
    url = await fresh_postgres_url()
    try:
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
async def world(tmp_path: Path, database: str) -> AsyncIterator[World]:
    """A running paybot with fakes around it, on each store in turn."""
    async with running_world(tmp_path, database=database) as running:
        yield running


@pytest.fixture
async def sqlite_world(tmp_path: Path) -> AsyncIterator[World]:
    """A running paybot on SQLite, for tests of SQLite's own failures."""
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
