"""How often one sender may be answered, or may make paybot ask Cimplify.

These guard against a chat that floods paybot (a stranger writing again and
again, a merchant's script gone wrong); they decide nothing about money. They
are kept in this process: with several processes, each grants its own share.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta

KEYS_REMEMBERED = 10_000  # past this, the key not seen for longest is forgotten


class PerKeyLimit:
    """At most `count` uses by one key within any `period`."""

    def __init__(self, count: int, period: timedelta, clock: Callable[[], datetime]) -> None:
        self._count, self._period, self._clock = count, period, clock
        self._uses: OrderedDict[Hashable, deque[datetime]] = OrderedDict()

    def allow(self, key: Hashable) -> bool:
        """Count a use now and say whether it is within the limit (a refused one is not counted)."""
        now = self._clock()
        uses = self._uses.pop(key, None) or deque()
        while uses and now - uses[0] >= self._period:
            uses.popleft()
        allowed = len(uses) < self._count
        if allowed:
            uses.append(now)
        self._uses[key] = uses  # now the most recently seen
        if len(self._uses) > KEYS_REMEMBERED:
            self._uses.popitem(last=False)
        return allowed
