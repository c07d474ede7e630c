"""Follow-ups of links, due at a time and claimed under a lease, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from bot.models import FollowUp, FollowUpKind, ScheduledFollowUp
from storage.postgres import records
from storage.postgres.statements import Statements, checked

# SKIP LOCKED: two claimers at once take different rows, neither waits for the other.
_CLAIM = """
UPDATE follow_ups SET claimed_by = $3, lease_until = $4
WHERE id IN (
    SELECT id FROM follow_ups
    WHERE done_at IS NULL AND due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
    ORDER BY due_at, id LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING id, link_id, kind, mark, due_at
"""
_SCHEDULE_ALL = """
INSERT INTO follow_ups (link_id, kind, mark, due_at)
SELECT $1, kind, mark, due_at FROM unnest($2::text[], $3::text[], $4::timestamptz[])
    AS due (kind, mark, due_at)
ON CONFLICT (link_id, kind, mark) DO NOTHING
"""


class PostgresFollowUps:
    """`FollowUps` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def schedule(self, link_id: str, kind: FollowUpKind, mark: str, due_at: datetime) -> bool:
        added = await self._sql.change(
            "INSERT INTO follow_ups (link_id, kind, mark, due_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (link_id, kind, mark) DO NOTHING",
            link_id,
            kind.value,
            mark,
            due_at,
        )
        return added == 1

    async def schedule_all(self, link_id: str, due: Sequence[ScheduledFollowUp]) -> int:
        if not due:
            return 0
        return await self._sql.change(
            _SCHEDULE_ALL,
            link_id,
            [kind.value for kind, _, _ in due],
            [mark for _, mark, _ in due],
            list(checked(tuple(due_at for _, _, due_at in due))),  # aware times only
        )

    async def bring_forward(self, link_id: str, kind: FollowUpKind, at: datetime) -> int:
        return await self._sql.change(
            "UPDATE follow_ups SET due_at = $3"
            " WHERE link_id = $1 AND kind = $2 AND done_at IS NULL AND due_at > $3",
            link_id,
            kind.value,
            at,
        )

    async def claim_due(
        self, now: datetime, limit: int, holder: str, until: datetime
    ) -> list[FollowUp]:
        found = await self._sql.rows(_CLAIM, now, max(limit, 0), holder, until)
        # RETURNING keeps no order; the claim's is restored here.
        return sorted((_follow_up(row) for row in found), key=lambda f: (f.due_at, f.id))

    async def finish(self, follow_up_id: int, holder: str, at: datetime) -> bool:
        done = await self._sql.change(
            "UPDATE follow_ups SET done_at = $1, lease_until = NULL"
            " WHERE id = $2 AND claimed_by = $3 AND done_at IS NULL",
            at,
            follow_up_id,
            holder,
        )
        return done == 1

    async def next_due_at(self) -> datetime | None:
        found = await self._sql.value("SELECT min(due_at) FROM follow_ups WHERE done_at IS NULL")
        return records.optional_utc(found)

    async def pending_for(self, link_id: str) -> list[FollowUp]:
        found = await self._sql.rows(
            "SELECT id, link_id, kind, mark, due_at FROM follow_ups"
            " WHERE link_id = $1 AND done_at IS NULL ORDER BY due_at, id",
            link_id,
        )
        return [_follow_up(row) for row in found]

    async def forget_done(self, before: datetime, limit: int) -> int:
        return await self._sql.change(
            "DELETE FROM follow_ups WHERE id IN (SELECT id FROM follow_ups"
            " WHERE done_at IS NOT NULL AND done_at < $1 LIMIT $2)",
            before,
            limit,
        )


def _follow_up(row: asyncpg.Record) -> FollowUp:
    return FollowUp(
        id=int(row["id"]),
        link_id=row["link_id"],
        kind=FollowUpKind(row["kind"]),
        mark=row["mark"],
        due_at=records.utc(row["due_at"]),
    )
