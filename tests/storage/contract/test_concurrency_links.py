"""Links under racing processes: one winner for each change, each poll handed out once.

"Processes" are stores opened on the same database, all driven at once by
`asyncio.gather`; the database alone must keep them apart.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from itertools import pairwise

from bot.models import Status
from bot.ports import Store, Tx
from tests.storage.contract.support import LEASE, T0, OpenStore, a_link, at, committed

PROCESSES = 3
CALLERS = 12


async def processes(open_store: OpenStore, count: int = PROCESSES) -> list[Store]:
    return [await open_store() for _ in range(count)]


async def test_of_many_racing_confirms_exactly_one_is_true(open_store: OpenStore) -> None:
    stores = await processes(open_store)
    async with stores[0].transaction() as tx:
        await tx.links.insert(a_link(next_poll_at=T0))

    async def confirm(n: int) -> bool:
        async def work(tx: Tx) -> bool:
            return await tx.links.confirm("lnk_1", at(n), f"ref-{n}")

        return await committed(stores[n % PROCESSES], work)

    results = await asyncio.gather(*(confirm(n) for n in range(CALLERS)))
    async with stores[0].transaction() as tx:
        link = await tx.links.get("lnk_1")
        history = await tx.links.history("lnk_1")
    assert results.count(True) == 1
    winner = results.index(True)
    assert link is not None
    assert (link.status, link.confirmed_at, link.next_poll_at) == (Status.PAID, at(winner), None)
    assert [entry for entry in history if entry[0] is None] == [(None, at(winner))]


async def test_of_many_racing_status_moves_exactly_one_wins(open_store: OpenStore) -> None:
    stores = await processes(open_store)
    async with stores[0].transaction() as tx:
        await tx.links.insert(a_link())
    targets = [Status.PROCESSING, Status.FAILED, Status.AWAITING_AUTHORIZATION]

    async def move(n: int) -> bool:
        async def work(tx: Tx) -> bool:
            new = targets[n % len(targets)]
            return await tx.links.move_status("lnk_1", Status.PENDING, new, at(n), None)

        return await committed(stores[n % PROCESSES], work)

    results = await asyncio.gather(*(move(n) for n in range(CALLERS)))
    async with stores[0].transaction() as tx:
        link = await tx.links.get("lnk_1")
        history = await tx.links.history("lnk_1")
    assert results.count(True) == 1
    winner = results.index(True)
    expected = targets[winner % len(targets)]
    assert link is not None and link.status is expected
    assert history == [(expected, at(winner))]  # only the winner recorded a change


async def test_of_many_racing_order_claims_exactly_one_holds(open_store: OpenStore) -> None:
    stores = await processes(open_store)

    async def claim(n: int) -> bool:
        async def work(tx: Tx) -> bool:
            return await tx.links.claim_order("1001", f"worker-{n}", T0, T0 + LEASE)

        return await committed(stores[n % PROCESSES], work)

    results = await asyncio.gather(*(claim(n) for n in range(CALLERS)))
    assert results.count(True) == 1


async def test_concurrent_poll_claimers_hand_out_every_due_link_exactly_once(
    open_store: OpenStore,
) -> None:
    stores = await processes(open_store)
    async with stores[0].transaction() as tx:
        for n in range(200):
            await tx.links.insert(a_link(f"lnk_{n:03}"))
            await tx.polls.schedule(f"lnk_{n:03}", T0)
    handed_out: list[str] = []

    async def claimer(store: Store) -> None:
        # A claimer stops when a claim finds nothing: every link not yet handed out
        # is then claimed by another, which goes on until it too finds nothing.
        while True:

            async def work(tx: Tx) -> list[str]:
                return [link.id for link in await tx.polls.claim_due(T0, 7, T0 + LEASE)]

            claimed = await committed(store, work)
            if not claimed:
                return
            handed_out.extend(claimed)

    await asyncio.gather(*(claimer(stores[n % PROCESSES]) for n in range(8)))
    async with stores[1].transaction() as tx:
        left = await tx.polls.claim_due(T0, 1000, T0 + LEASE)
        next_due = await tx.polls.next_due_at()
    assert len(handed_out) == 200  # none twice ...
    assert set(handed_out) == {f"lnk_{n:03}" for n in range(200)}  # ... and none missed
    assert left == []
    assert next_due == T0 + LEASE


async def test_poll_turns_reserved_by_racing_processes_never_overlap(
    open_store: OpenStore,
) -> None:
    stores, spacing = await processes(open_store), timedelta(milliseconds=200)

    async def reserve(n: int) -> tuple[datetime, int]:
        count = 1 + n % 3

        async def work(tx: Tx) -> datetime:
            return await tx.polls.reserve_turns(T0, count, spacing)

        return await committed(stores[n % PROCESSES], work), count

    reserved = sorted(await asyncio.gather(*(reserve(n) for n in range(CALLERS))))
    assert reserved[0][0] == T0  # none before `now`, and the first at once
    for (first, count), (following, _) in pairwise(reserved):
        assert following == first + count * spacing  # end to end: no overlap, no gap
    async with stores[0].transaction() as tx:  # later, the turns start from then
        later = T0 + timedelta(hours=1)
        assert await tx.polls.reserve_turns(later, 1, spacing) == later
