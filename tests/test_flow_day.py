"""/today and the daily digest, through the real python-telegram-bot and the fake Bot API.

The bot's clock is set to a chosen local time in PAYBOT_TIMEZONE (Africa/Lagos, an
hour ahead of UTC, so the merchant's day is not UTC's) and moved, never waited out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.models import Money, utcnow
from bot.render import money
from tests.clocks import MovableClock
from tests.harness import MERCHANT, OTHER_MERCHANT, World, quick_tuning, running_world, wait_until

ZONE = ZoneInfo("Africa/Lagos")
DIGEST = "Your daily digest"


def clock_at(local: time) -> MovableClock:
    """A clock reading `local` today in ZONE, as today is where the test runs."""
    clock = MovableClock()
    today = utcnow().astimezone(ZONE).date()
    clock.ahead = datetime.combine(today, local, tzinfo=ZONE) - utcnow()
    return clock


def local_day(clock: MovableClock) -> date:
    return clock().astimezone(ZONE).date()


@asynccontextmanager
async def day_world(
    tmp_path: Path, database: str, clock: MovableClock, digest_at: str = "20:00"
) -> AsyncIterator[World]:
    tuning = quick_tuning(clock=clock, digest_every=0.05)
    env = {"PAYBOT_TIMEZONE": "Africa/Lagos", "PAYBOT_DIGEST_AT": digest_at}
    async with running_world(tmp_path, tuning, env=env, database=database) as world:
        yield world


async def invoice(world: World, order_id: str, chat_id: int = MERCHANT) -> object:
    world.say(f"/invoice {order_id}", user_id=chat_id)
    await world.fake.wait_for(lambda: any(f"Order {order_id}" in t for t in world.texts(chat_id)))
    return await world.link_for(order_id)


async def paid_by_poll(world: World, order_id: str) -> None:
    link = await world.link_for(order_id)
    world.sandbox.set_status(link.token, "paid")
    await wait_until(lambda: world.link_for(order_id), lambda found: found.status == "paid")


async def digests_looked_at(world: World, day: date) -> None:
    """Until this paybot's digest loop has done its pass for `day`, and all is sent."""

    async def done() -> date | None:
        return world.paybot.digest.done_for

    await wait_until(done, lambda found: found == day)
    await world.wait_idle()


async def test_today_counts_issued_paid_in_each_currency_open_and_expired(
    tmp_path: Path, database: str
) -> None:
    clock = clock_at(time(10, 0))
    async with day_world(tmp_path, database, clock) as world:
        for order_id in ("1001", "2001", "1002"):
            await invoice(world, order_id)
        await paid_by_poll(world, "1001")
        await paid_by_poll(world, "2001")
        world.say("/today")
        answer = await world.wait_message("Your day so far")

    cedis, naira = money(Money(Decimal("75.00"), "GHS")), money(Money(Decimal("10000.00"), "NGN"))
    assert answer.text == (
        f"Your day so far, {local_day(clock):%-d %b %Y}:\n"
        "Issued: 3 links\n"
        f"Paid: 2 links, {cedis}, {naira}\n"
        "Open: 1 link\n"
        "Expired: 0 links"
    )


async def test_today_starts_at_local_midnight(tmp_path: Path, database: str) -> None:
    clock = clock_at(time(23, 30))
    async with day_world(tmp_path, database, clock, digest_at="off") as world:
        await invoice(world, "1001")
        clock.ahead += timedelta(hours=1)  # 00:30 in Lagos: a new day, though UTC's is not
        world.say("/today")
        answer = await world.wait_message("Your day so far")
    assert "Issued: 0 links" in (answer.text or "")
    assert "Open: 1 link" in (answer.text or "")  # yesterday's link is still payable


async def test_today_is_a_merchants_command(tmp_path: Path, database: str) -> None:
    async with day_world(tmp_path, database, clock_at(time(10, 0))) as world:
        world.say("/today", user_id=4242)
        answer = await world.wait_message("not authorized", chat_id=4242)
    assert "Your day" not in (answer.text or "")


async def test_the_digest_comes_at_the_hour_once_and_only_to_merchants_who_issued(
    tmp_path: Path, database: str
) -> None:
    clock = clock_at(time(19, 0))
    async with day_world(tmp_path, database, clock) as world:
        await invoice(world, "1001")
        world.say("/help", user_id=OTHER_MERCHANT)  # a merchant, who issued nothing today
        await world.wait_message("/today", chat_id=OTHER_MERCHANT)
        assert await world.paybot.digest.send_due() == 0  # 19:00: not yet

        clock.ahead += timedelta(hours=1, minutes=1)
        digest = await world.wait_message(DIGEST)
        await digests_looked_at(world, local_day(clock))
        assert await world.paybot.digest.send_due() == 0
        clock.ahead += timedelta(hours=2)  # later that evening: nothing more
        assert await world.paybot.digest.send_due() == 0
        await world.wait_idle()

        assert world.count(DIGEST) == 1
        assert world.count(DIGEST, chat_id=OTHER_MERCHANT) == 0
    assert "Issued: 1 link\n" in (digest.text or "")


async def test_a_restart_after_the_digest_does_not_send_it_again(
    tmp_path: Path, database: str
) -> None:
    clock = clock_at(time(19, 30))
    async with day_world(tmp_path, database, clock) as world:
        await invoice(world, "1001")
        clock.ahead += timedelta(minutes=45)
        await world.wait_message(DIGEST)
        for _ in range(2):
            await world.restart()
            await digests_looked_at(world, local_day(clock))
        assert world.count(DIGEST) == 1


async def test_a_digest_missed_while_down_is_sent_once_after_the_restart(
    tmp_path: Path, database: str
) -> None:
    clock = clock_at(time(18, 0))
    async with day_world(tmp_path, database, clock) as world:
        await invoice(world, "1001")
        await world.paybot.stop()
        clock.ahead += timedelta(hours=4)  # down from 18:00 to 22:00
        await world.restart()
        await world.wait_message(DIGEST)
        await world.restart()
        await digests_looked_at(world, local_day(clock))
        assert world.count(DIGEST) == 1


async def test_an_older_days_missed_digest_is_not_sent(tmp_path: Path, database: str) -> None:
    clock = clock_at(time(18, 0))
    async with day_world(tmp_path, database, clock) as world:
        await invoice(world, "1001")
        await world.paybot.stop()
        clock.ahead += timedelta(days=1, hours=3)  # back the next day at 21:00
        await world.restart()
        await digests_looked_at(world, local_day(clock))
        assert world.count(DIGEST) == 0


async def test_off_sends_no_digest(tmp_path: Path, database: str) -> None:
    clock = clock_at(time(21, 0))
    async with day_world(tmp_path, database, clock, digest_at="off") as world:
        await invoice(world, "1001")
        assert await world.paybot.digest.send_due() == 0
        assert "digest" not in world.paybot.background
        ready = await world.http.get(f"{world.local_url}/readyz")
        assert ready.status_code == 200, ready.text
        assert world.count(DIGEST) == 0
