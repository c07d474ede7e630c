"""Payment links, their history, order claims, and when each is polled next."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.models import ChatRef, Link, Status
from storage.postgres import records
from storage.postgres.records import utc
from storage.postgres.statements import Statements

# An empty share code gets a random one rather than a code every such link would
# share: 24 hex digits (96 bits) as on SQLite, drawn from gen_random_uuid()'s 122
# random bits, PostgreSQL's own strong generator.
INSERT_LINK = (
    "INSERT INTO links (id, order_id, token, url, expires_at, business_name, currency, total,"
    " line_items, status, created_at, status_changed_at, confirmed_at, reference, next_poll_at,"
    " share_code, issued_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12,"
    " $13, $14, $15, COALESCE(NULLIF($16, ''),"
    " left(encode(sha256(gen_random_uuid()::text::bytea), 'hex'), 24)), $17)"
)
LINK_COLUMNS = (
    "links.id, order_id, token, url, expires_at, business_name, currency, total,"
    " line_items::text AS line_items, status, created_at, status_changed_at, confirmed_at,"
    " reference, next_poll_at, share_code, issued_by"
)
_SELECT_LINKS = f"SELECT {LINK_COLUMNS} FROM links"  # noqa: S608  constants only
_RECORD_HISTORY = (
    "INSERT INTO status_history (link_id, status, at, reference) VALUES ($1, $2, $3, $4)"
)


class PostgresLinks:
    """`Links` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def _links(self, where: str, *args: Any) -> list[Link]:
        return [
            records.link_from(row) for row in await self._sql.rows(_SELECT_LINKS + where, *args)
        ]

    async def _link(self, where: str, *args: Any) -> Link | None:
        found = await self._links(where, *args)
        return found[0] if found else None

    async def insert(self, link: Link) -> None:
        await self._sql.change(INSERT_LINK, *records.link_args(link))

    async def get(self, link_id: str) -> Link | None:
        return await self._link(" WHERE id = $1", link_id)

    async def locked(self, link_id: str) -> Link | None:
        return await self._link(" WHERE id = $1 FOR UPDATE", link_id)

    async def by_token(self, token: str) -> Link | None:
        return await self._link(" WHERE token = $1", token)

    async def by_share_code(self, code: str) -> Link | None:
        return await self._link(" WHERE share_code = $1", code)

    async def latest_for_order(self, order_id: str) -> Link | None:
        return await self._link(
            " WHERE order_id = $1 ORDER BY created_at DESC, seq DESC LIMIT 1", order_id
        )

    async def subscribed_by(self, chat: ChatRef, issued_by: str | None = None) -> list[Link]:
        return await self._links(
            " JOIN subscriptions ON subscriptions.link_id = links.id"
            " WHERE subscriptions.channel = $1 AND subscriptions.chat_id = $2"
            " AND ($3::text IS NULL OR links.issued_by = $3)"
            " ORDER BY links.created_at DESC, links.seq DESC",
            chat.channel,
            chat.chat_id,
            issued_by,
        )

    async def move_status(
        self, link_id: str, old: Status, new: Status, at: datetime, reference: str | None
    ) -> bool:
        changed = await self._sql.change(
            "UPDATE links SET status = $1, status_changed_at = $2,"
            " reference = COALESCE($3, reference) WHERE id = $4 AND status = $5",
            new.value,
            at,
            reference,
            link_id,
            old.value,
        )
        if changed == 1:
            await self._sql.change(_RECORD_HISTORY, link_id, new.value, at, reference)
        return changed == 1

    async def confirm(self, link_id: str, at: datetime, reference: str | None) -> bool:
        changed = await self._sql.change(
            "UPDATE links SET confirmed_at = $1, status = 'paid',"
            " reference = COALESCE($2, reference), next_poll_at = NULL"
            " WHERE id = $3 AND confirmed_at IS NULL",
            at,
            reference,
            link_id,
        )
        if changed == 1:
            await self._sql.change(_RECORD_HISTORY, link_id, None, at, reference)
        return changed == 1

    async def history(self, link_id: str) -> list[tuple[Status | None, datetime]]:
        found = await self._sql.rows(
            "SELECT status, at FROM status_history WHERE link_id = $1 ORDER BY id", link_id
        )
        return [(None if s is None else Status(s), utc(at)) for s, at in found]

    async def forget_history(self, before: datetime, limit: int) -> int:
        return await self._sql.change(
            "DELETE FROM status_history WHERE id IN"
            " (SELECT id FROM status_history WHERE at < $1 LIMIT $2)",
            before,
            limit,
        )

    async def claim_order(self, order_id: str, holder: str, now: datetime, until: datetime) -> bool:
        # The row lock of the conflict makes this atomic: a claim still good at `now`
        # is left alone (unless it is the caller's own), and no row comes back.
        taken = await self._sql.row(
            "INSERT INTO order_claims (order_id, holder, until) VALUES ($1, $2, $4)"
            " ON CONFLICT (order_id) DO UPDATE SET holder = excluded.holder, until = excluded.until"
            " WHERE order_claims.until <= $3 OR order_claims.holder = excluded.holder"
            " RETURNING holder",
            order_id,
            holder,
            now,
            until,
        )
        return taken is not None

    async def release_order(self, order_id: str, holder: str) -> None:
        await self._sql.change(
            "DELETE FROM order_claims WHERE order_id = $1 AND holder = $2", order_id, holder
        )


# Moving payments (the status test matches the partial index links_moving_due) are
# taken first, then the others fill what is left of the limit; one statement, each
# part walking its own index in order and skipping rows another claimer holds. The
# claimed links are then updated through the primary key (the ANY): joined to the
# CTE alone, the planner may hash every link, tracked or long done, to find them.
CLAIM_MOVING_FIRST = f"""
WITH moving AS (
    SELECT {LINK_COLUMNS}, 0 AS rank FROM links
    WHERE next_poll_at <= $1 AND status IN ('processing', 'awaiting_authorization')
    ORDER BY next_poll_at LIMIT $2 FOR UPDATE SKIP LOCKED
), others AS (
    SELECT {LINK_COLUMNS}, 1 AS rank FROM links
    WHERE next_poll_at <= $1 AND status NOT IN ('processing', 'awaiting_authorization')
    ORDER BY next_poll_at LIMIT greatest($2 - (SELECT count(*) FROM moving), 0)
    FOR UPDATE SKIP LOCKED
), due AS (SELECT * FROM moving UNION ALL SELECT * FROM others)
UPDATE links SET next_poll_at = $3 FROM due
WHERE links.id = ANY(ARRAY(SELECT id FROM due)) AND links.id = due.id RETURNING due.*
"""  # noqa: S608  constants only
CLAIM_SOONEST = f"""
WITH due AS (
    SELECT {LINK_COLUMNS}, 0 AS rank FROM links WHERE next_poll_at <= $1
    ORDER BY next_poll_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
UPDATE links SET next_poll_at = $3 FROM due
WHERE links.id = ANY(ARRAY(SELECT id FROM due)) AND links.id = due.id RETURNING due.*
"""  # noqa: S608  constants only


class PostgresPollSchedule:
    """`PollSchedule` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def schedule(self, link_id: str, at: datetime | None) -> None:
        await self._sql.change("UPDATE links SET next_poll_at = $1 WHERE id = $2", at, link_id)

    async def claim_due(
        self, now: datetime, limit: int, until: datetime, moving_first: bool = True
    ) -> list[Link]:
        sql = CLAIM_MOVING_FIRST if moving_first else CLAIM_SOONEST
        found = await self._sql.rows(sql, now, max(limit, 0), until)
        # RETURNING keeps no order; the CTEs' is restored here.
        found.sort(key=lambda row: (row["rank"], row["next_poll_at"]))
        return [records.link_from(row) for row in found]

    async def next_due_at(self) -> datetime | None:
        found = await self._sql.value("SELECT min(next_poll_at) FROM links")
        return records.optional_utc(found)

    async def tracked_count(self) -> int:
        found = await self._sql.value("SELECT count(*) FROM links WHERE next_poll_at IS NOT NULL")
        return int(found)

    async def reserve_turns(self, now: datetime, count: int, spacing: timedelta) -> datetime:
        # One statement: the row's lock makes concurrent reservations follow each other.
        first = await self._sql.value(
            "UPDATE poll_turns SET next_at = GREATEST(next_at, $1) + $2 * $3::interval"
            " WHERE id = 1 RETURNING next_at - $2 * $3::interval",
            now,
            max(count, 0),
            spacing,
        )
        return utc(first)
