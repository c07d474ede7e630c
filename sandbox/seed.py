"""The orders a fresh sandbox knows: several businesses, currencies and states.

Each total is stated, not computed, the way Cimplify would send it; a test checks
that every stated total equals the sum of its line items.
"""

from __future__ import annotations

from decimal import Decimal

from sandbox.records import LineItem, Order, OrderState

KOFIS_KITCHEN = "Kofi's Kitchen"


def _item(name: str, quantity: int, unit_price: str) -> LineItem:
    return LineItem(name=name, quantity=quantity, unit_price=Decimal(unit_price))


# 1006: a catering order long enough to test captions that must be shortened.
_CATERING_DISHES = (
    ("Jollof rice, party tray", 4, "180.00"),
    ("Fried rice, party tray", 3, "170.00"),
    ("Waakye with shito", 20, "25.00"),
    ("Banku and tilapia", 15, "65.00"),
    ("Fufu and light soup", 10, "55.00"),
    ("Kelewele", 12, "15.00"),
    ("Red red with plantain", 8, "30.00"),
    ("Chicken kebab skewers", 40, "12.50"),
    ("Beef suya platter", 5, "95.00"),
    ("Spring rolls, dozen", 6, "48.00"),
)
_CATERING_VENUES = ("Main hall", "Garden tent", "VIP table", "Staff room")
_CATERING_ITEMS = tuple(
    _item(f"{name} ({venue})", quantity, price)
    for venue in _CATERING_VENUES
    for name, quantity, price in _CATERING_DISHES
)


def seed_orders() -> list[Order]:
    """Fresh, mutable copies of the seeded orders (each sandbox gets its own)."""
    return [
        Order(
            "1001",
            KOFIS_KITCHEN,
            "GHS",
            (_item("Jollof rice", 2, "30.00"), _item("Sobolo", 1, "15.00")),
            Decimal("75.00"),
        ),
        Order(
            "1002",
            KOFIS_KITCHEN,
            "GHS",
            (
                _item("Waakye", 1, "25.00"),
                _item("Kelewele", 2, "10.00"),
                _item("Bottled water", 2, "3.50"),
            ),
            Decimal("52.00"),
        ),
        Order(
            "2001",
            "Mama Put Lagos",
            "NGN",
            (_item("Pounded yam and egusi", 2, "3500.00"), _item("Suya", 1, "3000.00")),
            Decimal("10000.00"),
        ),
        Order(
            "3001",
            "Nyama Choma Corner, Nairobi",
            "KES",
            (
                _item("Nyama choma (1 kg)", 1, "1800.00"),
                _item("Ugali", 2, "150.00"),
                _item("Sukuma wiki", 2, "100.00"),
            ),
            Decimal("2300.00"),
        ),
        Order(
            "1004",
            KOFIS_KITCHEN,
            "GHS",
            (_item("Red red", 1, "35.00"),),
            Decimal("35.00"),
            OrderState.PAID,
        ),
        Order(
            "1005",
            KOFIS_KITCHEN,
            "GHS",
            (_item("Fufu and light soup", 1, "40.00"),),
            Decimal("40.00"),
            OrderState.CANCELLED,
        ),
        Order("1006", "Accra Events Catering", "GHS", _CATERING_ITEMS, Decimal("19752.00")),
    ]
