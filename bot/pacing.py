"""A rate limit as plain asyncio: a token bucket. (The per-chat gap is a pause kept in
the store, so that it holds whichever process sends: bot/outbox.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class TokenBucket:
    """At most `rate` acquisitions a second on average, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._burst = max(burst, 1.0)
        self._tokens = self._burst
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        # The lock makes waiters take turns, so a burst of callers is spread out
        # rather than all waking at once.
        async with self._lock:
            wait = self._take()
            if wait > 0:
                await asyncio.sleep(wait)

    def _take(self) -> float:
        """Take a token, returning how long the caller must wait for it."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


WINDOW = 1.0  # seconds: the strict window at the other end


class Slot:
    """One request's place in a `PacedWindow`, from its start until a second after
    its answer came back (or, released at once, a second after its start)."""

    def __init__(self, window: PacedWindow) -> None:
        self._window = window
        self.ended: float | None = None

    def release(self) -> None:
        """The answer is in: the request reached the other end by now. Idempotent."""
        if self.ended is None:
            self.ended = self._window.now()
            self._window.freed.set()


class PacedWindow:
    """A token bucket, and never more than `rate` (rounded down) in any one second
    at the other end, however unevenly the requests travel.

    The bucket keeps the pace smooth. The window is what makes the bound hold: the
    other end sees a request at some moment between its start and its answer, so a
    request counts from its start until a second after its answer (`hold`). Then no
    second at the other end can hold more than `rate`: of the requests it sees in any
    second, the last to start found every other one still counted. A request that
    lingers (a slow network, a busy machine) holds its place longer; the rate then
    falls, by design, rather than the limit being crossed.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._bucket = TokenBucket(rate, clock=clock)
        self._most = max(1, int(rate))
        self._clock = clock
        self._held: list[Slot] = []
        self._lock = asyncio.Lock()
        self.freed = asyncio.Event()  # set as a slot is released

    def now(self) -> float:
        return self._clock()

    def busy_for(self) -> float:
        """Seconds until no request taken so far counts in the window any more (one
        still awaiting its answer counts a whole second from now)."""
        now = self._clock()
        ends = [WINDOW if s.ended is None else s.ended + WINDOW - now for s in self._held]
        return max([0.0, *ends])

    async def hold(self) -> Slot:
        """A place for a request, held until the `Slot` is released (then one second
        more). Every slot must be released, or it holds its place for ever."""
        async with self._lock:
            await self._bucket.acquire()
            await self._room()
            slot = Slot(self)
            self._held.append(slot)
            return slot

    async def _room(self) -> None:
        while True:
            now = self._clock()
            self._held = [s for s in self._held if s.ended is None or s.ended + WINDOW > now]
            if len(self._held) < self._most:
                return
            self.freed.clear()
            ends = [s.ended for s in self._held if s.ended is not None]
            # The oldest answered one leaves the window then; a release may come sooner.
            wait = min(ends) + WINDOW - now if ends else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.freed.wait()
