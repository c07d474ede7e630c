"""How paybot's python-telegram-bot talks to the Bot API: its own HTTPXRequest, with
each request's body written to the socket whole.

httpx writes a multipart body (an invoice's QR photo, its caption, its buttons) a
part at a time, and httpcore makes each part a socket write of its own, with its own
timeout scope and lock: about a third of the client's CPU for a `sendPhoto` (measured
on loopback: 1.4 ms a photo, 0.9 ms with the body whole). Reading the body into memory
first, through httpx's own `Request.aread`, makes it one write. The bodies are small
(a QR code of a few kilobytes, an export of at most a few megabytes).
"""

from __future__ import annotations

import httpx
from telegram.request import HTTPXRequest

# python-telegram-bot's own default for a bot's requests (ApplicationBuilder): its
# limits are the transport's, since httpx applies a client's only to a transport it builds.
CONNECTION_POOL_SIZE = 256


class WholeBodies(httpx.AsyncBaseTransport):
    """A transport that hands `inner` each request with its body read whole."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # httpx then streams the bytes read, in one piece
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def bot_api_request() -> HTTPXRequest:
    """The request object for a bot's calls, as python-telegram-bot would build it."""
    limits = httpx.Limits(max_connections=CONNECTION_POOL_SIZE)
    inner = httpx.AsyncHTTPTransport(limits=limits, http1=True, http2=False)
    return HTTPXRequest(
        connection_pool_size=CONNECTION_POOL_SIZE,
        httpx_kwargs={"transport": WholeBodies(inner)},
    )
