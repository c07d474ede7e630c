"""Schema migrations: numbered SQL files, applied in order, tracked by `PRAGMA user_version`."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from importlib import resources

import aiosqlite

from bot.errors import ConfigError

_MIGRATION_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def migrations() -> list[tuple[int, str]]:
    """The packaged migrations as (version, sql), numbered 1, 2, 3... without gaps."""
    folder = resources.files("storage.sqlite").joinpath("migrations")
    found = sorted(
        (int(match[1]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (match := _MIGRATION_FILE.fullmatch(entry.name))
    )
    if [version for version, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("storage/sqlite/migrations must be numbered 0001, 0002, ... in turn")
    return found


def sql_statements(script: str) -> Iterator[str]:
    """Split a migration into statements.

    `executescript` would commit our open transaction first, so each statement
    runs on its own inside the migration's transaction instead.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    if statement.strip():
        yield statement  # only comments are left, or SQLite reports what is wrong


@asynccontextmanager
async def write_transaction(db: aiosqlite.Connection) -> AsyncIterator[None]:
    try:
        # Inside the try: a task cancelled while BEGIN runs on aiosqlite's thread
        # must still roll back, or the connection is left in a transaction.
        await db.execute("BEGIN IMMEDIATE")
        yield
        # COMMIT, not db.commit(): the latter is silent when SQLite has already
        # rolled back on its own (a full disk), and the work would vanish unsaid.
        await db.execute("COMMIT")
    except BaseException:
        await db.rollback()  # a no-op when SQLite already rolled back
        raise


async def migrate(db: aiosqlite.Connection, path: str) -> None:
    """Bring the database up to this paybot's schema, one transaction a version."""
    known = migrations()
    found = await _user_version(db)
    if found > len(known):
        raise ConfigError(
            "PAYBOT_DATABASE",
            f"{path} has schema version {found}, newer than this paybot's "
            f"{len(known)}; upgrade paybot",
        )
    for version, script in known[found:]:
        async with write_transaction(db):
            # Read again under the write lock: another process may have migrated.
            if await _user_version(db) >= version:
                continue
            for statement in sql_statements(script):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {version:d}")


async def _user_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0
