"""A background loop tells a store that is unavailable from a bug in paybot.

A store that is locked, full or gone raises StoreUnavailable: the loop says "the
store failed" and tries again. Anything else is a bug: it is logged as one, with
its traceback, whether the loop goes on after it or is ended by it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from bot.errors import StoreUnavailable
from bot.follow_ups import FollowUpPolicy, FollowUps
from bot.i18n import Voice, Voices
from bot.models import utcnow
from bot.ports import Tx
from paybot.app import start_loops
from storage.sqlite import SqliteStore
from tests.counted_store import Counted
from tests.harness import wait_until


class Faulty(Counted):
    """A real SQLite store whose next transactions fail with the errors in `faults`;
    `begun` counts those begun after the faults ran out."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store)
        self.faults: list[Exception] = []

    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[Tx]:
        if self.faults:
            raise self.faults.pop(0)
        return super().transaction(urgent)


@pytest.fixture
async def faulty(tmp_path: Path) -> AsyncIterator[Faulty]:
    store = SqliteStore(str(tmp_path / "paybot.db"))
    await store.open()
    yield Faulty(store)
    await store.close()


async def test_a_store_outage_is_waited_out_and_a_bug_is_logged_as_one(
    faulty: Faulty, caplog: pytest.LogCaptureFixture
) -> None:
    outage = StoreUnavailable("database is locked")
    bug = TypeError("unsupported operand type(s) for +: 'datetime' and 'str'")
    faulty.faults = [outage, bug]
    voices = Voices(Voice("en", "UTC"))
    worker = FollowUps(faulty, utcnow, voices, FollowUpPolicy(), lambda: None)  # type: ignore[arg-type]

    with caplog.at_level(logging.ERROR, logger="bot.follow_ups"):
        loop = asyncio.create_task(worker.run())
        try:
            await wait_until(faulty.begun_so_far, lambda n: n >= 1)  # past both faults: working
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    store_failed, buggy = caplog.records
    assert "the store failed (database is locked)" in store_failed.getMessage()
    assert store_failed.exc_info is None  # an outage, nothing to debug
    assert "unexpected error, a bug" in buggy.getMessage()
    assert buggy.exc_info is not None and buggy.exc_info[1] is bug  # its traceback
    assert "store" not in buggy.getMessage()


async def test_a_loop_ended_by_a_bug_is_logged_at_once_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bug = KeyError("link_id")

    async def housekeeping() -> None:
        await asyncio.sleep(0)
        raise bug

    async def outbox() -> None:
        await asyncio.Event().wait()

    async def logged() -> list[logging.LogRecord]:
        return caplog.records

    with caplog.at_level(logging.ERROR, logger="paybot.app"):
        loops = start_loops({"housekeeping": housekeeping(), "outbox": outbox()})
        (record,) = await wait_until(logged, lambda records: len(records) == 1)
        loops["outbox"].cancel()
        await asyncio.gather(*loops.values(), return_exceptions=True)

    assert record.levelno == logging.CRITICAL
    assert "the housekeeping loop stopped on an unexpected error, a bug" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is bug
    assert len(caplog.records) == 1  # a loop cancelled at stop is no error
