"""Migration 0004 against a real SQLite file: long-polled Telegram updates, stored once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from storage.sqlite import SqliteStore
from tests.storage.test_sqlite import T0


def body(update_id: int, text: str = "/help") -> str:
    return json.dumps({"update_id": update_id, "message": {"text": text}})


async def test_updates_are_stored_once_and_read_back_lowest_id_first(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        assert await tx.record_telegram_updates([(12, body(12)), (10, body(10))], T0) == [12, 10]
    async with store.transaction() as tx:
        # Telegram redelivers what was not confirmed: the first copy stays.
        again = [(10, body(10, "/other")), (11, body(11))]
        assert await tx.record_telegram_updates(again, T0) == [11]
        found = await tx.unhandled_telegram_updates(10)
    assert found == [(10, body(10)), (11, body(11)), (12, body(12))]


async def test_unhandled_pages_by_limit_and_after(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.record_telegram_updates([(i, body(i)) for i in range(1, 6)], T0)
        first = await tx.unhandled_telegram_updates(2)
        rest = await tx.unhandled_telegram_updates(10, after=first[-1][0])
        none = await tx.unhandled_telegram_updates(0)
    assert [i for i, _ in first] == [1, 2]
    assert [i for i, _ in rest] == [3, 4, 5]
    assert none == []


async def test_a_handled_update_is_not_read_again_nor_stored_again(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.record_telegram_updates([(1, body(1)), (2, body(2))], T0)
        await tx.mark_telegram_update_handled(1, T0)
        await tx.mark_telegram_update_handled(1, T0 + timedelta(hours=1))  # first time kept
        assert await tx.record_telegram_updates([(1, body(1))], T0) == []
        assert [i for i, _ in await tx.unhandled_telegram_updates(10)] == [2]


async def test_a_rolled_back_batch_is_not_stored(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.record_telegram_updates([(1, body(1))], T0)
            raise RuntimeError("the commit never happens")
    async with store.transaction() as tx:
        assert await tx.unhandled_telegram_updates(10) == []
        assert await tx.record_telegram_updates([(1, body(1))], T0) == [1]


async def test_forgetting_drops_only_updates_handled_before_the_time(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.record_telegram_updates([(1, body(1)), (2, body(2)), (3, body(3))], T0)
        await tx.mark_telegram_update_handled(1, T0)
        await tx.mark_telegram_update_handled(2, T0 + timedelta(days=8))
        assert await tx.forget_telegram_updates(T0 + timedelta(days=7)) == 1
        assert [i for i, _ in await tx.unhandled_telegram_updates(10)] == [3]
        # Forgotten, so a later update Telegram numbers 1 again is a new one.
        assert await tx.record_telegram_updates([(1, body(1)), (2, body(2))], T0) == [1]
