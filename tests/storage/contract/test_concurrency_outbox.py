"""The outbox under racing processes: per-chat order is commit order, one sender per chat.

"Processes" are stores opened on the same database, all driven at once by
`asyncio.gather`; the database alone must keep them apart.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

from bot.models import ChatRef, QueuedMessage
from bot.ports import Store, Tx
from tests.storage.contract.support import (
    ALICE,
    BOB,
    LEASE,
    T0,
    OpenStore,
    committed,
    text_to,
)

PROCESSES = 3


async def send_claimed(
    store: Store, claimed: list[QueuedMessage], busy: set[ChatRef] | None = None
) -> None:
    async def work(tx: Tx) -> None:
        for queued in claimed:
            if busy is not None:
                # Before the commit that frees the chat: the store still holds it, so
                # no other sender can take the chat's next message before this line.
                busy.discard(queued.message.chat)
            await tx.outbox.mark_sent(queued.id, T0, None)

    await committed(store, work)


async def claim(store: Store, holder: str, limit: int) -> list[QueuedMessage]:
    async def work(tx: Tx) -> list[QueuedMessage]:
        return await tx.outbox.claim_due(T0, limit, holder, T0 + LEASE)

    return await committed(store, work)


async def test_each_chat_hears_its_messages_in_commit_order(open_store: OpenStore) -> None:
    # What "commit order" can be checked from outside. A transaction's `began` is
    # taken before it begins and its `ended` after its commit returned, so if
    # A.ended < B.began then A committed before B began, and A's messages must go
    # out before B's. Transactions that overlapped in time may commit either way,
    # but each is one step of the commit order: its messages to a chat go out
    # together (no other transaction's message between them) and in the order it
    # enqueued them. Three waves, each gathered at once, make overlapping
    # transactions (within a wave) and ordered ones (across waves); senders drain
    # the outbox meanwhile, so claims also race with enqueues.
    stores = [await open_store() for _ in range(PROCESSES)]
    clock = itertools.count()
    spans: dict[str, tuple[int, int]] = {}
    heard: dict[ChatRef, list[str]] = defaultdict(list)
    enqueued = asyncio.Event()

    async def enqueue(name: str, store: Store) -> None:
        began = next(clock)

        async def work(tx: Tx) -> None:
            # Separate calls, so other transactions can come between them.
            await tx.outbox.enqueue([text_to(ALICE, f"{name}.1")], T0)
            await tx.outbox.pending_count()
            await tx.outbox.enqueue([text_to(BOB, f"{name}.1")], T0)
            await tx.outbox.enqueue([text_to(ALICE, f"{name}.2")], T0)

        await committed(store, work)
        spans[name] = (began, next(clock))

    async def sender(store: Store, holder: str) -> None:
        while True:
            # Read before claiming: a claim that began after the last commit and
            # found nothing means nothing is left that the other sender does not hold.
            all_committed = enqueued.is_set()
            claimed = await claim(store, holder, 10)
            if not claimed and all_committed:
                return
            for queued in claimed:
                heard[queued.message.chat].append(queued.message.text)
            await send_claimed(store, claimed)
            await asyncio.sleep(0)  # lets the enqueuers run; no time passes

    async def enqueue_in_waves() -> None:
        for wave in range(3):
            await asyncio.gather(
                *(enqueue(f"w{wave}t{n}", stores[n % PROCESSES]) for n in range(6))
            )
        enqueued.set()

    await asyncio.gather(enqueue_in_waves(), sender(stores[0], "s0"), sender(stores[1], "s1"))
    names = sorted(spans)
    alice = heard[ALICE]
    assert sorted(alice) == sorted(f"{name}.{i}" for name in names for i in (1, 2))
    assert sorted(heard[BOB]) == sorted(f"{name}.1" for name in names)
    # ALICE hears each transaction's pair together and in order.
    pairs = [(alice[i], alice[i + 1]) for i in range(0, len(alice), 2)]
    assert all(first.endswith(".1") and second == first[:-1] + "2" for first, second in pairs)
    for order in ([first[:-2] for first, _ in pairs], [text[:-2] for text in heard[BOB]]):
        position = {name: index for index, name in enumerate(order)}
        assert [
            (a, b)
            for a in names
            for b in names
            if spans[a][1] < spans[b][0] and position[a] > position[b]
        ] == []


async def test_concurrent_senders_never_hold_two_messages_of_one_chat(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(PROCESSES)]
    chats = [ChatRef("telegram", str(n)) for n in range(10)]
    async with stores[0].transaction() as tx:
        for i in range(6):
            await tx.outbox.enqueue([text_to(chat, f"{chat.chat_id}/{i}") for chat in chats], T0)
    heard: dict[str, list[str]] = defaultdict(list)
    claimed_ids: list[int] = []
    busy: set[ChatRef] = set()
    overlaps: list[str] = []

    async def sender(store: Store, holder: str) -> None:
        # A sender stops when a claim finds nothing: what is left is then held by
        # another sender, which goes on until it too finds nothing.
        while claimed := await claim(store, holder, 3):
            for queued in claimed:
                # After the claim committed: the chat is held from here at least.
                if queued.message.chat in busy:
                    overlaps.append(queued.message.text)
                busy.add(queued.message.chat)
                claimed_ids.append(queued.id)
                heard[queued.message.chat.chat_id].append(queued.message.text)
            await send_claimed(store, claimed, busy)

    await asyncio.gather(*(sender(stores[n % PROCESSES], f"s{n}") for n in range(6)))
    async with stores[2].transaction() as tx:
        pending = await tx.outbox.pending_count()
    assert overlaps == []  # never two messages of one chat in flight at once
    assert len(claimed_ids) == len(set(claimed_ids)) == 60  # never one message twice
    assert heard == {chat.chat_id: [f"{chat.chat_id}/{i}" for i in range(6)] for chat in chats}
    assert pending == 0


async def test_a_message_committed_around_an_open_one_keeps_commit_order(
    open_store: OpenStore,
) -> None:
    # Process 1 enqueues m1 to ALICE and has not committed; process 2 enqueues m2 to
    # ALICE. A store may make process 2 wait (the chat's row lock, SQLite's one
    # writer) or let it commit first. Process 1 waits a bounded time for process 2:
    # if process 2 finished, it committed first, so m2 must go out first and a
    # sender may claim it in between; if not, it is waiting for process 1 (or slow),
    # and only the one-at-a-time rule is checked. The wait decides which
    # interleaving is checked, never whether the test passes.
    first, second, sender = await open_store(), await open_store(), await open_store()

    async def enqueue_second() -> None:
        async with second.transaction() as tx:
            await tx.outbox.enqueue([text_to(ALICE, "m2")], T0)

    in_flight: list[QueuedMessage] = []
    async with first.transaction() as tx:
        await tx.outbox.enqueue([text_to(ALICE, "m1")], T0)
        late = asyncio.create_task(enqueue_second())
        done, _ = await asyncio.wait({late}, timeout=0.5)
        if done:
            in_flight += await claim(sender, "sender", 10)
    await late
    in_flight += await claim(sender, "sender", 10)
    heard = [queued.message.text for queued in in_flight]
    await send_claimed(sender, in_flight)
    while claimed := await claim(sender, "sender", 10):
        heard += [queued.message.text for queued in claimed]
        await send_claimed(sender, claimed)
    assert len(in_flight) == 1  # never two of one chat at once
    assert sorted(heard) == ["m1", "m2"]
    if done:
        assert heard == ["m2", "m1"]  # m2 committed before m1 did
