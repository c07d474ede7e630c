"""The outbox against a real store (SQLite and PostgreSQL in turn) and a fake channel
that records what it got."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from bot.errors import PermanentDelivery, RetryLater, TransientDelivery
from bot.models import ChatRef, MessageKind, Outgoing, Role, Subscription, utcnow
from bot.outbox import Delivery, Outbox
from bot.ports import Store
from storage import store_for
from tests.factories import make_link
from tests.harness import wait_until
from tests.store_rows import rows

ANA = ChatRef("fake", "ana")
BEN = ChatRef("fake", "ben")
CAL = ChatRef("fake", "cal")


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    """The store `database` names, open: claims and chat pauses are kept in it."""
    opened = store_for(database)
    await opened.open()
    yield opened
    await opened.close()


class FakeMessenger:
    """A channel that records each delivery and its time, failing as scripted."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, ChatRef, str]] = []
        self.failures: dict[str, list[Exception]] = {}  # text -> errors to raise first

    async def deliver(self, delivery: Delivery) -> str | None:
        text = delivery.message.text
        pending = self.failures.get(text)
        if pending:
            raise pending.pop(0)
        self.sent.append((time.monotonic(), delivery.message.chat, text))
        return str(len(self.sent))

    def texts(self, chat: ChatRef) -> list[str]:
        return [text for _, c, text in self.sent if c == chat]


async def queue(store: Store, *items: tuple[ChatRef, str]) -> None:
    async with store.transaction() as tx:
        await tx.outbox.enqueue(
            [Outgoing(chat, MessageKind.TEXT, text) for chat, text in items], utcnow()
        )


async def running(outbox: Outbox) -> asyncio.Task[None]:
    return asyncio.create_task(outbox.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def drained(store: Store, timeout: float = 5.0) -> None:
    async def pending() -> int:
        async with store.transaction() as tx:
            return await tx.outbox.pending_count()

    await wait_until(pending, lambda n: n == 0, timeout)


async def test_order_within_a_chat_and_pace_per_chat(store: Store) -> None:
    fake = FakeMessenger()
    await queue(store, (ANA, "a1"), (BEN, "b1"), (ANA, "a2"), (ANA, "a3"), (BEN, "b2"))
    task = await running(Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.2))
    await drained(store)
    await stop(task)

    assert fake.texts(ANA) == ["a1", "a2", "a3"]
    assert fake.texts(BEN) == ["b1", "b2"]
    times = [at for at, chat, _ in fake.sent if chat == ANA]
    assert all(later - earlier >= 0.18 for earlier, later in itertools.pairwise(times))


async def test_retry_after_is_honoured_and_order_kept(store: Store) -> None:
    fake = FakeMessenger()
    fake.failures["a1"] = [RetryLater(0.3)]
    await queue(store, (ANA, "a1"), (ANA, "a2"))
    started = time.monotonic()
    task = await running(Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.0))
    await drained(store)
    await stop(task)

    assert fake.texts(ANA) == ["a1", "a2"]
    assert fake.sent[0][0] - started >= 0.28


async def test_a_permanent_failure_drops_only_that_message(store: Store) -> None:
    fake = FakeMessenger()
    fake.failures["a1"] = [PermanentDelivery("Forbidden: bot was blocked by the user")]
    await queue(store, (ANA, "a1"), (BEN, "b1"), (ANA, "a2"))
    task = await running(Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.0))
    await drained(store)
    await stop(task)

    assert fake.texts(ANA) == ["a2"] and fake.texts(BEN) == ["b1"]


async def test_network_errors_are_retried_until_sent(store: Store) -> None:
    fake = FakeMessenger()
    fake.failures["a1"] = [TransientDelivery("timed out"), ConnectionResetError()]
    await queue(store, (ANA, "a1"))
    outbox = Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.0)
    task = await running(outbox)
    # Backoff starts at 2 s; a test need not wait for it: retried rows are due again
    # at their time, and the dispatcher wakes when it is due.
    await drained(store, timeout=15)
    await stop(task)
    assert fake.texts(ANA) == ["a1"]


async def test_queued_messages_survive_a_stop_and_go_out_after(store: Store) -> None:
    await queue(store, (ANA, "before the crash"))
    # No dispatcher ran: the message waits in the store for the next one.
    fake = FakeMessenger()
    task = await running(Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.0))
    await drained(store)
    await stop(task)
    assert fake.texts(ANA) == ["before the crash"]


async def test_a_message_for_an_unknown_channel_is_dropped_not_stuck(store: Store) -> None:
    await queue(store, (ChatRef("carrier-pigeon", "x"), "coo"), (ANA, "a1"))
    fake = FakeMessenger()
    task = await running(Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.0))
    await drained(store)
    await stop(task)
    assert fake.texts(ANA) == ["a1"]


async def test_new_messages_and_edits_are_paced_apart(store: Store) -> None:
    # Ten caption edits queued before ten new messages, at 10 a second each: the new
    # messages must not wait for the edits' budget, nor go faster than their own.
    rate, count = 10.0, 10
    async with store.transaction() as tx:
        for n in range(count):
            link = make_link(f"link-{n:016d}", order_id=f"O{n}")
            chat = ChatRef("fake", f"edited-{n}")
            await tx.links.insert(link)
            await tx.subscriptions.add(
                Subscription(link.id, chat, Role.MERCHANT, message_id=str(n))
            )
            await tx.outbox.enqueue(
                [Outgoing(chat, MessageKind.CAPTION, f"edit {n}", link.id)], utcnow()
            )
    await queue(store, *((ChatRef("fake", f"new-{n}"), f"new {n}") for n in range(count)))
    fake = FakeMessenger()
    started = time.monotonic()
    task = await running(Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0, overall_rate=rate))
    await drained(store)
    await stop(task)

    new = [at for at, _, text in fake.sent if text.startswith("new")]
    edits = [at for at, _, text in fake.sent if text.startswith("edit")]
    assert len(new) == len(edits) == count
    assert new[0] - started < 0.5  # not after the edits (a shared budget: 1 s)
    for times in (new, edits):  # each smooth at its own rate
        assert times[-1] - times[0] >= (count - 1) / rate * 0.9


async def queue_and_claim(store: Store, outbox: Outbox, chat: ChatRef, text: str) -> None:
    """Queue a message and claim it for `outbox` in one transaction, as an invoice is;
    hand it over once committed."""
    async with store.transaction() as tx:
        await tx.outbox.enqueue([Outgoing(chat, MessageKind.TEXT, text)], utcnow())
        after = await outbox.claim_within(tx, utcnow(), 1)
    after()


async def test_a_message_claimed_as_it_is_queued_is_the_senders_in_that_commit(
    store: Store, database: str
) -> None:
    # An invoice's photo is claimed for sending in the transaction that queues it: the
    # commit that stores it makes it the sender's, and no look of the sender's own (a
    # wake, a transaction) stands between the link stored and the photo sent.
    fake = FakeMessenger()
    outbox = Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.0, holder="sender-1")
    task = await running(outbox)
    try:
        async with store.transaction() as tx:
            await tx.outbox.enqueue([Outgoing(ANA, MessageKind.TEXT, "photo")], utcnow())
            after = await outbox.claim_within(tx, utcnow(), 1)
        claimed = await rows(database, "SELECT claimed_by FROM outbox WHERE text = 'photo'")
        assert [row[0] for row in claimed] == ["sender-1"]
        after()
        await drained(store)
        await queue_and_claim(store, outbox, BEN, "next")
        await drained(store)
    finally:
        await stop(task)
    assert fake.texts(ANA) == ["photo"] and fake.texts(BEN) == ["next"]


async def test_a_sender_that_is_not_running_or_not_the_sender_claims_nothing(
    store: Store, database: str
) -> None:
    fake = FakeMessenger()
    outbox = Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.0)
    await queue_and_claim(store, outbox, ANA, "before it runs")
    task = await running(outbox)
    try:
        await drained(store)  # its own look found it
        outbox.may_send = lambda: False  # another process holds the sender's role
        await queue_and_claim(store, outbox, BEN, "another's")
        unclaimed = await rows(database, "SELECT claimed_by FROM outbox WHERE text = 'another''s'")
        assert [row[0] for row in unclaimed] == [None]
    finally:
        await stop(task)
    assert fake.texts(ANA) == ["before it runs"] and fake.texts(BEN) == []


async def test_a_hand_over_claims_no_more_than_was_queued_and_the_loop_sends_the_rest(
    store: Store, database: str
) -> None:
    fake = FakeMessenger()
    outbox = Outbox(store, {"fake": fake}, utcnow, per_chat_gap=0.0, holder="sender-1")
    outbox.may_send = lambda: False  # not the sender yet: its loops leave the queue alone
    task = await running(outbox)
    try:
        await queue(store, (BEN, "b1"), (CAL, "c1"))  # older, and due
        outbox.may_send = lambda: True
        async with store.transaction() as tx:
            await tx.outbox.enqueue([Outgoing(ANA, MessageKind.TEXT, "photo")], utcnow())
            after = await outbox.claim_within(tx, utcnow(), 1)
        claimed = await rows(database, "SELECT text FROM outbox WHERE claimed_by = 'sender-1'")
        assert [row[0] for row in claimed] == ["b1"]  # as many as it queued, soonest first
        after()  # and the loops look for the rest, its own among them
        await drained(store)
    finally:
        await stop(task)
    assert sorted(text for _, _, text in fake.sent) == ["b1", "c1", "photo"]
