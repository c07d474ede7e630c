from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.databases import drop_database, fresh_postgres_url


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    fresh = await fresh_postgres_url()
    try:
        yield fresh
    finally:
        await drop_database(fresh)
