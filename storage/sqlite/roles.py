"""Roles held under a lease, on SQLite."""

from __future__ import annotations

from datetime import datetime

from storage.sqlite.rows import time_text
from storage.sqlite.statements import SqliteStatements


class SqliteRoles(SqliteStatements):
    async def claim(self, role: str, holder: str, now: datetime, until: datetime) -> bool:
        claimed = await self._rows(
            "INSERT INTO roles (name, holder, until) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until"
            " WHERE roles.until <= ? OR roles.holder = excluded.holder RETURNING name",
            (role, holder, time_text(until), time_text(now)),
        )
        return bool(claimed)

    async def release(self, role: str, holder: str) -> None:
        await self._change("DELETE FROM roles WHERE name = ? AND holder = ?", (role, holder))
