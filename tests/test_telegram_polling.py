"""Long polling stores each update before the next getUpdates confirms it (its offset).

UpdatePolling runs against the fake Bot API over HTTP with a real SqliteStore; a
store that notes what was stored after each commit gives the timeline to compare
with the getUpdates calls the fake recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from telegram import Bot, Update

from bot.models import utcnow
from handlers.telegram_polling import UpdatePolling
from storage.sqlite import SqliteStore
from tests.fakes.bot_api import FakeBotApi
from tests.harness import MERCHANT, World, wait_until

CHAT_A, CHAT_B = 501, 502


class CommitLog(SqliteStore):
    """A SqliteStore that notes, after each commit, when it was and which updates were stored.

    The file is read with sqlite3, as anyone could read it, not through the store.
    """

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path
        self.commits: list[tuple[float, set[int]]] = []

    @contextlib.asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[object]:  # type: ignore[override]
        async with super().transaction(urgent) as tx:
            yield tx
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            stored = {row[0] for row in db.execute("SELECT update_id FROM telegram_updates")}
        self.commits.append((time.monotonic(), stored))

    def stored_before(self, moment: float) -> set[int]:
        return {i for at, ids in self.commits if at < moment for i in ids}


@dataclass
class Handling:
    """The `process` callback: records updates; chats in `held` wait until released."""

    seen: list[tuple[int, int]] = field(default_factory=list)  # (chat, update id)
    held: set[int] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, update: Update) -> None:
        assert update.effective_chat is not None
        chat = update.effective_chat.id
        if chat in self.held:
            await self.release.wait()
        self.seen.append((chat, update.update_id))

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
async def store(tmp_path: Path) -> AsyncIterator[CommitLog]:
    opened = CommitLog(str(tmp_path / "paybot.db"))
    await opened.open()
    yield opened
    await opened.close()


@contextlib.asynccontextmanager
async def polling(fake: FakeBotApi, store: SqliteStore, handling: Handling) -> AsyncIterator[None]:
    async with Bot(fake.token, base_url=f"{fake.base_url}/bot") as bot:
        poller = UpdatePolling(bot, handling, store, utcnow, concurrency=4)
        await poller.start()
        try:
            yield
        finally:
            await poller.stop_fetching()
            handling.release.set()
            await poller.finish_handling()


def offsets(fake: FakeBotApi) -> Iterator[tuple[float, int]]:
    for call in fake.calls:
        if call.method == "getUpdates" and "offset" in call.params:
            yield call.at, int(call.params["offset"])


async def unhandled(store: SqliteStore) -> list[int]:
    async with store.transaction() as tx:
        return [i for i, _ in await tx.unhandled_telegram_updates(100)]


async def test_a_batch_is_stored_before_the_getupdates_that_confirms_it(
    fake: FakeBotApi, store: CommitLog
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
    # Answers in order within each chat; chat B was not held up by chat A.
    assert [u for c, u in handling.seen if c == CHAT_A] == sent[:3]
    assert [u for c, u in handling.seen if c == CHAT_B] == sent[3:]
    assert await unhandled(store) == []


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "not-handled"])
async def test_an_update_telegram_sends_again_is_handled_once(
    fake: FakeBotApi, store: CommitLog, handled: bool
) -> None:
    """A crash after the commit and before the next getUpdates: Telegram still has the
    update, and sends it again to the restarted bot, which already stored it."""
    update_id = fake.send_text("/help", user_id=CHAT_A)
    async with Bot(fake.token, base_url=f"{fake.base_url}/bot") as bot:
        (fetched,) = await bot.get_updates(timeout=0)  # no offset: nothing confirmed
    async with store.transaction() as tx:
        await tx.record_telegram_updates([(update_id, fetched.to_json())], utcnow())
        if handled:
            await tx.mark_telegram_update_handled(update_id, utcnow())
    handling = Handling()
    async with polling(fake, store, handling):
        # Fetched again (a start asks with no offset), then confirmed with the next offset.
        await fake.wait_for(lambda: any(o == update_id + 1 for _, o in offsets(fake)))
        await wait_until(lambda: unhandled(store), lambda ids: ids == [])
    assert handling.seen == ([] if handled else [(CHAT_A, update_id)])


async def test_an_update_stored_and_not_handled_is_answered_at_start(world: World) -> None:
    """As a crash after storing and before handling leaves it: Telegram never sends it again."""
    command = {"type": "bot_command", "offset": 0, "length": 8}
    user = {"id": MERCHANT, "is_bot": False, "first_name": "Kofi"}
    message = {"message_id": 900, "date": 1_800_000_000, "chat": {"id": MERCHANT}}
    message |= {"from": user, "text": "/invoice 1001", "entities": [command]}
    message["chat"] |= {"type": "private"}
    async with world.paybot.store.transaction() as tx:
        body = json.dumps({"update_id": 900, "message": message})
        assert await tx.record_telegram_updates([(900, body)], utcnow()) == [900]
    await world.restart()

    invoice = await world.wait_message("Order 1001")
    assert invoice.photo is not None
    await wait_until(lambda: unhandled(world.paybot.store), lambda ids: ids == [])
    assert len(world.photos()) == 1
    # It came from the store: the fake never had an update numbered 900.
    assert all(int(c.params.get("offset", 0)) <= 900 for c in world.fake.calls)
