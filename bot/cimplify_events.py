"""Cimplify's wire values and its signed webhooks (CONTRACT §1, §2).

`JsonObject` reads one JSON object field by field, refusing anything that is not
the shape this project models; the client and the webhook verifier share it, so
a change in Cimplify's value formats is a change here. `WebhookVerifier` checks
the Standard Webhooks signature on the raw bytes, then parses the event.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import NoReturn

from standardwebhooks import Webhook

from bot.errors import BadPayload, BadSignature, InvalidOrderId
from bot.models import EventType, Money, WebhookEvent, parse_order_id

# Amounts are decimal strings in the major unit (CONTRACT §1): never a JSON number,
# never negative, never an exponent. ASCII digits only: `\d` would take any script's.
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,8})?")
_CURRENCY = re.compile(r"[A-Z]{3}")  # ISO 4217
# RFC 3339 §5.6 date-time, with a mandatory offset: a naive time is refused.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# Pay API tokens go into URL paths: only these characters ever reach one.
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_EVENT_ID = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, no spaces
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_TEXT_MAX = 500


def load_json(raw: bytes) -> object:
    """Parse JSON strictly: no NaN/Infinity, no duplicate keys. Raises ValueError."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"not JSON: {type(exc).__name__}") from None


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Two values for one key would let a reader and a signer disagree on the meaning.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 date-time with an offset, as an aware UTC datetime. Raises ValueError."""
    if not _RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 date-time with an offset")
    return datetime.fromisoformat(text.upper()).astimezone(UTC)


class JsonObject:
    """One JSON object, read field by field; every accessor raises ValueError on a bad shape."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: not an object")
        self._value: dict[str, object] = value
        self._where = where

    def _fail(self, key: str, problem: str) -> NoReturn:
        raise ValueError(f"{self._where}.{key}: {problem}")

    def _get(self, key: str) -> object:
        if key not in self._value:
            self._fail(key, "missing")
        return self._value[key]

    def has(self, key: str) -> bool:
        """True when `key` is present and not null."""
        return self._value.get(key) is not None

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not 0 < len(value) <= _TEXT_MAX:
            self._fail(key, f"not a string of 1 to {_TEXT_MAX} characters")
        if not value.isprintable():
            # Neither a lone surrogate ("\udcff": no store can hold it, no chat can show
            # it) nor a control character has a place in an id, a token or a reference.
            self._fail(key, "holds a character that is not text")
        if pattern is not None and not pattern.fullmatch(value):
            self._fail(key, "not in the expected form")
        return value

    def optional_text(self, key: str, pattern: re.Pattern[str] | None = None) -> str | None:
        return self.text(key, pattern) if self.has(key) else None

    def integer(self, key: str) -> int:
        value = self._get(key)
        # bool is an int in Python, and not a quantity.
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self._fail(key, "not a non-negative integer")
        return value

    def decimal(self, key: str) -> Decimal:
        value = self._get(key)
        if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
            self._fail(key, 'not a decimal string such as "75.00"')
        return Decimal(value)

    def money(self, amount_key: str, currency_key: str = "currency") -> Money:
        return Money(self.decimal(amount_key), self.text(currency_key, _CURRENCY))

    def timestamp(self, key: str) -> datetime:
        value = self.text(key)
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            self._fail(key, str(exc))

    def optional_timestamp(self, key: str) -> datetime | None:
        return self.timestamp(key) if self.has(key) else None

    def order_id(self, key: str = "order_id") -> str:
        try:
            return parse_order_id(self.text(key))
        except InvalidOrderId:
            self._fail(key, "not a valid order id")

    def obj(self, key: str) -> JsonObject:
        return JsonObject(self._get(key), f"{self._where}.{key}")

    def objects(self, key: str) -> list[JsonObject]:
        value = self._get(key)
        if not isinstance(value, list):
            self._fail(key, "not a list")
        return [JsonObject(item, f"{self._where}.{key}[{i}]") for i, item in enumerate(value)]


class WebhookVerifier:
    """Verifies Standard Webhooks signatures (5 minutes of tolerance) and parses events."""

    def __init__(self, secret: str) -> None:
        if not secret.startswith("whsec_"):
            raise ValueError("the webhook secret must look like whsec_<base64>")
        encoded = secret.removeprefix("whsec_")
        encoded += "=" * (-len(encoded) % 4)  # as the library does, allow unpadded base64
        try:
            key = binascii.a2b_base64(encoded.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("the webhook secret is not whsec_ followed by base64") from None
        if len(key) < 16:
            raise ValueError("the webhook secret is shorter than 16 bytes")
        self._webhook = Webhook(key)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Return the event in `body`; BadSignature or BadPayload if it is not one."""
        self._check_signature(body, headers)
        return parse_event(body)

    def _check_signature(self, body: bytes, headers: Mapping[str, str]) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        wanted = {h: lowered.get(h, "") for h in _SIGNATURE_HEADERS}
        # The library reads the timestamp with float(): "1.7e9" or "nan" would pass its parse,
        # and a fraction would be signed floored. Only whole seconds in digits are accepted.
        if not wanted["webhook-timestamp"].isascii() or not wanted["webhook-timestamp"].isdigit():
            raise BadSignature("missing or malformed webhook-timestamp")
        try:
            self._webhook.verify(body, wanted, json_parse=False)
        except Exception as exc:
            # Hostile headers make the library raise more than its own error (UnicodeDecodeError,
            # ValueError from a "v1" with no comma, binascii.Error): every one is a bad signature.
            raise BadSignature(f"webhook signature refused: {type(exc).__name__}") from None


_KNOWN_TYPES = frozenset(t.value for t in EventType)
_SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def parse_event(body: bytes) -> WebhookEvent:
    """The event in a body whose signature held (now, or when it was stored); BadPayload
    if it is not one."""
    try:
        return _parse_event(load_json(body))
    except ValueError as exc:
        raise BadPayload(str(exc)) from None


def _parse_event(value: object) -> WebhookEvent:
    event = JsonObject(value, "event")
    event_id = event.text("id", _EVENT_ID)
    event_type = event.text("type", _EVENT_TYPE)
    created_at = event.timestamp("created_at")
    if event_type not in _KNOWN_TYPES:
        # Acknowledged and ignored (CONTRACT §2): its data is not ours to judge.
        return WebhookEvent(event_id, event_type, created_at, "", None, None, None)
    data = event.obj("data")
    amount = data.money("amount") if data.has("amount") or data.has("currency") else None
    return WebhookEvent(
        id=event_id,
        type=event_type,
        created_at=created_at,
        order_id=data.order_id(),
        token=data.optional_text("token", TOKEN),
        amount=amount,
        reference=data.optional_text("reference"),
    )
