"""Whose turn it is to use the store's one connection: first come, first served,
except that urgent work goes ahead of everything still waiting.

Urgent is for records that close a window of doubt, such as "Telegram took this
message": while that record waits its turn behind other work, a crash would
send the message again. Urgent work is small and rare (a few records a second),
so it cannot starve the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class WriterTurns:
    def __init__(self) -> None:
        self._busy = False
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    @contextlib.asynccontextmanager
    async def turn(self, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._busy and not any(self._waiting.values()):
            self._busy = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[urgent].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the turn came as the wait was cancelled: pass it on
            else:  # still queued, unless a release already passed over it
                with contextlib.suppress(ValueError):
                    self._waiting[urgent].remove(waiter)
            raise

    def _release(self) -> None:
        """Hand the turn to the first urgent waiter, else the first waiter, else free it."""
        for urgent in (True, False):
            queue = self._waiting[urgent]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._busy = False
