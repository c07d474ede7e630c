"""Hypothesis strategies for hostile input: command texts, phone numbers, webhook bodies.

Each strategy mixes plain random data with near-misses of what the bot expects,
since near-misses are what get past a first check and break a second one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

# CONTRACT §1: the only order ids that may ever reach a request.
ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
FRESH_ID = "evt_FRESH"  # replaced by the test with an id no earlier example used
CREATED = "2026-11-23T10:15:00Z"
KNOWN_TYPES = ("payment.succeeded", "order.completed", "payment.failed")

# Pieces that break paths, queries, parsers and displays.
NASTY = (
    "../",
    "..",
    "%2F",
    "%2e%2e%2f",
    "/",
    "\\",
    "?",
    "#",
    "&",
    "=",
    " ",
    "\t",
    "\r\n",
    "\x00",
    "%00",
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\u200b",  # zero-width space
    "\ufeff",
    "😀",
    "👩\u200d👩\u200d👧",
    "١٠٠١",  # Arabic-Indic digits
    "１００１",  # fullwidth digits
    "e\u0301",
    "İ",
    "ß",
    "'",
    '"',
    "<script>",
    "${x}",
    "@paybot_test_bot",
)

nasty = st.sampled_from(NASTY)
valid_ids = st.from_regex(ORDER_ID, fullmatch=True)


def _joined(*parts: str) -> str:
    return "".join(parts)


hostile_ids = st.one_of(
    valid_ids,
    st.text(max_size=80),
    st.builds(_joined, valid_ids, nasty, st.text(max_size=8)),
    st.builds(_joined, nasty, valid_ids),
    st.builds(_joined, st.just("1001"), nasty),
    st.text(alphabet="0123456789", min_size=63, max_size=66),  # around the 64 limit
    st.text(min_size=65, max_size=600),
)

hostile_phones = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\+?[0-9 ()-]{0,40}", fullmatch=True),
    st.builds(_joined, st.just("+233"), nasty, st.text(alphabet="0123456789", max_size=12)),
    st.sampled_from(
        [
            "+",
            "+0",
            "+999",
            "+99912",
            "0241234567",
            "024 123 4567",
            "+233241234567",
            "whatsapp:+233241234567",
            "+1 (555) 000-1111",
            "+2332412345678901234567890",
            "٠٢٤١٢٣٤٥٦٧",
            "+233\u202e241234567",
        ]
    ),
    st.text(alphabet="9 ", min_size=33, max_size=4000),  # far past the length bound
)

_names = st.one_of(
    st.sampled_from(
        ["invoice", "status", "open", "start", "help", "INVOICE", "Invoice", "pay", "invoic", ""]
    ),
    st.builds(_joined, st.sampled_from(["invoice", "status"]), nasty),
    st.text(max_size=12),
)
_junk = st.one_of(st.text(max_size=200), hostile_ids, nasty)


def _line(*words: str) -> str:
    return " ".join(words)


command_lines = st.one_of(
    st.builds(_line, _names, _junk),
    st.builds(_line, st.just("invoice"), hostile_ids),
    st.builds(_line, st.just("invoice"), st.one_of(st.just("1001"), hostile_ids), hostile_phones),
    st.builds(_line, st.just("status"), hostile_ids),
    st.builds(_line, st.just("open"), _junk),
    st.builds(_line, st.just("start"), _junk),
    st.text(max_size=300),
)
"""A command line without its slash: `invoice 1001 +233...`, or anything at all."""

TELEGRAM_TEXT_LIMIT = 4096  # what Telegram lets a user send, in characters (UTF-16 units)


def _as_telegram_command(line: str) -> str:
    text = ("/" + line)[:TELEGRAM_TEXT_LIMIT]
    while len(text.encode("utf-16-le")) > 2 * TELEGRAM_TEXT_LIMIT:  # astral characters count 2
        text = text[:-1]
    return text


telegram_texts = command_lines.map(_as_telegram_command)
"""What a Telegram user sends that Telegram marks as a command: it starts with `/`."""

whatsapp_bodies = st.one_of(telegram_texts, command_lines, st.text(max_size=1600))


# ---- Cimplify webhook bodies


def json_values(max_leaves: int = 12, finite: bool = False) -> st.SearchStrategy[Any]:
    """Any JSON value; unless `finite`, with NaN and Infinity, which json.dumps writes."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=not finite, allow_infinity=not finite),
        st.text(max_size=30),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=max_leaves,
    )


def good_event(kind: str) -> dict[str, Any]:
    data = {"order_id": "1001", "token": "plt_hostile0", "amount": "75.00", "currency": "GHS"}
    data |= {"reference": "MOMO-1"}
    return {"id": FRESH_ID, "type": kind, "created_at": CREATED, "data": data}


_bad_amounts = st.one_of(
    st.floats(),
    st.integers(),
    st.sampled_from(
        ["-75.00", "1e3", "75,00", " 75.00", "75.00 ", "７５.００", "1" * 40, "", "0x4B", "75."]
    ),
    st.sampled_from(["75.123456789", "+75", "NaN", "Infinity"]),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
_bad_order_ids = st.one_of(
    hostile_ids.filter(lambda text: not ORDER_ID.fullmatch(text)),
    st.integers(),
    st.none(),
    json_values(4).filter(lambda value: not isinstance(value, str)),
)
_bad_times = st.one_of(
    st.sampled_from(
        ["2026-11-23T10:15:00", "yesterday", "", "2026-11-23", "2026-13-45T99:99", "1700000000"]
    ),
    st.integers(),
    st.text(max_size=30).filter(lambda text: not re.match(r"[0-9]{4}-", text)),
)
_bad_ids = st.sampled_from(["", "evt with space", "x" * 201, "évt"]) | st.integers() | st.none()
_bad_tokens = st.sampled_from(["", "../x", "a b", "plt/%2F", "x" * 129]) | st.integers()


def _parent(event: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The object holding the field at `path`, if an earlier mutation left one."""
    target: Any = event
    for key in path[:-1]:
        target = target.get(key) if isinstance(target, dict) else None
    return target if isinstance(target, dict) else None


def _set(path: tuple[str, ...], value: Any) -> Any:
    """A mutation: the event with the field at `path` set to `value`."""

    def apply(event: dict[str, Any]) -> dict[str, Any]:
        parent = _parent(event, path)
        if parent is not None:
            parent[path[-1]] = value
        return event

    return apply


def _drop(path: tuple[str, ...]) -> Any:
    def apply(event: dict[str, Any]) -> dict[str, Any]:
        parent = _parent(event, path)
        if parent is not None:
            parent.pop(path[-1], None)
        return event

    return apply


_breaking = st.one_of(
    _bad_amounts.map(lambda v: _set(("data", "amount"), v)),
    st.sampled_from(["ghs", "GHSX", "", "GH"]).map(lambda v: _set(("data", "currency"), v)),
    _bad_order_ids.map(lambda v: _set(("data", "order_id"), v)),
    _bad_times.map(lambda v: _set(("created_at",), v)),
    _bad_ids.map(lambda v: _set(("id",), v)),
    _bad_tokens.map(lambda v: _set(("data", "token"), v)),
    st.sampled_from(["x" * 501, ""]).map(lambda v: _set(("data", "reference"), v)),
    json_values(6).filter(lambda v: not isinstance(v, dict)).map(lambda v: _set(("data",), v)),
    st.sampled_from(["payment succeeded", "", "payment.succeeded\n"]).map(
        lambda v: _set(("type",), v)
    ),
    st.sampled_from(
        [("id",), ("type",), ("created_at",), ("data",), ("data", "order_id"), ("data", "amount")]
    ).map(_drop),
)
"""Mutations after which the body is not the schema: 400, and nothing stored."""

_harmless = st.one_of(
    st.dictionaries(
        st.text(max_size=8).map(lambda k: "x_" + k), json_values(6, finite=True), max_size=3
    ).map(lambda extra: lambda event: event | extra),
    json_values(6, finite=True).map(lambda v: _set(("data", "x_nested"), v)),
    st.sampled_from([("data", "token"), ("data", "reference")]).map(_drop),
    st.sampled_from([None]).map(lambda v: _set(("data", "token"), v)),
)
"""Mutations that leave a valid event: extra fields, absent optional ones."""


@st.composite
def near_valid_events(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """An event of a known type with mutations applied, and whether it is still the schema."""
    event = good_event(draw(st.sampled_from(KNOWN_TYPES)))
    for mutation in draw(st.lists(_harmless, max_size=2)):
        event = mutation(event)
    breaks = draw(st.lists(_breaking, min_size=1, max_size=2)) if draw(st.booleans()) else []
    for mutation in breaks:
        event = mutation(event)
    return event, not breaks


@st.composite
def unknown_type_events(draw: st.DrawFn) -> tuple[dict[str, Any], bool | None]:
    """An event of a type the bot does not model: acknowledged whatever its data."""
    kind = draw(st.from_regex(r"[a-z]{1,10}\.[a-z_]{1,12}", fullmatch=True))
    data = draw(json_values(finite=True))
    event = {"id": FRESH_ID, "type": kind, "created_at": CREATED, "data": data}
    return event, None if kind in KNOWN_TYPES else True


def encoded(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


signed_bodies = st.one_of(
    near_valid_events().map(lambda pair: (encoded(pair[0]), pair[1])),
    unknown_type_events().map(lambda pair: (encoded(pair[0]), pair[1])),
    json_values().map(lambda value: (json.dumps(value).encode(), None)),
    st.binary(max_size=300).map(lambda raw: (raw, None)),
)
"""(body, whether it is a valid event); None where the strategy does not know."""

SIGNATURE_MODES = (
    "valid",
    "valid_among_junk",
    "unsigned",
    "missing_id",
    "missing_timestamp",
    "missing_signature",
    "garbled",
    "stale",
    "future",
    "non_digit_timestamp",
    "other_body",
    "other_id",
)
header_texts = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60
)


# ---- Twilio form posts and Telegram updates

_TWILIO_FIELDS = ("From", "To", "Body", "MessageSid", "MessageStatus", "ErrorCode", "NumMedia")
_twilio_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "whatsapp:+233209999998",
            "whatsapp:+233200000001",
            "+233209999998",
            "whatsapp:+0",
            "whatsapp:",
            "SM" + "a" * 32,
            "SM" + "a" * 31 + "g",
            "MM" + "0" * 32,
            "delivered",
            "failed",
            "undelivered",
            "read",
            "30008",
            "-1",
        ]
    ),
    whatsapp_bodies,
    hostile_phones,
)
twilio_forms = st.dictionaries(
    st.one_of(st.sampled_from(_TWILIO_FIELDS), st.text(min_size=1, max_size=10)),
    _twilio_values,
    max_size=8,
)
TWILIO_SIGNATURE_MODES = ("valid", "unsigned", "garbled", "other_url", "other_fields")


def _with(update: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    return _set(path, value)(update)


@st.composite
def telegram_updates(draw: st.DrawFn, base: dict[str, Any]) -> object:
    """A copy of `base` (a valid Update) with fields replaced by junk, or junk altogether."""
    update = json.loads(json.dumps(base))
    paths = [
        ("update_id",),
        ("message",),
        ("message", "text"),
        ("message", "chat"),
        ("message", "from"),
        ("message", "date"),
        ("message", "entities"),
        ("message", "chat", "id"),
        ("message", "from", "id"),
        ("callback_query",),
    ]
    for path in draw(st.lists(st.sampled_from(paths), max_size=3)):
        value = draw(st.one_of(json_values(8), telegram_texts))
        update = _with(update, path, value)
    return draw(st.one_of(st.just(update), json_values()))
