"""Long polling stores each update in the inbox before the next getUpdates confirms it.

UpdatePolling runs against the fake Bot API over HTTP, storing through the inbox's
Intake into a real store (SQLite and PostgreSQL in turn), and an InboxWorker hands
stored updates to a recording handler. A store that notes, after each commit,
which updates another connection sees gives the timeline to compare with the
getUpdates calls the fake recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from telegram import Bot

from bot.inbox import InboxWorker, Intake
from bot.models import InboxItem, utcnow
from bot.ports import Store, Tx
from handlers.telegram_polling import TELEGRAM_UPDATE, UpdatePolling, update_entry
from storage import store_for
from tests.fakes.bot_api import FakeBotApi
from tests.harness import MERCHANT, World, wait_until
from tests.store_rows import inbox_entries, rows

CHAT_A, CHAT_B = 501, 502


class CommitLog:
    """The store, noting after each commit when it was and which updates were stored.

    The table is read over a connection of its own, as anyone could read it.
    """

    def __init__(self, store: Store, database: str) -> None:
        self.store, self.database = store, database
        self.commits: list[tuple[float, set[int]]] = []

    @contextlib.asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[Tx]:
        async with self.store.transaction(urgent) as tx:
            yield tx
        stored = await inbox_entries(self.database, "telegram")
        self.commits.append((time.monotonic(), {int(i) for i in stored}))

    def stored_before(self, moment: float) -> set[int]:
        return {i for at, ids in self.commits if at < moment for i in ids}


@dataclass
class Handling:
    """The inbox's handler for updates: records them; chats in `held` wait until released."""

    seen: list[tuple[int, int]] = field(default_factory=list)  # (chat, update id)
    held: set[int] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, item: InboxItem) -> None:
        update = json.loads(item.entry.body)
        chat = update["message"]["chat"]["id"]
        if chat in self.held:
            await self.release.wait()
        self.seen.append((chat, update["update_id"]))

    async def wait(self, done: Callable[[list[tuple[int, int]]], bool]) -> None:
        """Handling makes no request the fake could wake a waiter with: poll instead."""

        async def seen() -> list[tuple[int, int]]:
            return self.seen

        await wait_until(seen, done)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as running:
        yield running


@pytest.fixture
async def store(database: str) -> AsyncIterator[CommitLog]:
    opened = store_for(database)
    await opened.open()
    yield CommitLog(opened, database)
    await opened.close()


@contextlib.asynccontextmanager
async def polling(fake: FakeBotApi, store: CommitLog, handling: Handling) -> AsyncIterator[None]:
    """Polling into the inbox, and a worker handling what is stored, as paybot wires them."""
    worker = InboxWorker(store, utcnow, "test", {TELEGRAM_UPDATE: handling})  # type: ignore[arg-type]
    intake = Intake(store, utcnow, worker.wake)  # type: ignore[arg-type]
    handling_task = asyncio.create_task(worker.run())
    async with Bot(fake.token, base_url=f"{fake.base_url}/bot") as bot:
        poller = UpdatePolling(bot, intake.store_many)
        await poller.start()
        try:
            yield
        finally:
            await poller.stop_fetching()
            handling.release.set()
            await worker.drain()
            handling_task.cancel()
            await asyncio.gather(handling_task, return_exceptions=True)


def offsets(fake: FakeBotApi) -> Iterator[tuple[float, int]]:
    for call in fake.calls:
        if call.method == "getUpdates" and "offset" in call.params:
            yield call.at, int(call.params["offset"])


async def unhandled(database: str) -> list[int]:
    stored = await inbox_entries(database, "telegram")
    return sorted(int(i) for i, handled_at in stored.items() if handled_at is None)


async def test_a_batch_is_stored_before_the_getupdates_that_confirms_it(
    fake: FakeBotApi, store: CommitLog, database: str
) -> None:
    handling = Handling(held={CHAT_A})
    async with polling(fake, store, handling):
        sent = [fake.send_text(f"/invoice {n}", user_id=CHAT_A) for n in range(3)]
        sent += [fake.send_text(f"/status {n}", user_id=CHAT_B) for n in range(3)]
        # Chat A's handling is held, yet all six are confirmed: storing is what counts.
        await fake.wait_for(lambda: any(o > max(sent) for _, o in offsets(fake)))
        await handling.wait(lambda seen: len(seen) == 3)
        assert handling.seen == [(CHAT_B, u) for u in sent[3:]]
        for at, offset in offsets(fake):
            confirmed = {u for u in sent if u < offset}
            assert confirmed <= store.stored_before(at), (offset, store.commits)
        handling.release.set()
        await handling.wait(lambda seen: len(seen) == 6)
        await wait_until(lambda: unhandled(database), lambda ids: ids == [])
    # Answers in order within each chat; chat B was not held up by chat A.
    assert [u for c, u in handling.seen if c == CHAT_A] == sent[:3]
    assert [u for c, u in handling.seen if c == CHAT_B] == sent[3:]


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "not-handled"])
async def test_an_update_telegram_sends_again_is_stored_and_handled_once(
    fake: FakeBotApi, store: CommitLog, database: str, handled: bool
) -> None:
    """A crash after the commit and before the next getUpdates: Telegram still has the
    update, and sends it again to the restarted bot, which already stored it."""
    update_id = fake.send_text("/help", user_id=CHAT_A)
    async with Bot(fake.token, base_url=f"{fake.base_url}/bot") as bot:
        (fetched,) = await bot.get_updates(timeout=0)  # no offset: nothing confirmed
    async with store.transaction() as tx:
        assert await tx.inbox.record([update_entry(fetched)], utcnow()) == [True]
        if handled:
            (item,) = await tx.inbox.claim(utcnow(), 1, "before-the-crash", utcnow())
            await tx.inbox.finish(item.seq, utcnow())
    handling = Handling()
    async with polling(fake, store, handling):
        # Fetched again (a start asks with no offset), then confirmed with the next offset.
        await fake.wait_for(lambda: any(o == update_id + 1 for _, o in offsets(fake)))
        await wait_until(lambda: unhandled(database), lambda ids: ids == [])
        if not handled:
            await handling.wait(lambda seen: seen != [])
    assert handling.seen == ([] if handled else [(CHAT_A, update_id)])
    stored = await rows(database, "SELECT source_id FROM inbox WHERE source = 'telegram'")
    assert [r[0] for r in stored] == [str(update_id)]  # once, by update id


def invoice_update(update_id: int, order: str) -> dict[str, object]:
    command = {"type": "bot_command", "offset": 0, "length": 8}
    user = {"id": MERCHANT, "is_bot": False, "first_name": "Kofi"}
    message = {"message_id": update_id, "date": 1_800_000_000, "from": user}
    message |= {"chat": {"id": MERCHANT, "type": "private"}}
    message |= {"text": f"/invoice {order}", "entities": [command]}
    return {"update_id": update_id, "message": message}


async def test_updates_stored_and_not_handled_are_answered_in_order_after_a_restart(
    world: World,
) -> None:
    """As a crash after storing and before handling leaves them: Telegram never sends
    them again, so the stored ones are all there is."""
    assert world.paybot.telegram is not None
    bodies = [json.dumps(invoice_update(900, "1001")), json.dumps(invoice_update(901, "1002"))]
    entries = [world.paybot.telegram.webhook_entry(body.encode()) for body in bodies]
    await world.paybot.stop()
    stopped = store_for(world.settings.database)
    await stopped.open()
    async with stopped.transaction() as tx:
        assert await tx.inbox.record(entries, utcnow()) == [True, True]
    await stopped.close()
    await world.restart()

    await world.fake.wait_for(lambda: len(world.photos()) == 2)
    captions = [photo.caption or "" for photo in world.photos()]
    assert "Order 1001" in captions[0] and "Order 1002" in captions[1]  # in stored order
    await wait_until(lambda: unhandled(world.settings.database), lambda ids: ids == [])
    # They came from the store: the fake never had updates numbered 900 and 901.
    assert all(int(c.params.get("offset", 0)) <= 900 for c in world.fake.calls)
