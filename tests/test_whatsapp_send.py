"""WhatsAppMessenger against a recording httpx.MockTransport and a real store (each in turn).

What is checked is what Twilio would get: the form fields, the URL, the basic
auth, and how each of Twilio's answers turns into the outbox's errors.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from bot.config import Settings
from bot.errors import ChannelOff, PermanentDelivery, RetryLater, TransientDelivery
from bot.i18n import Voice
from bot.models import ChatRef, Link, MessageKind, Outgoing, Status
from bot.outbox import Delivery
from bot.ports import Store
from handlers.whatsapp_send import NO_TEMPLATE, WhatsAppMessenger
from storage import store_for
from tests.factories import NOW, make_link

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "9f3c1e5d7b2a4c6e8f0a1b3c5d7e9f11"
SENDER = "whatsapp:+14155238886"
INVOICE_TEMPLATE = "HX" + "1" * 32
STATUS_TEMPLATE = "HX" + "2" * 32
PUBLIC = "https://pay.example.com/bot"
MESSAGES_URL = f"https://twilio.test/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
AMA = ChatRef("whatsapp", "+233241234567")
SENT_SID = "SM" + "ab" * 16

ENV = {
    "TWILIO_ACCOUNT_SID": ACCOUNT,
    "TWILIO_AUTH_TOKEN": TOKEN,
    "TWILIO_WHATSAPP_FROM": SENDER,
    "TWILIO_API_BASE": "https://twilio.test/",
    "PAYBOT_PUBLIC_URL": PUBLIC,
    "TWILIO_INVOICE_CONTENT_SID": INVOICE_TEMPLATE,
    "TWILIO_STATUS_CONTENT_SID": STATUS_TEMPLATE,
}
SETTINGS = Settings.from_env(ENV, dotenv_path=None)
NO_TEMPLATES = SETTINGS.with_overrides(
    twilio_invoice_content_sid=None, twilio_status_content_sid=None
)

Answer = Callable[[httpx.Request], httpx.Response]


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"sid": SENT_SID, "status": "queued"})


class FakeMessagesApi:
    """Records every request; answers with `answer` (Twilio's 201 unless told otherwise)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Answer = created

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def fields(self, index: int = -1) -> dict[str, list[str]]:
        return parse_qs(self.requests[index].content.decode(), keep_blank_values=True)

    def single_fields(self) -> dict[str, str]:
        fields = self.fields()
        assert all(len(values) == 1 for values in fields.values()), fields
        return {name: values[0] for name, values in fields.items()}


@pytest.fixture
def api() -> FakeMessagesApi:
    return FakeMessagesApi()


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    """The store `database` names, open: the 24-hour window is read from it."""
    opened = store_for(database)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def http(api: FakeMessagesApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(api.handle)) as client:
        yield client


def messenger(
    store: Store, http: httpx.AsyncClient, settings: Settings = SETTINGS
) -> WhatsAppMessenger:
    return WhatsAppMessenger(settings, store, http, lambda: NOW)


async def customer_wrote(store: Store, ago: timedelta, chat: ChatRef = AMA) -> None:
    """The chat wrote `ago` before NOW, as the WhatsApp channel notes when it handles it."""
    async with store.transaction() as tx:
        await tx.contacts.note_inbound(chat, NOW - ago)
        assert await tx.contacts.last_inbound_at(chat) == NOW - ago


def invoice(link: Link, chat: ChatRef = AMA) -> Delivery:
    text = f"{link.business_name}\nOrder {link.order_id}\nPay: {link.url}"
    return Delivery(Outgoing(chat, MessageKind.INVOICE, text, link.id), link, None)


def status_text(link: Link, chat: ChatRef = AMA) -> Delivery:
    text = f"Order {link.order_id}: {link.status_words}"
    return Delivery(Outgoing(chat, MessageKind.TEXT, text, link.id), link, None)


def plain_text(text: str, chat: ChatRef = AMA) -> Delivery:
    return Delivery(Outgoing(chat, MessageKind.TEXT, text), None, None)


async def test_within_the_window_an_invoice_is_body_and_qr_media(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    await customer_wrote(store, timedelta(hours=23, minutes=59))
    link = make_link()

    sid = await messenger(store, http).deliver(invoice(link))

    assert sid == SENT_SID
    assert len(api.requests) == 1
    request = api.requests[0]
    assert (request.method, str(request.url)) == ("POST", MESSAGES_URL)
    assert api.single_fields() == {
        "From": SENDER,
        "To": "whatsapp:+233241234567",
        "StatusCallback": f"{PUBLIC}/webhooks/twilio/status",
        "Body": invoice(link).message.text,
        "MediaUrl": f"{PUBLIC}/qr/{link.id}.png",
    }


async def test_requests_carry_basic_auth_of_sid_and_token(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    await customer_wrote(store, timedelta(minutes=1))
    await messenger(store, http).deliver(plain_text("hello"))

    scheme, _, encoded = api.requests[0].headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{ACCOUNT}:{TOKEN}"
    assert api.single_fields()["Body"] == "hello"
    assert "MediaUrl" not in api.fields()


async def test_outside_the_window_an_invoice_is_the_invoice_template(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    await customer_wrote(store, timedelta(hours=24, seconds=1))
    link = make_link()

    sid = await messenger(store, http).deliver(invoice(link))

    assert sid == SENT_SID
    fields = api.single_fields()
    assert "Body" not in fields
    assert "MediaUrl" not in fields
    assert fields["ContentSid"] == INVOICE_TEMPLATE
    assert json.loads(fields["ContentVariables"]) == {
        "1": "Kofi's Kitchen",
        "2": "1001",
        "3": "GH₵20.00",
        "4": link.url,
    }
    assert fields["To"] == "whatsapp:+233241234567"
    assert fields["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/status"


async def test_a_chat_that_never_wrote_gets_the_status_template(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    link = make_link(status=Status.AWAITING_AUTHORIZATION)

    await messenger(store, http).deliver(status_text(link))

    fields = api.single_fields()
    assert fields["ContentSid"] == STATUS_TEMPLATE
    assert json.loads(fields["ContentVariables"]) == {"1": "1001", "2": "Awaiting authorization"}


async def test_the_status_template_says_confirmed_for_a_confirmed_link(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    link = make_link(status=Status.PAID)
    confirmed = dataclasses.replace(link, confirmed_at=NOW)

    await messenger(store, http).deliver(status_text(confirmed))

    assert json.loads(api.single_fields()["ContentVariables"])["2"] == "Confirmed"


async def test_template_variables_are_one_line_and_never_empty(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    link = dataclasses.replace(make_link(), business_name="Kofi's\n\tKitchen  ")
    await messenger(store, http).deliver(invoice(link))
    assert json.loads(api.single_fields()["ContentVariables"])["1"] == "Kofi's Kitchen"

    nameless = dataclasses.replace(make_link(), business_name=" \n")
    await messenger(store, http).deliver(invoice(nameless))
    assert json.loads(api.single_fields()["ContentVariables"])["1"] == "-"


@pytest.mark.parametrize("delivery", [invoice(make_link()), status_text(make_link())])
async def test_outside_the_window_without_a_template_nothing_is_sent(
    delivery: Delivery, store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    await customer_wrote(store, timedelta(days=2))

    with pytest.raises(PermanentDelivery, match="24-hour window") as raised:
        await messenger(store, http, NO_TEMPLATES).deliver(delivery)

    assert str(raised.value) == NO_TEMPLATE
    assert api.requests == []


async def test_outside_the_window_a_text_about_no_link_is_not_sent(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    with pytest.raises(PermanentDelivery, match="24-hour window"):
        await messenger(store, http).deliver(plain_text("Type /invoice <order_id>"))
    assert api.requests == []


async def test_the_window_is_per_chat(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    await customer_wrote(store, timedelta(minutes=5), ChatRef("whatsapp", "+2348031234567"))
    await messenger(store, http).deliver(invoice(make_link()))
    assert api.single_fields()["ContentSid"] == INVOICE_TEMPLATE


async def test_a_caption_edit_sends_nothing(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    link = make_link()
    caption = Delivery(Outgoing(AMA, MessageKind.CAPTION, "Paid", link.id), link, SENT_SID)

    assert await messenger(store, http, NO_TEMPLATES).deliver(caption) is None
    assert api.requests == []


async def test_a_long_body_is_clipped_to_twilios_limit(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    await customer_wrote(store, timedelta(hours=1))
    await messenger(store, http).deliver(plain_text("x" * 2000))
    body = api.single_fields()["Body"]
    assert len(body) == 1600
    assert body.endswith("x…")


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("0.5", 0.5), (None, 1.0)])
async def test_429_asks_to_retry_later(
    header: str | None,
    seconds: float,
    store: Store,
    http: httpx.AsyncClient,
    api: FakeMessagesApi,
) -> None:
    headers = {} if header is None else {"Retry-After": header}
    body = {"code": 20429, "message": "Too Many Requests"}
    api.answer = lambda request: httpx.Response(429, json=body, headers=headers)

    with pytest.raises(RetryLater) as raised:
        await messenger(store, http).deliver(status_text(make_link()))
    assert raised.value.seconds == seconds


def raises(error: Exception) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error

    return answer


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: httpx.Response(500, json={"code": 20500, "message": "Internal"}),
        lambda request: httpx.Response(503, text="<html>busy</html>"),
        raises(httpx.ReadTimeout("timed out")),
        raises(httpx.ConnectError("connection refused")),
        # Our credentials, not the message: kept until the operator fixes them.
        lambda request: httpx.Response(401, json={"code": 20003, "message": "Authenticate"}),
    ],
    ids=["500", "503-html", "timeout", "refused", "401"],
)
async def test_trouble_on_twilios_side_is_transient(
    answer: Answer, store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    api.answer = answer
    with pytest.raises(TransientDelivery) as raised:
        await messenger(store, http).deliver(invoice(make_link()))
    assert TOKEN not in str(raised.value)
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (21211, "Invalid 'To' Phone Number: whatsapp:+233241234567"),
        (21610, "Attempt to send to unsubscribed recipient"),
        (63016, "Failed to send freeform message because you are outside the allowed window."),
    ],
)
async def test_a_4xx_is_permanent_and_carries_twilios_code(
    code: int, message: str, store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    body = {"code": code, "message": message, "status": 400}
    api.answer = lambda request: httpx.Response(400, json=body)

    with pytest.raises(PermanentDelivery) as raised:
        await messenger(store, http).deliver(invoice(make_link()))
    assert str(raised.value) == f"Twilio {code}: {message}"


async def test_a_4xx_without_twilios_json_names_the_http_status(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    api.answer = lambda request: httpx.Response(404, text="not found")
    with pytest.raises(PermanentDelivery, match=r"^Twilio 404: no error detail$"):
        await messenger(store, http).deliver(invoice(make_link()))


async def test_an_accepted_message_without_a_valid_sid_is_sent_but_unmatched(
    store: Store,
    http: httpx.AsyncClient,
    api: FakeMessagesApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.answer = lambda request: httpx.Response(201, json={"sid": "not-a-sid"})
    with caplog.at_level(logging.WARNING, logger="handlers.whatsapp_send"):
        assert await messenger(store, http).deliver(invoice(make_link())) is None
    assert "no valid sid" in caplog.text
    assert TOKEN not in caplog.text


async def test_the_messenger_needs_the_whatsapp_settings(
    store: Store, http: httpx.AsyncClient
) -> None:
    off = Settings.from_env({}, dotenv_path=None)
    with pytest.raises(ChannelOff):
        WhatsAppMessenger(off, store, http, lambda: NOW)


async def test_a_french_chat_gets_the_templates_values_in_french(
    store: Store, http: httpx.AsyncClient, api: FakeMessagesApi
) -> None:
    french = Voice("fr")
    link = make_link(status=Status.AWAITING_AUTHORIZATION)
    await messenger(store, http).deliver(dataclasses.replace(invoice(link), voice=french))
    await messenger(store, http).deliver(dataclasses.replace(status_text(link), voice=french))

    sent = [json.loads(api.fields(i)["ContentVariables"][0]) for i in (0, 1)]
    assert [sent[0]["3"], sent[1]["2"]] == ["20,00 GH₵", "En attente d'autorisation"]
