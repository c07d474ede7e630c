"""A loop's wake-up, for loops that look at a schedule in the store now and then."""

from __future__ import annotations

import asyncio
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
        self._work = False  # set() since the last clear(): look now
        self._by: datetime | None = None  # look_by(): the next look comes by then
        self.looks_at: datetime | None = None  # the idle loop's next look; None while busy

    def set(self, due: datetime | None = None) -> None:
        if due is None or self.looks_at is None or due < self.looks_at:
            self._work = True
            self._event.set()

    def look_by(self, at: datetime) -> None:
        """Look no later than `at`, and not before: an idle loop's next look is brought
        forward to it, a busy loop's next idle ends by it. Many such calls before one
        look cost that one look (a burst of sends, each ending a chat's pause later)."""
        if self._by is None or at < self._by:
            self._by = at
            self._event.set()  # an idle loop wakes to sleep less, not to look

    def clear(self) -> None:
        """Before looking, so that a wake while the loop looks is not missed."""
        self._work = False
        self._event.clear()

    async def idle(self, seconds: float) -> None:
        """Until set, or for `seconds`, or until a time given to `look_by`."""
        until = self._clock() + timedelta(seconds=seconds)
        try:
            while not self._work:
                if self._by is not None:
                    until = min(until, self._by)
                self.looks_at = until
                left = (until - self._clock()).total_seconds()
                if left <= 0:
                    return
                self._event.clear()  # set() also sets _work; look_by() only moves `until`
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that lands as the event fires, and shutdown would never end.
                try:
                    async with asyncio.timeout(left):
                        await self._event.wait()
                except TimeoutError:
                    return  # its time is up, whatever the clock says (set back, or stopped)
        finally:
            self.looks_at = None
            self._by = None  # the look that follows serves it: it reads the schedule anew
