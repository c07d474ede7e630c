"""How often one sender may be answered, or may make paybot ask Cimplify.

These guard against a chat that floods paybot (a stranger writing again and
again, a merchant's script gone wrong); they decide nothing about money. The
uses are counted in the store, so that several processes grant one budget
between them, not one each.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.ports import Store, Tx


class SharedLimit:
    """At most `count` uses by one key at once, then one each `period / count`: about
    `count` a `period`, a burst of `count` allowed (GCRA, kept in the store)."""

    def __init__(
        self,
        store: Store,
        name: str,
        count: int,
        period: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._store, self._name, self._count, self._clock = store, name, count, clock
        self._every = period / count

    async def allow(self, key: object) -> bool:
        """Count a use now and say whether it is within the limit (a refused one is not
        counted). Raises StoreError when the store cannot say."""
        async with self._store.transaction() as tx:
            return await self.allow_within(tx, key)

    async def allow_within(self, tx: Tx, key: object) -> bool:
        """`allow`, counted in `tx`: the use is counted only if `tx` commits."""
        return await tx.limits.take(f"{self._name}:{key}", self._clock(), self._every, self._count)
