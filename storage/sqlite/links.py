"""Links, their poll schedule and their subscribers, on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.models import ChatRef, Link, Status, Subscription
from storage.sqlite import rows
from storage.sqlite.rows import optional_time_from, time_from, time_text
from storage.sqlite.statements import SqliteStatements

# The status test must match the partial index links_moving_due (migration 0003).
_DUE_MOVING = (
    "SELECT * FROM links WHERE next_poll_at <= ?"
    " AND status IN ('processing', 'awaiting_authorization') ORDER BY next_poll_at LIMIT ?"
)
_DUE_ANY = "SELECT * FROM links WHERE next_poll_at <= ? ORDER BY next_poll_at LIMIT ?"
_DUE_IDLE = (
    "SELECT * FROM links WHERE next_poll_at <= ?"
    " AND status NOT IN ('processing', 'awaiting_authorization') ORDER BY next_poll_at LIMIT ?"
)


class _LinkRows(SqliteStatements):
    async def _links(self, sql: str, params: Sequence[Any]) -> list[Link]:
        return [rows.link_from(row) for row in await self._rows(sql, params)]

    async def _first_link(self, sql: str, params: Sequence[Any]) -> Link | None:
        found = await self._links(sql, params)
        return found[0] if found else None


class SqliteLinks(_LinkRows):
    async def insert(self, link: Link) -> None:
        await self._change(rows.INSERT_LINK, rows.link_params(link))

    async def get(self, link_id: str) -> Link | None:
        return await self._first_link("SELECT * FROM links WHERE id = ?", (link_id,))

    async def locked(self, link_id: str) -> Link | None:
        # Held already: transactions take the write lock up front, one at a time.
        return await self.get(link_id)

    async def by_token(self, token: str) -> Link | None:
        return await self._first_link("SELECT * FROM links WHERE token = ?", (token,))

    async def by_share_code(self, code: str) -> Link | None:
        # '' is never stored (insert makes a code instead), so it finds nothing.
        return await self._first_link("SELECT * FROM links WHERE share_code = ?", (code,))

    async def latest_for_order(self, order_id: str) -> Link | None:
        return await self._first_link(
            "SELECT * FROM links WHERE order_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (order_id,),
        )

    async def subscribed_by(self, chat: ChatRef, issued_by: str | None = None) -> list[Link]:
        return await self._links(
            "SELECT * FROM links WHERE id IN"
            " (SELECT link_id FROM subscriptions WHERE channel = ? AND chat_id = ?)"
            " AND (? IS NULL OR issued_by = ?)"
            " ORDER BY created_at DESC, rowid DESC",
            (chat.channel, chat.chat_id, issued_by, issued_by),
        )

    async def move_status(
        self, link_id: str, old: Status, new: Status, at: datetime, reference: str | None
    ) -> bool:
        changed = await self._change(
            "UPDATE links SET status = ?, status_changed_at = ?,"
            " reference = COALESCE(?, reference) WHERE id = ? AND status = ?",
            (new.value, time_text(at), reference, link_id, old.value),
        )
        if changed == 1:
            await self._record_history(link_id, new, at, reference)
        return changed == 1

    async def confirm(self, link_id: str, at: datetime, reference: str | None) -> bool:
        changed = await self._change(
            "UPDATE links SET confirmed_at = ?, status = 'paid',"
            " reference = COALESCE(?, reference), next_poll_at = NULL"
            " WHERE id = ? AND confirmed_at IS NULL",
            (time_text(at), reference, link_id),
        )
        if changed == 1:
            await self._record_history(link_id, None, at, reference)
        return changed == 1

    async def _record_history(
        self, link_id: str, status: Status | None, at: datetime, reference: str | None
    ) -> None:
        await self._change(
            "INSERT INTO status_history (link_id, status, at, reference) VALUES (?, ?, ?, ?)",
            (link_id, None if status is None else status.value, time_text(at), reference),
        )

    async def history(self, link_id: str) -> list[tuple[Status | None, datetime]]:
        found = await self._rows(
            "SELECT status, at FROM status_history WHERE link_id = ? ORDER BY id", (link_id,)
        )
        return [(None if s is None else Status(s), time_from(at)) for s, at in found]

    async def forget_history(self, before: datetime, limit: int) -> int:
        return await self._change(
            "DELETE FROM status_history WHERE id IN"
            " (SELECT id FROM status_history WHERE at < ? LIMIT ?)",
            (time_text(before), limit),
        )

    async def claim_order(self, order_id: str, holder: str, now: datetime, until: datetime) -> bool:
        claimed = await self._rows(
            "INSERT INTO order_claims (order_id, holder, until) VALUES (?, ?, ?)"
            " ON CONFLICT (order_id) DO UPDATE SET holder = excluded.holder,"
            " until = excluded.until WHERE order_claims.until <= ?"
            " OR order_claims.holder = excluded.holder RETURNING order_id",
            (order_id, holder, time_text(until), time_text(now)),
        )
        return bool(claimed)

    async def release_order(self, order_id: str, holder: str) -> None:
        await self._change(
            "DELETE FROM order_claims WHERE order_id = ? AND holder = ?", (order_id, holder)
        )


class SqlitePolls(_LinkRows):
    async def schedule(self, link_id: str, at: datetime | None) -> None:
        await self._change(
            "UPDATE links SET next_poll_at = ? WHERE id = ?",
            (rows.optional_time_text(at), link_id),
        )

    async def claim_due(
        self, now: datetime, limit: int, until: datetime, moving_first: bool = True
    ) -> list[Link]:
        # Read, then move: atomic under the one writer's transaction. Two queries, each
        # walking its own index in order, rather than one that sorts every overdue link.
        due = await self._due(now, max(limit, 0), moving_first)
        if due:
            marks = ", ".join("?" * len(due))
            await self._change(
                # Only placeholders are joined into the text, never input.
                f"UPDATE links SET next_poll_at = ? WHERE id IN ({marks})",  # noqa: S608
                (time_text(until), *(link.id for link in due)),
            )
        return due

    async def _due(self, now: datetime, limit: int, moving_first: bool) -> list[Link]:
        params = (time_text(now), limit)
        if not moving_first:
            return await self._links(_DUE_ANY, params)
        moving = await self._links(_DUE_MOVING, params)
        if len(moving) >= limit:
            return moving
        idle = await self._links(_DUE_IDLE, (params[0], limit - len(moving)))
        return moving + idle

    async def next_due_at(self) -> datetime | None:
        row = await self._row("SELECT MIN(next_poll_at) FROM links")
        return None if row is None else optional_time_from(row[0])

    async def tracked_count(self) -> int:
        return await self._count("SELECT COUNT(*) FROM links WHERE next_poll_at IS NOT NULL")

    async def reserve_turns(self, now: datetime, count: int, spacing: timedelta) -> datetime:
        # Read, then move: atomic under the one writer's transaction.
        row = await self._row("SELECT next_at FROM poll_turns WHERE id = 1")
        first = now if row is None else max(now, time_from(row[0]))
        await self._change(
            "UPDATE poll_turns SET next_at = ? WHERE id = 1",
            (time_text(first + spacing * max(count, 0)),),
        )
        return first


class SqliteSubscriptions(SqliteStatements):
    async def add(self, subscription: Subscription) -> bool:
        # Only the primary key conflict means "already subscribed"; any other
        # violation (an unknown link) still raises.
        changed = await self._change(
            "INSERT INTO subscriptions (link_id, channel, chat_id, role, message_id)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (link_id, channel, chat_id) DO NOTHING",
            (
                subscription.link_id,
                subscription.chat.channel,
                subscription.chat.chat_id,
                subscription.role.value,
                subscription.message_id,
            ),
        )
        return changed == 1

    async def for_link(self, link_id: str) -> list[Subscription]:
        found = await self._rows(
            "SELECT * FROM subscriptions WHERE link_id = ? ORDER BY rowid", (link_id,)
        )
        return [rows.subscription_from(row) for row in found]

    async def move_chat(self, old: ChatRef, new: ChatRef) -> int:
        # OR IGNORE: a link the new chat already hears of keeps that subscription.
        moved = await self._change(
            "UPDATE OR IGNORE subscriptions SET chat_id = ? WHERE channel = ? AND chat_id = ?",
            (new.chat_id, old.channel, old.chat_id),
        )
        await self._change(
            "DELETE FROM subscriptions WHERE channel = ? AND chat_id = ?",
            (old.channel, old.chat_id),
        )
        return moved

    async def set_message_id(self, link_id: str, chat: ChatRef, message_id: str) -> None:
        await self._change(
            "UPDATE subscriptions SET message_id = ?"
            " WHERE link_id = ? AND channel = ? AND chat_id = ?",
            (message_id, link_id, chat.channel, chat.chat_id),
        )
