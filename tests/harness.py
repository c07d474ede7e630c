"""A whole paybot on loopback: the real bot, the fake Bot API, the sandbox as Cimplify.

The real python-telegram-bot talks to FakeBotApi over HTTP, the real httpx
client talks to the sandbox over HTTP, and the sandbox delivers signed webhooks
to paybot's own server. Nothing of paybot's is patched.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bot.config import Settings
from bot.tracking import PollPolicy
from paybot.app import Paybot, Tuning
from sandbox import Sandbox, SandboxServer
from tests.fakes.bot_api import FakeBotApi, SentMessage
from tests.fakes.twilio_api import FakeTwilio, TwilioMessage

MERCHANT = 1001  # a Telegram user id listed in TELEGRAM_MERCHANTS
OTHER_MERCHANT = 1002
STRANGER = 4242
BOT_TOKEN = "123456:TEST-token_abcdefghijklmnop"
SECRET_KEY = "sk_test_harness_0123456789abcdef"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"harness-webhook-secret-32-bytes!").decode()

PUBLIC_LINK_BASE = "https://pay.sandbox.example"
PUBLIC_URL = "https://paybot.example"  # PAYBOT_PUBLIC_URL when WhatsApp is on
WA_MERCHANT = "+233200000001"  # in WHATSAPP_MERCHANTS

QUICK = timedelta(milliseconds=50)
QUICK_POLLS = PollPolicy(
    active=QUICK,
    authorizing=QUICK,
    answer_time=timedelta(0),
    fresh=QUICK,
    idle_min=QUICK * 2,
    idle_max=QUICK * 10,
    jitter=0.0,
    moving_jitter=0.0,
)


def quick_tuning(**changes: Any) -> Tuning:
    defaults: dict[str, Any] = {
        "poll_policy": QUICK_POLLS,
        "per_chat_gap": 0.0,
        "cimplify_retry_budget": 2.0,
        "cimplify_timeout": 0.5,
    }
    return Tuning(**(defaults | changes))


@dataclass
class World:
    fake: FakeBotApi
    sandbox: Sandbox
    settings: Settings
    tuning: Tuning
    paybot: Paybot
    http: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)
    twilio: FakeTwilio | None = None

    @property
    def local_url(self) -> str:
        """Where paybot really listens; PAYBOT_PUBLIC_URL is what Twilio is told."""
        return self.paybot.http.url

    async def whatsapp(self, number: str, text: str, **options: Any) -> httpx.Response:
        """`number` writes `text` to paybot on WhatsApp, signed as Twilio signs it."""
        assert self.twilio is not None
        response = await self.twilio.send_inbound(
            self.local_url, number, text, public_url=PUBLIC_URL, **options
        )
        return response

    async def wa_message(self, number: str, words: str, timeout: float = 5.0) -> TwilioMessage:
        """The first WhatsApp message to `number` whose body holds `words`."""
        assert self.twilio is not None
        twilio = self.twilio

        def found() -> TwilioMessage | None:
            return next((m for m in twilio.to(number) if words in (m.body or "")), None)

        return await twilio.wait_for(found, timeout)

    def wa_count(self, number: str, words: str) -> int:
        assert self.twilio is not None
        return sum(words in (m.body or "") for m in self.twilio.to(number))

    def say(self, text: str, user_id: int = MERCHANT) -> None:
        self.fake.send_text(text, user_id=user_id)

    def texts(self, chat_id: int = MERCHANT) -> list[str]:
        """Every text and caption sent to the chat, in order (edits not included)."""
        return [m.text or m.caption or "" for m in self.fake.messages(chat_id)]

    def photos(self, chat_id: int = MERCHANT) -> list[SentMessage]:
        return [m for m in self.fake.messages(chat_id) if m.photo is not None]

    def count(self, words: str, chat_id: int = MERCHANT) -> int:
        """How many text messages (not invoice photos, whose captions are edited) hold `words`."""
        return sum(words in (m.text or "") for m in self.fake.messages(chat_id))

    async def wait_message(
        self, words: str, chat_id: int = MERCHANT, timeout: float = 5.0
    ) -> SentMessage:
        """The first message to the chat whose text or caption holds `words`."""

        def found() -> SentMessage | None:
            return next(
                (m for m in self.fake.messages(chat_id) if words in (m.text or m.caption or "")),
                None,
            )

        return await self.fake.wait_for(found, timeout)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Until the outbox has nothing left to send."""

        async def pending() -> int:
            async with self.paybot.store.transaction() as tx:
                return await tx.outbox.pending_count()

        await wait_until(pending, lambda n: n == 0, timeout)

    async def restart(self, tuning: Tuning | None = None) -> None:
        """Stop paybot and start a new one on the same database, as after a crash or deploy."""
        await self.paybot.stop()
        self.paybot = Paybot(self.settings, tuning or self.tuning)
        await self.paybot.start()
        self.sandbox.webhook_url = self.webhook_url

    @property
    def webhook_url(self) -> str:
        return f"{self.paybot.http.url}/webhooks/cimplify"

    async def post_event(
        self,
        body: dict[str, Any],
        event_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a webhook to paybot as Cimplify would, signed unless `headers` are given."""
        raw = json.dumps(body).encode()
        signed = self.sandbox.sign(raw, event_id=event_id or body.get("id", "evt_x"))
        return await self.http.post(
            self.webhook_url, content=raw, headers=signed if headers is None else headers
        )

    async def link_for(self, order_id: str) -> Any:
        async with self.paybot.store.transaction() as tx:
            return await tx.links.latest_for_order(order_id)


async def wait_until(
    read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 5.0
) -> Any:
    """Poll an async reading until `done` holds for it, or fail after `timeout` seconds."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        await asyncio.sleep(0.02)


def settings_for(fake: FakeBotApi, sandbox_url: str, tmp_path: Path, **extra: str) -> Settings:
    env = {
        "CIMPLIFY_API_BASE": sandbox_url,
        "CIMPLIFY_SECRET_KEY": SECRET_KEY,
        "CIMPLIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PAYBOT_DATABASE": str(tmp_path / "paybot.db"),  # unless `extra` names another
        "PAYBOT_HTTP_PORT": "0",
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE": fake.base_url,
        "TELEGRAM_MERCHANTS": f"{MERCHANT}, {OTHER_MERCHANT}",
    } | extra
    return Settings.from_env(env, dotenv_path=None)


def whatsapp_env(twilio: FakeTwilio) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_WHATSAPP_FROM": twilio.sender,
        "TWILIO_API_BASE": twilio.base_url,
        "WHATSAPP_MERCHANTS": WA_MERCHANT,
        "WHATSAPP_DEFAULT_REGION": "GH",
        # Behind a proxy, as in production: signatures and media URLs use this root.
        "PAYBOT_PUBLIC_URL": PUBLIC_URL,
    }


@contextlib.asynccontextmanager
async def running_world(
    tmp_path: Path,
    tuning: Tuning | None = None,
    link_ttl: timedelta = timedelta(hours=24),
    whatsapp: bool = False,
    env: dict[str, str] | None = None,
    database: str | None = None,
) -> AsyncIterator[World]:
    """A running paybot with fakes around it; on `database` (a SQLite path or a
    PostgreSQL URL) when given, else on a SQLite file in `tmp_path`."""
    async with contextlib.AsyncExitStack() as stack:
        twilio = await stack.enter_async_context(FakeTwilio()) if whatsapp else None
        extra = (whatsapp_env(twilio) if twilio else {}) | (env or {})
        if database is not None:
            extra["PAYBOT_DATABASE"] = database
        async with _world(tmp_path, tuning, link_ttl, extra) as world:
            world.twilio = twilio
            yield world


@contextlib.asynccontextmanager
async def _world(
    tmp_path: Path, tuning: Tuning | None, link_ttl: timedelta, extra: dict[str, str]
) -> AsyncIterator[World]:
    sandbox = Sandbox(
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        link_ttl=link_ttl,
        retry_delays=(0.05, 0.1, 0.2, 0.4),
    )
    async with FakeBotApi(token=BOT_TOKEN) as fake, SandboxServer(sandbox) as server:
        # Links as real Cimplify makes them: on a public host (Telegram refuses URL
        # buttons to loopback). Nothing in the tests opens them.
        sandbox.base_url = PUBLIC_LINK_BASE
        settings = settings_for(fake, server.url, tmp_path, **extra)
        tuning = tuning or quick_tuning()
        paybot = Paybot(settings, tuning)
        await paybot.start()
        world = World(fake, sandbox, settings, tuning, paybot)
        sandbox.webhook_url = world.webhook_url
        try:
            yield world
        finally:
            await world.http.aclose()
            await world.paybot.stop()
            await sandbox.close()
