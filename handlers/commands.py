"""The conversation, whatever the channel: parse a command, call the core, answer.

Every answer is queued in the store and sent by the outbox, like any other
message, so answers share its durability and pacing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import render, render_follow_up
from bot.errors import (
    ChannelOff,
    CimplifyUnavailable,
    InvalidOrderId,
    PaybotError,
    StoreError,
)
from bot.follow_ups import FollowUps
from bot.i18n import Voice, Voices
from bot.invoices import Invoices
from bot.limits import PerKeyLimit
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
from bot.ports import Store
from bot.tracking import Tracker

log = logging.getLogger(__name__)

MERCHANT_COMMANDS = frozenset({"invoice", "open", "remind", "renew"})
ASKS_CIMPLIFY = frozenset({"invoice", "status", "renew"})  # and the Refresh status button
CIMPLIFY_ASKS = 30  # a merchant's commands that reach Cimplify, a minute
MINUTE = timedelta(minutes=1)
# What a merchant types when they mean a phone number, right or wrong: "+233 24…", "024-…".
_NUMBER_LIKE = re.compile(r"\+?[0-9][0-9 ().-]*")
NOT_A_NUMBER = "That is not a phone number, so only you got the link."


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
        follow_ups: FollowUps | None = None,
        voices: Voices | None = None,
    ) -> None:
        self._store = store
        self._invoices = invoices
        self._tracker = tracker
        self._clock = clock
        self._on_queued = on_queued
        self._merchants_setting = merchants_setting  # channel -> the setting that lists merchants
        self._reach = reach or CustomerReach()
        self._follow_ups = follow_ups
        self._voices = voices or Voices(Voice())
        # A stranger who keeps writing gets one answer a minute; a merchant's commands
        # that reach Cimplify are limited, so no chat can drive Cimplify's API hard.
        self._stranger_answers = PerKeyLimit(1, MINUTE, clock)
        self._cimplify_asks = PerKeyLimit(CIMPLIFY_ASKS, MINUTE, clock)

    async def handle(self, command: Command) -> None:
        """Answer one command. Never raises for anything a sender can type."""
        if not await self._within_limits(command):
            return
        if _merchants_only(command) and not command.is_merchant:
            setting = self._merchants_setting(command.chat.channel)
            log.info("refused /%s from %s: not a merchant", command.name, command.chat)
            await self.reply(command.chat, render.not_authorized(command.sender, setting))
            return
        handler = {
            "invoice": self._invoice,
            "status": self._status if command.is_merchant else self._customer_status,
            "open": self._open,
            "remind": self._remind,
            "renew": self._renew,
            "start": self._start,
            "help": self._help,
        }.get(command.name, self._unknown if command.is_merchant else self._help)
        try:
            await handler(command)
        except StoreError:
            raise  # not the sender's doing: the inbox keeps the command and tries again
        except PaybotError as error:
            log.info("/%s from %s: %s", command.name, command.chat, error)
            await self.reply(command.chat, render.explain(error, _order_arg(command)))

    async def _within_limits(self, command: Command) -> bool:
        """False when the command goes unanswered (a stranger answered this minute) or is
        refused (a merchant past CIMPLIFY_ASKS a minute)."""
        stranger = not command.is_merchant and not _opens_a_share_link(command)
        if stranger and await self._is_customer(command.chat):
            stranger = False  # a customer of a link asks after their payment: answered
        if stranger and not self._stranger_answers.allow(command.chat):
            log.info("/%s from %s: answered this minute already", command.name, command.chat)
            return False
        asks = command.is_merchant and command.name in ASKS_CIMPLIFY
        if asks and not self._cimplify_asks.allow(command.sender):
            await self.reply(command.chat, render.too_many_asks(CIMPLIFY_ASKS))
            return False
        return True

    async def _is_customer(self, chat: ChatRef) -> bool:
        async with self._store.transaction() as tx:
            return bool(await tx.links.subscribed_by(chat))

    async def reply(self, chat: ChatRef, text: str) -> None:
        async with self._store.transaction() as tx:
            await tx.outbox.enqueue([Outgoing(chat, MessageKind.TEXT, text)], self._clock())
        self._on_queued()

    async def refresh(self, chat: ChatRef, link_id: str) -> str:
        """A "Refresh status" button: poll now; the words for the button's answer."""
        async with self._store.transaction() as tx:
            link = await tx.links.get(link_id)
            subscribed = link is not None and any(
                sub.chat == chat for sub in await tx.subscriptions.for_link(link_id)
            )
        if link is None or not subscribed:
            return "That link is not one of this chat's."
        if not self._cimplify_asks.allow(chat):
            return render.too_many_asks(CIMPLIFY_ASKS)
        try:
            current = await self._current(link)
        except PaybotError as error:
            return render.explain(error, link.order_id)
        return f"Order {current.order_id}: {current.status_words}"

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
        if not self._cimplify_asks.allow(chat):
            return render.too_many_asks(CIMPLIFY_ASKS)
        try:
            await self._invoices.renew(link.order_id, chat)
        except PaybotError as error:
            return render.explain(error, link.order_id)
        return render_follow_up.new_link_coming(voice)

    async def _remind(self, command: Command) -> None:
        if len(command.args) != 1 or self._follow_ups is None:
            await self._usage(command.chat, render_follow_up.remind_usage)
            return
        await self._follow_ups.remind_now(parse_order_id(command.args[0]), command.chat)

    async def _renew(self, command: Command) -> None:
        if len(command.args) != 1:
            await self._usage(command.chat, render_follow_up.renew_usage)
            return
        await self._invoices.renew(command.args[0], command.chat)

    async def _usage(self, chat: ChatRef, words: Callable[[Voice], str]) -> None:
        async with self._store.transaction() as tx:
            voice = await self._voices.of(tx, chat)
        await self.reply(chat, words(voice))

    async def _invoice(self, command: Command) -> None:
        if not command.args:
            await self.reply(command.chat, f"{render.USAGE} {render.INVOICE_FOR_CUSTOMER}")
            return
        order_id = parse_order_id(command.args[0])  # checked before the number, and any request
        # People type numbers with spaces ("024 123 4567"): the rest of the line is the number.
        number = " ".join(command.args[1:])
        if number and not _NUMBER_LIKE.fullmatch(number):
            # Not a number at all ("/invoice 1001 tomorrow"): the merchant still gets the
            # invoice, and the usage line for naming a customer.
            await self._invoices.issue(order_id, command.chat)
            await self.reply(command.chat, f"{NOT_A_NUMBER} {render.INVOICE_FOR_CUSTOMER}")
            return
        customer = self._customer(number) if number else None
        await self._invoices.issue(order_id, command.chat, customer)

    def _customer(self, number: str) -> ChatRef:
        if not self._reach.whatsapp:
            raise ChannelOff("whatsapp")
        return ChatRef("whatsapp", parse_phone(number, self._reach.default_region))

    async def _start(self, command: Command) -> None:
        """`/start <code>`: a customer opening a share link; plain `/start`: help."""
        if not command.args:
            await self._help(command)
            return
        if not await self._invoices.open_shared(command.args[0], command.chat):
            await self.reply(
                command.chat,
                "That payment link is not valid any more. Ask the business for a new one.",
            )

    async def _customer_status(self, command: Command) -> None:
        async with self._store.transaction() as tx:
            links = await tx.links.subscribed_by(command.chat)
        await self.reply(command.chat, render.customer_status(links[:5], self._clock()))

    async def _status(self, command: Command) -> None:
        if len(command.args) != 1:
            await self.reply(command.chat, "Type /status <order_id>, for example /status 1001.")
            return
        order_id = parse_order_id(command.args[0])
        async with self._store.transaction() as tx:
            link = await tx.links.latest_for_order(order_id)
        if link is None:
            await self.reply(command.chat, render.no_link(order_id))
            return
        try:
            link = await self._current(link)
            stale = False
        except CimplifyUnavailable:
            stale = True
        text = render.status_summary(link, self._clock(), stale)
        customers = await self._customer_deliveries(link)
        if customers:
            text += "\n" + render.customer_deliveries(customers)
        await self.reply(command.chat, text)

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

    async def _open(self, command: Command) -> None:
        now = self._clock()
        async with self._store.transaction() as tx:
            links = [
                link for link in await tx.links.subscribed_by(command.chat) if link.is_live(now)
            ]
        await self.reply(command.chat, render.open_links(links, now))

    async def _help(self, command: Command) -> None:
        if command.is_merchant:
            await self.reply(command.chat, render.HELP)
            return
        setting = self._merchants_setting(command.chat.channel)
        refusal = render.not_authorized(command.sender, setting)
        await self.reply(command.chat, f"{render.customer_help()}\n\nMerchants: {refusal}")

    async def _unknown(self, command: Command) -> None:
        await self.reply(command.chat, render.unknown_command())


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
