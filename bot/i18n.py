"""How paybot speaks in one chat: its language, and the merchant's time zone.

Every sentence a chat sees goes through `Voice.t` (or `Voice.tn` when it counts),
with its English text as the message id and `{names}` for what it carries, so that
one catalogue can give it in another language. Money and moments are formatted by
the voice too, since `75,00 GH₵` and `1 déc. 2026` are the language's, not the
sentence's.

The catalogue is `bot/locale/<language>/LC_MESSAGES/paybot.po`, compiled in memory
the first time a language is spoken: the .po is the one file translators edit and the
package ships, so there is no .mo to rebuild, forget or let go stale.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, get_currency_symbol
from babel.support import Translations

from bot.models import ChatRef, Money
from bot.ports import Tx

ENGLISH = "en"
FRENCH = "fr"
LANGUAGES = (ENGLISH, FRENCH)
UTC_ZONE = ZoneInfo("UTC")
DOMAIN = "paybot"

# A locale per currency, so that amounts read as they do at home: GH₵, ₦, Ksh.
_CURRENCY_LOCALES = {
    "GHS": "en_GH",
    "NGN": "en_NG",
    "KES": "en_KE",
    "UGX": "en_UG",
    "TZS": "en_TZ",
    "RWF": "en_RW",
    "ZAR": "en_ZA",
    "XOF": "fr_SN",
    "XAF": "fr_CM",
    "EGP": "ar_EG",
}


_PLAIN_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})


def catalogue_path(language: str) -> Path:
    """Where the catalogue of `language` lives, beside this module (package data)."""
    return Path(__file__).parent / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def N_(message: str) -> str:
    """Marks a sentence kept for later (an error's reason) for the catalogue's extractor;
    whoever says it to a chat translates it then: `voice.t(reason)`."""
    return message


@functools.cache
def _translations(language: str) -> gettext.NullTranslations:
    """The catalogue of `language`, compiled once; English is the message ids themselves."""
    if language == ENGLISH:
        return gettext.NullTranslations()
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def load_catalogues() -> None:
    """Compile every catalogue now (at start): a missing or broken one stops start-up,
    rather than the first French chat."""
    for language in LANGUAGES:
        _translations(language)


def money_in(value: Money, language: str) -> str:
    """`GH₵75.00` in English, `75,00 GH₵` in French; never rounds away a digit."""
    home = _CURRENCY_LOCALES.get(value.currency, ENGLISH)
    if language == ENGLISH:  # as at home, as paybot always wrote it
        return _currency(value, home)
    # The language's layout, with the symbol people use at home (French Babel writes `GHS`).
    layout = home if home.startswith(f"{language}_") else language
    symbol, at_home = (get_currency_symbol(value.currency, loc) for loc in (layout, home))
    # Plain spaces for CLDR's no-break ones: chats are plain text, and `75,00 GH₵` is what
    # people type when they search their chat for it.
    return _currency(value, layout).replace(symbol, at_home).translate(_PLAIN_SPACES)


def _currency(value: Money, locale: str) -> str:
    return format_currency(value.amount, value.currency, locale=locale, decimal_quantization=False)


@dataclass(frozen=True)
class Voice:
    language: str = ENGLISH
    zone: ZoneInfo = field(default=UTC_ZONE)

    def t(self, message: str, /, **values: object) -> str:
        """`message` in this chat's language, its `{names}` filled in from `values`."""
        return _translations(self.language).gettext(message).format(**values)

    def tn(self, singular: str, plural: str, count: int, /, **values: object) -> str:
        """As `t`, choosing the form for `count` (given to the text as `{count}`)."""
        text = _translations(self.language).ngettext(singular, plural, count)
        return text.format(count=count, **values)

    def money(self, value: Money) -> str:
        return money_in(value, self.language)

    def moment(self, at: datetime) -> str:
        """A date and time in the merchant's zone: `1 Dec 2026, 14:05`."""
        return format_datetime(at, "d MMM y, HH:mm", tzinfo=self.zone, locale=self.language)

    def zoned_moment(self, at: datetime) -> str:
        """`moment` with its zone named, for a chat that cannot guess it: `..., 14:05 UTC`."""
        return f"{self.moment(at)} {self.zone_name}"

    @property
    def zone_name(self) -> str:
        return str(self.zone.key)

    def day(self, on: date) -> str:
        """`1 Dec 2026`."""
        return format_date(on, "d MMM y", locale=self.language)

    def span(self, delta: timedelta) -> str:
        """`in 6 days` / `5 minutes ago`, in this language."""
        return format_timedelta(delta, locale=self.language, add_direction=True)


ENGLISH_VOICE = Voice()
# A message not yet said: it becomes text in the voice of the chat it is queued for.
Words = Callable[[Voice], str]


class Voices:
    """The voice of each chat: its own language once it has chosen one, else the default."""

    def __init__(self, default: Voice) -> None:
        self.default = default

    async def of(self, tx: Tx, chat: ChatRef) -> Voice:
        language = await tx.chat_settings.language_of(chat)
        if language is None or language == self.default.language:
            return self.default
        return Voice(language, self.default.zone)

    def speaking(self, language: str) -> Voice:
        """The default voice in another language (a chat that has just chosen it)."""
        return Voice(language, self.default.zone)


ENGLISH_VOICES = Voices(ENGLISH_VOICE)
