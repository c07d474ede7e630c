"""Fault injection for the sandbox's API, and the record of what reached it.

`ApiGate` is plain ASGI middleware in front of every `/v1` route: it notes each
request, then lets a planned fault answer instead (or answer late).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Fault:
    path_contains: str
    status: int
    remaining: int
    retry_after: int | None
    delay: float

    @property
    def answers_normally(self) -> bool:
        """A 2xx fault lets the real route answer, only `delay` seconds late."""
        return 200 <= self.status < 300


class FaultPlan:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        path_contains: str,
        *,
        status: int,
        count: int,
        retry_after: int | None,
        delay: float,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        self._faults.append(Fault(path_contains, status, count, retry_after, delay))

    def take(self, path: str) -> Fault | None:
        """The first planned fault for `path`, counted as used."""
        for fault in self._faults:
            if fault.path_contains in path:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None


class ApiGate:
    def __init__(
        self,
        app: ASGIApp,
        plan: FaultPlan,
        requests: list[tuple[str, str]],
        arrived_at: list[float],
    ) -> None:
        self._app = app
        self._plan = plan
        self._requests = requests
        self._arrived_at = arrived_at  # when each request came, by time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self._app(scope, receive, send)
            return
        self._requests.append((scope["method"], scope["path"]))
        self._arrived_at.append(time.monotonic())
        fault = self._plan.take(scope["path"])
        if fault is None:
            await self._app(scope, receive, send)
        elif fault.answers_normally:
            # The work is done at once and only the answer is late: the case where a
            # client gives up, retries with the same Idempotency-Key, and must get
            # the same link.
            await self._app(scope, receive, _late(send, fault.delay))
        else:
            await asyncio.sleep(fault.delay)
            await _fault_response(fault)(scope, receive, send)


def _late(send: Send, delay: float) -> Send:
    async def late_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(delay)
        await send(message)

    return late_send


def _fault_response(fault: Fault) -> JSONResponse:
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    code = "rate_limited" if fault.status == 429 else "injected_fault"
    body = {"error": {"code": code, "message": f"sandbox fault: HTTP {fault.status}"}}
    return JSONResponse(body, status_code=fault.status, headers=headers)
