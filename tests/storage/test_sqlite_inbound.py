"""What migration 0002 added, against a real SQLite file: share codes, the channel's
ids and delivery receipts of sent messages, and inbound chat messages."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.models import ChatRef, DeliveryStatus, InboundMessage, MessageKind, Outgoing
from storage.migrate import migrations
from storage.sqlite import SqliteStore
from tests.storage.test_sqlite import ALICE, BOB, T0, make_link, text_to

WHATSAPP = ChatRef("whatsapp", "+233200000001")
SENT, DELIVERED, READ, FAILED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
)
RANDOM_CODE = re.compile(r"[0-9a-f]{24}")


def invoice_to(chat: ChatRef, link_id: str = "lnk_1") -> Outgoing:
    return Outgoing(chat=chat, kind=MessageKind.INVOICE, text="Order 1001", link_id=link_id)


def inbound(chat: ChatRef, message_id: str, minutes: int = 0) -> InboundMessage:
    at = T0 + timedelta(minutes=minutes)
    return InboundMessage(chat, message_id, f"text of {message_id}", at)


# migration from version 1


def create_version_1_database(path: str) -> None:
    """A database as paybot's first schema left it, with two links and a sent message."""
    raw = sqlite3.connect(path)
    raw.executescript(migrations()[0][1])
    for link_id in ("old_1", "old_2"):
        raw.execute(
            "INSERT INTO links (id, order_id, token, url, expires_at, business_name, currency,"
            " total, line_items, status, created_at, status_changed_at)"
            " VALUES (?, '1001', ?, 'https://pay.test/p', ?, 'Ama', 'GHS', '75.00', '[]',"
            " 'pending', ?, ?)",
            (link_id, f"plt_{link_id}", T0.isoformat(), T0.isoformat(), T0.isoformat()),
        )
    raw.execute(
        "INSERT INTO outbox (channel, chat_id, kind, text, link_id, created_at,"
        " next_attempt_at, sent_at) VALUES ('telegram', '100', 'invoice', 'x', 'old_1', ?, ?, ?)",
        (T0.isoformat(), T0.isoformat(), T0.isoformat()),
    )
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()


async def test_a_version_1_database_is_migrated_and_keeps_its_links(db_path: str) -> None:
    create_version_1_database(db_path)
    store = SqliteStore(db_path)
    await store.open()
    try:
        async with store.transaction() as tx:
            first, second = await tx.links.get("old_1"), await tx.links.get("old_2")
            assert first is not None and second is not None
            found = await tx.links.by_share_code(first.share_code)
            status = await tx.outbox.delivery_status("old_1", ALICE, MessageKind.INVOICE)
    finally:
        await store.close()
    assert RANDOM_CODE.fullmatch(first.share_code)
    assert first.share_code != second.share_code
    assert found == first
    assert status is None  # sent before receipts existed: nothing reported
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(migrations()) >= 2
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    assert {"inbound_messages", "contacts"} <= tables


# share codes


async def test_a_link_is_found_by_its_share_code_only(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(make_link("lnk_1"))
        await tx.links.insert(make_link("lnk_2"))
        found = await tx.links.by_share_code("share_lnk_2")
        unknown = await tx.links.by_share_code("share_lnk_3")
        empty = await tx.links.by_share_code("")
    assert found == make_link("lnk_2")
    assert (unknown, empty) == (None, None)


async def test_an_empty_share_code_is_stored_as_a_fresh_random_one(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(replace(make_link("lnk_1"), share_code=""))
        await tx.links.insert(replace(make_link("lnk_2"), share_code=""))
        first, second = await tx.links.get("lnk_1"), await tx.links.get("lnk_2")
    assert first is not None and second is not None
    assert RANDOM_CODE.fullmatch(first.share_code) and RANDOM_CODE.fullmatch(second.share_code)
    assert first.share_code != second.share_code


async def test_a_taken_share_code_is_refused(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(make_link("lnk_1"))
    with pytest.raises(sqlite3.IntegrityError):
        async with store.transaction() as tx:
            await tx.links.insert(replace(make_link("lnk_2"), share_code="share_lnk_1"))


# the channel's ids and delivery receipts


async def test_mark_sent_stores_the_remote_id(store: SqliteStore, db_path: str) -> None:
    async with store.transaction() as tx:
        with_id, without_id = await tx.outbox.enqueue([text_to(ALICE, "a"), text_to(BOB, "b")], T0)
        await tx.outbox.mark_sent(with_id, T0, "SM0001")
        await tx.outbox.mark_sent(without_id, T0)
    with sqlite3.connect(db_path) as raw:
        stored = dict(raw.execute("SELECT id, remote_id FROM outbox").fetchall())
    raw.close()
    assert stored == {with_id: "SM0001", without_id: None}


async def test_receipts_only_move_the_status_forward(store: SqliteStore) -> None:
    later = T0 + timedelta(seconds=1)
    async with store.transaction() as tx:
        [message_id] = await tx.outbox.enqueue([text_to(WHATSAPP, "hello")], T0)
        [queued] = await tx.due_messages(T0, 10)
        await tx.outbox.mark_sent(message_id, T0, "SM1")
        sent = await tx.outbox.record_delivery("whatsapp", "SM1", SENT, later)
        delivered = await tx.outbox.record_delivery("whatsapp", "SM1", DELIVERED, later)
        repeated = await tx.outbox.record_delivery("whatsapp", "SM1", DELIVERED, later)
        late_sent = await tx.outbox.record_delivery("whatsapp", "SM1", SENT, later)
        read = await tx.outbox.record_delivery("whatsapp", "SM1", READ, later)
        late_delivered = await tx.outbox.record_delivery("whatsapp", "SM1", DELIVERED, later)
    assert sent == delivered == read == queued  # the message, as due_messages built it
    assert (repeated, late_sent, late_delivered) == (None, None, None)


async def test_a_failure_after_sent_moves_and_then_holds(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(make_link())
        [message_id] = await tx.outbox.enqueue([invoice_to(WHATSAPP)], T0)
        await tx.outbox.mark_sent(message_id, T0, "SM2")
        await tx.outbox.record_delivery("whatsapp", "SM2", SENT, T0)
        failed = await tx.outbox.record_delivery("whatsapp", "SM2", FAILED, T0)
        read_after = await tx.outbox.record_delivery("whatsapp", "SM2", READ, T0)
        status = await tx.outbox.delivery_status("lnk_1", WHATSAPP, MessageKind.INVOICE)
    assert failed is not None and failed.id == message_id
    assert read_after is None
    assert status is FAILED


async def test_receipts_for_unknown_ids_or_another_channel_match_nothing(
    store: SqliteStore,
) -> None:
    async with store.transaction() as tx:
        [message_id] = await tx.outbox.enqueue([text_to(WHATSAPP, "hello")], T0)
        await tx.outbox.mark_sent(message_id, T0, "SM3")
        unknown = await tx.outbox.record_delivery("whatsapp", "SM404", DELIVERED, T0)
        other_channel = await tx.outbox.record_delivery("telegram", "SM3", DELIVERED, T0)
        own = await tx.outbox.record_delivery("whatsapp", "SM3", DELIVERED, T0)
    assert (unknown, other_channel) == (None, None)
    assert own is not None and own.id == message_id


async def test_a_repeated_telegram_id_reaches_only_the_newest_message(store: SqliteStore) -> None:
    # Telegram numbers messages per chat, so two chats can both have message 7.
    async with store.transaction() as tx:
        older, newer = await tx.outbox.enqueue([text_to(ALICE, "a"), text_to(BOB, "b")], T0)
        await tx.outbox.mark_sent(older, T0, "7")
        await tx.outbox.mark_sent(newer, T0, "7")
        moved = await tx.outbox.record_delivery("telegram", "7", READ, T0)
    assert moved is not None and moved.id == newer


async def test_delivery_status_is_the_newest_sent_invoices(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(make_link())
        first, second = await tx.outbox.enqueue([invoice_to(WHATSAPP), invoice_to(WHATSAPP)], T0)
        await tx.outbox.mark_sent(first, T0, "SM_first")
        await tx.outbox.mark_sent(second, T0, "SM_second")
        unreported = await tx.outbox.delivery_status("lnk_1", WHATSAPP, MessageKind.INVOICE)
        await tx.outbox.record_delivery("whatsapp", "SM_first", READ, T0)
        await tx.outbox.record_delivery("whatsapp", "SM_second", DELIVERED, T0)
        await tx.outbox.enqueue([invoice_to(WHATSAPP)], T0)  # newest, but not sent yet
        newest = await tx.outbox.delivery_status("lnk_1", WHATSAPP, MessageKind.INVOICE)
        other_kind = await tx.outbox.delivery_status("lnk_1", WHATSAPP, MessageKind.CAPTION)
        other_chat = await tx.outbox.delivery_status("lnk_1", ALICE, MessageKind.INVOICE)
        other_link = await tx.outbox.delivery_status("lnk_2", WHATSAPP, MessageKind.INVOICE)
    assert unreported is None
    assert newest is DELIVERED
    assert (other_kind, other_chat, other_link) == (None, None, None)


# inbound chat messages


async def test_record_inbound_stores_each_id_once_per_channel(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        first = await tx.record_inbound(inbound(WHATSAPP, "SM_in_1"))
        repeated = await tx.record_inbound(inbound(WHATSAPP, "SM_in_1", minutes=5))
        other_channel = await tx.record_inbound(inbound(ALICE, "SM_in_1"))
        stored = await tx.unhandled_inbound(10)
        last = await tx.contacts.last_inbound_at(WHATSAPP)
    assert (first, repeated, other_channel) == (True, False, True)
    assert stored == [inbound(WHATSAPP, "SM_in_1"), inbound(ALICE, "SM_in_1")]
    assert last == T0  # the repeat, though later, was not new and moved nothing


async def test_last_inbound_at_is_the_latest_per_chat(store: SqliteStore) -> None:
    other = ChatRef("whatsapp", "+233200000002")
    async with store.transaction() as tx:
        await tx.record_inbound(inbound(WHATSAPP, "a", minutes=10))
        await tx.record_inbound(inbound(WHATSAPP, "b", minutes=3))  # arrived late
        await tx.record_inbound(inbound(other, "c", minutes=20))
        mine = await tx.contacts.last_inbound_at(WHATSAPP)
        theirs = await tx.contacts.last_inbound_at(other)
        never = await tx.contacts.last_inbound_at(ChatRef("whatsapp", "+233200000003"))
    assert mine == T0 + timedelta(minutes=10)
    assert mine.tzinfo is not None and mine.utcoffset() == timedelta(0)
    assert theirs == T0 + timedelta(minutes=20)
    assert never is None


async def test_unhandled_inbound_oldest_first_until_handled(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        for n in range(3):
            await tx.record_inbound(inbound(WHATSAPP, f"m{n}", minutes=-n))  # received order wins
        first_two = await tx.unhandled_inbound(2)
        await tx.mark_handled(WHATSAPP, "m0", T0)
        stranger = ChatRef("whatsapp", "+233200000009")
        await tx.mark_handled(stranger, "m1", T0)  # not the stranger's message: nothing happens
        left = await tx.unhandled_inbound(10)
    assert [m.message_id for m in first_two] == ["m0", "m1"]
    assert [m.message_id for m in left] == ["m1", "m2"]


async def test_a_receipt_before_the_send_is_recorded_waits_for_it(store: SqliteStore) -> None:
    # Twilio can post the status callback before paybot has read the MessageSid
    # from its own send: that receipt must not be lost.
    async with store.transaction() as tx:
        await tx.links.insert(make_link())
        [message_id] = await tx.outbox.enqueue([invoice_to(WHATSAPP)], T0)
        early_sent = await tx.outbox.record_delivery("whatsapp", "SM9", SENT, T0)
        early_delivered = await tx.outbox.record_delivery("whatsapp", "SM9", DELIVERED, T0)
        late_sent = await tx.outbox.record_delivery("whatsapp", "SM9", SENT, T0)
        applied = await tx.outbox.mark_sent(message_id, T0, "SM9")
        status = await tx.outbox.delivery_status("lnk_1", WHATSAPP, MessageKind.INVOICE)
        read = await tx.outbox.record_delivery("whatsapp", "SM9", READ, T0)
    assert (early_sent, early_delivered, late_sent) == (None, None, None)
    assert applied is DELIVERED and status is DELIVERED  # the highest early receipt
    assert read is not None and read.id == message_id


async def test_a_send_with_no_early_receipt_applies_nothing(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        [message_id] = await tx.outbox.enqueue([text_to(WHATSAPP, "hello")], T0)
        assert await tx.outbox.mark_sent(message_id, T0, "SM10") is None
        assert await tx.outbox.mark_sent(message_id, T0, "SM10") is None  # already sent: no-op
