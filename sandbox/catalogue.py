"""What the payment page offers for each currency, and how it writes money.

The sandbox's own list, not Cimplify's: extend it freely. Money is written with
Babel in the locale of the currency's home, as paybot's chats write it, so that
the page and the chat agree to the character (the sandbox cannot import paybot).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_currency


@dataclass(frozen=True)
class Provider:
    code: str  # as the Pay API's `init` takes it
    name: str  # as the customer knows it


_MTN = Provider("mtn", "MTN MoMo")
_AIRTEL = Provider("airtel", "Airtel Money")

MOBILE_MONEY: dict[str, tuple[Provider, ...]] = {
    "GHS": (_MTN, Provider("telecel", "Telecel Cash"), Provider("airteltigo", "AirtelTigo Money")),
    "KES": (Provider("mpesa", "M-Pesa"), _AIRTEL),
    "UGX": (_MTN, _AIRTEL),
    "TZS": (Provider("mpesa", "Vodacom M-Pesa"), _AIRTEL),
    "RWF": (_MTN, _AIRTEL),
}

# Where customers commonly pay by bank transfer rather than mobile money.
BANK_TRANSFER = frozenset({"NGN"})

# The calling code of each currency's home, so that a local number (024 …) can be read.
DIAL_CODES = {"GHS": "233", "KES": "254", "NGN": "234", "UGX": "256", "TZS": "255", "RWF": "250"}

# The same locales as paybot's chats, so that amounts read as they do at home.
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


def providers(currency: str) -> tuple[Provider, ...]:
    return MOBILE_MONEY.get(currency, ())


def provider_name(currency: str, code: str) -> str | None:
    return next((p.name for p in providers(currency) if p.code == code), None)


def name_of(code: str) -> str:
    """A provider's name, whatever the currency (for a Link account's saved methods)."""
    known = (p.name for listed in MOBILE_MONEY.values() for p in listed if p.code == code)
    return next(known, code)


def methods(currency: str) -> tuple[str, ...]:
    """The payment methods offered for `currency`, in the order the page lists them."""
    offered = ["mobile_money"] if providers(currency) else []
    offered.append("card")
    if currency in BANK_TRANSFER:
        offered.append("bank_transfer")
    return tuple(offered)


def format_money(amount: Decimal, currency: str) -> str:
    """`GH₵75.00`, `₦10,000.00`, `Ksh2,300.00`: never rounds away a digit that is there."""
    locale = _CURRENCY_LOCALES.get(currency, "en")
    return format_currency(amount, currency, locale=locale, decimal_quantization=False)
