"""Follow-ups of links (bot/follow_ups.py): each made once, claimed by one worker under a
lease, done once, on every store."""

from __future__ import annotations

import asyncio

import pytest

from bot.models import FollowUp, FollowUpKind
from bot.ports import Store
from tests.storage.contract.support import OpenStore, a_link, at

REMINDER, WARNING = FollowUpKind.REMINDER, FollowUpKind.EXPIRY_WARNING


async def with_links(store: Store, *link_ids: str) -> None:
    async with store.transaction() as tx:
        for n, link_id in enumerate(link_ids):
            await tx.links.insert(a_link(link_id, order_id=f"10{n}"))


async def schedule(store: Store, link_id: str, kind: FollowUpKind, mark: str, due: float) -> bool:
    async with store.transaction() as tx:
        return await tx.follow_ups.schedule(link_id, kind, mark, at(due))


async def claim(store: Store, now: float, holder: str = "a", limit: int = 10) -> list[FollowUp]:
    async with store.transaction() as tx:
        return await tx.follow_ups.claim_due(at(now), limit, holder, at(now + 60))


async def finish(store: Store, follow_up: FollowUp, holder: str = "a", now: float = 0) -> bool:
    async with store.transaction() as tx:
        return await tx.follow_ups.finish(follow_up.id, holder, at(now))


async def test_each_follow_up_is_made_once_per_link_kind_and_mark(store: Store) -> None:
    await with_links(store, "l1", "l2")
    assert await schedule(store, "l1", REMINDER, "86400", 10)
    assert not await schedule(store, "l1", REMINDER, "86400", 99)  # again: kept as it was
    assert await schedule(store, "l1", REMINDER, "259200", 20)
    assert await schedule(store, "l1", WARNING, "86400", 30)
    assert await schedule(store, "l2", REMINDER, "86400", 40)
    async with store.transaction() as tx:
        pending = await tx.follow_ups.pending_for("l1")
        assert await tx.follow_ups.next_due_at() == at(10)
    assert [(f.kind, f.mark, f.due_at) for f in pending] == [
        (REMINDER, "86400", at(10)),
        (REMINDER, "259200", at(20)),
        (WARNING, "86400", at(30)),
    ]


async def test_schedule_all_adds_each_new_one_at_once_and_keeps_those_there(store: Store) -> None:
    await with_links(store, "l1")
    assert await schedule(store, "l1", REMINDER, "3600", 5)
    async with store.transaction() as tx:
        nothing = await tx.follow_ups.schedule_all("l1", [])
        added = await tx.follow_ups.schedule_all(
            "l1",
            [(REMINDER, "3600", at(99)), (REMINDER, "86400", at(20)), (WARNING, "before", at(30))],
        )
        pending = await tx.follow_ups.pending_for("l1")
    assert (nothing, added) == (0, 2)
    assert [(f.kind, f.mark, f.due_at) for f in pending] == [
        (REMINDER, "3600", at(5)),  # already there: kept as it was
        (REMINDER, "86400", at(20)),
        (WARNING, "before", at(30)),
    ]


async def test_schedule_all_refuses_a_naive_time(store: Store) -> None:
    await with_links(store, "l1")
    naive = at(10).replace(tzinfo=None)
    with pytest.raises(ValueError, match="naive"):
        async with store.transaction() as tx:
            due = [(REMINDER, "60", at(5)), (REMINDER, "1", naive)]
            await tx.follow_ups.schedule_all("l1", due)
    async with store.transaction() as tx:
        assert await tx.follow_ups.pending_for("l1") == []


async def test_bring_forward_makes_a_kind_due_sooner_never_later(store: Store) -> None:
    await with_links(store, "l1", "l2")
    await schedule(store, "l1", WARNING, "again 1", 50)
    await schedule(store, "l1", WARNING, "early", 5)
    await schedule(store, "l1", REMINDER, "86400", 40)
    await schedule(store, "l2", WARNING, "again 1", 50)
    (done,) = [f for f in await claim(store, 5) if f.mark == "early"]
    assert await finish(store, done, now=5)
    async with store.transaction() as tx:
        assert await tx.follow_ups.bring_forward("l1", WARNING, at(20)) == 1
        assert await tx.follow_ups.bring_forward("l1", WARNING, at(30)) == 0  # not later
        mine = await tx.follow_ups.pending_for("l1")
        theirs = await tx.follow_ups.pending_for("l2")
    assert [(f.kind, f.mark, f.due_at) for f in mine] == [
        (WARNING, "again 1", at(20)),
        (REMINDER, "86400", at(40)),  # another kind keeps its time
    ]
    assert [f.due_at for f in theirs] == [at(50)]  # another link's too
    assert [f.mark for f in await claim(store, 20)] == ["again 1"]


async def test_claim_takes_due_ones_soonest_first_within_the_limit(store: Store) -> None:
    await with_links(store, "l1")
    for mark, due in (("c", 30), ("a", 10), ("b", 20), ("later", 500)):
        await schedule(store, "l1", REMINDER, mark, due)
    assert [f.mark for f in await claim(store, 100, limit=2)] == ["a", "b"]
    assert [f.mark for f in await claim(store, 100)] == ["c"]  # a and b are held
    assert await claim(store, 100) == []


async def test_done_is_said_once_and_only_by_the_holder(store: Store) -> None:
    await with_links(store, "l1")
    await schedule(store, "l1", REMINDER, "m", 0)
    [taken] = await claim(store, 1, "a")
    assert not await finish(store, taken, "b")  # not b's
    assert await finish(store, taken, "a")
    assert not await finish(store, taken, "a")  # done already
    assert await claim(store, 1000) == []
    async with store.transaction() as tx:
        assert await tx.follow_ups.pending_for("l1") == []
        assert await tx.follow_ups.next_due_at() is None


async def test_a_dead_holders_claim_passes_on_when_its_lease_ends(store: Store) -> None:
    await with_links(store, "l1")
    await schedule(store, "l1", REMINDER, "m", 0)
    [taken] = await claim(store, 1, "a")  # held until 61
    assert await claim(store, 30, "b") == []
    [again] = await claim(store, 61, "b")
    assert again.id == taken.id
    assert not await finish(store, taken, "a")  # a woke up late: b has it now
    assert await finish(store, again, "b")


async def test_claimers_in_many_processes_take_each_follow_up_once(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(3)]
    await with_links(stores[0], "l1")
    for n in range(12):
        await schedule(stores[0], "l1", REMINDER, str(n), n)
    taken = await asyncio.gather(
        *(claim(s, 100, f"p{n}{k}", limit=3) for n, s in enumerate(stores) for k in range(3))
    )
    ids = [f.id for batch in taken for f in batch]
    assert len(ids) == 12
    assert len(set(ids)) == 12


async def test_forget_done_takes_only_those_done_before_the_time(store: Store) -> None:
    await with_links(store, "l1")
    for mark in ("old", "older", "recent", "waiting"):
        await schedule(store, "l1", REMINDER, mark, 0)
    taken = {f.mark: f for f in await claim(store, 1)}
    for mark, done in (("old", 10), ("older", 5), ("recent", 5000)):
        assert await finish(store, taken[mark], now=done)
    async with store.transaction() as tx:
        first = await tx.follow_ups.forget_done(at(600), limit=1)
        second = await tx.follow_ups.forget_done(at(600), limit=10)
        left = await tx.follow_ups.pending_for("l1")
    assert (first, second) == (1, 1)
    assert [f.mark for f in left] == ["waiting"]  # "recent" is done but kept; "waiting" is not done
    assert not await schedule(store, "l1", REMINDER, "recent", 0)  # still known: not made again
