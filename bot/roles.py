"""Work that one process at a time does, whichever processes run: roles under a lease.

- `sender`: sends the outbox under PAYBOT_SEND_RATE, so the overall rate holds for
  all processes together (the per-chat pace is a pause kept in the store already);
- `poller`: asks Cimplify about links as they fall due, under PAYBOT_POLL_RATE (whose
  turns are kept in the store, since any process's /status spends them too);
- `telegram-polling`: calls getUpdates, since Telegram answers a second caller 409.

One elected process a role, rather than a budget shared through the store, because
a token bucket in one process is exact and costs nothing a message, while a budget
in the store costs a write a message and still needs a clock all agree on; a single
sender's capacity is far above Telegram's 30 messages a second. Each process holds
what it can and renews it every third of the lease; one that dies loses its roles
when the lease ends, and another takes them. Correctness never rests on a role:
claims in the store keep every message and poll single; a role only keeps the rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from bot.errors import StoreError
from bot.ports import Store

log = logging.getLogger(__name__)

SENDER, POLLER, TELEGRAM_POLLING = "sender", "poller", "telegram-polling"
# A role counts as held only while this much of its lease is left: a holder that can
# no longer renew stops before another may start.
MARGIN = timedelta(seconds=1)


class RoleKeeper:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        holder: str,
        roles: Iterable[str],
        lease: timedelta,
        on_gained: Callable[[str], None],
    ) -> None:
        self._store, self._clock, self._holder = store, clock, holder
        self._roles = tuple(roles)
        self._lease = lease
        self._on_gained = on_gained
        self._until: dict[str, datetime] = {}
        self._stopping = False

    def holds(self, role: str) -> bool:
        return self.seconds_left(role) > 0

    def seconds_left(self, role: str) -> float:
        """How long the role is surely still this process's; 0 when it is not."""
        until = self._until.get(role)
        if until is None:
            return 0.0
        return max(0.0, (until - MARGIN - self._clock()).total_seconds())

    async def run(self) -> None:
        while not self._stopping:
            await self.renew()
            await asyncio.sleep(self._lease.total_seconds() / 3)

    async def renew(self) -> None:
        """Claim or renew every role this process may hold."""
        for role in self._roles:
            now = self._clock()
            try:
                async with self._store.transaction(urgent=True) as tx:
                    held = await tx.roles.claim(role, self._holder, now, now + self._lease)
            except StoreError as error:  # the lease runs out unless a later renewal works
                log.warning("roles: could not renew %s (%s)", role, error)
                continue
            self._note(role, now + self._lease if held else None)

    def _note(self, role: str, until: datetime | None) -> None:
        gained = until is not None and not self.holds(role)
        if until is None:
            if self._until.pop(role, None) is not None:
                log.warning("roles: %s is another process's now", role)
            return
        self._until[role] = until
        if gained:
            log.info("roles: this process is the %s now", role)
            self._on_gained(role)

    async def release(self) -> None:
        """On stop: give the roles up, so that another process takes them at once."""
        self._stopping = True
        held, self._until = list(self._until), {}
        with contextlib.suppress(StoreError):
            async with self._store.transaction(urgent=True) as tx:
                for role in held:
                    await tx.roles.release(role, self._holder)
