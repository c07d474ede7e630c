"""Cimplify webhooks in a burst: stored together, each acknowledged only once stored,
repeats told apart even within one commit, and every payment confirmed once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

from tests.flow_events import event
from tests.harness import MERCHANT, World


def stored(world: World, event_id: str) -> bool:
    """Whether the event is in paybot's database, read as another process would."""
    uri = f"file:{world.settings.database}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        found = db.execute("SELECT 1 FROM webhook_events WHERE id = ?", (event_id,))
        return found.fetchone() is not None


async def test_a_burst_is_stored_before_each_answer_and_repeats_are_told_apart(
    world: World,
) -> None:
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    link = await world.link_for("1001")
    # Ten events, each posted three times at once: one of each three is fresh.
    bodies = [event("payment.succeeded", token=link.token) for _ in range(10)]

    async def post(body: dict[str, object]) -> bool:
        response = await world.post_event(body)
        assert response.status_code == 200
        assert stored(world, str(body["id"]))  # durable before the answer
        return not response.json()["duplicate"]

    fresh = await asyncio.gather(*(post(body) for body in bodies * 3))

    assert sum(fresh) == len(bodies)
    await world.wait_message("Confirmed")
    await world.wait_idle()
    async with world.paybot.store.transaction() as tx:
        assert await tx.unapplied_events(100) == []  # every one applied
    assert world.count("Confirmed", MERCHANT) == 1
