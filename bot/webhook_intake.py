"""Verified Cimplify webhooks into the store, many at a time, and applied by one runner.

Webhooks that arrive together are stored together: every one that came in while
the previous commit ran goes into the next transaction, so a burst costs one
commit (one fsync) and three round trips to the database thread, not a
transaction of three round trips each. Each caller returns only after the commit
that holds its event, so a webhook is still acknowledged only once it is durable.
A verified event always fits the table, so when a batch fails it is the store
failing, and every event in it is refused (and delivered again by Cimplify), as
each would have been alone.

Stored events are applied by one runner that goes round again while new ones
arrive, rather than by a task per event, each queuing for the store only to
find the backlog already applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.models import WebhookEvent
from bot.payments import Payments
from storage import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Waiting:
    event: WebhookEvent
    body: bytes
    stored: asyncio.Future[bool]  # True: fresh, False: a repeat


class WebhookIntake:
    def __init__(self, store: Store, payments: Payments, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._payments = payments
        self._clock = clock
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._applier: asyncio.Task[None] | None = None
        self._apply_again = False

    async def record(self, event: WebhookEvent, body: bytes) -> bool:
        """Store the event durably, then have it applied; False when its id was stored before.

        Raises when it could not be stored: then it must not be acknowledged.
        """
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(event, body, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_waiting())
        # Shielded: a caller that gives up (a dropped connection) must not cancel the
        # result the writer will set.
        fresh = await asyncio.shield(stored)
        if fresh:
            self.apply_soon()
        return fresh

    def apply_soon(self) -> None:
        """Apply every stored event not yet applied, now or right after the current run."""
        self._apply_again = True
        if self._applier is None or self._applier.done():
            self._applier = asyncio.create_task(self._apply_while_asked())

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a shutdown bound
        """Wait for events being stored and applied (on shutdown)."""
        running = [task for task in (self._writer, self._applier) if task and not task.done()]
        if running:
            await asyncio.wait(running, timeout=timeout)

    async def _write_while_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._write(batch)
            finally:  # cancelled at shutdown: nobody may wait for ever
                for waiting in batch:
                    _settle(waiting.stored, RuntimeError("paybot is stopping"))

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            async with self._store.transaction() as tx:
                new = await tx.record_events([(w.event, w.body) for w in batch], self._clock())
        except Exception as error:
            for waiting in batch:
                _settle(waiting.stored, error)
            return
        for waiting in batch:
            # An id twice in one batch is fresh only the first time, as if one after the other.
            _settle(waiting.stored, waiting.event.id in new)
            new.discard(waiting.event.id)

    async def _apply_while_asked(self) -> None:
        while self._apply_again:
            self._apply_again = False
            try:
                await self._payments.apply_pending_events()
            except Exception:  # they stay stored and unapplied: the next event or a restart
                log.exception("applying stored webhook events failed")
                return


def _settle(future: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
