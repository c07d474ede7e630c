"""What the core counts for operators (CONTRACT §8), without knowing who reads it.

The parts that count (the inbox's intake, the outbox, the poller, payments) hold a
`Telemetry`; a `Meter` behind it keeps the numbers (handlers/metrics.py, with
prometheus-client). Without one, nothing is kept: tests and the demo need none.

The one figure that spans two parts is a confirmation's latency: from the receipt
of the success webhook (its inbox entry's `received_at`) to the merchant's message
reaching the channel (the outbox marking it sent). Payments names the messages it
queued for the merchants; the outbox reports each message it marks sent; the first
of those to go out ends the measure. Both halves live in this process's memory, so
a confirmation whose message is sent by another process, or after a restart, is
counted but its latency is not observed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Confirmations waiting for their message, at most: those whose message another
# process sent never end here, and must not grow memory for ever.
MAX_WAITING = 10_000


class Meter(Protocol):
    """Where the numbers go. Labels are CONTRACT §8's."""

    def webhook(self, source: str, outcome: str) -> None:
        """A webhook request: `stored`, `duplicate` or `refused`."""

    def message(self, channel: str, outcome: str) -> None:
        """An attempt to send a chat message: `sent`, `retried` or `dropped`."""

    def poll(self, outcome: str) -> None:
        """A status request to Cimplify: `changed`, `unchanged` or `error`."""

    def invoice(self, channel: str) -> None:
        """An invoice photo reached a chat."""

    def confirmation(self) -> None:
        """A link was confirmed."""

    def confirmation_seconds(self, seconds: float) -> None:
        """From a success webhook's receipt to the merchant's message reaching the channel."""


class NoMeter:
    """Keeps nothing."""

    def webhook(self, source: str, outcome: str) -> None:
        pass

    def message(self, channel: str, outcome: str) -> None:
        pass

    def poll(self, outcome: str) -> None:
        pass

    def invoice(self, channel: str) -> None:
        pass

    def confirmation(self) -> None:
        pass

    def confirmation_seconds(self, seconds: float) -> None:
        pass


@dataclass(frozen=True, eq=False)
class _Confirmation:
    received_at: datetime


class Telemetry:
    """The meter, and the confirmations whose merchant message has not gone out yet."""

    def __init__(self, meter: Meter | None = None) -> None:
        self.meter: Meter = meter or NoMeter()
        # Message id -> the confirmation it announces; a confirmation's messages share one.
        self._waiting: OrderedDict[int, _Confirmation] = OrderedDict()

    def confirmed(self, received_at: datetime, merchant_messages: Sequence[int]) -> None:
        """A link was confirmed by a webhook received at `received_at`; the ids of the
        messages that tell its merchants."""
        self.meter.confirmation()
        confirmation = _Confirmation(received_at)
        for message_id in merchant_messages:
            self._waiting[message_id] = confirmation
        while len(self._waiting) > MAX_WAITING:
            self._waiting.popitem(last=False)

    def sent(self, message_id: int, channel: str, at: datetime) -> None:
        """The outbox recorded a message as sent at `at`."""
        self.meter.message(channel, "sent")
        confirmation = self._waiting.pop(message_id, None)
        if confirmation is None:
            return
        # The first merchant message out ends the measure: forget its siblings.
        for sibling in [m for m, c in self._waiting.items() if c is confirmation]:
            del self._waiting[sibling]
        waited = (at - confirmation.received_at).total_seconds()
        self.meter.confirmation_seconds(max(0.0, waited))

    def dropped(self, message_id: int, channel: str) -> None:
        self.meter.message(channel, "dropped")
        self._waiting.pop(message_id, None)
