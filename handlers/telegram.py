"""python-telegram-bot glue: updates in, messages and edits out.

Nothing here decides anything: an update becomes a `Command` for
handlers.commands, and an outbox `Delivery` becomes one Bot API call. Updates,
long-polled (handlers.telegram_polling) or posted to the webhook route, are
stored in the inbox first; the inbox hands each back to `handle_update`. Which
of the two a bot uses is TELEGRAM_MODE: it never does both.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from contextvars import ContextVar
from datetime import timedelta
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import render
from bot.access import merchant_role
from bot.errors import (
    ChatMoved,
    PermanentDelivery,
    RetryLater,
    StoreError,
    TransientDelivery,
)
from bot.follow_up_messages import RENEW_ACTION
from bot.i18n import LANGUAGES, Voice
from bot.invoices import qr_png
from bot.models import Button, ChatRef, InboxEntry, InboxItem, MessageKind, Role
from bot.outbox import Delivery
from handlers.commands import Command, Conversation
from handlers.telegram_polling import ALLOWED_UPDATES, StoreBatch, UpdatePolling, update_entry
from handlers.telegram_request import bot_api_request
from handlers.telegram_webhook import UpdateWebhook, WebhookTarget, update_json

log = logging.getLogger(__name__)

CHANNEL = "telegram"
# A slow Cimplify must not hold up everyone else's commands.
CONCURRENT_UPDATES = 64
COMMANDS = (
    "invoice",
    "status",
    "open",
    "cancel",
    "remind",
    "renew",
    "start",
    "help",
    "today",
    "export",
    "lang",
)
# The store's failures while the update in hand was handled. PTB logs and drops what a
# handler raises; these are taken from it and raised to the inbox instead, which keeps
# the update and handles it again once the store works (a lost command otherwise).
_STORE_FAILURES: ContextVar[list[StoreError] | None] = ContextVar("store_failures", default=None)


class TelegramChannel:
    """Updates in (long polling, or posts to the webhook route when `webhook` is given),
    Bot API calls out, over one PTB Application."""

    def __init__(
        self,
        token: str,
        api_base: str,
        merchants: frozenset[int],
        conversation: Conversation,
        store_batch: StoreBatch,
        webhook: WebhookTarget | None = None,
        cashiers: frozenset[int] = frozenset(),
    ) -> None:
        # PTB 22 warns on every time period read as int (RetryAfter's among them) unless
        # this opt-in to timedelta values is set; paybot reads either.
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        self._merchants = merchants
        self._cashiers = cashiers  # of the merchants, those listed with :cashier
        self._conversation = conversation
        self.app = _build_application(token, api_base)
        for name in COMMANDS:
            self.app.add_handler(CommandHandler(name, self._on_command))
        self.app.add_handler(MessageHandler(filters.COMMAND, self._on_command))
        self.app.add_handler(CallbackQueryHandler(self._on_button, pattern=r"^refresh:"))
        self.app.add_handler(CallbackQueryHandler(self._on_renew, pattern=f"^{RENEW_ACTION}"))
        self.app.add_error_handler(_on_error)
        self.polling = UpdatePolling(self.app.bot, store_batch) if webhook is None else None
        self.webhook = (
            None if webhook is None else UpdateWebhook(self.app.bot, webhook, ALLOWED_UPDATES)
        )

    async def start(self) -> None:
        await self.app.initialize()
        await self.app.start()
        try:
            await self._set_menus()
        except TelegramError as error:  # a menu is a nicety; polling matters
            log.warning("telegram: could not set the command menu: %s", error)
        if self.webhook is not None:
            await self.webhook.register()
        if self.polling is not None:
            await self.polling.start()

    async def _set_menus(self) -> None:
        """The command menu in the default language, and in each language for users whose
        Telegram is set to it (the menu is the user's, not the chat's)."""
        voices = self._conversation.voices
        await self.app.bot.set_my_commands(_menu(voices.default))
        for language in LANGUAGES:
            menu = _menu(voices.speaking(language))
            await self.app.bot.set_my_commands(menu, language_code=language)

    async def stop_receiving(self) -> None:
        """No more updates; the bot can still send (the outbox may be finishing)."""
        if self.polling is not None:
            await self.polling.stop_fetching()
        if self.webhook is not None:
            await self.webhook.stop()
        if self.app.running:
            await self.app.stop()

    async def close(self) -> None:
        """Close the bot's HTTP sessions: after the outbox has stopped."""
        await self.stop_receiving()
        await self.app.shutdown()

    @property
    def takes_webhooks(self) -> bool:
        """Whether updates come posted to /webhooks/telegram (TELEGRAM_MODE=webhook)."""
        return self.webhook is not None

    def secret_matches(self, header: str | None) -> bool:
        """X-Telegram-Bot-Api-Secret-Token check, in constant time; never in polling mode."""
        return self.webhook is not None and self.webhook.secret_matches(header)

    def webhook_entry(self, body: bytes) -> InboxEntry:
        """A body posted to /webhooks/telegram, as the inbox stores it.

        ValueError when `body` is not an Update.
        """
        data = update_json(body)
        try:
            return update_entry(self._update(data))
        except Exception as error:  # PTB reads fields unchecked: junk raises anything
            raise ValueError(f"not an update: {type(error).__name__}") from None

    async def handle_update(self, item: InboxItem) -> None:
        """The inbox's handler for a stored update. Raises the StoreError that cut its
        handling short; handlers' other errors are logged and stay inside PTB."""
        failures: list[StoreError] = []
        reset = _STORE_FAILURES.set(failures)
        try:
            await self.app.process_update(self._update(json.loads(item.entry.body)))
        finally:
            _STORE_FAILURES.reset(reset)
        if failures:
            raise failures[0]

    def _update(self, data: object) -> Update:
        update = Update.de_json(data, self.app.bot)  # type: ignore[arg-type]
        if not isinstance(update, Update) or type(update.update_id) is not int:
            raise ValueError("not an update")
        return update

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or not isinstance(message.text, str) or not message.text:
            return
        ids: tuple[object, ...] = (message.chat_id, user.id)
        if not all(type(i) is int for i in ids):  # bool is an int, and not an id
            return  # a malformed webhook update: PTB does not check the JSON's types
        words = message.text.split()
        name, _, addressee = words[0].lstrip("/").partition("@")
        if addressee and addressee.lower() != (self.app.bot.username or "").lower():
            return  # /status@other_bot in a group: another bot's command
        name = name.lower()
        await self._conversation.handle(
            Command(
                chat=ChatRef(CHANNEL, str(message.chat_id)),
                sender=str(user.id),
                is_merchant=user.id in self._merchants,
                name=name,
                args=tuple(words[1:]),
                role=merchant_role(user.id, self._merchants, self._cashiers),
            )
        )

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None or not isinstance(query.message, Message):
            return
        link_id = query.data.removeprefix("refresh:")
        chat = ChatRef(CHANNEL, str(query.message.chat_id))
        answer = await self._conversation.refresh(chat, link_id)
        await query.answer(answer[:200])

    async def _on_renew(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The New link button of an expiry warning: only a merchant may renew."""
        query = update.callback_query
        if query is None or query.data is None or not isinstance(query.message, Message):
            return
        link_id = query.data.removeprefix(RENEW_ACTION)
        chat = ChatRef(CHANNEL, str(query.message.chat_id))
        is_merchant = query.from_user.id in self._merchants
        answer = await self._conversation.renew_button(chat, link_id, is_merchant)
        await query.answer(answer[:200])


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB's error handler: a StoreError goes back to `handle_update`; anything else is
    logged as the bug it is."""
    failures, error = _STORE_FAILURES.get(), context.error
    if isinstance(error, StoreError) and failures is not None:
        failures.append(error)
        return
    log.error("telegram: handling an update failed", exc_info=error)


def _menu(voice: Voice) -> list[BotCommand]:
    return [BotCommand(name, words) for name, words in render.command_menu(voice)]


def _build_application(token: str, api_base: str) -> Application:  # type: ignore[type-arg]
    return (
        Application.builder()
        .token(token)
        .base_url(f"{api_base}/bot")
        .base_file_url(f"{api_base}/file/bot")
        .request(bot_api_request())  # bodies written whole: handlers/telegram_request.py
        .concurrent_updates(CONCURRENT_UPDATES)  # for updates posted to the webhook route
        .updater(None)  # handlers.telegram_polling polls instead
        .build()
    )


class TelegramMessenger:
    """The outbox's sending side for Telegram."""

    def __init__(self, channel: TelegramChannel) -> None:
        self._channel = channel

    def _caption(self, delivery: Delivery) -> str:
        """The invoice caption; a merchant's also carries the link to give the customer."""
        link, text = delivery.link, delivery.message.text
        if link is None or delivery.role is not Role.MERCHANT or not link.share_code:
            return text
        if link.confirmed_at is not None or link.status.is_final:
            return text
        share = f"https://t.me/{self._channel.app.bot.username}?start={link.share_code}"
        return f"{text}\n\n{render.for_the_customer_on_telegram(share, delivery.voice)}"

    async def deliver(self, delivery: Delivery) -> str | None:
        try:
            return await self._call(delivery)
        except RetryAfter as error:
            raise RetryLater(_seconds(error)) from error
        except ChatMigrated as error:  # a group became a supergroup, with a new id
            raise ChatMoved(str(error.new_chat_id)) from error
        except Forbidden as error:  # the user blocked the bot, or it was removed from the group
            raise PermanentDelivery(error.message) from error
        except BadRequest as error:
            if "message is not modified" in error.message.lower():
                return None  # the caption already says this
            raise PermanentDelivery(error.message) from error
        except NetworkError as error:  # TimedOut is a NetworkError
            raise TransientDelivery(str(error)) from error

    async def _call(self, delivery: Delivery) -> str | None:
        bot = self._channel.app.bot
        message = delivery.message
        chat_id = int(message.chat.chat_id)
        markup = _keyboard(message.buttons)
        if message.kind is MessageKind.INVOICE:
            if delivery.link is None:
                raise PermanentDelivery("the invoice's link is gone")
            sent = await bot.send_photo(
                chat_id,
                photo=qr_png(delivery.link.url),
                caption=self._caption(delivery),
                reply_markup=markup,
            )
            return str(sent.message_id)
        if message.kind is MessageKind.CAPTION:
            await bot.edit_message_caption(
                chat_id=chat_id,
                message_id=int(delivery.message_id or 0),
                caption=self._caption(delivery),
                reply_markup=markup,
            )
            return None
        if message.attachment is not None:
            return await self._send_document(delivery, chat_id)
        sent = await bot.send_message(chat_id, message.text, reply_markup=markup)
        return str(sent.message_id)

    async def _send_document(self, delivery: Delivery, chat_id: int) -> str:
        export = delivery.attachment
        if export is None:
            raise PermanentDelivery("the export has expired before it could be sent")
        sent = await self._channel.app.bot.send_document(
            chat_id,
            document=InputFile(export.content, filename=export.filename),
            caption=delivery.message.text,
        )
        return str(sent.message_id)


def _keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    row = [
        InlineKeyboardButton(b.label, url=b.url)
        if b.url
        else InlineKeyboardButton(b.label, callback_data=b.action)
        for b in buttons
        if b.url is None or _public(b.url)
    ]
    return InlineKeyboardMarkup([row]) if row else None


def _public(url: str) -> bool:
    """Telegram refuses URL buttons to local addresses, failing the whole message.

    The embedded sandbox's links are such addresses; the link is in the text anyway.
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a name
    return address.is_global


def _seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
