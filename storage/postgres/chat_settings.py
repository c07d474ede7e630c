"""What each chat chose for itself (its language), on PostgreSQL."""

from __future__ import annotations

from bot.models import ChatRef
from storage.postgres.statements import Statements


class PostgresChatSettings:
    """`ChatSettings` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements
        self._known: dict[ChatRef, str | None] = {}

    # A chat's language is read for each message a transaction renders (an invoice's
    # caption, then its claim for sending): asked once a transaction, then kept, and
    # kept in step with the changes made through it.
    async def language_of(self, chat: ChatRef) -> str | None:
        if chat not in self._known:
            found = await self._sql.value(
                "SELECT language FROM chat_settings WHERE channel = $1 AND chat_id = $2",
                chat.channel,
                chat.chat_id,
            )
            self._known[chat] = None if found is None else str(found)
        return self._known[chat]

    async def set_language(self, chat: ChatRef, language: str) -> None:
        await self._sql.change(
            "INSERT INTO chat_settings (channel, chat_id, language) VALUES ($1, $2, $3)"
            " ON CONFLICT (channel, chat_id) DO UPDATE SET language = excluded.language",
            chat.channel,
            chat.chat_id,
            language,
        )
        self._known[chat] = language

    async def move_chat(self, old: ChatRef, new: ChatRef) -> None:
        self._known.clear()
        await self._sql.change(
            "UPDATE chat_settings SET channel = $1, chat_id = $2"
            " WHERE channel = $3 AND chat_id = $4"
            " AND NOT EXISTS (SELECT 1 FROM chat_settings WHERE channel = $1 AND chat_id = $2)",
            new.channel,
            new.chat_id,
            old.channel,
            old.chat_id,
        )
