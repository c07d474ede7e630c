"""Who creates the link for an order: one holder at a time, across processes."""

from __future__ import annotations

from bot.ports import Store
from tests.storage.contract.support import OpenStore, at


async def claim(store: Store, order_id: str, holder: str, now: float, until: float) -> bool:
    async with store.transaction() as tx:
        return await tx.links.claim_order(order_id, holder, at(now), at(until))


async def release(store: Store, order_id: str, holder: str) -> None:
    async with store.transaction() as tx:
        await tx.links.release_order(order_id, holder)


async def test_a_claim_excludes_other_stores_until_its_lease_ends(open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    assert await claim(first, "1001", "worker-a", now=0, until=60)
    assert not await claim(second, "1001", "worker-b", now=30, until=90)
    assert await claim(second, "1002", "worker-b", now=30, until=90)  # another order is free
    # worker-a died without releasing: at the end of its lease worker-b may take over.
    assert await claim(second, "1001", "worker-b", now=61, until=120)
    assert not await claim(first, "1001", "worker-a", now=62, until=122)


async def test_release_order_gives_up_only_the_holders_own_claim(open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    assert await claim(first, "1001", "worker-a", now=0, until=60)
    await release(second, "1001", "worker-b")  # not worker-b's claim: left alone
    assert not await claim(second, "1001", "worker-b", now=1, until=61)
    await release(first, "1001", "worker-a")
    assert await claim(second, "1001", "worker-b", now=2, until=62)


async def test_a_released_claim_can_be_taken_again_in_the_same_store(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.links.claim_order("1001", "worker-a", at(0), at(60))
        await tx.links.release_order("1001", "worker-a")
    assert await claim(store, "1001", "worker-b", now=1, until=61)


async def test_the_holder_may_renew_its_own_claim_and_so_lengthen_it(
    open_store: OpenStore,
) -> None:
    # "True when nobody else holds a claim": the holder itself is not somebody else.
    first, second = await open_store(), await open_store()
    assert await claim(first, "1001", "worker-a", now=0, until=60)
    assert await claim(first, "1001", "worker-a", now=50, until=110)
    assert not await claim(second, "1001", "worker-b", now=70, until=130)
    assert await claim(second, "1001", "worker-b", now=110, until=170)
