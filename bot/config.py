"""Settings: one frozen object read from the environment (CONTRACT §3), validated at start.

`Settings.from_env` raises `ConfigError` naming the first bad setting, so the
program stops with one clear line before anything listens. Secret values are
wrapped in `Secret` and never appear in an error message or a repr.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dotenv import dotenv_values
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from bot.config_day import time_of_day_or_off, time_zone
from bot.config_readers import (
    Secret,
    cashiers,
    check_visible,
    choice,
    content_sid,
    duration,
    durations,
    optional_duration,
    optional_url,
    phone_numbers,
    region,
    secret,
    url,
    user_ids,
)
from bot.errors import ConfigError
from bot.i18n import LANGUAGES

__all__ = ["Secret", "Settings"]

# [0-9] rather than \d everywhere: \d also matches non-ASCII digits such as "٣".
_TELEGRAM_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]{20,}")
_TWILIO_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_WHATSAPP_FROM = re.compile(r"whatsapp:\+[1-9][0-9]{6,14}")
_PORT = re.compile(r"[0-9]{1,5}")
_RATE = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")  # RFC 1123
_DB_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LOG_FORMATS = ("text", "json")
_TELEGRAM_MODES = ("polling", "webhook")
# What setWebhook's secret_token may hold (Bot API): Telegram echoes it in a header.
_TELEGRAM_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_MIN_WEBHOOK_KEY_BYTES = 16


@dataclass(frozen=True)
class Settings:
    """Every setting of CONTRACT §3, validated."""

    cimplify_api_base: str | None
    cimplify_secret_key: Secret | None
    cimplify_webhook_secret: Secret | None
    database: str
    http_host: str
    http_port: int
    public_url: str
    telegram_bot_token: Secret | None
    telegram_api_base: str
    telegram_merchants: frozenset[int]
    twilio_account_sid: str | None
    twilio_auth_token: Secret | None
    twilio_whatsapp_from: str | None
    twilio_api_base: str
    whatsapp_merchants: frozenset[str]
    poll_rate: float
    log_level: str
    # Chat messages a second, all chats together: two under Telegram's bulk limit of
    # 30. The outbox never decides more than this in any second, and the margin absorbs
    # requests that leave a little unevenly under load (tests/test_several_instances.py
    # saw 30 of 29 a second reach Telegram within 0.995 s on a busy machine).
    send_rate: float = 30.0
    log_format: str = "text"  # or "json": one object a line (bot/logs.py)
    # How long handled inputs, sent messages and status history are kept (bot/housekeeping.py).
    retention: timedelta = timedelta(days=30)
    # Read numbers typed without "+" (ISO 3166 alpha-2, as phonenumbers knows them).
    whatsapp_default_region: str | None = None
    # Approved WhatsApp templates, for messages outside the 24-hour window.
    twilio_invoice_content_sid: str | None = None
    twilio_status_content_sid: str | None = None
    # "polling" (getUpdates) or "webhook" (Telegram posts to /webhooks/telegram).
    telegram_mode: str = "polling"
    telegram_webhook_secret: Secret | None = None  # set whenever telegram_mode is "webhook"
    # The merchants listed with `:cashier` (CONTRACT §7), each also in the merchants above;
    # the others are owners.
    telegram_cashiers: frozenset[int] = frozenset()
    whatsapp_cashiers: frozenset[str] = frozenset()
    # The merchants' zone: times in chats, their day for /today, the digest and /export.
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    digest_at: time | None = time(20, 0)  # local time of the daily digest; None: off
    # The chats' language until a chat picks its own with /lang (bot/i18n.py).
    language: str = "en"
    twilio_reminder_content_sid: str | None = None
    # Follow-ups (bot/follow_ups.py): after issue; after a failure; before the expiry.
    reminders: tuple[timedelta, ...] = (timedelta(hours=24),)
    failed_reminder: timedelta | None = timedelta(hours=1)
    expiry_warning: timedelta | None = timedelta(hours=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], dotenv_path: str | None = ".env") -> Settings:
        """Read and check every setting; `environ` wins over the .env file."""
        env = _merged(environ, dotenv_path)
        api_base = optional_url(env, "CIMPLIFY_API_BASE")
        # The embedded sandbox makes its own keys; a real Cimplify needs ours.
        needed = "required when CIMPLIFY_API_BASE is set" if api_base else None
        secret_key = secret(env, "CIMPLIFY_SECRET_KEY", needed, check_visible)
        webhook_secret = secret(env, "CIMPLIFY_WEBHOOK_SECRET", needed, _check_webhook_secret)
        database = _database(env)
        host = _host(env)
        port = _port(env)
        return cls(
            cimplify_api_base=api_base,
            cimplify_secret_key=secret_key,
            cimplify_webhook_secret=webhook_secret,
            database=database,
            http_host=host,
            http_port=port,
            public_url=url(env, "PAYBOT_PUBLIC_URL", _default_public_url(host, port)),
            telegram_bot_token=secret(env, "TELEGRAM_BOT_TOKEN", None, _check_telegram_token),
            telegram_api_base=url(env, "TELEGRAM_API_BASE", "https://api.telegram.org"),
            telegram_merchants=user_ids(env, "TELEGRAM_MERCHANTS"),
            telegram_cashiers=frozenset(int(i) for i in cashiers(env, "TELEGRAM_MERCHANTS")),
            **_telegram_mode(env),
            **_twilio(env),
            whatsapp_merchants=phone_numbers(env, "WHATSAPP_MERCHANTS"),
            whatsapp_cashiers=cashiers(env, "WHATSAPP_MERCHANTS"),
            whatsapp_default_region=region(env, "WHATSAPP_DEFAULT_REGION"),
            poll_rate=_rate(env, "PAYBOT_POLL_RATE", "5", 100, "requests"),
            send_rate=_rate(env, "PAYBOT_SEND_RATE", "30", 1000, "messages"),
            log_level=_log_level(env),
            log_format=_log_format(env),
            retention=duration(env, "PAYBOT_RETENTION", "30d"),
            language=choice(env, "PAYBOT_LANGUAGE", LANGUAGES, "en"),
            timezone=time_zone(env, "PAYBOT_TIMEZONE", "UTC"),
            digest_at=time_of_day_or_off(env, "PAYBOT_DIGEST_AT", "20:00"),
            reminders=durations(env, "PAYBOT_REMINDERS", "24h"),
            failed_reminder=optional_duration(env, "PAYBOT_FAILED_REMINDER", "1h"),
            expiry_warning=optional_duration(env, "PAYBOT_EXPIRY_WARNING", "1h"),
        )

    @property
    def embedded_sandbox(self) -> bool:
        """True when no Cimplify is configured and the bot runs its own sandbox."""
        return self.cimplify_api_base is None

    @property
    def whatsapp_enabled(self) -> bool:
        """True when Twilio's account, token and WhatsApp sender are all set."""
        twilio = (self.twilio_account_sid, self.twilio_auth_token, self.twilio_whatsapp_from)
        return all(value is not None for value in twilio)

    def secrets(self) -> list[str]:
        """Every secret value that is set, for redacting logs."""
        held = (
            self.cimplify_secret_key,
            self.cimplify_webhook_secret,
            self.telegram_bot_token,
            self.telegram_webhook_secret,
            self.twilio_auth_token,
        )
        return [value.reveal() for value in held if value is not None]

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields replaced (the demo uses port 0, for one)."""
        return dataclasses.replace(self, **changes)


def _merged(environ: Mapping[str, str], dotenv_path: str | None) -> dict[str, str]:
    """The .env file's values, overlaid by `environ`; blanks dropped (blank means unset)."""
    merged: dict[str, str] = {}
    if dotenv_path is not None:
        # interpolate=False: a "$" in a secret is literal, and os.environ stays out of it.
        from_file = dotenv_values(dotenv_path, interpolate=False)
        merged.update({key: value for key, value in from_file.items() if value is not None})
    # A variable present in `environ` wins even when blank, so `X= paybot run` can unset X.
    merged.update(environ)
    return {key: value.strip() for key, value in merged.items() if value.strip()}


def _check_webhook_secret(raw: str) -> str | None:
    problem = "expected whsec_ followed by base64 of at least 16 bytes (Standard Webhooks form)"
    if not raw.startswith("whsec_"):
        return problem
    body = raw.removeprefix("whsec_")
    try:
        # validate=True: b64decode would otherwise skip stray characters silently.
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        Webhook(raw)  # the library that verifies deliveries must accept it too
    except (binascii.Error, ValueError, EmptyWebhookSecretError, RuntimeError):
        return problem
    return None if len(key) >= _MIN_WEBHOOK_KEY_BYTES else problem


def _check_telegram_token(raw: str) -> str | None:
    if _TELEGRAM_TOKEN.fullmatch(raw):
        return None
    return "expected a bot token from @BotFather: digits, ':', then 20 or more of A-Z a-z 0-9 - _"


def _telegram_mode(env: Mapping[str, str]) -> dict[str, Any]:
    """How updates arrive: getUpdates, or posts carrying the secret given to setWebhook."""
    raw = env.get("TELEGRAM_MODE", "polling")
    if raw.lower() not in _TELEGRAM_MODES:
        problem = f"expected one of {', '.join(_TELEGRAM_MODES)}, got {raw!r}"
        raise ConfigError("TELEGRAM_MODE", problem)
    mode = raw.lower()
    needed = "required when TELEGRAM_MODE=webhook" if mode == "webhook" else None
    webhook_secret = secret(env, "TELEGRAM_WEBHOOK_SECRET", needed, _check_telegram_secret)
    return {"telegram_mode": mode, "telegram_webhook_secret": webhook_secret}


def _check_telegram_secret(raw: str) -> str | None:
    if _TELEGRAM_WEBHOOK_SECRET.fullmatch(raw):
        return None
    return "expected 1 to 256 of A-Z a-z 0-9 _ - (what Telegram accepts as a secret_token)"


def _database(env: Mapping[str, str]) -> str:
    raw = env.get("PAYBOT_DATABASE", "paybot.db")
    scheme = _DB_SCHEME.match(raw)
    if scheme and scheme.group(1) in ("postgresql", "postgres"):
        return _postgres_url(raw)
    if scheme:
        problem = f"{scheme.group(1)}:// is not supported; give a SQLite file path or postgresql://"
        raise ConfigError("PAYBOT_DATABASE", problem)
    if "\x00" in raw:
        raise ConfigError("PAYBOT_DATABASE", "expected a SQLite file path, got a NUL character")
    return raw


def _postgres_url(raw: str) -> str:
    """A PostgreSQL URL with a host and a database. Never quoted back: it may hold a password."""
    expected = "expected postgresql://user[:password]@host[:port]/database"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError when the port is not a port
    except ValueError:
        raise ConfigError("PAYBOT_DATABASE", expected) from None
    database = parts.path.removeprefix("/")
    if not parts.hostname or not database or "/" in database or _UNSAFE_URL.search(raw):
        raise ConfigError("PAYBOT_DATABASE", expected)
    return raw


_UNSAFE_URL = re.compile(r"[\x00-\x20\x7f]")  # control characters and spaces


def _host(env: Mapping[str, str]) -> str:
    raw = env.get("PAYBOT_HTTP_HOST", "127.0.0.1")
    host = raw.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            problem = f"expected an IP address or a host name such as 127.0.0.1, got {raw!r}"
            raise ConfigError("PAYBOT_HTTP_HOST", problem) from None
    return host


def _port(env: Mapping[str, str]) -> int:
    raw = env.get("PAYBOT_HTTP_PORT", "8080")
    if not _PORT.fullmatch(raw) or int(raw) > 65535:
        problem = f"expected a port number from 0 to 65535 (0: any free port), got {raw!r}"
        raise ConfigError("PAYBOT_HTTP_PORT", problem)
    return int(raw)


def _default_public_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address goes in brackets in a URL
    return f"http://{shown}:{port}"


def _twilio(env: Mapping[str, str]) -> dict[str, Any]:
    """The WhatsApp channel's settings: all three of SID, token and sender, or none."""
    names = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM")
    given = [name for name in names if name in env]
    needed = f"required when {given[0]} is set (WhatsApp needs all three)" if given else None
    sid = env.get("TWILIO_ACCOUNT_SID")
    if sid is None and needed:
        raise ConfigError("TWILIO_ACCOUNT_SID", needed)
    if sid is not None and not _TWILIO_SID.fullmatch(sid):
        raise ConfigError("TWILIO_ACCOUNT_SID", f"expected AC and 32 hex digits, got {sid!r}")
    token = secret(env, "TWILIO_AUTH_TOKEN", needed, check_visible)
    sender = env.get("TWILIO_WHATSAPP_FROM")
    if sender is None and needed:
        raise ConfigError("TWILIO_WHATSAPP_FROM", needed)
    if sender is not None and not _WHATSAPP_FROM.fullmatch(sender):
        problem = f"expected whatsapp:+E164, like whatsapp:+14155238886, got {sender!r}"
        raise ConfigError("TWILIO_WHATSAPP_FROM", problem)
    return {
        "twilio_account_sid": sid,
        "twilio_auth_token": token,
        "twilio_whatsapp_from": sender,
        "twilio_api_base": url(env, "TWILIO_API_BASE", "https://api.twilio.com"),
        "twilio_invoice_content_sid": content_sid(env, "TWILIO_INVOICE_CONTENT_SID"),
        "twilio_status_content_sid": content_sid(env, "TWILIO_STATUS_CONTENT_SID"),
        "twilio_reminder_content_sid": content_sid(env, "TWILIO_REMINDER_CONTENT_SID"),
    }


def _rate(env: Mapping[str, str], name: str, default: str, most: int, what: str) -> float:
    raw = env.get(name, default)
    rate = float(raw) if _RATE.fullmatch(raw) else math.nan
    if not 0 < rate <= most:  # NaN fails this too
        problem = f"expected {what} per second, more than 0 and at most {most}, got {raw!r}"
        raise ConfigError(name, problem)
    return rate


def _log_level(env: Mapping[str, str]) -> str:
    raw = env.get("PAYBOT_LOG_LEVEL", "INFO")
    if raw.upper() not in _LOG_LEVELS:
        raise ConfigError(
            "PAYBOT_LOG_LEVEL", f"expected one of {', '.join(_LOG_LEVELS)}, got {raw!r}"
        )
    return raw.upper()


def _log_format(env: Mapping[str, str]) -> str:
    raw = env.get("PAYBOT_LOG_FORMAT", "text")
    if raw.lower() not in _LOG_FORMATS:
        problem = f"expected one of {', '.join(_LOG_FORMATS)}, got {raw!r}"
        raise ConfigError("PAYBOT_LOG_FORMAT", problem)
    return raw.lower()
