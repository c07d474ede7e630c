"""Create or reuse a payment link for an order, and draw its QR code."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import re
import secrets
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import segno

from bot import render, render_access, render_follow_up
from bot.access import Merchant, may_see
from bot.cimplify import CimplifyClient
from bot.deliveries import tell_merchants
from bot.errors import StoreError
from bot.follow_ups import FollowUpPolicy, schedule_for_new_link
from bot.i18n import ENGLISH_VOICES, Voices, Words
from bot.inbox import finish_within
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
from bot.ports import Store, Tx
from bot.tracking import PollPolicy

QR_CACHE = 2048  # links' QR images kept, about 1 KB each
# The data mask, fixed rather than chosen by ISO 18004's penalty search: the search is
# most of a new link's CPU (2.3 of its 2.8 ms in segno), and for payment-link URLs
# mask 3 scores within 6 % of the best mask in the median (25 % at worst) by that
# same penalty, the one the search minimises. Any reader reads any mask: its number
# is in the symbol's format information (tests/test_qr_png.py reads links back).
QR_MASK = 3


def _qr(url: str) -> segno.QRCode:
    return segno.make(url, micro=False, error="m", mask=QR_MASK)


@functools.lru_cache(maxsize=QR_CACHE)
def qr_png(url: str, scale: int = 8) -> bytes:
    """The QR code of exactly `url`, as PNG. Never a Micro QR: phones' cameras skip those.

    Made once a link and kept: a link's photo is drawn again for each chat and each
    WhatsApp media fetch.
    """
    return _png(_qr(url).matrix, scale, border=4)


def _png(matrix: Sequence[Sequence[int]], scale: int, border: int) -> bytes:
    """A black-and-white PNG (1 bit a pixel) of the modules, `scale` pixels a side each.

    Drawn here rather than by segno's writer, which builds every pixel in Python (2 ms
    of an `/invoice`'s 12 ms of CPU; this takes 0.2). Each distinct row is built once.
    """
    width = (len(matrix) + 2 * border) * scale
    quiet, pad = "1" * (border * scale), "1" * (-width % 8)  # 1 is white
    blank = _scanline("1" * width + pad)
    lines = [blank] * (border * scale)
    for row in matrix:
        bits = "".join(("0" if dark else "1") * scale for dark in row)
        lines += [_scanline(quiet + bits + quiet + pad)] * scale
    lines += [blank] * (border * scale)
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)  # 1-bit grayscale
    image = zlib.compress(b"".join(lines))
    chunks = _chunk(b"IHDR", header) + _chunk(b"IDAT", image) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def _scanline(bits: str) -> bytes:
    return b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")  # filter type 0: none


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_text(url: str) -> str:
    """The same QR code drawn with block characters, for a terminal."""
    out = io.StringIO()
    _qr(url).terminal(out=out, compact=True)
    return out.getvalue()


# Told of a new link once stored: when its first poll and first follow-up are due.
Scheduled = Callable[[datetime, datetime | None], None]
# Within the transaction that queues an invoice's messages (how many): claim them for
# sending (bot/outbox.py's `Outbox.claim_within`); what to call once it commits.
SendSoon = Callable[[Tx, datetime, int], Awaitable[Callable[[], None]]]
AfterCommit = Callable[[], None]
# Run in the transaction that first looks for the order's link, so that counting the
# ask costs no transaction of its own: the words that refuse it (its asker is past
# their asks a minute), or None to go on.
AskGate = Callable[[Tx], Awaitable[Words | None]]
CLAIM_WAIT_FIRST, CLAIM_WAIT_MOST = 0.05, 1.0  # seconds between looks while another holds it

# A Telegram deep-link parameter: up to 64 of A-Z a-z 0-9 _ - (Bot API, /start).
_SHARE_CODE = re.compile(r"[A-Za-z0-9_-]{16,64}")


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
        holder: str = "invoices",
        lease: timedelta = timedelta(seconds=6),
        follow_ups: FollowUpPolicy | None = None,
        voices: Voices | None = None,
        on_scheduled: Scheduled = lambda _poll_at, _follow_up_at: None,
        send_soon: SendSoon | None = None,
    ) -> None:
        self._store = store
        self._voices = voices or ENGLISH_VOICES
        self._client = client
        self._clock = clock
        self._policy = policy
        self._on_queued = on_queued
        self._holder = holder
        self._lease = lease  # of a claim on an order, renewed while its link is created
        self._follow_ups = follow_ups or FollowUpPolicy()
        self._on_scheduled = on_scheduled  # a new link: its first poll and follow-up
        self._send_soon = send_soon  # None: the sender is woken to look

    async def issue(
        self,
        order_id: str,
        chat: ChatRef,
        customer: ChatRef | None = None,
        issuer: Merchant | None = None,
        gate: AskGate | None = None,
        finishes_input: bool = False,
        note: Words | None = None,
    ) -> bool:
        """Answer `chat` with the order's live link, creating one if needed; send the
        customer their copy too, when one is named. A new link is `issuer`'s; a cashier
        is refused another merchant's link (bot/access.py). False when `gate` refused
        the ask (its words are queued instead). `note`: words to `chat` after the
        answer, in its transaction (not after a refused ask). `finishes_input`: nothing
        follows the answer in the command's handling, so the transaction that queues it
        marks the inbox entry finished too (bot/inbox.py's `finish_within`).

        Raises InvalidOrderId before anything else, and CimplifyError when
        Cimplify refuses or does not answer; the answer is queued otherwise.
        """
        order_id = parse_order_id(order_id)
        audience = _Audience(chat, customer, issuer, note, finishes_input=finishes_input)
        return await self._issue(order_id, audience, gate)

    async def renew(
        self,
        order_id: str,
        chat: ChatRef,
        issuer: Merchant | None = None,
        finishes_input: bool = False,
    ) -> None:
        """`renew <order_id>`, the New link button: a new link for an order whose link
        expired, to `chat` and to every chat of the old link; a clear answer instead
        when the order is paid, its link still live, or paybot never invoiced it.
        `finishes_input` as for `issue`.

        Raises InvalidOrderId and CimplifyError as `issue` does.
        """
        order_id = parse_order_id(order_id)
        now = self._clock()
        async with self._store.transaction() as tx:
            old = await tx.links.latest_for_order(order_id)
            answer = _no_renewal(old, order_id, issuer, now)
            if answer is not None:
                await self._reply(tx, chat, answer)
            finished = await finish_within(tx, now, last=finishes_input and answer is not None)
        finished()
        if old is not None and answer is None:
            # The new link stays with whoever issued the old one (a cashier's stays theirs).
            keeper = issuer if old.issued_by is None else Merchant(old.issued_by)
            renewal = _Audience(chat, None, keeper, renewing=old.id, finishes_input=finishes_input)
            await self._issue(order_id, renewal)
        self._on_queued()

    async def open_shared(self, code: str, chat: ChatRef, finishes_input: bool = False) -> bool:
        """A customer opened a share link: their copy of the invoice, and a word to the
        merchant. False when no link has that code. `finishes_input` as for `issue`, for
        the copy's transaction."""
        now = self._clock()
        async with self._store.transaction() as tx:
            link = await tx.links.by_share_code(code) if _SHARE_CODE.fullmatch(code) else None
            if link is None:
                return False
            if await tx.subscriptions.add(Subscription(link.id, chat, Role.CUSTOMER)):
                opened = functools.partial(render.customer_opened, link)
                await tell_merchants(tx, link, opened, now, self._voices)
            await tx.outbox.enqueue([await self._invoice(tx, link, chat, Role.CUSTOMER)], now)
            finished = await finish_within(tx, now, last=finishes_input)
        finished()
        self._on_queued()
        return True

    async def _issue(self, order_id: str, audience: _Audience, gate: AskGate | None = None) -> bool:
        """Answer from the store, or become the one creating the order's link and create it.

        Two /invoice for one order, in this process or another, make one link: the
        one that claims the order in the store asks Cimplify; the other waits for the
        claim to end (released, or lapsed with a holder that died) and answers from
        the link it finds. False when `gate` refused it.
        """
        pause = CLAIM_WAIT_FIRST
        claimant = f"{self._holder}:{secrets.token_hex(4)}"  # this /invoice, not this process
        while (done := await self._answered_or_claimed(order_id, audience, claimant, gate)) is None:
            gate = None  # the ask is counted once, on the first look
            await asyncio.sleep(pause)  # another holder is asking Cimplify right now
            pause = min(CLAIM_WAIT_MOST, pause * 2)
        return done

    async def _answered_or_claimed(
        self, order_id: str, audience: _Audience, claimant: str, gate: AskGate | None
    ) -> bool | None:
        """True when answered from the store, or when a new link was made (and answered);
        False when `gate` refused the ask; None when another holds the order's claim."""
        claimed = False
        async with self._store.transaction() as tx:
            refusal = None if gate is None else await gate(tx)
            if refusal is not None:
                answered: AfterCommit | None = await self._reply(tx, audience.merchant, refusal)
            else:
                answered = await self._answer_known(tx, order_id, audience)
            if answered is None:
                claimed = await self._claim(tx, order_id, claimant)
                answered = await self._answer_known(tx, order_id, audience) if claimed else None
                if answered is not None:  # the link came with the claim: no need of it
                    await tx.links.release_order(order_id, claimant)
                    claimed = False
            if answered is not None:
                answered = await self._finishing(tx, answered, audience, noted=refusal is None)
        if answered is not None:
            answered()
            return refusal is None
        if not claimed:
            return None
        try:
            async with self._kept_alive(order_id, claimant):
                await self._create(order_id, audience, claimant)
        except BaseException:
            with contextlib.suppress(StoreError):
                async with self._store.transaction() as tx:
                    await tx.links.release_order(order_id, claimant)
            raise
        return True

    async def _claim(self, tx: Tx, order_id: str, claimant: str) -> bool:
        """Claim the order for `claimant`; the caller then looks for its link once more.

        On PostgreSQL each statement reads what is committed when it starts. A holder
        that stores the order's link and releases its claim may commit between this
        transaction's look for the link and its claim (the claim waits for that commit
        on the claim's row), so the claim succeeds with the link already there: asking
        Cimplify again would only return it. The look after the claim sees it.
        """
        now = self._clock()
        return await tx.links.claim_order(order_id, claimant, now, now + self._lease)

    @contextlib.asynccontextmanager
    async def _kept_alive(self, order_id: str, claimant: str) -> AsyncIterator[None]:
        """Renew the claim on the order while its link is being created (a heartbeat):
        the lease is short, so that a claimant that dies blocks the order only briefly."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._lease.total_seconds() / 3)
                now = self._clock()
                with contextlib.suppress(StoreError):
                    async with self._store.transaction(urgent=True) as tx:
                        await tx.links.claim_order(order_id, claimant, now, now + self._lease)

        renewing = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def _create(self, order_id: str, audience: _Audience, claimant: str) -> None:
        created = await self._client.create_link(order_id)
        order = await self._client.order(created.token)
        async with self._store.transaction() as tx:
            await tx.links.release_order(order_id, claimant)
            after, scheduled = await self._store_link(tx, created, order, audience)
            after = await self._finishing(tx, after, audience)
        after()
        if scheduled is not None:
            self._on_scheduled(*scheduled)

    async def _finishing(
        self, tx: Tx, after: AfterCommit, audience: _Audience, noted: bool = True
    ) -> AfterCommit:
        """`after`, once the answer is queued in `tx`: with `noted`, the audience's note
        queued behind it; with `audience.finishes_input`, the inbox entry marked
        finished in the answer's transaction."""
        if noted and audience.note is not None:
            await self._reply(tx, audience.merchant, audience.note)  # wakes as `after` does
        if not audience.finishes_input:
            return after
        finished = await finish_within(tx, self._clock())  # last: finishes_input says so

        def committed() -> None:
            finished()
            after()

        return committed

    async def _store_link(
        self, tx: Tx, created: CreatedLink, order: Order, audience: _Audience
    ) -> tuple[AfterCommit, tuple[datetime, datetime | None] | None]:
        """The answer to a link just made at Cimplify, within `tx`: what to call once it
        commits, and for a new link (stored, scheduled and sent) its first poll and
        follow-up."""
        if order.status is Status.PAID:
            paid = functools.partial(render.already_paid, order.order_id, order.business_name)
            return await self._reply(tx, audience.merchant, paid), None
        link = await tx.links.by_token(created.token)
        if link is not None:
            refused = await self._refused(tx, link, audience)
            return refused or await self._send_invoices(tx, link, audience), None
        link = self._new_link(created, order, audience.issuer)
        poll_at = self._policy.next_poll(link, self._clock())
        link = replace(link, next_poll_at=poll_at)  # scheduled in its own INSERT
        await tx.links.insert(link)
        follow_up_at = await schedule_for_new_link(tx, link, self._follow_ups)
        return await self._send_invoices(tx, link, audience), (poll_at, follow_up_at)

    async def _answer_known(self, tx: Tx, order_id: str, audience: _Audience) -> AfterCommit | None:
        known = await tx.links.latest_for_order(order_id)
        return None if known is None else await self._answer_from_store(tx, known, audience)

    async def _answer_from_store(
        self, tx: Tx, link: Link, audience: _Audience
    ) -> AfterCommit | None:
        """Answer from a link paybot already has, if it settles the question: what to
        call once `tx` commits; None when it does not."""
        now = self._clock()
        paid = link.confirmed_at is not None or link.status is Status.PAID
        if paid or link.is_live(now):
            refused = await self._refused(tx, link, audience)
            if refused is not None:
                return refused
        if paid:
            words = functools.partial(render.already_paid, link.order_id, link.business_name)
            return await self._reply(tx, audience.merchant, words)
        if link.is_live(now):
            return await self._send_invoices(tx, link, audience)
        return None

    async def _refused(self, tx: Tx, link: Link, audience: _Audience) -> AfterCommit | None:
        """A cashier asking for another merchant's link is told so, not subscribed to it:
        the refusal carries nothing of the order (CONTRACT §7). None: not refused."""
        issuer = audience.issuer
        if issuer is None or may_see(issuer, link):
            return None
        paid = link.confirmed_at is not None or link.status is Status.PAID
        refusal = render_access.not_yours if paid else render_access.held_by_another
        return await self._reply(tx, audience.merchant, lambda voice: refusal(voice, link.order_id))

    async def _send_invoices(self, tx: Tx, link: Link, audience: _Audience) -> AfterCommit:
        # One enqueue for every chat: the store locks each chat's queue in one order,
        # so two transactions cannot wait on each other's chats (bot/ports.py).
        now = self._clock()
        await tx.subscriptions.add(Subscription(link.id, audience.merchant, Role.MERCHANT))
        messages = [await self._invoice(tx, link, audience.merchant, Role.MERCHANT)]
        if audience.customer is not None:
            await tx.subscriptions.add(Subscription(link.id, audience.customer, Role.CUSTOMER))
            messages.append(await self._invoice(tx, link, audience.customer, Role.CUSTOMER))
            voice = await self._voices.of(tx, audience.merchant)
            text = render.sent_to_customer(link, audience.customer, voice)
            messages.append(Outgoing(audience.merchant, MessageKind.TEXT, text))
        if audience.renewing is not None and audience.renewing != link.id:
            for sub in await _to_old_chats(tx, link, audience.renewing):
                messages.append(await self._invoice(tx, link, sub.chat, sub.role))
                if sub.role is Role.CUSTOMER:
                    voice = await self._voices.of(tx, audience.merchant)
                    text = render.sent_to_customer(link, sub.chat, voice)
                    messages.append(Outgoing(audience.merchant, MessageKind.TEXT, text))
        await tx.outbox.enqueue(messages, now)
        # The photo is claimed for sending here, in the transaction that queues it.
        if self._send_soon is None:
            return self._on_queued
        return await self._send_soon(tx, now, len(messages))

    async def _invoice(self, tx: Tx, link: Link, chat: ChatRef, role: Role) -> Outgoing:
        """The invoice photo for one chat: the QR of the link, captioned in its voice."""
        voice = await self._voices.of(tx, chat)
        return Outgoing(
            chat,
            MessageKind.INVOICE,
            render.invoice_caption(link, self._clock(), voice),
            link.id,
            render.invoice_buttons(link, role, voice),
        )

    async def _reply(self, tx: Tx, chat: ChatRef, words: Words) -> AfterCommit:
        text = words(await self._voices.of(tx, chat))
        await tx.outbox.enqueue([Outgoing(chat, MessageKind.TEXT, text)], self._clock())
        return self._on_queued

    def _new_link(self, created: CreatedLink, order: Order, issuer: Merchant | None) -> Link:
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
            share_code=new_link_id(),
            issued_by=None if issuer is None else issuer.id,
        )


def _no_renewal(
    old: Link | None, order_id: str, issuer: Merchant | None, now: datetime
) -> Words | None:
    """Why the order gets no new link, in words; None when it may be renewed."""
    if old is None:
        return functools.partial(render.no_link, order_id)
    if issuer is not None and not may_see(issuer, old):
        return lambda voice: render_access.not_yours(voice, order_id)
    if old.confirmed_at is not None or old.status is Status.PAID:
        return functools.partial(render.already_paid, order_id, old.business_name)
    if old.is_live(now):
        return lambda voice: render_follow_up.still_live(voice, old)
    return None


@dataclass(frozen=True)
class _Audience:
    """Who hears of an invoice: the merchant who asked, and maybe their customer."""

    merchant: ChatRef
    customer: ChatRef | None
    issuer: Merchant | None = None  # who asked, as a merchant; None: not by a command
    note: Words | None = None  # to the merchant after the answer, in its transaction
    renewing: str | None = None  # the expired link whose chats all get the new one
    finishes_input: bool = False  # the answer is the last of its command's handling


async def _to_old_chats(tx: Tx, link: Link, old_id: str) -> list[Subscription]:
    """A renewal: every chat of the old link is subscribed to the new one, each in its
    role; the chats newly subscribed (two renewals at once send nothing twice)."""
    added = []
    for sub in await tx.subscriptions.for_link(old_id):
        if await tx.subscriptions.add(Subscription(link.id, sub.chat, sub.role)):
            added.append(sub)
    return added
