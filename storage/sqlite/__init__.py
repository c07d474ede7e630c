"""The store on SQLite: aiosqlite, WAL, one writer.

One connection serves every transaction, one at a time (storage/sqlite/turns.py),
so SQLite never sees two writers from this process, and `BEGIN IMMEDIATE` takes the
write lock up front, so a transaction cannot fail half way for want of it. Another
process on the same file waits for the lock (busy_timeout). The core relies on none
of this for correctness: the same statements that make claims atomic on PostgreSQL
are atomic here because each runs inside one writer's transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiosqlite

from bot.errors import ConfigError, StoreUnavailable
from storage.sqlite.chat_settings import SqliteChatSettings
from storage.sqlite.follow_ups import SqliteFollowUps
from storage.sqlite.inbox import SqliteContacts, SqliteInbox
from storage.sqlite.limits import SqliteLimits
from storage.sqlite.links import SqliteLinks, SqlitePolls, SqliteSubscriptions
from storage.sqlite.migrate import migrate, write_transaction
from storage.sqlite.outbox import SqliteOutbox
from storage.sqlite.reports import SqliteDigests, SqliteExports, SqliteReports
from storage.sqlite.roles import SqliteRoles
from storage.sqlite.statements import store_error
from storage.sqlite.turns import WriterTurns

WAL_TRIES = 20  # about 10 s of waiting in all
SETTING = "PAYBOT_DATABASE"
# SQLite's answers when the path is the wrong one, not when the file is busy: no such
# folder, a folder, a file that may not be opened, a file that is no SQLite database.
_UNUSABLE_FILE = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB}


def _try_to_open(path: str) -> None:
    sqlite3.connect(path).close()


class SqliteStore:
    """`Store` on one SQLite file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._turns = WriterTurns()

    async def open(self) -> None:
        """Open and migrate. A path that names no file SQLite can use raises ConfigError."""
        try:
            await self._open()
        except sqlite3.Error as error:
            if (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF not in _UNUSABLE_FILE:
                raise
            problem = f"cannot use {self._path} as a SQLite database ({error})"
            raise ConfigError(SETTING, problem) from None

    async def _open(self) -> None:
        # sqlite3's own connect first: aiosqlite's, when it fails, leaves its worker
        # thread to report to an event loop that may be closed by then (a traceback
        # after the one clear line).
        await asyncio.to_thread(_try_to_open, self._path)
        db = await aiosqlite.connect(self._path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA busy_timeout = 5000")
            await _enter_wal_mode(db)
            # FULL: a webhook is acknowledged only once its row survives power loss.
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA foreign_keys = ON")
            await migrate(db, self._path)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        async with self._turns.turn():
            if self._db is not None:
                db, self._db = self._db, None
                await db.close()

    @asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[SqliteTx]:
        async with self._turns.turn(urgent):
            if self._db is None:
                raise StoreUnavailable("the SQLite store is not open")
            try:
                async with write_transaction(self._db):
                    yield SqliteTx(self._db)
            except Exception as error:
                translated = store_error(error)
                if translated is None:
                    raise
                raise translated from error

    async def watch(self, wake: Callable[[str], None]) -> None:
        """Nothing to watch: one process owns the file, and wakes its parts itself."""
        await asyncio.Event().wait()

    async def ping(self) -> bool:
        async with self._turns.turn():
            if self._db is None:
                return False
            try:
                async with self._db.execute("SELECT 1") as cursor:
                    return await cursor.fetchone() is not None
            except (sqlite3.Error, ValueError):  # ValueError: aiosqlite's closed connection
                return False


async def _enter_wal_mode(db: aiosqlite.Connection) -> None:
    """Switch to WAL, waiting for processes that open the same new file at this moment.

    The switch takes an exclusive lock without heeding busy_timeout, so another
    process opening the file together with this one makes it fail at once.
    """
    for attempt in range(WAL_TRIES):
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == WAL_TRIES - 1:
                raise StoreUnavailable(f"SQLite could not enter WAL mode: {error}") from error
            await asyncio.sleep(0.05 * (attempt + 1))


class SqliteTx:
    """`Tx` on the store's connection, valid only inside its `transaction()` block."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.links = SqliteLinks(db)
        self.polls = SqlitePolls(db)
        self.subscriptions = SqliteSubscriptions(db)
        self.outbox = SqliteOutbox(db)
        self.inbox = SqliteInbox(db)
        self.contacts = SqliteContacts(db)
        self.roles = SqliteRoles(db)
        self.limits = SqliteLimits(db)
        self.reports = SqliteReports(db)
        self.digests = SqliteDigests(db)
        self.exports = SqliteExports(db)
        self.chat_settings = SqliteChatSettings(db)
        self.follow_ups = SqliteFollowUps(db)
