"""Senders' budgets (bot/limits.py) on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.postgres.statements import Statements

# One statement: the key's row lock makes racing uses follow each other, each seeing
# the budget the one before left. No row is changed, and none returned, past the budget.
TAKE = (
    "INSERT INTO limits AS l (key, whole_at) VALUES ($1, $2::timestamptz + $3::interval)"
    " ON CONFLICT (key) DO UPDATE SET whole_at = GREATEST(l.whole_at, $2) + $3::interval"
    " WHERE GREATEST(l.whole_at, $2) - $2 <= $4::interval RETURNING key"
)


class PostgresLimits:
    """`Limits` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def take(self, key: str, now: datetime, every: timedelta, burst: int) -> bool:
        taken = await self._sql.rows(TAKE, key, now, every, every * (burst - 1))
        return bool(taken)

    async def forget_idle(self, now: datetime, limit: int) -> int:
        return await self._sql.change(
            "DELETE FROM limits WHERE key IN (SELECT key FROM limits WHERE whole_at <= $1"
            " LIMIT $2)",
            now,
            limit,
        )
