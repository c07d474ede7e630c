"""The outbox: each chat's messages one at a time, in order, held by one sender."""

from __future__ import annotations

from datetime import datetime

from bot.models import Button, ChatRef, MessageKind, Outgoing, QueuedMessage
from bot.ports import Store
from tests.storage.contract.support import (
    ALICE,
    BOB,
    CAROL,
    LEASE,
    T0,
    OpenStore,
    a_link,
    at,
    text_to,
)


async def enqueue(store: Store, *messages: Outgoing, when: datetime = T0) -> list[int]:
    async with store.transaction() as tx:
        return await tx.outbox.enqueue(messages, when)


async def claim(
    store: Store,
    now: datetime = T0,
    limit: int = 10,
    until: datetime | None = None,
    kinds: frozenset[MessageKind] | None = None,
) -> list[QueuedMessage]:
    async with store.transaction() as tx:
        return await tx.outbox.claim_due(now, limit, "sender", until or now + LEASE, kinds)


async def next_due(store: Store) -> datetime | None:
    async with store.transaction() as tx:
        return await tx.outbox.next_due_at()


def texts(claimed: list[QueuedMessage]) -> list[str]:
    return [queued.message.text for queued in claimed]


async def test_enqueue_returns_an_id_for_each_message(store: Store) -> None:
    ids = await enqueue(store, text_to(ALICE, "a1"), text_to(ALICE, "a2"), text_to(BOB, "b1"))
    async with store.transaction() as tx:
        pending = await tx.outbox.pending_count()
    assert len(set(ids)) == 3
    assert pending == 3


async def test_enqueue_returns_each_messages_own_id_in_the_order_given(store: Store) -> None:
    messages = [text_to(chat, f"{chat.chat_id}/{n}") for n in range(2) for chat in (BOB, ALICE)]
    messages.append(text_to(CAROL, "carol"))
    ids = await enqueue(store, *messages)
    empty = await enqueue(store)
    sent: dict[int, Outgoing] = {}
    while claimed := await claim(store):
        async with store.transaction() as tx:
            for queued in claimed:
                sent[queued.id] = queued.message
                await tx.outbox.mark_sent(queued.id, T0)
    assert empty == []
    assert [sent[message_id] for message_id in ids] == messages


async def test_a_message_round_trips_with_its_buttons(store: Store) -> None:
    invoice = Outgoing(
        chat=ALICE,
        kind=MessageKind.INVOICE,
        text="Order 1001",
        link_id="lnk_1",
        buttons=(Button("Pay", url="https://pay.test/p"), Button("Refresh", action="r:lnk_1")),
    )
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        [invoice_id] = await tx.outbox.enqueue([invoice], T0)
    [queued] = await claim(store)
    assert (queued.id, queued.message, queued.created_at, queued.attempts) == (
        invoice_id,
        invoice,
        T0,
        0,
    )


async def test_claim_takes_only_the_head_of_each_chat_oldest_first(store: Store) -> None:
    await enqueue(store, text_to(BOB, "b1"), text_to(BOB, "b2"), text_to(ALICE, "a1"))
    await enqueue(store, text_to(CAROL, "c1"), text_to(ALICE, "a2"))
    first = await claim(store, limit=2)
    rest = await claim(store)
    assert texts(first) == ["b1", "a1"]
    assert texts(rest) == ["c1"]  # b2 and a2 wait behind their claimed heads


async def test_the_same_chat_id_on_another_channel_is_another_chat(store: Store) -> None:
    elsewhere = ChatRef("whatsapp", ALICE.chat_id)
    await enqueue(store, text_to(ALICE, "telegram"), text_to(elsewhere, "whatsapp"))
    async with store.transaction() as tx:
        await tx.outbox.pause_chat(ChatRef("console", ALICE.chat_id), at(60))
    assert texts(await claim(store)) == ["telegram", "whatsapp"]


async def test_a_message_is_not_due_before_its_time(store: Store) -> None:
    await enqueue(store, text_to(ALICE, "later"), when=at(60))
    early = await claim(store, now=at(59))
    wake = await next_due(store)
    on_time = await claim(store, now=at(60))
    assert early == []
    assert wake == at(60)
    assert texts(on_time) == ["later"]


async def test_a_claimed_head_blocks_its_chat_until_it_is_sent(store: Store) -> None:
    first_id, _ = await enqueue(store, text_to(ALICE, "a1"), text_to(ALICE, "a2"))
    await claim(store)
    blocked = await claim(store, now=at(1))
    async with store.transaction() as tx:
        await tx.outbox.mark_sent(first_id, at(2))
    after = await claim(store, now=at(2))
    assert blocked == []
    assert texts(after) == ["a2"]


async def test_a_dead_senders_claim_ends_with_its_lease(open_store: OpenStore) -> None:
    dead, alive = await open_store(), await open_store()
    [message_id] = await enqueue(dead, text_to(ALICE, "a1"))
    until = at(300)
    await claim(dead, until=until)
    held = await claim(alive, now=at(299))
    wake = await next_due(alive)
    taken_over = await claim(alive, now=wake or until)
    assert held == []
    assert wake == until
    assert [queued.id for queued in taken_over] == [message_id]


async def test_retry_makes_the_head_due_again_later_and_counts_the_attempt(store: Store) -> None:
    a1, _, b1 = await enqueue(store, text_to(ALICE, "a1"), text_to(ALICE, "a2"), text_to(BOB, "b1"))
    await claim(store)
    async with store.transaction() as tx:
        await tx.outbox.retry(a1, at(30), "timeout")
        await tx.outbox.mark_sent(b1, T0)
    too_soon = await claim(store, now=at(29))  # a2 must not overtake the retried a1
    wake = await next_due(store)
    retried = await claim(store, now=at(30))
    async with store.transaction() as tx:
        await tx.outbox.mark_sent(a1, at(30))
    after = await claim(store, now=at(30))
    assert too_soon == []
    assert wake == at(30)
    assert [(queued.id, queued.attempts) for queued in retried] == [(a1, 1)]
    assert [(queued.message.text, queued.attempts) for queued in after] == [("a2", 0)]


async def test_a_dropped_message_is_given_up_and_its_chat_moves_on(store: Store) -> None:
    a1, _ = await enqueue(store, text_to(ALICE, "a1"), text_to(ALICE, "a2"))
    await claim(store)
    async with store.transaction() as tx:
        await tx.outbox.drop(a1, at(1), "Forbidden: bot was blocked by the user")
        pending = await tx.outbox.pending_count()
    after = await claim(store, now=at(1))
    assert pending == 1
    assert texts(after) == ["a2"]


async def test_claim_by_kinds_takes_only_heads_of_those_kinds(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        await tx.outbox.enqueue(
            [
                Outgoing(ALICE, MessageKind.CAPTION, "alice edit", "lnk_1"),
                text_to(ALICE, "alice text"),  # behind alice's edit
                text_to(BOB, "bob text"),
            ],
            T0,
        )
    edits = await claim(store, kinds=frozenset({MessageKind.CAPTION}))
    chat_texts = await claim(store, kinds=frozenset({MessageKind.TEXT}))
    assert texts(edits) == ["alice edit"]
    assert texts(chat_texts) == ["bob text"]  # never alice's text, out of its turn


async def test_a_paused_chat_gets_nothing_until_its_pause_ends(store: Store) -> None:
    _, b1 = await enqueue(store, text_to(ALICE, "a1"), text_to(BOB, "b1"))
    async with store.transaction() as tx:
        await tx.outbox.pause_chat(ALICE, at(30))
    others = await claim(store)
    async with store.transaction() as tx:
        await tx.outbox.mark_sent(b1, T0)
    wake = await next_due(store)
    still_paused = await claim(store, now=at(29))
    resumed = await claim(store, now=at(30))
    assert texts(others) == ["b1"]
    assert wake == at(30)
    assert still_paused == []
    assert texts(resumed) == ["a1"]


async def test_a_pause_is_never_shortened(open_store: OpenStore) -> None:
    one, another = await open_store(), await open_store()
    await enqueue(one, text_to(ALICE, "a1"))
    async with one.transaction() as tx:
        await tx.outbox.pause_chat(ALICE, at(60))
    async with another.transaction() as tx:
        await tx.outbox.pause_chat(ALICE, at(10))  # a shorter pace must not cut it
    shortened = await claim(one, now=at(30))
    wake = await next_due(one)
    async with another.transaction() as tx:
        await tx.outbox.pause_chat(ALICE, at(90))  # a longer one extends it
    extended = await next_due(one)
    assert shortened == []
    assert (wake, extended) == (at(60), at(90))


async def test_next_due_at_is_none_when_nothing_waits(store: Store) -> None:
    empty = await next_due(store)
    sent_id, dropped_id = await enqueue(store, text_to(ALICE, "a1"), text_to(BOB, "b1"))
    waiting = await next_due(store)
    await claim(store)
    async with store.transaction() as tx:
        await tx.outbox.mark_sent(sent_id, T0)
        await tx.outbox.drop(dropped_id, T0, "chat not found")
    done = await next_due(store)
    assert (empty, waiting, done) == (None, T0, None)


async def test_pending_count_counts_messages_neither_sent_nor_dropped(store: Store) -> None:
    ids = await enqueue(store, *(text_to(chat, "x") for chat in (ALICE, BOB, CAROL)))
    await enqueue(store, text_to(ALICE, "y"), text_to(BOB, "y"))
    await claim(store)  # claimed is still pending
    async with store.transaction() as tx:
        await tx.outbox.mark_sent(ids[0], T0)
        await tx.outbox.drop(ids[1], T0, "blocked")
        await tx.outbox.retry(ids[2], at(60), "timeout")
        pending = await tx.outbox.pending_count()
    assert pending == 3
