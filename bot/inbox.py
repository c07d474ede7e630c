"""One durable inbox for every input: stored, then acknowledged, then handled.

Intake: whoever receives an input (a webhook route, Telegram long polling) hands
it to `Intake.store`, which returns only once it is committed; only then is the
sender answered. Inputs that arrive together are stored together: every one that
came in while the previous commit ran goes into the next transaction, so a burst
costs one commit, not one each. A batch the store refuses is stored again one
entry at a time, so one bad entry is refused alone and never takes its batch down.

Handling: `InboxWorker` claims the heads of lanes (a chat, an order) with a lease,
runs the handler registered for each entry's kind, and marks it finished. What is
stored is claimed for this process's worker in the transaction that stores it and
handed over once committed; the worker looks by itself too, for what another
process stored or what waited behind its lane's head. Lanes go side by side;
within one, entries are handled one at a time in stored order. A claim whose
holder died returns when its lease ends (a live holder prolongs its claims as a
heartbeat), so any process may finish what another started. An entry whose
handler keeps failing is set aside after `max_attempts`, with a log line, and its
lane moves on. A crash after handling and before the mark handles an
entry twice; handlers are written so that a repeat says nothing new, and where
they answer in one last transaction (a Cimplify event, a command) they mark the
entry finished in it, which closes that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.errors import StoreError, StoreRejected, StoreUnavailable
from bot.logs import log_context
from bot.models import InboxEntry, InboxItem
from bot.ports import Store, Tx
from bot.telemetry import Telemetry

log = logging.getLogger(__name__)

# A handler may mark its entry finished in its own transaction, with the change it
# makes (one commit, and no window to apply it twice): it then returns FINISHED.
Handler = Callable[[InboxItem], Awaitable[object]]
FINISHED = "finished"
IDLE_WAIT = 5.0  # seconds: look again now and then, for work another process stored
STORE_RETRY = timedelta(seconds=1)  # after the store failed a handler


@dataclass
class _InHand:
    """The entry a handler's task is handling; `finished` once a transaction of the
    handler's has committed its mark (`finish_within`)."""

    seq: int
    finished: bool = False


# Set by the worker in each handler's own task, so that code deep in a handler (behind
# python-telegram-bot's dispatch, say) can finish the entry without being handed it.
_IN_HAND: ContextVar[_InHand | None] = ContextVar("inbox_in_hand", default=None)


async def finish_within(tx: Tx, at: datetime, last: bool = True) -> Callable[[], None]:
    """Mark the entry this task is handling finished, in `tx`: the transaction that
    queues its answer, when nothing follows it (`last`, as its caller knows). A crash
    then cannot come between the answer and the mark (the entry handled again,
    answered twice), and the worker spends no transaction on the mark. Call what it
    returns once `tx` has committed; until then the worker still marks the entry
    itself. Not `last`, or outside a handler: nothing."""
    in_hand = _IN_HAND.get()
    if in_hand is None or not last:
        return _nothing
    await tx.inbox.finish(in_hand.seq, at)

    def committed() -> None:
        in_hand.finished = True

    return committed


def _nothing() -> None:
    return None


# Lanes named after a chat (handlers/telegram_polling.py, handlers/whatsapp.py): the chat
# is what a log line of their handling names.
CHAT_LANES = frozenset({"telegram", "whatsapp"})


@dataclass(frozen=True)
class Leases:
    """How long a claim holds, and how often its holder says it is alive."""

    # A dead holder's work is taken over within this (CONTRACT §6 allows 10 s).
    claim: timedelta = timedelta(seconds=6)

    @property
    def heartbeat(self) -> float:
        return self.claim.total_seconds() / 3


class Intake:
    """Stores entries durably, many callers to a commit; wakes the worker after."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        on_stored: Callable[[], None],
        telemetry: Telemetry | None = None,
    ):
        self._store = store
        self._clock = clock
        self._on_stored = on_stored
        self._telemetry = telemetry or Telemetry()
        self._waiting: list[tuple[InboxEntry, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._worker: InboxWorker | None = None

    def hand_over_to(self, worker: InboxWorker) -> None:
        """From now on, what is stored while `worker` has nothing in hand is claimed for it
        in the storing transaction and handed to it after the commit: no wake, and no
        transaction of its own to find it. Otherwise `worker` is woken to look."""
        self._worker = worker

    async def store(self, entry: InboxEntry) -> bool:
        """Store the entry; False when its (source, source_id) was stored before.

        Raises StoreError when it could not be stored: then it must not be acknowledged.
        """
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_waiting())
        # Shielded: a caller that gives up (a dropped connection) must not cancel the
        # result the writer will set for the others.
        fresh = await asyncio.shield(stored)
        # One entry at a time is a webhook's way in (getUpdates stores batches).
        self._telemetry.meter.webhook(entry.source, "stored" if fresh else "duplicate")
        return fresh

    async def store_many(self, entries: Sequence[InboxEntry]) -> list[bool]:
        """Store a batch in one transaction (one getUpdates answer); freshness of each.

        A batch the store refuses is stored again one entry at a time: an entry that can
        never be stored is set aside with a log line (False, as nothing new was stored),
        and the rest of its batch, and what comes after it, goes on. Raises StoreError
        only when the store is unavailable: then nothing may be acknowledged.
        """
        try:
            fresh = await self._record(entries)
        except StoreRejected:
            fresh = [await self._record_alone(entry) for entry in entries]
        return fresh

    async def _record_alone(self, entry: InboxEntry) -> bool:
        try:
            return (await self._record([entry]))[0]
        except StoreRejected as error:
            log.error(
                "inbox: %s %s set aside: the store refused it (%s)",
                entry.kind,
                entry.source_id,
                error,
            )
            return False

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a shutdown bound
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer], timeout=timeout)

    async def _write_while_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._write(batch)
            finally:  # cancelled at shutdown: nobody may wait for ever
                for _, stored in batch:
                    _settle(stored, StoreUnavailable("paybot is stopping"))

    async def _write(self, batch: list[tuple[InboxEntry, asyncio.Future[bool]]]) -> None:
        try:
            fresh = await self._record([entry for entry, _ in batch])
        except StoreRejected:
            if len(batch) == 1:
                _settle(batch[0][1], StoreRejected("the store refused this entry"))
                return
            for single in batch:  # one bad entry is refused alone
                await self._write([single])
            return
        except Exception as error:
            for _, stored in batch:
                _settle(stored, error)
            return
        for (_, stored), new in zip(batch, fresh, strict=True):
            _settle(stored, new)

    async def _record(self, entries: Sequence[InboxEntry]) -> list[bool]:
        """Store the entries; with an idle worker to hand over to, claim for it what is due
        in the same transaction, and hand that over once committed (nothing awaited in
        between, so a claim committed is a claim in hand), else wake the worker to look."""
        worker, claimed = self._worker, []
        async with self._store.transaction() as tx:
            now = self._clock()
            fresh = await tx.inbox.record(entries, now)
            if worker is not None and any(fresh):
                claimed = await worker.claim_within(tx, now)
        if not any(fresh):
            return fresh
        if worker is None:
            self._on_stored()
        elif claimed:
            taken = {(item.entry.source, item.entry.source_id) for item in claimed}
            stored = [(e.source, e.source_id) for e, new in zip(entries, fresh, strict=True) if new]
            worker.take(claimed, left=any(key not in taken for key in stored))
        else:
            worker.wake()  # busy: its own look claims for all its free slots at once
        return fresh


class InboxWorker:
    """Claims stored entries and runs their handlers, lanes side by side."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        holder: str,
        handlers: Mapping[str, Handler],
        leases: Leases | None = None,
        concurrency: int = 16,
        max_attempts: int = 5,
    ) -> None:
        self._store, self._clock, self._holder = store, clock, holder
        self._handlers = dict(handlers)
        self._leases = leases or Leases()
        self._slots = concurrency
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._running: dict[asyncio.Task[None], InboxItem] = {}
        self._claiming = False  # while run() runs: no claim for a worker that is not
        # Something may wait behind an entry in hand (in its lane) or for a free slot:
        # then an entry that finishes makes the loop look; else the look would find
        # nothing, and would cost a transaction a command.
        self._look_after_finish = True
        self._marks = 0  # how often it was set: a look resets it only if none came since

    def _mark(self) -> None:
        self._look_after_finish = True
        self._marks += 1

    def wake(self) -> None:
        """Work was stored that this worker was not handed (by another process, or by an
        intake with no hand-over): look now, and again as entries in hand finish, since
        what was stored may wait behind one of them in its lane."""
        self._mark()
        self._wake.set()

    async def run(self) -> None:
        self._claiming = True
        try:
            await asyncio.gather(self._claim_loop(), self._heartbeat())
        finally:
            self._claiming = False
            await self._abandon()

    async def claim_within(self, tx: Tx, now: datetime) -> list[InboxItem]:
        """Claim what is due for this worker, within `tx` (the one that stores new
        entries: bot/inbox.py's Intake); `take` them once it commits. Only while it has
        nothing in hand: a lone command then goes without a look of the worker's own,
        while in a burst the claims stay out of the transactions that acknowledge
        webhooks (one in each of them cost a quarter of the bench's ingest rate) and
        the worker's looks claim many entries at once."""
        if not self._claiming or self._running:
            return []
        return await tx.inbox.claim(now, self._slots, self._holder, now + self._leases.claim)

    def take(self, claimed: Sequence[InboxItem], left: bool) -> None:
        """Handle entries claimed for this worker in a committed transaction. No look
        follows now; `left`: some entries stored with them were not claimed (behind an
        entry in hand in their lane, or past the free slots), so finishing ones do."""
        for item in claimed:
            self._start(item)
        if left:
            self._mark()

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a shutdown bound
        """On shutdown, once nothing new comes in: handle what is in hand and what is due,
        for up to `timeout` seconds. What is left waits in the store for the next process."""
        with contextlib.suppress(TimeoutError, StoreError):
            async with asyncio.timeout(timeout):
                while self._running or await self._anything_due():
                    self.wake()
                    waiting = list(self._running) or [asyncio.create_task(asyncio.sleep(0.05))]
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)

    async def _anything_due(self) -> bool:
        async with self._store.transaction() as tx:
            next_at = await tx.inbox.next_due_at()
        return next_at is not None and next_at <= self._clock()

    async def _claim_loop(self) -> None:
        while True:
            self._wake.clear()  # before looking, so a wake while we look is not missed
            free = self._slots - len(self._running)
            marks, none_in_hand = self._marks, not self._running
            try:
                claimed, next_at = await self._claim(free)
            except StoreUnavailable as error:
                log.error("inbox: the store failed (%s); trying again in a second", error)
                await asyncio.sleep(1.0)
                continue
            for item in claimed:
                self._start(item)
            if not claimed and none_in_hand and self._marks == marks:
                self._look_after_finish = False  # none in hand: nothing waits behind one
            elif len(claimed) >= free:
                self._mark()  # more may be due than there were slots
            if len(claimed) < free:  # all that was due is taken
                await self._idle(next_at)
            elif free <= 0:  # full: a finishing entry wakes us
                await self._idle(None)

    async def _claim(self, free: int) -> tuple[list[InboxItem], datetime | None]:
        """Claim what is due, up to `free`; when that was all of it, also when the next
        entry is due, read in the same transaction: an idle look costs one."""
        if free <= 0:
            return [], None
        now = self._clock()
        async with self._store.transaction() as tx:
            claimed = await tx.inbox.claim(now, free, self._holder, now + self._leases.claim)
            next_at = await tx.inbox.next_due_at() if len(claimed) < free else None
        return claimed, next_at

    def _start(self, item: InboxItem) -> None:
        task = asyncio.create_task(self._handle(item))
        self._running[task] = item
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        if self._look_after_finish:  # a slot is free, and the lane's next entry may be due
            self._wake.set()

    async def _idle(self, next_at: datetime | None) -> None:
        wait = IDLE_WAIT
        if next_at is not None:
            wait = min(wait, (next_at - self._clock()).total_seconds())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.01, wait)):
                await self._wake.wait()

    async def _handle(self, item: InboxItem) -> None:
        with log_context(**_context(item)):  # each entry is handled in a task of its own
            await self._handle_in_context(item)

    async def _handle_in_context(self, item: InboxItem) -> None:
        handler = self._handlers.get(item.entry.kind)
        in_hand = _InHand(item.seq)
        _IN_HAND.set(in_hand)  # this task's own context: each entry has a task of its own
        try:
            if handler is None:
                raise LookupError(f"no handler for inbox entries of kind {item.entry.kind!r}")
            outcome = await handler(item)
        except StoreUnavailable as error:
            if _worth_a_line(item.attempts):  # tried again each second: said on 1, 10, 100…
                log.warning(
                    "inbox: %s: the store failed (attempt %d), trying again in %d s: %s",
                    _name(item),
                    item.attempts,
                    STORE_RETRY.total_seconds(),
                    error,
                    extra=_context(item),
                )
            await self._record(self._retry, item, error, "the store failed")
        except Exception as error:
            log.exception(
                "inbox: %s failed (attempt %d)", _name(item), item.attempts, extra=_context(item)
            )
            await self._record(self._retry, item, error, "its handler failed")
        else:
            if outcome != FINISHED and not in_hand.finished:
                await self._record(self._finish, item, None, "")

    async def _record(
        self,
        mark: Callable[[InboxItem, BaseException | None, str], Awaitable[None]],
        item: InboxItem,
        error: BaseException | None,
        why: str,
    ) -> None:
        try:
            await mark(item, error, why)
        except StoreError as failed:  # the claim's lease ends, and it is taken again
            log.warning("inbox: %s could not be recorded (%s)", _name(item), failed)

    async def _finish(self, item: InboxItem, _error: BaseException | None, _why: str) -> None:
        async with self._store.transaction(urgent=True) as tx:
            await tx.inbox.finish(item.seq, self._clock())

    async def _retry(self, item: InboxItem, error: BaseException | None, why: str) -> None:
        self._mark()  # the loop learns when it is due again
        now, text = self._clock(), f"{why}: {error!r}"
        async with self._store.transaction() as tx:
            if isinstance(error, StoreUnavailable):  # an outage, not the entry's fault
                await tx.inbox.retry(item.seq, now + STORE_RETRY, text)
            elif item.attempts >= self._max_attempts:
                log.error(
                    "inbox: %s set aside after %d attempts: %s",
                    _name(item),
                    item.attempts,
                    text,
                    extra=_context(item),
                )
                await tx.inbox.set_aside(item.seq, now, text)
            else:
                await tx.inbox.retry(item.seq, now + _backoff(item.attempts), text)

    async def _heartbeat(self) -> None:
        """Keep this holder's claims alive while it lives; a dead holder's lapse."""
        while True:
            await asyncio.sleep(self._leases.heartbeat)
            if not self._running:
                continue  # no claims to keep
            with contextlib.suppress(StoreUnavailable):
                async with self._store.transaction(urgent=True) as tx:
                    await tx.inbox.prolong_claims(self._holder, self._clock() + self._leases.claim)

    async def _abandon(self) -> None:
        """Stop handling (shutdown); entries cut short are due again at once, for the
        next process to take, rather than when their lease ends."""
        cut_short = dict(self._running)
        for task in cut_short:
            task.cancel()
        await asyncio.gather(*cut_short, return_exceptions=True)
        if not cut_short:
            return
        with contextlib.suppress(StoreError):
            async with self._store.transaction(urgent=True) as tx:
                for item in cut_short.values():
                    await tx.inbox.retry(item.seq, self._clock(), "paybot stopped first")


def _name(item: InboxItem) -> str:
    return f"{item.entry.kind} {item.entry.source_id} (seq {item.seq})"


def _context(item: InboxItem) -> dict[str, str]:
    """What a JSON log line names (bot/logs.py): a Cimplify entry is stored under its event
    id in its order's lane; a message, in its chat's (`telegram:1001`, `whatsapp:+233…`)."""
    lane = item.entry.lane
    if item.entry.source == "cimplify":
        order_id = lane.removeprefix("order:")  # "" for a type paybot ignores
        return {"event_id": item.entry.source_id} | ({"order_id": order_id} if order_id else {})
    channel, _, chat_id = lane.partition(":")
    return {"chat": lane} if channel in CHAT_LANES and chat_id else {}


def _worth_a_line(attempts: int) -> bool:
    """1, 10, 100…: an entry the store keeps failing is said at once, then ever less often."""
    return attempts >= 1 and str(attempts).strip("0") == "1"


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60, 2**attempts))


def _settle(future: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
