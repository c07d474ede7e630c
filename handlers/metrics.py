"""CONTRACT §8's metrics with prometheus-client, served at GET /metrics.

Each paybot keeps its own `CollectorRegistry`, never the library's global one:
two paybots in one process (tests do that) keep separate counts, and nothing
lingers from one to the next.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "PrometheusMeter"]

# Twilio's delivery receipts are stored under a source of their own (handlers/whatsapp.py);
# to an operator they are Twilio's webhooks like the inbound messages.
_WEBHOOK_SOURCES = {"twilio-status": "twilio"}
# CONTRACT §8's label values. Each series is there from the first scrape, at 0: a series
# that appears only at its first count is absent to `rate()` and to an alert on it
# (`paybot_webhooks_total{outcome="refused"}`) until then.
SOURCES = ("cimplify", "twilio", "telegram")
WEBHOOK_OUTCOMES = ("stored", "duplicate", "refused")
MESSAGE_OUTCOMES = ("sent", "retried", "dropped")
POLL_OUTCOMES = ("changed", "unchanged", "error")
# A confirmation usually reaches the chat within a second; a queue behind a flood or a
# chat's 429 can hold it for minutes.
_CONFIRMATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class PrometheusMeter:
    """`bot.telemetry.Meter` on one registry of its own."""

    def __init__(self, channels: Iterable[str] = ()) -> None:
        """`channels`: the chat channels this process sends on, whose series start at 0."""
        self.registry = on = CollectorRegistry(auto_describe=True)
        self._webhooks = Counter(
            "paybot_webhooks", "Webhook requests", ["source", "outcome"], registry=on
        )
        self._messages = Counter(
            "paybot_messages", "Chat message send attempts", ["channel", "outcome"], registry=on
        )
        self._oldest_due = Gauge(
            "paybot_outbox_oldest_due_seconds",
            "How long the oldest due chat message has waited past its due time",
            registry=on,
        )
        # Not CONTRACT §8's: an input stored (its 2xx given) and not yet handled, such
        # as a Cimplify event whose confirmation waits behind a handler that keeps failing.
        self._inbox_waiting = Gauge(
            "paybot_inbox_oldest_waiting_seconds",
            "How long the oldest stored input not yet handled has waited since it arrived",
            registry=on,
        )
        self._polls = Counter(
            "paybot_polls", "Status requests to Cimplify", ["outcome"], registry=on
        )
        self._invoices = Counter(
            "paybot_invoices", "Invoices sent to chats", ["channel"], registry=on
        )
        self._confirmations = Counter("paybot_confirmations", "Links confirmed", registry=on)
        self._confirmation_seconds = Histogram(
            "paybot_confirmation_seconds",
            "From the success webhook's receipt to the merchant's message reaching the channel",
            buckets=_CONFIRMATION_BUCKETS,
            registry=on,
        )
        for source in SOURCES:
            for outcome in WEBHOOK_OUTCOMES:
                self._webhooks.labels(source, outcome)
        for outcome in POLL_OUTCOMES:
            self._polls.labels(outcome)
        for channel in channels:
            self._invoices.labels(channel)
            for outcome in MESSAGE_OUTCOMES:
                self._messages.labels(channel, outcome)

    def webhook(self, source: str, outcome: str) -> None:
        self._webhooks.labels(_WEBHOOK_SOURCES.get(source, source), outcome).inc()

    def message(self, channel: str, outcome: str) -> None:
        self._messages.labels(channel, outcome).inc()

    def poll(self, outcome: str) -> None:
        self._polls.labels(outcome).inc()

    def invoice(self, channel: str) -> None:
        self._invoices.labels(channel).inc()

    def confirmation(self) -> None:
        self._confirmations.inc()

    def confirmation_seconds(self, seconds: float) -> None:
        self._confirmation_seconds.observe(seconds)

    def outbox_oldest_due(self, seconds: float) -> None:
        self._oldest_due.set(seconds)

    def inbox_oldest_waiting(self, seconds: float) -> None:
        self._inbox_waiting.set(seconds)

    def exposition(self) -> bytes:
        """Every metric, in Prometheus' text format."""
        return generate_latest(self.registry)
