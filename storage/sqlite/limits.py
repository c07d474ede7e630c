"""Senders' budgets (bot/limits.py) on SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.sqlite.rows import time_from, time_text
from storage.sqlite.statements import SqliteStatements


class SqliteLimits(SqliteStatements):
    async def take(self, key: str, now: datetime, every: timedelta, burst: int) -> bool:
        # Read, then write: atomic under the one writer's transaction (BEGIN IMMEDIATE).
        row = await self._row("SELECT whole_at FROM limits WHERE key = ?", (key,))
        start = now if row is None else max(now, time_from(row[0]))
        if start - now > every * (burst - 1):
            return False
        await self._change(
            "INSERT INTO limits (key, whole_at) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET whole_at = excluded.whole_at",
            (key, time_text(start + every)),
        )
        return True

    async def forget_idle(self, now: datetime, limit: int) -> int:
        return await self._change(
            "DELETE FROM limits WHERE key IN (SELECT key FROM limits WHERE whole_at <= ? LIMIT ?)",
            (time_text(now), limit),
        )
