"""Reading a store's tables directly, on SQLite or PostgreSQL alike, for assertions.

Tests look at what the store holds (was this event stored? applied?) without
going through the core. SQL is written once with `?` placeholders; for
PostgreSQL they become `$1`, `$2`…
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from storage import is_postgres


class Row:
    """One row, by position or by column name, as sqlite3.Row reads. Times and amounts
    read as SQLite stores them (ISO 8601 text, decimal text), so one assertion fits both."""

    def __init__(self, names: list[str], values: list[Any]) -> None:
        self._names, self._values = names, [_as_sqlite_stores(v) for v in values]

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key if isinstance(key, int) else self._names.index(key)]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(dict(zip(self._names, self._values, strict=True)))

    def keys(self) -> list[str]:
        return list(self._names)


async def rows(database: str, sql: str, *params: Any) -> list[Row]:
    """The rows `sql` selects from the database paybot was given (a path or a URL)."""
    if is_postgres(database):
        numbered = iter(range(1, 1000))
        connection = await asyncpg.connect(database)
        try:
            found = await connection.fetch(
                re.sub(r"\?", lambda _: f"${next(numbered)}", sql), *params
            )
        finally:
            await connection.close()
        return [Row(list(record.keys()), list(record.values())) for record in found]
    with contextlib.closing(sqlite3.connect(database)) as db:
        cursor = db.execute(sql, params)
        names = [column[0] for column in cursor.description or ()]
        return [Row(names, list(row)) for row in cursor.fetchall()]


def _as_sqlite_stores(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, Decimal):
        return str(value)
    return value


async def inbox_entries(database: str, source: str) -> dict[str, datetime | None]:
    """source_id -> when it was handled (None: not yet), for the inbox entries from `source`."""
    found = await rows(
        database, "SELECT source_id, finished_at FROM inbox WHERE source = ?", source
    )
    return {source_id: _time(finished) for source_id, finished in found}


def _time(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value)).astimezone(UTC)
