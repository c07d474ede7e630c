"""A real store that counts the transactions begun on it: how often a worker looks."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from bot.ports import Tx
from storage.sqlite import SqliteStore


class Counted:
    """A real SQLite store that counts the transactions begun on it."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.begun = 0

    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[Tx]:
        self.begun += 1
        return self.store.transaction(urgent)

    async def begun_so_far(self) -> int:
        return self.begun
