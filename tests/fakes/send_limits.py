"""Telegram's flood limits on new messages, for the fake Bot API.

Telegram publishes about 30 messages a second overall and one a second per chat,
and answers more with `429` and `parameters.retry_after` (whole seconds). Here
both are strict sliding windows: no `window` seconds ever hold more than the
limit, so a sender pacing at exactly the limit is refused whenever its sends
bunch up. Only new messages count; edits do not.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# Bot API methods that post a new message to a chat (lowercase: names are case-insensitive).
NEW_MESSAGE_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendvideo",
        "sendanimation",
        "sendaudio",
        "sendvoice",
        "sendvideonote",
        "sendsticker",
        "sendmediagroup",
        "sendlocation",
        "sendvenue",
        "sendcontact",
        "sendpoll",
        "senddice",
        "copymessage",
        "forwardmessage",
    }
)


@dataclass(frozen=True)
class SendLimits:
    """At most `overall` new messages, and `per_chat` to any one chat, in any `window` s."""

    overall: int = 30
    per_chat: int = 1
    window: float = 1.0


class SendLimiter:
    """Admits or refuses each new message; admitted ones take a place in the windows."""

    def __init__(self, limits: SendLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._sent: deque[float] = deque()
        self._per_chat: dict[object, deque[float]] = {}

    def admit(self, chat: object) -> int | None:
        """None if the message may go now (and it is counted); else retry_after seconds."""
        now = self._clock()
        window = self.limits.window
        overall = _prune(self._sent, now - window)
        mine = _prune(self._per_chat.setdefault(chat, deque()), now - window)
        waits = []
        if len(overall) >= self.limits.overall:
            waits.append(overall[len(overall) - self.limits.overall] + window - now)
        if len(mine) >= self.limits.per_chat:
            waits.append(mine[len(mine) - self.limits.per_chat] + window - now)
        if waits:
            # Telegram answers whole seconds, at least one.
            return max(1, math.ceil(max(waits)))
        overall.append(now)
        mine.append(now)
        return None


def _prune(times: deque[float], before: float) -> deque[float]:
    """Drop the times at or before `before` (the oldest come first)."""
    while times and times[0] <= before:
        times.popleft()
    return times
