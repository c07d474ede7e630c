"""The embedded Cimplify, driven over real HTTP on loopback (CONTRACT §1 and §2)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox import AsgiServer, Sandbox, SandboxServer
from sandbox.records import LineItem, Order
from sandbox.seed import seed_orders
from tests.factories import ORDER_SUMMARY

SECRET_KEY = "sk_test_sandbox_key"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FAST_RETRIES = (0.01, 0.01, 0.01)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Receiver:
    """The bot's webhook endpoint: verifies each delivery, answers `answers` first, then 204."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.attempts: list[str] = []  # event ids, one per verified attempt
        self.events: list[dict[str, Any]] = []  # events answered 2xx
        self.rejected = 0
        self.changed = asyncio.Condition()
        self.app = Starlette(routes=[Route("/webhooks/cimplify", self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        try:
            event = Webhook(WEBHOOK_SECRET).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return Response(status_code=401)
        status = self.answers.pop(0) if self.answers else 204
        async with self.changed:
            self.attempts.append(event["id"])
            if status < 300:
                self.events.append(event)
            self.changed.notify_all()
        return Response(status_code=status)

    async def wait_events(self, count: int, within: float = 2.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: len(self.events) >= count)
        return self.events


async def until(condition: Callable[[], Awaitable[bool]], within: float = 2.0) -> None:
    """Poll `condition` (an HTTP read, say) until it holds; TimeoutError after `within` s."""
    async with asyncio.timeout(within):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.01)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        clock=clock,
        retry_delays=FAST_RETRIES,
    )
    yield sandbox
    await sandbox.close()


@pytest.fixture
async def server(sandbox: Sandbox) -> AsyncIterator[SandboxServer]:
    async with SandboxServer(sandbox) as server:
        yield server


@pytest.fixture
async def client(server: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield client


@pytest.fixture
async def receiver(sandbox: Sandbox) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with AsgiServer(receiver.app) as server:
        sandbox.webhook_url = f"{server.url}/webhooks/cimplify"
        yield receiver


async def create_link(
    client: httpx.AsyncClient, order_id: str, key: str = "key-1", secret: str = SECRET_KEY
) -> httpx.Response:
    return await client.post(
        f"/v1/orders/{order_id}/payment-link",
        json={},
        headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": key},
    )


async def link_status(client: httpx.AsyncClient, token: str) -> str:
    response = await client.get(f"/v1/pay/orders/{token}/status")
    assert response.status_code == 200
    status: str = response.json()["status"]
    return status


# -- seed ---------------------------------------------------------------------------------


def test_every_seeded_total_is_the_sum_of_its_line_items() -> None:
    orders = seed_orders()
    for order in orders:
        assert order.total == sum((item.total for item in order.line_items), Decimal(0)), order
    by_id = {order.order_id: order for order in orders}
    assert by_id["1001"].total == Decimal("75.00")
    assert {order.currency for order in orders} >= {"GHS", "NGN", "KES"}
    assert len(by_id["1006"].line_items) >= 40


# -- POST /v1/orders/{order_id}/payment-link --------------------------------------------------


async def test_creating_a_link_needs_the_secret_key(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    wrong = await create_link(client, "1001", secret="sk_test_wrong")
    missing = await client.post("/v1/orders/1001/payment-link", headers={"Idempotency-Key": "k"})
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert sandbox.ledger.links == {}
    assert sandbox.requests == [("POST", "/v1/orders/1001/payment-link")] * 2


@pytest.mark.parametrize("order_id", ["9999", "bad.id", "x" * 65])
async def test_unknown_or_malformed_order_is_404(client: httpx.AsyncClient, order_id: str) -> None:
    response = await create_link(client, order_id)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"


async def test_cancelled_order_is_409(client: httpx.AsyncClient) -> None:
    response = await create_link(client, "1005")
    assert response.status_code == 409


async def test_a_missing_idempotency_key_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/orders/1001/payment-link", headers={"Authorization": f"Bearer {SECRET_KEY}"}
    )
    assert response.status_code == 400


async def test_the_same_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient,
) -> None:
    first = await create_link(client, "1001", key="same")
    again = await create_link(client, "1001", key="same")
    other_order = await create_link(client, "1002", key="same")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert other_order.status_code == 422


async def test_a_live_link_is_reused_and_an_expired_one_replaced(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    first = await create_link(client, "1001", key="a")
    reused = await create_link(client, "1001", key="b")
    assert (first.status_code, reused.status_code) == (201, 200)
    assert reused.json() == first.json()
    clock.advance(timedelta(hours=24))
    fresh = await create_link(client, "1001", key="c")
    assert fresh.status_code == 201
    assert fresh.json()["token"] != first.json()["token"]


async def test_a_paid_order_answers_with_a_paid_link(client: httpx.AsyncClient) -> None:
    created = await create_link(client, "1004")
    assert created.status_code == 201
    assert await link_status(client, created.json()["token"]) == "paid"
    again = await create_link(client, "1004", key="key-2")
    assert (again.status_code, again.json()) == (200, created.json())


# -- the Pay API ----------------------------------------------------------------------


async def test_the_order_summary_has_the_contract_shape(
    client: httpx.AsyncClient, server: SandboxServer
) -> None:
    created = (await create_link(client, "1001")).json()
    token = created["token"]
    assert token.startswith("plt_")
    assert created == {
        "token": token,
        "url": f"{server.url}/{token}",
        "expires_at": "2026-11-24T10:00:00Z",
    }
    summary = await client.get(f"/v1/pay/orders/{token}")
    assert summary.status_code == 200
    # The very summary the client's own tests parse (tests/test_cimplify.py).
    assert summary.json() == ORDER_SUMMARY | {"token": token, "expires_at": "2026-11-24T10:00:00Z"}
    status = await client.get(f"/v1/pay/orders/{token}/status")
    assert status.json() == {
        "status": "pending",
        "updated_at": "2026-11-23T10:00:00Z",
        "reference": None,
    }


async def test_an_unknown_token_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/v1/pay/orders/plt_nope", "/v1/pay/orders/plt_nope/status"):
        assert (await client.get(path)).status_code == 404


async def test_a_link_past_its_expiry_answers_410(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token = (await create_link(client, "2001")).json()["token"]
    clock.advance(timedelta(hours=23, minutes=59, seconds=59))
    assert await link_status(client, token) == "pending"
    clock.advance(timedelta(seconds=1))
    for path in (f"/v1/pay/orders/{token}", f"/v1/pay/orders/{token}/status"):
        response = await client.get(path)
        assert response.status_code == 410
        assert response.json()["status"] == "expired"


async def test_expire_ends_a_link_now(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    first = (await create_link(client, "3001", key="a")).json()["token"]
    second = (await create_link(client, "1002", key="b")).json()["token"]
    sandbox.expire(first)
    admin = await client.post(f"/sandbox/links/{second}/expire")
    assert admin.status_code == 200
    for token in (first, second):
        assert (await client.get(f"/v1/pay/orders/{token}")).status_code == 410


async def test_init_starts_a_payment_attempt(client: httpx.AsyncClient) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    body = {"method": "mobile_money", "provider": "mtn", "phone": "+233244000111"}
    started = await client.post(f"/v1/pay/orders/{token}/init", json=body)
    assert started.status_code == 200
    answer = started.json()
    assert answer["status"] == "processing"
    assert answer["reference"].startswith("MOMO-")
    assert answer["redirect_url"] is None
    assert (await client.get(f"/v1/pay/orders/{token}/status")).json()["reference"] == answer[
        "reference"
    ]
    busy = await client.post(f"/v1/pay/orders/{token}/init", json={"method": "card"})
    assert busy.status_code == 409


async def test_init_by_card_gives_a_redirect(
    client: httpx.AsyncClient, server: SandboxServer
) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    started = await client.post(f"/v1/pay/orders/{token}/init", json={"method": "card"})
    reference = started.json()["reference"]
    assert reference.startswith("CARD-")
    # The bank's 3-D Secure page, which sends the customer back to {sandbox}/{token}.
    challenge = f"{server.url}/sandbox/3ds/{token}?reference={reference}"
    assert started.json()["redirect_url"] == challenge


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[1]",
        b'{"method": "mobile_money", "provider": "mtn"}',
        b'{"method": "mobile_money", "provider": "mtn", "phone": "call me"}',
        b'{"method": "crypto"}',
        b'{"method": "mobile_money", "provider": "mpesa", "phone": "+233244000111"}',
        b'{"method": "bank_transfer"}',
        b'{"method": "card", "provider": "mtn"}',
        b"[" * 5000,
    ],
)
async def test_init_refuses_a_bad_body(client: httpx.AsyncClient, content: bytes) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    response = await client.post(f"/v1/pay/orders/{token}/init", content=content)
    assert response.status_code == 400
    assert await link_status(client, token) == "pending"


# -- pay(): the customer's side ---------------------------------------------------------


async def test_pay_walks_the_link_through_every_status(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    assert await link_status(client, token) == "pending"
    paying = asyncio.create_task(sandbox.pay("1001", step_delay=0.1))
    seen: list[str] = []

    async def paid() -> bool:
        status = await link_status(client, token)
        if not seen or seen[-1] != status:
            seen.append(status)
        return status == "paid"

    await until(paid)
    assert await paying == token
    assert seen == ["processing", "awaiting_authorization", "paid"]
    again = await create_link(client, "1001", key="key-2")
    assert (again.status_code, again.json()["token"]) == (200, token)


async def test_a_failed_payment_leaves_the_link_payable(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    assert await sandbox.pay("1001", outcome="failed") == token
    assert await link_status(client, token) == "failed"
    assert (await create_link(client, "1001", key="key-2")).json()["token"] == token
    await sandbox.pay("1001")
    assert await link_status(client, token) == "paid"


async def test_pay_needs_a_live_link(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    with pytest.raises(KeyError, match="9999"):
        await sandbox.pay("9999")
    with pytest.raises(ValueError, match="no live payment link"):
        await sandbox.pay("1001")
    token = (await create_link(client, "1001")).json()["token"]
    with pytest.raises(ValueError, match="outcome"):
        await sandbox.pay("1001", outcome="maybe")
    sandbox.expire(token)
    with pytest.raises(ValueError, match="no live payment link"):
        await sandbox.pay("1001")


# -- webhooks ---------------------------------------------------------------------------


async def test_a_payment_sends_signed_events_to_the_webhook_url(
    client: httpx.AsyncClient, sandbox: Sandbox, receiver: Receiver
) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    await sandbox.pay("1001")
    events = await receiver.wait_events(2)
    reference = (await client.get(f"/v1/pay/orders/{token}/status")).json()["reference"]
    by_type = {event["type"]: event for event in events}
    succeeded, completed = by_type["payment.succeeded"], by_type["order.completed"]
    assert succeeded["id"].startswith("evt_")
    assert succeeded["created_at"] == "2026-11-23T10:00:00Z"
    assert succeeded["data"] == {
        "order_id": "1001",
        "token": token,
        "amount": "75.00",
        "currency": "GHS",
        "reference": reference,
    }
    assert "token" not in completed["data"]
    assert completed["data"]["reference"] == reference
    assert receiver.rejected == 0


async def test_a_failed_payment_sends_payment_failed(
    client: httpx.AsyncClient, sandbox: Sandbox, receiver: Receiver
) -> None:
    await create_link(client, "2001")
    await sandbox.pay("2001", outcome="failed")
    [event] = await receiver.wait_events(1)
    assert (event["type"], event["data"]["amount"], event["data"]["currency"]) == (
        "payment.failed",
        "10000.00",
        "NGN",
    )


async def test_a_delivery_answered_500_is_retried(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    event_id = sandbox.send_event("payment.succeeded", "1001", reference="MOMO-1")
    await sandbox.wait_delivered(event_id)
    attempts = [(d.attempt, d.status_code) for d in sandbox.deliveries if d.event_id == event_id]
    assert attempts == [(1, 500), (2, 503), (3, 204)]
    assert receiver.attempts == [event_id] * 3


async def test_delivery_waits_for_a_reachable_webhook_url(
    clock: FakeClock,
) -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sandbox = Sandbox(
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        webhook_url=f"http://127.0.0.1:{closed_port}/webhooks/cimplify",
        clock=clock,
        retry_delays=(0.05,) * 40,
    )
    receiver = Receiver()
    try:
        event_id = sandbox.send_event("payment.succeeded", "1001", reference="MOMO-1")

        async def refused() -> bool:
            return any(d.status_code is None for d in sandbox.deliveries)

        await until(refused)
        async with AsgiServer(receiver.app) as server:
            sandbox.webhook_url = f"{server.url}/webhooks/cimplify"
            await sandbox.wait_delivered(event_id)
        assert sandbox.deliveries[-1].status_code == 204
        assert [event["id"] for event in receiver.events] == [event_id]
    finally:
        await sandbox.close()


async def test_delivery_gives_up_after_the_last_retry(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.answers = [500] * 10
    event_id = sandbox.send_event("payment.failed", "1001", reference="MOMO-1")
    with pytest.raises(TimeoutError, match=event_id):
        await sandbox.wait_delivered(event_id, timeout=0.3)
    assert [d.attempt for d in sandbox.deliveries] == [1, 2, 3, 4]


def test_sign_gives_standard_webhooks_headers() -> None:
    sandbox = Sandbox(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)
    body = b'{"id":"evt_1"}'
    fresh = sandbox.sign(body, event_id="evt_1")
    assert Webhook(WEBHOOK_SECRET).verify(body, fresh) == {"id": "evt_1"}
    stale = sandbox.sign(body, event_id="evt_1", timestamp=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(WEBHOOK_SECRET).verify(body, stale)
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(b'{"id":"evt_2"}', fresh)


# -- fault injection --------------------------------------------------------------------


async def test_fail_next_answers_the_planned_status_then_recovers(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next("payment-link", status=429, retry_after=7)
    sandbox.fail_next("payment-link", status=503, count=2)
    answers = [await create_link(client, "1001") for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 503, 503, 201]
    assert answers[0].headers["retry-after"] == "7"
    assert "retry-after" not in answers[1].headers
    assert len(sandbox.requests) == 4


async def test_fail_next_matches_only_its_path(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    sandbox.fail_next("/status", status=500)
    assert (await client.get(f"/v1/pay/orders/{token}")).status_code == 200
    assert (await client.get(f"/v1/pay/orders/{token}/status")).status_code == 500
    assert (await client.get(f"/v1/pay/orders/{token}/status")).status_code == 200


async def test_a_slow_answer_still_did_the_work_once(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next("payment-link", status=200, delay=0.2)
    with pytest.raises(httpx.ReadTimeout):
        await client.post(
            "/v1/orders/1001/payment-link",
            json={},
            headers={"Authorization": f"Bearer {SECRET_KEY}", "Idempotency-Key": "slow"},
            timeout=0.05,
        )
    retried = await create_link(client, "1001", key="slow")
    assert retried.status_code == 201
    assert [link.token for link in sandbox.ledger.links_of("1001")] == [retried.json()["token"]]


# -- admin routes and the hosted page -----------------------------------------------------


async def test_admin_lists_orders_and_pays_in_the_background(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/sandbox/orders")).json()["orders"]
    states = {order["order_id"]: order["state"] for order in listed}
    assert (states["1001"], states["1004"], states["1005"]) == ("open", "paid", "cancelled")
    assert (await client.post("/sandbox/orders/nope/pay", json={})).status_code == 404
    assert (await client.post("/sandbox/orders/1005/pay", json={})).status_code == 409
    token = (await create_link(client, "1001")).json()["token"]
    bad = await client.post("/sandbox/orders/1001/pay", json={"outcome": "maybe"})
    assert bad.status_code == 400
    started = await client.post(
        "/sandbox/orders/1001/pay", json={"outcome": "paid", "step_delay": 0}
    )
    assert started.status_code == 202
    assert started.json()["token"] == token

    async def paid() -> bool:
        return await link_status(client, token) == "paid"

    await until(paid)
    listed = (await client.get("/sandbox/orders")).json()["orders"]
    [order] = [order for order in listed if order["order_id"] == "1001"]
    assert order["state"] == "paid"
    assert [link["status"] for link in order["links"]] == ["paid"]


async def test_the_hosted_page_shows_the_order_escaped() -> None:
    hostile = Order(
        "x1",
        "<script>alert(1)</script> & Sons",
        "GHS",
        (LineItem("<b>Tea</b>", 2, Decimal("4.50")),),
        Decimal("9.00"),
    )
    sandbox = Sandbox(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, orders=[hostile])
    async with SandboxServer(sandbox) as server, httpx.AsyncClient(base_url=server.url) as client:
        url = (await create_link(client, "x1")).json()["url"]
        page = await client.get(url)
        missing = await client.get("/plt_nope")
    await sandbox.close()
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons" in page.text
    assert "&lt;b&gt;Tea&lt;/b&gt;" in page.text
    assert "GH₵9.00" in page.text  # as the chat writes it
    assert 'data-state="loading"' in page.text
    assert missing.status_code == 404
