"""PostgresStore's schema: applied once however many processes open it together."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.errors import ConfigError
from storage.postgres import PostgresStore
from storage.postgres.migrate import migrations


async def _applied(url: str) -> list[tuple[int, int]]:
    """(version, times recorded) for each version in schema_version."""
    connection = await asyncpg.connect(url)
    try:
        found = await connection.fetch(
            "SELECT version, count(*) FROM schema_version GROUP BY version ORDER BY version"
        )
    finally:
        await connection.close()
    return [(row[0], row[1]) for row in found]


async def _connections_left(url: str) -> int:
    """Sessions other than this one still connected to the database, once those that
    are closing have gone (a backend leaves pg_stat_activity shortly after its client)."""
    connection = await asyncpg.connect(url)
    try:
        for _ in range(100):
            left = int(
                await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            if left == 0:
                break
            await asyncio.sleep(0.05)
        return left
    finally:
        await connection.close()


async def test_stores_opening_together_on_a_fresh_database_migrate_it_once(url: str) -> None:
    stores = [PostgresStore(url) for _ in range(5)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        assert [await store.ping() for store in stores] == [True] * 5
    finally:
        for store in stores:
            await store.close()
    assert await _applied(url) == [(version, 1) for version, _ in migrations()]


async def test_opening_an_up_to_date_database_again_changes_nothing(url: str) -> None:
    for _ in range(2):
        store = PostgresStore(url)
        await store.open()
        await store.close()
    assert await _applied(url) == [(version, 1) for version, _ in migrations()]


async def test_a_schema_newer_than_this_paybot_is_refused_and_nothing_stays_connected(
    url: str,
) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()
    newer = len(migrations()) + 1
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", newer)
    finally:
        await connection.close()

    with pytest.raises(ConfigError) as refused:
        await PostgresStore(url).open()

    assert refused.value.setting == "PAYBOT_DATABASE"
    assert f"schema version {newer}, newer than this paybot's {newer - 1}" in str(refused.value)
    assert "upgrade paybot" in str(refused.value)
    assert await _connections_left(url) == 0


def test_the_migrations_are_numbered_in_turn_from_one() -> None:
    assert [version for version, _ in migrations()] == list(range(1, len(migrations()) + 1))


@pytest.fixture
async def stranger(url: str) -> AsyncIterator[str]:
    """The URL of `url`'s database for a new user that owns nothing in it."""
    role = "paybot_test_" + secrets.token_hex(6)
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")  # a name made here, never input
        parts = urlsplit(url)
        where = f"{parts.hostname}:{parts.port or 5432}"
        yield urlunsplit(parts._replace(netloc=f"{role}@{where}"))
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_a_user_that_may_not_create_the_tables_is_a_settings_error(stranger: str) -> None:
    with pytest.raises(ConfigError) as refused:
        await PostgresStore(stranger).open()
    assert refused.value.setting == "PAYBOT_DATABASE"
    assert "may not set up paybot's tables (permission denied" in str(refused.value)
