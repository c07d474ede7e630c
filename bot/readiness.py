"""Is this paybot fit to take traffic? What GET /readyz answers (CONTRACT §4).

Three questions, each with its reason when the answer is no: does the store take
a write within a second; is every background loop (the outbox, the poller, the
inbox) still running; is the oldest due chat message no more than a minute late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.errors import StoreError
from bot.ports import Store

WRITE_WITHIN = 1.0  # seconds
LATE_AFTER = timedelta(minutes=1)
# The probe's write: a claim on an order, released in the same transaction. No order
# id can hold ":" (CONTRACT §1), so it never meets a real order's claim.
_PROBE_ORDER = "readyz:{holder}"


@dataclass(frozen=True)
class StoreReading:
    """What one probe learned: the store took a write, how late the outbox is, and how
    long the oldest input not yet handled has waited."""

    outbox_late: timedelta
    inbox_waiting: timedelta


async def probe_store(store: Store, holder: str, now: datetime) -> StoreReading:
    """One small committed write, and the outbox's lateness and the inbox's oldest
    waiting input read in the same transaction.

    Raises StoreError when the store refuses."""
    order = _PROBE_ORDER.format(holder=holder)
    async with store.transaction() as tx:
        await tx.links.claim_order(order, holder, now, now)
        await tx.links.release_order(order, holder)
        next_due = await tx.outbox.next_due_at()
        waiting_since = await tx.inbox.oldest_waiting_since()
    return StoreReading(outbox_late=_since(next_due, now), inbox_waiting=_since(waiting_since, now))


def _since(then: datetime | None, now: datetime) -> timedelta:
    return timedelta(0) if then is None else max(timedelta(0), now - then)


class Readiness:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        holder: str,
        loops: Callable[[], Mapping[str, asyncio.Task[None]]],
    ) -> None:
        self._store = store
        self._clock = clock
        self._holder = holder
        self._loops = loops
        self._probe: asyncio.Task[StoreReading] | None = None

    async def problems(self) -> list[str]:
        """Why this paybot is not ready; empty when it is."""
        found = self._dead_loops()
        try:
            reading = await self.store_reading()
        except StoreError as error:
            return [f"the store refused a write: {error}", *found]
        if reading is None:
            return [f"the store took no write within {WRITE_WITHIN:g} s", *found]
        if reading.outbox_late > LATE_AFTER:
            late = reading.outbox_late.total_seconds()
            found.append(f"the oldest due message is {late:.0f} s late")
        return found

    async def store_reading(self) -> StoreReading | None:
        """A write and the outbox's next due time, or None when the store took more than
        WRITE_WITHIN seconds. Raises StoreError when it refused.

        The probe is not cancelled when it is slow (a store caught mid-statement may be
        left in a transaction): the next question waits on the same probe instead of
        piling another behind it.
        """
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._read_with_a_write())
            self._probe.add_done_callback(_retrieved)  # a late failure is no one's to raise
        done, _ = await asyncio.wait({self._probe}, timeout=WRITE_WITHIN)
        return self._probe.result() if done else None

    async def close(self) -> None:
        """Wait for a probe still running (at stop, before the store closes)."""
        if self._probe is not None:
            await asyncio.gather(self._probe, return_exceptions=True)

    async def _read_with_a_write(self) -> StoreReading:
        return await probe_store(self._store, self._holder, self._clock())

    def _dead_loops(self) -> list[str]:
        loops = self._loops()
        if not loops:
            return ["paybot is starting"]
        return [f"the {name} loop is not running" for name, task in loops.items() if task.done()]


def _retrieved(task: asyncio.Task[StoreReading]) -> None:
    if not task.cancelled():
        task.exception()
