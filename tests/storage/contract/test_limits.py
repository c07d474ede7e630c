"""Senders' budgets: a burst, then one use each `every`, counted once for every process."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.ports import Tx
from tests.storage.contract.support import T0, OpenStore, at, committed

MINUTE = timedelta(minutes=1)


async def test_one_a_minute_is_one_until_the_minute_has_passed(open_store: OpenStore) -> None:
    store = await open_store()
    answered = []
    for seconds in (0, 1, 59, 60, 61, 119, 120):
        async with store.transaction() as tx:
            answered.append(await tx.limits.take("answers:telegram:9", at(seconds), MINUTE, 1))
    assert answered == [True, False, False, True, False, False, True]
    async with store.transaction() as tx:  # another key has its own budget
        assert await tx.limits.take("answers:telegram:10", at(1), MINUTE, 1)


async def test_a_burst_then_one_each_interval(open_store: OpenStore) -> None:
    store, every = await open_store(), timedelta(seconds=2)
    taken = []
    for _ in range(4):
        async with store.transaction() as tx:
            taken.append(await tx.limits.take("asks:7001", T0, every, 3))
    async with store.transaction() as tx:
        taken.append(await tx.limits.take("asks:7001", at(1.9), every, 3))
        taken.append(await tx.limits.take("asks:7001", at(2), every, 3))
    assert taken == [True, True, True, False, False, True]


async def test_racing_processes_are_granted_the_budget_once_between_them(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(3)]

    async def take(n: int) -> bool:
        async def work(tx: Tx) -> bool:
            return await tx.limits.take("asks:7001", T0, timedelta(seconds=2), 5)

        return await committed(stores[n % 3], work)

    granted = await asyncio.gather(*(take(n) for n in range(15)))
    assert granted.count(True) == 5


async def test_a_budget_whole_again_is_forgotten(open_store: OpenStore) -> None:
    store = await open_store()
    async with store.transaction() as tx:
        await tx.limits.take("answers:telegram:9", T0, MINUTE, 1)
        await tx.limits.take("answers:telegram:10", at(30), MINUTE, 1)
        assert await tx.limits.forget_idle(at(59), 10) == 0
        assert await tx.limits.forget_idle(at(60), 10) == 1
        # The one forgotten is as it was: a whole budget.
        assert await tx.limits.take("answers:telegram:9", at(60), MINUTE, 1)
        assert not await tx.limits.take("answers:telegram:10", at(60), MINUTE, 1)
