"""Whole conversations while Cimplify or Telegram misbehave: retries, waits, drops, quiet logs."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logs import configure_logging
from tests.harness import (
    BOT_TOKEN,
    MERCHANT,
    OTHER_MERCHANT,
    SECRET_KEY,
    WEBHOOK_SECRET,
    World,
    running_world,
    wait_until,
)

PAY_URL = re.compile(r"Pay here: (\S+)")


def link_posts(world: World) -> list[tuple[str, str]]:
    return [r for r in world.sandbox.requests if r == ("POST", "/v1/orders/1001/payment-link")]


def status_gets(world: World) -> list[tuple[str, str]]:
    return [r for r in world.sandbox.requests if r[0] == "GET" and r[1].endswith("/status")]


def status_get_times(world: World) -> list[float]:
    """When each of `status_gets` reached the sandbox (time.monotonic())."""
    sandbox = world.sandbox
    return [
        at
        for (method, path), at in zip(sandbox.requests, sandbox.arrived_at, strict=True)
        if method == "GET" and path.endswith("/status")
    ]


def calls_to(world: World, method: str, chat_id: int) -> list[object]:
    return [c for c in world.fake.calls if c.method == method and c.params["chat_id"] == chat_id]


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_two_5xx_on_link_creation_are_retried_into_one_link(world: World) -> None:
    world.sandbox.fail_next("/payment-link", status=503, count=2)
    world.say("/invoice 1001")
    await world.wait_message("Pay here")

    # The sandbox records method and path only, so the shared Idempotency-Key is not
    # visible here (test_cimplify checks it); what it buys, one link, is.
    assert len(link_posts(world)) == 3
    assert len(world.sandbox.ledger.links_of("1001")) == 1
    assert len(world.photos()) == 1
    assert (await world.link_for("1001")).token == world.sandbox.ledger.links_of("1001")[0].token


async def drain_faults(world: World, status: int) -> None:
    """Use up the planned faults on 1001's link path with unauthenticated POSTs (401 after)."""
    target = f"{world.settings.cimplify_api_base}/v1/orders/1001/payment-link"
    for _ in range(100):
        if (await world.http.post(target, content=b"{}")).status_code != status:
            return
    raise AssertionError("the planned faults did not run out")


async def test_a_cimplify_that_keeps_failing_gets_one_clear_answer(world: World) -> None:
    world.sandbox.fail_next("/payment-link", status=500, count=50)
    started = now()
    world.say("/invoice 1001")
    await world.wait_message("not answering")

    assert now() - started < 2.0 + 1.0  # the retry budget, and a little for the chat
    await world.wait_idle()
    assert len(world.texts()) == 1 and "not answering" in world.texts()[0]
    assert world.sandbox.ledger.links_of("1001") == []
    await drain_faults(world, 500)

    world.say("/invoice 1001")  # the bot goes on serving
    await world.wait_message("Pay here")
    assert len(world.photos()) == 1


async def test_an_answer_slower_than_the_timeout_is_retried_into_the_same_link(
    world: World,
) -> None:
    # The sandbox creates the link at once and answers after 0.8 s, past the 0.5 s timeout.
    world.sandbox.fail_next("/payment-link", status=200, delay=0.8)
    world.say("/invoice 1001")
    await world.wait_message("Pay here")

    assert len(link_posts(world)) >= 2
    links = world.sandbox.ledger.links_of("1001")
    assert len(links) == 1
    assert (await world.link_for("1001")).token == links[0].token


async def test_a_429_with_retry_after_is_waited_out(world: World) -> None:
    world.sandbox.fail_next("/payment-link", status=429, retry_after=1)
    started = now()
    world.say("/invoice 1001")
    await world.wait_message("Pay here")

    assert now() - started >= 0.95
    assert len(link_posts(world)) == 2
    assert len(world.sandbox.ledger.links_of("1001")) == 1


async def invoiced(world: World) -> str:
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    return str((await world.link_for("1001")).token)


async def test_the_poller_carries_on_through_5xx(world: World) -> None:
    token = await invoiced(world)
    seen = len(status_gets(world))
    world.sandbox.fail_next("/status", status=503, count=3)
    world.sandbox.set_status(token, "processing")
    await world.wait_message("Processing")

    assert len(status_gets(world)) >= seen + 4  # three refused, then the one that answered
    assert world.count("Processing") == 1


async def test_the_poller_waits_out_a_429_on_status(world: World) -> None:
    token = await invoiced(world)
    seen = len(status_gets(world))
    world.sandbox.fail_next("/status", status=429, retry_after=1)

    async def status_requests() -> int:
        return len(status_gets(world))

    await wait_until(status_requests, lambda n: n > seen, timeout=2)  # the 429 was served
    world.sandbox.set_status(token, "processing")
    await world.wait_message("Processing")

    # Timed by the sandbox as the requests came, not by this test as it noticed them: a
    # busy machine may notice late.
    refused_at, next_asked_at = status_get_times(world)[seen : seen + 2]
    assert next_asked_at - refused_at >= 0.95  # Retry-After: 1


async def test_a_telegram_429_on_the_photo_is_waited_out_and_sent_once(world: World) -> None:
    world.fake.fail_next("sendPhoto", status=429, retry_after=1)
    started = now()
    world.say("/invoice 1001")
    await world.wait_message("Pay here")

    assert now() - started >= 0.95
    await world.wait_idle()
    assert len(world.photos()) == 1
    assert len(calls_to(world, "sendPhoto", MERCHANT)) == 2


async def test_a_blocked_merchant_is_dropped_and_the_other_is_served(world: World) -> None:
    world.fake.block(MERCHANT)
    world.say("/invoice 1001")
    world.say("/invoice 1001", user_id=OTHER_MERCHANT)
    await world.wait_message("Pay here", chat_id=OTHER_MERCHANT)
    await world.fake.wait_for(lambda: calls_to(world, "sendPhoto", MERCHANT))
    link = await world.link_for("1001")
    world.sandbox.set_status(link.token, "processing")
    await world.wait_message("Processing", chat_id=OTHER_MERCHANT)
    await world.fake.wait_for(lambda: calls_to(world, "sendMessage", MERCHANT))
    await world.wait_idle()

    # One attempt per message to the blocked chat, none retried; nothing reached it.
    assert len(calls_to(world, "sendPhoto", MERCHANT)) == 1
    assert len(calls_to(world, "sendMessage", MERCHANT)) == 1
    assert world.fake.messages(MERCHANT) == []
    assert world.count("Processing", OTHER_MERCHANT) == 1


async def test_a_telegram_network_error_is_retried_and_the_photo_sent_once(world: World) -> None:
    # The fake cannot drop a connection or stall; a 502 is what PTB turns into NetworkError,
    # the same path a timeout takes (TransientDelivery, retried with backoff).
    world.fake.fail_next("sendPhoto", status=502, description="Bad Gateway")
    world.say("/invoice 1001")
    await world.wait_message("Pay here", timeout=5)
    await world.wait_idle()

    assert len(world.photos()) == 1
    assert len(calls_to(world, "sendPhoto", MERCHANT)) == 2


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    """paybot's redacting log handler on a string, DEBUG and up; the root put back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quieted = {
        name: logging.getLogger(name).level for name in ("httpx", "httpcore", "uvicorn.access")
    }
    stream = io.StringIO()
    configure_logging("DEBUG", [SECRET_KEY, WEBHOOK_SECRET, BOT_TOKEN], stream=stream)
    yield stream
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    for name, was in quieted.items():
        logging.getLogger(name).setLevel(was)


async def test_secrets_never_reach_a_log_line(tmp_path: Path, captured_log: io.StringIO) -> None:
    async with running_world(tmp_path) as world:
        assert set(world.settings.secrets()) | {world.fake.token} == {
            SECRET_KEY,
            WEBHOOK_SECRET,
            BOT_TOKEN,
        }
        world.sandbox.fail_next("/payment-link", status=503)
        world.fake.fail_next("sendPhoto", status=429, retry_after=1)
        link_token = await invoiced(world)
        forged = world.sandbox.sign(b"{}", event_id="evt_f") | {"webhook-signature": "v1,AAAA"}
        assert (await world.post_event({}, headers=forged)).status_code == 401
        world.sandbox.send_event("payment.succeeded", "1001", token=link_token)
        await world.wait_message("Confirmed")

    text = captured_log.getvalue()
    for logged in ("503; retry", "retry after 1", "webhook refused", "Confirmed"):
        assert logged in text, logged  # the faults, the refusal and the flow were logged
    for secret in (BOT_TOKEN, SECRET_KEY, WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_")):
        assert secret not in text
    assert "Bearer sk_" not in text


async def test_two_merchants_asking_at_once_get_one_link(world: World) -> None:
    world.say("/invoice 1001")
    world.say("/invoice 1001", user_id=OTHER_MERCHANT)
    first = await world.wait_message("Pay here")
    second = await world.wait_message("Pay here", chat_id=OTHER_MERCHANT)

    assert len(link_posts(world)) == 1
    assert len(world.sandbox.ledger.links_of("1001")) == 1
    urls = {PAY_URL.findall(m.caption or "")[0] for m in (first, second)}
    assert urls == {(await world.link_for("1001")).url}
