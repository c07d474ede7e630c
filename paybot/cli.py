"""`paybot run | demo | sandbox`."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable

from bot.config import Settings
from bot.errors import ConfigError
from bot.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        _SIGNALS.install()  # before anything starts: a signal then stops the start
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        print(f"paybot: {error}", file=sys.stderr)  # one line, naming the setting
        return 2
    configure_logging(
        "WARNING" if args.command == "demo" else settings.log_level, settings.secrets()
    )
    command: Callable[[], Awaitable[int]]
    if args.command == "run":
        command = lambda: _run(settings)  # noqa: E731
    elif args.command == "demo":
        command = lambda: _demo(settings, args.script)  # noqa: E731
    else:
        command = lambda: _sandbox(settings, args.port)  # noqa: E731
    try:
        return asyncio.run(command())
    except ConfigError as error:  # found at start (an unreachable database, say)
        print(f"paybot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"paybot: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paybot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (embedded sandbox unless CIMPLIFY_API_BASE is set)")
    demo = sub.add_parser("demo", help="the bot with a console chat and the embedded sandbox")
    demo.add_argument("--script", action="store_true", help="play a whole conversation and exit")
    sandbox = sub.add_parser("sandbox", help="run the Cimplify sandbox alone")
    sandbox.add_argument("--port", type=int, default=8090)
    return parser


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class _Signals:
    """SIGINT and SIGTERM from the first instant of `run`, kept until the loop asks.

    Without handlers of its own the process would die of the default action
    (exit -15) while starting, before anything could be stopped in order."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._wake: Callable[[], object] | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._note)

    def _note(self, signum: int, _frame: object) -> None:
        self.received = signum
        if self._wake is not None:
            self._wake()

    async def wait(self) -> None:
        """Until a signal arrives; at once if one already has."""
        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()
        # Python runs the handler between bytecodes of the main thread; the loop
        # may be asleep in select, so the handler wakes it through its self-pipe.
        self._wake = lambda: loop.call_soon_threadsafe(arrived.set)
        if self.received is not None:
            return
        await arrived.wait()


_SIGNALS = _Signals()


async def _run(settings: Settings) -> int:
    from handlers.connections import raise_open_files_limit

    raise_open_files_limit()  # each connection needs a file; the soft limit is often 1,024
    from paybot.app import Paybot  # the whole stack loads only for the command that needs it

    if _SIGNALS.received is not None:
        return 0  # signalled while loading: nothing started
    paybot = Paybot(settings)
    starting = asyncio.create_task(paybot.start())
    signalled = asyncio.create_task(_SIGNALS.wait())
    try:
        await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if signalled.done():
            starting.cancel()  # stops the start where it is; `stop` closes what started
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        else:
            starting.result()  # raises why it could not start
            await signalled
    finally:
        signalled.cancel()
        await paybot.stop()
    return 0


async def _demo(settings: Settings, script: bool) -> int:
    from paybot.demo import run_demo

    return await run_demo(settings, script)


async def _sandbox(settings: Settings, port: int) -> int:
    from sandbox import run_standalone

    key = "sk_sandbox_" + secrets.token_urlsafe(24)
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    webhook_url = f"{settings.public_url}/webhooks/cimplify"
    serving = asyncio.create_task(
        run_standalone(settings.http_host, port, key, webhook_secret, webhook_url)
    )
    signalled = asyncio.create_task(_until_signalled())
    await asyncio.wait({serving, signalled}, return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving  # raises why it stopped by itself (the port is taken, say)
    return 0
