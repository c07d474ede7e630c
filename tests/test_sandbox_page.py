"""The sandbox's customer side over HTTP: the page's routes refuse what a browser should
not send, two payments never interleave on one link, and page payments sign webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from bot import render
from bot.models import Money
from sandbox import AsgiServer, Sandbox, SandboxServer, catalogue
from sandbox.ledger import PaymentInProgress
from tests.test_sandbox import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    Receiver,
    create_link,
    link_status,
    until,
)

MOMO = {"method": "mobile_money", "provider": "mtn", "phone": "+233241234567"}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, retry_delays=(0.01,))
    sandbox.checkout.provider_delay = 0.05
    yield sandbox
    await sandbox.close()


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with SandboxServer(sandbox) as server, httpx.AsyncClient(base_url=server.url) as client:
        yield client


async def started(client: httpx.AsyncClient, order_id: str = "1001") -> tuple[str, str]:
    token = (await create_link(client, order_id)).json()["token"]
    answer = await client.post(f"/v1/pay/orders/{token}/init", json=MOMO)
    assert answer.status_code == 200
    return token, answer.json()["reference"]


async def awaiting(client: httpx.AsyncClient, token: str) -> None:
    async def reached() -> bool:
        return await link_status(client, token) == "awaiting_authorization"

    await until(reached)


async def test_a_page_payment_reaches_the_phone_and_settles_with_signed_webhooks(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    receiver = Receiver()
    async with AsgiServer(receiver.app) as hook:
        sandbox.webhook_url = f"{hook.url}/webhooks/cimplify"
        token, reference = await started(client)
        await awaiting(client, token)
        answer = await client.post(
            f"/sandbox/checkout/{token}/authorize", json={"reference": reference, "approve": True}
        )
        assert answer.json() == {"status": "paid", "reference": reference}
        events = await receiver.wait_events(2)
    assert {e["type"] for e in events} == {"payment.succeeded", "order.completed"}
    assert events[0]["data"]["reference"] == reference


async def test_the_answer_must_name_the_payment_under_way(client: httpx.AsyncClient) -> None:
    token, reference = await started(client)
    path = f"/sandbox/checkout/{token}/authorize"
    wrong = await client.post(path, json={"reference": "MOMO-12345678", "approve": True})
    assert wrong.status_code == 409
    for body in ({"reference": reference}, {"reference": "<x>", "approve": True}, {}):
        assert (await client.post(path, json=body)).status_code == 400
    unknown = await client.post(
        "/sandbox/checkout/plt_nope/authorize", json={"reference": reference, "approve": True}
    )
    assert unknown.status_code == 404
    assert await link_status(client, token) in ("processing", "awaiting_authorization")


async def test_two_payments_on_one_link_are_refused_not_interleaved(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    token, _ = await started(client)
    assert (await client.post(f"/v1/pay/orders/{token}/init", json=MOMO)).status_code == 409
    played = await client.post("/sandbox/orders/1001/pay", json={"step_delay": 0})
    assert played.status_code == 409
    with pytest.raises(PaymentInProgress):
        await sandbox.pay("1001")
    other = (await create_link(client, "1002", key="k2")).json()["token"]
    first = await client.post("/sandbox/orders/1002/pay", json={"step_delay": 0.5})
    second = await client.post("/sandbox/orders/1002/pay", json={"step_delay": 0.5})
    assert (first.status_code, second.status_code) == (202, 409)
    assert (await client.post(f"/v1/pay/orders/{other}/init", json=MOMO)).status_code == 409


async def test_the_banner_pay_example_works_on_a_fresh_sandbox(client: httpx.AsyncClient) -> None:
    answer = await client.post("/sandbox/orders/1001/pay", content=b'{"outcome": "paid"}')
    assert answer.status_code == 202
    assert answer.json()["url"].endswith(answer.json()["token"])


@pytest.mark.parametrize(
    "body", [{}, {"phone": "call me"}, {"phone": 233}, {"phone": "+2" * 20}, {"other": 1}]
)
async def test_link_codes_need_a_phone_number(client: httpx.AsyncClient, body: object) -> None:
    assert (await client.post("/sandbox/link/code", json=body)).status_code == 400


async def test_a_link_code_works_once_and_a_wrong_one_not_at_all(
    client: httpx.AsyncClient,
) -> None:
    phone = "+233241234567"
    code = (await client.post("/sandbox/link/code", json={"phone": phone})).json()["code"]
    wrong = "000000" if code != "000000" else "111111"
    bad = await client.post("/sandbox/link/sign-in", json={"phone": phone, "code": wrong})
    assert bad.status_code == 401
    good = await client.post("/sandbox/link/sign-in", json={"phone": phone, "code": code})
    assert good.status_code == 200 and good.json() == {"phone": phone, "methods": []}
    assert "cimplify_link" in good.cookies
    again = await client.post("/sandbox/link/sign-in", json={"phone": phone, "code": code})
    assert again.status_code == 401


async def test_enrolment_saves_the_way_a_guest_paid(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    token, reference = await started(client)
    early = await client.post("/sandbox/link/enrol", json={"token": token})
    assert early.status_code == 409  # nothing paid yet
    sandbox.checkout.authorize(token, reference, approve=True)
    enrolled = await client.post("/sandbox/link/enrol", json={"token": token})
    assert enrolled.status_code == 200
    [method] = enrolled.json()["methods"]
    assert (method["label"], method["provider"]) == ("MTN MoMo +233241234567", "mtn")
    other = (await create_link(client, "3001", key="k3")).json()["token"]
    in_kenya = await client.get("/sandbox/link/account", params={"token": other})
    assert in_kenya.json()["methods"] == []  # MTN MoMo Ghana cannot pay in shillings
    await client.post("/sandbox/link/sign-out", json={})
    assert (await client.get("/sandbox/link/account")).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/plt_nope", "/not-a-token", "/sandbox/3ds/plt_nope?reference=CARD-1", "/sandbox/assets/x"],
)
async def test_unknown_pages_are_404(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_the_card_challenge_sends_the_customer_back_to_the_page(
    client: httpx.AsyncClient,
) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    init = await client.post(f"/v1/pay/orders/{token}/init", json={"method": "card"})
    challenge = await client.get(init.json()["redirect_url"])
    assert challenge.status_code == 200 and "GH₵75.00" in challenge.text
    reference = init.json()["reference"]
    form = {"reference": reference, "answer": "approve"}
    back = await client.post(f"/sandbox/3ds/{token}", data=form)
    assert back.status_code == 303
    assert back.headers["location"] == f"/{token}?reference={reference}"
    assert await link_status(client, token) == "paid"
    bad = await client.post(f"/sandbox/3ds/{token}", data={"reference": reference, "answer": "x"})
    assert bad.status_code == 400


async def test_the_page_loads_nothing_from_outside(client: httpx.AsyncClient) -> None:
    token = (await create_link(client, "1001")).json()["token"]
    page = await client.get(f"/{token}")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("page.js", "page.css"):
        assert (await client.get(f"/sandbox/assets/{asset}")).status_code == 200


async def test_a_bank_transfer_in_naira_waits_for_the_transfer(client: httpx.AsyncClient) -> None:
    token = (await create_link(client, "2001")).json()["token"]
    init = await client.post(f"/v1/pay/orders/{token}/init", json={"method": "bank_transfer"})
    assert init.status_code == 200 and init.json()["reference"].startswith("BANK-")
    await awaiting(client, token)
    answer = {"reference": init.json()["reference"], "approve": True}
    await client.post(f"/sandbox/checkout/{token}/authorize", json=answer)
    assert await link_status(client, token) == "paid"


@pytest.mark.parametrize(
    "currency", ["GHS", "NGN", "KES", "UGX", "TZS", "RWF", "ZAR", "XOF", "XAF", "EGP", "USD"]
)
def test_the_page_writes_money_as_the_chat_does(currency: str) -> None:
    for amount in ("75.00", "12345.5", "0.25", "1000000"):
        chat = render.money(Money(Decimal(amount), currency))
        assert catalogue.format_money(Decimal(amount), currency) == chat
