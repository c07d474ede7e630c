"""The fake Bot API, told which of several paybot processes makes each call.

The fake sees calls, not callers: every process of one bot sends the same token
from loopback. So instance `n` is given `{base_url}/i{n}` as its TELEGRAM_API_BASE,
and each call is recorded with the instance it came by. A call is also recorded
with when it ended: answered, or given up by its caller (a process killed, or
stopping, while its long poll waits), so that "two getUpdates in flight at once"
can be read. Nothing is answered differently from the plain fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.bot_api import ApiCall, FakeBotApi

# The request being answered, set by the tagged route for the dispatch under it.
_REQUEST: ContextVar[tuple[int, Request] | None] = ContextVar("tagged_request", default=None)


@dataclass
class TaggedCall:
    instance: int | None  # None: the plain, untagged address
    call: ApiCall
    ended: float | None = None  # time.monotonic(), like ApiCall.at; None while in flight

    @property
    def method(self) -> str:
        return self.call.method

    @property
    def began(self) -> float:
        return self.call.at


class TaggedBotApi(FakeBotApi):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.tagged: list[TaggedCall] = []
        route = Route("/i{instance:int}/bot{token}/{method}", self._tagged, methods=["GET", "POST"])
        self._loopback.app.router.routes.append(route)

    def base_for(self, instance: int) -> str:
        """What instance `instance` is given as TELEGRAM_API_BASE; the fake must be started."""
        assert self.base_url, "start the fake first"
        return f"{self.base_url}/i{instance}"

    def calls_by(self, instance: int, method: str, since: float) -> list[TaggedCall]:
        return [
            t
            for t in self.tagged
            if t.instance == instance and t.method == method and t.began >= since
        ]

    async def _tagged(self, request: Request) -> JSONResponse:
        _REQUEST.set((request.path_params["instance"], request))
        return await self._endpoint(request)

    async def _dispatch(self, call: ApiCall) -> Any:
        instance, request = _REQUEST.get() or (None, None)
        tagged = TaggedCall(instance, call)
        self.tagged.append(tagged)
        # Only a long poll waits long enough for its caller to leave before the answer.
        hang_up = None
        if request is not None and call.method.lower() == "getupdates":
            hang_up = asyncio.create_task(_hung_up(request, tagged))
        try:
            return await super()._dispatch(call)
        finally:
            if tagged.ended is None:
                tagged.ended = time.monotonic()
            if hang_up is not None:
                hang_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await hang_up


async def _hung_up(request: Request, tagged: TaggedCall) -> None:
    """Note when the caller closed its connection before the answer (the body is read
    already, so the server's next message for this request is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    if tagged.ended is None:
        tagged.ended = time.monotonic()
