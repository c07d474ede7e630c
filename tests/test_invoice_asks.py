"""A merchant's asks a minute are counted by /invoice in the transaction that looks for
the order's link (bot/invoices.py's gate): no transaction of their own, never counted
twice while another /invoice for the order holds its claim, and a refusal asks
Cimplify nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from bot.cimplify import CimplifyClient
from bot.i18n import Words
from bot.invoices import AskGate, Invoices
from bot.limits import SharedLimit
from bot.models import ChatRef, MessageKind
from bot.ports import Tx
from bot.tracking import PollPolicy
from storage.sqlite import SqliteStore
from tests.counted_store import Counted
from tests.factories import CREATED_LINK, NOW, ORDER_SUMMARY

MERCHANT = ChatRef("telegram", "7001")
REFUSED = "past your asks"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def cimplify(asked: list[str]) -> httpx.MockTransport:
    """Cimplify's two answers to a new link: the link, then its order; every path asked."""
    expires = (NOW + timedelta(days=1)).isoformat()

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        body = CREATED_LINK if request.method == "POST" else ORDER_SUMMARY
        return httpx.Response(200, content=json.dumps({**body, "expires_at": expires}))

    return httpx.MockTransport(answer)


def limited_gate(limit: SharedLimit, calls: list[int] | None = None) -> AskGate:
    async def gate(tx: Tx) -> Words | None:
        if calls is not None:
            calls.append(1)
        return None if await limit.allow_within(tx, "telegram:7001") else lambda _: REFUSED

    return gate


def invoices(store: Counted, client: CimplifyClient, clock: Callable[[], datetime]) -> Invoices:
    return Invoices(store, client, clock, PollPolicy(), on_queued=lambda: None)  # type: ignore[arg-type]


async def queued(store: SqliteStore) -> list[tuple[MessageKind, str]]:
    async with store.transaction() as tx:
        due = await tx.outbox.claim_due(NOW + timedelta(days=9), 100, "test", NOW)
    return [(entry.message.kind, entry.message.text) for entry in due]


async def test_an_invoice_counts_its_ask_in_the_transaction_that_finds_no_link(
    store: SqliteStore,
) -> None:
    counted, asked, clock = Counted(store), [], Clock()
    limit = SharedLimit(store, "asks", 1, timedelta(minutes=1), clock)
    async with httpx.AsyncClient(transport=cimplify(asked)) as http:
        client = CimplifyClient("https://cimplify.test", "sk_test_asks", http=http)
        issued = await invoices(counted, client, clock).issue(
            "1001", MERCHANT, gate=limited_gate(limit)
        )
    assert issued
    assert counted.begun == 2  # the look (the ask counted, the order claimed), the link's
    assert len(asked) == 2
    assert [kind for kind, _ in await queued(store)] == [MessageKind.INVOICE]
    assert not await limit.allow("telegram:7001")  # the one ask a minute was spent


async def test_a_refused_ask_is_answered_in_one_transaction_and_asks_cimplify_nothing(
    store: SqliteStore,
) -> None:
    counted, asked, clock = Counted(store), [], Clock()
    limit = SharedLimit(store, "asks", 1, timedelta(minutes=1), clock)
    assert await limit.allow("telegram:7001")  # spent already
    async with httpx.AsyncClient(transport=cimplify(asked)) as http:
        client = CimplifyClient("https://cimplify.test", "sk_test_asks", http=http)
        bot = invoices(counted, client, clock)
        issued = await bot.issue("1001", MERCHANT, gate=limited_gate(limit))
        assert not issued
        assert (counted.begun, asked) == (1, [])
        assert await queued(store) == [(MessageKind.TEXT, REFUSED)]
        # Nothing was left claimed: the next /invoice within the limit asks at once.
        clock.now += timedelta(minutes=1)
        assert await bot.issue("1001", MERCHANT, gate=limited_gate(limit))
    assert len(asked) == 2


async def test_an_ask_waiting_for_another_invoice_of_the_order_is_counted_once(
    store: SqliteStore,
) -> None:
    counted, asked, clock = Counted(store), [], Clock()
    limit = SharedLimit(store, "asks", 5, timedelta(minutes=1), clock)
    async with store.transaction() as tx:  # another /invoice is asking Cimplify
        assert await tx.links.claim_order("1001", "other", NOW, NOW + timedelta(minutes=1))
    calls: list[int] = []
    looked = asyncio.Event()
    gate = limited_gate(limit, calls)

    async def first_look(tx: Tx) -> Words | None:
        looked.set()
        return await gate(tx)

    async def other_releases() -> None:
        await looked.wait()
        # SQLite's transactions go one at a time: this one follows the first look's.
        async with store.transaction() as tx:
            await tx.links.release_order("1001", "other")

    releasing = asyncio.create_task(other_releases())
    async with httpx.AsyncClient(transport=cimplify(asked)) as http:
        client = CimplifyClient("https://cimplify.test", "sk_test_asks", http=http)
        issued = await invoices(counted, client, clock).issue("1001", MERCHANT, gate=first_look)
    await releasing
    assert issued
    assert len(calls) == 1
    assert counted.begun >= 3  # a look that found the order claimed, the next, the link's
    for _ in range(4):  # five a minute, one spent
        assert await limit.allow("telegram:7001")
    assert not await limit.allow("telegram:7001")
