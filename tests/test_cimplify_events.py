"""WebhookVerifier: Standard Webhooks signatures first, then a strict event schema."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from standardwebhooks import Webhook

from bot.cimplify import WebhookVerifier as ReExported
from bot.cimplify_events import WebhookVerifier, parse_timestamp
from bot.errors import BadPayload, BadSignature
from bot.models import EventType, Money

SECRET = "whsec_" + base64.b64encode(b"paybot-test-webhook-key-32-bytes").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-key-of-thirty-two-bytes!").decode()
EVENT = {
    "id": "evt_01J0000000",
    "type": "payment.succeeded",
    "created_at": "2026-11-23T10:15:00Z",
    "data": {
        "order_id": "1001",
        "token": "plt_8fK2abc",
        "amount": "75.00",
        "currency": "GHS",
        "reference": "MOMO-77812",
    },
}


def encode(event: Any) -> bytes:
    return json.dumps(event).encode()


def signed(body: bytes, *, secret: str = SECRET, at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign("msg_1", at, body.decode())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def raw_hmac_headers(body: bytes) -> dict[str, str]:
    """A correct HMAC over raw bytes, for bodies the library cannot sign (not UTF-8)."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    stamp = str(int(datetime.now(UTC).timestamp()))
    digest = hmac.new(key, b"msg_1." + stamp.encode() + b"." + body, hashlib.sha256).digest()
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


@pytest.fixture
def verifier() -> WebhookVerifier:
    return WebhookVerifier(SECRET)


def test_a_signed_event_is_verified_and_parsed(verifier: WebhookVerifier) -> None:
    body = encode(EVENT)
    event = verifier.verify(body, signed(body))
    assert event.id == "evt_01J0000000"
    assert event.type == EventType.PAYMENT_SUCCEEDED
    assert event.created_at == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    assert event.order_id == "1001"
    assert event.token == "plt_8fK2abc"
    assert event.amount == Money(Decimal("75.00"), "GHS")
    assert event.reference == "MOMO-77812"


def test_the_client_module_re_exports_the_verifier() -> None:
    assert ReExported is WebhookVerifier


def test_header_names_are_case_insensitive(verifier: WebhookVerifier) -> None:
    body = encode(EVENT)
    headers = {name.title(): value for name, value in signed(body).items()}
    assert verifier.verify(body, headers).id == "evt_01J0000000"


def test_one_matching_signature_among_several_is_enough(verifier: WebhookVerifier) -> None:
    body = encode(EVENT)
    headers = signed(body)
    bogus = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["webhook-signature"] = f"v2,abc {bogus} {headers['webhook-signature']}"
    assert verifier.verify(body, headers).order_id == "1001"


def test_a_timestamp_within_tolerance_is_accepted(verifier: WebhookVerifier) -> None:
    body = encode(EVENT)
    at = datetime.now(UTC) - timedelta(minutes=4)
    assert verifier.verify(body, signed(body, at=at)).id == "evt_01J0000000"


def test_a_tampered_body_is_refused(verifier: WebhookVerifier) -> None:
    headers = signed(encode(EVENT))
    tampered = encode({**EVENT, "data": {**EVENT["data"], "amount": "7500.00"}})
    with pytest.raises(BadSignature):
        verifier.verify(tampered, headers)


def test_another_secret_is_refused(verifier: WebhookVerifier) -> None:
    body = encode(EVENT)
    with pytest.raises(BadSignature):
        verifier.verify(body, signed(body, secret=OTHER_SECRET))


@pytest.mark.parametrize("minutes", [-6, 6, -60 * 24])
def test_stale_and_future_timestamps_are_refused(verifier: WebhookVerifier, minutes: int) -> None:
    body = encode(EVENT)
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    with pytest.raises(BadSignature):
        verifier.verify(body, signed(body, at=at))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(verifier: WebhookVerifier, missing: str) -> None:
    body = encode(EVENT)
    headers = signed(body)
    del headers[missing]
    with pytest.raises(BadSignature):
        verifier.verify(body, headers)
    with pytest.raises(BadSignature):
        verifier.verify(body, {**headers, missing: ""})


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("webhook-signature", "v1"),  # no comma: the library's split raises ValueError
        ("webhook-signature", "v1,a,b"),
        ("webhook-signature", "v1,!!!not base64!!!"),
        ("webhook-signature", "v1,abc"),  # bad base64 padding: binascii.Error
        ("webhook-signature", "v1,"),
        ("webhook-timestamp", "1.7e9"),
        ("webhook-timestamp", "nan"),
        ("webhook-timestamp", "-5"),
        ("webhook-timestamp", "١٧٠٠٠٠٠٠٠٠"),
        ("webhook-timestamp", "99999999999999999999"),
    ],
)
def test_garbage_headers_are_refused(verifier: WebhookVerifier, header: str, value: str) -> None:
    body = encode(EVENT)
    with pytest.raises(BadSignature):
        verifier.verify(body, {**signed(body), header: value})


def test_a_fractional_timestamp_is_refused_even_when_the_floor_is_signed(
    verifier: WebhookVerifier,
) -> None:
    body = encode(EVENT)
    headers = signed(body)
    headers["webhook-timestamp"] += ".5"
    with pytest.raises(BadSignature):
        verifier.verify(body, headers)


def test_a_non_utf8_body_is_a_bad_signature_even_with_a_correct_hmac(
    verifier: WebhookVerifier,
) -> None:
    body = b'{"id": "\xff\xfe"}'
    with pytest.raises(BadSignature):
        verifier.verify(body, raw_hmac_headers(body))


def test_the_signature_is_checked_before_the_body_is_parsed(verifier: WebhookVerifier) -> None:
    with pytest.raises(BadSignature):
        verifier.verify(b"not json at all", signed(encode(EVENT)))


def with_data(**changes: Any) -> dict[str, Any]:
    return {**EVENT, "data": {**EVENT["data"], **changes}}


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in EVENT.items() if k != key}


def data_without(*keys: str) -> dict[str, Any]:
    return {**EVENT, "data": {k: v for k, v in EVENT["data"].items() if k not in keys}}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"[]",
        b'"event"',
        b"null",
        b'{"id": "a", "id": "b", "type": "x", "created_at": "2026-11-23T10:15:00Z", "data": {}}',
        encode(without("id")),
        encode(without("type")),
        encode(without("created_at")),
        encode(without("data")),
        encode({**EVENT, "data": []}),
        encode({**EVENT, "data": None}),
        encode({**EVENT, "id": "x" * 201}),
        encode({**EVENT, "id": ""}),
        encode({**EVENT, "id": "evt 1"}),
        encode({**EVENT, "id": 17}),
        encode({**EVENT, "type": 1}),
        encode({**EVENT, "type": "payment succeeded"}),
        encode({**EVENT, "created_at": "2026-11-23T10:15:00"}),
        encode({**EVENT, "created_at": "2026-11-23"}),
        encode({**EVENT, "created_at": "2026-02-30T10:15:00Z"}),
        encode({**EVENT, "created_at": 1763892900}),
        encode(data_without("order_id")),
        encode(with_data(order_id="10 01")),
        encode(with_data(order_id="x" * 65)),
        encode(with_data(order_id=1001)),
        encode(with_data(token=123)),
        encode(with_data(token="../x")),
        encode(with_data(amount=75.0)),
        encode(with_data(amount=75)),
        encode(with_data(amount="7.5e1")),
        encode(with_data(amount="-75.00")),
        encode(with_data(amount="Infinity")),
        encode(with_data(currency="ghs")),
        encode(with_data(currency="GH")),
        encode(with_data(currency=None)),
        encode(data_without("currency")),
        encode(data_without("amount")),
        encode(with_data(reference=77812)),
        encode(EVENT).replace(b'"75.00"', b"NaN"),
    ],
)
def test_schema_violations_are_bad_payloads(verifier: WebhookVerifier, body: bytes) -> None:
    with pytest.raises(BadPayload):
        verifier.verify(body, signed(body))


def test_an_id_of_200_characters_is_accepted(verifier: WebhookVerifier) -> None:
    body = encode({**EVENT, "id": "e" * 200})
    assert verifier.verify(body, signed(body)).id == "e" * 200


def test_unknown_types_are_returned_for_the_caller_to_ignore(verifier: WebhookVerifier) -> None:
    body = encode({**EVENT, "type": "refund.created", "extra": {"anything": [1, 2.5]}})
    assert verifier.verify(body, signed(body)).type == "refund.created"


def test_order_completed_without_token_or_amount(verifier: WebhookVerifier) -> None:
    body = encode({**EVENT, "type": "order.completed", "data": {"order_id": "1001"}})
    event = verifier.verify(body, signed(body))
    assert event.type == EventType.ORDER_COMPLETED
    assert (event.token, event.amount, event.reference) == (None, None, None)


def test_created_at_with_an_offset_becomes_utc(verifier: WebhookVerifier) -> None:
    body = encode({**EVENT, "created_at": "2026-11-23T12:15:00.250+02:00"})
    created = verifier.verify(body, signed(body)).created_at
    assert created == datetime(2026, 11, 23, 10, 15, 0, 250000, tzinfo=UTC)
    assert created.utcoffset() == timedelta(0)


def test_parse_timestamp_forms() -> None:
    assert parse_timestamp("2026-11-23t10:15:00z") == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    for text in ("2026-11-23T10:15:00", "2026-11-23 10:15:00Z", "23/11/2026", "2026-11-23T10:15Z"):
        with pytest.raises(ValueError):
            parse_timestamp(text)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "secret",
        "whsec_",
        "whsec_!!!!",
        "whsec_" + base64.b64encode(b"short").decode(),
        "whsec_é",
    ],
)
def test_unusable_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError):
        WebhookVerifier(secret)


def test_an_unpadded_secret_is_accepted() -> None:
    unpadded = SECRET.rstrip("=")
    assert unpadded != SECRET
    body = encode(EVENT)
    assert WebhookVerifier(unpadded).verify(body, signed(body)).id == "evt_01J0000000"


def test_unknown_types_need_no_order_data(verifier: WebhookVerifier) -> None:
    # CONTRACT §2: other types are acknowledged and ignored, whatever their data.
    body = encode({k: v for k, v in EVENT.items() if k != "data"} | {"type": "payout.sent"})
    event = verifier.verify(body, signed(body))
    assert (event.type, event.order_id, event.amount) == ("payout.sent", "", None)


def test_known_types_still_need_their_order(verifier: WebhookVerifier) -> None:
    body = encode({k: v for k, v in EVENT.items() if k != "data"})
    with pytest.raises(BadPayload):
        verifier.verify(body, signed(body))
