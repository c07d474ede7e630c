"""A rate limit as plain asyncio: a token bucket. (The per-chat gap is a pause kept in
the store, so that it holds whichever process sends: bot/outbox.py.)"""

from __future__ import annotations

import asyncio
import time
from collections import deque
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


class PacedWindow:
    """A token bucket, and never more than `rate` (rounded down) in any one second.

    The bucket keeps the pace smooth; the window takes back its one-token burst, so a
    strict one-second window at the other end (Telegram's 30 messages a second) sees
    at most `rate` even when the requests leave a little unevenly.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._bucket = TokenBucket(rate, clock=clock)
        self._most = max(1, int(rate))
        self._clock = clock
        self._recent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            await self._bucket.acquire()
            if len(self._recent) >= self._most:
                wait = self._recent[0] + 1.0 - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._recent.popleft()
            self._recent.append(self._clock())
