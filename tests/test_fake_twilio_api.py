"""The fake Twilio, driven with plain httpx the way paybot talks to Twilio."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tests.fakes.loopback import LoopbackServer
from tests.fakes.twilio_api import FakeTwilio, TwilioMessage

CUSTOMER = "+233241234567"
PUBLIC = "https://paybot.example"
TEMPLATE = "HX" + "ab" * 16


@dataclass(frozen=True)
class Received:
    url: str
    signature: str | None
    fields: dict[str, str]


class Receiver:
    """paybot's side of the webhooks: records every POST, answers 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.server = LoopbackServer(
            Starlette(routes=[Route("/{path:path}", self._record, methods=["POST"])])
        )

    async def _record(self, request: Request) -> Response:
        fields = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        signature = request.headers.get("x-twilio-signature")
        self.received.append(Received(str(request.url), signature, fields))
        return Response("<Response/>", media_type="text/xml")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as running:
        yield running


@pytest.fixture
def idle_fake() -> FakeTwilio:
    """A fake that only drives paybot: its own server need not run."""
    return FakeTwilio()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = Receiver()
    await running.server.start()
    try:
        yield running
    finally:
        await running.server.stop()


async def send(
    fake: FakeTwilio,
    fields: list[tuple[str, str]],
    *,
    auth: tuple[str, str] | None = None,
    account_sid: str | None = None,
) -> httpx.Response:
    """POST to the Messages resource as paybot does: basic auth, a urlencoded form."""
    url = f"{fake.base_url}/2010-04-01/Accounts/{account_sid or fake.account_sid}/Messages.json"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient() as client:
        return await client.post(
            url,
            content=urlencode(fields),
            headers=headers,
            auth=auth or (fake.account_sid, fake.auth_token),
        )


def text_to(
    fake: FakeTwilio, number: str = CUSTOMER, body: str = "Pay here"
) -> list[tuple[str, str]]:
    return [("To", f"whatsapp:{number}"), ("From", fake.sender), ("Body", body)]


def twilio_error(response: httpx.Response) -> tuple[int, int]:
    """(HTTP status, Twilio code) of an error answer, after checking its shape."""
    error = response.json()
    assert error["more_info"] == f"https://www.twilio.com/docs/errors/{error['code']}"
    assert error["status"] == response.status_code and error["message"]
    return response.status_code, error["code"]


def signed_for(url: str, received: Received, token: str) -> bool:
    assert received.signature is not None
    return bool(RequestValidator(token).validate(url, received.fields, received.signature))


# ---- the Messages resource


async def test_a_message_with_media_is_accepted_and_recorded(fake: FakeTwilio) -> None:
    media = ["https://paybot.example/qr/abc.png", "https://paybot.example/qr/def.png"]
    callback = "https://paybot.example/webhooks/twilio/status"
    fields = text_to(fake, body="Order 1001: GHS 25.00") + [("MediaUrl", m) for m in media]
    response = await send(fake, [*fields, ("StatusCallback", callback)])

    assert response.status_code == 201
    resource = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", resource["sid"])
    assert resource["status"] == "queued" and resource["num_media"] == "2"
    assert (resource["to"], resource["from"]) == (f"whatsapp:{CUSTOMER}", fake.sender)
    assert resource["body"] == "Order 1001: GHS 25.00"
    sid, to = resource["sid"], f"whatsapp:{CUSTOMER}"
    assert resource["uri"] == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}.json"
    recorded = TwilioMessage(sid, to, fake.sender, resource["body"], media, None, None, callback)
    assert fake.to(CUSTOMER) == fake.to(to) == fake.messages == [recorded]


async def test_a_template_message_keeps_its_content_variables(fake: FakeTwilio) -> None:
    fields = [("To", f"whatsapp:{CUSTOMER}"), ("From", fake.sender), ("ContentSid", TEMPLATE)]
    response = await send(fake, [*fields, ("ContentVariables", '{"1": "1001", "2": "GHS 25.00"}')])

    assert response.status_code == 201
    [message] = fake.to(CUSTOMER)
    assert (message.body, message.content_sid) == (None, TEMPLATE)
    assert message.content_variables == {"1": "1001", "2": "GHS 25.00"}


async def test_wrong_credentials_are_refused_and_nothing_is_recorded(fake: FakeTwilio) -> None:
    wrong_token = await send(fake, text_to(fake), auth=(fake.account_sid, "not-the-token"))
    other_account = await send(fake, text_to(fake), account_sid="AC" + "1" * 32)

    assert twilio_error(wrong_token) == (401, 20003)
    assert wrong_token.headers["WWW-Authenticate"].startswith("Basic")
    assert twilio_error(other_account) == (404, 20404)
    async with httpx.AsyncClient() as client:
        url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
        no_auth = await client.post(url, data=dict(text_to(fake)))
    assert twilio_error(no_auth) == (401, 20003)
    assert fake.messages == [] and fake.requests == []


INVALID = [  # (what changes in a valid text message, the Twilio error code)
    ({"To": None}, 21211),
    ({"To": CUSTOMER}, 21211),  # no whatsapp: prefix
    ({"From": "whatsapp:15550001111"}, 21211),  # no +
    ({"From": "whatsapp:+15559999999"}, 63007),  # not our sender
    ({"Body": None}, 21619),
    ({"Body": ""}, 21619),
    ({"Body": "x" * 1601}, 21617),
    ({"MediaUrl": "file:///etc/passwd"}, 21620),
    ({"ContentSid": "not-a-sid"}, 21655),
    ({"ContentSid": TEMPLATE, "ContentVariables": "[1, 2]"}, 21656),
    ({"StatusCallback": "not a url"}, 21609),
]


async def test_invalid_messages_get_twilio_errors(fake: FakeTwilio) -> None:
    # One server for every case: starting and stopping uvicorn costs ~0.2 s each.
    for change, code in INVALID:
        fields = dict(text_to(fake)) | change
        response = await send(fake, [(k, v) for k, v in fields.items() if v is not None])
        assert twilio_error(response) == (400, code), change
    assert fake.messages == [] and len(fake.requests) == len(INVALID)


# ---- faults


async def test_fail_next_fails_that_many_sends_then_succeeds(fake: FakeTwilio) -> None:
    fake.fail_next(count=2)
    fake.fail_next(status=429, code=20429, message="Too Many Requests", retry_after=3)

    first, second, limited, ok = [await send(fake, text_to(fake, body=str(n))) for n in range(4)]

    assert twilio_error(first) == twilio_error(second) == (500, 20500)
    assert "Retry-After" not in first.headers
    assert twilio_error(limited) == (429, 20429) and limited.headers["Retry-After"] == "3"
    assert ok.status_code == 201
    assert [m.body for m in fake.messages] == ["3"] and len(fake.requests) == 4


async def test_a_rejected_number_fails_every_time_and_others_go_through(fake: FakeTwilio) -> None:
    fake.reject(CUSTOMER, code=63016, message="Outside the allowed window")

    refused = [await send(fake, text_to(fake)) for _ in range(2)]
    other = await send(fake, text_to(fake, number="+233209999999"))

    assert [response.json() for response in refused] == [
        {
            "code": 63016,
            "message": "Outside the allowed window",
            "more_info": "https://www.twilio.com/docs/errors/63016",
            "status": 400,
        }
    ] * 2
    assert other.status_code == 201
    assert fake.to(CUSTOMER) == [] and len(fake.to("+233209999999")) == 1


async def test_wait_for_returns_once_paybot_has_sent(fake: FakeTwilio) -> None:
    sending = asyncio.create_task(send(fake, text_to(fake, body="later")))
    message = await fake.wait_for(lambda: next(iter(fake.to(CUSTOMER)), None))
    await sending

    assert message.body == "later"
    with pytest.raises(AssertionError, match=r"condition not met within 0\.05s; 1 sends"):
        await fake.wait_for(lambda: len(fake.messages) > 1, timeout=0.05)


# ---- driving paybot


async def test_send_inbound_is_signed_over_the_public_url(
    idle_fake: FakeTwilio, receiver: Receiver
) -> None:
    response = await idle_fake.send_inbound(
        receiver.server.base_url,
        CUSTOMER,
        "invoice 1001",
        message_sid="SM" + "c" * 32,
        public_url=PUBLIC,
    )

    assert response.status_code == 200
    [inbound] = receiver.received
    assert inbound.url == f"{receiver.server.base_url}/webhooks/twilio"
    assert signed_for(f"{PUBLIC}/webhooks/twilio", inbound, idle_fake.auth_token)
    assert not signed_for(inbound.url, inbound, idle_fake.auth_token)
    assert not signed_for(f"{PUBLIC}/webhooks/twilio", inbound, "another-token")
    assert inbound.fields["MessageSid"] == "SM" + "c" * 32
    assert inbound.fields["From"] == f"whatsapp:{CUSTOMER}"
    assert inbound.fields["To"] == idle_fake.sender
    assert (inbound.fields["Body"], inbound.fields["NumMedia"]) == ("invoice 1001", "0")
    assert inbound.fields["AccountSid"] == idle_fake.account_sid and inbound.fields["ProfileName"]


async def test_send_inbound_without_public_url_signs_the_url_it_posts_to(
    idle_fake: FakeTwilio, receiver: Receiver
) -> None:
    await idle_fake.send_inbound(receiver.server.base_url, f"whatsapp:{CUSTOMER}", "help")
    await idle_fake.send_inbound(receiver.server.base_url, CUSTOMER, "help")

    first, second = receiver.received
    assert signed_for(first.url, first, idle_fake.auth_token)
    assert first.fields["From"] == second.fields["From"] == f"whatsapp:{CUSTOMER}"
    assert re.fullmatch(r"SM[0-9a-f]{32}", first.fields["MessageSid"])
    assert first.fields["MessageSid"] != second.fields["MessageSid"]


async def test_a_forged_or_missing_signature_is_sent_as_given(
    idle_fake: FakeTwilio, receiver: Receiver
) -> None:
    await idle_fake.send_inbound(receiver.server.base_url, CUSTOMER, "help", signature="Zm9yZ2Vk")
    await idle_fake.send_inbound(receiver.server.base_url, CUSTOMER, "help", signature="")

    forged, unsigned = receiver.received
    assert forged.signature == "Zm9yZ2Vk"
    assert not signed_for(forged.url, forged, idle_fake.auth_token)
    assert unsigned.signature is None


async def test_report_status_posts_a_signed_callback(fake: FakeTwilio, receiver: Receiver) -> None:
    callback = f"{receiver.server.base_url}/webhooks/twilio/status"
    await send(fake, [*text_to(fake), ("StatusCallback", callback)])
    [message] = fake.messages

    delivered = await fake.report_status(message, "delivered")
    await fake.report_status(message, "failed")

    assert delivered.status_code == 200
    ok, failed = receiver.received
    assert ok.url == failed.url == callback
    assert signed_for(callback, ok, fake.auth_token)
    assert signed_for(callback, failed, fake.auth_token)
    assert (ok.fields["MessageSid"], ok.fields["MessageStatus"]) == (message.sid, "delivered")
    assert (ok.fields["To"], ok.fields["From"]) == (message.to, message.from_)
    assert "ErrorCode" not in ok.fields and failed.fields["ErrorCode"] == "30008"


async def test_report_status_to_a_public_callback_is_delivered_locally(
    idle_fake: FakeTwilio, receiver: Receiver
) -> None:
    callback = f"{PUBLIC}/webhooks/twilio/status?link=7"
    to, sender = f"whatsapp:{CUSTOMER}", idle_fake.sender
    message = TwilioMessage("SM" + "d" * 32, to, sender, "hi", [], None, None, callback)

    await idle_fake.report_status(message, "read", deliver_to=receiver.server.base_url)

    [status] = receiver.received
    assert status.url == f"{receiver.server.base_url}/webhooks/twilio/status?link=7"
    assert signed_for(callback, status, idle_fake.auth_token)
    assert status.fields["MessageStatus"] == "read"


async def test_report_status_can_be_signed_over_the_public_url(
    idle_fake: FakeTwilio, receiver: Receiver
) -> None:
    callback = f"{receiver.server.base_url}/webhooks/twilio/status"
    to, sender = f"whatsapp:{CUSTOMER}", idle_fake.sender
    message = TwilioMessage("SM" + "e" * 32, to, sender, None, [], TEMPLATE, {}, callback)

    await idle_fake.report_status(message, "undelivered", public_url=PUBLIC)

    [status] = receiver.received
    assert status.url == callback
    assert signed_for(f"{PUBLIC}/webhooks/twilio/status", status, idle_fake.auth_token)
    assert not signed_for(callback, status, idle_fake.auth_token)
    assert status.fields["ErrorCode"] == "30008"


async def test_report_status_needs_a_status_callback(idle_fake: FakeTwilio) -> None:
    message = TwilioMessage(
        "SM" + "f" * 32, f"whatsapp:{CUSTOMER}", idle_fake.sender, "hi", [], None, None, None
    )

    with pytest.raises(ValueError, match="no StatusCallback"):
        await idle_fake.report_status(message, "sent")
