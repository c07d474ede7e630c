"""A chat with a new id (a group become a supergroup): what follows it, on every store."""

from __future__ import annotations

from bot.models import ChatRef, Role, Subscription
from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, T0, a_link, text_to

GROUP = ChatRef("telegram", "-4001")
SUPERGROUP = ChatRef("telegram", "-1004001")


async def test_unsent_for_is_the_chats_queue_in_order_without_what_went(store: Store) -> None:
    async with store.transaction() as tx:
        first, second, _ = await tx.outbox.enqueue(
            [text_to(GROUP, "one"), text_to(GROUP, "two"), text_to(ALICE, "other")], T0
        )
        third, fourth = await tx.outbox.enqueue(
            [text_to(GROUP, "three"), text_to(GROUP, "four")], T0
        )
        await tx.outbox.mark_sent(first, T0)
        await tx.outbox.drop(fourth, T0, "gone")
    async with store.transaction() as tx:
        waiting = await tx.outbox.unsent_for(GROUP)
    assert [q.id for q in waiting] == [second, third]
    assert [q.message.text for q in waiting] == ["two", "three"]


async def test_moving_a_chat_moves_its_subscriptions_and_keeps_invoice_ids(store: Store) -> None:
    one, two = a_link("lnk_1"), a_link("lnk_2", order_id="1002")
    async with store.transaction() as tx:
        await tx.links.insert(one)
        await tx.links.insert(two)
        await tx.subscriptions.add(Subscription(one.id, GROUP, Role.MERCHANT, "77"))
        await tx.subscriptions.add(Subscription(two.id, GROUP, Role.MERCHANT))
        await tx.subscriptions.add(Subscription(two.id, SUPERGROUP, Role.MERCHANT))
        await tx.subscriptions.add(Subscription(one.id, BOB, Role.CUSTOMER))
        moved = await tx.subscriptions.move_chat(GROUP, SUPERGROUP)
    async with store.transaction() as tx:
        first = await tx.subscriptions.for_link(one.id)
        second = await tx.subscriptions.for_link(two.id)
    assert moved == 1  # the second link already had the new chat: kept as it was
    assert {(s.chat, s.message_id) for s in first} == {(SUPERGROUP, "77"), (BOB, None)}
    assert [s.chat for s in second] == [SUPERGROUP]
