"""The poll schedule: which links are asked about next, handed to one claimer each."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.models import Link, Status
from bot.ports import Store
from tests.storage.contract.support import LEASE, T0, a_link, at


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


async def track(store: Store, due: dict[str, tuple[Status, datetime]]) -> None:
    """Insert a link for each id, with its status, to be polled next at its time."""
    async with store.transaction() as tx:
        for link_id, (status, when) in due.items():
            await tx.links.insert(a_link(link_id, status=status))
            await tx.polls.schedule(link_id, when)


async def claim(
    store: Store, now: datetime, limit: int = 10, until: datetime | None = None, **options: bool
) -> list[Link]:
    async with store.transaction() as tx:
        return await tx.polls.claim_due(now, limit, until or now + LEASE, **options)


def ids(links: list[Link]) -> list[str]:
    return [link.id for link in links]


async def test_claim_due_takes_due_links_soonest_first_within_the_limit(store: Store) -> None:
    pending = Status.PENDING
    await track(
        store,
        {
            "in_3": (pending, minutes(3)),
            "in_1": (pending, minutes(1)),
            "in_5": (pending, minutes(5)),  # due exactly at `now`: due
            "in_2": (pending, minutes(2)),
            "in_60": (pending, minutes(60)),  # not due yet
        },
    )
    async with store.transaction() as tx:
        await tx.links.insert(a_link("untracked"))
    first = await claim(store, minutes(5), limit=2)
    rest = await claim(store, minutes(5))
    assert ids(first) == ["in_1", "in_2"]
    assert ids(rest) == ["in_3", "in_5"]  # the first two are claimed, so not due again yet
    # Returned as before the claim: with the next poll they were claimed for.
    assert [link.next_poll_at for link in first] == [minutes(1), minutes(2)]


async def test_moving_payments_are_claimed_before_all_others_with_moving_first(
    store: Store,
) -> None:
    await track(
        store,
        {
            "idle_1": (Status.PENDING, minutes(1)),
            "awaiting": (Status.AWAITING_AUTHORIZATION, minutes(3)),
            "processing": (Status.PROCESSING, minutes(2)),
            "idle_4": (Status.FAILED, minutes(4)),
        },
    )
    moving = await claim(store, minutes(10), limit=2, moving_first=True)
    others = await claim(store, minutes(10), limit=10, moving_first=True)
    assert ids(moving) == ["processing", "awaiting"]
    assert ids(others) == ["idle_1", "idle_4"]


async def test_without_moving_first_it_is_soonest_first_whatever_the_status(
    store: Store,
) -> None:
    await track(
        store,
        {
            "idle_1": (Status.PENDING, minutes(1)),
            "awaiting": (Status.AWAITING_AUTHORIZATION, minutes(3)),
            "processing": (Status.PROCESSING, minutes(2)),
            "idle_4": (Status.FAILED, minutes(4)),
        },
    )
    first = await claim(store, minutes(10), limit=2, moving_first=False)
    assert ids(first) == ["idle_1", "processing"]


async def test_a_claim_moves_the_next_poll_to_until_where_a_dead_claimers_lease_ends(
    store: Store,
) -> None:
    await track(store, {f"lnk_{n}": (Status.PENDING, T0) for n in range(3)})
    until = minutes(5)
    claimed = await claim(store, T0, until=until)
    again = await claim(store, T0)
    still_held = await claim(store, minutes(4))
    async with store.transaction() as tx:
        next_due = await tx.polls.next_due_at()
        moved = await tx.links.get("lnk_0")
    # The claimer never rescheduled them (it died): they are due again at `until`.
    reclaimed = await claim(store, until)
    assert sorted(ids(claimed)) == ["lnk_0", "lnk_1", "lnk_2"]
    assert (again, still_held) == ([], [])
    assert next_due == until
    assert moved is not None and moved.next_poll_at == until
    assert sorted(ids(reclaimed)) == ["lnk_0", "lnk_1", "lnk_2"]


async def test_schedule_sets_the_next_poll_and_none_stops_tracking(store: Store) -> None:
    await track(store, {"lnk_1": (Status.PENDING, minutes(2))})
    async with store.transaction() as tx:
        await tx.polls.schedule("lnk_1", minutes(7))
        rescheduled = await tx.links.get("lnk_1")
    async with store.transaction() as tx:
        await tx.polls.schedule("lnk_1", None)
    async with store.transaction() as tx:
        stopped = await tx.links.get("lnk_1")
        tracked = await tx.polls.tracked_count()
        next_due = await tx.polls.next_due_at()
        due = await tx.polls.claim_due(minutes(60 * 24), 10, minutes(60 * 25))
    assert rescheduled is not None and rescheduled.next_poll_at == minutes(7)
    assert stopped is not None and stopped.next_poll_at is None
    assert (tracked, next_due, due) == (0, None, [])


async def test_next_due_at_is_the_earliest_next_poll_and_tracked_count_counts_them(
    store: Store,
) -> None:
    async with store.transaction() as tx:
        empty = (await tx.polls.next_due_at(), await tx.polls.tracked_count())
        await tx.links.insert(a_link("untracked"))
    await track(
        store,
        {"later": (Status.PENDING, minutes(3)), "sooner": (Status.PROCESSING, minutes(1))},
    )
    async with store.transaction() as tx:
        next_due = await tx.polls.next_due_at()
        tracked = await tx.polls.tracked_count()
    assert empty == (None, 0)
    assert (next_due, tracked) == (minutes(1), 2)


async def test_a_link_inserted_with_a_next_poll_is_tracked(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link(next_poll_at=at(30)))
    async with store.transaction() as tx:
        assert await tx.polls.tracked_count() == 1
        assert await tx.polls.next_due_at() == at(30)
        assert ids(await tx.polls.claim_due(at(30), 10, at(90))) == ["lnk_1"]
