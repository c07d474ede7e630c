"""The outbox's sends and what the channels report of them (delivery receipts).

A receipt can arrive before its send is recorded, in another process: it is kept
in `early_receipts` for `mark_sent` to apply. Under READ COMMITTED the two could
miss each other (the receipt finds no sent message yet, the send finds no receipt
yet), so both take one advisory lock per channel id before they look: whichever
comes second sees what the first committed.
"""

from __future__ import annotations

from datetime import datetime

from bot.models import ChatRef, DeliveryStatus, MessageKind, QueuedMessage
from storage.postgres import records
from storage.postgres.statements import Statements

# The two-key form of advisory locks, whose key space is apart from the
# migration's one-key lock: "paybot receipts" in the first key.
RECEIPT_LOCK_CLASS = 0x70726370
_RECEIPT_LOCK = "pg_advisory_xact_lock({cls}, hashtext({channel} || ' ' || {remote_id}))"

# With a remote id, RETURNING takes the receipt lock for the sent row (still
# locked by this update) before `_APPLY_EARLY` looks for a kept receipt.
_MARK_SENT = f"""
UPDATE outbox SET sent_at = $2, remote_id = $3, claimed_by = NULL, claimed_until = NULL
WHERE id = $1 AND sent_at IS NULL AND dropped_at IS NULL
RETURNING channel, {_RECEIPT_LOCK.format(cls=RECEIPT_LOCK_CLASS, channel="channel", remote_id="$3")}
"""  # noqa: S608  constants only
_APPLY_EARLY = """
WITH early AS (
    DELETE FROM early_receipts WHERE channel = $1 AND remote_id = $2 RETURNING status, at
)
UPDATE outbox SET delivery_status = early.status, delivery_status_at = early.at
FROM early WHERE outbox.id = $3 RETURNING early.status
"""
_LOCK_RECEIPT = "SELECT " + _RECEIPT_LOCK.format(
    cls=RECEIPT_LOCK_CLASS, channel="$1", remote_id="$2"
)

# Telegram's ids repeat across chats, so only the newest message carrying the id is
# a candidate; Twilio's MessageSids never repeat. $5: the statuses ranked below $3.
_MOVE_DELIVERY = """
UPDATE outbox SET delivery_status = $3, delivery_status_at = $4
WHERE id = (SELECT max(id) FROM outbox WHERE channel = $1 AND remote_id = $2)
    AND (delivery_status IS NULL OR delivery_status = ANY($5::text[]))
RETURNING id, channel, chat_id, kind, text, link_id, buttons::text AS buttons,
    created_at, attempts, next_attempt_at, attachment
"""
# Moved, or else kept (the highest one) when no message carries the id yet. $6:
# every status, lowest rank first.
_MOVE_OR_KEEP = f"""
WITH kept AS (
    INSERT INTO early_receipts AS kept (channel, remote_id, status, at)
    SELECT $1, $2, $3, $4
    WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE channel = $1 AND remote_id = $2)
    ON CONFLICT (channel, remote_id) DO UPDATE SET status = excluded.status, at = excluded.at
    WHERE array_position($6::text[], kept.status) < array_position($6::text[], excluded.status)
), moved AS ({_MOVE_DELIVERY})
SELECT * FROM moved
"""  # noqa: S608  constants only


def _ranked_below(status: DeliveryStatus) -> list[str]:
    return [s.value for s in DeliveryStatus if s.rank < status.rank]


def _by_rank() -> list[str]:
    return [s.value for s in sorted(DeliveryStatus, key=lambda s: s.rank)]


class PostgresReceipts:
    """Sends and receipts; the queue itself is `PostgresOutbox`."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def mark_sent(
        self, message_id: int, at: datetime, remote_id: str | None = None
    ) -> DeliveryStatus | None:
        sent = await self._sql.row(_MARK_SENT, message_id, at, remote_id)
        if sent is None or remote_id is None:
            return None
        early = await self._sql.value(_APPLY_EARLY, sent["channel"], remote_id, message_id)
        return None if early is None else DeliveryStatus(early)

    async def record_delivery(
        self, channel: str, remote_id: str, status: DeliveryStatus, at: datetime
    ) -> QueuedMessage | None:
        below = _ranked_below(status)
        moved = await self._sql.row(_MOVE_DELIVERY, channel, remote_id, status.value, at, below)
        if moved is None:
            # Perhaps early: look again under the lock, then keep it if still unknown.
            await self._sql.value(_LOCK_RECEIPT, channel, remote_id)
            moved = await self._sql.row(
                _MOVE_OR_KEEP, channel, remote_id, status.value, at, below, _by_rank()
            )
        return None if moved is None else records.queued_message_from(moved)

    async def delivery_status(
        self, link_id: str, chat: ChatRef, kind: MessageKind
    ) -> DeliveryStatus | None:
        found = await self._sql.value(
            "SELECT delivery_status FROM outbox"
            " WHERE link_id = $1 AND channel = $2 AND chat_id = $3 AND kind = $4"
            " AND sent_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            link_id,
            chat.channel,
            chat.chat_id,
            kind.value,
        )
        return None if found is None else DeliveryStatus(found)
