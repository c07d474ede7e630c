"""The chat-message half of `SqliteTx`: the outbox, delivery receipts, inbound messages.

`SqliteStatements` holds the statement helpers that both halves use.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from bot.models import ChatRef, DeliveryStatus, InboundMessage, MessageKind, Outgoing, QueuedMessage
from storage import rows
from storage.rows import optional_time_from, time_text

_ERROR_CHARS = 1000  # errors can quote hostile input; keep the row bounded


class SqliteStatements:
    """Statements on the store's connection, inside a transaction the store opened.

    Each statement is one round trip to aiosqlite's thread (execute and fetch there
    together), not one for each of execute, fetch and close: under load every round
    trip waits its turn on the event loop, and the store's lock is held meanwhile.
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

    async def _count(self, sql: str) -> int:
        row = await self._row(sql)
        return 0 if row is None else int(row[0])


class SqliteMessages(SqliteStatements):
    """Chat messages out (the outbox and its receipts) and in."""

    # outbox

    async def enqueue(self, messages: Sequence[Outgoing], at: datetime) -> list[int]:
        ids: list[int] = []
        for message in messages:
            cursor = await self._db.execute(
                "INSERT INTO outbox (channel, chat_id, kind, text, link_id, buttons,"
                " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows.outgoing_params(message, at),
            )
            assert cursor.lastrowid is not None  # an INSERT always sets it
            ids.append(cursor.lastrowid)
        return ids

    async def due_messages(
        self,
        now: datetime,
        limit: int,
        skip_chats: frozenset[ChatRef] = frozenset(),
        kinds: frozenset[MessageKind] | None = None,
    ) -> list[QueuedMessage]:
        # A chat has one head at most, so skipping drops at most len(skip_chats) rows.
        wanted = sorted(kind.value for kind in (kinds if kinds is not None else MessageKind))
        found = await self._rows(
            "SELECT * FROM outbox_heads WHERE next_attempt_at <= ?"
            " AND kind IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?",
            (time_text(now), json.dumps(wanted), max(limit, 0) + len(skip_chats)),
        )
        heads = [rows.queued_message_from(row) for row in found]
        return [m for m in heads if m.message.chat not in skip_chats][: max(limit, 0)]

    async def next_message_at(self) -> datetime | None:
        # Heads only: a later message cannot go before its chat's head, so its
        # own due time would wake the sender for nothing, again and again.
        row = await self._row("SELECT MIN(next_attempt_at) FROM outbox_heads")
        return None if row is None else optional_time_from(row[0])

    async def mark_sent(
        self, message_id: int, at: datetime, remote_id: str | None = None
    ) -> DeliveryStatus | None:
        sent = await self._rows(
            "UPDATE outbox SET sent_at = ?, remote_id = ?"
            " WHERE id = ? AND sent_at IS NULL AND dropped_at IS NULL RETURNING channel",
            (time_text(at), remote_id, message_id),
        )
        if not sent or remote_id is None:
            return None
        return await self._apply_early_receipt(message_id, sent[0]["channel"], remote_id)

    async def _apply_early_receipt(
        self, message_id: int, channel: str, remote_id: str
    ) -> DeliveryStatus | None:
        early = await self._rows(
            "DELETE FROM early_receipts WHERE channel = ? AND remote_id = ? RETURNING status, at",
            (channel, remote_id),
        )
        if not early:
            return None
        await self._change(
            "UPDATE outbox SET delivery_status = ?, delivery_status_at = ? WHERE id = ?",
            (early[0]["status"], early[0]["at"], message_id),
        )
        return DeliveryStatus(early[0]["status"])

    async def retry_message(self, message_id: int, at: datetime, error: str) -> None:
        await self._change(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ? AND sent_at IS NULL AND dropped_at IS NULL",
            (time_text(at), error[:_ERROR_CHARS], message_id),
        )

    async def drop_message(self, message_id: int, at: datetime, error: str) -> None:
        await self._change(
            "UPDATE outbox SET attempts = attempts + 1, dropped_at = ?, last_error = ?"
            " WHERE id = ? AND sent_at IS NULL AND dropped_at IS NULL",
            (time_text(at), error[:_ERROR_CHARS], message_id),
        )

    async def pending_count(self) -> int:
        return await self._count(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND dropped_at IS NULL"
        )

    # delivery receipts

    async def record_delivery(
        self, channel: str, remote_id: str, status: DeliveryStatus, at: datetime
    ) -> QueuedMessage | None:
        # Telegram's ids repeat across chats, so only the newest message carrying
        # the id is a candidate; Twilio's MessageSids never repeat. The statuses it
        # may move from come from DeliveryStatus.rank, so the order lives in one place.
        lower = [s.value for s in DeliveryStatus if s.rank < status.rank]
        moved = await self._rows(
            "UPDATE outbox SET delivery_status = ?, delivery_status_at = ?"
            " WHERE id = (SELECT MAX(id) FROM outbox WHERE channel = ? AND remote_id = ?)"
            " AND (delivery_status IS NULL"
            " OR delivery_status IN (SELECT value FROM json_each(?))) RETURNING *",
            (status.value, time_text(at), channel, remote_id, json.dumps(lower)),
        )
        if moved:
            return rows.queued_message_from(moved[0])
        await self._keep_early_receipt(channel, remote_id, status, at)
        return None

    async def _keep_early_receipt(
        self, channel: str, remote_id: str, status: DeliveryStatus, at: datetime
    ) -> None:
        """A receipt for an id no sent message carries yet: keep the highest one."""
        known = await self._row(
            "SELECT 1 FROM outbox WHERE channel = ? AND remote_id = ?", (channel, remote_id)
        )
        if known is not None:
            return  # the message is known and already at or past this status
        kept = await self._row(
            "SELECT status FROM early_receipts WHERE channel = ? AND remote_id = ?",
            (channel, remote_id),
        )
        if kept is not None and DeliveryStatus(kept["status"]).rank >= status.rank:
            return
        await self._change(
            "INSERT INTO early_receipts (channel, remote_id, status, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (channel, remote_id) DO UPDATE SET status = excluded.status,"
            " at = excluded.at",
            (channel, remote_id, status.value, time_text(at)),
        )

    async def delivery_status(
        self, link_id: str, chat: ChatRef, kind: MessageKind
    ) -> DeliveryStatus | None:
        row = await self._row(
            "SELECT delivery_status FROM outbox"
            " WHERE link_id = ? AND channel = ? AND chat_id = ? AND kind = ?"
            " AND sent_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            (link_id, chat.channel, chat.chat_id, kind.value),
        )
        found = None if row is None else row["delivery_status"]
        return None if found is None else DeliveryStatus(found)

    # inbound chat messages

    async def record_inbound(self, message: InboundMessage) -> bool:
        added = await self._change(
            "INSERT INTO inbound_messages (channel, chat_id, message_id, text, received_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, message_id) DO NOTHING",
            rows.inbound_params(message),
        )
        if added != 1:
            return False
        # max(): a delayed retry of an older message must not move the time back.
        await self._change(
            "INSERT INTO contacts (channel, chat_id, last_inbound_at) VALUES (?, ?, ?)"
            " ON CONFLICT (channel, chat_id) DO UPDATE"
            " SET last_inbound_at = max(last_inbound_at, excluded.last_inbound_at)",
            (message.chat.channel, message.chat.chat_id, time_text(message.received_at)),
        )
        return True

    async def last_inbound_at(self, chat: ChatRef) -> datetime | None:
        row = await self._row(
            "SELECT last_inbound_at FROM contacts WHERE channel = ? AND chat_id = ?",
            (chat.channel, chat.chat_id),
        )
        return None if row is None else optional_time_from(row[0])

    async def unhandled_inbound(self, limit: int) -> list[InboundMessage]:
        found = await self._rows(
            "SELECT * FROM inbound_messages WHERE handled_at IS NULL ORDER BY seq LIMIT ?",
            (max(limit, 0),),
        )
        return [rows.inbound_from(row) for row in found]

    async def mark_handled(self, chat: ChatRef, message_id: str, at: datetime) -> None:
        await self._change(
            "UPDATE inbound_messages SET handled_at = ?"
            " WHERE channel = ? AND message_id = ? AND chat_id = ? AND handled_at IS NULL",
            (time_text(at), chat.channel, message_id, chat.chat_id),
        )
