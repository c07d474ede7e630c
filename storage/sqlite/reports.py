"""The merchant's day and exports on SQLite: reports, digests sent, export files."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from bot.models import ChatRef, DayCounts, ExportFile, Link, Money, sums_by_currency
from storage.sqlite import rows
from storage.sqlite.rows import optional_time_from, time_from, time_text
from storage.sqlite.statements import SqliteStatements

# Open: a customer could still pay it. 'cancelled' is a status another change adds;
# naming it here keeps cancelled links out of "open" once it does.
_OPEN = "status NOT IN ('paid', 'expired', 'cancelled') AND expires_at > ?"
# A cashier's reports keep to the links they issued (`AND (? IS NULL OR issued_by = ?)`);
# an owner's (None) take every link.


class SqliteReports(SqliteStatements):
    async def day(self, start: datetime, now: datetime, issued_by: str | None = None) -> DayCounts:
        whose = (issued_by, issued_by)
        window = (time_text(start), time_text(now))
        issued = await self._count(
            "SELECT COUNT(*) FROM links WHERE created_at >= ? AND created_at < ?"
            " AND (? IS NULL OR issued_by = ?)",
            window + whose,
        )
        paid = await self._rows(
            "SELECT currency, total FROM links WHERE paid_at >= ? AND paid_at < ?"
            " AND (? IS NULL OR issued_by = ?)",
            window + whose,
        )
        still_open = await self._count(
            f"SELECT COUNT(*) FROM links WHERE {_OPEN} AND created_at < ?"  # noqa: S608
            " AND (? IS NULL OR issued_by = ?)",
            (window[1], window[1], *whose),
        )
        expired = await self._count(
            "SELECT COUNT(*) FROM links WHERE paid_at IS NULL"
            " AND expires_at >= ? AND expires_at < ? AND (? IS NULL OR issued_by = ?)",
            window + whose,
        )
        return DayCounts(
            issued=issued,
            paid=len(paid),
            paid_sums=sums_by_currency(Money(Decimal(r["total"]), r["currency"]) for r in paid),
            open=still_open,
            expired=expired,
        )

    async def issued_between(
        self, start: datetime, end: datetime, issued_by: str | None = None
    ) -> list[tuple[Link, datetime | None]]:
        found = await self._rows(
            "SELECT * FROM links WHERE created_at >= ? AND created_at < ?"
            " AND (? IS NULL OR issued_by = ?) ORDER BY created_at, rowid",
            (time_text(start), time_text(end), issued_by, issued_by),
        )
        return [(rows.link_from(row), optional_time_from(row["paid_at"])) for row in found]

    async def merchant_chats(self, start: datetime, end: datetime) -> list[ChatRef]:
        found = await self._rows(
            "SELECT DISTINCT s.channel, s.chat_id FROM subscriptions AS s"
            " JOIN links AS l ON l.id = s.link_id WHERE s.role = 'merchant'"
            " AND l.created_at >= ? AND l.created_at < ? ORDER BY s.channel, s.chat_id",
            (time_text(start), time_text(end)),
        )
        return [ChatRef(row["channel"], row["chat_id"]) for row in found]


class SqliteDigests(SqliteStatements):
    async def mark_sent(self, chat: ChatRef, day: date, at: datetime) -> bool:
        changed = await self._change(
            "INSERT INTO digests (channel, chat_id, day, sent_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (channel, chat_id, day) DO NOTHING",
            (chat.channel, chat.chat_id, day.isoformat(), time_text(at)),
        )
        return changed == 1


class SqliteExports(SqliteStatements):
    async def add(self, export: ExportFile) -> None:
        await self._change(
            "INSERT INTO exports (id, filename, content, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                export.id,
                export.filename,
                export.content,
                time_text(export.created_at),
                time_text(export.expires_at),
            ),
        )

    async def get(self, export_id: str, now: datetime) -> ExportFile | None:
        row = await self._row(
            "SELECT * FROM exports WHERE id = ? AND expires_at > ?", (export_id, time_text(now))
        )
        if row is None:
            return None
        return ExportFile(
            id=row["id"],
            filename=row["filename"],
            content=bytes(row["content"]),
            created_at=time_from(row["created_at"]),
            expires_at=time_from(row["expires_at"]),
        )

    async def forget_expired(self, now: datetime, limit: int) -> int:
        return await self._change(
            "DELETE FROM exports WHERE id IN"
            " (SELECT id FROM exports WHERE expires_at <= ? LIMIT ?)",
            (time_text(now), limit),
        )
