"""Telegram webhook mode (TELEGRAM_MODE=webhook): Telegram posts updates to us.

At start the bot registers `PAYBOT_PUBLIC_URL/webhooks/telegram` with setWebhook,
with the configured secret token, which Telegram then sends in
`X-Telegram-Bot-Api-Secret-Token` with every post. As in python-telegram-bot's
custom-webhook example (`Application.builder().updater(None)`, starlettebot.py),
the posts come in through our own server, which stores each update in the inbox
before answering: PTB's built-in webhook server answers first.

Several instances may share one bot: each registers the same webhook at start,
and none removes it at stop, since the others still take updates.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError

from bot.errors import ConfigError

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
# Real updates nest a dozen levels at most (a reply's message, a keyboard's rows).
# Deeper JSON is refused before PTB, json.dumps or a later json.loads can recurse
# into it: past ~1000 levels those raise RecursionError.
MAX_NESTING = 64
FIRST_RETRY, MAX_BACKOFF = 0.5, 30.0  # seconds between setWebhook attempts that failed


@dataclass(frozen=True)
class WebhookTarget:
    """Where Telegram posts updates, and the secret it must send with each."""

    public_url: str  # PAYBOT_PUBLIC_URL
    secret: str  # TELEGRAM_WEBHOOK_SECRET

    @property
    def url(self) -> str:
        return f"{self.public_url}{WEBHOOK_PATH}"


class UpdateWebhook:
    """setWebhook at start; the secret check for every post."""

    def __init__(self, bot: Bot, target: WebhookTarget, allowed_updates: Sequence[str]) -> None:
        self._bot = bot
        self._target = target
        self._secret = target.secret.encode()
        self._allowed_updates = allowed_updates
        self._retrying: asyncio.Task[None] | None = None

    async def register(self) -> None:
        """Point Telegram at our route; getUpdates is never called in this mode.

        A refusal (an http:// URL, a port Telegram does not post to, a bad token) stops
        the start with one line: no update would ever arrive. A passing failure (Telegram
        unreachable, a 429) does not: the webhook set at an earlier start still brings
        updates, and setWebhook is tried again in the background until it succeeds.
        """
        try:
            await self._set_webhook()
        except TelegramError as error:  # RetryAfter, NetworkError: refusals are ConfigErrors
            log.warning("telegram: setWebhook failed (%s); trying again", error)
            self._retrying = asyncio.create_task(self._retry(), name="telegram setWebhook")

    async def stop(self) -> None:
        """Stop trying setWebhook again, if it was still being tried."""
        if self._retrying is not None:
            self._retrying.cancel()
            await asyncio.gather(self._retrying, return_exceptions=True)
            self._retrying = None

    async def _retry(self) -> None:
        wait = FIRST_RETRY
        while True:
            await asyncio.sleep(wait)
            try:
                await self._set_webhook()
                return
            except ConfigError as error:
                log.error("telegram: %s", error)  # no update will arrive: say why, once
                return
            except RetryAfter as error:
                wait = _seconds(error.retry_after)
            except TelegramError as error:
                wait = min(MAX_BACKOFF, 2 * wait)
                log.warning("telegram: setWebhook failed (%s); again in %.1f s", error, wait)

    async def _set_webhook(self) -> None:
        """setWebhook once; ConfigError when Telegram refuses what it was given."""
        try:
            await self._bot.set_webhook(
                url=self._target.url,
                secret_token=self._target.secret,
                allowed_updates=self._allowed_updates,
            )
        except (InvalidToken, Forbidden) as error:
            raise ConfigError("TELEGRAM_BOT_TOKEN", f"Telegram refused it: {error}") from None
        except BadRequest as error:
            problem = f"Telegram refused {self._target.url} as a webhook: {error.message}"
            raise ConfigError("PAYBOT_PUBLIC_URL", problem) from None
        log.info("telegram: updates are posted to %s", self._target.url)

    def secret_matches(self, header: str | None) -> bool:
        """X-Telegram-Bot-Api-Secret-Token check, in constant time.

        Compared as bytes: compare_digest refuses str holding non-ASCII, and a header
        may hold any Latin-1 character."""
        return header is not None and hmac.compare_digest(header.encode(), self._secret)


def update_json(body: bytes) -> dict[str, object]:
    """A posted body as a JSON object, or ValueError: not JSON, not an object, too deep."""
    try:
        data = json.loads(body)
    except RecursionError:  # not a ValueError: deep nesting would otherwise be a 500
        raise ValueError("nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if _nesting(data) > MAX_NESTING:
        raise ValueError("nested too deeply")
    return data


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _nesting(value: object) -> int:
    """How deeply lists and objects nest in `value`, found without recursion."""
    deepest = 0
    waiting: list[tuple[object, int]] = [(value, 1)]
    while waiting:
        item, depth = waiting.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            waiting.extend((child, depth + 1) for child in item)
    return deepest
