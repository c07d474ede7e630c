"""A payment from link to `Confirmed`: polling, webhooks, and their races."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.cimplify import WebhookVerifier
from bot.payments import event_entry
from storage import store_for
from tests.flow_events import event
from tests.harness import (
    MERCHANT,
    OTHER_MERCHANT,
    QUICK_POLLS,
    WEBHOOK_SECRET,
    World,
    quick_tuning,
    running_world,
    wait_until,
)
from tests.store_rows import inbox_entries


async def invoiced(world: World, chat_id: int = MERCHANT) -> object:
    world.say("/invoice 1001", user_id=chat_id)
    await world.wait_message("Pay here", chat_id=chat_id)
    return await world.link_for("1001")


async def test_each_step_reaches_the_chat_and_the_caption_follows(world: World) -> None:
    link = await invoiced(world)
    for status, words in (
        ("processing", "Processing"),
        ("awaiting_authorization", "Awaiting authorization"),
        ("failed", "Failed"),
        ("processing", "Processing"),
        ("paid", "Paid"),
    ):
        world.sandbox.set_status(link.token, status)
        seen = world.count(words)
        await world.fake.wait_for(lambda w=words, n=seen: world.count(w) > n)
    response = await world.post_event(event("payment.succeeded", token=link.token))
    assert response.status_code == 200
    await world.wait_message("Confirmed")
    await world.wait_idle()

    invoice = world.fake.messages(MERCHANT)[0]
    assert invoice.edits and invoice.edits[-1].endswith("Status: Confirmed")
    assert world.count("Confirmed") == 1


async def test_paid_by_polling_is_not_confirmed_without_the_webhook(world: World) -> None:
    link = await invoiced(world)
    world.sandbox.set_status(link.token, "paid")
    await world.wait_message("Paid")
    await world.wait_idle()
    assert world.count("Confirmed") == 0
    assert (await world.link_for("1001")).next_poll_at is None  # paid ends polling


async def test_duplicate_and_reordered_events_confirm_once_per_chat(world: World) -> None:
    link = await invoiced(world)
    await invoiced(world, OTHER_MERCHANT)
    succeeded = event("payment.succeeded", token=link.token)
    completed = event("order.completed")  # no token: matched by order id
    late_failure = event("payment.failed", token=link.token)
    for body in (completed, succeeded, succeeded, completed, late_failure, succeeded):
        assert (await world.post_event(body)).status_code == 200
    await world.wait_message("Confirmed")
    await world.wait_message("Confirmed", chat_id=OTHER_MERCHANT)
    await world.wait_idle()

    assert world.count("Confirmed") == 1
    assert world.count("Confirmed", OTHER_MERCHANT) == 1
    assert world.count("Failed") == 0


async def test_sandbox_payment_end_to_end(world: World) -> None:
    await invoiced(world)
    token = await world.sandbox.pay("1001", step_delay=0.3)
    await world.wait_message("Confirmed")
    await world.wait_idle()
    for words in ("Processing", "Awaiting authorization"):
        assert world.count(words) == 1, world.texts()
    assert world.count("Confirmed") == 1
    assert (await world.link_for("1001")).token == token


async def test_an_amount_that_does_not_match_is_never_confirmed(world: World) -> None:
    link = await invoiced(world)
    await world.post_event(event("payment.succeeded", token=link.token, amount="7.50"))
    await world.wait_message("Not confirmed")
    await world.wait_idle()
    assert world.count("Confirmed -") == 0
    assert (await world.link_for("1001")).confirmed_at is None


async def test_a_burst_of_webhooks_is_stored_before_each_answer_and_confirms_once(
    world: World,
) -> None:
    link = await invoiced(world)
    # Ten events, each posted three times at once: one of each three is new.
    bodies = [event("payment.succeeded", token=link.token) for _ in range(10)]
    readers = asyncio.Semaphore(4)  # connections of our own, few: the server is shared

    async def post(body: dict[str, object]) -> bool:
        response = await world.post_event(body)
        assert response.status_code == 200
        async with readers:
            stored = await inbox_entries(world.settings.database, "cimplify")
        assert body["id"] in stored  # durable before the answer
        return not response.json()["duplicate"]

    fresh = await asyncio.gather(*(post(body) for body in bodies * 3))

    assert sum(fresh) == len(bodies)
    await world.wait_message("Confirmed")
    await world.wait_idle()
    handled = await wait_until(
        lambda: inbox_entries(world.settings.database, "cimplify"),
        lambda entries: None not in entries.values(),
    )
    assert set(handled) == {body["id"] for body in bodies}  # every one handled
    assert world.count("Confirmed", MERCHANT) == 1


async def test_forged_stale_and_junk_webhooks_are_refused_and_not_stored(world: World) -> None:
    link = await invoiced(world)
    body = event("payment.succeeded", token=link.token)
    raw = b'{"id": "evt_forged"}'
    forged = world.sandbox.sign(raw, event_id="evt_forged") | {"webhook-signature": "v1,AAAA"}
    stale_time = datetime.now(UTC) - timedelta(minutes=10)
    stale = world.sandbox.sign(
        json.dumps(body).encode(), event_id=str(body["id"]), timestamp=stale_time
    )

    assert (await world.post_event(body, headers=forged)).status_code == 401
    assert (await world.post_event(body, headers=stale)).status_code == 401
    assert (await world.post_event(body, headers={})).status_code == 401
    junk = {"id": "evt_junk", "type": "payment.succeeded", "data": {"order_id": "x y"}}
    assert (await world.post_event(junk)).status_code == 400
    other = event("refund.created", event_id="evt_other")
    assert (await world.post_event(other)).status_code == 200

    # Only the signed event of a type paybot does not act on was stored.
    assert set(await inbox_entries(world.settings.database, "cimplify")) == {"evt_other"}
    await world.wait_idle()
    assert world.count("Confirmed") == 0


async def test_webhooks_from_the_sandbox_are_delivered_and_acknowledged(world: World) -> None:
    link = await invoiced(world)
    event_id = world.sandbox.send_event(
        "payment.succeeded",
        "1001",
        token=link.token,
        amount="75.00",
        currency="GHS",
        reference="R-1",
    )
    await world.sandbox.wait_delivered(event_id)
    await world.wait_message("Confirmed")


async def test_a_webhook_stored_before_a_crash_is_applied_on_restart(world: World) -> None:
    link = await invoiced(world)
    await world.paybot.stop()
    # The crash: the event was stored in the inbox and acknowledged, then the process died.
    body = event("payment.succeeded", token=link.token)
    raw = json.dumps(body).encode()
    headers = world.sandbox.sign(raw, event_id=str(body["id"]))
    verified = WebhookVerifier(WEBHOOK_SECRET).verify(raw, headers)
    store = store_for(world.settings.database)
    await store.open()
    async with store.transaction() as tx:
        assert await tx.inbox.record([event_entry(verified, raw)], datetime.now(UTC)) == [True]
    await store.close()
    assert await inbox_entries(world.settings.database, "cimplify") == {body["id"]: None}

    await world.restart()
    await world.wait_message("Confirmed")
    await world.wait_idle()
    assert world.count("Confirmed") == 1
    handled = await inbox_entries(world.settings.database, "cimplify")
    assert handled[str(body["id"])] is not None


async def test_a_live_link_is_tracked_again_after_a_restart(world: World) -> None:
    link = await invoiced(world)
    await world.restart()
    world.sandbox.set_status(link.token, "processing")
    await world.wait_message("Processing")


async def test_expiry_reported_by_cimplify_ends_tracking(world: World) -> None:
    link = await invoiced(world)
    world.sandbox.expire(link.token)
    await world.wait_message("Expired")
    await world.wait_idle()
    stored = await world.link_for("1001")
    assert stored.status == "expired" and stored.next_poll_at is None
    assert world.count("Expired") == 1


async def test_a_payment_in_a_links_last_moments_is_said_paid_not_expired(
    tmp_path: Path, database: str
) -> None:
    # No poll between the invoice and the expiry, and no webhook: the poll at the expiry
    # is the only way to learn of the payment, and it must ask rather than expire.
    policy = replace(QUICK_POLLS, fresh=timedelta(hours=1), idle_min=timedelta(hours=1))
    quiet = {"PAYBOT_REMINDERS": "off", "PAYBOT_EXPIRY_WARNING": "off"}
    async with running_world(
        tmp_path,
        quick_tuning(poll_policy=policy),
        link_ttl=timedelta(seconds=2),
        env=quiet,
        database=database,
    ) as world:
        world.sandbox.webhook_url = None
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        link = await world.link_for("1001")
        world.sandbox.set_status(link.token, "paid")
        await world.wait_message(": Paid - ", timeout=10)
        await world.wait_idle()
        assert world.count("Expired") == 0
        assert (await world.link_for("1001")).status == "paid"


async def test_a_link_whose_expiry_passes_is_said_expired(tmp_path: Path, database: str) -> None:
    async with running_world(tmp_path, link_ttl=timedelta(seconds=1), database=database) as world:
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        await world.wait_message("Expired", timeout=5)
        first = await world.link_for("1001")
        world.say("/invoice 1001")  # a new link, not the dead one
        await world.fake.wait_for(lambda: len(world.photos()) == 2)
        second = await world.link_for("1001")
        assert second.token != first.token and first.status == "expired"
