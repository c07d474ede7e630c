"""Roles held under a lease, on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from storage.postgres.statements import Statements


class PostgresRoles:
    """`Roles` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def claim(self, role: str, holder: str, now: datetime, until: datetime) -> bool:
        claimed = await self._sql.rows(
            "INSERT INTO roles AS r (name, holder, until) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until"
            " WHERE r.until <= $4 OR r.holder = excluded.holder RETURNING name",
            role,
            holder,
            until,
            now,
        )
        return bool(claimed)

    async def release(self, role: str, holder: str) -> None:
        await self._sql.change("DELETE FROM roles WHERE name = $1 AND holder = $2", role, holder)
