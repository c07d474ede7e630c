"""Logging that never prints a secret.

One root handler formats each record and then redacts the whole line, message,
arguments and traceback alike: the known secret values, any Telegram bot token
in a URL path (`/bot<token>/method`, CONTRACT §3), and any `Bearer` credential.

Two formats (PAYBOT_LOG_FORMAT): `text`, one readable line a record, and `json`,
one object a line with the time, level, logger and message, and the order, link,
chat and event id when the log call gave them (`extra={"order_id": ...}`) or the
work it runs in did (`log_context`: the inbox names the chat, order or event whose
entry it is handling, so that every line said while handling it carries them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO
from urllib.parse import quote

MASK = "********"
_HANDLER_NAME = "paybot"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Shorter values would blank common substrings all over the log; config never allows them.
_MIN_SECRET_LENGTH = 6
# What a log call may name in `extra`, for JSON lines; text lines say it in the message.
CONTEXT_FIELDS = ("order_id", "link_id", "chat", "event_id")
# Those the running work names (`log_context`), for a call that gives none itself: a
# context variable, so each task (one inbox entry's handling) has its own.
_CONTEXT: ContextVar[Mapping[str, str] | None] = ContextVar("paybot_log_context", default=None)
_BOT_TOKEN_IN_PATH = re.compile(r"bot[0-9]+:[A-Za-z0-9_-]+")
_BEARER = re.compile(r"\b(bearer)\s+[^\s'\",;]+", re.IGNORECASE)
# httpx logs every request URL at INFO, and Telegram's URLs hold the bot token;
# uvicorn's access log adds a line per request that says nothing the app does not;
# aiosqlite logs every statement with its parameters at DEBUG (messages, webhook bodies);
# python-telegram-bot logs each call's parameters at DEBUG (pay links with their tokens).
_QUIETED = (
    "httpx",
    "httpcore",
    "uvicorn.access",
    "aiosqlite",
    "telegram.Bot",
    "telegram.ext.ExtBot",
)


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Name CONTEXT_FIELDS for every line logged inside, in this task (a log call's own
    `extra` wins)."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value, bot token in a URL and Bearer credential masked."""
    return _Redactor(secrets).redact(text)


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        wanted = {
            shown
            for secret in secrets
            if len(secret) >= _MIN_SECRET_LENGTH
            for shown in _spellings(secret)
        }
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted(wanted, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _BOT_TOKEN_IN_PATH.sub("bot<redacted>", text)
        return _BEARER.sub(lambda match: f"{match.group(1)} {MASK}", text)


def _spellings(secret: str) -> set[str]:
    """The ways a secret gets printed: as is, escaped inside a repr, percent-encoded in a URL."""
    return {secret, repr(secret)[1:-1], quote(secret, safe="")}


class RedactingFormatter(logging.Formatter):
    """The paybot line format, in UTC ISO 8601, with the whole formatted line redacted."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(_FORMAT)
        self._redactor = _Redactor(secrets)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.redact(super().format(record))


class RedactingJsonFormatter(logging.Formatter):
    """One JSON object a line, each value redacted before it is encoded (a secret escaped
    by JSON would no longer match its plain spelling)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._redactor = _Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, str] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        running = _CONTEXT.get() or {}
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name, running.get(name))
            if value is not None:
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        shown = {key: self._redactor.redact(value) for key, value in line.items()}
        return json.dumps(shown, ensure_ascii=False)


def configure_logging(
    level: str, secrets: Iterable[str], stream: IO[str] | None = None, form: str = "text"
) -> None:
    """Install paybot's redacting root handler, replacing one installed before;
    `form` is `text` or `json`."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.name == _HANDLER_NAME:
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.name = _HANDLER_NAME
    formatter = RedactingJsonFormatter if form == "json" else RedactingFormatter
    handler.setFormatter(formatter(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIETED:
        logging.getLogger(name).setLevel(logging.WARNING)
