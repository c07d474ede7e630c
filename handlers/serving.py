"""Serve a Starlette app with uvicorn inside the running event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp

from handlers.connections import ACCEPT_BATCH, ACCEPT_ERROR_LIMIT, connection_cap, guarded_protocol

STARTUP_DEADLINE = 10.0
# Webhook bodies are small: form posts and JSON documents. Larger ones are refused unread.
MAX_BODY = 64 * 1024


async def read_body(request: Request) -> bytes | None:
    """The raw body, or None once it passes MAX_BODY (the caller answers 413).

    A body not complete in time is cut off by its connection (handlers.connections):
    408, which nobody reads, rather than an error logged for each slow sender."""
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return None
    except ClientDisconnect:
        raise HTTPException(408, "the request body did not arrive in time") from None
    return bytes(body)


class _EmbeddedServer(uvicorn.Server):
    # paybot owns SIGINT and SIGTERM and stops every part in order, so uvicorn
    # must not install its own handlers (it would re-raise the signal after).
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            lifespan="off",
            access_log=False,
            # On shutdown, requests still running get this long; without it uvicorn
            # waits for them forever, and SIGTERM must finish within seconds.
            timeout_graceful_shutdown=5,
            # Bounded connections, each request timed: slow or idle sockets cannot
            # take the files every other connection needs.
            http=guarded_protocol(connection_cap()),
            backlog=ACCEPT_BATCH,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self.port = port
        self.host = host

    async def start(self) -> None:
        """Listen, or raise OSError saying why not (the port is taken, say)."""
        logging.getLogger("asyncio").addFilter(
            ACCEPT_ERROR_LIMIT
        )  # added once, however many servers
        # Binding here rather than in uvicorn: uvicorn answers a bind failure with
        # sys.exit, which would tear through the event loop.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family)
        # Accepted connections inherit this. asyncio sets it only on sockets it makes
        # itself; without it Nagle and delayed ACKs hold each answer ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        try:
            await self._started(self._task)
        except asyncio.CancelledError:  # a signal while starting: nothing is left listening
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
            raise

    async def _started(self, serving: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_DEADLINE
        while not self._server.started:
            if serving.done() or loop.time() > deadline:
                raise RuntimeError(f"the HTTP server on {self.url} did not start")
            await asyncio.sleep(0.01)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
