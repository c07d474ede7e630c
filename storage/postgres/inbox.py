"""The inbox: every input, stored before it is acknowledged, handled lane by lane."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.models import InboxEntry, InboxItem
from storage.postgres import records
from storage.postgres.statements import Statements

# The webhook ingest path: one round trip for the whole batch. The batch's lanes
# are locked first, in sorted order (no deadlock between two batches), and held
# until commit, so entries of one lane are numbered in commit order; the ORDER BY
# makes every lane lock come before the first entry takes its seq. Entries are
# stored in the order given, and a repeat, stored before or earlier in the batch,
# is left as it was and not returned.
_RECORD = """
WITH lanes AS (
    INSERT INTO inbox_lanes AS known (lane, recorded)
    SELECT lane, count(*) FROM unnest($4::text[]) AS entry (lane) GROUP BY lane ORDER BY lane
    ON CONFLICT (lane) DO UPDATE SET recorded = known.recorded + excluded.recorded
    RETURNING lane
)
INSERT INTO inbox (source, source_id, kind, lane, body, received_at, next_attempt_at)
SELECT entry.source, entry.source_id, entry.kind, entry.lane, entry.body, $6, $6
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
    WITH ORDINALITY AS entry (source, source_id, kind, lane, body, n)
JOIN lanes USING (lane)
ORDER BY entry.n
ON CONFLICT (source, source_id) DO NOTHING
RETURNING source, source_id
"""

# Each lane's head (its waiting entry with the lowest seq), found without reading
# its queue: a skip scan of inbox_waiting_by_lane, one index descent a lane, each
# step jumping to the first waiting entry of the next lane. Its cost grows with the
# lanes that have something waiting, not with the entries, and a LIMIT 1 in index
# order is the plan whatever the table's statistics say (none on a fresh table).
_WAITING = "finished_at IS NULL AND set_aside_at IS NULL"
_HEADS = f"""
WITH RECURSIVE heads AS (
    (SELECT lane, seq, next_attempt_at, claimed_until FROM inbox WHERE {_WAITING}
        ORDER BY lane, seq LIMIT 1)
    UNION ALL
    SELECT next.* FROM heads CROSS JOIN LATERAL (
        SELECT i.lane, i.seq, i.next_attempt_at, i.claimed_until FROM inbox AS i
        WHERE i.finished_at IS NULL AND i.set_aside_at IS NULL AND i.lane > heads.lane
        ORDER BY i.lane, i.seq LIMIT 1
    ) AS next
)"""  # noqa: S608  constants only
# The heads are then looked up by seq, oldest first, and those due and unclaimed
# are locked, a row another claimer has locked skipped rather than waited for. The
# conditions are on the locked row, so a head finished or claimed since this
# statement's snapshot is rechecked and passed over. "Waiting" is spelt so that it
# does not match the inbox_waiting indexes' predicate: without statistics the
# planner takes IS NULL to hold for 0.5% of rows, and would rather read such an
# index whole than look the heads up by their seq.
CLAIM_HEADS = f"""{_HEADS}, picked AS (
    SELECT i.seq FROM inbox AS i
    WHERE i.seq = ANY(ARRAY(SELECT seq FROM heads))
        AND COALESCE(i.finished_at, i.set_aside_at) IS NULL AND i.next_attempt_at <= $1
        AND (i.claimed_until IS NULL OR i.claimed_until <= $1) AND NOT i.seq = ANY($5::bigint[])
    ORDER BY i.seq LIMIT $2 FOR UPDATE OF i SKIP LOCKED
)
UPDATE inbox SET claimed_by = $3, claimed_until = $4, attempts = attempts + 1
FROM picked WHERE inbox.seq = picked.seq
RETURNING inbox.seq, source, source_id, kind, lane, body, received_at, attempts
"""  # noqa: S608  constants only
# But when many lanes wait (a lane an order), most waiting entries are heads: a
# claim first walks the oldest $5 waiting entries (inbox_waiting), each checked to
# be its lane's head by one descent of inbox_waiting_by_lane (the first waiting entry
# from its lane on, in an order only that index holds: asked for the lane's lowest
# seq, the planner may walk inbox_waiting instead), and the skip scan above is
# needed only when that walk found fewer than the limit. Heads outside the walk
# are younger than all of it, so the two together still take the oldest heads first.
CLAIM_OLDEST = f"""
WITH walked AS (
    SELECT seq FROM inbox WHERE {_WAITING} ORDER BY seq LIMIT $5
), picked AS (
    SELECT i.seq FROM inbox AS i
    WHERE i.seq = ANY(ARRAY(SELECT seq FROM walked))
        AND COALESCE(i.finished_at, i.set_aside_at) IS NULL AND i.next_attempt_at <= $1
        AND (i.claimed_until IS NULL OR i.claimed_until <= $1)
        AND i.seq = (SELECT head.seq FROM inbox AS head
            WHERE head.finished_at IS NULL AND head.set_aside_at IS NULL AND head.lane >= i.lane
            ORDER BY head.lane, head.seq LIMIT 1)
    ORDER BY i.seq LIMIT $2 FOR UPDATE OF i SKIP LOCKED
)
UPDATE inbox SET claimed_by = $3, claimed_until = $4, attempts = attempts + 1
FROM picked WHERE inbox.seq = picked.seq
RETURNING inbox.seq, source, source_id, kind, lane, body, received_at, attempts
"""  # noqa: S608  constants only
# Waiting entries walked beyond the limit: claimed heads and the entries queued
# behind them, passed over while they are handled.
WALK_BEYOND_LIMIT = 128
NEXT_DUE = f"""{_HEADS}
SELECT min(greatest(next_attempt_at, claimed_until)) FROM heads
"""  # noqa: S608  constants only


class PostgresInbox:
    """`Inbox` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def record(self, entries: Sequence[InboxEntry], at: datetime) -> list[bool]:
        if not entries:
            return []
        stored = await self._sql.rows(
            _RECORD,
            [e.source for e in entries],
            [e.source_id for e in entries],
            [e.kind for e in entries],
            [e.lane for e in entries],
            [e.body for e in entries],
            at,
        )
        new = {(row["source"], row["source_id"]) for row in stored}
        flags: list[bool] = []
        for entry in entries:
            key = (entry.source, entry.source_id)
            flags.append(key in new)
            new.discard(key)  # given twice: new the first time only
        return flags

    async def claim(
        self, now: datetime, limit: int, holder: str, until: datetime
    ) -> list[InboxItem]:
        limit = max(limit, 0)
        walk = limit + WALK_BEYOND_LIMIT
        found = await self._sql.rows(CLAIM_OLDEST, now, limit, holder, until, walk)
        if len(found) < limit:
            taken = [row["seq"] for row in found]
            left = limit - len(found)
            found += await self._sql.rows(CLAIM_HEADS, now, left, holder, until, taken)
        return [records.inbox_item_from(row) for row in sorted(found, key=lambda r: r["seq"])]

    async def prolong_claims(self, holder: str, until: datetime) -> int:
        return await self._sql.change(
            "UPDATE inbox SET claimed_until = $2"
            " WHERE claimed_by = $1 AND finished_at IS NULL AND set_aside_at IS NULL",
            holder,
            until,
        )

    async def finish(self, seq: int, at: datetime) -> None:
        await self._sql.change(
            "UPDATE inbox SET finished_at = $2, claimed_by = NULL, claimed_until = NULL"
            " WHERE seq = $1 AND finished_at IS NULL AND set_aside_at IS NULL",
            seq,
            at,
        )

    async def retry(self, seq: int, at: datetime, error: str) -> None:
        await self._sql.change(
            "UPDATE inbox SET next_attempt_at = $2, last_error = $3, claimed_by = NULL,"
            " claimed_until = NULL WHERE seq = $1 AND finished_at IS NULL AND set_aside_at IS NULL",
            seq,
            at,
            records.error_text(error),
        )

    async def set_aside(self, seq: int, at: datetime, error: str) -> None:
        await self._sql.change(
            "UPDATE inbox SET set_aside_at = $2, last_error = $3, claimed_by = NULL,"
            " claimed_until = NULL WHERE seq = $1 AND finished_at IS NULL AND set_aside_at IS NULL",
            seq,
            at,
            records.error_text(error),
        )

    async def next_due_at(self) -> datetime | None:
        return records.optional_utc(await self._sql.value(NEXT_DUE))

    async def unfinished_count(self) -> int:
        return int(await self._sql.value(f"SELECT count(*) FROM inbox WHERE {_WAITING}"))  # noqa: S608

    async def oldest_waiting_since(self) -> datetime | None:
        sql = f"SELECT min(received_at) FROM inbox WHERE {_WAITING}"  # noqa: S608  constants
        return records.optional_utc(await self._sql.value(sql))

    async def forget_finished(self, before: datetime, limit: int | None = None) -> int:
        return await self._sql.change(
            "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox"
            " WHERE finished_at < $1 LIMIT $2)",
            before,
            limit,  # NULL: no limit
        )
