"""`paybot run | demo | sandbox | check`: Cimplify payment links in a merchant's chat."""

from __future__ import annotations

# Only what `main` needs before it installs the signal handlers of `run`: the rest of
# paybot (asyncio, the settings, the store, the channels) takes most of a second to
# load on a busy machine, and a SIGTERM then must not kill the process with exit -15.
# Each function imports what it uses (tests/test_signals.py holds this line).
import os
import sys
from typing import TYPE_CHECKING

from paybot.signals import SIGNALS

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from bot.config import Settings

DESCRIPTION = (
    "paybot sends Cimplify payment links in a merchant's Telegram or WhatsApp chat, follows "
    "each payment and says Confirmed when the money is in."
)
EPILOG = (
    "Settings are environment variables (a .env file in the working folder may add to them); "
    "the README's Settings section describes each one. New here? Try: paybot demo"
)
NOBODY_CAN_REACH = (
    "no chat channel is set, so nobody can reach this bot: set TELEGRAM_BOT_TOKEN and "
    "TELEGRAM_MERCHANTS for Telegram, or TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
    "TWILIO_WHATSAPP_FROM and WHATSAPP_MERCHANTS for WhatsApp (README: Running it for real)"
)


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] in (["run"], ["demo"], ["sandbox"]):
        SIGNALS.install()  # before anything loads or starts: a signal then stops the start
    from bot.config import Settings
    from bot.errors import ConfigError
    from bot.logs import configure_logging

    args = _parser().parse_args(argv)
    if args.command == "demo":
        configure_logging("WARNING", [])
        return _run_async(lambda: _demo(args.script))
    try:
        settings = Settings.from_env({**os.environ, **_sandbox_keys(args)})
    except ConfigError as error:
        print(f"paybot: {error}", file=sys.stderr)  # one line, naming the setting
        return 2
    configure_logging(settings.log_level, settings.secrets(), form=settings.log_format)
    if args.command == "run":
        return _run_async(lambda: _run(settings))
    if args.command == "check":
        return _run_async(lambda: _check(settings))
    return _run_async(lambda: _sandbox(settings, args.port))


def _run_async(command: Callable[[], Awaitable[int]]) -> int:
    import asyncio

    from bot.errors import ConfigError

    async def main() -> int:
        return await command()

    try:
        return asyncio.run(main())
    except ConfigError as error:  # found at start (an unreachable database, say)
        print(f"paybot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"paybot: {error}", file=sys.stderr)
        return 1


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("paybot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="paybot", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"paybot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    sub.add_parser(
        "run",
        help="run the bot: chat channels, webhooks, polling and sending "
        "(with an embedded Cimplify sandbox unless CIMPLIFY_API_BASE is set)",
        description="Run the bot until Ctrl-C or SIGTERM. " + EPILOG,
    )
    demo = sub.add_parser(
        "demo",
        help="try paybot in this terminal: the bot, a Cimplify sandbox and a console chat, "
        "with a payment page to open in a browser; needs no account and no setting",
        description="The whole bot with your terminal as the merchant's chat.",
    )
    demo.add_argument("--script", action="store_true", help="play a whole conversation and exit")
    _sandbox_parser(sub)
    sub.add_parser(
        "check",
        help="ask each configured service (database, Cimplify, Telegram, Twilio) whether it "
        "accepts the settings: one line each, and a non-zero exit if any fails",
        description="What to run before the first start. " + EPILOG,
    )
    return parser


def _sandbox_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sandbox = sub.add_parser(
        "sandbox",
        help="run the Cimplify sandbox alone, with its payment pages, to point a bot at",
        description="The Cimplify sandbox alone. Its keys are new at each start unless given, "
        "by these flags or by CIMPLIFY_SECRET_KEY and CIMPLIFY_WEBHOOK_SECRET (the flags win), "
        "so that a bot pointed at it survives its restart.",
    )
    sandbox.add_argument("--port", type=int, default=8090, help="where it listens (8090)")
    sandbox.add_argument("--secret-key", help="the secret key it accepts (CIMPLIFY_SECRET_KEY)")
    sandbox.add_argument(
        "--webhook-secret",
        help="the whsec_ secret it signs webhooks with (CIMPLIFY_WEBHOOK_SECRET)",
    )


def _sandbox_keys(args: argparse.Namespace) -> dict[str, str]:
    """The sandbox's key flags, as the settings they stand for (checked the same way)."""
    if args.command != "sandbox":
        return {}
    given = {"CIMPLIFY_SECRET_KEY": args.secret_key, "CIMPLIFY_WEBHOOK_SECRET": args.webhook_secret}
    return {name: value for name, value in given.items() if value is not None}


async def _run(settings: Settings) -> int:
    import asyncio
    import contextlib
    import logging

    from handlers.connections import raise_open_files_limit

    raise_open_files_limit()  # each connection needs a file; the soft limit is often 1,024
    from paybot.app import Paybot  # the whole stack loads only for the command that needs it

    if SIGNALS.received is not None:
        return 0  # signalled while loading: nothing started
    if settings.telegram_bot_token is None and not settings.whatsapp_enabled:
        logging.getLogger("paybot").warning(NOBODY_CAN_REACH)
    paybot = Paybot(settings)
    starting = asyncio.create_task(paybot.start())
    signalled = asyncio.create_task(SIGNALS.wait())
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


async def _check(settings: Settings) -> int:
    from paybot.check import run_check

    return await run_check(settings)


async def _demo(script: bool) -> int:
    from paybot.demo import run_demo

    if SIGNALS.received is not None:
        return 0  # Ctrl-C while loading: nothing started
    # A bad WHATSAPP_DEFAULT_REGION: one line, 2.
    return await run_demo(os.environ, script, SIGNALS.wait)


async def _sandbox(settings: Settings, port: int) -> int:
    import asyncio
    import contextlib
    import secrets

    from sandbox import new_webhook_secret, run_standalone

    key = settings.cimplify_secret_key
    webhook_secret = settings.cimplify_webhook_secret
    serving = asyncio.create_task(
        run_standalone(
            settings.http_host,
            port,
            key.reveal() if key else "sk_sandbox_" + secrets.token_urlsafe(24),
            webhook_secret.reveal() if webhook_secret else new_webhook_secret(),
            f"{settings.public_url}/webhooks/cimplify",
            fixed_keys=key is not None and webhook_secret is not None,
        )
    )
    signalled = asyncio.create_task(SIGNALS.wait())
    await asyncio.wait({serving, signalled}, return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving  # raises why it stopped by itself (the port is taken, say)
    return 0
