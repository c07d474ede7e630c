"""How paybot speaks in one chat: its language, and the merchant's time zone.

Every sentence a chat sees goes through `Voice.t` (or `Voice.tn` when it counts),
with its English text as the message id and `{names}` for what it carries, so that
one catalogue can give it in another language. Money and moments are formatted by
the voice too, since `75,00 GH₵` and `1 déc. 2026` are the language's, not the
sentence's.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime

from bot.models import ChatRef, Money
from bot.ports import Tx

ENGLISH = "en"
LANGUAGES = (ENGLISH, "fr")
UTC_ZONE = ZoneInfo("UTC")


def _translations(language: str) -> gettext.NullTranslations:
    """The catalogue of `language`; English is the message ids themselves."""
    return gettext.NullTranslations()


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
        from bot import render  # the English formats live there until the catalogue does

        return render.money(value)

    def moment(self, at: datetime) -> str:
        """A date and time in the merchant's zone: `1 Dec 2026, 14:05`."""
        return format_datetime(at, "d MMM y, HH:mm", tzinfo=self.zone, locale=self.language)

    def day(self, on: date) -> str:
        """`1 Dec 2026`."""
        return format_date(on, "d MMM y", locale=self.language)


class Voices:
    """The voice of each chat: its own language once it has chosen one, else the default."""

    def __init__(self, default: Voice) -> None:
        self.default = default

    async def of(self, tx: Tx, chat: ChatRef) -> Voice:
        return self.default
