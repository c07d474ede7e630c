"""paybot's own HTTP routes, over real HTTP: health, QR images, Cimplify's webhook's gates.

Telegram's webhook route has its own tests (tests/test_telegram_webhook.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from bot.invoices import qr_png
from tests.harness import WEBHOOK_SECRET, World
from tests.store_rows import inbox_entries

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CREATED = "2025-01-01T00:00:00Z"


def url(world: World, path: str) -> str:
    return f"{world.paybot.http.url}{path}"


async def stored_events(world: World) -> list[str]:
    """Ids of the Cimplify events in the inbox, handled or not."""
    return sorted(await inbox_entries(world.settings.database, "cimplify"))


def standard_signature(body: bytes, event_id: str, timestamp: int) -> str:
    """A correct Standard Webhooks v1 signature over raw bytes, whatever their encoding."""
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    signed = f"{event_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


async def test_health_says_ok(world: World) -> None:
    response = await world.http.get(url(world, "/healthz"))
    assert (response.status_code, response.text) == (200, "ok")


async def test_qr_image_is_the_png_of_the_link_url(world: World) -> None:
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    link = await world.link_for("1001")

    response = await world.http.get(url(world, f"/qr/{link.id}.png"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    assert response.content == qr_png(link.url)


async def test_qr_names_that_are_not_a_known_link_id_are_404(world: World) -> None:
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    link = await world.link_for("1001")

    for path in (
        "/qr/unknownbutvalidid0000.png",
        "/qr/..%2F..%2Fetc.png",
        "/qr/x.png",
        f"/qr/{link.id}.jpg",
        f"/qr/{link.id}",
    ):
        response = await world.http.get(url(world, path))
        assert response.status_code == 404, path


async def test_an_oversized_cimplify_webhook_is_413_and_not_stored(world: World) -> None:
    body = json.dumps({"id": "evt_big", "type": "refund.created", "pad": "x" * 65536}).encode()
    headers = world.sandbox.sign(body, event_id="evt_big")

    response = await world.http.post(
        url(world, "/webhooks/cimplify"), content=body, headers=headers
    )

    assert response.status_code == 413
    assert await stored_events(world) == []


async def test_a_non_utf8_body_is_refused_even_when_its_signature_is_right(world: World) -> None:
    body = b'{"id": "evt_latin1", "note": "caf\xe9"}'
    now = int(time.time())
    headers = {
        "webhook-id": "evt_latin1",
        "webhook-timestamp": str(now),
        "webhook-signature": standard_signature(body, "evt_latin1", now),
    }

    response = await world.http.post(
        url(world, "/webhooks/cimplify"), content=body, headers=headers
    )

    assert response.status_code == 401
    assert await stored_events(world) == []
    # The same signer's work on a UTF-8 body is accepted: only the encoding was refused.
    good = json.dumps({"id": "evt_utf8", "type": "refund.created", "created_at": CREATED})
    good_headers = headers | {
        "webhook-id": "evt_utf8",
        "webhook-signature": standard_signature(good.encode(), "evt_utf8", now),
    }
    accepted = await world.http.post(
        url(world, "/webhooks/cimplify"), content=good.encode(), headers=good_headers
    )
    assert accepted.status_code == 200
    assert await stored_events(world) == ["evt_utf8"]


async def test_an_event_of_an_unknown_type_is_acknowledged(world: World) -> None:
    body = {
        "id": "evt_refund_1",
        "type": "refund.created",
        "created_at": CREATED,
        "data": {"anything": ["we", "do", "not", "model"]},
    }
    response = await world.post_event(body)
    assert 200 <= response.status_code < 300
    assert response.json()["received"] == "evt_refund_1"


async def test_a_get_on_a_post_only_route_is_405(world: World) -> None:
    for path in ("/webhooks/cimplify", "/webhooks/telegram"):
        response = await world.http.get(url(world, path))
        assert response.status_code == 405, path
