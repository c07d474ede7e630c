from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.postgres import PostgresStore
from tests.databases import drop_database, fresh_postgres_url


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    fresh = await fresh_postgres_url()
    try:
        yield fresh
    finally:
        await drop_database(fresh)


@pytest.fixture
async def stores(url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two processes' stores on one fresh database, open."""
    first, second = PostgresStore(url), PostgresStore(url)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()
