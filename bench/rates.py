"""Pay API status requests per second, as the sandbox saw them.

The sandbox notes each request it serves but not when; a sampler here counts the
new ones once a second. Its ticks wander by a few milliseconds, so one window can
hold a request that belongs to the next (a 6 then a 4 at 5/s): `allowed` grants
that one request, and the token bucket's burst of one, and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

BURST = 1  # paybot's poll budget is a token bucket that lets one request run ahead
TICK_SLOP = 1  # the sampler's tick can shift one request into the neighbouring window


def allowed(rate: float, seconds: int) -> float:
    """The most status requests a budget of `rate`/s may show in `seconds` whole windows."""
    return rate * seconds + BURST + TICK_SLOP


def is_status_request(method: str, path: str) -> bool:
    return method == "GET" and path.startswith("/v1/pay/orders/") and path.endswith("/status")


@dataclass
class StatusRate:
    """Status requests counted per 1 s window, from `requests`, the sandbox's record."""

    requests: list[tuple[str, str]]
    windows: list[int] = field(default_factory=list)
    _seen: int = 0

    def _new_status_requests(self) -> int:
        fresh = self.requests[self._seen :]
        self._seen += len(fresh)
        return sum(1 for method, path in fresh if is_status_request(method, path))

    async def _sample(self) -> None:
        self._new_status_requests()  # what came before is not ours to count
        tick = time.monotonic()
        while True:
            tick += 1.0
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            self.windows.append(self._new_status_requests())

    def most_in(self, seconds: int) -> int:
        """The most requests in any run of `seconds` whole windows."""
        runs = [self.windows[i : i + seconds] for i in range(len(self.windows) - seconds + 1)]
        return max((sum(run) for run in runs), default=0)

    def max_per(self, seconds: int) -> float:
        """The most requests a second over any run of `seconds` whole windows."""
        return self.most_in(seconds) / seconds

    def mean(self) -> float:
        return sum(self.windows) / len(self.windows) if self.windows else 0.0


@contextlib.asynccontextmanager
async def sampling(requests: list[tuple[str, str]]) -> AsyncIterator[StatusRate]:
    """Count status requests per second for as long as the block runs."""
    rate = StatusRate(requests)
    task = asyncio.get_running_loop().create_task(rate._sample())
    try:
        yield rate
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
