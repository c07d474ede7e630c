"""What the bot's database holds, read by the bench itself, on either store.

Read after the bot has stopped (or, for a count, while it runs), through the
store's own driver: sqlite3 read-only on the file, asyncpg on the URL. Each
question is one constant statement per store; only placeholders vary.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.databases import SQLITE, Database
from bot.models import CONFIRMED_WORDS


@dataclass(frozen=True)
class Queries:
    event_ids: str  # Cimplify event ids in the inbox
    unfinished: str  # of those, how many were never applied
    confirmed_links: str
    confirmations_by_chat: str  # (chat_id, "Confirmed" texts queued); one parameter: the words
    tracked_links: str  # links the poller still follows


# Cimplify events are inbox entries with source 'cimplify' and the event id as source_id.
SQLITE_QUERIES = Queries(
    event_ids="SELECT source_id FROM inbox WHERE source = 'cimplify'",
    unfinished="SELECT COUNT(*) FROM inbox WHERE source = 'cimplify' AND finished_at IS NULL",
    confirmed_links="SELECT COUNT(*) FROM links WHERE confirmed_at IS NOT NULL",
    confirmations_by_chat="SELECT chat_id, COUNT(*) FROM outbox"
    " WHERE kind = 'text' AND instr(text, ?) > 0 GROUP BY chat_id",
    tracked_links="SELECT COUNT(*) FROM links WHERE next_poll_at IS NOT NULL",
)
POSTGRES_QUERIES = Queries(
    event_ids=SQLITE_QUERIES.event_ids,
    unfinished=SQLITE_QUERIES.unfinished,
    confirmed_links=SQLITE_QUERIES.confirmed_links,
    confirmations_by_chat="SELECT chat_id, COUNT(*) FROM outbox"
    " WHERE kind = 'text' AND strpos(text, $1) > 0 GROUP BY chat_id",
    tracked_links=SQLITE_QUERIES.tracked_links,
)

POLL_INTERVAL = 0.05  # seconds between two looks at a running bot's database
Fetch = Callable[..., Awaitable[list[Sequence[Any]]]]  # (sql, *parameters) -> rows


@dataclass(frozen=True)
class Stored:
    """What the bot's database holds about the webhooks it was sent."""

    event_ids: set[str]
    unapplied: int
    confirmed_links: int
    confirmations_by_chat: dict[str, int]  # "Confirmed" texts queued, per chat


async def read_store(database: Database) -> Stored:
    async with _connected(database) as (fetch, queries):
        ids = {str(row[0]) for row in await fetch(queries.event_ids)}
        unapplied = await fetch(queries.unfinished)
        confirmed = await fetch(queries.confirmed_links)
        by_chat = await fetch(queries.confirmations_by_chat, CONFIRMED_WORDS)
    chats = {str(chat): int(count) for chat, count in by_chat}
    return Stored(ids, int(unapplied[0][0]), int(confirmed[0][0]), chats)


async def until_confirmed(database: Database, links: int, timeout: float) -> float | None:  # noqa: ASYNC109
    """Seconds until `links` links are confirmed in the database, or None after `timeout`.

    Asked every POLL_INTERVAL on one read-only connection while the bot runs: a count
    over a few thousand rows, far cheaper than what it waits for.
    """
    started = time.monotonic()
    async with _connected(database) as (fetch, queries):
        while time.monotonic() - started < timeout:
            if int((await fetch(queries.confirmed_links))[0][0]) >= links:
                return time.monotonic() - started
            await asyncio.sleep(POLL_INTERVAL)
    return None


async def tracked_links(database: Database) -> int:
    async with _connected(database) as (fetch, queries):
        rows = await fetch(queries.tracked_links)
    return int(rows[0][0])


@contextlib.asynccontextmanager
async def _connected(database: Database) -> AsyncIterator[tuple[Fetch, Queries]]:
    if database.store == SQLITE:
        uri = f"file:{database.setting}?mode=ro"
        db = await asyncio.to_thread(sqlite3.connect, uri, uri=True, check_same_thread=False)

        async def fetch_sqlite(sql: str, *parameters: object) -> list[Sequence[Any]]:
            return await asyncio.to_thread(lambda: db.execute(sql, parameters).fetchall())

        try:
            yield fetch_sqlite, SQLITE_QUERIES
        finally:
            db.close()
        return
    connection = await asyncpg.connect(database.setting)

    async def fetch_postgres(sql: str, *parameters: object) -> list[Sequence[Any]]:
        return [tuple(record) for record in await connection.fetch(sql, *parameters)]

    try:
        yield fetch_postgres, POSTGRES_QUERIES
    finally:
        await connection.close()
