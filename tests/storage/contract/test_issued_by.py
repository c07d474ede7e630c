"""Who issued a link (merchants' roles): kept exactly, and a chat's links filtered by it."""

from __future__ import annotations

from dataclasses import replace

from bot.models import Status, Subscription
from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, a_link, at


async def test_the_issuer_round_trips_and_none_stays_none(store: Store) -> None:
    mine = replace(a_link("lnk_1"), issued_by="telegram:7001")
    legacy = a_link("lnk_2", order_id="1002")
    async with store.transaction() as tx:
        await tx.links.insert(mine)
        await tx.links.insert(legacy)
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_1") == mine
        assert (await tx.links.get("lnk_2")) == legacy
        assert legacy.issued_by is None


async def test_a_chats_links_filtered_by_issuer(store: Store) -> None:
    links = [
        replace(a_link("lnk_1", order_id="1001", created=at(1)), issued_by="telegram:100"),
        replace(a_link("lnk_2", order_id="1002", created=at(2)), issued_by="telegram:200"),
        a_link("lnk_3", order_id="1003", created=at(3)),  # from before roles: no issuer
        replace(a_link("lnk_4", order_id="1004", created=at(4)), issued_by="telegram:100"),
    ]
    async with store.transaction() as tx:
        for link in links:
            await tx.links.insert(link)
            await tx.subscriptions.add(Subscription(link.id, ALICE))
        await tx.subscriptions.add(Subscription("lnk_1", BOB))
    async with store.transaction() as tx:
        every = await tx.links.subscribed_by(ALICE)
        own = await tx.links.subscribed_by(ALICE, "telegram:100")
        nobody = await tx.links.subscribed_by(ALICE, "telegram:999")
        bobs = await tx.links.subscribed_by(BOB, "telegram:100")

    assert [link.id for link in every] == ["lnk_4", "lnk_3", "lnk_2", "lnk_1"]
    assert [link.id for link in own] == ["lnk_4", "lnk_1"]
    assert nobody == []
    assert [link.id for link in bobs] == ["lnk_1"]


async def test_a_link_can_be_cancelled_and_its_history_says_so(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
    async with store.transaction() as tx:
        moved = await tx.links.move_status("lnk_1", Status.PENDING, Status.CANCELLED, at(5), None)
    async with store.transaction() as tx:
        link = await tx.links.get("lnk_1")
        history = await tx.links.history("lnk_1")

    assert moved
    assert link is not None and link.status is Status.CANCELLED
    assert history == [(Status.CANCELLED, at(5))]
