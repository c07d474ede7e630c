"""Statements on the transaction's connection, each one round trip.

asyncpg prepares each statement text once per connection and keeps it, so the
repositories pass constant SQL and placeholders only, never text built from input.
The driver's failures leave here as StoreError, so a repository call raises the
store's own errors, as the transaction block around it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import asyncpg

from storage.postgres.driver_errors import translated_errors


def checked(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments, once no datetime among them is naive.

    asyncpg would read a naive datetime as local time; paybot stores aware UTC
    times only, so a naive one is refused rather than guessed.
    """
    for value in args:
        if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(f"naive datetime: {value!r}; paybot stores aware UTC times only")
    return args


class Statements:
    """The connection of one open transaction.

    `failure` is the first error a statement raised. PostgreSQL aborts the
    transaction then, and a COMMIT after it rolls back without a word; the store
    refuses to commit instead, should the block have caught the error and gone on.
    """

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.failure: Exception | None = None
        self._ended = False

    def end(self) -> None:
        """The transaction is over and its connection back in the pool: refuse more."""
        self._ended = True

    @contextmanager
    def _running(self) -> Iterator[None]:
        if self._ended:
            raise RuntimeError("a Tx was used after its transaction() block ended")
        try:
            with translated_errors():
                yield
        except Exception as error:
            self.failure = self.failure or error
            raise

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        args = checked(args)
        with self._running():
            return list(await self._connection.fetch(sql, *args))

    async def row(self, sql: str, *args: Any) -> asyncpg.Record | None:
        args = checked(args)
        with self._running():
            return await self._connection.fetchrow(sql, *args)

    async def value(self, sql: str, *args: Any) -> Any:
        args = checked(args)
        with self._running():
            return await self._connection.fetchval(sql, *args)

    async def change(self, sql: str, *args: Any) -> int:
        """Run a write; the number of rows it touched, from the command tag ("UPDATE 1")."""
        args = checked(args)
        with self._running():
            tag = await self._connection.execute(sql, *args)
        count = str(tag).rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else 0
