"""Inbox lanes while other processes are still recording into them."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

from bot.models import InboxItem
from bot.ports import Store, Tx
from tests.storage.contract.support import LEASE, T0, OpenStore, an_entry, committed

PROCESSES = 3


async def test_a_lane_stays_one_at_a_time_and_in_commit_order_while_recorded_into(
    open_store: OpenStore,
) -> None:
    # Entries of one lane come from several processes at once (one chat's messages
    # reach two web workers). Two properties are checked from outside: a lane never
    # has two entries claimed at once, and an entry whose transaction committed
    # before another's began is handled first (a transaction's `began` is taken
    # before it begins, its `ended` after its commit returned). A recording
    # transaction reads between its writes and workers read before they finish, so
    # that transactions interleave; workers claim meanwhile, so claims race with
    # entries not yet committed.
    stores = [await open_store() for _ in range(PROCESSES)]
    clock = itertools.count()
    spans: dict[str, tuple[int, int]] = {}
    handled: dict[str, list[str]] = defaultdict(list)
    busy_lanes: set[str] = set()
    overlaps: list[str] = []
    recorded = asyncio.Event()

    async def record(name: str, store: Store) -> None:
        began = next(clock)

        async def work(tx: Tx) -> None:
            await tx.inbox.record([an_entry(f"{name}-a", "shared")], T0)
            await tx.inbox.unfinished_count()
            await tx.inbox.record([an_entry(f"{name}-b", "shared")], T0)

        await committed(store, work)
        spans[name] = (began, next(clock))

    async def finish(store: Store, items: list[InboxItem]) -> None:
        async def work(tx: Tx) -> None:
            await tx.inbox.unfinished_count()  # holds the claim a little longer
            for item in items:
                busy_lanes.discard(item.entry.lane)  # before the commit that frees it
                await tx.inbox.finish(item.seq, T0)

        await committed(store, work)

    async def worker(store: Store, name: str) -> None:
        while True:

            async def work(tx: Tx) -> list[InboxItem]:
                return await tx.inbox.claim(T0, 10, name, T0 + LEASE)

            # Read before claiming: a claim that began after the last commit and
            # found nothing means nothing is left that another worker does not hold.
            all_committed = recorded.is_set()
            items = await committed(store, work)
            if not items and all_committed:
                return
            for item in items:
                if item.entry.lane in busy_lanes:  # after the claim that took it
                    overlaps.append(item.entry.source_id)
                busy_lanes.add(item.entry.lane)
                handled[item.entry.lane].append(item.entry.source_id)
            await finish(store, items)
            await asyncio.sleep(0)  # lets the recorders run; no time passes

    async def record_in_waves() -> None:
        for wave in range(3):
            await asyncio.gather(*(record(f"w{wave}t{n}", stores[n % PROCESSES]) for n in range(6)))
        recorded.set()

    await asyncio.gather(
        record_in_waves(), *(worker(stores[n % PROCESSES], f"worker-{n}") for n in range(3))
    )
    lane = handled["shared"]
    assert overlaps == []
    assert sorted(lane) == sorted(f"{name}-{part}" for name in spans for part in "ab")
    assert all(lane.index(f"{name}-a") < lane.index(f"{name}-b") for name in spans)
    assert [
        (a, b)
        for a in spans
        for b in spans
        if spans[a][1] < spans[b][0] and lane.index(f"{a}-b") > lane.index(f"{b}-a")
    ] == []


async def test_an_entry_committed_around_an_open_one_never_makes_two_heads(
    open_store: OpenStore,
) -> None:
    # Process 1 records x1 and has not committed; process 2 records x2 into the same
    # lane. A store may make process 2 wait for process 1 (a lane lock, SQLite's one
    # writer) or let it commit first; either way, once both have committed, the lane
    # must not have two entries claimed at once. Process 1 waits a bounded time for
    # process 2 to finish: if it does, a worker claims in between; if not, process 2
    # is waiting for process 1 and the in-between claim cannot happen. The wait only
    # decides which interleaving is checked, never whether the test passes.
    first, second, worker = await open_store(), await open_store(), await open_store()

    async def record_second() -> None:
        async with second.transaction() as tx:
            await tx.inbox.record([an_entry("x2", "shared")], T0)

    async def claim() -> list[str]:
        async with worker.transaction() as tx:
            items = await tx.inbox.claim(T0, 10, "worker", T0 + LEASE)
        return [item.entry.source_id for item in items]

    claimed_between: list[str] = []
    async with first.transaction() as tx:
        await tx.inbox.record([an_entry("x1", "shared")], T0)
        late = asyncio.create_task(record_second())
        done, _ = await asyncio.wait({late}, timeout=0.5)
        if done:
            claimed_between = await claim()
    await late
    claimed_after = await claim()
    assert len(claimed_between + claimed_after) == 1, (claimed_between, claimed_after)
