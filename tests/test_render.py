from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from bot import errors, render
from bot.models import Money, Status
from tests.factories import NOW, make_link


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("75.00", "GHS", "GH₵75.00"),
        ("10000.00", "NGN", "₦10,000.00"),
        ("2100.00", "KES", "Ksh2,100.00"),
        ("0.10", "USD", "$0.10"),
        ("1500.50", "UGX", "USh1,500.5"),  # a digit Cimplify sent is never rounded away
    ],
)
def test_money_reads_as_at_home(amount: str, currency: str, shown: str) -> None:
    assert render.money(Money(Decimal(amount), currency)) == shown


def test_caption_holds_every_part() -> None:
    caption = render.invoice_caption(make_link(), NOW)
    for words in (
        "Kofi's Kitchen",
        "Order 1001",
        "1 × Dish 0",
        "Total: GH₵20.00",
        "Pay here: https://pay.example/",
        "expires in 1 week",
        "Status: Pending",
    ):
        assert words in caption


def test_a_long_order_is_cut_to_telegrams_caption_limit_keeping_total_and_link() -> None:
    link = make_link(items=60)
    caption = render.invoice_caption(link, NOW)
    assert len(caption) <= render.CAPTION_LIMIT
    assert "more items" in caption
    assert link.url in caption and "Total: GH₵600.00" in caption


def test_confirmed_shows_in_caption_and_buttons_go() -> None:
    link = replace(make_link(), status=Status.PAID, confirmed_at=NOW)
    assert render.invoice_caption(link, NOW).endswith("Status: Confirmed")
    assert render.invoice_buttons(link) == ()
    assert len(render.invoice_buttons(make_link())) == 2


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.PENDING])
def test_every_change_says_its_status_in_plain_words(status: Status) -> None:
    text = render.status_change(replace(make_link(), status=status))
    assert status.words in text


def test_expiry_in_words_both_ways() -> None:
    link = make_link(expires_in=timedelta(hours=3))
    assert "expires in 3 hours" in render.expiry(link.expires_at, NOW)
    assert "expired 2 hours ago" in render.expiry(link.expires_at, NOW + timedelta(hours=5))


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (errors.InvalidOrderId("x y"), "not an order id"),
        (errors.OrderNotFound(), "does not know order 1001"),
        (errors.OrderNotPayable(), "cannot take payment"),
        (errors.CimplifyUnavailable(), "not answering"),
        (errors.CimplifyAuthError(), "CIMPLIFY_SECRET_KEY"),
        (errors.CimplifyProtocolError(), "went wrong"),
    ],
)
def test_errors_become_one_clear_sentence(error: errors.PaybotError, words: str) -> None:
    assert words in render.explain(error, "1001")
