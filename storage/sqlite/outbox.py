"""The outbox and its delivery receipts, on SQLite.

Under SQLite's one writer, ids are given in commit order, so each chat's lowest
unsent id is its head (the view `outbox_heads`) and order within a chat is commit
order. A claimed head is a message in flight; a paused chat takes nothing before
its pause ends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from bot.models import ChatRef, DeliveryStatus, MessageKind, Outgoing, QueuedMessage
from storage.sqlite import rows
from storage.sqlite.rows import optional_time_from, time_text
from storage.sqlite.statements import SqliteStatements

_ERROR_CHARS = 1000  # errors can quote hostile input; keep the row bounded


# The heads a claim may take: due, not in flight, their chat not paused.
_CLAIMABLE_HEADS = (
    "SELECT h.id FROM outbox_heads AS h LEFT JOIN outbox_pauses AS p"
    " ON p.channel = h.channel AND p.chat_id = h.chat_id"
    " WHERE h.next_attempt_at <= ?1 AND (h.claimed_until IS NULL OR h.claimed_until <= ?1)"
    " AND (p.paused_until IS NULL OR p.paused_until <= ?1)"
    " AND h.kind IN (SELECT value FROM json_each(?2)) ORDER BY h.id LIMIT ?3"
)


class SqliteOutbox(SqliteStatements):
    async def enqueue(self, messages: Sequence[Outgoing], at: datetime) -> list[int]:
        ids: list[int] = []
        for message in messages:
            cursor = await self._db.execute(
                "INSERT INTO outbox (channel, chat_id, kind, text, link_id, buttons,"
                " created_at, next_attempt_at, attachment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows.outgoing_params(message, at),
            )
            assert cursor.lastrowid is not None  # an INSERT always sets it
            ids.append(cursor.lastrowid)
        return ids

    async def claim_due(
        self,
        now: datetime,
        limit: int,
        holder: str,
        until: datetime,
        kinds: frozenset[MessageKind] | None = None,
    ) -> list[QueuedMessage]:
        wanted = sorted(kind.value for kind in (kinds if kinds is not None else MessageKind))
        claimed = await self._rows(
            f"UPDATE outbox SET claimed_by = ?4, claimed_until = ?5"  # noqa: S608 - a constant
            f" WHERE id IN ({_CLAIMABLE_HEADS}) RETURNING *",
            (time_text(now), json.dumps(wanted), max(limit, 0), holder, time_text(until)),
        )
        return sorted((rows.queued_message_from(row) for row in claimed), key=lambda m: m.id)

    async def next_due_at(self) -> datetime | None:
        # Heads only: a later message cannot go before its chat's head, so its own
        # due time would wake the sender for nothing. '' sorts before every time.
        row = await self._row(
            "SELECT MIN(max(h.next_attempt_at, COALESCE(h.claimed_until, ''),"
            " COALESCE(p.paused_until, ''))) FROM outbox_heads AS h"
            " LEFT JOIN outbox_pauses AS p ON p.channel = h.channel AND p.chat_id = h.chat_id"
        )
        return None if row is None else optional_time_from(row[0])

    async def prolong_claims(self, holder: str, until: datetime) -> int:
        return await self._change(
            "UPDATE outbox SET claimed_until = ? WHERE claimed_by = ?"
            " AND sent_at IS NULL AND dropped_at IS NULL",
            (time_text(until), holder),
        )

    async def pause_chat(self, chat: ChatRef, until: datetime) -> None:
        await self._change(
            "INSERT INTO outbox_pauses (channel, chat_id, paused_until) VALUES (?, ?, ?)"
            " ON CONFLICT (channel, chat_id) DO UPDATE"
            " SET paused_until = max(paused_until, excluded.paused_until)",
            (chat.channel, chat.chat_id, time_text(until)),
        )

    async def mark_sent(
        self, message_id: int, at: datetime, remote_id: str | None = None
    ) -> DeliveryStatus | None:
        sent = await self._rows(
            "UPDATE outbox SET sent_at = ?, remote_id = ?, claimed_by = NULL, claimed_until = NULL"
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

    async def retry(self, message_id: int, at: datetime, error: str) -> None:
        await self._change(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
            " claimed_by = NULL, claimed_until = NULL"
            " WHERE id = ? AND sent_at IS NULL AND dropped_at IS NULL",
            (time_text(at), error[:_ERROR_CHARS], message_id),
        )

    async def drop(self, message_id: int, at: datetime, error: str) -> None:
        await self._change(
            "UPDATE outbox SET attempts = attempts + 1, dropped_at = ?, last_error = ?,"
            " claimed_by = NULL, claimed_until = NULL"
            " WHERE id = ? AND sent_at IS NULL AND dropped_at IS NULL",
            (time_text(at), error[:_ERROR_CHARS], message_id),
        )

    async def forget_done(self, before: datetime, limit: int) -> int:
        return await self._change(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE sent_at < ?1 OR dropped_at < ?1 LIMIT ?2)",
            (time_text(before), limit),
        )

    async def unsent_for(self, chat: ChatRef) -> list[QueuedMessage]:
        found = await self._rows(
            "SELECT * FROM outbox WHERE channel = ? AND chat_id = ?"
            " AND sent_at IS NULL AND dropped_at IS NULL ORDER BY id",
            (chat.channel, chat.chat_id),
        )
        return [rows.queued_message_from(row) for row in found]

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
