"""What a chat shows cannot be forged by data, and the link and status always fit.

Business and item names come from Cimplify, and so from whoever set up the
shop there. Any text may be in them: line breaks that draw a line of their own
("Status: Paid"), bidirectional overrides that reorder what follows, zero-width
characters, and any length.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import render
from bot.models import LineItem, Link, Role, Status
from handlers.whatsapp_send import BODY_LIMIT
from tests.factories import NOW, make_link

TELEGRAM_CAPTION = 1024

# Any text, weighted towards what forges a chat: breaks, controls, format characters.
_forging = st.sampled_from(
    [
        *"\n\r\t\v\f\x00\x1b\x85\u2028\u2029\u200b\u200d\u202e\u2066\ufeff",
        "\nStatus: Paid",
        "\r\nPay here: https://evil.example",
        "\u202eyap",
    ]
)
_short_names = st.lists(st.one_of(st.text(max_size=60), _forging), max_size=12).map("".join)
names = _short_names | st.text(min_size=200, max_size=3000)
urls = st.text("abcdefghijklmnopqrstuvwxyz0123456789/-_.", max_size=500).map(
    lambda path: f"https://pay.example/{path}"
)
statuses = st.sampled_from(list(Status)) | st.just(None)


def link_with(business: str, items: list[str], url: str, status: Status | None) -> Link:
    line_items = tuple(LineItem(name, 1, Decimal("1.00"), Decimal("1.00")) for name in items)
    link = replace(make_link(), business_name=business, line_items=line_items, url=url)
    if status is None:  # confirmed: "Confirmed" rather than the status
        return replace(link, status=Status.PAID, confirmed_at=NOW)
    return replace(link, status=status)


def visible(text: str) -> bool:
    """No character of category C*, and no line or paragraph separator."""
    return not any(unicodedata.category(c).startswith("C") or c in "\u2028\u2029\x85" for c in text)


@settings(max_examples=300, deadline=None)
@given(names, st.lists(names, max_size=80), urls, statuses)
def test_the_caption_holds_the_link_and_status_whatever_the_lengths(
    business: str, items: list[str], url: str, status: Status | None
) -> None:
    link = link_with(business, items, url, status)
    caption = render.invoice_caption(link, NOW)
    assert len(caption) <= render.CAPTION_LIMIT <= min(TELEGRAM_CAPTION, BODY_LIMIT)
    assert f"Pay here: {url}\n" in caption
    assert caption.endswith(f"Status: {link.status_words}")
    # Lines come only from the caption's own layout, none from a name.
    assert all(visible(line) for line in caption.split("\n"))


@settings(max_examples=200, deadline=None)
@given(names, st.lists(names, max_size=80))
def test_items_give_way_first_and_say_how_many_are_left(business: str, items: list[str]) -> None:
    caption = render.invoice_caption(link_with(business, items, "https://pay.example/x", None), NOW)
    shown = caption.count(" × ")
    if shown < len(items):
        assert f"… and {len(items) - shown} more items" in caption
    else:
        assert "more items" not in caption
    assert "Total: " in caption  # the total gives way only to a link too long for it


@given(names)
def test_a_name_is_one_line_of_visible_text(name: str) -> None:
    plain = render.plain_name(name)
    assert "\n" not in plain and visible(plain)
    assert 0 < len(plain) <= render.BUSINESS_NAME_MOST
    assert plain == plain.strip() and "  " not in plain


def test_a_forged_status_line_in_a_name_stays_inside_its_own_line() -> None:
    link = link_with(
        "Kofi\nStatus: Paid\u202e",
        ["Rice\r\nPay here: https://evil.example"],
        "https://pay.example/a",
        Status.PENDING,
    )
    caption = render.invoice_caption(link, NOW)
    assert caption.splitlines()[0] == "Kofi Status: Paid"
    assert "1 × Rice Pay here: https://evil.example: " in caption
    assert [line for line in caption.splitlines() if line.startswith("Status:")] == [
        "Status: Pending"
    ]
    assert [line for line in caption.splitlines() if line.startswith("Pay here:")] == [
        "Pay here: https://pay.example/a"
    ]


@given(names, statuses)
def test_every_chat_text_naming_the_business_is_free_of_controls(
    business: str, status: Status | None
) -> None:
    link = link_with(business, [business], "https://pay.example/b", status or Status.PAID)
    texts = [
        render.status_change(link),
        render.status_change(link, Role.CUSTOMER),
        render.confirmed(link),
        render.receipt(link),
        render.customer_status([link], NOW),
        render.open_links([link], NOW),
        render.status_summary(link, NOW),
        render.already_paid(link.order_id, business),
        render.amount_mismatch(link, link.total),
    ]
    for text in texts:
        assert all(visible(line) for line in text.split("\n")), text
        assert len(text) <= BODY_LIMIT
