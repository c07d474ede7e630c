"""Cimplify down or slow, Telegram slow, rate-limiting or blocked: nothing is lost.

Complements test_flow_faults.py (5xx, 429 and slow answers on link creation, the
poller through 5xx and 429, Telegram faults on the invoice photo).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paybot.app import Paybot
from sandbox import Sandbox, SandboxServer
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.loopback import LoopbackServer
from tests.flow_events import event
from tests.harness import (
    BOT_TOKEN,
    MERCHANT,
    OTHER_MERCHANT,
    PUBLIC_LINK_BASE,
    SECRET_KEY,
    WEBHOOK_SECRET,
    World,
    quick_tuning,
    running_world,
    settings_for,
    wait_until,
)
from tests.process import free_port
from tests.test_flow_customer_telegram import CUSTOMER, shared_code

# PTB's default read timeout (HTTPXRequest), which handlers/telegram.py leaves as it is.
PTB_READ_TIMEOUT = 5.0


def now() -> float:
    return asyncio.get_running_loop().time()


def calls_to(world: World, method: str, chat_id: int, since: int = 0) -> list[object]:
    return [
        c for c in world.fake.calls[since:] if c.method == method and c.params["chat_id"] == chat_id
    ]


@contextlib.asynccontextmanager
async def cimplify_on(world: World, port: int) -> AsyncIterator[None]:
    """The world's sandbox answering on `port` until the block ends (refused before and after)."""
    async with SandboxServer(world.sandbox, port=port):
        world.sandbox.base_url = PUBLIC_LINK_BASE  # links on a public host, as the harness has them
        yield


@pytest.fixture
async def switchable(tmp_path: Path) -> AsyncIterator[tuple[World, int]]:
    """A world whose Cimplify is at a port where nothing listens until a test says so."""
    port = free_port()
    env = {"CIMPLIFY_API_BASE": f"http://127.0.0.1:{port}"}
    async with running_world(tmp_path, env=env) as world:
        yield world, port


async def invoiced(world: World) -> str:
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    return str((await world.link_for("1001")).token)


async def until_logged(caplog: pytest.LogCaptureFixture, words: str, times: int) -> None:
    async def count() -> int:
        return sum(words in record.getMessage() for record in caplog.records)

    await wait_until(count, lambda n: n >= times)


# ---- Cimplify not answering at all


async def test_a_cimplify_refusing_connections_gets_one_answer_then_invoices_again(
    switchable: tuple[World, int],
) -> None:
    world, port = switchable
    started = now()
    world.say("/invoice 1001")
    await world.wait_message("not answering")

    assert now() - started < 2.0 + 1.0  # the retry budget, and a little for the chat
    await world.wait_idle()
    assert world.texts() == [
        "Cimplify is not answering right now. Nothing was created: try again in a minute."
    ]
    assert await world.link_for("1001") is None  # nothing half-done stored
    assert world.sandbox.requests == []  # and truly nothing reached Cimplify

    async with cimplify_on(world, port):
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        made = world.sandbox.ledger.links_of("1001")
        assert len(made) == 1 and (await world.link_for("1001")).token == made[0].token
        assert len(world.photos()) == 1


async def test_the_poller_outlives_a_cimplify_that_is_down_and_announces_once_back(
    switchable: tuple[World, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.tracking")
    world, port = switchable
    async with cimplify_on(world, port):
        token = await invoiced(world)
    # Cimplify is gone; the customer pays meanwhile, and the poller keeps failing.
    world.sandbox.set_status(token, "processing")
    await until_logged(caplog, "Cimplify unavailable", times=3)
    assert world.count("Processing") == 0

    async with cimplify_on(world, port):
        await world.wait_message("Processing")
        await world.wait_idle()
        assert world.count("Processing") == 1


async def test_a_webhook_while_cimplify_is_down_is_stored_and_applied(
    switchable: tuple[World, int],
) -> None:
    world, port = switchable
    async with cimplify_on(world, port):
        token = await invoiced(world)
    answer = await world.post_event(event("payment.succeeded", token=token, event_id="evt_down"))

    assert answer.status_code == 200
    assert answer.json() == {"received": "evt_down", "duplicate": False}
    await world.wait_message("Confirmed")
    await world.wait_idle()
    assert world.count("Confirmed") == 1


# ---- Cimplify answering slowly


async def test_a_status_answer_slower_than_the_timeout_is_polled_again_and_said_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.tracking")
    token = await invoiced(world)
    seen = len(world.sandbox.requests)
    # The next six answers come 0.8 s late, past the 0.5 s timeout: each is given up.
    # At 5 polls a second (PAYBOT_POLL_RATE) the seventh, the first in time, cannot
    # start before the first timeout has passed.
    world.sandbox.fail_next("/status", status=200, count=6, delay=0.8)
    world.sandbox.set_status(token, "processing")
    await until_logged(caplog, "ReadTimeout", times=1)
    assert world.count("Processing") == 0  # the late answers said it, and were dropped

    await world.wait_message("Processing")
    await world.wait_idle()
    assert world.count("Processing") == 1
    assert len(world.sandbox.requests) >= seen + 7


# ---- Telegram: 429 and 403 on status messages


async def test_a_telegram_429_on_the_confirmation_is_waited_out_and_sent_once(
    world: World,
) -> None:
    token = await invoiced(world)
    world.fake.fail_next("sendMessage", status=429, retry_after=1)
    started = now()
    assert (await world.post_event(event("payment.succeeded", token=token))).status_code == 200
    await world.wait_message("Confirmed")

    assert now() - started >= 0.95
    await world.wait_idle()
    assert world.count("Confirmed") == 1
    assert len(calls_to(world, "sendMessage", MERCHANT)) == 2


async def test_a_merchant_who_blocked_the_bot_does_not_stop_the_customer(world: World) -> None:
    code = await shared_code(world)
    world.say(f"/start {code}", user_id=CUSTOMER)
    await world.wait_message("the customer opened the payment link")
    await world.wait_idle()
    world.fake.block(MERCHANT)
    blocked_at = len(world.fake.calls)

    link = await world.link_for("1001")
    assert (await world.post_event(event("payment.succeeded", token=link.token))).status_code == 200
    await world.wait_message("thank you", chat_id=CUSTOMER)
    await world.fake.wait_for(lambda: calls_to(world, "sendMessage", MERCHANT, blocked_at))
    await world.wait_idle()  # nothing is left to retry

    assert world.count("Confirmed", CUSTOMER) == 1
    refused = [c for c in world.fake.calls[blocked_at:] if c.params.get("chat_id") == MERCHANT]
    # Each message to the blocked chat was tried once and dropped, never retried.
    tried = [(c.method, c.params.get("text") or c.params.get("caption")) for c in refused]
    assert len(tried) == len(set(tried)) >= 1
    assert world.count("Confirmed", MERCHANT) == 0


# ---- Telegram timing out


@dataclass
class Stall:
    method: str
    chat_id: int
    delivered: bool  # passed on to Telegram before the answer is held back


class StallingProxy:
    """The Bot API through a proxy that can hold a call until the client gives up on it.

    The fake Bot API answers at once; a held call is what a Telegram answering slower
    than PTB's timeout looks like from the bot.
    """

    def __init__(self, upstream: FakeBotApi) -> None:
        self._upstream = upstream  # read at each call: the fake may start after the proxy
        self._stalls: list[Stall] = []
        self._released = 0
        self._changed = asyncio.Condition()
        self._http = httpx.AsyncClient(timeout=30)
        route = Route("/{path:path}", self._relay, methods=["GET", "POST"])
        self._server = LoopbackServer(Starlette(routes=[route]))
        self.url = ""

    async def __aenter__(self) -> StallingProxy:
        await self._server.start()
        self.url = self._server.base_url
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._server.stop()
        await self._http.aclose()

    def stall_next(self, method: str, chat_id: int, *, delivered: bool) -> None:
        self._stalls.append(Stall(method, chat_id, delivered))

    async def wait_released(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` held calls were given up by the client."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self._released >= count)

    def _take(self, path: str, body: bytes) -> Stall | None:
        params = dict(parse_qsl(body.decode(errors="replace")))
        for stall in self._stalls:
            if path.endswith(f"/{stall.method}") and params.get("chat_id") == str(stall.chat_id):
                self._stalls.remove(stall)
                return stall
        return None

    async def _relay(self, request: Request) -> Response:
        path, body = request.path_params["path"], await request.body()
        stall = self._take(path, body)
        if stall is None or stall.delivered:
            answer = await self._http.request(
                request.method,
                f"{self._upstream.base_url}/{path}",
                params=request.query_params,
                content=body,
                headers={"content-type": request.headers.get("content-type", "")},
            )
            if stall is None:
                kind = answer.headers.get("content-type")
                return Response(answer.content, answer.status_code, media_type=kind)
        # Held until the client hangs up: a condition, not a guess at PTB's timeout.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        async with self._changed:
            self._released += 1
            self._changed.notify_all()
        return Response(status_code=504)  # to no one: the client is gone


@contextlib.asynccontextmanager
async def stalling_world(tmp_path: Path) -> AsyncIterator[tuple[World, StallingProxy]]:
    """A world whose Bot API calls go through a proxy that can hold one past PTB's timeout."""
    sandbox = Sandbox(
        secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, retry_delays=(0.05, 0.1, 0.2)
    )
    fake = FakeBotApi(token=BOT_TOKEN)
    # The fake stops before the proxy, so the long poll relayed through it ends at once.
    async with StallingProxy(fake) as proxy, fake, SandboxServer(sandbox) as server:
        sandbox.base_url = PUBLIC_LINK_BASE
        settings = settings_for(fake, server.url, tmp_path, TELEGRAM_API_BASE=proxy.url)
        tuning = quick_tuning()
        world = World(fake, sandbox, settings, tuning, Paybot(settings, tuning))
        await world.paybot.start()
        sandbox.webhook_url = world.webhook_url
        try:
            yield world, proxy
        finally:
            await world.http.aclose()
            await world.paybot.stop()
            await sandbox.close()


async def test_a_confirmation_that_timed_out_is_sent_again(tmp_path: Path) -> None:
    async with stalling_world(tmp_path) as (world, proxy):
        world.say("/invoice 1001")
        world.say("/invoice 1001", user_id=OTHER_MERCHANT)  # the same link, two chats
        await world.wait_message("Pay here")
        await world.wait_message("Pay here", chat_id=OTHER_MERCHANT)
        # MERCHANT's call never reaches Telegram; OTHER_MERCHANT's does, and only the
        # answer is lost. Either way PTB gives up after its read timeout.
        proxy.stall_next("sendMessage", MERCHANT, delivered=False)
        proxy.stall_next("sendMessage", OTHER_MERCHANT, delivered=True)
        link = await world.link_for("1001")
        started = now()
        assert (await world.post_event(event("payment.succeeded", token=link.token))).is_success
        await proxy.wait_released(2)  # both calls timed out on PTB's side

        assert now() - started >= PTB_READ_TIMEOUT - 0.1
        for chat in (MERCHANT, OTHER_MERCHANT):
            await world.wait_message("Confirmed", chat_id=chat, timeout=10)
        await world.wait_idle()
        assert world.count("Confirmed", MERCHANT) == 1  # exactly once
        # Telegram had it, but paybot cannot know: sendMessage has no idempotency key,
        # so the retry repeats it (the window named in bot/outbox.py).
        assert world.count("Confirmed", OTHER_MERCHANT) == 2
