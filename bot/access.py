"""Merchants' roles (CONTRACT §7): an owner sees and acts on every link; a cashier
only on the links they issued.

One rule for every command: `may_see`. A link issued before roles existed
(`issued_by` None) belongs to owners only.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from bot.models import Link


class MerchantRole(StrEnum):
    """The suffix of an entry of TELEGRAM_MERCHANTS / WHATSAPP_MERCHANTS."""

    OWNER = "owner"  # also an entry without a suffix: nothing changes for today's merchants
    CASHIER = "cashier"


@dataclass(frozen=True)
class Merchant:
    """A merchant as a command's sender: `id` is `issuer_id(channel, sender)`."""

    id: str
    role: MerchantRole = MerchantRole.OWNER

    @property
    def is_owner(self) -> bool:
        return self.role is MerchantRole.OWNER

    @property
    def own_links_only(self) -> str | None:
        """The `issued_by` filter for a listing of this merchant's links (None: every link)."""
        return None if self.is_owner else self.id


_Id = TypeVar("_Id")


def merchant_role(
    sender: _Id, merchants: Container[_Id], cashiers: Container[_Id]
) -> MerchantRole | None:
    """The sender's role by the settings (the merchants, and those of them listed with
    `:cashier`); None for a sender who is no merchant."""
    if sender not in merchants:
        return None
    return MerchantRole.CASHIER if sender in cashiers else MerchantRole.OWNER


def issuer_id(channel: str, sender: str) -> str:
    """What `links.issued_by` holds: `telegram:7001`, `whatsapp:+233241234567`."""
    return f"{channel}:{sender}"


def may_see(merchant: Merchant, link: Link) -> bool:
    """Whether the merchant may see the link's details and act on it."""
    return merchant.is_owner or link.issued_by == merchant.id
