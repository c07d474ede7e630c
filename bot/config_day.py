"""Readers of the merchant's-day settings (CONTRACT §3): PAYBOT_TIMEZONE, PAYBOT_DIGEST_AT.

Each raises `ConfigError` naming its setting, as the readers of bot/config_readers.py do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

# [0-9] rather than \d: \d also matches non-ASCII digits such as "٣".
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# IANA names: Area/Location, letters, digits, "_", "-", "+"; no "..", no leading "/".
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")


def time_zone(env: Mapping[str, str], name: str, default: str) -> ZoneInfo:
    """An IANA zone such as Africa/Accra."""
    raw = env.get(name, default)
    problem = f"expected an IANA time zone such as Africa/Accra or UTC, got {raw!r}"
    if not _ZONE_NAME.fullmatch(raw):
        raise ConfigError(name, problem)
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(name, problem) from None


def time_of_day_or_off(env: Mapping[str, str], name: str, default: str) -> time | None:
    """`HH:MM` on the 24-hour clock, or `off` (None)."""
    raw = env.get(name, default)
    if raw.lower() == "off":
        return None
    found = _HH_MM.fullmatch(raw)
    if found is None:
        problem = f"expected HH:MM on the 24-hour clock, like 20:00, or off, got {raw!r}"
        raise ConfigError(name, problem)
    return time(int(found[1]), int(found[2]))
