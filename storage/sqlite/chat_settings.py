"""What each chat chose for itself (its language), on SQLite."""

from __future__ import annotations

from bot.models import ChatRef
from storage.sqlite.statements import SqliteStatements


class SqliteChatSettings(SqliteStatements):
    async def language_of(self, chat: ChatRef) -> str | None:
        row = await self._row(
            "SELECT language FROM chat_settings WHERE channel = ? AND chat_id = ?",
            (chat.channel, chat.chat_id),
        )
        return None if row is None else str(row[0])

    async def set_language(self, chat: ChatRef, language: str) -> None:
        await self._change(
            "INSERT INTO chat_settings (channel, chat_id, language) VALUES (?, ?, ?)"
            " ON CONFLICT (channel, chat_id) DO UPDATE SET language = excluded.language",
            (chat.channel, chat.chat_id, language),
        )

    async def move_chat(self, old: ChatRef, new: ChatRef) -> None:
        await self._change(
            "UPDATE chat_settings SET channel = ?, chat_id = ? WHERE channel = ? AND chat_id = ?"
            " AND NOT EXISTS (SELECT 1 FROM chat_settings WHERE channel = ? AND chat_id = ?)",
            (new.channel, new.chat_id, old.channel, old.chat_id, new.channel, new.chat_id),
        )
