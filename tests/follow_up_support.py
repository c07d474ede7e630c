"""Moving a world's clock past follow-up marks, and waiting until they are handled."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.clocks import MovableClock
from tests.harness import World, quick_tuning, running_world, wait_until


@contextlib.asynccontextmanager
async def clocked_world(
    tmp_path: Path,
    database: str,
    clock: MovableClock,
    link_ttl: timedelta = timedelta(days=3),
    **options: Any,
) -> AsyncIterator[World]:
    async with running_world(
        tmp_path, quick_tuning(clock=clock), link_ttl=link_ttl, database=database, **options
    ) as world:
        yield world


async def move_on(world: World, clock: MovableClock, by: timedelta) -> None:
    """Move the bot's time on, wake whatever waits for a time, and wait until every
    follow-up due by then is handled and its messages are sent."""
    clock.ahead += by
    world.paybot.follow_ups.wake()
    world.paybot.tracker.wake()

    async def due_left() -> list[str]:
        now = clock()
        async with world.paybot.store.transaction() as tx:
            links = [await tx.links.latest_for_order(order) for order in ("1001", "1002")]
            pending = [
                f
                for link in links
                if link is not None
                for f in await tx.follow_ups.pending_for(link.id)
            ]
        world.paybot.follow_ups.wake()
        return [f"{f.kind}:{f.mark}" for f in pending if f.due_at <= now]

    await wait_until(due_left, lambda left: left == [], timeout=10)
    await world.wait_idle()
