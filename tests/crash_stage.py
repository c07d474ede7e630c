"""The stage for the crash tests: a real `paybot run` process that the test kills.

The fake Bot API and the sandbox run in the test's own event loop; the bot is a
child process on a fixed port, so the sandbox keeps retrying webhooks at the
same address while the bot is dead. The store (SQLite or PostgreSQL) is read with
its driver, as anyone could read it, never through paybot's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox, SandboxServer
from sandbox.records import LineItem, Order
from tests.fakes.bot_api import ApiCall, FakeBotApi, SentMessage
from tests.harness import BOT_TOKEN, SECRET_KEY, WEBHOOK_SECRET
from tests.process import Paybot, clean_env, free_port, start_paybot
from tests.store_rows import Row, rows

START_DEADLINE = 15.0  # from spawning to the first getUpdates; about 1 s when all is well
STOP_DEADLINE = 10.0  # the bound for SIGTERM
SENDS = ("sendMessage", "sendPhoto")
# Short webhook retries, many of them, so deliveries outlast every kill and restart.
WEBHOOK_RETRIES = (0.2, 0.5, *(1.0,) * 60)
FIRST_MERCHANT = 5001
_PHOTO_OF = re.compile(r"\nOrder (\S+)\n")  # an invoice caption's second line
_CONFIRMATION_OF = re.compile(r"^Order (\S+) \(.*\): Confirmed - ")


def crash_orders(merchants: int, per_merchant: int) -> tuple[list[Order], dict[str, int]]:
    """Orders for each merchant's stall, and which merchant (chat) each belongs to."""
    orders, merchant_of = [], {}
    for m in range(merchants):
        for j in range(per_merchant):
            order_id = f"O{m:02d}{j:02d}"
            price = Decimal("10.00") + m * per_merchant + j
            item = LineItem("Jollof rice", 1, price)
            orders.append(Order(order_id, f"Stall {m:02d}", "GHS", (item,), price))
            merchant_of[order_id] = FIRST_MERCHANT + m
    return orders, merchant_of


class BotProcess:
    """`paybot run`, started again and again on one database and one port."""

    def __init__(self, env: dict[str, str], cwd: Path, fake: FakeBotApi) -> None:
        self._env, self._cwd, self._fake = env, cwd, fake
        self._stack = contextlib.ExitStack()
        self.current: Paybot | None = None
        self.started_at = 0.0
        self.kills: list[float] = []  # time.monotonic() of each SIGKILL, like ApiCall.at

    async def start(self) -> None:
        """Spawn it and return once it polls the fake Bot API: every part is up then."""
        self.started_at = time.monotonic()
        self.current = self._stack.enter_context(start_paybot(["run"], self._env, self._cwd))
        deadline = self.started_at + START_DEADLINE
        while not self._polled_since(self.started_at):
            if self.current.process.poll() is not None or time.monotonic() > deadline:
                await asyncio.to_thread(self._finish, 1.0)
                pytest.fail(f"paybot did not come up: {self.current.lines}")
            await asyncio.sleep(0.02)  # checking a condition, with the deadline above

    async def kill(self) -> None:
        assert self.current is not None
        self.kills.append(time.monotonic())
        self.current.process.kill()
        await asyncio.to_thread(self._finish, STOP_DEADLINE)

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM: the exit code and how many seconds the process took to exit."""
        assert self.current is not None
        sent = time.monotonic()
        self.current.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self._finish, STOP_DEADLINE)
        return code, time.monotonic() - sent

    def confirmed_before(self, update_id: int, moment: float) -> bool:
        """Whether a getUpdates made before `moment` confirmed the update (a higher offset)."""
        return any(
            call.method == "getUpdates"
            and call.at < moment
            and int(call.params.get("offset", 0)) > update_id
            for call in self._fake.calls
        )

    def close(self) -> None:
        self._stack.close()  # kills whatever still runs

    def _finish(self, timeout: float) -> int:
        assert self.current is not None
        try:
            return self.current.finish(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"paybot did not exit within {timeout} s: {self.current.lines}")

    def _polled_since(self, moment: float) -> bool:
        for call in reversed(self._fake.calls):
            if call.at <= moment:
                return False
            if call.method == "getUpdates":
                return True
        return False


@dataclass
class CrashStage:
    fake: FakeBotApi
    sandbox: Sandbox
    bot: BotProcess
    database: str  # what PAYBOT_DATABASE names: a SQLite path or a PostgreSQL URL
    merchant_of: dict[str, int]  # order id -> its merchant's user id, which is also the chat
    chats: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.chats = sorted(set(self.merchant_of.values()))

    async def rows(self, sql: str, *params: Any) -> list[Row]:
        return await rows(self.database, sql, *params)

    async def invoice_rows(self, order_id: str) -> int:
        """How many invoice photos the bot queued for the order, in its merchant's chat."""
        sql = (
            "SELECT COUNT(*) FROM outbox JOIN links ON outbox.link_id = links.id"
            " WHERE outbox.kind = 'invoice' AND outbox.chat_id = ? AND links.order_id = ?"
        )
        return int((await self.rows(sql, str(self.merchant_of[order_id]), order_id))[0][0])

    async def invoices_queued(self) -> int:
        """How many invoice photos the bot has queued, in all."""
        return int((await self.rows("SELECT COUNT(*) FROM outbox WHERE kind = 'invoice'"))[0][0])

    def photos(self, order_id: str) -> list[SentMessage]:
        head = f"\nOrder {order_id}\n"
        messages = self.fake.messages(self.merchant_of[order_id])
        return [m for m in messages if m.photo is not None and head in (m.caption or "")]

    def confirmations(self, order_id: str) -> list[SentMessage]:
        title = f"Order {order_id} ("
        messages = self.fake.messages(self.merchant_of[order_id])
        return [m for m in messages if title in (m.text or "") and ": Confirmed - " in m.text]

    def photographed(self) -> set[str]:
        """Orders whose invoice photo Telegram accepted; one pass over the calls."""
        return self._orders_in("sendPhoto", "caption", _PHOTO_OF)

    def confirmed(self) -> set[str]:
        """Orders whose confirmation Telegram accepted; one pass over the calls."""
        return self._orders_in("sendMessage", "text", _CONFIRMATION_OF)

    def _orders_in(self, method: str, param: str, pattern: re.Pattern[str]) -> set[str]:
        found = (
            pattern.search(str(call.params.get(param, "")))
            for call in self.fake.calls
            if call.method == method
        )
        return {match.group(1) for match in found if match}

    def link_requests(self) -> int:
        return sum(path.endswith("/payment-link") for _, path in self.sandbox.requests)

    def acknowledged_events(self) -> set[str]:
        return {
            d.event_id
            for d in self.sandbox.deliveries
            if d.status_code is not None and 200 <= d.status_code < 300
        }

    def sends(self) -> int:
        return sum(call.method in SENDS for call in self.fake.calls)

    async def pending(self) -> int:
        sql = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND dropped_at IS NULL"
        return int((await self.rows(sql))[0][0])

    def sent_calls(self) -> Iterator[tuple[SentMessage, ApiCall]]:
        """Every message the fake accepted, with the call that sent it.

        The fake numbers a message as it handles its call, with no await in between,
        so the send calls in arrival order are the messages in id order. A send refused
        for Telegram's flood limits (the fake's `limits`) made no message.
        """
        refused = {id(call) for call in self.fake.throttled}
        calls = [c for c in self.fake.calls if c.method in SENDS and id(c) not in refused]
        messages = sorted(
            (m for chat in self.chats for m in self.fake.messages(chat)),
            key=lambda m: m.message_id,
        )
        assert len(calls) == len(messages), (len(calls), len(messages))
        for call, message in zip(calls, messages, strict=True):
            assert call.params["chat_id"] == message.chat_id, (call, message)
            yield message, call

    async def unrecorded(self) -> list[tuple[SentMessage, ApiCall]]:
        """Messages Telegram accepted that the outbox never marked sent: repeats."""
        sql = "SELECT chat_id, remote_id FROM outbox WHERE remote_id IS NOT NULL"
        recorded = {(row["chat_id"], row["remote_id"]) for row in await self.rows(sql)}
        accepted = list(self.sent_calls())
        ids = {(str(m.chat_id), str(m.message_id)) for m, _ in accepted}
        assert recorded <= ids, f"recorded as sent, never reached Telegram: {recorded - ids}"
        return [(m, c) for m, c in accepted if (str(m.chat_id), str(m.message_id)) not in recorded]


async def until(reading: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    """Check a reading (plain or awaitable) until `done` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not done(value := await _read(reading)):
        if time.monotonic() > deadline:
            pytest.fail(f"still {value!r} after {timeout} s")
        await asyncio.sleep(0.01)  # checking a condition, with the deadline above
    return value


async def _read(reading: Callable[[], Any]) -> Any:
    value = reading()
    return await value if inspect.isawaitable(value) else value


@contextlib.asynccontextmanager
async def crash_stage(
    tmp_path: Path, database: str, merchants: int, per_merchant: int
) -> AsyncIterator[CrashStage]:
    orders, merchant_of = crash_orders(merchants, per_merchant)
    port = free_port()
    sandbox = Sandbox(
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        webhook_url=f"http://127.0.0.1:{port}/webhooks/cimplify",
        retry_delays=WEBHOOK_RETRIES,
        orders=orders,
    )
    async with FakeBotApi(token=BOT_TOKEN) as fake, SandboxServer(sandbox) as server:
        env = clean_env(
            tmp_path,
            CIMPLIFY_API_BASE=server.url,
            CIMPLIFY_SECRET_KEY=SECRET_KEY,
            CIMPLIFY_WEBHOOK_SECRET=WEBHOOK_SECRET,
            TELEGRAM_BOT_TOKEN=fake.token,
            TELEGRAM_API_BASE=fake.base_url,
            TELEGRAM_MERCHANTS=",".join(str(chat) for chat in sorted(set(merchant_of.values()))),
            PAYBOT_HTTP_PORT=str(port),
            PAYBOT_SEND_RATE="1000",  # the per-chat second still holds; spread over many chats
            PAYBOT_POLL_RATE="5",
            PAYBOT_LOG_LEVEL="WARNING",
            PAYBOT_DATABASE=database,
        )
        bot = BotProcess(env, tmp_path, fake)
        try:
            yield CrashStage(fake, sandbox, bot, database, merchant_of)
        finally:
            bot.close()
            await sandbox.close()
