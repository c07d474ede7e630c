"""The one composition root: settings in, running parts out.

Nothing is built at import time. Tests, the demo and `paybot run` all build
the bot through `Paybot`, with the same wiring; what differs is what they pass.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.cimplify import CimplifyClient, WebhookVerifier
from bot.config import Settings
from bot.invoices import Invoices
from bot.models import utcnow
from bot.outbox import Messenger, Outbox
from bot.payments import Payments
from bot.tracking import PollPolicy, Tracker
from handlers.commands import Conversation
from handlers.serving import HttpServer
from handlers.telegram import TelegramChannel, TelegramMessenger
from handlers.web import WebRoutes
from sandbox import Sandbox, SandboxServer
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

MERCHANT_SETTINGS = {"telegram": "TELEGRAM_MERCHANTS", "whatsapp": "WHATSAPP_MERCHANTS"}


@dataclass
class Tuning:
    """What tests and the demo may change; the defaults are production's."""

    clock: Callable[[], datetime] = utcnow
    poll_policy: PollPolicy = field(default_factory=PollPolicy)
    per_chat_gap: float = 1.0  # seconds between two messages to one chat
    overall_rate: float = 25.0  # messages a second, all chats together
    cimplify_retry_budget: float = 20.0
    cimplify_timeout: float = 10.0
    messengers: Mapping[str, Messenger] = field(default_factory=dict)


class Paybot:
    """Every part of a running paybot, started and stopped in order."""

    def __init__(self, settings: Settings, tuning: Tuning | None = None) -> None:
        self.settings = settings
        self.tuning = tuning or Tuning()
        self.store = SqliteStore(settings.database)
        self.sandbox: Sandbox | None = None
        self._sandbox_server: SandboxServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        clock = self.tuning.clock
        await self.store.open()
        base, key, webhook_secret = await self._cimplify_endpoint()
        self.client = CimplifyClient(
            base,
            key,
            retry_budget=self.tuning.cimplify_retry_budget,
            timeout=self.tuning.cimplify_timeout,
        )
        self.payments = Payments(self.store, clock, self._queued)
        self.tracker = Tracker(
            self.store,
            self.client,
            self.payments,
            clock,
            self.settings.poll_rate,
            self.tuning.poll_policy,
        )
        self.invoices = Invoices(
            self.store, self.client, clock, self.tuning.poll_policy, self._queued_and_tracked
        )
        self.conversation = Conversation(
            self.store,
            self.invoices,
            self.tracker,
            clock,
            self._queued,
            MERCHANT_SETTINGS.__getitem__,
        )
        self.telegram = self._telegram_channel()
        messengers = dict(self.tuning.messengers)
        if self.telegram is not None:
            messengers["telegram"] = TelegramMessenger(self.telegram)
        self.outbox = Outbox(
            self.store, messengers, clock, self.tuning.per_chat_gap, self.tuning.overall_rate
        )
        self.web = WebRoutes(
            self.store, WebhookVerifier(webhook_secret), self.payments, clock, self.telegram
        )
        await self._listen()
        await self.payments.apply_pending_events()  # acknowledged before a crash, not applied
        self._tasks = [
            asyncio.create_task(self.outbox.run(), name="outbox"),
            asyncio.create_task(self.tracker.run(), name="tracker"),
        ]
        if self.telegram is not None:
            await self.telegram.start()
        log.info("paybot is up: %s", self.http.url)

    async def stop(self) -> None:
        """Stop taking work, finish what is in flight, close everything."""
        if self.telegram is not None:
            await self.telegram.stop()
        await self.http.stop()
        await self.web.drain()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()
        if self._sandbox_server is not None and self.sandbox is not None:
            await self.sandbox.close()
            await self._sandbox_server.stop()
        await self.store.close()

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
        self._sandbox_server = SandboxServer(self.sandbox, host="127.0.0.1", port=0)
        await self._sandbox_server.start()
        log.info("embedded Cimplify sandbox at %s", self._sandbox_server.url)
        return self._sandbox_server.url, key, webhook_secret

    def _telegram_channel(self) -> TelegramChannel | None:
        token = self.settings.telegram_bot_token
        if token is None:
            return None
        return TelegramChannel(
            token.reveal(),
            self.settings.telegram_api_base,
            self.settings.telegram_merchants,
            self.conversation,
        )

    async def _listen(self) -> None:
        self.http = HttpServer(self.web.app(), self.settings.http_host, self.settings.http_port)
        await self.http.start()
        if self.sandbox is not None:
            # The embedded sandbox delivers to this very process over loopback.
            self.sandbox.webhook_url = f"{self.http.url}/webhooks/cimplify"

    def _queued(self) -> None:
        self.outbox.wake()

    def _queued_and_tracked(self) -> None:
        self.outbox.wake()
        self.tracker.wake()
