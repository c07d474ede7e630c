"""Signed webhook deliveries, sent and retried the way a real sender does (CONTRACT §2)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt; `status_code` is None when no answer came (or no URL was set)."""

    event_id: str
    type: str
    attempt: int
    status_code: int | None


def event_body(event_id: str, event_type: str, created_at: str, data: dict[str, Any]) -> bytes:
    """The JSON bytes of one event, exactly as they are signed and sent."""
    event = {"id": event_id, "type": event_type, "created_at": created_at, "data": data}
    return json.dumps(event, separators=(",", ":")).encode()


class WebhookSender:
    def __init__(
        self,
        secret: str,
        *,
        url: str | None,
        retry_delays: Sequence[float],
        http: httpx.AsyncClient | None,
    ) -> None:
        self.url = url
        self.deliveries: list[Delivery] = []
        self._signer = Webhook(secret)
        self._retry_delays = tuple(retry_delays)
        self._http = http
        self._owns_http = http is None
        self._delivered: set[str] = set()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    def sign(
        self, body: bytes, *, event_id: str, timestamp: datetime | None = None
    ) -> dict[str, str]:
        """The Standard Webhooks headers for `body`.

        The timestamp is the wall clock at sending, not the sandbox's injectable
        clock: the receiver checks it against its own clock, with 5 minutes of tolerance.
        """
        moment = (timestamp or datetime.now(UTC)).astimezone(UTC)
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": self._signer.sign(event_id, moment, body.decode()),
        }

    def enqueue(self, event_id: str, event_type: str, body: bytes) -> None:
        """Deliver in the background; needs a running event loop."""
        task = asyncio.get_running_loop().create_task(self._deliver(event_id, event_type, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event_id: str, event_type: str, body: bytes) -> None:
        waits: tuple[float | None, ...] = (*self._retry_delays, None)
        for attempt, wait in enumerate(waits, start=1):
            status_code = await self._attempt(event_id, body)
            await self._record(Delivery(event_id, event_type, attempt, status_code))
            if status_code is not None and 200 <= status_code < 300:
                return
            if wait is None:
                logger.warning("webhook %s given up after %d attempts", event_id, attempt)
                return
            await asyncio.sleep(wait)

    async def _attempt(self, event_id: str, body: bytes) -> int | None:
        if self.url is None:
            logger.info("webhook %s waits: no webhook url set yet", event_id)
            return None
        # Each attempt is signed afresh, so a late retry is not stale.
        headers = {"content-type": "application/json", **self.sign(body, event_id=event_id)}
        try:
            response = await self._client().post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            logger.info("webhook %s not delivered: %s", event_id, type(exc).__name__)
            return None
        return response.status_code

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        return self._http

    async def _record(self, delivery: Delivery) -> None:
        async with self._changed:
            self.deliveries.append(delivery)
            code = delivery.status_code
            if code is not None and 200 <= code < 300:
                self._delivered.add(delivery.event_id)
            self._changed.notify_all()

    async def wait_delivered(self, event_id: str, timeout: float) -> None:  # noqa: ASYNC109
        """Return once `event_id` was answered 2xx; TimeoutError after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: event_id in self._delivered)
        except TimeoutError:
            attempts = [d.status_code for d in self.deliveries if d.event_id == event_id]
            raise TimeoutError(
                f"event {event_id} not delivered within {timeout}s (answers so far: {attempts})"
            ) from None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
