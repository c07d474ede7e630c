"""Probes and metrics over real HTTP (CONTRACT §4 and §8): /healthz, /readyz and each
of its reasons, /metrics after a flow."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bot.models import ChatRef, InboxEntry, MessageKind, Outgoing, utcnow
from bot.outbox import Delivery
from handlers.metrics import PrometheusMeter
from tests.flow_events import event
from tests.harness import MERCHANT, World, quick_tuning, running_world, wait_until
from tests.test_faults_store import database_locked

METRICS = (
    "paybot_webhooks_total",
    "paybot_messages_total",
    "paybot_outbox_oldest_due_seconds",
    "paybot_inbox_oldest_waiting_seconds",
    "paybot_polls_total",
    "paybot_invoices_total",
    "paybot_confirmations_total",
    "paybot_confirmation_seconds",
)


async def get(world: World, path: str) -> httpx.Response:
    return await world.http.get(f"{world.local_url}{path}", timeout=10)


async def samples(world: World) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample /metrics serves, by name and labels."""
    response = await get(world, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_healthz_answers_at_once_even_while_the_store_is_locked(sqlite_world: World) -> None:
    world = sqlite_world
    with database_locked(world.settings.database) as holder:
        await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
        started = asyncio.get_running_loop().time()
        response = await get(world, "/healthz")
        waited = asyncio.get_running_loop().time() - started
    assert (response.status_code, response.text) == (200, "ok")
    assert waited < 1.0  # nothing was asked of the store


async def test_readyz_is_200_when_all_is_well(world: World) -> None:
    response = await get(world, "/readyz")
    assert (response.status_code, response.text) == (200, "ready")


async def test_readyz_is_503_while_the_store_takes_no_write(sqlite_world: World) -> None:
    world = sqlite_world
    with database_locked(world.settings.database) as holder:
        await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
        started = asyncio.get_running_loop().time()
        response = await get(world, "/readyz")
        waited = asyncio.get_running_loop().time() - started
    assert response.status_code == 503
    assert "the store took no write within 1 s" in response.text
    assert waited < 3.0  # the probe's bound, not the store's 5 s busy timeout

    async def status() -> int:
        return (await get(world, "/readyz")).status_code

    await wait_until(status, lambda code: code == 200, timeout=10)  # the lock is gone


async def test_readyz_is_503_when_a_background_loop_died(world: World) -> None:
    tracker = world.paybot.background["tracker"]
    tracker.cancel()
    await asyncio.gather(tracker, return_exceptions=True)

    response = await get(world, "/readyz")

    assert response.status_code == 503
    assert response.text.strip() == "the tracker loop is not running"


class Recorder:
    """A chat channel that takes every message."""

    def __init__(self) -> None:
        self.sent: list[Delivery] = []

    async def deliver(self, delivery: Delivery) -> str | None:
        self.sent.append(delivery)
        return None


async def test_readyz_is_503_when_the_oldest_due_message_is_over_a_minute_late(
    tmp_path: Path,
) -> None:
    # One message every 100 s: the first goes, the second holds the budget, the third
    # waits unclaimed, as a backlog bigger than the send rate does.
    recorder = Recorder()
    tuning = quick_tuning(overall_rate=0.01, messengers={"test": recorder})
    async with running_world(tmp_path, tuning=tuning) as world:
        two_minutes_ago = utcnow() - timedelta(minutes=2)
        chats = [ChatRef("test", f"chat-{n}") for n in range(3)]
        async with world.paybot.store.transaction() as tx:
            messages = [Outgoing(chat, MessageKind.TEXT, "hello") for chat in chats]
            await tx.outbox.enqueue(messages, two_minutes_ago)
        world.paybot.outbox.wake()

        async def readiness() -> httpx.Response:
            return await get(world, "/readyz")

        async def sent() -> int:
            return len(recorder.sent)

        await wait_until(sent, lambda n: n == 1)  # the outbox runs: one went, two wait
        late = await readiness()
        assert late.status_code == 503
        reason = re.fullmatch(r"the oldest due message is ([0-9]+) s late\n", late.text)
        assert reason is not None, late.text
        assert int(reason[1]) >= 120
        found = await samples(world)
        assert value(found, "paybot_outbox_oldest_due_seconds") >= 120


async def test_an_input_acknowledged_and_not_yet_handled_shows_how_long_it_has_waited(
    world: World,
) -> None:
    # No handler takes this input's kind, so it is tried again after a growing pause and
    # waits, as an input behind a handler that keeps failing would; it came two minutes ago.
    waits = InboxEntry("test", "waits", "no-such-kind", "test:waits", "{}")
    async with world.paybot.store.transaction() as tx:
        await tx.inbox.record([waits], utcnow() - timedelta(minutes=2))

    found = await samples(world)

    assert value(found, "paybot_inbox_oldest_waiting_seconds") >= 120
    assert value(found, "paybot_outbox_oldest_due_seconds") == 0  # nothing else waits


async def test_every_series_of_the_contract_is_served_at_0_from_the_first_scrape(
    world: World,
) -> None:
    found = await samples(world)

    for source in ("cimplify", "twilio", "telegram"):
        for outcome in ("stored", "duplicate", "refused"):
            assert (
                "paybot_webhooks_total",
                frozenset({("source", source), ("outcome", outcome)}),
            ) in found, (source, outcome)
    for outcome in ("sent", "retried", "dropped"):
        labels = frozenset({("channel", "telegram"), ("outcome", outcome)})
        assert ("paybot_messages_total", labels) in found, outcome
    for outcome in ("changed", "unchanged", "error"):
        assert ("paybot_polls_total", frozenset({("outcome", outcome)})) in found, outcome
    assert ("paybot_invoices_total", frozenset({("channel", "telegram")})) in found
    # WhatsApp is not configured in this world: no series for a channel it does not have.
    assert not [key for key in found if ("channel", "whatsapp") in key[1]]
    assert ("paybot_confirmations_total", frozenset()) in found
    assert ("paybot_confirmation_seconds_count", frozenset()) in found
    assert ("paybot_outbox_oldest_due_seconds", frozenset()) in found
    assert ("paybot_inbox_oldest_waiting_seconds", frozenset()) in found
    assert all(found[key] == 0 for key in found if not key[0].endswith("_created"))


async def test_metrics_count_a_whole_flow_with_contract_names_and_labels(world: World) -> None:
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    link = await world.link_for("1001")
    world.sandbox.set_status(link.token, "processing")
    await world.wait_message("Processing")

    async def unchanged_polls() -> float:
        return value(await samples(world), "paybot_polls_total", outcome="unchanged")

    await wait_until(unchanged_polls, lambda n: n >= 1)  # still processing, asked again
    succeeded = event("payment.succeeded", token=link.token)
    assert (await world.post_event(succeeded)).status_code == 200
    assert (await world.post_event(succeeded)).status_code == 200  # a repeat
    forged = await world.post_event(succeeded, headers={"webhook-id": "evt_forged"})
    assert forged.status_code in (400, 401)
    telegram = await world.http.post(f"{world.local_url}/webhooks/telegram", json={})
    assert telegram.status_code == 404  # polling mode: the route takes no updates
    await world.wait_message("Confirmed")
    await world.wait_idle()

    found = await samples(world)

    for name in METRICS:
        family = name.removesuffix("_total")
        assert any(sample_name.startswith(family) for sample_name, _ in found), name
    assert value(found, "paybot_invoices_total", channel="telegram") == 1
    webhooks = "paybot_webhooks_total"
    assert value(found, webhooks, source="cimplify", outcome="stored") == 1
    assert value(found, webhooks, source="cimplify", outcome="duplicate") == 1
    assert value(found, webhooks, source="cimplify", outcome="refused") == 1
    assert value(found, webhooks, source="telegram", outcome="refused") == 1
    # The invoice, Processing, Confirmed, and the caption's two edits.
    assert value(found, "paybot_messages_total", channel="telegram", outcome="sent") == 5
    assert value(found, "paybot_polls_total", outcome="changed") >= 1
    assert value(found, "paybot_polls_total", outcome="unchanged") >= 1
    assert value(found, "paybot_confirmations_total") == 1
    assert value(found, "paybot_confirmation_seconds_count") == 1
    assert 0 < value(found, "paybot_confirmation_seconds_sum") < 5
    assert value(found, "paybot_outbox_oldest_due_seconds") == 0


async def test_metrics_count_retried_and_dropped_messages(world: World) -> None:
    world.fake.fail_next("sendPhoto", status=500, description="Internal Server Error")
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    world.fake.block(MERCHANT)
    world.say("/status 1001")

    async def dropped() -> float:
        counted = await samples(world)
        return value(counted, "paybot_messages_total", channel="telegram", outcome="dropped")

    await wait_until(dropped, lambda n: n >= 1)
    found = await samples(world)

    assert value(found, "paybot_messages_total", channel="telegram", outcome="retried") == 1
    assert value(found, "paybot_messages_total", channel="telegram", outcome="dropped") == 1
    assert value(found, "paybot_invoices_total", channel="telegram") == 1


async def test_twilio_webhooks_are_counted_as_twilio(tmp_path: Path) -> None:
    async with running_world(tmp_path, whatsapp=True) as world:
        assert world.twilio is not None
        assert (await world.whatsapp("+233200000001", "help")).status_code == 200
        forged = await world.http.post(
            f"{world.local_url}/webhooks/twilio",
            data={"From": "whatsapp:+233200000001", "Body": "help"},
            headers={"X-Twilio-Signature": "forged"},
        )
        assert forged.status_code == 403

        found = await samples(world)

    assert value(found, "paybot_webhooks_total", source="twilio", outcome="stored") == 1
    assert value(found, "paybot_webhooks_total", source="twilio", outcome="refused") == 1


def test_each_meter_keeps_its_own_registry_and_none_is_global() -> None:
    first, second = PrometheusMeter(), PrometheusMeter()
    first.invoice("telegram")
    first.confirmation_seconds(0.2)

    assert b'paybot_invoices_total{channel="telegram"} 1.0' in first.exposition()
    assert b"paybot_invoices_total{" not in second.exposition()
    assert b"paybot_confirmation_seconds_count 0.0" in second.exposition()
    assert not [m for m in REGISTRY.collect() if m.name.startswith("paybot_")]
