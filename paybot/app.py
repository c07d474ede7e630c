"""The one composition root: settings in, running parts out.

Nothing is built at import time. Tests, the demo and `paybot run` all build
the bot through `Paybot`, with the same wiring; what differs is what they pass.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.access import issuer_id
from bot.cancelling import Cancelling
from bot.cimplify import CimplifyClient, WebhookVerifier
from bot.config import Settings
from bot.day import DailyDigest, MerchantDay
from bot.deliveries import Deliveries
from bot.follow_ups import FollowUpPolicy, FollowUps
from bot.housekeeping import Housekeeping
from bot.i18n import Voice, Voices, load_catalogues
from bot.inbox import Handler, InboxWorker, Intake, Leases
from bot.invoices import Invoices
from bot.models import ChatRef, utcnow
from bot.outbox import Messenger, Outbox
from bot.payments import CIMPLIFY_EVENT, Payments
from bot.readiness import Readiness
from bot.roles import POLLER, SENDER, TELEGRAM_POLLING, RoleKeeper
from bot.telemetry import Telemetry
from bot.tracking import PollPolicy, Tracker
from handlers.commands import Conversation, CustomerReach
from handlers.metrics import PrometheusMeter
from handlers.serving import HttpServer
from handlers.telegram import TelegramChannel, TelegramMessenger
from handlers.telegram_polling import TELEGRAM_UPDATE
from handlers.telegram_webhook import WebhookTarget
from handlers.web import WebRoutes
from handlers.whatsapp import WHATSAPP_MESSAGE, WHATSAPP_RECEIPT, WhatsAppChannel
from sandbox import Sandbox, SandboxServer
from storage import store_for

log = logging.getLogger(__name__)

HANDLING_GRACE = 5.0  # seconds for inputs in hand when paybot stops; the rest wait stored
MERCHANT_SETTINGS = {"telegram": "TELEGRAM_MERCHANTS", "whatsapp": "WHATSAPP_MERCHANTS"}


@dataclass
class Tuning:
    """What tests and the demo may change; the defaults are production's."""

    clock: Callable[[], datetime] = utcnow
    poll_policy: PollPolicy = field(default_factory=PollPolicy)
    per_chat_gap: float = 1.0  # seconds between two messages to one chat
    overall_rate: float | None = None  # messages a second, all chats; None: PAYBOT_SEND_RATE
    cimplify_retry_budget: float = 20.0
    cimplify_timeout: float = 10.0
    messengers: Mapping[str, Messenger] = field(default_factory=dict)
    leases: Leases = field(default_factory=Leases)
    digest_every: float = 30.0  # seconds between looks at whether the daily digest is due


def start_loops(jobs: Mapping[str, Coroutine[Any, Any, None]]) -> dict[str, asyncio.Task[None]]:
    """Each background loop as a task, by name.

    A loop waits out a store that is unavailable and goes on; nothing else should end
    one. One that an error ends all the same is logged at once, with its traceback, as
    the bug it is (`/readyz` names it too), rather than kept in its task unseen.
    """
    tasks = {name: asyncio.create_task(job, name=name) for name, job in jobs.items()}
    for task in tasks.values():
        task.add_done_callback(_log_a_loop_ended_by_an_error)
    return tasks


def _log_a_loop_ended_by_an_error(task: asyncio.Task[None]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    log.critical(
        "the %s loop stopped on an unexpected error, a bug (/readyz reports it)",
        task.get_name(),
        exc_info=task.exception(),
    )


class Paybot:
    """Every part of a running paybot, started and stopped in order."""

    def __init__(self, settings: Settings, tuning: Tuning | None = None) -> None:
        self.settings = settings
        self.tuning = tuning or Tuning()
        self.store = store_for(settings.database)
        self.sandbox: Sandbox | None = None
        # Names this process's claims in the store, so its heartbeat keeps them alive.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._stack = contextlib.AsyncExitStack()
        # One registry a paybot (handlers/metrics.py): tests run many in one process.
        channels = [*self.tuning.messengers]
        if settings.telegram_bot_token is not None:
            channels.append("telegram")
        if settings.whatsapp_enabled:
            channels.append("whatsapp")
        self.meter = PrometheusMeter(channels)
        self.telemetry = Telemetry(self.meter)
        self.background: dict[str, asyncio.Task[None]] = {}  # name -> loop, once started

    async def start(self) -> None:
        """Start every part; each one started is stopped by `stop`, in reverse order."""
        await self.store.open()
        self._stack.push_async_callback(self.store.close)
        base, key, webhook_secret = await self._cimplify_endpoint()
        self.client = CimplifyClient(
            base,
            key,
            retry_budget=self.tuning.cimplify_retry_budget,
            timeout=self.tuning.cimplify_timeout,
        )
        self._stack.push_async_callback(self.client.aclose)
        self._build_core()
        self.web = WebRoutes(
            self.store,
            WebhookVerifier(webhook_secret),
            self.intake,
            self.telegram,
            self.whatsapp,
            self.readiness,
            self.meter,
            self.tuning.clock,
        )
        await self._listen()
        # Channels close after the outbox stops (exits run in reverse order): it sends with them.
        if self.whatsapp is not None:
            self._stack.push_async_callback(self.whatsapp.aclose)
        if self.telegram is not None:
            self._stack.push_async_callback(self.telegram.close)
        await self._take_roles()
        # The digest's loop runs only when PAYBOT_DIGEST_AT is a time: readiness counts
        # every loop that has ended as a fault.
        digest = {"digest": self.digest.run()} if self.settings.digest_at is not None else {}
        self._run_in_background(
            outbox=self.outbox.run(),
            tracker=self.tracker.run(),
            inbox=self.inbox.run(),
            housekeeping=self.housekeeping.run(),
            follow_ups=self.follow_ups.run(),
            roles=self.roles.run(),
            wakeups=self.store.watch(self._woken),
            **digest,
        )
        # At stop, in this order: no more input (webhooks, getUpdates), then what is stored
        # and due is handled, then due messages go out, then the second of the last ones
        # passes (another sender starts with that second free), then the roles are given
        # up for another process to take at once, then the loops are cancelled.
        self._stack.push_async_callback(self.roles.release)
        self._stack.push_async_callback(self.outbox.last_second_over)
        self._stack.push_async_callback(self.outbox.flush)
        self._stack.push_async_callback(self.inbox.drain, HANDLING_GRACE)
        self._stack.push_async_callback(self._stop_taking_webhooks)
        if self.telegram is not None:
            self._stack.push_async_callback(self.telegram.stop_receiving)
            await self.telegram.start()
        log.info("paybot is up: %s", self.http.url)

    def _digest_scope(self, chat: ChatRef) -> str | None:
        """The `issued_by` filter of a merchant chat's digest: a cashier's own chat (its id
        is theirs, on both channels) covers the links they issued; any other, every link."""
        settings = self.settings
        cashiers: set[str] = {str(user) for user in settings.telegram_cashiers}
        if chat.channel == "whatsapp":
            cashiers = set(settings.whatsapp_cashiers)
        return issuer_id(chat.channel, chat.chat_id) if chat.chat_id in cashiers else None

    def _build_core(self) -> None:
        """The parts that do no I/O of their own until asked."""
        clock, policy = self.tuning.clock, self.tuning.poll_policy
        telemetry = self.telemetry
        self.intake = Intake(self.store, clock, self._stored, telemetry)
        # Each chat's language (PAYBOT_LANGUAGE until it picks one), in PAYBOT_TIMEZONE.
        load_catalogues()
        self.voices = Voices(Voice(self.settings.language, self.settings.timezone))
        voices = self.voices
        follow_up_policy = self._follow_up_policy()
        self.payments = Payments(
            self.store,
            clock,
            self._queued,
            telemetry,
            voices,
            follow_up_policy.failed_reminder,
            lambda: self.follow_ups.wake(),
        )
        self.follow_ups = FollowUps(
            self.store, clock, voices, follow_up_policy, self._queued, self.holder
        )
        self.deliveries = Deliveries(self.store, clock, self._queued, voices)
        rate = self.settings.poll_rate
        self.tracker = Tracker(
            self.store, self.client, self.payments, clock, rate, policy, telemetry
        )
        self.invoices = Invoices(
            self.store,
            self.client,
            clock,
            policy,
            self._queued,
            self.holder,
            self.tuning.leases.claim,
            follow_up_policy,
            voices,
            self._scheduled,
            lambda tx, now, queued: self.outbox.claim_within(tx, now, queued),
        )
        reach = CustomerReach(self.settings.whatsapp_enabled, self.settings.whatsapp_default_region)
        self.cancelling = Cancelling(self.store, self.client, clock, self._queued, voices)
        zone = self.settings.timezone
        self.day = MerchantDay(self.store, clock, voices, zone, self._queued)
        self.digest = DailyDigest(
            self.store,
            clock,
            voices,
            zone,
            self.settings.digest_at,
            self._queued,
            self.tuning.digest_every,
            self._digest_scope,
        )
        self.conversation = Conversation(
            self.store,
            self.invoices,
            self.tracker,
            clock,
            self._queued,
            MERCHANT_SETTINGS.__getitem__,
            reach,
            self.cancelling,
            voices,
            self.day,
            self.follow_ups,
        )
        self.telegram = self._telegram_channel()
        self.whatsapp = self._whatsapp_channel()
        self.outbox = Outbox(
            self.store,
            self._messengers(),
            clock,
            self.tuning.per_chat_gap,
            self.tuning.overall_rate or self.settings.send_rate,
            self.holder,
            self.tuning.leases,
            telemetry,
            voices,
        )
        self.readiness = Readiness(self.store, clock, self.holder, lambda: self.background)
        self._stack.push_async_callback(self.readiness.close)
        self.inbox = InboxWorker(
            self.store, clock, self.holder, self._inbox_handlers(), self.tuning.leases
        )
        self.intake.hand_over_to(self.inbox)
        self.housekeeping = Housekeeping(self.store, clock, self.settings.retention)

    def _follow_up_policy(self) -> FollowUpPolicy:
        s = self.settings
        return FollowUpPolicy(
            reminders=s.reminders,
            failed_reminder=s.failed_reminder,
            expiry_warning=s.expiry_warning,
            reminder_template=s.twilio_reminder_content_sid is not None,
        )

    def _inbox_handlers(self) -> dict[str, Handler]:
        """Which part handles each kind of stored input."""
        handlers: dict[str, Handler] = {CIMPLIFY_EVENT: self.payments.handle_event}
        if self.telegram is not None:
            handlers[TELEGRAM_UPDATE] = self.telegram.handle_update
        if self.whatsapp is not None:
            handlers[WHATSAPP_MESSAGE] = self.whatsapp.handle_message
            handlers[WHATSAPP_RECEIPT] = self.whatsapp.handle_receipt
        return handlers

    async def stop(self) -> None:
        """Stop taking work, finish what is in flight, close everything that started."""
        await self._stack.aclose()

    def _whatsapp_channel(self) -> WhatsAppChannel | None:
        if not self.settings.whatsapp_enabled:
            return None
        return WhatsAppChannel(
            self.settings,
            self.store,
            self.conversation,
            self.deliveries,
            self.tuning.clock,
            self.intake,
        )

    def _messengers(self) -> dict[str, Messenger]:
        messengers = dict(self.tuning.messengers)
        if self.telegram is not None:
            messengers["telegram"] = TelegramMessenger(self.telegram)
        if self.whatsapp is not None:
            messengers["whatsapp"] = self.whatsapp.messenger
        return messengers

    def _run_in_background(self, **jobs: Coroutine[Any, Any, None]) -> None:
        self.background = start_loops(jobs)
        tasks = list(self.background.values())

        async def cancel() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._stack.push_async_callback(cancel)

    async def _cimplify_endpoint(self) -> tuple[str, str, str]:
        """Where Cimplify is: the configured one, or an embedded sandbox started now."""
        s = self.settings
        if s.cimplify_api_base and s.cimplify_secret_key and s.cimplify_webhook_secret:
            return (
                s.cimplify_api_base,
                s.cimplify_secret_key.reveal(),
                s.cimplify_webhook_secret.reveal(),
            )
        key = "sk_sandbox_" + secrets.token_urlsafe(24)
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.sandbox = Sandbox(secret_key=key, webhook_secret=webhook_secret)
        server = SandboxServer(self.sandbox, host="127.0.0.1", port=0)
        await server.start()
        self._stack.push_async_callback(server.stop)
        self._stack.push_async_callback(self.sandbox.close)
        log.info("embedded Cimplify sandbox at %s", server.url)
        return server.url, key, webhook_secret

    def _telegram_channel(self) -> TelegramChannel | None:
        token = self.settings.telegram_bot_token
        if token is None:
            return None
        return TelegramChannel(
            token.reveal(),
            self.settings.telegram_api_base,
            self.settings.telegram_merchants,
            self.conversation,
            self.intake.store_many,
            self._telegram_webhook(),
            cashiers=self.settings.telegram_cashiers,
        )

    def _telegram_webhook(self) -> WebhookTarget | None:
        """Where Telegram posts updates in webhook mode; None when the bot polls."""
        webhook_secret = self.settings.telegram_webhook_secret
        if self.settings.telegram_mode != "webhook" or webhook_secret is None:
            return None
        return WebhookTarget(self.settings.public_url, webhook_secret.reveal())

    async def _listen(self) -> None:
        self.http = HttpServer(self.web.app(), self.settings.http_host, self.settings.http_port)
        await self.http.start()
        # On exit the server stops taking webhooks first, then those being applied finish.
        self._stack.push_async_callback(self.web.drain)
        self._stack.push_async_callback(self.http.stop)
        if self.sandbox is not None:
            # The embedded sandbox delivers to this very process over loopback.
            self.sandbox.webhook_url = f"{self.http.url}/webhooks/cimplify"

    async def _stop_taking_webhooks(self) -> None:
        """Refuse new webhooks (their senders deliver them again, to another instance or
        after the restart) and finish storing those already in."""
        await self.http.stop()
        await self.web.drain()

    async def _take_roles(self) -> None:
        """Which of the one-process-at-a-time work is this process's (bot/roles.py)."""
        roles = [SENDER, POLLER]
        polling = self.telegram.polling if self.telegram is not None else None
        if polling is not None:  # None in webhook mode: nobody calls getUpdates
            roles.append(TELEGRAM_POLLING)
        self.roles = RoleKeeper(
            self.store,
            self.tuning.clock,
            self.holder,
            roles,
            self.tuning.leases.claim,
            self._gained,
        )
        self.outbox.may_send = lambda: self.roles.holds(SENDER)
        self.tracker.may_poll = lambda: self.roles.holds(POLLER)
        if polling is not None:
            polling.seconds_held = lambda: self.roles.seconds_left(TELEGRAM_POLLING)
        await self.roles.renew()  # alone, this process has them all from the start

    def _gained(self, role: str) -> None:
        {SENDER: self.outbox.wake, POLLER: self.tracker.wake}.get(role, lambda: None)()

    def _woken(self, topic: str) -> None:
        """Another process stored work: the part that acts on it looks now."""
        {
            "inbox": self.inbox.wake,
            "outbox": self.outbox.wake,
            "polls": self.tracker.wake,
            "follow_ups": self.follow_ups.wake,
        }.get(topic, lambda: None)()

    def _queued(self) -> None:
        self.outbox.wake()

    def _stored(self) -> None:
        self.inbox.wake()

    def _scheduled(self, poll_at: datetime, follow_up_at: datetime | None) -> None:
        """A new link: the poller and the follow-ups look at once only for work due
        before their next look (a first poll is seconds away, a reminder an hour)."""
        self.tracker.wake(poll_at)
        if follow_up_at is not None:
            self.follow_ups.wake(follow_up_at)
