"""The outbox: each chat a lane of messages, sent one at a time in lane order.

A message's place in its lane (`lane_seq`) is taken under the lane row's lock,
held until commit, so a chat's messages are numbered in commit order whichever
process enqueued them. Only a lane's head (its first unsent message) is claimed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bot.models import ChatRef, MessageKind, Outgoing, QueuedMessage
from storage.json_columns import buttons_json
from storage.postgres import records
from storage.postgres.outbox_receipts import PostgresReceipts

# One round trip for the whole batch. The lanes are locked in sorted order, so two
# transactions enqueuing to the same chats cannot deadlock; each lane's sequence
# moves on by its number of messages, which then take the numbers in turn.
_ENQUEUE = """
WITH lanes AS (
    INSERT INTO outbox_lanes AS lane (channel, chat_id, last_seq)
    SELECT channel, chat_id, count(*) FROM unnest($1::text[], $2::text[]) AS m (channel, chat_id)
    GROUP BY channel, chat_id ORDER BY channel, chat_id
    ON CONFLICT (channel, chat_id) DO UPDATE SET last_seq = lane.last_seq + excluded.last_seq
    RETURNING channel, chat_id, last_seq
), messages AS (
    SELECT m.*,
        row_number() OVER (PARTITION BY channel, chat_id ORDER BY n) AS place,
        count(*) OVER (PARTITION BY channel, chat_id) AS queued
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $8::text[]) WITH ORDINALITY AS m (channel, chat_id, kind, text, link_id, buttons,
        attachment, n)
)
INSERT INTO outbox (channel, chat_id, lane_seq, kind, text, link_id, buttons,
    created_at, next_attempt_at, attachment)
SELECT m.channel, m.chat_id, lanes.last_seq - m.queued + m.place, m.kind, m.text, m.link_id,
    m.buttons::jsonb, $7, $7, m.attachment
FROM messages AS m JOIN lanes USING (channel, chat_id) ORDER BY m.n
RETURNING id, channel, chat_id, lane_seq
"""

# Each chat's head (its first unsent message), found without reading its queue:
# a skip scan of outbox_unsent, one index descent a chat, each step jumping to the
# first unsent message of the next chat. Its cost grows with the chats that have
# something waiting, not with the messages, and a LIMIT 1 in index order is the
# plan whatever the table's statistics say (there are none on a fresh table).
_UNSENT = "sent_at IS NULL AND dropped_at IS NULL"
_HEADS = f"""
WITH RECURSIVE heads AS (
    (SELECT channel, chat_id, id, next_attempt_at, claimed_until FROM outbox WHERE {_UNSENT}
        ORDER BY channel, chat_id, lane_seq LIMIT 1)
    UNION ALL
    SELECT next.* FROM heads CROSS JOIN LATERAL (
        SELECT o.channel, o.chat_id, o.id, o.next_attempt_at, o.claimed_until FROM outbox AS o
        WHERE o.sent_at IS NULL AND o.dropped_at IS NULL
            AND (o.channel, o.chat_id) > (heads.channel, heads.chat_id)
        ORDER BY o.channel, o.chat_id, o.lane_seq LIMIT 1
    ) AS next
)"""  # noqa: S608  constants only
# The heads are then looked up by id, oldest first, and those due, unclaimed, of
# a wanted kind and in a chat not paused are locked, a row another claimer has
# locked skipped rather than waited for. The conditions are on the locked row, so
# a head sent or claimed since this statement's snapshot is rechecked and passed
# over. "Unsent" is spelt so that it does not match outbox_unsent's predicate:
# without statistics the planner takes IS NULL to hold for 0.5% of rows, and would
# rather read that whole index than look the heads up by their ids.
CLAIM_HEADS = f"""{_HEADS}, picked AS (
    SELECT o.id FROM outbox AS o
    WHERE o.id = ANY(ARRAY(SELECT id FROM heads))
        AND COALESCE(o.sent_at, o.dropped_at) IS NULL AND o.next_attempt_at <= $1
        AND (o.claimed_until IS NULL OR o.claimed_until <= $1) AND o.kind = ANY($2::text[])
        AND NOT EXISTS (SELECT 1 FROM outbox_lanes AS lane WHERE lane.channel = o.channel
            AND lane.chat_id = o.chat_id AND lane.paused_until > $1)
        AND NOT o.id = ANY($6::bigint[])
    ORDER BY o.id LIMIT $3 FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET claimed_by = $4, claimed_until = $5 FROM picked WHERE outbox.id = picked.id
RETURNING outbox.id, channel, chat_id, kind, text, link_id, buttons::text AS buttons,
    created_at, attempts, next_attempt_at, attachment
"""  # noqa: S608  constants only
# But when many chats wait, most unsent messages are heads: a claim first walks the
# oldest $6 unsent messages (outbox_unsent_by_id), each checked to be its chat's head
# by one descent of outbox_unsent (the first unsent message from its chat on, in an
# order only that index holds), and the skip scan above is needed only when that
# walk found fewer than the limit. Heads outside the walk are younger than all of it,
# so the two together still take the oldest heads first.
CLAIM_OLDEST = f"""
WITH walked AS (
    SELECT id FROM outbox WHERE {_UNSENT} ORDER BY id LIMIT $6
), picked AS (
    SELECT o.id FROM outbox AS o
    WHERE o.id = ANY(ARRAY(SELECT id FROM walked))
        AND COALESCE(o.sent_at, o.dropped_at) IS NULL AND o.next_attempt_at <= $1
        AND (o.claimed_until IS NULL OR o.claimed_until <= $1) AND o.kind = ANY($2::text[])
        AND o.id = (SELECT head.id FROM outbox AS head
            WHERE head.sent_at IS NULL AND head.dropped_at IS NULL
                AND (head.channel, head.chat_id) >= (o.channel, o.chat_id)
            ORDER BY head.channel, head.chat_id, head.lane_seq LIMIT 1)
        AND NOT EXISTS (SELECT 1 FROM outbox_lanes AS lane WHERE lane.channel = o.channel
            AND lane.chat_id = o.chat_id AND lane.paused_until > $1)
    ORDER BY o.id LIMIT $3 FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET claimed_by = $4, claimed_until = $5 FROM picked WHERE outbox.id = picked.id
RETURNING outbox.id, channel, chat_id, kind, text, link_id, buttons::text AS buttons,
    created_at, attempts, next_attempt_at, attachment
"""  # noqa: S608  constants only
# Unsent messages walked beyond the limit: claimed heads and the messages queued
# behind them, passed over while sends are in flight.
WALK_BEYOND_LIMIT = 128
# Each head's pause is looked up by its lane's key, so that the cost stays with the
# chats that have something waiting, not with every chat ever written to.
NEXT_DUE = f"""{_HEADS}
SELECT min(greatest(heads.next_attempt_at, heads.claimed_until, (
    SELECT lane.paused_until FROM outbox_lanes AS lane
    WHERE lane.channel = heads.channel AND lane.chat_id = heads.chat_id)))
FROM heads
"""  # noqa: S608  constants only


def _ids_in_order(
    messages: Sequence[Outgoing], found: list[tuple[str, str, int, int]]
) -> list[int]:
    """The new ids in the order of `messages`: within a lane, lane_seq order is theirs."""
    lanes: dict[ChatRef, list[int]] = {}
    for channel, chat_id, _, message_id in sorted(found, key=lambda row: row[2]):
        lanes.setdefault(ChatRef(channel, chat_id), []).append(message_id)
    taken: dict[ChatRef, Iterator[int]] = {chat: iter(ids) for chat, ids in lanes.items()}
    return [next(taken[message.chat]) for message in messages]


class PostgresOutbox(PostgresReceipts):
    """`OutboxQueue` on one transaction; sends and receipts in `PostgresReceipts`."""

    async def enqueue(self, messages: Sequence[Outgoing], at: datetime) -> list[int]:
        if not messages:
            return []
        found = await self._sql.rows(
            _ENQUEUE,
            [m.chat.channel for m in messages],
            [m.chat.chat_id for m in messages],
            [m.kind.value for m in messages],
            [m.text for m in messages],
            [m.link_id for m in messages],
            [buttons_json(m.buttons) for m in messages],
            at,
            [m.attachment for m in messages],
        )
        rows = [(r["channel"], r["chat_id"], r["lane_seq"], r["id"]) for r in found]
        return _ids_in_order(messages, rows)

    async def claim_due(
        self,
        now: datetime,
        limit: int,
        holder: str,
        until: datetime,
        kinds: frozenset[MessageKind] | None = None,
    ) -> list[QueuedMessage]:
        wanted = sorted(kind.value for kind in (kinds if kinds is not None else MessageKind))
        limit = max(limit, 0)
        walk = limit + WALK_BEYOND_LIMIT
        found = await self._sql.rows(CLAIM_OLDEST, now, wanted, limit, holder, until, walk)
        if len(found) < limit:
            taken = [row["id"] for row in found]
            left = limit - len(found)
            found += await self._sql.rows(CLAIM_HEADS, now, wanted, left, holder, until, taken)
        return [records.queued_message_from(row) for row in sorted(found, key=lambda r: r["id"])]

    async def next_due_at(self) -> datetime | None:
        return records.optional_utc(await self._sql.value(NEXT_DUE))

    async def prolong_claims(self, holder: str, until: datetime) -> int:
        return await self._sql.change(
            "UPDATE outbox SET claimed_until = $2"
            " WHERE claimed_by = $1 AND sent_at IS NULL AND dropped_at IS NULL",
            holder,
            until,
        )

    async def pause_chat(self, chat: ChatRef, until: datetime) -> None:
        # GREATEST ignores NULL, and keeps a longer pause already set.
        await self._sql.change(
            "INSERT INTO outbox_lanes AS lane (channel, chat_id, last_seq, paused_until)"
            " VALUES ($1, $2, 0, $3) ON CONFLICT (channel, chat_id) DO UPDATE"
            " SET paused_until = GREATEST(lane.paused_until, excluded.paused_until)",
            chat.channel,
            chat.chat_id,
            until,
        )

    async def retry(self, message_id: int, at: datetime, error: str) -> None:
        await self._sql.change(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3,"
            " claimed_by = NULL, claimed_until = NULL"
            " WHERE id = $1 AND sent_at IS NULL AND dropped_at IS NULL",
            message_id,
            at,
            records.error_text(error),
        )

    async def drop(self, message_id: int, at: datetime, error: str) -> None:
        await self._sql.change(
            "UPDATE outbox SET attempts = attempts + 1, dropped_at = $2, last_error = $3,"
            " claimed_by = NULL, claimed_until = NULL"
            " WHERE id = $1 AND sent_at IS NULL AND dropped_at IS NULL",
            message_id,
            at,
            records.error_text(error),
        )

    async def forget_done(self, before: datetime, limit: int) -> int:
        return await self._sql.change(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE sent_at < $1 OR dropped_at < $1 LIMIT $2)",
            before,
            limit,
        )

    async def unsent_for(self, chat: ChatRef) -> list[QueuedMessage]:
        found = await self._sql.rows(
            "SELECT * FROM outbox WHERE channel = $1 AND chat_id = $2"
            " AND sent_at IS NULL AND dropped_at IS NULL ORDER BY lane_seq",
            chat.channel,
            chat.chat_id,
        )
        return [records.queued_message_from(row) for row in found]

    async def pending_count(self) -> int:
        return int(await self._sql.value(f"SELECT count(*) FROM outbox WHERE {_UNSENT}"))  # noqa: S608
