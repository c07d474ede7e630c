"""The sandbox's cancel (CONTRACT §1, the Orders SDK's cancel), over real HTTP on loopback."""

from __future__ import annotations

import httpx
import pytest

from sandbox import Sandbox
from sandbox.records import OrderState
from tests.test_sandbox import SECRET_KEY, create_link, link_status

pytest_plugins = ["tests.test_sandbox"]  # its sandbox, server, client and clock fixtures

AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}


async def cancel(client: httpx.AsyncClient, order_id: str, **headers: str) -> httpx.Response:
    return await client.post(f"/v1/orders/{order_id}/cancel", json={}, headers=AUTH | headers)


async def test_cancel_answers_200_and_every_link_of_the_order_reports_cancelled(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    response = await cancel(client, "1001")

    assert (response.status_code, response.json()) == (
        200,
        {"order_id": "1001", "status": "cancelled"},
    )
    assert await link_status(client, token) == "cancelled"
    summary = await client.get(f"/v1/pay/orders/{token}")
    assert summary.json()["status"] == "cancelled"
    assert sandbox.ledger.order("1001").state is OrderState.CANCELLED
    again = await create_link(client, "1001", key="key-2")
    assert again.status_code == 409  # a cancelled order takes no new link


async def test_a_cancelled_link_takes_no_payment(client: httpx.AsyncClient) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    await cancel(client, "1001")
    init = await client.post(
        f"/v1/pay/orders/{token}/init",
        json={"method": "mobile_money", "provider": "mtn", "phone": "+233241234567"},
    )
    assert init.status_code == 409
    assert init.json()["error"]["code"] == "order_not_payable"


async def test_cancelling_twice_is_200_both_times(client: httpx.AsyncClient) -> None:
    first, second = await cancel(client, "1002"), await cancel(client, "1002")
    assert (first.status_code, second.status_code) == (200, 200)


async def test_a_paid_order_is_409_and_stays_paid(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    token = (await create_link(client, "1004")).json()["token"]
    response = await cancel(client, "1004")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_paid"
    assert await link_status(client, token) == "paid"
    assert sandbox.ledger.order("1004").state is OrderState.PAID


@pytest.mark.parametrize("order_id", ["9999", "bad.id"])
async def test_an_unknown_order_is_404(client: httpx.AsyncClient, order_id: str) -> None:
    response = await cancel(client, order_id)
    assert response.status_code == 404


async def test_cancel_needs_the_secret_key(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    wrong = await cancel(client, "1001", Authorization="Bearer sk_test_wrong")
    missing = await client.post("/v1/orders/1001/cancel", json={})
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert sandbox.ledger.order("1001").state is OrderState.OPEN


async def test_a_body_that_is_not_an_object_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/orders/1001/cancel", content=b"[1]", headers=AUTH)
    assert response.status_code == 400
