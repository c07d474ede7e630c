"""One benchmark stage: the sandbox and the fake Bot API here, the real bot as a process.

The bot is `paybot run`, started as an operator would, with its settings in the
environment and a database of its own (a SQLite file or a fresh PostgreSQL
database, bench/databases.py). With `instances=2`, two `paybot run` processes
share that (PostgreSQL) database, each on a port of its own, as one bot: the
first started holds the roles (sender, poller, getUpdates), both take webhooks.
The sandbox plays Cimplify and the fake Bot API plays Telegram, both in this
process on loopback, so every figure includes real HTTP, real
python-telegram-bot and a real database.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from bench.databases import Database
from bench.processes import cpu_seconds
from sandbox import Sandbox, SandboxServer, new_secret_key, new_webhook_secret
from sandbox.records import LineItem, Order, money, rfc3339
from sandbox.webhooks import event_body
from tests.fakes.bot_api import FakeBotApi
from tests.process import Paybot, clean_env, free_port, start_paybot

BOT_TOKEN = "987654:BENCH-token_abcdefghijklmnop"  # noqa: S105 - the fake's token
FIRST_MERCHANT = 700_000  # Telegram user ids of the bench's merchants
PRICE = Decimal("25.00")
READY_TIMEOUT = 30.0


def bench_orders(count: int) -> list[Order]:
    """`count` open orders, B000001 onwards, each one line of GHS 25.00."""
    item = LineItem(name="Jollof rice", quantity=1, unit_price=PRICE)
    return [Order(f"B{n:06d}", "Bench Foods", "GHS", (item,), PRICE) for n in range(1, count + 1)]


@dataclass(frozen=True)
class Keys:
    secret_key: str
    webhook_secret: str


@dataclass
class Stage:
    sandbox: Sandbox
    keys: Keys
    sandbox_url: str
    fake: FakeBotApi
    bots: list[Paybot]  # the `paybot run` processes, the first one started first
    urls: list[str]  # each one's own HTTP root, in the same order
    database: Database
    merchants: list[int]
    orders: list[str]
    http: httpx.AsyncClient
    _seen: int = 0
    _photos: int = 0

    @property
    def bot(self) -> Paybot:
        return self.bots[0]

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def pid(self) -> int:
        return self.bot.process.pid

    def signed_event(
        self, kind: str, order_id: str, *, token: str | None = None, event_id: str
    ) -> tuple[bytes, dict[str, str]]:
        """A correctly signed webhook for one of the sandbox's orders: body and headers."""
        data = {"order_id": order_id, "amount": money(PRICE), "currency": "GHS"}
        if token is not None:
            data["token"] = token
        data["reference"] = f"MOMO-{event_id[-8:]}"
        body = event_body(event_id, kind, rfc3339(self.sandbox.ledger.now()), data)
        headers = self.sandbox.sign(body, event_id=event_id)
        return body, headers | {"content-type": "application/json"}

    async def invoice(self, pairs: list[tuple[int, str]], timeout: float = 120.0) -> None:  # noqa: ASYNC109
        """Each merchant asks for its order's invoice; returns when every photo has arrived."""
        before = self.photos()
        for merchant, order_id in pairs:
            self.fake.send_text(f"/invoice {order_id}", user_id=merchant)
        await self.until(lambda: self.photos() >= before + len(pairs), timeout)

    def photos(self) -> int:
        """Photos sent so far; counts only calls new since the last look (calls only grow)."""
        calls = self.fake.calls
        self._photos += sum(1 for call in calls[self._seen :] if call.method == "sendPhoto")
        self._seen = len(calls)
        return self._photos

    def token_of(self, order_id: str) -> str:
        return self.sandbox.ledger.links_of(order_id)[-1].token

    async def until(self, condition: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
        """Wait for `condition()` to hold, re-checked at each Bot API call; fail after `timeout`."""
        await self.fake.wait_for(condition, timeout)

    def rss_mb(self) -> float:
        """The bot process's resident memory, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS for the bot process")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the bot's processes have used, all of them, from /proc."""
        return sum(cpu_seconds(bot.process.pid) for bot in self.bots)


@dataclass(frozen=True)
class Services:
    """Where the bot finds what it talks to: the sandbox, the fake Bot API, its database."""

    sandbox_url: str
    fake: FakeBotApi
    database: Database


def bot_env(
    workdir: Path, keys: Keys, services: Services, port: int, merchants: list[int]
) -> dict[str, str]:
    """The settings of `paybot run` on this stage; callers may add to them."""
    fake = services.fake
    return clean_env(
        workdir,
        PAYBOT_DATABASE=services.database.setting,
        CIMPLIFY_API_BASE=services.sandbox_url,
        CIMPLIFY_SECRET_KEY=keys.secret_key,
        CIMPLIFY_WEBHOOK_SECRET=keys.webhook_secret,
        TELEGRAM_BOT_TOKEN=fake.token,
        TELEGRAM_API_BASE=fake.base_url,
        TELEGRAM_MERCHANTS=",".join(map(str, merchants)),
        PAYBOT_HTTP_PORT=str(port),
        PAYBOT_LOG_LEVEL="WARNING",
    )


@contextlib.asynccontextmanager
async def staged(
    workdir: Path,
    database: Database,
    *,
    orders: int,
    merchants: int,
    webhooks: bool = True,
    link_ttl: timedelta = timedelta(hours=24),
    fake: FakeBotApi | None = None,
    settings: Mapping[str, str] | None = None,
    instances: int = 1,
) -> AsyncIterator[Stage]:
    """A fresh sandbox, fake Bot API and `instances` × `paybot run` on `database`, which
    must be new (and PostgreSQL for more than one)."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    ports = [free_port() for _ in range(instances)]
    keys = Keys(new_secret_key(), new_webhook_secret())
    sandbox = Sandbox(
        secret_key=keys.secret_key,
        webhook_secret=keys.webhook_secret,
        webhook_url=f"http://127.0.0.1:{ports[0]}/webhooks/cimplify" if webhooks else None,
        link_ttl=link_ttl,
        orders=bench_orders(orders),
    )
    fake = fake or FakeBotApi(token=BOT_TOKEN, username="paybot_bench_bot")
    ids = [FIRST_MERCHANT + n for n in range(merchants)]
    async with SandboxServer(sandbox) as server, fake, httpx.AsyncClient(timeout=30) as http:
        services = Services(server.url, fake, database)
        with ExitStack() as processes:
            stage = Stage(
                sandbox,
                keys,
                server.url,
                fake,
                [],
                [],
                database,
                ids,
                [order.order_id for order in bench_orders(orders)],
                http,
            )
            for port in ports:  # one after the other: the first takes every role
                env = bot_env(workdir, keys, services, port, ids) | dict(settings or {})
                stage.bots.append(processes.enter_context(start_paybot(["run"], env, workdir)))
                stage.urls.append(f"http://127.0.0.1:{port}")
                await _ready(stage, len(stage.bots) - 1)
            try:
                yield stage
            finally:
                for bot in stage.bots:
                    await _stop(bot)
        await sandbox.close()


async def _ready(stage: Stage, number: int) -> None:
    """Up when its /healthz answers; the first also when python-telegram-bot has asked
    for updates, a later one when its /readyz says its loops run (it polls nothing)."""
    bot, url = stage.bots[number], stage.urls[number]
    probe = "/healthz" if number == 0 else "/readyz"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if bot.process.poll() is not None:
            code = await asyncio.to_thread(bot.finish)  # collects what it wrote
            raise RuntimeError(f"paybot exited at start with {code}: {bot.lines}")
        with contextlib.suppress(httpx.TransportError):
            healthy = (await stage.http.get(url + probe)).status_code == 200
            if healthy and (number > 0 or any(c.method == "getUpdates" for c in stage.fake.calls)):
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("paybot did not come up")


async def _stop(bot: Paybot) -> None:
    """SIGTERM, as an operator would; a bot that will not stop is killed and reported."""
    process = bot.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(bot.finish, 15.0)
        if code != 0:
            raise RuntimeError(f"paybot exited with {code}: {bot.lines['stderr'][-5:]}")
