"""Rate limits as plain asyncio: a token bucket overall, a minimum gap per key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable


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


class KeyedGap:
    """At least `gap` seconds between two uses of the same key (one chat, say)."""

    def __init__(self, gap: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._gap = gap
        self._clock = clock
        self._next: dict[Hashable, float] = {}

    def busy(self) -> set[Hashable]:
        """Keys that must still wait; forgets the ones that need not."""
        now = self._clock()
        self._next = {key: at for key, at in self._next.items() if at > now}
        return set(self._next)

    def use(self, key: Hashable, extra: float = 0.0) -> None:
        """Record a use now; the key is busy for `gap` (plus `extra`) seconds."""
        self._next[key] = self._clock() + max(self._gap, extra)

    def soonest(self) -> float | None:
        """Seconds until the first busy key frees up, or None when none is busy."""
        if not self._next:
            return None
        return max(0.0, min(self._next.values()) - self._clock())
