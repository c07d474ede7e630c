"""`/cancel <order_id>`: cancel the order in Cimplify, then its link here (CONTRACT §7).

What paybot knows settles the easy answers before anything reaches Cimplify: no link,
another merchant's link (a cashier's), paid, already cancelled. After Cimplify's 200,
the link moves to `cancelled` the way a polled change moves it (`bot.payments.move`):
one conditional update, and in that transaction `Cancelled` for every subscribed chat
with their invoice captions edited; `cancelled` is final, so polling stops with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot import render_access
from bot.access import Merchant, may_see
from bot.cimplify import CimplifyClient
from bot.errors import CimplifyUnavailable, OrderAlreadyPaid, OrderNotFound
from bot.i18n import Voice, Voices
from bot.inbox import finish_within
from bot.models import ChatRef, Link, MessageKind, Outgoing, Status, parse_order_id
from bot.payments import move
from bot.ports import Store, Tx

log = logging.getLogger(__name__)

Answer = Callable[[Voice, str], str]  # a sentence of bot.render_access for an order


class Cancelling:
    def __init__(
        self,
        store: Store,
        client: CimplifyClient,
        clock: Callable[[], datetime],
        on_queued: Callable[[], None],
        voices: Voices,
    ) -> None:
        self._store = store
        self._client = client
        self._clock = clock
        self._on_queued = on_queued
        self._voices = voices

    async def cancel(
        self, order_id: str, chat: ChatRef, merchant: Merchant, finishes_input: bool = False
    ) -> None:
        """Cancel the order for `merchant`, answering `chat`. Raises InvalidOrderId before
        anything else, and the CimplifyErrors it has no answer of its own for.
        `finishes_input`: nothing follows in the command's handling, so the answer's
        transaction marks its inbox entry handled (bot/inbox.py)."""
        order_id = parse_order_id(order_id)
        async with self._store.transaction() as tx:
            link = await tx.links.latest_for_order(order_id)
            refusal = _refusal(link, merchant)
            if refusal is not None:
                await self._answer(tx, chat, refusal, order_id)
            last = finishes_input and refusal is not None  # else Cimplify is asked next
            finished = await finish_within(tx, self._clock(), last=last)
        if refusal is not None or link is None:  # no link is always refused
            finished()
            self._on_queued()
            return
        failure = await self._cancel_upstream(order_id)
        async with self._store.transaction() as tx:
            if failure is not None:
                await self._answer(tx, chat, failure, order_id)
            else:
                await self._cancel_here(tx, link, chat)
            finished = await finish_within(tx, self._clock(), last=finishes_input)
        finished()
        self._on_queued()

    async def _cancel_upstream(self, order_id: str) -> Answer | None:
        """Cimplify's cancel; the answer for the chat when it did not happen."""
        try:
            await self._client.cancel_order(order_id)
        except OrderAlreadyPaid:
            return render_access.paid_cannot_cancel  # paid before paybot heard of it
        except OrderNotFound:
            return render_access.unknown_to_cimplify
        except CimplifyUnavailable as error:
            log.warning("/cancel %s: Cimplify unavailable: %s", order_id, error)
            return render_access.cancel_unavailable
        return None

    async def _cancel_here(self, tx: Tx, link: Link, chat: ChatRef) -> None:
        """Cimplify cancelled the order: the link follows, and its chats hear it."""
        moved = await move(tx, link.id, Status.CANCELLED, self._clock(), None, self._voices)
        log.info("order %s cancelled in Cimplify; link %s moved: %s", link.order_id, link.id, moved)
        if moved is None:  # it moved meanwhile: cancelled by another, or paid after all
            current = await tx.links.get(link.id)
            paid = current is not None and _is_paid(current)
            answer = render_access.paid_cannot_cancel if paid else render_access.already_cancelled
            await self._answer(tx, chat, answer, link.order_id)
            return
        subscribers = {sub.chat for sub in await tx.subscriptions.for_link(link.id)}
        if chat not in subscribers:  # subscribers hear `Cancelled` with everyone else
            await self._answer(tx, chat, render_access.cancelled, link.order_id)

    async def _answer(self, tx: Tx, chat: ChatRef, answer: Answer, order_id: str) -> None:
        voice = await self._voices.of(tx, chat)
        text = answer(voice, order_id)
        await tx.outbox.enqueue([Outgoing(chat, MessageKind.TEXT, text)], self._clock())


def _refusal(link: Link | None, merchant: Merchant) -> Answer | None:
    """The answer that needs no word from Cimplify, if any."""
    if link is None:
        return render_access.nothing_to_cancel
    if not may_see(merchant, link):
        return render_access.not_yours  # before anything about the order itself
    if _is_paid(link):
        return render_access.paid_cannot_cancel
    if link.status is Status.CANCELLED:
        return render_access.already_cancelled  # answered here: not repeated upstream
    return None


def _is_paid(link: Link) -> bool:
    return link.confirmed_at is not None or link.status is Status.PAID
