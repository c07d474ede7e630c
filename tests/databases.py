"""Databases for tests: a SQLite file, or a fresh PostgreSQL database for each test.

`PAYBOT_TEST_POSTGRES` names a server where the tests may create databases
(default `postgresql://postgres@127.0.0.1:5432/postgres`). Without one, the tests
that need PostgreSQL are skipped and the summary says why; with
`PAYBOT_REQUIRE_POSTGRES=1` (set by `.ci/run`) they fail instead, so CI can
never skip them.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "paybot_test_"


def server_url() -> str:
    return os.environ.get("PAYBOT_TEST_POSTGRES", DEFAULT_SERVER)


def postgres_required() -> bool:
    return os.environ.get("PAYBOT_REQUIRE_POSTGRES") == "1"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(server_url(), timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        reason = f"PostgreSQL tests need a server at PAYBOT_TEST_POSTGRES ({error})"
        if postgres_required():
            pytest.fail(reason + "; PAYBOT_REQUIRE_POSTGRES=1 forbids skipping them")
        pytest.skip(reason)


async def fresh_postgres_url() -> str:
    """The URL of a new, empty database on the test server; dropped by `drop_database`."""
    admin = await _admin()
    name = PREFIX + secrets.token_hex(6)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')  # a name made here, never input
    finally:
        await admin.close()
    return with_database(server_url(), name)


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if not name.startswith(PREFIX):
        raise ValueError(f"not a test database: {name}")
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
