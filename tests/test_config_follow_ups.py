"""The follow-up settings (CONTRACT §3): PAYBOT_REMINDERS, PAYBOT_FAILED_REMINDER,
PAYBOT_EXPIRY_WARNING and TWILIO_REMINDER_CONTENT_SID."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.errors import ConfigError


def load(env: dict[str, str], tmp_path: Path) -> Settings:
    return Settings.from_env(env, dotenv_path=str(tmp_path / "no.env"))


def test_defaults(tmp_path: Path) -> None:
    settings = load({}, tmp_path)
    assert settings.reminders == (timedelta(hours=24),)
    assert settings.failed_reminder == timedelta(hours=1)
    assert settings.expiry_warning == timedelta(hours=1)
    assert settings.twilio_reminder_content_sid is None


def test_given_values_and_off(tmp_path: Path) -> None:
    settings = load(
        {
            "PAYBOT_REMINDERS": "3d, 90s,24h,90s",
            "PAYBOT_FAILED_REMINDER": "30m",
            "PAYBOT_EXPIRY_WARNING": "OFF",
            "TWILIO_REMINDER_CONTENT_SID": "HX" + "a" * 32,
        },
        tmp_path,
    )
    # Soonest first, each mark once.
    assert settings.reminders == (timedelta(seconds=90), timedelta(hours=24), timedelta(days=3))
    assert settings.failed_reminder == timedelta(minutes=30)
    assert settings.expiry_warning is None
    assert settings.twilio_reminder_content_sid == "HX" + "a" * 32
    off = load({"PAYBOT_REMINDERS": "off", "PAYBOT_FAILED_REMINDER": "off"}, tmp_path)
    assert off.reminders == ()
    assert off.failed_reminder is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAYBOT_REMINDERS", "24"),
        ("PAYBOT_REMINDERS", "24h;72h"),
        ("PAYBOT_REMINDERS", "24h,,72h"),
        ("PAYBOT_REMINDERS", "0h"),
        ("PAYBOT_REMINDERS", "1w"),
        ("PAYBOT_REMINDERS", "24h,off"),
        ("PAYBOT_FAILED_REMINDER", "1 h"),
        ("PAYBOT_FAILED_REMINDER", "never"),
        ("PAYBOT_FAILED_REMINDER", "-1h"),
        ("PAYBOT_EXPIRY_WARNING", "1.5h"),
        ("PAYBOT_EXPIRY_WARNING", "٣h"),  # Arabic-Indic digit
        ("TWILIO_REMINDER_CONTENT_SID", "HX123"),
    ],
)
def test_a_wrong_value_stops_start_up_naming_the_setting(
    name: str, value: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as raised:
        load({name: value}, tmp_path)
    assert raised.value.setting == name
    assert str(raised.value).startswith(f"{name}: ")
    assert "\n" not in str(raised.value)
