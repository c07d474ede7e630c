"""The store each measure runs on: a SQLite file in its folder, or a fresh PostgreSQL database.

For PostgreSQL the bench creates a database of its own for each measure on the
server named by `PAYBOT_BENCH_POSTGRES` and drops it afterwards, so no measure
inherits another's rows, bloat or statistics.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SQLITE, POSTGRES = "sqlite", "postgres"
STORES = (SQLITE, POSTGRES)  # in the order they run and are shown
LABELS = {SQLITE: "SQLite", POSTGRES: "PostgreSQL"}
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "paybot_bench_"  # every database the bench creates, and the only ones it drops
CONNECT_TIMEOUT = 5.0
# What asyncpg raises for a URL it cannot read, a server that is not there or refuses.
NO_SERVER = (OSError, TimeoutError, ValueError, asyncpg.InterfaceError, asyncpg.PostgresError)


@dataclass(frozen=True)
class Database:
    store: str  # SQLITE or POSTGRES
    setting: str  # what PAYBOT_DATABASE is set to: a file path or a postgresql:// URL


def server_url() -> str:
    return os.environ.get("PAYBOT_BENCH_POSTGRES", DEFAULT_SERVER)


def shown(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}{port}"))


async def unreachable(url: str) -> str | None:
    """Why the server at `url` cannot be used, or None when it answers."""
    try:
        admin = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except NO_SERVER as error:
        return f"{type(error).__name__}: {error}"
    await admin.close()
    return None


@contextlib.asynccontextmanager
async def provisioned(store: str, workdir: Path) -> AsyncIterator[Database]:
    """The database one measure runs on; a PostgreSQL one is dropped when the block ends."""
    if store == SQLITE:
        yield Database(SQLITE, str(workdir / "paybot.db"))
        return
    server = server_url()
    name = PREFIX + secrets.token_hex(6)
    await _admin(server, f'CREATE DATABASE "{name}"')  # a name made here, never input
    try:
        yield Database(POSTGRES, urlunsplit(urlsplit(server)._replace(path="/" + name)))
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(server: str, statement: str) -> None:
    admin = await asyncpg.connect(server, timeout=CONNECT_TIMEOUT)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()
