"""The contract suite runs every test once on each store.

`store` is an opened store on a fresh database; `open_store` opens another store
on that same database, standing for another process (another SqliteStore on the
same file, another PostgresStore on the same URL). Each implementation is imported
inside the fixture, so a store that does not exist yet fails only its own tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.ports import Store
from tests.databases import drop_database, fresh_postgres_url
from tests.storage.contract.support import OpenStore


@pytest.fixture(params=["sqlite", "postgres"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Open a store on this test's database; every one opened is closed after."""
    url: str | None = None
    if request.param == "sqlite":
        from storage.sqlite import SqliteStore

        path = str(tmp_path / "paybot.db")

        def make() -> Store:
            return SqliteStore(path)
    else:
        from storage.postgres import PostgresStore

        url = await fresh_postgres_url()
        database = url

        def make() -> Store:
            return PostgresStore(database)

    opened: list[Store] = []

    async def open_one() -> Store:
        store = make()
        await store.open()
        opened.append(store)
        return store

    try:
        yield open_one
    finally:
        try:
            for store in reversed(opened):
                await store.close()
        finally:
            if url is not None:
                await drop_database(url)


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()
