"""Links: stored exactly, found every way, refused when taken, and their status history."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta, timezone
from decimal import Decimal

import pytest

from bot.errors import StoreRejected
from bot.models import ChatRef, LineItem, Money, Status, Subscription
from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, CAROL, T0, a_link, at


async def test_a_link_comes_back_equal_by_id_token_and_share_code(store: Store) -> None:
    link = a_link()
    async with store.transaction() as tx:
        await tx.links.insert(link)
    async with store.transaction() as tx:
        by_id = await tx.links.get("lnk_1")
        by_token = await tx.links.by_token("plt_lnk_1")
        by_code = await tx.links.by_share_code("share_lnk_1")
    assert by_id == by_token == by_code == link


async def test_every_field_of_a_link_round_trips(store: Store) -> None:
    paid = replace(
        a_link("lnk_paid", status=Status.PAID, next_poll_at=at(90)),
        status_changed_at=at(30),
        confirmed_at=at(31),
        reference="ref-1",
        line_items=(),
        business_name="Ama's Kitchen — Osu ✓",
    )
    async with store.transaction() as tx:
        await tx.links.insert(paid)
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_paid") == paid


async def test_unknown_ids_tokens_codes_and_orders_find_nothing(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        found = (
            await tx.links.get("lnk_2"),
            await tx.links.by_token("plt_lnk_2"),
            await tx.links.by_share_code("share_lnk_2"),
            await tx.links.by_share_code(""),
            await tx.links.by_token("PLT_LNK_1"),  # tokens and codes are case-sensitive
            await tx.links.by_share_code("SHARE_LNK_1"),
            await tx.links.latest_for_order("1002"),
        )
    assert found == (None,) * 7


async def test_money_keeps_its_exact_digits(store: Store) -> None:
    big = replace(
        a_link("lnk_2"),
        total=Money(Decimal("1234567.80"), "GHS"),
        line_items=(LineItem("Catering", 3, Decimal("411522.60"), Decimal("1234567.80")),),
    )
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        await tx.links.insert(big)
    async with store.transaction() as tx:
        link = await tx.links.get("lnk_1")
        big_back = await tx.links.get("lnk_2")
    assert link is not None and big_back is not None
    assert str(link.total.amount) == "75.00"  # not 75, not 75.0
    assert [str(item.unit_price) for item in link.line_items] == ["25.00", "25.00"]
    assert [str(item.total) for item in link.line_items] == ["50.00", "25.00"]
    assert link.line_items == a_link().line_items
    assert str(big_back.total.amount) == "1234567.80"
    assert big_back.line_items == big.line_items


async def test_times_come_back_as_aware_utc_to_the_microsecond(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = T0.astimezone(plus_two).replace(microsecond=123456)
    async with store.transaction() as tx:
        await tx.links.insert(a_link(created=local))
    async with store.transaction() as tx:
        link = await tx.links.get("lnk_1")
    assert link is not None
    assert link.created_at == local
    assert link.created_at.utcoffset() == timedelta(0)
    assert (link.created_at.hour, link.created_at.microsecond) == (12, 123456)
    assert link.expires_at.utcoffset() == timedelta(0)


async def test_a_naive_time_is_refused_as_a_bug_and_nothing_is_stored(store: Store) -> None:
    # Never guessed as local or UTC: the caller broke "times are aware UTC".
    with pytest.raises(ValueError):
        async with store.transaction() as tx:
            await tx.links.insert(a_link(created=T0.replace(tzinfo=None)))
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_1") is None


@pytest.mark.parametrize("taken", ["id", "token", "share_code"])
async def test_a_taken_id_token_or_share_code_is_rejected(store: Store, taken: str) -> None:
    first = a_link("lnk_1")
    clash = replace(a_link("lnk_2"), **{taken: getattr(first, taken)})
    async with store.transaction() as tx:
        await tx.links.insert(first)
    with pytest.raises(StoreRejected):
        async with store.transaction() as tx:
            await tx.links.insert(clash)
    async with store.transaction() as tx:  # the first is untouched, the store still works
        assert await tx.links.get("lnk_1") == first
        assert await tx.links.by_token("plt_lnk_2") is None


async def test_an_empty_share_code_is_stored_as_a_fresh_code_of_its_own(store: Store) -> None:
    # "" would otherwise be one code shared by every such link.
    async with store.transaction() as tx:
        await tx.links.insert(replace(a_link("lnk_1"), share_code=""))
        await tx.links.insert(replace(a_link("lnk_2"), share_code=""))
        first, second = await tx.links.get("lnk_1"), await tx.links.get("lnk_2")
    assert first is not None and second is not None
    assert len(first.share_code) >= 16 and len(second.share_code) >= 16
    assert first.share_code != second.share_code
    async with store.transaction() as tx:
        assert await tx.links.by_share_code(first.share_code) == first
        assert await tx.links.by_share_code("") is None


async def test_latest_for_order_is_the_newest_and_ties_go_to_the_later_insert(
    store: Store,
) -> None:
    later = T0 + timedelta(hours=1)
    async with store.transaction() as tx:
        await tx.links.insert(a_link("b", created=later))
        # Same creation time, inserted after "b" though its id sorts first; expired
        # ("whatever its state").
        await tx.links.insert(a_link("a", created=later, status=Status.EXPIRED))
        await tx.links.insert(a_link("old", created=T0))  # inserted last, created first
        await tx.links.insert(a_link("other", order_id="1002", created=later))
    async with store.transaction() as tx:
        latest = await tx.links.latest_for_order("1001")
    assert latest is not None and latest.id == "a"


async def test_subscribed_by_lists_a_chats_links_newest_first(store: Store) -> None:
    async with store.transaction() as tx:
        for hours, link_id in enumerate(["old", "mid", "new"]):
            await tx.links.insert(a_link(link_id, created=T0 + timedelta(hours=hours)))
            await tx.subscriptions.add(Subscription(link_id, ALICE))
        await tx.subscriptions.add(Subscription("mid", BOB))
    async with store.transaction() as tx:
        alice = await tx.links.subscribed_by(ALICE)
        bob = await tx.links.subscribed_by(BOB)
        carol = await tx.links.subscribed_by(CAROL)
        alice_elsewhere = await tx.links.subscribed_by(ChatRef("whatsapp", ALICE.chat_id))
    assert [link.id for link in alice] == ["new", "mid", "old"]
    assert alice[0] == a_link("new", created=T0 + timedelta(hours=2))
    assert [link.id for link in bob] == ["mid"]
    assert carol == alice_elsewhere == []  # a chat is its channel and its id


async def test_move_status_changes_it_only_from_the_old_status_and_records_it(
    store: Store,
) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
    async with store.transaction() as tx:
        won = await tx.links.move_status("lnk_1", Status.PENDING, Status.PROCESSING, at(60), "r9")
        lost = await tx.links.move_status("lnk_1", Status.PENDING, Status.FAILED, at(61), None)
        wrong_old = await tx.links.move_status(
            "lnk_1", Status.AWAITING_AUTHORIZATION, Status.PAID, at(62), None
        )
        unknown = await tx.links.move_status("lnk_9", Status.PENDING, Status.PAID, at(63), None)
    async with store.transaction() as tx:
        link = await tx.links.get("lnk_1")
        history = await tx.links.history("lnk_1")
    assert (won, lost, wrong_old, unknown) == (True, False, False, False)
    assert link is not None
    assert (link.status, link.status_changed_at, link.reference) == (
        Status.PROCESSING,
        at(60),
        "r9",
    )
    assert history == [(Status.PROCESSING, at(60))]  # the losers recorded nothing


async def test_history_is_every_change_oldest_first(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        assert await tx.links.history("lnk_1") == []
        await tx.links.move_status("lnk_1", Status.PENDING, Status.PROCESSING, at(1), None)
    async with store.transaction() as tx:
        await tx.links.move_status("lnk_1", Status.PROCESSING, Status.FAILED, at(2), None)
        await tx.links.move_status("lnk_1", Status.FAILED, Status.PROCESSING, at(3), None)
    async with store.transaction() as tx:
        history = await tx.links.history("lnk_1")
    assert history == [
        (Status.PROCESSING, at(1)),
        (Status.FAILED, at(2)),
        (Status.PROCESSING, at(3)),
    ]


async def test_a_change_to_a_locked_link_waits_for_the_lock_to_end(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link("l1"))
    events: list[str] = []
    held, release = asyncio.Event(), asyncio.Event()

    async def decide() -> None:
        async with store.transaction() as tx:
            link = await tx.links.locked("l1")
            assert link is not None and link.status is Status.PENDING
            held.set()
            await release.wait()
            events.append("decided")

    async def change() -> None:
        await held.wait()
        async with store.transaction() as tx:
            assert await tx.links.move_status("l1", Status.PENDING, Status.EXPIRED, T0, None)
        events.append("changed")

    tasks = [asyncio.create_task(decide()), asyncio.create_task(change())]
    try:
        await held.wait()
        await asyncio.sleep(0.3)  # the change, were it not held, would be done by now
        assert events == []
    finally:
        release.set()
        await asyncio.gather(*tasks)
    assert events == ["decided", "changed"]
    async with store.transaction() as tx:
        changed = await tx.links.locked("l1")
    assert changed is not None and changed.status is Status.EXPIRED
