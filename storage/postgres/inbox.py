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

# A lane's head is its waiting entry with the lowest seq. Waiting entries are
# walked oldest first, so the walk stops once `limit` heads are found; a head
# claimed by a live holder is passed over, and a row another claimer has locked is
# skipped rather than waited for.
_WAITING = "finished_at IS NULL AND set_aside_at IS NULL"
_IS_HEAD = (
    "NOT EXISTS (SELECT 1 FROM inbox AS earlier WHERE earlier.lane = i.lane"
    " AND earlier.seq < i.seq AND earlier.finished_at IS NULL AND earlier.set_aside_at IS NULL)"
)
_CLAIM_HEADS = f"""
WITH picked AS (
    SELECT i.seq FROM inbox AS i
    WHERE i.finished_at IS NULL AND i.set_aside_at IS NULL AND i.next_attempt_at <= $1
        AND (i.claimed_until IS NULL OR i.claimed_until <= $1) AND {_IS_HEAD}
    ORDER BY i.seq LIMIT $2 FOR UPDATE OF i SKIP LOCKED
)
UPDATE inbox SET claimed_by = $3, claimed_until = $4, attempts = attempts + 1
FROM picked WHERE inbox.seq = picked.seq
RETURNING inbox.seq, source, source_id, kind, lane, body, received_at, attempts
"""  # noqa: S608  constants only
_NEXT_DUE = f"""
SELECT min(greatest(i.next_attempt_at, i.claimed_until)) FROM inbox AS i
WHERE i.finished_at IS NULL AND i.set_aside_at IS NULL AND {_IS_HEAD}
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
        found = await self._sql.rows(_CLAIM_HEADS, now, max(limit, 0), holder, until)
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
        return records.optional_utc(await self._sql.value(_NEXT_DUE))

    async def unfinished_count(self) -> int:
        return int(await self._sql.value(f"SELECT count(*) FROM inbox WHERE {_WAITING}"))  # noqa: S608

    async def forget_finished(self, before: datetime) -> int:
        return await self._sql.change("DELETE FROM inbox WHERE finished_at < $1", before)
