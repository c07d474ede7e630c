"""Roles under a lease (bot/roles.py): one holder at a time, on every store."""

from __future__ import annotations

import asyncio

from bot.ports import Store
from tests.storage.contract.support import OpenStore, at


async def claim(store: Store, holder: str, seconds: float, lease: float = 6) -> bool:
    async with store.transaction() as tx:
        return await tx.roles.claim("sender", holder, at(seconds), at(seconds + lease))


async def test_one_holder_at_a_time_across_processes(open_store: OpenStore) -> None:
    stores = [await open_store() for _ in range(3)]
    won = await asyncio.gather(
        *(claim(s, f"p{n}", 0) for n, s in enumerate(stores) for _ in (1, 2))
    )
    assert sum(won) == 2  # one process won, and its second try renewed its own claim
    winner = won.index(True) // 2
    assert won[2 * winner : 2 * winner + 2] == [True, True]


async def test_a_holder_renews_and_a_lapsed_role_passes_on(store: Store) -> None:
    assert await claim(store, "a", 0)
    assert await claim(store, "a", 4)  # renewed: held until 10
    assert not await claim(store, "b", 8)
    assert await claim(store, "b", 10)  # a's lease ended: a died
    assert not await claim(store, "a", 11)


async def test_release_gives_the_role_up_for_another_at_once(store: Store) -> None:
    assert await claim(store, "a", 0)
    async with store.transaction() as tx:
        await tx.roles.release("sender", "b")  # not b's to give up
    assert not await claim(store, "b", 1)
    async with store.transaction() as tx:
        await tx.roles.release("sender", "a")
    assert await claim(store, "b", 1)
