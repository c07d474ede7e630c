"""The yardstick for polling cost: one task per link, asking every 2 s until it is final.

This is the poller people write first. It reads the sandbox's ledger directly,
exactly what `GET /v1/pay/orders/{token}/status` would answer, and counts each
read as one request. Skipping the loopback round trip (about a millisecond) is
immaterial next to its 2 s period and only flatters it; doing 500 real requests
a second here would load the very process that timestamps the bot's messages.
"""

from __future__ import annotations

import asyncio
import time

from sandbox.ledger import Ledger
from sandbox.records import LinkStatus

PERIOD = 2.0  # seconds between two asks about one link
FINAL = (LinkStatus.PAID, LinkStatus.EXPIRED)


class NaivePoller:
    def __init__(self, ledger: Ledger, period: float = PERIOD) -> None:
        self._ledger = ledger
        self._period = period
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.saw_paid: dict[str, float] = {}  # token -> monotonic time its poll first saw paid

    def track(self, token: str) -> None:
        """Start asking about `token` now, and every period after, until it is final."""
        task = asyncio.get_running_loop().create_task(self._watch(token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, token: str) -> None:
        link = self._ledger.link(token)
        while True:
            self.requests += 1
            status = self._ledger.status(link)
            if status is LinkStatus.PAID:
                self.saw_paid[token] = time.monotonic()
            if status in FINAL:
                return
            await asyncio.sleep(self._period)

    async def finish(self, timeout: float) -> None:  # noqa: ASYNC109 - reads better here
        """Let every watch end by itself within `timeout` seconds; cancel those that do not."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
