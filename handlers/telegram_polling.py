"""Telegram long polling that stores every update before Telegram hears it arrived.

getUpdates with a higher `offset` is what confirms earlier updates to Telegram,
and a confirmed update is never sent again. So a fetched batch is stored in the
inbox in one transaction first, and only then is the next batch asked for with
the higher offset; a crash before the commit leaves the batch unconfirmed, and
Telegram sends it again. The inbox handles stored updates (bot/inbox.py), in
order within each chat, whichever process claims them.

The first getUpdates after a start carries no offset: Telegram then sends what it
has not had confirmed, which may repeat the last stored batch (stored once, by
update id). Resuming from a stored offset instead would skip updates for good
when Telegram, after a week without updates, numbers new ones from a random,
possibly lower, id (Bot API, Update.update_id).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from telegram import Bot, Update
from telegram.error import InvalidToken, RetryAfter, TelegramError, TimedOut

from bot.errors import StoreError
from bot.models import InboxEntry

log = logging.getLogger(__name__)

T = TypeVar("T")
StoreBatch = Callable[[Sequence[InboxEntry]], Awaitable[list[bool]]]

TELEGRAM_UPDATE = "telegram.update"  # the inbox kind of a Telegram update
POLL_TIMEOUT = timedelta(seconds=10)  # how long one getUpdates waits for an update
# What paybot's handlers read: commands, edited commands, button presses.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
MAX_BACKOFF = 30.0  # seconds, as PTB's own polling loop
MIN_HELD = 2.0  # seconds of the polling role left, at least, to start a getUpdates
NOT_OURS_WAIT = 1.0  # seconds between looks while another process polls


def update_entry(update: Update) -> InboxEntry:
    """How an update is stored in the inbox: under its id, in its chat's lane."""
    chat = update.effective_chat
    lane = f"telegram:{chat.id}" if chat is not None else f"telegram-update:{update.update_id}"
    return InboxEntry("telegram", str(update.update_id), TELEGRAM_UPDATE, lane, update.to_json())


class UpdatePolling:
    """getUpdates into the inbox; the next getUpdates only once the last batch is stored."""

    def __init__(self, bot: Bot, store_batch: StoreBatch) -> None:
        self._bot = bot
        self._store_batch = store_batch
        self._offset: int | None = None
        self._stopping = asyncio.Event()
        self._fetching: asyncio.Task[None] | None = None
        # How long getUpdates is surely this process's to call (bot/roles.py); alone,
        # for ever. Telegram answers a second caller 409, so no call outlives it.
        self.seconds_held: Callable[[], float] = lambda: math.inf

    async def start(self) -> None:
        """Stop any webhook, then poll in the background."""
        await self._bot.delete_webhook()  # getUpdates is refused while a webhook is set
        self._stopping.clear()
        self._fetching = asyncio.create_task(self._fetch_loop(), name="telegram polling")

    async def stop_fetching(self) -> None:
        """Ask Telegram for nothing more; a batch being stored is stored first."""
        self._stopping.set()
        if self._fetching is not None:
            await self._fetching
            self._fetching = None

    async def _fetch_loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            held = self.seconds_held()
            if held < MIN_HELD:  # another process polls: look again in a moment
                await self._unless_stopped(asyncio.sleep(NOT_OURS_WAIT))
                continue
            try:
                wait = timedelta(seconds=int(min(POLL_TIMEOUT.total_seconds(), held - 1)))
                updates = await self._unless_stopped(self._get_updates(wait))
                if updates:
                    await self._store(updates)
                backoff = 0.0
            except RetryAfter as error:
                backoff = _seconds(error.retry_after) + 0.5
            except TimedOut:
                backoff = 0.0  # a long poll that outlived its read timeout: ask again
            except InvalidToken:
                log.critical("telegram: the bot token was refused; polling stops")
                return
            except (TelegramError, StoreError) as error:
                backoff = min(MAX_BACKOFF, max(1.0, 1.5 * backoff))
                log.warning("telegram: polling failed (%s); again in %.1f s", error, backoff)
            if backoff:
                await self._unless_stopped(asyncio.sleep(backoff))

    async def _get_updates(self, wait: timedelta) -> tuple[Update, ...]:
        return await self._bot.get_updates(
            offset=self._offset, timeout=wait, allowed_updates=ALLOWED_UPDATES
        )

    async def _store(self, updates: Sequence[Update]) -> None:
        """Store the batch; only then may the next getUpdates confirm it (the offset)."""
        await self._store_batch([update_entry(update) for update in updates])
        self._offset = max(update.update_id for update in updates) + 1

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


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
