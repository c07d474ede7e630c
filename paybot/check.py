"""`paybot check`: ask each configured service whether it takes paybot's settings.

What an operator runs before the first start. One line a service, `ok` or
`FAILED` with the reason, and a non-zero exit when any failed. Nothing is
created anywhere: Cimplify is asked for a link for an order no merchant has,
Telegram and Twilio only for what they know of the bot and the account. The
database is opened as `paybot run` opens it (brought up to date) and takes one
small write that leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from bot.cimplify import CimplifyClient
from bot.config import Settings
from bot.errors import (
    CimplifyAuthError,
    CimplifyError,
    ConfigError,
    OrderNotFound,
    OrderNotPayable,
    StoreError,
)
from bot.logs import redact
from bot.models import utcnow
from bot.readiness import probe_store
from handlers.telegram_webhook import WEBHOOK_PATH
from storage import store_for

CHECK_WITHIN = 15.0  # seconds a service may take to answer
TWILIO_API_VERSION = "2010-04-01"


@dataclass(frozen=True)
class Verdict:
    service: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.service:<9} {'ok' if self.ok else 'FAILED'}  {self.detail}"


async def run_check(settings: Settings) -> int:
    """Print one line a configured service; 0 when every one is ok, else 1."""
    verdicts = await check_all(settings)
    for verdict in verdicts:
        print(redact(verdict.line(), settings.secrets()), flush=True)
    return 0 if all(verdict.ok for verdict in verdicts) else 1


async def check_all(settings: Settings) -> list[Verdict]:
    checks: list[tuple[str, Callable[[Settings], Awaitable[str]]]] = [("database", _database)]
    if settings.cimplify_api_base is not None:
        checks.append(("cimplify", _cimplify))
    if settings.telegram_bot_token is not None:
        checks.append(("telegram", _telegram))
    if settings.whatsapp_enabled:
        checks.append(("twilio", _twilio))
    return list(await asyncio.gather(*(_verdict(name, ask, settings) for name, ask in checks)))


class Refused(Exception):
    """The service answered, and the answer is no: the message says why."""


async def _verdict(
    service: str, ask: Callable[[Settings], Awaitable[str]], settings: Settings
) -> Verdict:
    try:
        async with asyncio.timeout(CHECK_WITHIN):
            return Verdict(service, True, await ask(settings))
    except TimeoutError:
        return Verdict(service, False, f"no answer within {CHECK_WITHIN:g} s")
    except (Refused, ConfigError, StoreError, CimplifyError, TelegramError) as error:
        return Verdict(service, False, str(error))
    except (httpx.HTTPError, OSError) as error:
        return Verdict(service, False, f"could not be reached: {type(error).__name__} {error}")


async def _database(settings: Settings) -> str:
    store = store_for(settings.database)
    await store.open()  # raises ConfigError naming PAYBOT_DATABASE when it cannot
    try:
        await probe_store(store, f"check:{socket.gethostname()}:{os.getpid()}", utcnow())
    finally:
        await store.close()
    return f"{_database_shown(settings.database)} takes writes"


def _database_shown(database: str) -> str:
    """Where the database is, never its password."""
    if "://" not in database:
        return f"SQLite file {database}"
    parts = urlsplit(database)
    return f"PostgreSQL {parts.hostname}:{parts.port or 5432}{parts.path}"


async def _cimplify(settings: Settings) -> str:
    assert settings.cimplify_api_base is not None and settings.cimplify_secret_key is not None
    client = CimplifyClient(
        settings.cimplify_api_base,
        settings.cimplify_secret_key.reveal(),
        retry_budget=5.0,
        timeout=5.0,
    )
    # An order id no merchant has: the key is checked before the order is looked up, so
    # 404 says the key was accepted and 401 that it was refused, and no link is made.
    # (The only other authenticated call, cancel, changes an order: never that.)
    unknown = f"paybot-check-{secrets.token_hex(8)}"
    try:
        await client.create_link(unknown)
    except (OrderNotFound, OrderNotPayable):
        return "the secret key is accepted"
    except CimplifyAuthError:
        raise Refused("Cimplify refused CIMPLIFY_SECRET_KEY (401)") from None
    finally:
        await client.aclose()
    return "the secret key is accepted"


async def _telegram(settings: Settings) -> str:
    assert settings.telegram_bot_token is not None
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # as handlers/telegram.py
    base = settings.telegram_api_base
    bot = Bot(settings.telegram_bot_token.reveal(), f"{base}/bot", f"{base}/file/bot")
    try:
        async with bot:  # getMe
            info = await bot.get_webhook_info()
    except InvalidToken:
        raise Refused("Telegram refused TELEGRAM_BOT_TOKEN (getMe)") from None
    webhook = "no webhook set" if not info.url else f"a webhook is set ({info.url})"
    receiving = "paybot polls (getUpdates) and removes any webhook"
    if settings.telegram_mode == "webhook":
        receiving = f"paybot sets the webhook to {settings.public_url}{WEBHOOK_PATH} at start"
    shown = f"@{bot.username}; {webhook}; {receiving}"
    if info.last_error_message:
        shown += f"; the webhook's last error: {info.last_error_message}"
    return shown


async def _twilio(settings: Settings) -> str:
    sid, token = settings.twilio_account_sid, settings.twilio_auth_token
    assert sid is not None and token is not None
    url = f"{settings.twilio_api_base.rstrip('/')}/{TWILIO_API_VERSION}/Accounts/{sid}.json"
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(url, auth=(sid, token.reveal()))
    if response.status_code == 401:
        raise Refused("Twilio refused TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (401)")
    if response.status_code != 200:
        raise Refused(f"Twilio answered {response.status_code} for account {sid}")
    status = _account_status(response)
    if status != "active":
        raise Refused(f"Twilio account {sid} is {status}")
    return f"account {sid} is active"


def _account_status(response: httpx.Response) -> str:
    try:
        status = response.json().get("status")
    except (ValueError, AttributeError):
        return "not described (the answer is not an account)"
    return status if isinstance(status, str) else "not described"
