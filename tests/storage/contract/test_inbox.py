"""The inbox: inputs stored once, then handled lane by lane, in order, by one worker each."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.models import InboxEntry, InboxItem
from bot.ports import Store
from tests.storage.contract.support import LEASE, T0, OpenStore, an_entry, at


async def record(store: Store, *entries: InboxEntry, when: datetime = T0) -> list[bool]:
    async with store.transaction() as tx:
        return await tx.inbox.record(entries, when)


async def claim(
    store: Store, now: datetime = T0, limit: int = 10, until: datetime | None = None
) -> list[InboxItem]:
    async with store.transaction() as tx:
        return await tx.inbox.claim(now, limit, "worker", until or now + LEASE)


async def next_due(store: Store) -> datetime | None:
    async with store.transaction() as tx:
        return await tx.inbox.next_due_at()


def ids(items: list[InboxItem]) -> list[str]:
    return [item.entry.source_id for item in items]


async def test_record_says_which_entries_are_new_and_keeps_the_first_copy(store: Store) -> None:
    first = await record(store, an_entry("u1"), an_entry("u2"))
    changed_u2 = replace(an_entry("u2"), body="a redelivery that differs")
    again = await record(store, changed_u2, an_entry("u3"), an_entry("u3"), when=at(5))
    elsewhere = await record(store, an_entry("u1", source="twilio"))  # same id, other source
    items = await claim(store, now=at(5))
    assert first == [True, True]
    assert again == [False, True, False]  # given twice in one batch: new the first time only
    assert elsewhere == [True]
    assert ids(items) == ["u1"]  # one lane: its head only
    async with store.transaction() as tx:
        assert await tx.inbox.unfinished_count() == 4


async def test_claim_takes_the_head_of_each_lane_oldest_first(store: Store) -> None:
    await record(store, an_entry("x1", "x"), an_entry("y1", "y"), an_entry("x2", "x"))
    await record(store, an_entry("z1", "z"), when=at(1))
    first = await claim(store, now=at(1), limit=2)
    rest = await claim(store, now=at(1))
    assert ids(first) == ["x1", "y1"]
    assert ids(rest) == ["z1"]  # x2 waits behind its claimed head
    assert first[0].entry == an_entry("x1", "x")
    assert [(item.received_at, item.attempts) for item in first + rest] == [
        (T0, 1),
        (T0, 1),
        (at(1), 1),
    ]


async def test_a_claimed_head_blocks_its_lane_until_finished(store: Store) -> None:
    await record(store, an_entry("x1"), an_entry("x2"))
    [head] = await claim(store)
    blocked = await claim(store, now=at(1))
    async with store.transaction() as tx:
        await tx.inbox.finish(head.seq, at(2))
    after = await claim(store, now=at(2))
    assert blocked == []
    assert ids(after) == ["x2"]


async def test_a_dead_workers_claim_ends_with_its_lease_and_counts_an_attempt(
    open_store: OpenStore,
) -> None:
    dead, alive = await open_store(), await open_store()
    await record(dead, an_entry("x1"), an_entry("x2"))
    until = at(300)
    await claim(dead, until=until)
    held = await claim(alive, now=at(299))
    wake = await next_due(alive)
    taken_over = await claim(alive, now=wake or until)
    assert held == []
    assert wake == until
    assert [(item.entry.source_id, item.attempts) for item in taken_over] == [("x1", 2)]


async def test_retry_makes_the_head_due_again_later(store: Store) -> None:
    await record(store, an_entry("x1"), an_entry("x2"))
    [head] = await claim(store)
    async with store.transaction() as tx:
        await tx.inbox.retry(head.seq, at(30), "Cimplify is down")
    too_soon = await claim(store, now=at(29))  # x2 must not overtake the retried x1
    wake = await next_due(store)
    retried = await claim(store, now=at(30))
    assert too_soon == []
    assert wake == at(30)
    assert [(item.seq, item.attempts) for item in retried] == [(head.seq, 2)]


async def test_set_aside_lets_the_lane_move_on_and_keeps_the_entry(store: Store) -> None:
    await record(store, an_entry("x1"), an_entry("x2"))
    [head] = await claim(store)
    async with store.transaction() as tx:
        await tx.inbox.set_aside(head.seq, at(1), "kept failing")
        unfinished = await tx.inbox.unfinished_count()
    after = await claim(store, now=at(1))
    again = await record(store, an_entry("x1"), when=at(2))
    assert unfinished == 1
    assert ids(after) == ["x2"]
    assert again == [False]  # still stored: a redelivery is not handled again


async def test_next_due_at_and_unfinished_count_follow_the_entries(store: Store) -> None:
    async with store.transaction() as tx:
        empty = (await tx.inbox.next_due_at(), await tx.inbox.unfinished_count())
    await record(store, an_entry("x1", "x"), an_entry("y1", "y"), when=at(10))
    async with store.transaction() as tx:
        waiting = (await tx.inbox.next_due_at(), await tx.inbox.unfinished_count())
    for item in await claim(store, now=at(10)):
        async with store.transaction() as tx:
            await tx.inbox.finish(item.seq, at(11))
    async with store.transaction() as tx:
        done = (await tx.inbox.next_due_at(), await tx.inbox.unfinished_count())
    assert empty == (None, 0)
    assert waiting == (at(10), 2)
    assert done == (None, 0)


async def test_forget_finished_deletes_only_entries_finished_before_the_time(
    store: Store,
) -> None:
    entries = [an_entry(name, lane=name) for name in ("old", "recent", "open", "aside")]
    await record(store, *entries)
    items = {item.entry.source_id: item for item in await claim(store)}
    async with store.transaction() as tx:
        await tx.inbox.finish(items["old"].seq, at(60))
        await tx.inbox.finish(items["recent"].seq, at(3600))
        await tx.inbox.set_aside(items["aside"].seq, at(60), "kept failing")
    async with store.transaction() as tx:
        forgotten = await tx.inbox.forget_finished(at(600))
    again = await record(store, *entries, when=at(7200))
    assert forgotten == 1
    # Forgotten, so a later input with that id is a new one; the rest are still kept.
    assert again == [True, False, False, False]
