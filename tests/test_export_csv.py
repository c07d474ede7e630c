"""The /export file's cells and numbers of days, without a bot around them."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.day import export_days
from bot.export_csv import HEADER, export_csv, inert
from bot.models import LineItem, Link, Money, Status

T = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
LINK = Link(
    id="lnk_1",
    order_id="1001",
    token="plt_1",
    url="https://pay.example/plt_1",
    expires_at=T,
    business_name='Côte d\'Ivoire, "Chez Awa"\nAbidjan',
    total=Money(Decimal("1E+2"), "XOF"),
    line_items=(LineItem("Attiéké", 1, Decimal("100"), Decimal("100")),),
    status=Status.PAID,
    created_at=T,
    status_changed_at=T,
    reference="GH₵-ref",
)


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Kofi's Kitchen", "Kofi's Kitchen"),
        ("1+1=2", "1+1=2"),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_made_text(text: str, cell: str) -> None:
    assert inert(text) == cell


def test_rows_quote_what_needs_it_and_keep_every_character() -> None:
    content = export_csv(
        [(LINK, T), (replace(LINK, reference=None), None)], ZoneInfo("Africa/Lagos")
    )
    assert content.startswith("\ufeff".encode())
    header, paid, unpaid = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert tuple(header) == HEADER
    assert paid == [
        "1001",
        'Côte d\'Ivoire, "Chez Awa"\nAbidjan',
        "XOF",
        "100",  # never 1E+2
        "paid",
        "2026-12-02T00:30:00+01:00",  # the merchant's day, not UTC's
        "2026-12-02T00:30:00+01:00",
        "GH₵-ref",
    ]
    assert unpaid[6:] == ["", ""]


@pytest.mark.parametrize(
    ("args", "days"),
    [((), 7), (("1",), 1), (("30",), 30), (("366",), 366), (("007",), 7)],
)
def test_days_to_export(args: tuple[str, ...], days: int) -> None:
    assert export_days(args) == days


@pytest.mark.parametrize(
    "args", [("0",), ("367",), ("-1",), ("+3",), ("٣",), ("3.5",), ("1", "2"), ("1e3",), ("",)]
)
def test_days_out_of_range_or_not_a_number_are_refused(args: tuple[str, ...]) -> None:
    assert export_days(args) is None
