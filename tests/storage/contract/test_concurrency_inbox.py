"""The inbox under racing processes: a repeat stored once, each lane handled in order."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from bot.models import InboxItem
from bot.ports import Store, Tx
from tests.storage.contract.support import LEASE, T0, OpenStore, an_entry, committed

PROCESSES = 3


async def test_a_repeat_racing_from_several_stores_is_stored_once(open_store: OpenStore) -> None:
    stores = [await open_store() for _ in range(PROCESSES)]

    async def record(n: int) -> list[bool]:
        async def work(tx: Tx) -> list[bool]:
            return await tx.inbox.record([an_entry("evt_1", source="cimplify")], T0)

        return await committed(stores[n % PROCESSES], work)

    results = await asyncio.gather(*(record(n) for n in range(12)))
    async with stores[0].transaction() as tx:
        unfinished = await tx.inbox.unfinished_count()
    assert [result for [result] in results].count(True) == 1
    assert unfinished == 1


async def test_overlapping_batches_racing_say_new_once_for_each_entry(
    open_store: OpenStore,
) -> None:
    # Webhooks redelivered to several processes at once, in any order.
    stores = [await open_store() for _ in range(PROCESSES)]
    names = [f"evt_{n}" for n in range(10)]
    shuffle = random.Random(7).shuffle

    async def record(n: int) -> dict[str, bool]:
        batch = list(names)
        shuffle(batch)

        async def work(tx: Tx) -> list[bool]:
            return await tx.inbox.record([an_entry(name, lane=name) for name in batch], T0)

        return dict(zip(batch, await committed(stores[n % PROCESSES], work), strict=True))

    results = await asyncio.gather(*(record(n) for n in range(9)))
    async with stores[0].transaction() as tx:
        unfinished = await tx.inbox.unfinished_count()
    assert {name: [r[name] for r in results].count(True) for name in names} == dict.fromkeys(
        names, 1
    )
    assert unfinished == 10


async def test_concurrent_workers_handle_each_entry_once_and_each_lane_in_order(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(PROCESSES)]
    lanes = [f"lane-{n}" for n in range(8)]
    entries = [an_entry(f"{lane}/{i}", lane=lane) for i in range(6) for lane in lanes]
    async with stores[0].transaction() as tx:
        await tx.inbox.record(entries, T0)
    handled: dict[str, list[str]] = defaultdict(list)
    busy_lanes: set[str] = set()
    overlaps: list[str] = []

    async def handle(store: Store, items: list[InboxItem]) -> None:
        async with store.transaction() as tx:
            for item in items:
                # Before the commit that frees the lane: the store still holds it,
                # so another worker cannot take its next entry before this line.
                busy_lanes.discard(item.entry.lane)
                await tx.inbox.finish(item.seq, T0)

    async def worker(store: Store, name: str) -> None:
        while True:

            async def work(tx: Tx) -> list[InboxItem]:
                return await tx.inbox.claim(T0, 3, name, T0 + LEASE)

            items = await committed(store, work)
            if not items:
                return
            for item in items:
                # After the claim committed: the lane is held from here at least.
                if item.entry.lane in busy_lanes:
                    overlaps.append(item.entry.source_id)
                busy_lanes.add(item.entry.lane)
                handled[item.entry.lane].append(item.entry.source_id)
            await handle(store, items)

    await asyncio.gather(*(worker(stores[n % PROCESSES], f"worker-{n}") for n in range(6)))
    async with stores[0].transaction() as tx:
        unfinished = await tx.inbox.unfinished_count()
    assert overlaps == []  # never two entries of one lane at once
    assert handled == {lane: [f"{lane}/{i}" for i in range(6)] for lane in lanes}
    assert unfinished == 0
