"""CimplifyClient against httpx.MockTransport and real loopback sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from bot.cimplify import CimplifyBusy, CimplifyClient, retry_after_seconds
from bot.errors import (
    CimplifyAuthError,
    CimplifyError,
    CimplifyProtocolError,
    CimplifyUnavailable,
    InvalidOrderId,
    LinkExpired,
    LinkNotFound,
    OrderNotFound,
    OrderNotPayable,
)
from bot.models import LineItem, Money, Status
from tests.factories import CREATED_LINK, ORDER_SUMMARY, TOKEN

BASE = "http://cimplify.test"
SECRET = "sk_test_s3cr3t-value"
LINK, SUMMARY = CREATED_LINK, ORDER_SUMMARY
STATUS = {"status": "paid", "updated_at": "2026-11-23T10:15:00Z", "reference": "MOMO-77812"}

Reply = httpx.Response | Exception


class FakeCimplify:
    """Answers each request with the next scripted reply (the last repeats); records requests."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


class FakeTime:
    """A monotonic clock that only moves when the client sleeps; records each wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


def client_for(fake: FakeCimplify, fake_time: FakeTime, **options: Any) -> CimplifyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url=BASE)
    return CimplifyClient(
        BASE, SECRET, http=http, sleep=fake_time.sleep, clock=fake_time.clock, **options
    )


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


async def test_create_link_posts_with_key_and_parses_the_link(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(201, LINK))
    link = await client_for(fake, fake_time).create_link("1001")
    assert link.token == TOKEN
    assert link.url == LINK["url"]
    assert link.expires_at == datetime(2026, 11, 30, 12, tzinfo=UTC)
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url == f"{BASE}/v1/orders/1001/payment-link"
    assert request.content == b"{}"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    key = request.headers["Idempotency-Key"]
    assert len(key) == 32 and int(key, 16) >= 0


async def test_create_link_accepts_200(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(200, LINK))
    assert (await client_for(fake, fake_time).create_link("A_b-9")).token == TOKEN


async def test_order_parses_the_summary_without_sending_the_key(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(200, SUMMARY))
    order = await client_for(fake, fake_time).order(TOKEN)
    assert order.order_id == "1001"
    assert order.business_name == "Kofi's Kitchen"
    assert order.total == Money(Decimal("75.00"), "GHS")
    assert order.status is Status.PENDING
    assert order.expires_at == datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert order.expires_at.utcoffset() == timedelta(0)
    assert order.line_items[0] == LineItem("Jollof rice", 2, Decimal("30.00"), Decimal("60.00"))
    assert len(order.line_items) == 2
    (request,) = fake.requests
    assert request.url == f"{BASE}/v1/pay/orders/{TOKEN}"
    assert "Authorization" not in request.headers


async def test_status_parses_the_report(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(200, STATUS))
    report = await client_for(fake, fake_time).status(TOKEN)
    assert report.status is Status.PAID
    assert report.raw_status == "paid"
    assert report.updated_at == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    assert report.reference == "MOMO-77812"
    assert fake.requests[0].url == f"{BASE}/v1/pay/orders/{TOKEN}/status"
    assert "Authorization" not in fake.requests[0].headers


async def test_status_allows_null_reference_and_time(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(200, {"status": "pending", "updated_at": None, "reference": None}))
    report = await client_for(fake, fake_time).status(TOKEN)
    assert (report.status, report.updated_at, report.reference) == (Status.PENDING, None, None)


async def test_base_url_with_a_path_prefix_is_kept(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(200, STATUS))
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    client = CimplifyClient(f"{BASE}/api/", SECRET, http=http, sleep=fake_time.sleep)
    await client.status(TOKEN)
    assert fake.requests[0].url == f"{BASE}/api/v1/pay/orders/{TOKEN}/status"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, CimplifyAuthError),
        (404, OrderNotFound),
        (409, OrderNotPayable),
        (400, CimplifyProtocolError),
        (403, CimplifyProtocolError),
        (410, CimplifyProtocolError),
        (422, CimplifyProtocolError),
        (302, CimplifyProtocolError),
        (204, CimplifyProtocolError),
    ],
)
async def test_create_link_error_statuses(
    fake_time: FakeTime, code: int, error: type[CimplifyError]
) -> None:
    fake = FakeCimplify(answer(code, {"error": "x"}))
    with pytest.raises(error):
        await client_for(fake, fake_time).create_link("1001")
    assert len(fake.requests) == 1 and fake_time.waits == []


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, CimplifyAuthError),
        (404, LinkNotFound),
        (410, LinkExpired),
        (409, CimplifyProtocolError),
        (400, CimplifyProtocolError),
        (201, CimplifyProtocolError),
    ],
)
@pytest.mark.parametrize("call", ["order", "status"])
async def test_pay_api_error_statuses(
    fake_time: FakeTime, code: int, error: type[CimplifyError], call: str
) -> None:
    fake = FakeCimplify(answer(code, {"error": "x"}))
    with pytest.raises(error):
        await getattr(client_for(fake, fake_time), call)(TOKEN)
    assert len(fake.requests) == 1


async def test_5xx_is_retried_until_success(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(503), answer(500), answer(502), answer(201, LINK))
    link = await client_for(fake, fake_time, backoff_base=0.5).create_link("1001")
    assert link.token == TOKEN
    assert len(fake.requests) == 4
    assert len(fake_time.waits) == 3
    # full jitter: attempt n waits somewhere in [0, base * 2**(n-1)]
    for n, wait in enumerate(fake_time.waits):
        assert 0 <= wait <= 0.5 * 2**n


async def test_retries_reuse_one_idempotency_key_and_calls_do_not(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(503), httpx.ReadTimeout("slow"), answer(201, LINK))
    client = client_for(fake, fake_time)
    await client.create_link("1001")
    keys = {r.headers["Idempotency-Key"] for r in fake.requests}
    assert len(fake.requests) == 3 and len(keys) == 1
    await client.create_link("1001")
    assert fake.requests[-1].headers["Idempotency-Key"] not in keys


async def test_transport_errors_are_retried(fake_time: FakeTime) -> None:
    fake = FakeCimplify(
        httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), answer(200, STATUS)
    )
    report = await client_for(fake, fake_time).status(TOKEN)
    assert report.status is Status.PAID
    assert len(fake_time.waits) == 2


async def test_429_waits_its_retry_after_seconds(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(429, **{"Retry-After": "3"}), answer(200, STATUS))
    await client_for(fake, fake_time).status(TOKEN)
    assert fake_time.waits == [3.0]


async def test_429_waits_until_its_retry_after_date(fake_time: FakeTime) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=12), usegmt=True)
    fake = FakeCimplify(answer(429, **{"Retry-After": when}), answer(200, STATUS))
    await client_for(fake, fake_time).status(TOKEN)
    (wait,) = fake_time.waits
    assert 9 < wait <= 12


async def test_429_without_retry_after_uses_the_backoff(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(429), answer(429, **{"Retry-After": "soon"}), answer(200, STATUS))
    await client_for(fake, fake_time, backoff_base=0.25).status(TOKEN)
    assert len(fake_time.waits) == 2
    assert fake_time.waits[0] <= 0.25 and fake_time.waits[1] <= 0.5


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Mon, 23 Nov 2026 10:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Mon, 23 Nov 2026 09:00:00 GMT", now) == 0.0
    for junk in (None, "", "-5", "1.5", "tomorrow", "٣"):
        assert retry_after_seconds(junk, now) is None


async def test_budget_exhausted_raises_unavailable(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(503))
    client = client_for(fake, fake_time, retry_budget=3.0, backoff_base=1.0)
    with pytest.raises(CimplifyUnavailable, match=r"did not answer after \d+ attempts .*: 503"):
        await client.create_link("1001")
    assert sum(fake_time.waits) <= 3.0
    assert len(fake.requests) == len(fake_time.waits) + 1 >= 2


async def test_retry_after_beyond_the_budget_stops_at_once(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(429, **{"Retry-After": "60"}))
    with pytest.raises(CimplifyBusy) as caught:
        await client_for(fake, fake_time, retry_budget=20.0).status(TOKEN)
    assert caught.value.retry_after == 60.0
    assert fake_time.waits == [] and len(fake.requests) == 1


async def test_attempts_are_bounded_even_without_waits(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(429, **{"Retry-After": "0"}))
    with pytest.raises(CimplifyUnavailable):
        await client_for(fake, fake_time).status(TOKEN)
    assert 2 < len(fake.requests) <= 10


@pytest.mark.parametrize(
    "reply", [answer(503), answer(500), httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]
)
async def test_impatient_status_makes_one_attempt(fake_time: FakeTime, reply: Reply) -> None:
    fake = FakeCimplify(reply, answer(200, STATUS))
    with pytest.raises(CimplifyBusy) as caught:
        await client_for(fake, fake_time).status(TOKEN, patient=False)
    assert caught.value.retry_after is None
    assert len(fake.requests) == 1 and fake_time.waits == []


async def test_impatient_429_carries_retry_after(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(429, **{"Retry-After": "7"}))
    with pytest.raises(CimplifyUnavailable) as caught:
        await client_for(fake, fake_time).status(TOKEN, patient=False)
    assert getattr(caught.value, "retry_after", None) == 7.0
    assert len(fake.requests) == 1 and fake_time.waits == []


@pytest.mark.parametrize(
    "order_id", ["", "../admin", "1001/x", "1001?x=1", "10 01", "a" * 65, "é", "1001\n"]
)
async def test_invalid_order_id_sends_nothing(fake_time: FakeTime, order_id: str) -> None:
    fake = FakeCimplify(answer(201, LINK))
    with pytest.raises(InvalidOrderId):
        await client_for(fake, fake_time).create_link(order_id)
    assert fake.requests == []


@pytest.mark.parametrize("token", ["", "../x", "a b", "%2e%2e", "t" * 129, "plt/1", "x\n"])
@pytest.mark.parametrize("call", ["order", "status"])
async def test_invalid_token_sends_nothing(fake_time: FakeTime, token: str, call: str) -> None:
    fake = FakeCimplify(answer(200, STATUS))
    with pytest.raises(LinkNotFound):
        await getattr(client_for(fake, fake_time), call)(token)
    assert fake.requests == []


async def test_unknown_status_is_none_and_logged(
    fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeCimplify(
        answer(200, {**STATUS, "status": "refunded"}), answer(200, {**SUMMARY, "status": "on_hold"})
    )
    client = client_for(fake, fake_time)
    with caplog.at_level(logging.WARNING, logger="bot.cimplify"):
        report = await client.status(TOKEN)
        order = await client.order(TOKEN)
    assert report.status is None and report.raw_status == "refunded"
    assert order.status is None
    assert "'refunded'" in caplog.text and "'on_hold'" in caplog.text


def summary_with(**changes: Any) -> dict[str, Any]:
    return {**SUMMARY, **changes}


def item_with(**changes: Any) -> dict[str, Any]:
    return summary_with(line_items=[{**SUMMARY["line_items"][0], **changes}])


@pytest.mark.parametrize(
    "body",
    [
        summary_with(total=75.0),
        summary_with(total=75),
        summary_with(total="7.5e1"),
        summary_with(total="-75.00"),
        summary_with(total="75,00"),
        summary_with(total=" 75"),
        summary_with(total="NaN"),
        item_with(unit_price=30.0),
        item_with(total=60),
        item_with(quantity=2.0),
        item_with(quantity="2"),
        item_with(quantity=True),
        item_with(quantity=-1),
        summary_with(currency="ghs"),
        summary_with(currency="GHSS"),
        summary_with(expires_at="2026-11-30T12:00:00"),
        summary_with(expires_at="tomorrow"),
        summary_with(expires_at=1700000000),
        summary_with(order_id="10 01"),
        summary_with(token="plt_other"),
        summary_with(token="../x"),
        summary_with(status=1),
        summary_with(business_name=""),
        summary_with(line_items={}),
        summary_with(line_items=[1]),
        {k: v for k, v in SUMMARY.items() if k != "total"},
        [SUMMARY],
        "pending",
    ],
)
async def test_malformed_summaries_are_protocol_errors(fake_time: FakeTime, body: Any) -> None:
    fake = FakeCimplify(answer(200, body))
    with pytest.raises(CimplifyProtocolError):
        await client_for(fake, fake_time).order(TOKEN)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b'{"token": 1',
        b'{"status": NaN}',
        b"\xff\xfe",
        b'{"status": "paid", "status": "pending"}',
        b"[" * 100000,
    ],
)
async def test_unparseable_answers_are_protocol_errors(fake_time: FakeTime, content: bytes) -> None:
    fake = FakeCimplify(httpx.Response(200, content=content))
    with pytest.raises(CimplifyProtocolError):
        await client_for(fake, fake_time).status(TOKEN)


@pytest.mark.parametrize(
    "changes",
    [
        {"url": "javascript:alert(1)"},
        {"url": "https://x y"},
        {"url": 5},
        {"token": "a/b"},
        {"expires_at": "2026-11-30 12:00"},
    ],
)
async def test_malformed_links_are_protocol_errors(
    fake_time: FakeTime, changes: dict[str, Any]
) -> None:
    fake = FakeCimplify(answer(201, {**LINK, **changes}))
    with pytest.raises(CimplifyProtocolError):
        await client_for(fake, fake_time).create_link("1001")


async def test_logs_hold_neither_secret_nor_token(
    fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeCimplify(answer(503), answer(201, LINK), answer(502), answer(200, STATUS))
    client = client_for(fake, fake_time)
    with caplog.at_level(logging.DEBUG, logger="bot.cimplify"):
        await client.create_link("1001")
        await client.status(TOKEN)
    assert "/v1/orders/1001/payment-link" in caplog.text and "503" in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert SECRET not in caplog.text and "Bearer" not in caplog.text
    assert TOKEN not in caplog.text


def test_constructor_refuses_unusable_settings() -> None:
    with pytest.raises(ValueError, match="base URL"):
        CimplifyClient("ftp://cimplify.test", SECRET)
    with pytest.raises(ValueError, match="secret key"):
        CimplifyClient(BASE, "sk with space\r\n")


async def test_aclose_leaves_a_borrowed_client_open(fake_time: FakeTime) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(FakeCimplify(answer(200, STATUS))))
    await CimplifyClient(BASE, SECRET, http=http).aclose()
    assert not http.is_closed
    await http.aclose()


# Real sockets on loopback: refused connections and a server that never answers.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed now: nothing listens there


async def test_connection_refused_on_loopback(fake_time: FakeTime) -> None:
    client = CimplifyClient(
        f"http://127.0.0.1:{free_port()}",
        SECRET,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        timeout=2.0,
    )
    try:
        with pytest.raises(CimplifyBusy, match="ConnectError"):
            await client.status(TOKEN, patient=False)
        with pytest.raises(CimplifyBusy, match=r"after \d+ attempts.*ConnectError"):
            await client.create_link("1001")
        assert len(fake_time.waits) >= 1
    finally:
        await client.aclose()


async def test_timeout_against_a_silent_loopback_server(fake_time: FakeTime) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def accept_and_stay_silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept_and_stay_silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = CimplifyClient(
        f"http://127.0.0.1:{port}",
        SECRET,
        timeout=0.2,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    try:
        started = time.monotonic()
        with pytest.raises(CimplifyBusy, match="ReadTimeout"):
            await client.status(TOKEN, patient=False)
        assert time.monotonic() - started < 5
        assert len(connections) == 1  # it did connect: the failure is the silence
    finally:
        await client.aclose()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
