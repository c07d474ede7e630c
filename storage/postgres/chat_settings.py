"""What each chat chose for itself (its language), on PostgreSQL."""

from __future__ import annotations

from bot.models import ChatRef
from storage.postgres.statements import Statements


class PostgresChatSettings:
    """`ChatSettings` on one transaction."""

    def __init__(self, statements: Statements) -> None:
        self._sql = statements

    async def language_of(self, chat: ChatRef) -> str | None:
        found = await self._sql.value(
            "SELECT language FROM chat_settings WHERE channel = $1 AND chat_id = $2",
            chat.channel,
            chat.chat_id,
        )
        return None if found is None else str(found)

    async def set_language(self, chat: ChatRef, language: str) -> None:
        await self._sql.change(
            "INSERT INTO chat_settings (channel, chat_id, language) VALUES ($1, $2, $3)"
            " ON CONFLICT (channel, chat_id) DO UPDATE SET language = excluded.language",
            chat.channel,
            chat.chat_id,
            language,
        )

    async def move_chat(self, old: ChatRef, new: ChatRef) -> None:
        await self._sql.change(
            "UPDATE chat_settings SET channel = $1, chat_id = $2"
            " WHERE channel = $3 AND chat_id = $4"
            " AND NOT EXISTS (SELECT 1 FROM chat_settings WHERE channel = $1 AND chat_id = $2)",
            new.channel,
            new.chat_id,
            old.channel,
            old.chat_id,
        )
