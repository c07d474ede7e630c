"""Phone numbers as WhatsApp addresses them: E.164, read with phonenumbers."""

from __future__ import annotations

import phonenumbers

from bot.errors import InvalidPhone
from bot.i18n import N_

# Longer than any real number typed with spaces and dashes; bounds the parser's work.
_MAX_LENGTH = 32


def parse_phone(text: str, default_region: str | None) -> str:
    """`+233241234567` from what a merchant typed, or InvalidPhone saying why not.

    A number without `+` is read in `default_region` (WHATSAPP_DEFAULT_REGION);
    with no default region it must start with `+` and the country code.
    """
    if len(text) > _MAX_LENGTH:
        raise InvalidPhone(text, N_("that is too long for a phone number"))
    region = None if text.startswith("+") else default_region
    if region is None and not text.startswith("+"):
        why = N_("write the number with + and the country code, like +233241234567")
        raise InvalidPhone(text, why)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(text, N_("that is not a phone number")) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(text, N_("that number does not exist in its country's numbering plan"))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
