"""The Telegram-updates part of `SqliteTx`: long-polled updates, stored before confirmed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storage.rows import time_text
from storage.sqlite_messages import SqliteStatements


class SqliteTelegramUpdates(SqliteStatements):
    """Rows of `telegram_updates` (migration 0004): an update's id and raw JSON."""

    async def record_telegram_updates(
        self, updates: Sequence[tuple[int, str]], at: datetime
    ) -> list[int]:
        fresh: list[int] = []
        for update_id, body in updates:
            added = await self._change(
                "INSERT INTO telegram_updates (update_id, body, received_at) VALUES (?, ?, ?)"
                " ON CONFLICT (update_id) DO NOTHING",
                (update_id, body, time_text(at)),
            )
            if added == 1:
                fresh.append(update_id)
        return fresh

    async def unhandled_telegram_updates(self, limit: int, after: int = 0) -> list[tuple[int, str]]:
        found = await self._rows(
            "SELECT update_id, body FROM telegram_updates WHERE handled_at IS NULL"
            " AND update_id > ? ORDER BY update_id LIMIT ?",
            (after, max(limit, 0)),
        )
        return [(int(row["update_id"]), str(row["body"])) for row in found]

    async def mark_telegram_update_handled(self, update_id: int, at: datetime) -> None:
        await self._change(
            "UPDATE telegram_updates SET handled_at = ? WHERE update_id = ? AND handled_at IS NULL",
            (time_text(at), update_id),
        )

    async def forget_telegram_updates(self, handled_before: datetime) -> int:
        return await self._change(
            "DELETE FROM telegram_updates WHERE handled_at IS NOT NULL AND handled_at < ?",
            (time_text(handled_before),),
        )
