"""Small typed readers of single settings, shared by bot.config.

Each reads one variable from the merged environment, checks it, and raises
`ConfigError` naming it. Secrets are wrapped in `Secret` and never quoted back.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from urllib.parse import urlsplit

import phonenumbers

from bot.access import MerchantRole
from bot.errors import ConfigError

# [0-9] rather than \d everywhere: \d also matches non-ASCII digits such as "٣".
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_USER_ID = re.compile(r"[0-9]{1,20}")
_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
# Visible ASCII only: secrets go into HTTP headers, where a space or newline would break them.
_SECRET_TEXT = re.compile(r"[!-~]{8,}")

# Says what is wrong with a secret's value (without quoting it), or None when it is fine.
SecretCheck = Callable[[str], str | None]


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


def optional_url(env: Mapping[str, str], name: str) -> str | None:
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


def url(env: Mapping[str, str], name: str, default: str) -> str:
    return optional_url(env, name) or default


def _printable(text: str) -> bool:
    return all(char.isprintable() and not char.isspace() for char in text)


def secret(
    env: Mapping[str, str], name: str, required: str | None, check: SecretCheck
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


def check_visible(raw: str) -> str | None:
    if _SECRET_TEXT.fullmatch(raw):
        return None
    return "expected 8 or more visible characters, no spaces"


def user_ids(env: Mapping[str, str], name: str) -> frozenset[int]:
    """The ids of a merchant list, whatever their roles (`1001`, `1001:cashier`)."""
    ids = set()
    for entry in merchant_roles(env, name):
        if not _USER_ID.fullmatch(entry) or int(entry) == 0:
            raise ConfigError(name, f"expected comma-separated numeric user ids, got {entry!r}")
        ids.add(int(entry))
    return frozenset(ids)


def phone_numbers(env: Mapping[str, str], name: str) -> frozenset[str]:
    """The numbers of a merchant list, whatever their roles (`+233…`, `+233…:cashier`)."""
    numbers = set()
    for entry in merchant_roles(env, name):
        if not _E164.fullmatch(entry):
            problem = f"expected comma-separated E.164 numbers like +233241234567, got {entry!r}"
            raise ConfigError(name, problem)
        numbers.add(entry)
    return frozenset(numbers)


def merchant_roles(env: Mapping[str, str], name: str) -> dict[str, MerchantRole]:
    """Each entry of a merchant list, without its suffix, and its role (CONTRACT §7):
    `:owner`, `:cashier`, or none for an owner. One entry, one role."""
    roles: dict[str, MerchantRole] = {}
    for entry in entries(env, name):
        who, colon, suffix = entry.partition(":")
        who = who.strip()
        try:
            role = MerchantRole(suffix.strip().lower()) if colon else MerchantRole.OWNER
        except ValueError:
            problem = (
                f"expected an entry to end in :owner or :cashier, or in neither; got {entry!r}"
            )
            raise ConfigError(name, problem) from None
        if roles.setdefault(who, role) is not role:
            raise ConfigError(name, f"{who!r} is listed both as owner and as cashier")
    return roles


def cashiers(env: Mapping[str, str], name: str) -> frozenset[str]:
    """The entries of a merchant list that end in `:cashier`, without the suffix."""
    found = merchant_roles(env, name).items()
    return frozenset(who for who, role in found if role is MerchantRole.CASHIER)


def entries(env: Mapping[str, str], name: str) -> list[str]:
    """The non-empty entries of a comma-separated list, spaces around them dropped."""
    return [entry.strip() for entry in env.get(name, "").split(",") if entry.strip()]


def region(env: Mapping[str, str], name: str) -> str | None:
    """An ISO 3166 alpha-2 region phonenumbers knows (`GH`), upper-cased; None when unset."""
    raw = env.get(name)
    if raw is None:
        return None
    if raw.upper() not in phonenumbers.SUPPORTED_REGIONS:
        problem = f"expected a two-letter country code such as GH, NG or KE, got {raw!r}"
        raise ConfigError(name, problem)
    return raw.upper()


def content_sid(env: Mapping[str, str], name: str) -> str | None:
    """A Twilio Content SID (an approved template): HX and 32 hex digits; None when unset."""
    raw = env.get(name)
    if raw is not None and not _CONTENT_SID.fullmatch(raw):
        raise ConfigError(name, f"expected HX and 32 hex digits, got {raw!r}")
    return raw


# CONTRACT §3: a whole number and a unit, "90s", "30m", "24h", "3d".
_DURATION = re.compile(r"([0-9]{1,6})([smhd])")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(env: Mapping[str, str], name: str, default: str) -> timedelta:
    """A positive duration such as `30d`; ConfigError naming the setting otherwise."""
    raw = env.get(name, default).strip()
    found = _DURATION.fullmatch(raw)
    if found is None or int(found[1]) == 0:
        raise ConfigError(name, "expected a whole number above 0 and s, m, h or d, like 30d")
    return timedelta(**{_UNIT[found[2]]: int(found[1])})


def choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of `allowed`, in any case."""
    raw = env.get(name, default)
    if raw.strip().lower() not in allowed:
        raise ConfigError(name, f"expected one of {', '.join(allowed)}, got {raw!r}")
    return raw.strip().lower()


def optional_duration(env: Mapping[str, str], name: str, default: str) -> timedelta | None:
    """A duration, or None for `off`; ConfigError naming the setting otherwise."""
    if env.get(name, default).strip().lower() == "off":
        return None
    return _duration_or_off(env, name, default)


def durations(env: Mapping[str, str], name: str, default: str) -> tuple[timedelta, ...]:
    """Comma-separated durations (`24h,72h`), soonest first without repeats; () for `off`."""
    raw = env.get(name, default).strip()
    if raw.lower() == "off":
        return ()
    found = {_duration_or_off({name: entry.strip()}, name, "") for entry in raw.split(",")}
    return tuple(sorted(found))


def _duration_or_off(env: Mapping[str, str], name: str, default: str) -> timedelta:
    found = _DURATION.fullmatch(env.get(name, default).strip())
    if found is None or int(found[1]) == 0:
        problem = "expected durations like 90s, 30m, 24h or 3d (comma-separated), or off"
        raise ConfigError(name, problem)
    return timedelta(**{_UNIT[found[2]]: int(found[1])})
