"""Keeping the store's size bounded: what is done and older than PAYBOT_RETENTION goes.

Handled inputs, sent (or dropped) messages, old status history and follow-ups done
(reminders sent or found moot) are deleted in
small batches, one short transaction each, so no other work waits long behind
them; it runs at start and then every hour. /export files go once they expire (a
day). Inputs set aside (they kept failing) are kept for someone to look at; links
and their subscriptions are kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.errors import StoreUnavailable
from bot.ports import Store, Tx

log = logging.getLogger(__name__)

BATCH = 500  # rows a transaction
EVERY = timedelta(hours=1)


class Housekeeping:
    def __init__(self, store: Store, clock: Callable[[], datetime], retention: timedelta) -> None:
        self._store, self._clock, self._retention = store, clock, retention

    async def run(self) -> None:
        while True:
            try:
                await self.prune()
            except StoreUnavailable as error:  # the rows wait for the next round
                log.warning("housekeeping: the store failed (%s); again in an hour", error)
            await asyncio.sleep(EVERY.total_seconds())

    async def prune(self) -> int:
        """Delete what is older than the retention; how many rows in all."""
        before = self._clock() - self._retention
        kinds: dict[str, Callable[[Tx], Awaitable[int]]] = {
            "handled inputs": lambda tx: tx.inbox.forget_finished(before, BATCH),
            "sent messages": lambda tx: tx.outbox.forget_done(before, BATCH),
            "status changes": lambda tx: tx.links.forget_history(before, BATCH),
            # An export is kept for a day, not for the retention: its URL stops then.
            "expired exports": lambda tx: tx.exports.forget_expired(self._clock(), BATCH),
            "follow-ups done": lambda tx: tx.follow_ups.forget_done(before, BATCH),
            # A sender's budget that is whole again is as good as none.
            "senders' budgets": lambda tx: tx.limits.forget_idle(self._clock(), BATCH),
        }
        total = 0
        for name, forget in kinds.items():
            gone = await self._in_batches(forget)
            if gone:
                log.info("housekeeping: %d %s forgotten", gone, name)
            total += gone
        return total

    async def _in_batches(self, forget: Callable[[Tx], Awaitable[int]]) -> int:
        total = 0
        while True:
            async with self._store.transaction() as tx:
                gone = await forget(tx)
            total += gone
            if gone < BATCH:
                return total
            await asyncio.sleep(0)  # let other work have the store between batches
