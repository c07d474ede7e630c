"""What each chat chose for itself (its language), on SQLite."""

from __future__ import annotations

import aiosqlite

from bot.models import ChatRef
from storage.sqlite.statements import SqliteStatements


class SqliteChatSettings(SqliteStatements):
    def __init__(self, db: aiosqlite.Connection) -> None:
        super().__init__(db)
        self._known: dict[ChatRef, str | None] = {}

    # A chat's language is read for each message a transaction renders (an invoice's
    # caption, then its claim for sending): asked once a transaction, then kept, and
    # kept in step with the changes made through it.
    async def language_of(self, chat: ChatRef) -> str | None:
        if chat not in self._known:
            row = await self._row(
                "SELECT language FROM chat_settings WHERE channel = ? AND chat_id = ?",
                (chat.channel, chat.chat_id),
            )
            self._known[chat] = None if row is None else str(row[0])
        return self._known[chat]

    async def set_language(self, chat: ChatRef, language: str) -> None:
        await self._change(
            "INSERT INTO chat_settings (channel, chat_id, language) VALUES (?, ?, ?)"
            " ON CONFLICT (channel, chat_id) DO UPDATE SET language = excluded.language",
            (chat.channel, chat.chat_id, language),
        )
        self._known[chat] = language

    async def move_chat(self, old: ChatRef, new: ChatRef) -> None:
        self._known.clear()
        await self._change(
            "UPDATE chat_settings SET channel = ?, chat_id = ? WHERE channel = ? AND chat_id = ?"
            " AND NOT EXISTS (SELECT 1 FROM chat_settings WHERE channel = ? AND chat_id = ?)",
            (new.channel, new.chat_id, old.channel, old.chat_id, new.channel, new.chat_id),
        )
