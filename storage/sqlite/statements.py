"""Statements on the SQLite connection, and SQLite's failures in the core's terms."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from bot.errors import StoreError, StoreRejected, StoreUnavailable


class SqliteStatements:
    """Statements on the store's connection, inside a transaction the store opened.

    Each statement is one round trip to aiosqlite's thread (execute and fetch there
    together), not one for each of execute, fetch and close: under load every round
    trip waits its turn on the event loop, and the store's turn is held meanwhile.
    A write run to completion leaves nothing open in its cursor, so it is not closed.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(await self._db.execute_fetchall(sql, params))

    async def _row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return next(iter(await self._rows(sql, params)), None)

    async def _change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; the number of rows it changed."""
        cursor = await self._db.execute(sql, params)
        return cursor.rowcount

    async def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        row = await self._row(sql, params)
        return 0 if row is None else int(row[0])


def store_error(error: BaseException) -> StoreError | None:
    """The core's word for a failure of SQLite's, or None when it is not one (a bug).

    Locked, busy, disk full, I/O errors and a closed connection pass: the work waits
    and is tried again. A broken constraint, or a string SQLite cannot encode (a lone
    surrogate), never will be stored, however often it is tried.
    """
    if isinstance(error, sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return None  # a statement that is wrong, whatever the database holds
    if isinstance(error, sqlite3.IntegrityError | UnicodeEncodeError):
        return StoreRejected(f"SQLite refused the data: {error}")
    if isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError):
        return StoreUnavailable(f"SQLite failed: {error}")
    if isinstance(error, ValueError) and "no active connection" in str(error):
        return StoreUnavailable("the SQLite connection is closed")  # aiosqlite's word for it
    return None
