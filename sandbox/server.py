"""Serving ASGI apps under uvicorn inside the current event loop, and `paybot sandbox`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from sandbox.app import Sandbox

logger = logging.getLogger(__name__)

_START_TIMEOUT = 10.0


class _EmbeddedUvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The program that embeds the server owns SIGINT and SIGTERM.
        yield

    async def main_loop(self) -> None:
        # uvicorn polls `should_exit` every 0.1 s; waking on an event makes stop()
        # prompt, which adds up over a test suite. on_tick refreshes the Date header
        # when its counter is a multiple of 10, so count in tens, once a second.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.stop_requested.wait()


class AsgiServer:
    """One ASGI app on host:port (port 0: any free port), in this event loop."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            ws="none",
            log_config=None,  # leave the program's logging alone
            access_log=False,
            timeout_graceful_shutdown=2,  # a request held by an injected delay must not hold stop
        )
        self._server = _EmbeddedUvicorn(config)
        self._host = host
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve())
        async with asyncio.timeout(_START_TIMEOUT):
            while not self._server.started:
                if self._task.done():
                    await self._task  # raises why it could not start
                await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"http://{host}:{port}"

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:  # uvicorn exits when it cannot bind
            raise OSError(f"could not listen on {self._host}:{self._server.config.port}") from exc

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        self._server.stop_requested.set()
        await self._task
        self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class SandboxServer(AsgiServer):
    """A Sandbox's app on loopback; sets `sandbox.base_url` once listening.

    Stopping the server does not close the sandbox: its owner calls `sandbox.close()`.
    """

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(sandbox.asgi(), host, port)
        self.sandbox = sandbox

    async def start(self) -> None:
        await super().start()
        self.sandbox.base_url = self.url


async def run_standalone(
    host: str,
    port: int,
    secret_key: str,
    webhook_secret: str,
    webhook_url: str | None,
    *,
    fixed_keys: bool = False,
) -> None:
    """Serve a sandbox until cancelled (Ctrl-C cancels the main task under asyncio.run)."""
    sandbox = Sandbox(secret_key=secret_key, webhook_secret=webhook_secret, webhook_url=webhook_url)
    try:
        async with SandboxServer(sandbox, host, port) as server:
            _print_banner(sandbox, server.url, secret_key, webhook_secret, fixed_keys)
            logger.info(
                "Cimplify sandbox listening on %s (keys printed once: CIMPLIFY_SECRET_KEY, "
                "CIMPLIFY_WEBHOOK_SECRET)",
                server.url,
            )
            await asyncio.Event().wait()
    finally:
        await sandbox.close()


def _print_banner(
    sandbox: Sandbox, url: str, secret_key: str, webhook_secret: str, fixed_keys: bool
) -> None:
    # Printed once, on purpose: these are the sandbox's own development keys, and a
    # developer running it alone needs them to configure the bot. Never logged.
    orders = ", ".join(sandbox.ledger.orders)
    keys = (
        "the keys given"
        if fixed_keys
        else "new keys: give them back with --secret-key and --webhook-secret, or as "
        "CIMPLIFY_SECRET_KEY and CIMPLIFY_WEBHOOK_SECRET, to keep them across restarts"
    )
    print(
        f"Cimplify sandbox at {url}, with {keys}.\n"
        "Configure paybot with these development keys (not real credentials):\n"
        f"  CIMPLIFY_API_BASE={url}\n"
        f"  CIMPLIFY_SECRET_KEY={secret_key}\n"
        f"  CIMPLIFY_WEBHOOK_SECRET={webhook_secret}\n"
        f"Webhooks go to: {sandbox.webhook_url or 'nowhere (no webhook url given)'}\n"
        f"Seeded orders: {orders}\n"
        f"See them:  curl {url}/sandbox/orders\n"
        f'Pay one:   curl -X POST {url}/sandbox/orders/1001/pay -d \'{{"outcome": "paid"}}\'\n'
        "Each link's url (in the list, or in the bot's invoice) opens its payment page.",
        flush=True,
    )
