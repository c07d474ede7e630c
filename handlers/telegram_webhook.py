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

import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import Bot
from telegram.error import BadRequest, InvalidToken

from bot.errors import ConfigError

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
# Real updates nest a dozen levels at most (a reply's message, a keyboard's rows).
# Deeper JSON is refused before PTB, json.dumps or a later json.loads can recurse
# into it: past ~1000 levels those raise RecursionError.
MAX_NESTING = 64


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

    async def register(self) -> None:
        """Point Telegram at our route; getUpdates is never called in this mode.

        A refusal (an http:// URL, a port Telegram does not post to, a bad token) stops
        the start with one line: no update would ever arrive.
        """
        try:
            await self._bot.set_webhook(
                url=self._target.url,
                secret_token=self._target.secret,
                allowed_updates=self._allowed_updates,
            )
        except InvalidToken as error:
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
