"""The merchant's day and exports on PostgreSQL: reports, digests sent, export files."""

from __future__ import annotations

from datetime import date, datetime

from bot.models import ChatRef, DayCounts, ExportFile, Link, Money
from storage.postgres import records
from storage.postgres.links import LINK_COLUMNS
from storage.postgres.records import optional_utc, utc
from storage.postgres.statements import Statements

# Open: a customer could still pay it. 'cancelled' is a status another change adds;
# naming it keeps cancelled links out of "open" once it does.
# A cashier's reports keep to the links they issued ($3); an owner's ($3 NULL) take all.
_ISSUED_BY = " AND ($3::text IS NULL OR issued_by = $3)"
_COUNTS = f"""
SELECT
    (SELECT count(*) FROM links WHERE created_at >= $1 AND created_at < $2{_ISSUED_BY})
        AS issued,
    (SELECT count(*) FROM links WHERE status NOT IN ('paid', 'expired', 'cancelled')
        AND expires_at > $2 AND created_at < $2{_ISSUED_BY}) AS still_open,
    (SELECT count(*) FROM links WHERE paid_at IS NULL
        AND expires_at >= $1 AND expires_at < $2{_ISSUED_BY}) AS expired
"""  # noqa: S608  constants only
# numeric sums exactly, as Decimal does.
_PAID = (
    "SELECT currency, count(*) AS paid, sum(total) AS total FROM links"
    " WHERE paid_at >= $1 AND paid_at < $2 AND ($3::text IS NULL OR issued_by = $3)"
    " GROUP BY currency ORDER BY currency"
)
_ISSUED = (
    f"SELECT paid_at, {LINK_COLUMNS} FROM links"  # noqa: S608  constants only
    " WHERE created_at >= $1 AND created_at < $2 AND ($3::text IS NULL OR issued_by = $3)"
    " ORDER BY created_at, seq"
)


class PostgresReports:
    """`Reports` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def day(self, start: datetime, now: datetime, issued_by: str | None = None) -> DayCounts:
        row = await self._sql.row(_COUNTS, start, now, issued_by)
        assert row is not None  # a SELECT without FROM always gives its one row
        paid = await self._sql.rows(_PAID, start, now, issued_by)
        return DayCounts(
            issued=row["issued"],
            paid=sum(r["paid"] for r in paid),
            paid_sums=tuple(Money(r["total"], r["currency"]) for r in paid),
            open=row["still_open"],
            expired=row["expired"],
        )

    async def issued_between(
        self, start: datetime, end: datetime, issued_by: str | None = None
    ) -> list[tuple[Link, datetime | None]]:
        found = await self._sql.rows(_ISSUED, start, end, issued_by)
        return [(records.link_from(row), optional_utc(row["paid_at"])) for row in found]

    async def merchant_chats(self, start: datetime, end: datetime) -> list[ChatRef]:
        found = await self._sql.rows(
            "SELECT DISTINCT s.channel, s.chat_id FROM subscriptions AS s"
            " JOIN links AS l ON l.id = s.link_id WHERE s.role = 'merchant'"
            " AND l.created_at >= $1 AND l.created_at < $2 ORDER BY s.channel, s.chat_id",
            start,
            end,
        )
        return [ChatRef(row["channel"], row["chat_id"]) for row in found]


class PostgresDigests:
    """`Digests` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def mark_sent(self, chat: ChatRef, day: date, at: datetime) -> bool:
        changed = await self._sql.change(
            "INSERT INTO digests (channel, chat_id, day, sent_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (channel, chat_id, day) DO NOTHING",
            chat.channel,
            chat.chat_id,
            day,
            at,
        )
        return changed == 1


class PostgresExports:
    """`Exports` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def add(self, export: ExportFile) -> None:
        await self._sql.change(
            "INSERT INTO exports (id, filename, content, created_at, expires_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            export.id,
            export.filename,
            export.content,
            export.created_at,
            export.expires_at,
        )

    async def get(self, export_id: str, now: datetime) -> ExportFile | None:
        row = await self._sql.row(
            "SELECT * FROM exports WHERE id = $1 AND expires_at > $2", export_id, now
        )
        if row is None:
            return None
        return ExportFile(
            id=row["id"],
            filename=row["filename"],
            content=bytes(row["content"]),
            created_at=utc(row["created_at"]),
            expires_at=utc(row["expires_at"]),
        )

    async def forget_expired(self, now: datetime, limit: int) -> int:
        return await self._sql.change(
            "DELETE FROM exports WHERE id IN"
            " (SELECT id FROM exports WHERE expires_at <= $1 LIMIT $2)",
            now,
            limit,
        )
