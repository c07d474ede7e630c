"""The `/export` file (CONTRACT §7): one row a link, written by the `csv` module.

UTF-8 with a byte order mark: Excel reads a CSV without one in the machine's ANSI
code page, so "GH₵" and "Côte d'Ivoire" arrive mangled; with it, Excel reads UTF-8,
and LibreOffice and Google Sheets recognise the mark and drop it. Rows end in CRLF
(RFC 4180, the `csv` module's default).

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage
return, which some strip before looking) as a formula, so a business name such as
`=HYPERLINK(...)` would run in the bookkeeper's sheet. Such text cells get a leading
`'`, as OWASP advises: the sheet shows the text and runs nothing. The total is a
number paybot writes, never such text.

Times are ISO 8601 in the merchant's zone (PAYBOT_TIMEZONE) with its offset, so
they read as the chats show them and still name one instant.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.models import Link

HEADER = (
    "order_id",
    "business",
    "currency",
    "total",
    "status",
    "issued_at",
    "paid_at",
    "reference",
)
BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_csv(links: Iterable[tuple[Link, datetime | None]], zone: ZoneInfo) -> bytes:
    """The file's bytes: the header, then one row a link (with when it was paid)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for link, paid_at in links:
        writer.writerow(
            (
                inert(link.order_id),
                inert(link.business_name),
                link.total.currency,
                format(link.total.amount, "f"),
                link.status.value,
                _moment(link.created_at, zone),
                "" if paid_at is None else _moment(paid_at, zone),
                inert(link.reference or ""),
            )
        )
    return out.getvalue().encode("utf-8")


def inert(text: str) -> str:
    """`text`, made a cell no spreadsheet takes for a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _moment(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).isoformat(timespec="seconds")
