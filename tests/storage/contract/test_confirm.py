"""Confirming a payment: said once, final, and the end of polling."""

from __future__ import annotations

from bot.models import Status
from bot.ports import Store
from tests.storage.contract.support import LEASE, T0, a_link, at


async def test_confirm_is_true_once_and_keeps_the_first_confirmation(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link(next_poll_at=T0))
        await tx.links.move_status("lnk_1", Status.PENDING, Status.PAID, T0, "ref-1")
    async with store.transaction() as tx:
        first = await tx.links.confirm("lnk_1", at(120), None)
    async with store.transaction() as tx:
        second = await tx.links.confirm("lnk_1", at(121), "ref-2")
        unknown = await tx.links.confirm("lnk_404", at(121), None)
    async with store.transaction() as tx:
        link = await tx.links.get("lnk_1")
        history = await tx.links.history("lnk_1")
    assert (first, second, unknown) == (True, False, False)
    assert link is not None
    assert (link.status, link.confirmed_at, link.reference) == (Status.PAID, at(120), "ref-1")
    assert link.next_poll_at is None
    assert history == [(Status.PAID, T0), (None, at(120))]  # None: the confirmation


async def test_confirming_a_tracked_pending_link_makes_it_paid_and_stops_polling(
    store: Store,
) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        await tx.polls.schedule("lnk_1", T0)
    async with store.transaction() as tx:
        assert await tx.links.confirm("lnk_1", at(5), "ref-1")
    async with store.transaction() as tx:
        link = await tx.links.get("lnk_1")
        history = await tx.links.history("lnk_1")
        due = await tx.polls.claim_due(at(3600), 10, at(3600) + LEASE)
        tracked = await tx.polls.tracked_count()
        next_due = await tx.polls.next_due_at()
    assert link is not None
    assert (link.status, link.confirmed_at) == (Status.PAID, at(5))
    assert link.status_words == "Confirmed"
    assert (due, tracked, next_due) == ([], 0, None)
    # Whether moving to paid is also recorded is the store's choice; the
    # confirmation is recorded once, and last.
    assert history[-1] == (None, at(5))
    assert [entry for entry in history if entry[0] is None] == [(None, at(5))]


async def test_a_confirmed_link_no_longer_moves_from_paid(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        await tx.links.confirm("lnk_1", at(1), None)
    async with store.transaction() as tx:
        moved = await tx.links.move_status("lnk_1", Status.PENDING, Status.EXPIRED, at(2), None)
        link = await tx.links.get("lnk_1")
    assert moved is False
    assert link is not None and link.status is Status.PAID
