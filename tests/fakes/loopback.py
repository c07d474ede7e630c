"""Serve a Starlette app under uvicorn on 127.0.0.1, on an ephemeral port, for fakes."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.applications import Starlette


class LoopbackServer:
    """A Starlette app under uvicorn on 127.0.0.1 with an ephemeral port."""

    def __init__(self, app: Starlette) -> None:
        self.app, self.base_url = app, ""
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As in handlers/serving.py: without it each answer waits ~40 ms for an ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", ws="none", http="h11"
        )
        config.timeout_graceful_shutdown = 1
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(5):
            while not self._server.started:
                if self._task.done():  # startup failed: surface its exception
                    self._task.result()
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
