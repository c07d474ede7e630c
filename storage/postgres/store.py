"""The store on PostgreSQL: asyncpg, a pool, one connection a transaction.

Several processes may share the database (CONTRACT §6); nothing here holds state
that another process would need to see. Transactions run at READ COMMITTED, side
by side: what must be exclusive is made so by the statements themselves
(conditional updates, claims with FOR UPDATE SKIP LOCKED, row locks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import asyncpg

from bot.errors import StoreError, StoreUnavailable
from storage.postgres.chat_settings import PostgresChatSettings
from storage.postgres.chats import PostgresContacts, PostgresSubscriptions
from storage.postgres.driver_errors import translated_errors
from storage.postgres.follow_ups import PostgresFollowUps
from storage.postgres.inbox import PostgresInbox
from storage.postgres.limits import PostgresLimits
from storage.postgres.links import PostgresLinks, PostgresPollSchedule
from storage.postgres.migrate import migrate
from storage.postgres.outbox import PostgresOutbox
from storage.postgres.pool import create_pool
from storage.postgres.reports import PostgresDigests, PostgresExports, PostgresReports
from storage.postgres.roles import PostgresRoles
from storage.postgres.statements import Statements

log = logging.getLogger(__name__)

PING_SECONDS = 5.0
WORK_CHANNEL = "paybot_work"  # migration 0004's triggers notify it as work is stored
LISTEN_RETRY = 5.0  # seconds between checks of the listening connection, and reconnects


class PostgresTx:
    """`Tx` on one connection, valid only inside its `transaction()` block."""

    def __init__(self, statements: Statements) -> None:
        self._statements = statements
        self._links = PostgresLinks(statements)
        self._polls = PostgresPollSchedule(statements)
        self._subscriptions = PostgresSubscriptions(statements)
        self._outbox = PostgresOutbox(statements)
        self._inbox = PostgresInbox(statements)
        self._contacts = PostgresContacts(statements)
        self._roles = PostgresRoles(statements)
        self._limits = PostgresLimits(statements)
        self._reports = PostgresReports(statements)
        self._digests = PostgresDigests(statements)
        self._exports = PostgresExports(statements)
        self._chat_settings = PostgresChatSettings(statements)
        self._follow_ups = PostgresFollowUps(statements)

    @property
    def links(self) -> PostgresLinks:
        return self._links

    @property
    def polls(self) -> PostgresPollSchedule:
        return self._polls

    @property
    def subscriptions(self) -> PostgresSubscriptions:
        return self._subscriptions

    @property
    def outbox(self) -> PostgresOutbox:
        return self._outbox

    @property
    def inbox(self) -> PostgresInbox:
        return self._inbox

    @property
    def contacts(self) -> PostgresContacts:
        return self._contacts

    @property
    def roles(self) -> PostgresRoles:
        return self._roles

    @property
    def limits(self) -> PostgresLimits:
        return self._limits

    @property
    def reports(self) -> PostgresReports:
        return self._reports

    @property
    def digests(self) -> PostgresDigests:
        return self._digests

    @property
    def exports(self) -> PostgresExports:
        return self._exports

    @property
    def chat_settings(self) -> PostgresChatSettings:
        return self._chat_settings

    @property
    def follow_ups(self) -> PostgresFollowUps:
        return self._follow_ups


class PostgresStore:
    """`Store` on one PostgreSQL database, named by a `postgresql://` URL."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        # The server processes of this pool's connections: a notice one of them sent is
        # work this process stored itself, and woke its own loops for as it did.
        self._backends: set[int] = set()

    async def open(self) -> None:
        """Connect and migrate. A URL or server that does not serve raises ConfigError."""
        pool = await create_pool(self._url, self._connect_timeout, self._opened)
        try:
            with translated_errors():
                async with pool.acquire() as connection:
                    await migrate(connection)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[PostgresTx]:
        # `urgent` asks nothing of PostgreSQL: transactions do not queue behind one
        # another here, so there is no queue to jump.
        if self._pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        with translated_errors():
            async with self._pool.acquire() as connection:
                transaction = connection.transaction(isolation="read_committed")
                await transaction.start()
                statements = Statements(connection)
                try:
                    yield PostgresTx(statements)
                except BaseException:
                    await _roll_back(transaction)
                    raise
                finally:
                    statements.end()
                await _commit(transaction, statements)

    async def _opened(self, connection: asyncpg.Connection) -> None:
        backend = connection.get_server_pid()
        self._backends.add(backend)
        connection.add_termination_listener(lambda _: self._backends.discard(backend))

    async def watch(self, wake: Callable[[str], None]) -> None:
        """Wake for work another process stored (its transaction's notice, at commit).

        Notices this process's own connections sent are left out: whatever stores
        work here wakes the loop that acts on it directly, as it must on SQLite,
        which has no notices, and a second wake would cost each loop one more look.
        """

        def from_elsewhere(backend: int, topic: str) -> None:
            if backend not in self._backends:
                wake(topic)

        await _listen(self._url, self._connect_timeout, from_elsewhere)

    async def ping(self) -> bool:
        if self._pool is None:
            return False
        try:
            with translated_errors():
                answer = await self._pool.fetchval("SELECT 1", timeout=PING_SECONDS)
        except StoreError:
            return False
        return bool(answer == 1)


async def _listen(url: str, connect_seconds: float, wake: Callable[[int, str], None]) -> None:
    """LISTEN on a connection of its own until cancelled; reconnect when it drops."""
    while True:
        try:
            connection = await asyncpg.connect(url, timeout=connect_seconds)
        except (OSError, asyncpg.PostgresError, TimeoutError) as error:
            log.warning("postgres: cannot listen for wake-ups (%s); again in 5 s", error)
            await asyncio.sleep(LISTEN_RETRY)
            continue
        try:
            await _until_closed(connection, wake)
        finally:
            with suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await connection.close()


async def _until_closed(connection: asyncpg.Connection, wake: Callable[[int, str], None]) -> None:
    def notified(_connection: object, backend: int, _channel: str, topic: str) -> None:
        wake(backend, topic)

    closed = asyncio.Event()
    connection.add_termination_listener(lambda _connection: closed.set())
    await connection.add_listener(WORK_CHANNEL, notified)
    await closed.wait()  # notices arrive through `notified` meanwhile


async def _roll_back(transaction: asyncpg.transaction.Transaction) -> None:
    """Roll back, leaving a connection already lost to the pool, which drops it."""
    with suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        await transaction.rollback()


async def _commit(transaction: asyncpg.transaction.Transaction, statements: Statements) -> None:
    """Commit; or, when a statement failed (and PostgreSQL aborted the transaction
    though the block went on), roll back and raise that failure again, since a
    COMMIT would roll back without a word."""
    failure = statements.failure
    if failure is None:
        await transaction.commit()
        return
    await _roll_back(transaction)
    if isinstance(failure, StoreError):
        raise type(failure)(f"rolled back, after: {failure}") from failure
    raise RuntimeError(f"rolled back, after a failed statement: {failure!r}") from failure
