"""Create or reuse a payment link for an order, and draw its QR code."""

from __future__ import annotations

import asyncio
import io
import secrets
import weakref
from collections.abc import Callable
from datetime import datetime

import segno

from bot import render
from bot.cimplify import CimplifyClient
from bot.models import (
    ChatRef,
    CreatedLink,
    Link,
    MessageKind,
    Order,
    Outgoing,
    Role,
    Status,
    Subscription,
    parse_order_id,
)
from bot.tracking import PollPolicy
from storage import Store, Tx


def qr_png(url: str, scale: int = 8) -> bytes:
    """The QR code of exactly `url`, as PNG. Never a Micro QR: phones' cameras skip those."""
    qr = segno.make(url, micro=False, error="m")
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_text(url: str) -> str:
    """The same QR code drawn with block characters, for a terminal."""
    out = io.StringIO()
    segno.make(url, micro=False, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def new_link_id() -> str:
    """An unguessable id: it names the QR image URL and travels in button data."""
    return secrets.token_urlsafe(16)


class Invoices:
    def __init__(
        self,
        store: Store,
        client: CimplifyClient,
        clock: Callable[[], datetime],
        policy: PollPolicy,
        on_queued: Callable[[], None],
    ) -> None:
        self._store = store
        self._client = client
        self._clock = clock
        self._policy = policy
        self._on_queued = on_queued
        # One issue at a time per order, so two quick /invoice 1001 make one link.
        # Weak values: a lock lives only while someone holds or waits for it.
        self._order_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def issue(self, order_id: str, chat: ChatRef) -> None:
        """Answer `chat` with the order's live link, creating one if needed.

        Raises InvalidOrderId before anything else, and CimplifyError when
        Cimplify refuses or does not answer; the answer is queued otherwise.
        """
        order_id = parse_order_id(order_id)
        lock = self._order_locks.setdefault(order_id, asyncio.Lock())
        async with lock:
            await self._issue(order_id, chat)
        self._on_queued()

    async def _issue(self, order_id: str, chat: ChatRef) -> None:
        async with self._store.transaction() as tx:
            known = await tx.latest_link_for_order(order_id)
            if known is not None and await self._answer_from_store(tx, known, chat):
                return
        created = await self._client.create_link(order_id)
        order = await self._client.order(created.token)
        async with self._store.transaction() as tx:
            if order.status is Status.PAID:
                await _reply(
                    tx, chat, render.already_paid(order_id, order.business_name), self._clock()
                )
                return
            link = await tx.link_by_token(created.token)
            if link is None:
                link = self._new_link(created, order)
                await tx.insert_link(link)
                await tx.schedule_poll(link.id, self._policy.next_poll(link, self._clock()))
            await self._send_invoice(tx, link, chat)

    async def _answer_from_store(self, tx: Tx, link: Link, chat: ChatRef) -> bool:
        """Answer from a link paybot already has, if it settles the question."""
        now = self._clock()
        if link.confirmed_at is not None or link.status is Status.PAID:
            await _reply(tx, chat, render.already_paid(link.order_id, link.business_name), now)
            return True
        if link.is_live(now):
            await self._send_invoice(tx, link, chat)
            return True
        return False

    async def _send_invoice(self, tx: Tx, link: Link, chat: ChatRef) -> None:
        now = self._clock()
        await tx.subscribe(Subscription(link.id, chat, Role.MERCHANT))
        photo = Outgoing(
            chat,
            MessageKind.INVOICE,
            render.invoice_caption(link, now),
            link.id,
            render.invoice_buttons(link),
        )
        await tx.enqueue([photo], now)

    def _new_link(self, created: CreatedLink, order: Order) -> Link:
        now = self._clock()
        return Link(
            id=new_link_id(),
            order_id=order.order_id,
            token=created.token,
            url=created.url,
            expires_at=created.expires_at,
            business_name=order.business_name,
            total=order.total,
            line_items=order.line_items,
            status=order.status or Status.PENDING,
            created_at=now,
            status_changed_at=now,
        )


async def _reply(tx: Tx, chat: ChatRef, text: str, now: datetime) -> None:
    await tx.enqueue([Outgoing(chat, MessageKind.TEXT, text)], now)
