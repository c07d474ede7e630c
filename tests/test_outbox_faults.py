"""The outbox never sends twice without a crash, and never stalls a chat (issue 10, item 3).

- A send Telegram took whose record then fails (the database locked past its busy timeout) is
  recorded later; it is not sent again.
- A group that became a supergroup takes its subscriptions and queue along.
- An error nobody foresaw is tried a few times, then the message is given up, the
  merchant told, and the chat's later messages go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.inbox import Leases
from bot.models import ChatRef, Role, Subscription
from bot.outbox import UNEXPECTED_TRIES
from tests.clocks import MovableClock
from tests.fakes.bot_api import SentMessage
from tests.flow_events import event
from tests.harness import MERCHANT, World, quick_tuning, running_world, wait_until
from tests.store_rows import rows

GROUP, SUPERGROUP = -4001, -1004001
# The lock is held until the record has failed. Each write waiting in line before it (the
# poller's, the inbox's) gives up only after SQLite's 5 s busy timeout, so allow several.
RECORD_FAILS_WITHIN = 30.0


@contextlib.contextmanager
def writer_lock(path: str) -> Iterator[sqlite3.Connection]:
    """Another process's connection, to hold SQLite's write lock with."""
    holder = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        yield holder
    finally:
        holder.close()


async def test_a_send_whose_record_failed_is_recorded_later_not_sent_again(
    sqlite_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = sqlite_world
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    await world.wait_idle()
    locked = asyncio.Event()

    with writer_lock(world.settings.database) as holder:

        async def lock_before_answering(message: SentMessage) -> None:
            if "Order 1001" in (message.text or "") and not locked.is_set():
                await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
                locked.set()

        world.fake.before_answering_send = lock_before_answering
        world.say("/status 1001")
        await asyncio.wait_for(locked.wait(), 5)
        # Held until the record has failed for want of the lock, as a long lock makes it.
        await wait_until(
            lambda: _count_logged(caplog, "recording it failed"),
            lambda n: n >= 1,
            RECORD_FAILS_WITHIN,
        )
        await asyncio.to_thread(holder.execute, "ROLLBACK")
    world.fake.before_answering_send = None
    await world.wait_idle(15)
    assert len([m for m in world.fake.messages(MERCHANT) if "Order 1001 (" in (m.text or "")]) == 1


async def _count_logged(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(words in record.getMessage() for record in caplog.records)


async def test_a_group_that_became_a_supergroup_takes_its_links_and_queue_along(
    world: World,
) -> None:
    world.fake.send_text("/invoice 1001", user_id=MERCHANT, chat_id=GROUP)
    await world.wait_message("Pay here", chat_id=GROUP)
    await world.wait_idle()
    link = await world.link_for("1001")
    world.fake.migrate(GROUP, SUPERGROUP)

    world.sandbox.set_status(link.token, "processing")
    await world.wait_message("Processing", chat_id=SUPERGROUP, timeout=10)
    assert (await world.post_event(event("payment.succeeded", token=link.token))).status_code == 200
    await world.wait_message("Confirmed", chat_id=SUPERGROUP)
    async with world.paybot.store.transaction() as tx:
        chats = [s.chat for s in await tx.subscriptions.for_link(link.id)]
    assert chats == [ChatRef("telegram", str(SUPERGROUP))]
    assert world.count("Confirmed", chat_id=SUPERGROUP) == 1


async def test_an_unforeseen_error_is_tried_a_few_times_then_given_up_and_told(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    # The clock jumps 10 s a look: a lease of seconds would lapse at once, and the roles
    # (the sender's among them) would be lost and won back every couple of seconds, each
    # try waiting for that. No process dies here: a day's lease.
    tuning = quick_tuning(clock=clock, leases=Leases(claim=timedelta(days=1)))
    async with running_world(tmp_path, tuning, database=database) as world:
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        link = await world.link_for("1001")
        # A chat id the channel cannot read: an error no one foresaw, raised on every try.
        odd = Subscription(link.id, ChatRef("telegram", "not-a-chat"), Role.CUSTOMER)
        async with world.paybot.store.transaction() as tx:
            await tx.subscriptions.add(odd)
        world.sandbox.set_status(link.token, "processing")
        await world.wait_message("Processing")  # the merchant's chat is not held up

        async def given_up() -> bool:
            clock.ahead += timedelta(seconds=10)  # each look moves the bot past its backoff
            world.paybot.outbox.wake()
            return world.count("could not be delivered") > 0

        await wait_until(given_up, bool, timeout=20)
        await world.wait_idle()
        assert world.count("could not be delivered") == 1
        tried = await rows(
            world.settings.database,
            "SELECT attempts FROM outbox WHERE chat_id = ? AND dropped_at IS NOT NULL",
            "not-a-chat",
        )
        assert [row["attempts"] for row in tried] == [UNEXPECTED_TRIES]
        # The chat's next message is not held behind the one given up: it is tried too.
        posted = await world.post_event(event("payment.succeeded", token=link.token))
        assert posted.status_code == 200
        await world.wait_message("Confirmed")

        async def next_one_tried() -> bool:
            clock.ahead += timedelta(seconds=10)
            world.paybot.outbox.wake()
            found = await rows(
                world.settings.database,
                "SELECT attempts FROM outbox WHERE chat_id = ? AND text LIKE ?",
                "not-a-chat",
                "%Confirmed%",
            )
            return bool(found) and found[0]["attempts"] >= 1

        await wait_until(next_one_tried, bool, timeout=20)
