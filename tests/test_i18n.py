"""Voices: money, dates and times in the chat's language and the merchant's zone, and the
settings that choose them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot import render
from bot.config import Settings
from bot.errors import ConfigError
from bot.i18n import ENGLISH_VOICE, Voice
from bot.models import Money, Role, Status
from tests.factories import NOW, make_link

FRENCH = Voice("fr")


@pytest.mark.parametrize(
    ("amount", "currency", "english", "french"),
    [
        ("75.00", "GHS", "GH₵75.00", "75,00 GH₵"),
        ("10000.00", "NGN", "₦10,000.00", "10 000,00 ₦"),
        ("2100.00", "KES", "Ksh2,100.00", "2 100,00 Ksh"),
        ("5000", "XOF", "5\u202f000\xa0F\u202fCFA", "5 000 F CFA"),  # English as it always was
        ("1500.50", "UGX", "USh1,500.5", "1 500,5 USh"),  # a digit sent is never rounded away
    ],
)
def test_money_in_each_language(amount: str, currency: str, english: str, french: str) -> None:
    value = Money(Decimal(amount), currency)
    assert (ENGLISH_VOICE.money(value), FRENCH.money(value)) == (english, french)
    assert render.money(value) == english


def test_days_and_moments_in_the_language_and_the_zone() -> None:
    at = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    lagos = Voice("fr", ZoneInfo("Africa/Lagos"))
    assert FRENCH.day(date(2026, 12, 1)) == "1 déc. 2026"
    assert ENGLISH_VOICE.day(date(2026, 12, 1)) == "1 Dec 2026"
    assert lagos.moment(at) == "2 déc. 2026, 00:30"  # the next day in Lagos
    assert ENGLISH_VOICE.zoned_moment(at) == "1 Dec 2026, 23:30 UTC"
    assert lagos.zoned_moment(at) == "2 déc. 2026, 00:30 Africa/Lagos"


def test_expiry_in_french_both_ways() -> None:
    link = make_link(expires_in=timedelta(hours=3))
    assert render.expiry(link.expires_at, NOW, FRENCH).startswith("expire dans 3 heures (")
    later = NOW + timedelta(hours=5)
    assert render.expiry(link.expires_at, later, FRENCH).startswith("a expiré il y a 2 heures (")


def test_english_is_unchanged_when_no_voice_is_given() -> None:
    link = replace(make_link(), status=Status.PROCESSING)
    assert render.status_change(link) == render.status_change(link, Role.MERCHANT, ENGLISH_VOICE)
    assert render.status_change(link).startswith("Order 1001 (Kofi's Kitchen): Processing - ")


@pytest.mark.parametrize("status", list(Status))
def test_every_status_in_french_for_merchants_and_customers(status: Status) -> None:
    link = replace(make_link(), status=status)
    words = render.status_name(status, FRENCH)
    assert words != status.words or (status is Status.PENDING and words == "En attente")
    assert words in render.status_change(link, Role.MERCHANT, FRENCH)
    assert words in render.status_change(link, Role.CUSTOMER, FRENCH)
    assert f"Statut : {words}" in render.invoice_caption(link, NOW, FRENCH)


def test_the_refusal_keeps_the_contracts_words_in_french() -> None:
    assert "not authorized" in render.not_authorized("4242", "TELEGRAM_MERCHANTS", FRENCH)


def test_language_and_zone_settings_default_and_read() -> None:
    default = Settings.from_env({}, dotenv_path=None)
    assert (default.language, default.timezone) == ("en", ZoneInfo("UTC"))
    chosen = Settings.from_env(
        {"PAYBOT_LANGUAGE": "FR", "PAYBOT_TIMEZONE": "Africa/Accra"}, dotenv_path=None
    )
    assert (chosen.language, chosen.timezone) == ("fr", ZoneInfo("Africa/Accra"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAYBOT_TIMEZONE", "Mars/Olympus_Mons"),
        ("PAYBOT_TIMEZONE", "../../etc/passwd"),
        ("PAYBOT_TIMEZONE", "GMT+1 please"),
        ("PAYBOT_LANGUAGE", "de"),
        ("PAYBOT_LANGUAGE", "french"),
    ],
)
def test_a_bad_language_or_zone_stops_start_up_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value}, dotenv_path=None)
    message = str(raised.value)
    assert message.startswith(f"{name}: ") and repr(value) in message and "\n" not in message
