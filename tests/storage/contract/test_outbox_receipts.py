"""What became of sent messages: the channel's ids and its receipts, in any order."""

from __future__ import annotations

from bot.models import ChatRef, DeliveryStatus, MessageKind, Outgoing
from bot.ports import Store
from tests.storage.contract.support import (
    ALICE,
    BOB,
    CAROL,
    LEASE,
    T0,
    OpenStore,
    a_link,
    at,
    invoice_to,
    text_to,
)

SENT, DELIVERED, READ, FAILED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
)


async def send(store: Store, message: Outgoing, remote_id: str | None, seconds: float = 0) -> int:
    """Queue the message, claim it as a sender would, and record it sent; its id."""
    async with store.transaction() as tx:
        [message_id] = await tx.outbox.enqueue([message], at(seconds))
    async with store.transaction() as tx:
        claimed = await tx.outbox.claim_due(at(seconds), 10, "sender", at(seconds) + LEASE)
        assert [queued.id for queued in claimed] == [message_id]
        assert await tx.outbox.mark_sent(message_id, at(seconds), remote_id) is None
    return message_id


async def receipt(
    store: Store, remote_id: str, status: DeliveryStatus, channel: str = "whatsapp"
) -> int | None:
    """Record a receipt; the id of the message it moved, if any."""
    async with store.transaction() as tx:
        moved = await tx.outbox.record_delivery(channel, remote_id, status, at(5))
    return None if moved is None else moved.id


async def status_of(
    store: Store, chat: ChatRef, kind: MessageKind = MessageKind.INVOICE
) -> DeliveryStatus | None:
    async with store.transaction() as tx:
        return await tx.outbox.delivery_status("lnk_1", chat, kind)


async def test_receipts_only_move_the_status_forward(store: Store) -> None:
    sent = await send(store, text_to(CAROL, "hello"), "SM1")
    moves = [
        await receipt(store, "SM1", status)
        for status in (SENT, DELIVERED, DELIVERED, SENT, READ, DELIVERED)
    ]
    assert moves == [sent, sent, None, None, sent, None]


async def test_the_moved_message_is_returned_as_it_was_queued(store: Store) -> None:
    message = text_to(CAROL, "hello")
    await send(store, message, "SM1")
    async with store.transaction() as tx:
        moved = await tx.outbox.record_delivery("whatsapp", "SM1", DELIVERED, at(5))
    assert moved is not None
    assert (moved.message, moved.created_at) == (message, T0)


async def test_a_failure_is_final_for_that_message(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
    sent = await send(store, invoice_to(CAROL), "SM2")
    moves = [await receipt(store, "SM2", status) for status in (SENT, FAILED, READ)]
    assert moves == [sent, sent, None]
    assert await status_of(store, CAROL) is FAILED


async def test_receipts_for_unknown_ids_or_another_channel_move_nothing(store: Store) -> None:
    sent = await send(store, text_to(CAROL, "hello"), "SM3")
    unknown = await receipt(store, "SM404", DELIVERED)
    other_channel = await receipt(store, "SM3", DELIVERED, channel="telegram")
    own = await receipt(store, "SM3", DELIVERED)
    assert (unknown, other_channel, own) == (None, None, sent)


async def test_a_repeated_telegram_id_reaches_the_newest_message_with_it(store: Store) -> None:
    # Telegram numbers messages per chat, so two chats can both have a message 7.
    await send(store, text_to(ALICE, "older"), "7", seconds=0)
    newer = await send(store, text_to(BOB, "newer"), "7", seconds=1)
    assert await receipt(store, "7", READ, channel="telegram") == newer


async def test_an_early_receipt_is_kept_and_returned_by_mark_sent(open_store: OpenStore) -> None:
    # Twilio can post the status callback (here: to another process) before the
    # sender has recorded the MessageSid of its own send: that receipt must not be lost.
    sender, webhooks = await open_store(), await open_store()
    async with sender.transaction() as tx:
        await tx.links.insert(a_link())
        [message_id] = await tx.outbox.enqueue([invoice_to(CAROL)], T0)
        await tx.outbox.claim_due(T0, 10, "sender", T0 + LEASE)
    early = [await receipt(webhooks, "SM9", status) for status in (SENT, DELIVERED, SENT)]
    async with sender.transaction() as tx:
        applied = await tx.outbox.mark_sent(message_id, at(1), "SM9")
    status = await status_of(sender, CAROL)
    read = await receipt(webhooks, "SM9", READ)
    assert early == [None, None, None]
    assert applied is DELIVERED and status is DELIVERED  # the furthest early receipt
    assert read == message_id


async def test_delivery_status_is_that_of_the_newest_sent_message_of_the_kind(
    store: Store,
) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        await tx.links.insert(a_link("lnk_2"))
    await send(store, invoice_to(CAROL), "SM_first", seconds=0)
    await send(store, invoice_to(CAROL), "SM_second", seconds=1)
    unreported = await status_of(store, CAROL)
    await receipt(store, "SM_first", READ)
    await receipt(store, "SM_second", DELIVERED)
    async with store.transaction() as tx:
        await tx.outbox.enqueue([invoice_to(CAROL)], at(2))  # newest, but not sent
    newest = await status_of(store, CAROL)
    other_kind = await status_of(store, CAROL, MessageKind.CAPTION)
    other_chat = await status_of(store, ALICE)
    async with store.transaction() as tx:
        other_link = await tx.outbox.delivery_status("lnk_2", CAROL, MessageKind.INVOICE)
    assert unreported is None  # sent, but no receipt yet
    assert newest is DELIVERED
    assert (other_kind, other_chat, other_link) == (None, None, None)


async def test_mark_sent_without_an_early_receipt_applies_nothing(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
    message_id = await send(store, invoice_to(CAROL), "SM10")  # asserts mark_sent gave None
    async with store.transaction() as tx:
        repeated = await tx.outbox.mark_sent(message_id, at(1), "SM10")  # already sent
    assert repeated is None
    assert await status_of(store, CAROL) is None


async def test_an_early_receipt_waits_for_a_message_of_its_own_channel(store: Store) -> None:
    early = await receipt(store, "7", READ, channel="whatsapp")
    async with store.transaction() as tx:
        telegram, whatsapp = await tx.outbox.enqueue(
            [text_to(ALICE, "telegram, also 7"), text_to(CAROL, "whatsapp 7")], T0
        )
        await tx.outbox.claim_due(T0, 10, "sender", T0 + LEASE)
        on_telegram = await tx.outbox.mark_sent(telegram, T0, "7")
        on_whatsapp = await tx.outbox.mark_sent(whatsapp, T0, "7")
    assert (early, on_telegram, on_whatsapp) == (None, None, READ)
