"""bot/access.py: which merchant may see which link, and roles read from the settings."""

from __future__ import annotations

from dataclasses import replace

from bot.access import Merchant, MerchantRole, issuer_id, may_see, merchant_role
from tests.storage.contract.support import a_link

OWNER = Merchant("telegram:1", MerchantRole.OWNER)
CASHIER = Merchant("telegram:2", MerchantRole.CASHIER)
OTHER_CASHIER = Merchant("whatsapp:+233200000003", MerchantRole.CASHIER)


def test_an_owner_sees_every_link_a_cashier_only_their_own() -> None:
    cashiers = replace(a_link(), issued_by=CASHIER.id)
    owners = replace(a_link(), issued_by=OWNER.id)
    assert may_see(OWNER, cashiers) and may_see(OWNER, owners)
    assert may_see(CASHIER, cashiers)
    assert not may_see(CASHIER, owners)
    assert not may_see(OTHER_CASHIER, cashiers)


def test_a_link_from_before_roles_is_the_owners_only() -> None:
    legacy = a_link()
    assert legacy.issued_by is None
    assert may_see(OWNER, legacy)
    assert not may_see(CASHIER, legacy)


def test_a_cashier_lists_only_their_own_links_an_owner_every_link() -> None:
    assert OWNER.own_links_only is None
    assert CASHIER.own_links_only == "telegram:2"


def test_roles_by_the_settings() -> None:
    merchants, cashiers = frozenset({1, 2}), frozenset({2})
    assert merchant_role(1, merchants, cashiers) is MerchantRole.OWNER
    assert merchant_role(2, merchants, cashiers) is MerchantRole.CASHIER
    assert merchant_role(3, merchants, cashiers) is None
    assert merchant_role(3, merchants, frozenset({3})) is None  # a cashier is a merchant first


def test_the_issuer_id_names_the_channel_and_the_sender() -> None:
    assert issuer_id("telegram", "7001") == "telegram:7001"
    assert issuer_id("whatsapp", "+233241234567") == "whatsapp:+233241234567"
