"""Telegram long polling that stores every update before Telegram hears it arrived.

getUpdates with a higher `offset` is what confirms earlier updates to Telegram,
and a confirmed update is never sent again. So a fetched batch is stored in one
transaction first, and only then is the next batch asked for with the higher
offset; a crash before the commit leaves the batch unconfirmed, and Telegram
sends it again. Stored updates are handled in order within each chat, chats side
by side, and marked handled after; those a crash left unhandled are handled at
the next start. A crash after handling and before the marking handles one twice.

The first getUpdates after a start carries no offset: Telegram then sends what it
has not had confirmed, which may repeat the last stored batch (stored once, by
update id). Resuming from a stored offset instead would skip updates for good
when Telegram, after a week without updates, numbers new ones from a random,
possibly lower, id (Bot API, Update.update_id).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from telegram import Bot, Update
from telegram.error import InvalidToken, RetryAfter, TimedOut

from storage import Store

log = logging.getLogger(__name__)

T = TypeVar("T")
ChatKey = tuple[str, int]
Processor = Callable[[Update], Awaitable[None]]

POLL_TIMEOUT = timedelta(seconds=10)  # how long one getUpdates waits for an update
# What paybot's handlers read: commands, edited commands, button presses.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
PENDING_PAGE = 500
MAX_BACKOFF = 30.0  # seconds, as PTB's own polling loop
KEEP_HANDLED = timedelta(days=7)  # long past Telegram's 24 h of redelivery


class UpdatePolling:
    """getUpdates into the store, and stored updates into `process`, one chat at a time."""

    def __init__(
        self,
        bot: Bot,
        process: Processor,
        store: Store,
        clock: Callable[[], datetime],
        concurrency: int,
    ) -> None:
        self._bot, self._process, self._store, self._clock = bot, process, store, clock
        self._limit = asyncio.Semaphore(concurrency)
        self._offset: int | None = None
        self._stopping = asyncio.Event()
        self._fetching: asyncio.Task[None] | None = None
        self._queues: dict[ChatKey, deque[tuple[int, Update | None]]] = {}
        self._workers: dict[ChatKey, asyncio.Task[None]] = {}
        self._to_mark: list[int] = []
        self._marking = asyncio.Lock()

    async def start(self) -> None:
        """Stop any webhook, queue what a crash left unhandled, then poll in the background."""
        await self._bot.delete_webhook()  # getUpdates is refused while a webhook is set
        async with self._store.transaction() as tx:
            await tx.forget_telegram_updates(self._clock() - KEEP_HANDLED)
        await self._queue_unhandled()
        self._stopping.clear()
        self._fetching = asyncio.create_task(self._fetch_loop(), name="telegram polling")

    async def stop_fetching(self) -> None:
        """Ask Telegram for nothing more; a batch being stored is stored first."""
        self._stopping.set()
        if self._fetching is not None:
            await self._fetching
            self._fetching = None

    async def finish_handling(self) -> None:
        """Wait for the updates in hand; the caller bounds the wait (and then `abandon`s)."""
        while self._workers:
            await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def abandon(self) -> None:
        """Cancel handling: what is left stays stored, unhandled, for the next start."""
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _queue_unhandled(self) -> None:
        after = 0
        while True:
            async with self._store.transaction() as tx:
                page = await tx.unhandled_telegram_updates(PENDING_PAGE, after)
            for update_id, body in page:
                self._queue(update_id, self._parsed(update_id, body))
            if len(page) < PENDING_PAGE:
                return
            after = page[-1][0]

    async def _fetch_loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                updates = await self._unless_stopped(self._get_updates())
                if updates is not None:
                    await self._store_and_queue(updates)
                backoff = 0.0
            except RetryAfter as error:
                backoff = _seconds(error.retry_after) + 0.5
            except TimedOut:
                backoff = 0.0  # a long poll that outlived its read timeout: ask again
            except InvalidToken:
                log.critical("telegram: the bot token was refused; polling stops")
                return
            except Exception as error:  # TelegramError, or a store that failed
                backoff = min(MAX_BACKOFF, max(1.0, 1.5 * backoff))
                log.warning("telegram: polling failed (%s); again in %.1f s", error, backoff)
            if backoff:
                await self._unless_stopped(asyncio.sleep(backoff))

    async def _get_updates(self) -> tuple[Update, ...]:
        return await self._bot.get_updates(
            offset=self._offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES
        )

    async def _store_and_queue(self, updates: Sequence[Update]) -> None:
        """Store the batch; only then may the next getUpdates confirm it (the offset)."""
        if not updates:
            return
        bodies = {update.update_id: update.to_json() for update in updates}
        async with self._store.transaction() as tx:
            fresh = await tx.record_telegram_updates(list(bodies.items()), self._clock())
        self._offset = max(bodies) + 1
        by_id = {update.update_id: update for update in updates}
        for update_id in fresh:
            self._queue(update_id, by_id[update_id])

    async def _unless_stopped(self, work: Awaitable[T]) -> T | None:
        """`work`'s result, or None when stopping came first (the work is then cancelled)."""
        task = asyncio.ensure_future(work)
        stopped = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (task, stopped):
                waiting.cancel()
            await asyncio.gather(stopped, return_exceptions=True)
        return task.result() if task.done() and not task.cancelled() else None

    def _parsed(self, update_id: int, body: str) -> Update | None:
        try:
            return Update.de_json(json.loads(body), self._bot)
        except Exception:  # stored by us, but a PTB upgrade could read it differently
            log.exception("telegram: stored update %s could not be read; skipped", update_id)
            return None

    def _queue(self, update_id: int, update: Update | None) -> None:
        """Handle after the chat's earlier updates; other chats do not wait for it."""
        chat = update.effective_chat if update is not None else None
        key: ChatKey = ("chat", chat.id) if chat is not None else ("update", update_id)
        self._queues.setdefault(key, deque()).append((update_id, update))
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._handle_chat(key))

    async def _handle_chat(self, key: ChatKey) -> None:
        queue = self._queues[key]
        try:
            while queue:
                update_id, update = queue[0]
                await self._handle(update_id, update)
                queue.popleft()
        finally:
            del self._queues[key], self._workers[key]

    async def _handle(self, update_id: int, update: Update | None) -> None:
        """Process it, then mark it handled; unmarked, it is handled again at the next start."""
        async with self._limit:
            if update is not None:
                try:
                    await self._process(update)
                except Exception:  # PTB keeps handlers' errors; this is PTB's own failing
                    log.exception("telegram: update %s failed", update_id)
            await self._mark_handled(update_id)

    async def _mark_handled(self, update_id: int) -> None:
        """One commit marks every update handled while the previous commit ran.

        Each commit is an fsync on the store's one writer; a commit per update would
        queue the outbox's mark-sent behind them, widening its repeat window.
        """
        self._to_mark.append(update_id)
        async with self._marking:
            marking, self._to_mark = self._to_mark, []
            if not marking:
                return  # an earlier holder of the lock committed this one
            try:
                # Urgent: until this commits, a crash would handle them again.
                async with self._store.transaction(urgent=True) as tx:
                    for handled in marking:
                        await tx.mark_telegram_update_handled(handled, self._clock())
            except Exception:
                log.exception("telegram: updates %s could not be marked handled", marking)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
