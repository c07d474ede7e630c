"""Which chats hear about which link, and when each chat last wrote to us."""

from __future__ import annotations

from datetime import datetime

from bot.models import ChatRef, Subscription
from storage.postgres import records
from storage.postgres.statements import Statements


class PostgresSubscriptions:
    """`Subscriptions` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def add(self, subscription: Subscription) -> bool:
        # Only the primary key's conflict means "already subscribed"; any other
        # violation (an unknown link) still raises.
        changed = await self._sql.change(
            "INSERT INTO subscriptions (link_id, channel, chat_id, role, message_id)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (link_id, channel, chat_id) DO NOTHING",
            subscription.link_id,
            subscription.chat.channel,
            subscription.chat.chat_id,
            subscription.role.value,
            subscription.message_id,
        )
        return changed == 1

    async def for_link(self, link_id: str) -> list[Subscription]:
        found = await self._sql.rows(
            "SELECT link_id, channel, chat_id, role, message_id FROM subscriptions"
            " WHERE link_id = $1 ORDER BY seq",
            link_id,
        )
        return [records.subscription_from(row) for row in found]

    async def move_chat(self, old: ChatRef, new: ChatRef) -> int:
        # A link the new chat already hears of keeps that subscription.
        moved = await self._sql.change(
            "UPDATE subscriptions AS s SET chat_id = $3 WHERE s.channel = $1 AND s.chat_id = $2"
            " AND NOT EXISTS (SELECT 1 FROM subscriptions AS t WHERE t.link_id = s.link_id"
            " AND t.channel = $1 AND t.chat_id = $3)",
            old.channel,
            old.chat_id,
            new.chat_id,
        )
        await self._sql.change(
            "DELETE FROM subscriptions WHERE channel = $1 AND chat_id = $2",
            old.channel,
            old.chat_id,
        )
        return moved

    async def set_message_id(self, link_id: str, chat: ChatRef, message_id: str) -> None:
        await self._sql.change(
            "UPDATE subscriptions SET message_id = $1"
            " WHERE link_id = $2 AND channel = $3 AND chat_id = $4",
            message_id,
            link_id,
            chat.channel,
            chat.chat_id,
        )


class PostgresContacts:
    """`Contacts` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def note_inbound(self, chat: ChatRef, at: datetime) -> None:
        # GREATEST: a delayed retry of an older message must not move the time back.
        await self._sql.change(
            "INSERT INTO contacts (channel, chat_id, last_inbound_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (channel, chat_id) DO UPDATE"
            " SET last_inbound_at = GREATEST(contacts.last_inbound_at, excluded.last_inbound_at)",
            chat.channel,
            chat.chat_id,
            at,
        )

    async def last_inbound_at(self, chat: ChatRef) -> datetime | None:
        found = await self._sql.value(
            "SELECT last_inbound_at FROM contacts WHERE channel = $1 AND chat_id = $2",
            chat.channel,
            chat.chat_id,
        )
        return records.optional_utc(found)
