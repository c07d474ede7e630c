"""A signed success event confirms only the link it exactly names (issue 10, item 2).

Each was tried as an attack with one leaked credential: a token of another order,
an unknown token with a known order id, no amount, another currency. Each is
stored and acknowledged (the sender must stop retrying), not applied, and the
merchant hears that an event did not match.
"""

from __future__ import annotations

import json

from tests.flow_events import event
from tests.harness import World, wait_until
from tests.store_rows import inbox_entries


async def invoice(world: World, order_id: str) -> str:
    world.say(f"/invoice {order_id}")
    link = await wait_until(lambda: world.link_for(order_id), lambda found: found is not None)
    return str(link.token)


async def refused_and_told(world: World, body: dict[str, object], *orders: str) -> None:
    answer = await world.post_event(body)
    assert answer.status_code == 200  # stored: Cimplify must not deliver it again
    await world.wait_message("Not confirmed")  # the merchant is told
    await world.wait_idle()
    for order_id in orders:
        assert (await world.link_for(order_id)).confirmed_at is None
    assert world.count("Confirmed -") == 0
    stored = await inbox_entries(world.settings.database, "cimplify")
    assert stored[str(body["id"])] is not None  # handled: stored, looked at, not applied


async def test_a_token_of_another_order_confirms_neither(world: World) -> None:
    first = await invoice(world, "1001")
    await invoice(world, "1002")
    body = event("payment.succeeded", order_id="1002", token=first, amount="52.00")
    await refused_and_told(world, body, "1001", "1002")
    assert world.count("names order 1002") == 1  # told once, on the token's link


async def test_an_unknown_token_does_not_confirm_by_order_id(world: World) -> None:
    await invoice(world, "1001")
    body = event("payment.succeeded", token="plt_unknown_token")
    await refused_and_told(world, body, "1001")
    assert world.count("names no link") == 1


async def test_an_event_with_no_amount_confirms_nothing(world: World) -> None:
    token = await invoice(world, "1001")
    body = event("payment.succeeded", token=token, amount=None)
    body["data"].pop("currency")  # type: ignore[union-attr]
    await refused_and_told(world, body, "1001")
    assert world.count("names no amount") == 1


async def test_the_right_sum_in_another_currency_confirms_nothing(world: World) -> None:
    token = await invoice(world, "1001")
    body = event("payment.succeeded", token=token)
    body["data"]["currency"] = "NGN"  # type: ignore[index]
    await refused_and_told(world, body, "1001")


async def test_a_lone_surrogate_is_refused_at_parse_time_and_nothing_is_stored(
    world: World,
) -> None:
    token = await invoice(world, "1001")
    body = event("payment.succeeded", token=token, event_id="evt_surrogate")
    body["data"]["reference"] = "\udcff"  # type: ignore[index]
    raw = json.dumps(body).encode()  # json escapes it as \\udcff, as a sender would
    signed = world.sandbox.sign(raw, event_id="evt_surrogate")
    answer = await world.http.post(world.webhook_url, content=raw, headers=signed)
    assert answer.status_code == 400
    assert "evt_surrogate" not in await inbox_entries(world.settings.database, "cimplify")
    # The same event, well formed, is taken and confirms.
    body["data"]["reference"] = "MOMO-1"  # type: ignore[index]
    assert (await world.post_event(body)).status_code == 200
    await world.wait_message("Confirmed")


async def test_an_order_completed_without_token_confirms_the_orders_one_link(
    world: World,
) -> None:
    await invoice(world, "1001")
    assert (await world.post_event(event("order.completed"))).status_code == 200
    await world.wait_message("Confirmed")
    assert (await world.link_for("1001")).confirmed_at is not None
