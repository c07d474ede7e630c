"""PAYBOT_TIMEZONE and PAYBOT_DIGEST_AT: their defaults, their forms, one clear line when wrong."""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.errors import ConfigError


def load(env: dict[str, str]) -> Settings:
    return Settings.from_env(env, dotenv_path=None)


def test_the_day_is_utc_and_the_digest_at_eight_by_default() -> None:
    settings = load({})
    assert settings.timezone == ZoneInfo("UTC")
    assert settings.digest_at == time(20, 0)


def test_a_zone_and_a_time_are_taken() -> None:
    settings = load({"PAYBOT_TIMEZONE": "Africa/Accra", "PAYBOT_DIGEST_AT": "07:30"})
    assert settings.timezone == ZoneInfo("Africa/Accra")
    assert settings.digest_at == time(7, 30)


@pytest.mark.parametrize("off", ["off", "OFF", "Off"])
def test_the_digest_can_be_turned_off(off: str) -> None:
    assert load({"PAYBOT_DIGEST_AT": off}).digest_at is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAYBOT_TIMEZONE", "Mars/Olympus"),
        ("PAYBOT_TIMEZONE", "GMT+25"),
        ("PAYBOT_TIMEZONE", "../../etc/passwd"),
        ("PAYBOT_TIMEZONE", "/usr/share/zoneinfo/UTC"),
        ("PAYBOT_TIMEZONE", "Africa/Accra\x00"),
        ("PAYBOT_DIGEST_AT", "24:00"),
        ("PAYBOT_DIGEST_AT", "8pm"),
        ("PAYBOT_DIGEST_AT", "20:0"),
        ("PAYBOT_DIGEST_AT", "20:60"),
        ("PAYBOT_DIGEST_AT", "٢٠:٠٠"),
        ("PAYBOT_DIGEST_AT", "never"),
    ],
)
def test_a_wrong_value_stops_with_one_line_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load({name: value})
    assert raised.value.setting == name
    assert str(raised.value).startswith(f"{name}: expected ")
    assert "\n" not in str(raised.value)
