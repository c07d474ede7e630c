"""Follow-ups of links, due at a time and claimed under a lease, on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from bot.models import FollowUp, FollowUpKind, ScheduledFollowUp
from storage.sqlite.rows import optional_time_from, time_from, time_text
from storage.sqlite.statements import SqliteStatements

_DUE = (
    "SELECT id FROM follow_ups WHERE done_at IS NULL AND due_at <= ?"
    " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY due_at, id LIMIT ?"
)


class SqliteFollowUps(SqliteStatements):
    async def schedule(self, link_id: str, kind: FollowUpKind, mark: str, due_at: datetime) -> bool:
        added = await self._change(
            "INSERT INTO follow_ups (link_id, kind, mark, due_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (link_id, kind, mark) DO NOTHING",
            (link_id, kind.value, mark, time_text(due_at)),
        )
        return added == 1

    async def schedule_all(self, link_id: str, due: Sequence[ScheduledFollowUp]) -> int:
        # One statement each: SQLite is in this process, with no round trip to save.
        added = 0
        for kind, mark, due_at in due:
            added += await self.schedule(link_id, kind, mark, due_at)
        return added

    async def bring_forward(self, link_id: str, kind: FollowUpKind, at: datetime) -> int:
        return await self._change(
            "UPDATE follow_ups SET due_at = ?"
            " WHERE link_id = ? AND kind = ? AND done_at IS NULL AND due_at > ?",
            (time_text(at), link_id, kind.value, time_text(at)),
        )

    async def claim_due(
        self, now: datetime, limit: int, holder: str, until: datetime
    ) -> list[FollowUp]:
        # Read, then take: atomic under the one writer's transaction.
        ids = [row[0] for row in await self._rows(_DUE, (time_text(now),) * 2 + (max(limit, 0),))]
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        found = await self._rows(
            # Only placeholders are joined into the text, never input.
            f"UPDATE follow_ups SET claimed_by = ?, lease_until = ? WHERE id IN ({marks})"  # noqa: S608
            " RETURNING *",
            (holder, time_text(until), *ids),
        )
        return sorted((_follow_up(row) for row in found), key=lambda f: (f.due_at, f.id))

    async def finish(self, follow_up_id: int, holder: str, at: datetime) -> bool:
        done = await self._change(
            "UPDATE follow_ups SET done_at = ?, lease_until = NULL"
            " WHERE id = ? AND claimed_by = ? AND done_at IS NULL",
            (time_text(at), follow_up_id, holder),
        )
        return done == 1

    async def next_due_at(self) -> datetime | None:
        row = await self._row("SELECT MIN(due_at) FROM follow_ups WHERE done_at IS NULL")
        return None if row is None else optional_time_from(row[0])

    async def pending_for(self, link_id: str) -> list[FollowUp]:
        found = await self._rows(
            "SELECT * FROM follow_ups WHERE link_id = ? AND done_at IS NULL ORDER BY due_at, id",
            (link_id,),
        )
        return [_follow_up(row) for row in found]

    async def forget_done(self, before: datetime, limit: int) -> int:
        return await self._change(
            "DELETE FROM follow_ups WHERE id IN (SELECT id FROM follow_ups"
            " WHERE done_at IS NOT NULL AND done_at < ? LIMIT ?)",
            (time_text(before), limit),
        )


def _follow_up(row: sqlite3.Row) -> FollowUp:
    return FollowUp(
        id=row["id"],
        link_id=row["link_id"],
        kind=FollowUpKind(row["kind"]),
        mark=row["mark"],
        due_at=time_from(row["due_at"]),
    )
