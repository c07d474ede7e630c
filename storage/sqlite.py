"""The store on SQLite: aiosqlite, WAL, one writer.

One connection serves every transaction, one at a time behind an asyncio lock,
so SQLite never sees two writers from this process. `BEGIN IMMEDIATE` takes the
write lock up front, so a transaction cannot fail half way for want of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiosqlite

from bot.models import (
    ChatRef,
    Link,
    Status,
    StoredEvent,
    Subscription,
    WebhookEvent,
)
from storage import rows
from storage.migrate import migrate, write_transaction
from storage.rows import optional_time_from, time_from, time_text
from storage.sqlite_messages import SqliteMessages
from storage.sqlite_updates import SqliteTelegramUpdates
from storage.turns import WriterTurns

_EVENT_COLUMNS = (
    "id, type, created_at, order_id, token, amount, currency, reference, body, received_at"
)
_EVENT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_EVENTS_PER_INSERT = 500


# The status test must match the partial index links_moving_due (migration 0003).
_DUE_MOVING = (
    "SELECT * FROM links WHERE next_poll_at <= ?"
    " AND status IN ('processing', 'awaiting_authorization') ORDER BY next_poll_at LIMIT ?"
)
_DUE_ANY = "SELECT * FROM links WHERE next_poll_at <= ? ORDER BY next_poll_at LIMIT ?"
_DUE_IDLE = (
    "SELECT * FROM links WHERE next_poll_at <= ?"
    " AND status NOT IN ('processing', 'awaiting_authorization') ORDER BY next_poll_at LIMIT ?"
)


class SqliteStore:
    """`Store` on one SQLite file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._turns = WriterTurns()

    async def open(self) -> None:
        db = await aiosqlite.connect(self._path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA busy_timeout = 5000")
            await db.execute("PRAGMA journal_mode = WAL")
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
                raise RuntimeError("SqliteStore is not open")
            async with write_transaction(self._db):
                yield SqliteTx(self._db)

    async def ping(self) -> bool:
        async with self._turns.turn():
            if self._db is None:
                return False
            try:
                async with self._db.execute("SELECT 1") as cursor:
                    return await cursor.fetchone() is not None
            except (sqlite3.Error, ValueError):  # ValueError: aiosqlite's closed connection
                return False


class SqliteTx(SqliteMessages, SqliteTelegramUpdates):
    """`Tx` on the store's connection, valid only inside its `transaction()` block.

    Links, tracking, subscriptions and webhook events here; chat messages in
    `SqliteMessages`; long-polled Telegram updates in `SqliteTelegramUpdates`.
    """

    async def _links(self, sql: str, params: Sequence[Any]) -> list[Link]:
        return [rows.link_from(row) for row in await self._rows(sql, params)]

    async def _first_link(self, sql: str, params: Sequence[Any]) -> Link | None:
        found = await self._links(sql, params)
        return found[0] if found else None

    # links

    async def insert_link(self, link: Link) -> None:
        await self._change(rows.INSERT_LINK, rows.link_params(link))

    async def link(self, link_id: str) -> Link | None:
        return await self._first_link("SELECT * FROM links WHERE id = ?", (link_id,))

    async def link_by_token(self, token: str) -> Link | None:
        return await self._first_link("SELECT * FROM links WHERE token = ?", (token,))

    async def link_by_share_code(self, code: str) -> Link | None:
        # '' is never stored (insert_link makes a code instead), so it finds nothing.
        return await self._first_link("SELECT * FROM links WHERE share_code = ?", (code,))

    async def latest_link_for_order(self, order_id: str) -> Link | None:
        return await self._first_link(
            "SELECT * FROM links WHERE order_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (order_id,),
        )

    async def move_status(
        self, link_id: str, old: Status, new: Status, at: datetime, reference: str | None
    ) -> bool:
        changed = await self._change(
            "UPDATE links SET status = ?, status_changed_at = ?,"
            " reference = COALESCE(?, reference) WHERE id = ? AND status = ?",
            (new.value, time_text(at), reference, link_id, old.value),
        )
        if changed == 1:
            await self._record_history(link_id, new, at, reference)
        return changed == 1

    async def confirm(self, link_id: str, at: datetime, reference: str | None) -> bool:
        changed = await self._change(
            "UPDATE links SET confirmed_at = ?, status = 'paid',"
            " reference = COALESCE(?, reference), next_poll_at = NULL"
            " WHERE id = ? AND confirmed_at IS NULL",
            (time_text(at), reference, link_id),
        )
        if changed == 1:
            await self._record_history(link_id, None, at, reference)
        return changed == 1

    async def _record_history(
        self, link_id: str, status: Status | None, at: datetime, reference: str | None
    ) -> None:
        await self._change(
            "INSERT INTO status_history (link_id, status, at, reference) VALUES (?, ?, ?, ?)",
            (link_id, None if status is None else status.value, time_text(at), reference),
        )

    async def status_history(self, link_id: str) -> list[tuple[Status | None, datetime]]:
        found = await self._rows(
            "SELECT status, at FROM status_history WHERE link_id = ? ORDER BY id", (link_id,)
        )
        return [(None if s is None else Status(s), time_from(at)) for s, at in found]

    # tracking

    async def schedule_poll(self, link_id: str, at: datetime | None) -> None:
        await self._change(
            "UPDATE links SET next_poll_at = ? WHERE id = ?",
            (rows.optional_time_text(at), link_id),
        )

    async def due_links(self, now: datetime, limit: int, moving_first: bool = True) -> list[Link]:
        # Two queries, each walking its own index in order, rather than one that
        # sorts every overdue link.
        params = (time_text(now), max(limit, 0))
        if not moving_first:
            return await self._links(_DUE_ANY, params)
        moving = await self._links(_DUE_MOVING, params)
        if len(moving) >= limit:
            return moving
        idle = await self._links(_DUE_IDLE, (params[0], limit - len(moving)))
        return moving + idle

    async def next_poll_at(self) -> datetime | None:
        row = await self._row("SELECT MIN(next_poll_at) FROM links")
        return None if row is None else optional_time_from(row[0])

    async def tracked_count(self) -> int:
        return await self._count("SELECT COUNT(*) FROM links WHERE next_poll_at IS NOT NULL")

    # subscriptions

    async def subscribe(self, subscription: Subscription) -> bool:
        # Only the primary key conflict means "already subscribed"; any other
        # violation (an unknown link) still raises.
        changed = await self._change(
            "INSERT INTO subscriptions (link_id, channel, chat_id, role, message_id)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (link_id, channel, chat_id) DO NOTHING",
            (
                subscription.link_id,
                subscription.chat.channel,
                subscription.chat.chat_id,
                subscription.role.value,
                subscription.message_id,
            ),
        )
        return changed == 1

    async def subscriptions(self, link_id: str) -> list[Subscription]:
        found = await self._rows(
            "SELECT * FROM subscriptions WHERE link_id = ? ORDER BY rowid", (link_id,)
        )
        return [rows.subscription_from(row) for row in found]

    async def set_message_id(self, link_id: str, chat: ChatRef, message_id: str) -> None:
        await self._change(
            "UPDATE subscriptions SET message_id = ?"
            " WHERE link_id = ? AND channel = ? AND chat_id = ?",
            (message_id, link_id, chat.channel, chat.chat_id),
        )

    async def links_for_chat(self, chat: ChatRef) -> list[Link]:
        return await self._links(
            "SELECT * FROM links WHERE id IN"
            " (SELECT link_id FROM subscriptions WHERE channel = ? AND chat_id = ?)"
            " ORDER BY created_at DESC, rowid DESC",
            (chat.channel, chat.chat_id),
        )

    # webhook events

    async def record_event(self, event: WebhookEvent, body: bytes, at: datetime) -> bool:
        changed = await self._change(
            "INSERT INTO webhook_events (id, type, created_at, order_id, token, amount,"
            " currency, reference, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            rows.event_params(event, body, at),
        )
        return changed == 1

    async def record_events(
        self, events: Sequence[tuple[WebhookEvent, bytes]], at: datetime
    ) -> set[str]:
        # One statement (one round trip to the database thread) per chunk, not one per
        # event; the chunk keeps within SQLite's 32,766 bound parameters.
        new: set[str] = set()
        for start in range(0, len(events), _EVENTS_PER_INSERT):
            chunk = events[start : start + _EVENTS_PER_INSERT]
            values = ", ".join([_EVENT_ROW] * len(chunk))
            params = [
                value for event, body in chunk for value in rows.event_params(event, body, at)
            ]
            inserted = await self._rows(
                # Only constants and placeholders are joined into the text, never input.
                f"INSERT INTO webhook_events ({_EVENT_COLUMNS}) VALUES {values}"  # noqa: S608
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                params,
            )
            new.update(row[0] for row in inserted)
        return new

    async def unapplied_events(self, limit: int) -> list[StoredEvent]:
        found = await self._rows(
            "SELECT * FROM webhook_events WHERE applied_at IS NULL ORDER BY seq LIMIT ?",
            (max(limit, 0),),
        )
        return [rows.stored_event_from(row) for row in found]

    async def mark_applied(self, event_id: str, at: datetime) -> None:
        await self._change(
            "UPDATE webhook_events SET applied_at = ? WHERE id = ? AND applied_at IS NULL",
            (time_text(at), event_id),
        )
