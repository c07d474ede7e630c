"""The merchant's day: counts and sums, when links were paid, digests once, export files."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from bot.models import (
    ChatRef,
    DayCounts,
    ExportFile,
    MessageKind,
    Money,
    Outgoing,
    Role,
    Status,
    Subscription,
)
from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, CAROL, T0, a_link, at

HOUR = 3600.0
DAY = date(2026, 11, 30)


async def test_a_day_counts_issued_paid_open_and_expired(store: Store) -> None:
    yesterday = a_link("lnk_old", order_id="900", created=at(-20 * HOUR))  # expires at +4 h
    issued = a_link("lnk_1", order_id="1001", created=at(60))
    paid_by_poll = a_link("lnk_2", order_id="1002", created=at(120))
    paid_by_webhook = replace(
        a_link("lnk_3", order_id="1003", created=at(180)), total=Money(Decimal("10.5"), "NGN")
    )
    async with store.transaction() as tx:
        for link in (yesterday, issued, paid_by_poll, paid_by_webhook):
            await tx.links.insert(link)
        await tx.links.move_status("lnk_2", Status.PENDING, Status.PAID, at(600), "r2")
        await tx.links.confirm("lnk_3", at(700), "r3")
    async with store.transaction() as tx:
        counts = await tx.reports.day(T0, at(5 * HOUR))
    assert counts == DayCounts(
        issued=3,
        paid=2,
        paid_sums=(Money(Decimal("75.00"), "GHS"), Money(Decimal("10.5"), "NGN")),
        open=1,  # lnk_1; yesterday's expired at +4 h
        expired=1,
    )


async def test_paid_at_is_when_the_link_became_paid_whichever_way(store: Store) -> None:
    async with store.transaction() as tx:
        for n in (1, 2, 3):
            await tx.links.insert(a_link(f"lnk_{n}", order_id=f"100{n}"))
        await tx.links.move_status("lnk_1", Status.PENDING, Status.PAID, at(10), None)
        await tx.links.confirm("lnk_1", at(50), None)  # later: the payment was at 10
        await tx.links.move_status("lnk_2", Status.PENDING, Status.PROCESSING, at(5), None)
        await tx.links.confirm("lnk_2", at(20), None)  # confirmed straight from processing
        await tx.links.insert(
            replace(a_link("lnk_4", order_id="1004"), status=Status.PAID, status_changed_at=at(3))
        )
    async with store.transaction() as tx:
        found = await tx.reports.issued_between(T0, at(60))
    paid_at = {link.id: when for link, when in found}
    assert paid_at == {"lnk_1": at(10), "lnk_2": at(20), "lnk_3": None, "lnk_4": at(3)}


async def test_payments_of_an_earlier_day_count_on_the_day_they_came(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link("lnk_1", created=at(-2 * HOUR)))
        await tx.links.move_status("lnk_1", Status.PENDING, Status.PAID, at(60), None)
    async with store.transaction() as tx:
        today = await tx.reports.day(T0, at(HOUR))
        before = await tx.reports.day(at(-3 * HOUR), T0)
    assert (today.issued, today.paid) == (0, 1)
    assert (before.issued, before.paid) == (1, 0)


async def test_issued_between_is_half_open_and_oldest_first(store: Store) -> None:
    async with store.transaction() as tx:
        for n, second in enumerate((0, 30, 60), start=1):
            await tx.links.insert(a_link(f"lnk_{n}", order_id=f"100{n}", created=at(second)))
    async with store.transaction() as tx:
        found = await tx.reports.issued_between(T0, at(60))
    assert [link.id for link, _ in found] == ["lnk_1", "lnk_2"]


async def test_merchant_chats_are_those_of_links_issued_in_the_window(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link("lnk_1", order_id="1001", created=at(10)))
        await tx.links.insert(a_link("lnk_2", order_id="1002", created=at(-HOUR)))
        await tx.subscriptions.add(Subscription("lnk_1", ALICE))
        await tx.subscriptions.add(Subscription("lnk_1", CAROL, Role.CUSTOMER))
        await tx.subscriptions.add(Subscription("lnk_2", BOB))
    async with store.transaction() as tx:
        assert await tx.reports.merchant_chats(T0, at(60)) == [ALICE]
        assert await tx.reports.merchant_chats(at(-2 * HOUR), at(60)) == [ALICE, BOB]


async def test_a_digest_is_marked_once_a_chat_a_day(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.digests.mark_sent(ALICE, DAY, T0)
        again = await tx.digests.mark_sent(ALICE, DAY, at(1))
        other_chat = await tx.digests.mark_sent(BOB, DAY, T0)
        next_day = await tx.digests.mark_sent(ALICE, DAY + timedelta(days=1), at(2))
    assert (first, again, other_chat, next_day) == (True, False, True, True)


async def test_a_mark_rolled_back_with_its_message_is_no_mark(store: Store) -> None:
    class Crash(Exception):
        pass

    try:
        async with store.transaction() as tx:
            assert await tx.digests.mark_sent(ALICE, DAY, T0)
            await tx.outbox.enqueue([Outgoing(ALICE, MessageKind.TEXT, "digest")], T0)
            raise Crash
    except Crash:
        pass
    async with store.transaction() as tx:
        assert await tx.digests.mark_sent(ALICE, DAY, T0)


async def test_two_stores_marking_together_mark_once(open_store) -> None:  # type: ignore[no-untyped-def]
    stores = [await open_store() for _ in range(2)]

    async def mark(store: Store) -> bool:
        async with store.transaction() as tx:
            return await tx.digests.mark_sent(ALICE, DAY, T0)

    results = await asyncio.gather(*(mark(s) for s in stores for _ in range(3)))
    assert sorted(results) == [False] * 5 + [True]


def an_export(export_id: str = "exp_0123456789abcdef", hours: float = 24) -> ExportFile:
    return ExportFile(
        id=export_id,
        filename="paybot-2026-11-30.csv",
        content="\ufefforder_id\r\nGH₵ Côte\r\n".encode(),
        created_at=T0,
        expires_at=at(hours * HOUR),
    )


async def test_an_export_is_served_until_it_expires_then_forgotten(store: Store) -> None:
    export = an_export()
    async with store.transaction() as tx:
        await tx.exports.add(export)
        await tx.exports.add(an_export("exp_later_0123456789", hours=48))
    async with store.transaction() as tx:
        assert await tx.exports.get(export.id, at(HOUR)) == export
        assert await tx.exports.get(export.id, at(24 * HOUR)) is None
        assert await tx.exports.get("exp_unknown_0123456789", at(0)) is None
        assert await tx.exports.forget_expired(at(30 * HOUR), 10) == 1
        assert await tx.exports.get("exp_later_0123456789", at(30 * HOUR)) is not None


async def test_a_message_keeps_its_attachment(store: Store) -> None:
    message = Outgoing(ChatRef("telegram", "100"), MessageKind.TEXT, "Your export", attachment="x")
    async with store.transaction() as tx:
        await tx.outbox.enqueue([message], T0)
    async with store.transaction() as tx:
        claimed = await tx.outbox.claim_due(at(1), 10, "me", at(60))
    assert [m.message for m in claimed] == [message]
