"""A clock for the bot that a test moves on, instead of waiting out a backoff or a limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.models import utcnow


class MovableClock:
    """Now, plus however far the test has moved it on (`ahead`)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead
