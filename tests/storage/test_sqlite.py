"""SqliteStore against a real SQLite file in tmp_path."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.errors import ConfigError
from bot.models import (
    Button,
    ChatRef,
    LineItem,
    Link,
    MessageKind,
    Money,
    Outgoing,
    Role,
    Status,
    Subscription,
    WebhookEvent,
)
from bot.ports import Store
from storage.migrate import migrations
from storage.sqlite import SqliteStore

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ALICE = ChatRef("telegram", "100")
BOB = ChatRef("telegram", "200")
CAROL = ChatRef("console", "merchant")


def make_link(
    link_id: str = "lnk_1",
    *,
    order_id: str = "1001",
    created_at: datetime = T0,
    status: Status = Status.PENDING,
    next_poll_at: datetime | None = None,
) -> Link:
    return Link(
        id=link_id,
        order_id=order_id,
        token=f"plt_{link_id}",
        url=f"https://pay.cimplify.test/p/plt_{link_id}",
        expires_at=created_at + timedelta(hours=24),
        business_name="Ama's Kitchen",
        total=Money(Decimal("75.00"), "GHS"),
        line_items=(
            LineItem("Jollof", 2, Decimal("25.00"), Decimal("50.00")),
            LineItem("Kelewele", 1, Decimal("25.00"), Decimal("25.00")),
        ),
        status=status,
        created_at=created_at,
        status_changed_at=created_at,
        next_poll_at=next_poll_at,
        share_code=f"share_{link_id}",
    )


def text_to(chat: ChatRef, text: str) -> Outgoing:
    return Outgoing(chat=chat, kind=MessageKind.TEXT, text=text)


def make_event(
    event_id: str, amount: str | None = "75.00", reference: str = "ref-1"
) -> WebhookEvent:
    return WebhookEvent(
        id=event_id,
        type="payment.succeeded",
        created_at=T0,
        order_id="1001",
        token="plt_lnk_1",
        amount=None if amount is None else Money(Decimal(amount), "GHS"),
        reference=reference,
    )


# schema and lifecycle


async def test_open_creates_the_schema_in_wal_mode(store: SqliteStore, db_path: str) -> None:
    with sqlite3.connect(db_path) as raw:
        version = raw.execute("PRAGMA user_version").fetchone()[0]
        mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    assert version == len(migrations()) >= 1
    assert mode == "wal"
    assert {"links", "subscriptions", "status_history", "webhook_events", "outbox"} <= tables
    assert await store.ping()


async def test_reopening_keeps_data_and_migrates_nothing(db_path: str) -> None:
    first = SqliteStore(db_path)
    await first.open()
    async with first.transaction() as tx:
        await tx.links.insert(make_link())
    await first.close()
    assert not await first.ping()

    again = SqliteStore(db_path)
    await again.open()
    try:
        async with again.transaction() as tx:
            assert await tx.links.get("lnk_1") == make_link()
    finally:
        await again.close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(migrations())
    raw.close()


async def test_a_database_from_a_newer_paybot_is_refused(db_path: str) -> None:
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA user_version = 999")
    raw.close()
    with pytest.raises(ConfigError, match="newer"):
        await SqliteStore(db_path).open()


async def test_the_store_satisfies_the_protocol(store: SqliteStore) -> None:
    as_store: Store = store
    async with as_store.transaction() as tx:
        assert await tx.outbox.pending_count() == 0


# transactions


async def test_an_exception_rolls_back_everything(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction() as tx:
            await tx.links.insert(make_link())
            await tx.outbox.enqueue([text_to(ALICE, "hello")], T0)
            raise RuntimeError("boom")
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_1") is None
        assert await tx.outbox.pending_count() == 0


async def test_concurrent_transactions_run_one_at_a_time(store: SqliteStore) -> None:
    trace: list[tuple[str, int]] = []

    async def worker(n: int) -> None:
        async with store.transaction() as tx:
            trace.append(("in", n))
            queued = await tx.outbox.pending_count()
            await asyncio.sleep(0)  # give the other tasks every chance to interleave
            await tx.outbox.enqueue([text_to(ALICE, f"message {queued}")], T0)
            trace.append(("out", n))

    await asyncio.gather(*(worker(n) for n in range(20)))
    # Each task's "in" is directly followed by its own "out".
    assert all(trace[i][1] == trace[i + 1][1] for i in range(0, len(trace), 2))
    async with store.transaction() as tx:
        assert await tx.outbox.pending_count() == 20
        texts = {m.message.text for m in await tx.due_messages(T0, 100)}
    assert texts == {"message 0"}  # only the chat's head is due


async def test_a_taken_token_is_refused(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(make_link("lnk_1"))
    with pytest.raises(sqlite3.IntegrityError):
        async with store.transaction() as tx:
            await tx.links.insert(make_link("lnk_1"))


# values round-trip


async def test_times_come_back_as_aware_utc(store: SqliteStore) -> None:
    accra_plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 11, 30, 14, 0, 0, 123456, tzinfo=accra_plus_two)
    async with store.transaction() as tx:
        await tx.links.insert(make_link(created_at=local))
        link = await tx.links.get("lnk_1")
    assert link is not None
    assert link.created_at == local
    assert link.created_at.tzinfo == UTC
    assert link.created_at.hour == 12
    assert link.created_at.microsecond == 123456


async def test_naive_times_are_refused(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        async with store.transaction() as tx:
            await tx.links.insert(make_link(created_at=datetime(2026, 11, 30, 12, 0)))


async def test_decimals_keep_their_exact_digits(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(make_link())
        link = await tx.links.by_token("plt_lnk_1")
    assert link is not None
    assert str(link.total.amount) == "75.00"
    assert [str(item.unit_price) for item in link.line_items] == ["25.00", "25.00"]
    assert link.line_items == make_link().line_items


# status changes


async def test_move_status_lets_only_one_caller_win(store: SqliteStore) -> None:
    later = T0 + timedelta(minutes=1)
    async with store.transaction() as tx:
        await tx.links.insert(make_link())
        won = await tx.links.move_status("lnk_1", Status.PENDING, Status.PROCESSING, later, "ref-9")
        stale = await tx.links.move_status("lnk_1", Status.PENDING, Status.FAILED, later, None)
        link = await tx.links.get("lnk_1")
        history = await tx.links.history("lnk_1")
    assert (won, stale) == (True, False)
    assert link is not None
    assert (link.status, link.status_changed_at, link.reference) == (
        Status.PROCESSING,
        later,
        "ref-9",
    )
    assert history == [(Status.PROCESSING, later)]


async def test_confirm_happens_once_and_stops_polling(store: SqliteStore) -> None:
    at = T0 + timedelta(minutes=2)
    async with store.transaction() as tx:
        await tx.links.insert(make_link(next_poll_at=T0))
        await tx.links.move_status("lnk_1", Status.PENDING, Status.PAID, T0, "ref-1")
        first = await tx.links.confirm("lnk_1", at, None)
        second = await tx.links.confirm("lnk_1", at + timedelta(seconds=1), "ref-2")
        link = await tx.links.get("lnk_1")
        history = await tx.links.history("lnk_1")
    assert (first, second) == (True, False)
    assert link is not None
    assert (link.status, link.confirmed_at, link.reference) == (Status.PAID, at, "ref-1")
    assert link.next_poll_at is None
    assert history == [(Status.PAID, T0), (None, at)]


# tracking


async def test_due_links_soonest_first_within_the_limit(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        for n, minutes in enumerate([3, 1, 2, 60]):
            link = make_link(f"lnk_{n}", next_poll_at=T0 + timedelta(minutes=minutes))
            await tx.links.insert(link)
        await tx.links.insert(make_link("untracked"))
        due = await tx.due_links(T0 + timedelta(minutes=5), limit=2)
        every_due = await tx.due_links(T0 + timedelta(minutes=5), limit=10)
        earliest = await tx.polls.next_due_at()
        tracked = await tx.polls.tracked_count()
    assert [link.id for link in due] == ["lnk_1", "lnk_2"]
    assert [link.id for link in every_due] == ["lnk_1", "lnk_2", "lnk_0"]
    assert earliest == T0 + timedelta(minutes=1)
    assert tracked == 4


async def test_schedule_poll_none_stops_tracking(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(make_link())
        await tx.polls.schedule("lnk_1", T0)
        assert await tx.polls.tracked_count() == 1
        await tx.polls.schedule("lnk_1", None)
        assert await tx.due_links(T0 + timedelta(days=1), 10) == []
        assert await tx.polls.next_due_at() is None
        assert await tx.polls.tracked_count() == 0


# subscriptions


async def test_subscriptions_and_links_for_a_chat(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(make_link("old", created_at=T0))
        await tx.links.insert(make_link("new", created_at=T0 + timedelta(hours=1)))
        assert await tx.subscriptions.add(Subscription("old", ALICE))
        assert await tx.subscriptions.add(Subscription("new", ALICE))
        assert await tx.subscriptions.add(Subscription("new", BOB, Role.CUSTOMER))
        assert not await tx.subscriptions.add(Subscription("new", ALICE))
        await tx.subscriptions.set_message_id("new", ALICE, "42")
        subscribers = await tx.subscriptions.for_link("new")
        alice_links = await tx.links.subscribed_by(ALICE)
        latest = await tx.links.latest_for_order("1001")
    assert subscribers == [
        Subscription("new", ALICE, Role.MERCHANT, "42"),
        Subscription("new", BOB, Role.CUSTOMER, None),
    ]
    assert [link.id for link in alice_links] == ["new", "old"]
    assert latest is not None and latest.id == "new"


async def test_subscribing_to_an_unknown_link_raises(store: SqliteStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        async with store.transaction() as tx:
            await tx.subscriptions.add(Subscription("nope", ALICE))


# outbox


async def test_a_retried_head_blocks_only_its_own_chat(store: SqliteStore) -> None:
    retry_at = T0 + timedelta(seconds=30)
    async with store.transaction() as tx:
        first, second, other = await tx.outbox.enqueue(
            [text_to(ALICE, "one"), text_to(ALICE, "two"), text_to(BOB, "hi")], T0
        )
        await tx.outbox.retry(first, retry_at, "timeout")
        due_now = await tx.due_messages(T0, 10)
        await tx.outbox.mark_sent(other, T0)
        wake_at = await tx.outbox.next_due_at()
        due_later = await tx.due_messages(retry_at, 10)
        await tx.outbox.mark_sent(first, retry_at)
        due_after = await tx.due_messages(retry_at, 10)
    assert [m.id for m in due_now] == [other]
    assert wake_at == retry_at  # the blocked "two" (due at T0) must not wake the sender
    assert [(m.id, m.attempts) for m in due_later] == [(first, 1)]
    assert [m.id for m in due_after] == [second]


async def test_due_messages_skips_chats_and_keeps_the_limit(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        ids = await tx.outbox.enqueue([text_to(c, "x") for c in (ALICE, BOB, CAROL)], T0)
        skipped = await tx.due_messages(T0, 1, skip_chats=frozenset({ALICE}))
        two = await tx.due_messages(T0, 2, skip_chats=frozenset({ALICE}))
        oldest = await tx.due_messages(T0, 2)
        not_yet = await tx.due_messages(T0 - timedelta(seconds=1), 10)
    assert [m.id for m in skipped] == [ids[1]]
    assert [m.id for m in two] == [ids[1], ids[2]]
    assert [m.id for m in oldest] == [ids[0], ids[1]]
    assert not_yet == []


async def test_messages_round_trip_and_drop(store: SqliteStore) -> None:
    invoice = Outgoing(
        chat=ALICE,
        kind=MessageKind.INVOICE,
        text="Order 1001",
        link_id="lnk_1",
        buttons=(Button("Pay", url="https://pay.test/p"), Button("Refresh", action="r:lnk_1")),
    )
    async with store.transaction() as tx:
        await tx.links.insert(make_link())
        [invoice_id, after_id] = await tx.outbox.enqueue([invoice, text_to(ALICE, "after")], T0)
        [queued] = await tx.due_messages(T0, 10)
        await tx.outbox.drop(invoice_id, T0, "Forbidden: bot was blocked by the user")
        pending = await tx.outbox.pending_count()
        [next_up] = await tx.due_messages(T0, 10)
        await tx.outbox.mark_sent(after_id, T0)
        assert await tx.outbox.next_due_at() is None
    assert (queued.id, queued.message, queued.created_at) == (invoice_id, invoice, T0)
    assert pending == 1
    assert next_up.id == after_id


# webhook events


async def test_record_event_stores_each_id_once(store: SqliteStore) -> None:
    at = T0 + timedelta(seconds=5)
    async with store.transaction() as tx:
        assert await tx.record_event(make_event("evt_1"), b'{"id":"evt_1"}', at)
        assert not await tx.record_event(make_event("evt_1"), b'{"id":"evt_1"}', at)
        assert await tx.record_event(make_event("evt_0", amount=None), b"{}", at)
        unapplied = await tx.unapplied_events(10)
    assert [stored.event.id for stored in unapplied] == ["evt_1", "evt_0"]  # received order
    assert unapplied[0].event == make_event("evt_1")
    assert str(unapplied[0].event.amount.amount) == "75.00"  # type: ignore[union-attr]
    assert unapplied[1].event.amount is None
    assert unapplied[0].received_at == at and unapplied[0].applied_at is None


async def test_mark_applied_removes_an_event_from_the_backlog(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        for n in range(3):
            await tx.record_event(make_event(f"evt_{n}"), b"{}", T0)
        await tx.mark_applied("evt_0", T0)
        first_two = await tx.unapplied_events(2)
        await tx.mark_applied("evt_1", T0)
        await tx.mark_applied("evt_2", T0)
        assert await tx.unapplied_events(10) == []
    assert [stored.event.id for stored in first_two] == ["evt_1", "evt_2"]
