"""CimplifyClient.cancel_order (CONTRACT §1, the Orders SDK's cancel): the request, and
each failure mapped into bot/errors.py's tree."""

from __future__ import annotations

import httpx
import pytest

from bot.cimplify import CimplifyBusy
from bot.errors import (
    CimplifyAuthError,
    CimplifyError,
    CimplifyProtocolError,
    CimplifyUnavailable,
    InvalidOrderId,
    OrderAlreadyPaid,
    OrderNotFound,
)
from tests.test_cimplify import BASE, SECRET, FakeCimplify, FakeTime, answer, client_for

CANCELLED = {"order_id": "1001", "status": "cancelled"}


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


async def test_cancel_posts_an_empty_object_with_the_key(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(200, CANCELLED))
    await client_for(fake, fake_time).cancel_order("1001")
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url == f"{BASE}/v1/orders/1001/cancel"
    assert request.content == b"{}"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, CimplifyAuthError),
        (404, OrderNotFound),
        (409, OrderAlreadyPaid),
        (400, CimplifyProtocolError),
        (410, CimplifyProtocolError),
        (201, CimplifyProtocolError),
    ],
)
async def test_cancel_error_statuses(
    fake_time: FakeTime, code: int, error: type[CimplifyError]
) -> None:
    fake = FakeCimplify(answer(code, {"error": {"code": "x", "message": "x"}}))
    with pytest.raises(error):
        await client_for(fake, fake_time).cancel_order("1001")
    assert len(fake.requests) == 1 and fake_time.waits == []


async def test_429_waits_retry_after_then_succeeds(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(429, None, **{"Retry-After": "3"}), answer(200, CANCELLED))
    await client_for(fake, fake_time).cancel_order("1001")
    assert fake_time.waits == [3.0] and len(fake.requests) == 2


@pytest.mark.parametrize(
    "reply",
    [answer(503, {"error": "down"}), answer(429, None), httpx.ConnectError("refused")],
)
async def test_down_is_cimplify_unavailable_after_the_budget(
    fake_time: FakeTime, reply: httpx.Response | Exception
) -> None:
    fake = FakeCimplify(reply)
    with pytest.raises(CimplifyUnavailable) as raised:
        await client_for(fake, fake_time, retry_budget=2.0).cancel_order("1001")
    assert isinstance(raised.value, CimplifyBusy)
    assert len(fake.requests) > 1 and sum(fake_time.waits) <= 2.0


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": "1002", "status": "cancelled"},
        {"order_id": "1001", "status": "pending"},
        {"order_id": "1001"},
        ["cancelled"],
    ],
)
async def test_an_answer_that_is_not_a_cancel_of_this_order_is_refused(
    fake_time: FakeTime, body: object
) -> None:
    fake = FakeCimplify(answer(200, body))
    with pytest.raises(CimplifyProtocolError):
        await client_for(fake, fake_time).cancel_order("1001")


async def test_a_bad_order_id_is_refused_before_any_request(fake_time: FakeTime) -> None:
    fake = FakeCimplify(answer(200, CANCELLED))
    with pytest.raises(InvalidOrderId):
        await client_for(fake, fake_time).cancel_order("../1001")
    assert fake.requests == []
