"""The inbox (every input, stored before it is acknowledged) and contacts, on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.models import ChatRef, InboxEntry, InboxItem
from storage.sqlite.rows import optional_time_from, time_from, time_text
from storage.sqlite.statements import SqliteStatements

_ERROR_CHARS = 1000  # errors can quote hostile input; keep the row bounded
_ENTRIES_PER_INSERT = 500  # 7 values each, well within SQLite's 32,766 parameters
_ENTRY_ROW = "(?, ?, ?, ?, ?, ?, ?)"

# The head of each lane: an open entry with no open entry before it in its lane,
# whether that one is due or claimed or not.
_HEAD = (
    "i.finished_at IS NULL AND i.set_aside_at IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM inbox AS e WHERE e.lane = i.lane AND e.seq < i.seq"
    " AND e.finished_at IS NULL AND e.set_aside_at IS NULL)"
)
# Heads that are due and not held by a live claim.
_CLAIMABLE = (
    f"SELECT i.seq FROM inbox AS i WHERE {_HEAD} AND i.next_attempt_at <= ?1"  # noqa: S608
    " AND (i.claimed_until IS NULL OR i.claimed_until <= ?1) ORDER BY i.seq LIMIT ?2"
)


class SqliteInbox(SqliteStatements):
    async def record(self, entries: Sequence[InboxEntry], at: datetime) -> list[bool]:
        # One statement (one round trip to the database thread) a chunk, not one an
        # entry: under a burst of webhooks this is the whole cost of acknowledging.
        new: set[tuple[str, str]] = set()
        when = time_text(at)
        for start in range(0, len(entries), _ENTRIES_PER_INSERT):
            chunk = entries[start : start + _ENTRIES_PER_INSERT]
            params = [
                value
                for e in chunk
                for value in (e.source, e.source_id, e.kind, e.lane, e.body, when, when)
            ]
            inserted = await self._rows(
                # Only constants and placeholders are joined into the text, never input.
                "INSERT INTO inbox (source, source_id, kind, lane, body, received_at,"  # noqa: S608
                f" next_attempt_at) VALUES {', '.join([_ENTRY_ROW] * len(chunk))}"
                " ON CONFLICT (source, source_id) DO NOTHING RETURNING source, source_id",
                params,
            )
            new.update((row[0], row[1]) for row in inserted)
        fresh = []
        for entry in entries:  # a key given twice is new only the first time
            key = (entry.source, entry.source_id)
            fresh.append(key in new)
            new.discard(key)
        return fresh

    async def claim(
        self, now: datetime, limit: int, holder: str, until: datetime
    ) -> list[InboxItem]:
        claimed = await self._rows(
            "UPDATE inbox SET claimed_by = ?3, claimed_until = ?4, attempts = attempts + 1"  # noqa: S608
            f" WHERE seq IN ({_CLAIMABLE}) RETURNING *",
            (time_text(now), max(limit, 0), holder, time_text(until)),
        )
        items = [
            InboxItem(
                seq=row["seq"],
                entry=InboxEntry(
                    row["source"], row["source_id"], row["kind"], row["lane"], row["body"]
                ),
                received_at=time_from(row["received_at"]),
                attempts=row["attempts"],
            )
            for row in claimed
        ]
        return sorted(items, key=lambda item: item.seq)

    async def prolong_claims(self, holder: str, until: datetime) -> int:
        return await self._change(
            "UPDATE inbox SET claimed_until = ? WHERE claimed_by = ?"
            " AND finished_at IS NULL AND set_aside_at IS NULL",
            (time_text(until), holder),
        )

    async def finish(self, seq: int, at: datetime) -> None:
        await self._change(
            "UPDATE inbox SET finished_at = ?, claimed_by = NULL, claimed_until = NULL"
            " WHERE seq = ? AND finished_at IS NULL AND set_aside_at IS NULL",
            (time_text(at), seq),
        )

    async def retry(self, seq: int, at: datetime, error: str) -> None:
        await self._change(
            "UPDATE inbox SET next_attempt_at = ?, last_error = ?, claimed_by = NULL,"
            " claimed_until = NULL WHERE seq = ? AND finished_at IS NULL AND set_aside_at IS NULL",
            (time_text(at), error[:_ERROR_CHARS], seq),
        )

    async def set_aside(self, seq: int, at: datetime, error: str) -> None:
        await self._change(
            "UPDATE inbox SET set_aside_at = ?, last_error = ?, claimed_by = NULL,"
            " claimed_until = NULL WHERE seq = ? AND finished_at IS NULL AND set_aside_at IS NULL",
            (time_text(at), error[:_ERROR_CHARS], seq),
        )

    async def next_due_at(self) -> datetime | None:
        # Heads only, as `claim` takes them; '' sorts before every time.
        row = await self._row(
            "SELECT MIN(max(i.next_attempt_at, COALESCE(i.claimed_until, '')))"  # noqa: S608
            f" FROM inbox AS i WHERE {_HEAD}"
        )
        return None if row is None else optional_time_from(row[0])

    async def unfinished_count(self) -> int:
        return await self._count(
            "SELECT COUNT(*) FROM inbox WHERE finished_at IS NULL AND set_aside_at IS NULL"
        )

    async def oldest_waiting_since(self) -> datetime | None:
        # inbox_open_by_lane holds only the waiting entries: those are all it reads.
        row = await self._row(
            "SELECT MIN(received_at) FROM inbox WHERE finished_at IS NULL AND set_aside_at IS NULL"
        )
        return None if row is None else optional_time_from(row[0])

    async def forget_finished(self, before: datetime, limit: int | None = None) -> int:
        return await self._change(
            "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox"
            " WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)",
            (time_text(before), -1 if limit is None else limit),  # -1: no limit, to SQLite
        )


class SqliteContacts(SqliteStatements):
    async def note_inbound(self, chat: ChatRef, at: datetime) -> None:
        # max(): a delayed retry of an older message must not move the time back.
        await self._change(
            "INSERT INTO contacts (channel, chat_id, last_inbound_at) VALUES (?, ?, ?)"
            " ON CONFLICT (channel, chat_id) DO UPDATE"
            " SET last_inbound_at = max(last_inbound_at, excluded.last_inbound_at)",
            (chat.channel, chat.chat_id, time_text(at)),
        )

    async def last_inbound_at(self, chat: ChatRef) -> datetime | None:
        row = await self._row(
            "SELECT last_inbound_at FROM contacts WHERE channel = ? AND chat_id = ?",
            (chat.channel, chat.chat_id),
        )
        return None if row is None else optional_time_from(row[0])
