"""Settings: one frozen object read from the environment (CONTRACT §3), validated at start.

`Settings.from_env` raises `ConfigError` naming the first bad setting, so the
program stops with one clear line before anything listens. Secret values are
wrapped in `Secret` and never appear in an error message or a repr.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from bot.errors import ConfigError

# [0-9] rather than \d everywhere: \d also matches non-ASCII digits such as "٣".
_TELEGRAM_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]{20,}")
_TWILIO_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_WHATSAPP_FROM = re.compile(r"whatsapp:\+[1-9][0-9]{6,14}")
_USER_ID = re.compile(r"[0-9]{1,20}")
_PORT = re.compile(r"[0-9]{1,5}")
_RATE = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")  # RFC 1123
# Visible ASCII only: secrets go into HTTP headers, where a space or newline would break them.
_SECRET_TEXT = re.compile(r"[!-~]{8,}")
_DB_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_MIN_WEBHOOK_KEY_BYTES = 16

# Says what is wrong with a secret's value (without quoting it), or None when it is fine.
_SecretCheck = Callable[[str], str | None]


class Secret:
    """A secret string that does not show itself in str(), repr() or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


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

    @classmethod
    def from_env(cls, environ: Mapping[str, str], dotenv_path: str | None = ".env") -> Settings:
        """Read and check every setting; `environ` wins over the .env file."""
        env = _merged(environ, dotenv_path)
        api_base = _optional_url(env, "CIMPLIFY_API_BASE")
        # The embedded sandbox makes its own keys; a real Cimplify needs ours.
        needed = "required when CIMPLIFY_API_BASE is set" if api_base else None
        secret_key = _secret(env, "CIMPLIFY_SECRET_KEY", needed, _check_visible)
        webhook_secret = _secret(env, "CIMPLIFY_WEBHOOK_SECRET", needed, _check_webhook_secret)
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
            public_url=_url(env, "PAYBOT_PUBLIC_URL", _default_public_url(host, port)),
            telegram_bot_token=_secret(env, "TELEGRAM_BOT_TOKEN", None, _check_telegram_token),
            telegram_api_base=_url(env, "TELEGRAM_API_BASE", "https://api.telegram.org"),
            telegram_merchants=_user_ids(env, "TELEGRAM_MERCHANTS"),
            **_twilio(env),
            whatsapp_merchants=_phone_numbers(env, "WHATSAPP_MERCHANTS"),
            poll_rate=_poll_rate(env),
            log_level=_log_level(env),
        )

    @property
    def embedded_sandbox(self) -> bool:
        """True when no Cimplify is configured and the bot runs its own sandbox."""
        return self.cimplify_api_base is None

    def secrets(self) -> list[str]:
        """Every secret value that is set, for redacting logs."""
        held = (
            self.cimplify_secret_key,
            self.cimplify_webhook_secret,
            self.telegram_bot_token,
            self.twilio_auth_token,
        )
        return [secret.reveal() for secret in held if secret is not None]

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


def _optional_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None:
        return None
    expected = "expected an http:// or https:// URL with a host, and no query or fragment"
    # Refused before the value is quoted: user:password@ may hold a credential.
    if "@" in raw:
        raise ConfigError(name, f"{expected}; do not put a user or password in it")
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - read for its check: raises ValueError on a bad port
    except ValueError:
        raise ConfigError(name, f"{expected}, got {raw!r}") from None
    valid = parts.scheme in ("http", "https") and bool(parts.hostname) and _printable(raw)
    if not valid or "?" in raw or "#" in raw:
        raise ConfigError(name, f"{expected}, got {raw!r}")
    return raw.rstrip("/")


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    return _optional_url(env, name) or default


def _printable(text: str) -> bool:
    return all(char.isprintable() and not char.isspace() for char in text)


def _secret(
    env: Mapping[str, str], name: str, required: str | None, check: _SecretCheck
) -> Secret | None:
    """A secret setting; `required` says why when it must be set. Messages never quote it."""
    raw = env.get(name)
    if raw is None:
        if required:
            raise ConfigError(name, required)
        return None
    problem = check(raw)
    if problem:
        raise ConfigError(name, problem)
    return Secret(raw)


def _check_visible(raw: str) -> str | None:
    if _SECRET_TEXT.fullmatch(raw):
        return None
    return "expected 8 or more visible characters, no spaces"


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


def _database(env: Mapping[str, str]) -> str:
    raw = env.get("PAYBOT_DATABASE", "paybot.db")
    scheme = _DB_SCHEME.match(raw)
    # The URL is not quoted back: postgresql://user:password@... holds a password.
    if scheme and scheme.group(1).lower() in ("postgresql", "postgres"):
        raise ConfigError(
            "PAYBOT_DATABASE", "PostgreSQL is not supported yet; give a SQLite file path"
        )
    if scheme:
        problem = f"{scheme.group(1)}:// is not supported; give a SQLite file path"
        raise ConfigError("PAYBOT_DATABASE", problem)
    if "\x00" in raw:
        raise ConfigError("PAYBOT_DATABASE", "expected a SQLite file path, got a NUL character")
    return raw


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


def _user_ids(env: Mapping[str, str], name: str) -> frozenset[int]:
    ids = set()
    for entry in _entries(env, name):
        if not _USER_ID.fullmatch(entry) or int(entry) == 0:
            raise ConfigError(name, f"expected comma-separated numeric user ids, got {entry!r}")
        ids.add(int(entry))
    return frozenset(ids)


def _phone_numbers(env: Mapping[str, str], name: str) -> frozenset[str]:
    numbers = set()
    for entry in _entries(env, name):
        if not _E164.fullmatch(entry):
            problem = f"expected comma-separated E.164 numbers like +233241234567, got {entry!r}"
            raise ConfigError(name, problem)
        numbers.add(entry)
    return frozenset(numbers)


def _entries(env: Mapping[str, str], name: str) -> list[str]:
    """The non-empty entries of a comma-separated list, spaces around them dropped."""
    return [entry.strip() for entry in env.get(name, "").split(",") if entry.strip()]


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
    token = _secret(env, "TWILIO_AUTH_TOKEN", needed, _check_visible)
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
        "twilio_api_base": _url(env, "TWILIO_API_BASE", "https://api.twilio.com"),
    }


def _poll_rate(env: Mapping[str, str]) -> float:
    raw = env.get("PAYBOT_POLL_RATE", "5")
    rate = float(raw) if _RATE.fullmatch(raw) else math.nan
    if not 0 < rate <= 100:  # NaN fails this too
        problem = f"expected requests per second, more than 0 and at most 100, got {raw!r}"
        raise ConfigError("PAYBOT_POLL_RATE", problem)
    return rate


def _log_level(env: Mapping[str, str]) -> str:
    raw = env.get("PAYBOT_LOG_LEVEL", "INFO")
    if raw.upper() not in _LOG_LEVELS:
        raise ConfigError(
            "PAYBOT_LOG_LEVEL", f"expected one of {', '.join(_LOG_LEVELS)}, got {raw!r}"
        )
    return raw.upper()
