"""The conversation, whatever the channel: parse a command, call the core, answer.

Every answer is queued in the store and sent by the outbox, like any other
message, so answers share its durability and pacing.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import render, render_access, render_follow_up
from bot.access import Merchant, MerchantRole, issuer_id, may_see
from bot.cancelling import Cancelling
from bot.day import MerchantDay
from bot.errors import (
    ChannelOff,
    CimplifyUnavailable,
    InvalidOrderId,
    PaybotError,
    StoreError,
)
from bot.follow_ups import FollowUps
from bot.i18n import ENGLISH_VOICES, LANGUAGES, Voice, Voices, Words
from bot.inbox import finish_within
from bot.invoices import AskGate, Invoices
from bot.limits import SharedLimit
from bot.models import (
    ChatRef,
    DeliveryStatus,
    Link,
    MessageKind,
    Outgoing,
    Role,
    parse_order_id,
)
from bot.phones import parse_phone
from bot.ports import Store, Tx
from bot.tracking import Tracker

log = logging.getLogger(__name__)

MERCHANT_COMMANDS = frozenset({"invoice", "open", "cancel", "today", "export", "remind", "renew"})
# and the Refresh status and New link buttons
ASKS_CIMPLIFY = frozenset({"invoice", "status", "cancel", "renew"})
# Counted by the command itself, in the transaction that looks for the order's link.
_ASKS_COUNTED_WITHIN = frozenset({"invoice"})
_ASKS_COUNTED_HERE = ASKS_CIMPLIFY - _ASKS_COUNTED_WITHIN  # in a transaction of their own
CIMPLIFY_ASKS = 30  # a merchant's commands that reach Cimplify, a minute
MINUTE = timedelta(minutes=1)
# What a merchant types when they mean a phone number, right or wrong: "+233 24…", "024-…".
_NUMBER_LIKE = re.compile(r"\+?[0-9][0-9 ().-]*")


# An answer a command says, kept until its handling is done (`Conversation.handle`).
_Answer = tuple[ChatRef, Words]
_ANSWERS: ContextVar[list[_Answer] | None] = ContextVar("command_answers", default=None)


@dataclass(frozen=True)
class CustomerReach:
    """Whether customers can be sent their link on WhatsApp, and how to read their numbers."""

    whatsapp: bool = False
    default_region: str | None = None  # WHATSAPP_DEFAULT_REGION


@dataclass(frozen=True)
class Command:
    """One command from a chat, already stripped of its channel's wrapping."""

    chat: ChatRef
    sender: str  # the sender's id on the channel
    is_merchant: bool
    name: str  # lower case, no slash: "invoice"
    args: tuple[str, ...] = ()
    # A merchant's role (CONTRACT §7); a merchant without one is an owner.
    role: MerchantRole | None = None

    @property
    def merchant(self) -> Merchant | None:
        """The sender as a merchant, for bot/access.py; None for anyone else."""
        if not self.is_merchant:
            return None
        return Merchant(issuer_id(self.chat.channel, self.sender), self.role or MerchantRole.OWNER)


class Conversation:
    def __init__(
        self,
        store: Store,
        invoices: Invoices,
        tracker: Tracker,
        clock: Callable[[], datetime],
        on_queued: Callable[[], None],
        merchants_setting: Callable[[str], str],
        reach: CustomerReach | None = None,
        cancelling: Cancelling | None = None,
        voices: Voices | None = None,
        day: MerchantDay | None = None,
        follow_ups: FollowUps | None = None,
    ) -> None:
        self._store = store
        self._day = day  # /today and /export; None: answered as unknown commands
        self._invoices = invoices
        self._tracker = tracker
        self._clock = clock
        self._on_queued = on_queued
        self._merchants_setting = merchants_setting  # channel -> the setting that lists merchants
        self._reach = reach or CustomerReach()
        self._cancelling = cancelling  # None: /cancel is not offered (no Cimplify client)
        self._follow_ups = follow_ups  # None: /remind is not offered
        self._voices = voices or ENGLISH_VOICES
        # A stranger who keeps writing gets one answer a minute; a merchant's commands
        # that reach Cimplify are limited, so no chat can drive Cimplify's API hard.
        self._stranger_answers = SharedLimit(store, "answers", 1, MINUTE, clock)
        self._cimplify_asks = SharedLimit(store, "asks", CIMPLIFY_ASKS, MINUTE, clock)

    async def handle(self, command: Command) -> None:
        """Answer one command. Never raises for anything a sender can type.

        What it says (`say`) is queued once it is done, in one transaction that also
        marks its inbox entry handled (bot/inbox.py's `finish_within`); a component
        that answers for it (invoices, the day, follow-ups, cancelling) marks it in
        its own last transaction (`finishes_input`). A crash before that commit leaves
        the command to be handled again, and after it nothing is left to repeat. A
        StoreError on the way queues nothing: the inbox tries again.
        """
        answers: list[_Answer] = []
        reset = _ANSWERS.set(answers)
        try:
            await self._handle(command)
        finally:
            _ANSWERS.reset(reset)
        await self._queue(answers, finishing=True)

    async def _handle(self, command: Command) -> None:
        if not await self._within_limits(command):
            return
        if _merchants_only(command) and not command.is_merchant:
            setting = self._merchants_setting(command.chat.channel)
            log.info("refused /%s from %s: not a merchant", command.name, command.chat)
            await self.say(
                command.chat, lambda voice: render.not_authorized(command.sender, setting, voice)
            )
            return
        handler = {
            "invoice": self._invoice,
            "status": self._status if command.is_merchant else self._customer_status,
            "open": self._open,
            "cancel": self._cancel,
            "remind": self._remind,
            "renew": self._renew,
            "start": self._start,
            "help": self._help,
            "today": self._today,
            "export": self._export,
            "lang": self._language,
        }.get(command.name, self._unknown if command.is_merchant else self._help)
        try:
            await handler(command)
        except StoreError:
            raise  # not the sender's doing: the inbox keeps the command and tries again
        except PaybotError as error:
            log.info("/%s from %s: %s", command.name, command.chat, error)
            order = _order_arg(command)
            await self.say(command.chat, functools.partial(render.explain, error, order))

    async def _within_limits(self, command: Command) -> bool:
        """False when the command goes unanswered (a stranger answered this minute) or is
        refused (a merchant past CIMPLIFY_ASKS a minute)."""
        stranger = not command.is_merchant and not _opens_a_share_link(command)
        if stranger and await self._is_customer(command.chat):
            stranger = False  # a customer of a link asks after their payment: answered
        if stranger and not await self._stranger_answers.allow(command.chat):
            log.info("/%s from %s: answered this minute already", command.name, command.chat)
            return False
        asks = command.is_merchant and command.name in _ASKS_COUNTED_HERE
        # Keyed as a private chat's buttons are (`telegram:7001`): one budget for both.
        asker = issuer_id(command.chat.channel, command.sender)
        if asks and not await self._cimplify_asks.allow(asker):
            await self.say(command.chat, lambda voice: render.too_many_asks(CIMPLIFY_ASKS, voice))
            return False
        return True

    def _asks_gate(self, command: Command) -> AskGate:
        """The merchant's asks a minute, counted in the transaction that looks for the
        order's link rather than in one of their own: one transaction fewer an /invoice."""
        asker = issuer_id(command.chat.channel, command.sender)

        async def gate(tx: Tx) -> Words | None:
            if await self._cimplify_asks.allow_within(tx, asker):
                return None
            return lambda voice: render.too_many_asks(CIMPLIFY_ASKS, voice)

        return gate

    async def _is_customer(self, chat: ChatRef) -> bool:
        async with self._store.transaction() as tx:
            return bool(await tx.links.subscribed_by(chat))

    async def say(self, chat: ChatRef, words: Words) -> None:
        """Say `words` in the chat's own language, read in the transaction that queues
        them: the one that ends the command's handling, or at once outside `handle`."""
        answers = _ANSWERS.get()
        if answers is None:
            await self._queue([(chat, words)], finishing=False)
        else:
            answers.append((chat, words))

    async def _queue(self, answers: list[_Answer], finishing: bool) -> None:
        """Queue the answers; `finishing`: they end the command's handling, so the same
        transaction marks its inbox entry handled."""
        if not answers:
            return
        now = self._clock()
        async with self._store.transaction() as tx:
            messages = [
                Outgoing(chat, MessageKind.TEXT, words(await self._voices.of(tx, chat)))
                for chat, words in answers
            ]
            await tx.outbox.enqueue(messages, now)
            finished = await finish_within(tx, now, last=finishing)
        finished()
        self._on_queued()

    @property
    def voices(self) -> Voices:
        return self._voices

    async def voice_of(self, chat: ChatRef) -> Voice:
        async with self._store.transaction() as tx:
            return await self._voices.of(tx, chat)

    async def refresh(self, chat: ChatRef, link_id: str) -> str:
        """A "Refresh status" button: poll now; the words for the button's answer."""
        async with self._store.transaction() as tx:
            voice = await self._voices.of(tx, chat)
            link = await tx.links.get(link_id)
            subscribed = link is not None and any(
                sub.chat == chat for sub in await tx.subscriptions.for_link(link_id)
            )
        if link is None or not subscribed:
            return render.not_this_chats_link(voice)
        if not await self._cimplify_asks.allow(chat):
            return render.too_many_asks(CIMPLIFY_ASKS, voice)
        try:
            current = await self._current(link)
        except PaybotError as error:
            return render.explain(error, link.order_id, voice)
        return render.refreshed(current, voice)

    async def renew_button(self, chat: ChatRef, link_id: str, is_merchant: bool) -> str:
        """A "New link" button: renew the order of a link this chat holds as a merchant;
        the words for the button's answer (the new invoice follows as a message)."""
        async with self._store.transaction() as tx:
            link = await tx.links.get(link_id)
            voice = await self._voices.of(tx, chat)
            held = link is not None and any(
                sub.chat == chat and sub.role is Role.MERCHANT
                for sub in await tx.subscriptions.for_link(link_id)
            )
        if link is None or not held or not is_merchant:
            return render_follow_up.not_this_chats(voice)
        if not await self._cimplify_asks.allow(chat):
            return render.too_many_asks(CIMPLIFY_ASKS, voice)
        try:
            # The press is marked handled with the new invoice: the button's own answer
            # comes after, and a crash between loses only that toast, not a repeat.
            await self._invoices.renew(link.order_id, chat, finishes_input=True)
        except PaybotError as error:
            return render.explain(error, link.order_id, voice)
        return render_follow_up.new_link_coming(voice)

    async def _remind(self, command: Command) -> None:
        if len(command.args) != 1 or self._follow_ups is None:
            await self.say(command.chat, render_follow_up.remind_usage)
            return
        order_id = parse_order_id(command.args[0])
        await self._follow_ups.remind_now(
            order_id, command.chat, command.merchant, finishes_input=True
        )

    async def _renew(self, command: Command) -> None:
        if len(command.args) != 1:
            await self.say(command.chat, render_follow_up.renew_usage)
            return
        await self._invoices.renew(
            command.args[0], command.chat, command.merchant, finishes_input=True
        )

    async def _invoice(self, command: Command) -> None:
        if not command.args:
            await self.say(
                command.chat,
                lambda voice: f"{render.usage(voice)} {render.invoice_for_customer(voice)}",
            )
            return
        order_id = parse_order_id(command.args[0])  # checked before the number, and any request
        # People type numbers with spaces ("024 123 4567"): the rest of the line is the number.
        number = " ".join(command.args[1:])
        if number and not _NUMBER_LIKE.fullmatch(number):
            # Not a number at all ("/invoice 1001 tomorrow"): the merchant still gets the
            # invoice, and the usage line for naming a customer after it.
            await self._invoices.issue(
                order_id,
                command.chat,
                None,
                command.merchant,
                self._asks_gate(command),
                finishes_input=True,
                note=lambda voice: (
                    f"{render.not_a_number(voice)} {render.invoice_for_customer(voice)}"
                ),
            )
            return
        customer = self._customer(number) if number else None
        gate = self._asks_gate(command)
        await self._invoices.issue(
            order_id, command.chat, customer, command.merchant, gate, finishes_input=True
        )

    def _customer(self, number: str) -> ChatRef:
        if not self._reach.whatsapp:
            raise ChannelOff("whatsapp")
        return ChatRef("whatsapp", parse_phone(number, self._reach.default_region))

    async def _start(self, command: Command) -> None:
        """`/start <code>`: a customer opening a share link; plain `/start`: help."""
        if not command.args:
            await self._help(command)
            return
        if not await self._invoices.open_shared(command.args[0], command.chat, finishes_input=True):
            await self.say(command.chat, render.share_link_gone)

    async def _customer_status(self, command: Command) -> None:
        async with self._store.transaction() as tx:
            links = await tx.links.subscribed_by(command.chat)
        now = self._clock()
        await self.say(command.chat, lambda voice: render.customer_status(links[:5], now, voice))

    async def _status(self, command: Command) -> None:
        if len(command.args) != 1:
            await self.say(command.chat, render.status_usage)
            return
        order_id = parse_order_id(command.args[0])
        async with self._store.transaction() as tx:
            link = await tx.links.latest_for_order(order_id)
        if link is None:
            await self.say(command.chat, lambda voice: render.no_link(order_id, voice))
            return
        if not self._may_see(command, link):
            await self._refuse(command, order_id)
            return
        try:
            link = await self._current(link)
            stale = False
        except CimplifyUnavailable:
            stale = True
        now, customers = self._clock(), await self._customer_deliveries(link)
        await self.say(command.chat, lambda voice: _status_text(link, now, stale, customers, voice))

    async def _customer_deliveries(self, link: Link) -> list[tuple[ChatRef, DeliveryStatus | None]]:
        """Whether each customer's copy of the invoice reached them."""
        async with self._store.transaction() as tx:
            customers = [
                s.chat for s in await tx.subscriptions.for_link(link.id) if s.role is Role.CUSTOMER
            ]
            return [
                (chat, await tx.outbox.delivery_status(link.id, chat, MessageKind.INVOICE))
                for chat in customers
            ]

    async def _current(self, link: Link) -> Link:
        """The link after asking Cimplify, when it is still worth asking."""
        if link.confirmed_at is not None or link.status.is_final:
            return link
        polled = await self._tracker.poll_now(link)
        async with self._store.transaction() as tx:
            return await tx.links.get(link.id) or polled or link

    def _may_see(self, command: Command, link: Link) -> bool:
        merchant = command.merchant
        return merchant is not None and may_see(merchant, link)

    async def _refuse(self, command: Command, order_id: str) -> None:
        """Another merchant's order, to a cashier: nothing of it is said."""
        await self.say(command.chat, lambda voice: render_access.not_yours(voice, order_id))

    async def _cancel(self, command: Command) -> None:
        merchant = command.merchant
        if self._cancelling is None or merchant is None:
            await self._unknown(command)
            return
        if len(command.args) != 1:
            await self.say(command.chat, render_access.cancel_usage)
            return
        await self._cancelling.cancel(command.args[0], command.chat, merchant, finishes_input=True)

    async def _open(self, command: Command) -> None:
        now = self._clock()
        merchant = command.merchant
        issued_by = None if merchant is None else merchant.own_links_only
        async with self._store.transaction() as tx:
            links = [
                link
                for link in await tx.links.subscribed_by(command.chat, issued_by)
                if link.is_live(now)
            ]
        await self.say(command.chat, lambda voice: render.open_links(links, now, voice))

    async def _today(self, command: Command) -> None:
        if self._day is None:
            await self._unknown(command)
            return
        await self._day.today(command.chat, _own_links_only(command), finishes_input=True)

    async def _export(self, command: Command) -> None:
        if self._day is None:
            await self._unknown(command)
            return
        await self._day.export(
            command.chat, command.args, _own_links_only(command), finishes_input=True
        )

    async def _help(self, command: Command) -> None:
        if command.is_merchant:
            await self.say(command.chat, render.help_text)
            return
        setting = self._merchants_setting(command.chat.channel)

        def words(voice: Voice) -> str:
            refusal = render.not_authorized(command.sender, setting, voice)
            return render.customer_help_with_refusal(refusal, voice)

        await self.say(command.chat, words)

    async def _unknown(self, command: Command) -> None:
        await self.say(command.chat, render.unknown_command)

    async def _language(self, command: Command) -> None:
        """`/lang fr`: the chat's language from now on, answered in it. Anyone may set
        their own chat's (customers too): it is theirs, and changes nothing for others."""
        chosen = command.args[0].lower() if len(command.args) == 1 else None
        if chosen not in LANGUAGES:
            await self.say(command.chat, render.language_usage)
            return
        now = self._clock()
        async with self._store.transaction() as tx:
            await tx.chat_settings.set_language(command.chat, chosen)
            text = render.language_set(await self._voices.of(tx, command.chat))
            await tx.outbox.enqueue([Outgoing(command.chat, MessageKind.TEXT, text)], now)
            finished = await finish_within(tx, now)  # its answer is its last word
        finished()
        self._on_queued()


def _status_text(
    link: Link,
    now: datetime,
    stale: bool,
    customers: list[tuple[ChatRef, DeliveryStatus | None]],
    voice: Voice,
) -> str:
    text = render.status_summary(link, now, stale, voice)
    if customers:
        text += "\n" + render.customer_deliveries(customers, voice)
    return text


def _own_links_only(command: Command) -> str | None:
    """The `issued_by` filter of a merchant's command: a cashier's own links, or all."""
    merchant = command.merchant
    assert merchant is not None  # MERCHANT_COMMANDS reach their handlers from merchants only
    return merchant.own_links_only


def _opens_a_share_link(command: Command) -> bool:
    """A customer's first word to the bot: always answered, whoever they are."""
    return command.name == "start" and bool(command.args)


def _merchants_only(command: Command) -> bool:
    """`/status <order_id>` is a merchant's question; a bare `status` is a customer's."""
    return command.name in MERCHANT_COMMANDS or (command.name == "status" and bool(command.args))


def _order_arg(command: Command) -> str | None:
    """The order id the sender typed, if it is a valid one (for error messages)."""
    if not command.args:
        return None
    try:
        return parse_order_id(command.args[0])
    except InvalidOrderId:
        return None
