"""A cashier's /today, /export and daily digest cover the links they issued; an owner's
cover every link (CONTRACT §7). Real PTB against the fake Bot API, both stores."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import time, timedelta
from pathlib import Path

from tests.clocks import MovableClock
from tests.harness import MERCHANT, World, quick_tuning, running_world
from tests.test_flow_day import clock_at, digests_looked_at, local_day

OWNER, CASHIER = MERCHANT, 1002
DIGEST = "Your daily digest"


@asynccontextmanager
async def shop(tmp_path: Path, database: str, clock: MovableClock) -> AsyncIterator[World]:
    """The owner issued 1001 and the cashier 1002, today before the digest."""
    env = {
        "TELEGRAM_MERCHANTS": f"{OWNER}, {CASHIER}:cashier",
        "PAYBOT_TIMEZONE": "Africa/Lagos",
        "PAYBOT_DIGEST_AT": "20:00",
    }
    tuning = quick_tuning(clock=clock, digest_every=0.05)
    async with running_world(tmp_path, tuning, env=env, database=database) as world:
        for order_id, user_id in (("1001", OWNER), ("1002", CASHIER)):
            world.say(f"/invoice {order_id}", user_id=user_id)
            await world.wait_message(f"Order {order_id}", chat_id=user_id)
        yield world


async def test_a_cashiers_today_counts_their_links_and_an_owners_every_link(
    tmp_path: Path, database: str
) -> None:
    async with shop(tmp_path, database, clock_at(time(10, 0))) as world:
        world.say("/today", user_id=CASHIER)
        cashiers = await world.wait_message("Your day so far", chat_id=CASHIER)
        world.say("/today", user_id=OWNER)
        owners = await world.wait_message("Your day so far", chat_id=OWNER)

    assert "Issued: 1 link\n" in (cashiers.text or "")
    assert "Issued: 2 links\n" in (owners.text or "")


async def test_a_cashiers_export_holds_only_their_links(tmp_path: Path, database: str) -> None:
    async with shop(tmp_path, database, clock_at(time(10, 0))) as world:
        world.say("/export", user_id=CASHIER)
        sent = await world.fake.wait_for(
            lambda: [m for m in world.fake.messages(CASHIER) if m.document is not None]
        )

    content = (sent[0].document or b"").decode("utf-8-sig")
    orders = [row[0] for row in csv.reader(io.StringIO(content, newline=""))][1:]
    assert orders == ["1002"]


async def test_a_cashiers_digest_counts_their_links(tmp_path: Path, database: str) -> None:
    clock = clock_at(time(19, 0))
    async with shop(tmp_path, database, clock) as world:
        clock.ahead += timedelta(hours=1, minutes=1)
        await digests_looked_at(world, local_day(clock))
        cashiers = await world.wait_message(DIGEST, chat_id=CASHIER)
        owners = await world.wait_message(DIGEST, chat_id=OWNER)

    assert "Issued: 1 link\n" in (cashiers.text or "")
    assert "Issued: 2 links\n" in (owners.text or "")
