"""A signed Twilio post carries only what Twilio sends, each field once, WaId matching From.

Twilio's signature is over the URL and every distinct (field, value) pair: a
captured post could be replayed with a field doubled, or with fields Twilio
never sends where some reader might trust them. Each is refused with 403 after
the signature check, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.harness import PUBLIC_URL, WA_MERCHANT, World, running_world
from tests.store_rows import inbox_entries

INBOUND, STATUS = "/webhooks/twilio", "/webhooks/twilio/status"
SID = "SM" + "0123456789abcdef" * 2


@pytest.fixture
async def wa(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(tmp_path, whatsapp=True) as world:
        yield world


def inbound(world: World, sid: str = SID, **extra: str) -> list[tuple[str, str]]:
    """The fields of a text message from the merchant, as Twilio posts them."""
    assert world.twilio is not None
    fields = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": world.twilio.account_sid,
        "From": f"whatsapp:{WA_MERCHANT}",
        "To": world.twilio.sender,
        "Body": "help",
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "Ama",
        "WaId": WA_MERCHANT.removeprefix("+"),
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    return list((fields | extra).items())


def signature(world: World, path: str, pairs: list[tuple[str, str]]) -> str:
    """As Twilio signs: over the public URL and each distinct (field, value) pair."""
    assert world.twilio is not None
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    validator = RequestValidator(world.twilio.auth_token)
    return str(validator.compute_signature(PUBLIC_URL + path, _Multi(values)))


class _Multi(dict[str, list[str]]):
    """A multi-valued form for twilio's validator (it asks `getall`)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


async def post(
    world: World, path: str, pairs: list[tuple[str, str]], signed: str | None = None
) -> httpx.Response:
    headers = {
        "X-Twilio-Signature": signed or signature(world, path, pairs),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return await world.http.post(world.local_url + path, content=urlencode(pairs), headers=headers)


async def stored(world: World) -> set[str]:
    return set(await inbox_entries(world.settings.database, "twilio"))


async def test_a_post_as_twilio_sends_it_is_taken(wa: World) -> None:
    assert (await post(wa, INBOUND, inbound(wa))).status_code == 200
    assert SID in await stored(wa)


async def test_a_whatsapp_message_with_media_location_referral_and_reply_is_taken(
    wa: World,
) -> None:
    pairs = inbound(
        wa,
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME",
        MediaContentType0="image/jpeg",
        Latitude="5.6037",
        Longitude="-0.1870",
        Address="Makola Market",
        Label="Shop",
        ReferralBody="20% off",
        ReferralCtwaClid="ARAkLkA8",
        ReferralNumMedia="0",
        OriginalRepliedMessageSid="SM" + "f" * 32,
        OriginalRepliedMessageSender=wa.twilio.sender if wa.twilio else "",
        ButtonText="Pay",
        ButtonPayload="pay",
        Forwarded="true",
        MessageType="text",
        MessagingServiceSid="MG" + "0" * 32,
    )
    assert (await post(wa, INBOUND, pairs)).status_code == 200


@pytest.mark.parametrize("field", ["Role", "Merchant", "From2", "MediaUrl", "messagesid"])
async def test_a_signed_post_with_a_field_twilio_does_not_send_is_refused(
    wa: World, field: str
) -> None:
    response = await post(wa, INBOUND, [*inbound(wa), (field, "owner")])
    assert response.status_code == 403
    assert "Twilio does not send" in response.text
    assert await stored(wa) == set()


@pytest.mark.parametrize("doubled", ["Body", "From", "MessageSid", "WaId"])
async def test_a_captured_post_replayed_with_a_field_doubled_is_refused(
    wa: World, doubled: str
) -> None:
    genuine = inbound(wa)
    captured = signature(wa, INBOUND, genuine)
    recut = [*genuine, (doubled, dict(genuine)[doubled])]
    # The captured signature holds for the re-cut post: only the field rule stops it.
    assert signature(wa, INBOUND, recut) == captured
    response = await post(wa, INBOUND, recut, signed=captured)
    assert response.status_code == 403
    assert "more than once" in response.text
    assert await stored(wa) == set()


@pytest.mark.parametrize("wa_id", ["233200000002", "", "+233200000001", "233200000001 "])
async def test_a_wa_id_that_is_not_the_number_in_from_is_refused(wa: World, wa_id: str) -> None:
    response = await post(wa, INBOUND, inbound(wa, WaId=wa_id))
    assert response.status_code == 403
    assert "WaId" in response.text
    assert await stored(wa) == set()


async def test_a_status_callback_with_a_foreign_field_is_refused_and_a_true_one_taken(
    wa: World,
) -> None:
    assert wa.twilio is not None
    callback = [
        ("MessageSid", SID),
        ("SmsSid", SID),
        ("MessageStatus", "delivered"),
        ("SmsStatus", "delivered"),
        ("AccountSid", wa.twilio.account_sid),
        ("From", wa.twilio.sender),
        ("To", f"whatsapp:{WA_MERCHANT}"),
        ("ApiVersion", "2010-04-01"),
        ("ChannelPrefix", "whatsapp"),
        ("ChannelInstallSid", "XE" + "0" * 32),
        ("ChannelToAddress", WA_MERCHANT),
    ]
    refused = await post(wa, STATUS, [*callback, ("Status", "read")])
    assert refused.status_code == 403
    assert (await post(wa, STATUS, callback)).status_code == 204
    assert set(await inbox_entries(wa.settings.database, "twilio-status")) == {f"{SID}:delivered"}


async def test_a_forged_signature_is_still_refused_before_the_fields_are_read(
    wa: World,
) -> None:
    response = await post(wa, INBOUND, [*inbound(wa), ("Role", "x")], signed="AAAA")
    assert response.status_code == 403
    assert "bad X-Twilio-Signature" in response.text
