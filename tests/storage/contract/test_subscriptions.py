"""Which chats hear about a link, and the invoice message each may edit."""

from __future__ import annotations

import pytest

from bot.errors import StoreRejected
from bot.models import Role, Subscription
from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, CAROL, a_link


async def test_add_is_true_the_first_time_and_false_on_every_repeat(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        first = await tx.subscriptions.add(Subscription("lnk_1", ALICE))
        repeat = await tx.subscriptions.add(Subscription("lnk_1", ALICE))
    async with store.transaction() as tx:
        later_repeat = await tx.subscriptions.add(Subscription("lnk_1", ALICE, Role.CUSTOMER))
        subscribers = await tx.subscriptions.for_link("lnk_1")
    assert (first, repeat, later_repeat) == (True, False, False)
    assert subscribers == [Subscription("lnk_1", ALICE, Role.MERCHANT)]  # kept as first added


async def test_for_link_lists_subscribers_in_the_order_they_subscribed(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link("lnk_1"))
        await tx.links.insert(a_link("lnk_2"))
        await tx.subscriptions.add(Subscription("lnk_1", BOB, Role.CUSTOMER))
        await tx.subscriptions.add(Subscription("lnk_1", ALICE))
    async with store.transaction() as tx:
        await tx.subscriptions.add(Subscription("lnk_1", CAROL, Role.CUSTOMER))
        await tx.subscriptions.add(Subscription("lnk_2", ALICE))
    async with store.transaction() as tx:
        first = await tx.subscriptions.for_link("lnk_1")
        second = await tx.subscriptions.for_link("lnk_2")
        nobody = await tx.subscriptions.for_link("lnk_3")
    assert first == [
        Subscription("lnk_1", BOB, Role.CUSTOMER),
        Subscription("lnk_1", ALICE, Role.MERCHANT),
        Subscription("lnk_1", CAROL, Role.CUSTOMER),
    ]
    assert second == [Subscription("lnk_2", ALICE)]
    assert nobody == []


async def test_set_message_id_is_remembered_for_that_chat_and_link_only(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link("lnk_1"))
        await tx.links.insert(a_link("lnk_2"))
        for link_id in ("lnk_1", "lnk_2"):
            await tx.subscriptions.add(Subscription(link_id, ALICE))
            await tx.subscriptions.add(Subscription(link_id, BOB))
    async with store.transaction() as tx:
        await tx.subscriptions.set_message_id("lnk_1", ALICE, "42")
    async with store.transaction() as tx:
        await tx.subscriptions.set_message_id("lnk_1", ALICE, "43")  # a new invoice message
        first = await tx.subscriptions.for_link("lnk_1")
        second = await tx.subscriptions.for_link("lnk_2")
    assert first == [Subscription("lnk_1", ALICE, message_id="43"), Subscription("lnk_1", BOB)]
    assert second == [Subscription("lnk_2", ALICE), Subscription("lnk_2", BOB)]


async def test_subscribing_to_an_unknown_link_is_rejected(store: Store) -> None:
    with pytest.raises(StoreRejected):
        async with store.transaction() as tx:
            await tx.subscriptions.add(Subscription("lnk_404", ALICE))
