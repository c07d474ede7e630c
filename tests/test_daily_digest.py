"""The daily digest on the real stores: several instances at the hour send it once a chat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.day import DailyDigest
from bot.i18n import Voice, Voices
from bot.models import Role, Subscription
from bot.ports import Store
from storage import store_for
from tests.storage.contract.support import ALICE, BOB, CAROL, a_link

ZONE = ZoneInfo("Africa/Accra")
ISSUED = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
EVENING = datetime(2026, 12, 2, 20, 0, 1, tzinfo=UTC)


@pytest.fixture
async def stores(database: str) -> AsyncIterator[list[Store]]:
    """Three stores on one database: three instances, as far as the store knows."""
    opened = [store_for(database) for _ in range(3)]
    for store in opened:
        await store.open()
    yield opened
    for store in opened:
        await store.close()


def digest_on(store: Store, now: datetime) -> DailyDigest:
    return DailyDigest(
        store, lambda: now, Voices(Voice(zone=ZONE)), ZONE, time(20, 0), lambda: None
    )


async def test_instances_at_the_hour_together_send_each_merchant_one_digest(
    stores: list[Store],
) -> None:
    async with stores[0].transaction() as tx:
        await tx.links.insert(a_link("lnk_1", created=ISSUED))
        await tx.subscriptions.add(Subscription("lnk_1", ALICE))
        await tx.subscriptions.add(Subscription("lnk_1", BOB))
        await tx.subscriptions.add(Subscription("lnk_1", CAROL, Role.CUSTOMER))
    sent = await asyncio.gather(*(digest_on(s, EVENING).send_due() for s in stores for _ in (1, 2)))
    assert sum(sent) == 2
    async with stores[0].transaction() as tx:
        for chat in (ALICE, BOB):
            [digest] = await tx.outbox.unsent_for(chat)
            assert digest.message.text.startswith(
                "Your daily digest, 2 Dec 2026:\nIssued: 1 link\n"
            )
        assert await tx.outbox.unsent_for(CAROL) == []  # a customer gets no digest


async def test_a_link_issued_after_the_hour_brings_no_digest_that_day(stores: list[Store]) -> None:
    async with stores[0].transaction() as tx:
        await tx.links.insert(a_link("lnk_1", created=EVENING + timedelta(minutes=5)))
        await tx.subscriptions.add(Subscription("lnk_1", ALICE))
    assert await digest_on(stores[0], EVENING + timedelta(minutes=10)).send_due() == 0
