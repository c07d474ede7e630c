"""A loop's wake-up, for loops that look at a schedule in the store now and then."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta


class Wake:
    """Set by whoever stores work for the loop; the loop idles on it between looks.

    A wake that says when its work is due is left for the loop's next look when that
    comes first anyway: a new link's first poll is seconds away, its first reminder an
    hour, and looking at once would find nothing due and cost a transaction.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._event = asyncio.Event()
        self.looks_at: datetime | None = None  # the idle loop's next look; None while busy

    def set(self, due: datetime | None = None) -> None:
        if due is None or self.looks_at is None or due < self.looks_at:
            self._event.set()

    def clear(self) -> None:
        """Before looking, so that a wake while the loop looks is not missed."""
        self._event.clear()

    async def idle(self, seconds: float) -> None:
        """Until set, or for `seconds`."""
        self.looks_at = self._clock() + timedelta(seconds=seconds)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that lands as the event fires, and shutdown would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._event.wait()
        finally:
            self.looks_at = None
