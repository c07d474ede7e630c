"""PostgreSQL's refusals, as the store raises them: StoreRejected for data that can
never be stored, StoreUnavailable for what may pass, the caller's own errors as they
were; and a transaction whose statement failed never commits in part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import asyncpg
import pytest

from bot.errors import StoreRejected, StoreUnavailable
from bot.models import InboxEntry, LineItem, Link
from storage.postgres import PostgresStore
from storage.postgres.driver_errors import translated_errors
from tests.storage.contract.support import ALICE, LEASE, T0, a_link, an_entry, text_to


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_nul_character_in_an_input_is_refused_and_nothing_of_the_batch_is_kept(
    store: PostgresStore,
) -> None:
    hostile = InboxEntry("telegram", "u2", "update", "lane-a", "before\x00after")
    with pytest.raises(StoreRejected) as refused:
        async with store.transaction() as tx:
            await tx.inbox.record([an_entry("u1"), hostile], T0)
    assert isinstance(refused.value.__cause__, asyncpg.CharacterNotInRepertoireError)
    async with store.transaction() as tx:
        assert await tx.inbox.unfinished_count() == 0


@pytest.mark.parametrize(
    "hostile",
    [
        replace(a_link(), business_name="Ama\x00s Kitchen"),
        replace(
            a_link(), line_items=(LineItem("Jollof\x00", 1, Decimal("75.00"), Decimal("75.00")),)
        ),
    ],
    ids=["in a column", "inside JSON"],
)
async def test_a_nul_character_in_a_link_is_refused(store: PostgresStore, hostile: Link) -> None:
    with pytest.raises(StoreRejected):
        async with store.transaction() as tx:
            await tx.links.insert(hostile)
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_1") is None


async def test_a_value_out_of_range_is_refused(store: PostgresStore) -> None:
    with pytest.raises(StoreRejected, match="out of int64 range"):
        async with store.transaction() as tx:
            await tx.outbox.retry(2**64, T0, "no such message")


async def test_an_error_text_with_a_nul_character_is_stored_all_the_same(
    store: PostgresStore,
) -> None:
    # An error can quote hostile input; failing to record a retry would leave the
    # message claimed until its lease ends, and retried for ever.
    async with store.transaction() as tx:
        [queued] = await tx.outbox.enqueue([text_to(ALICE, "hello")], T0)
        await tx.inbox.record([an_entry("u1")], T0)
        [item] = await tx.inbox.claim(T0, 1, "worker", T0 + LEASE)
    async with store.transaction() as tx:
        await tx.outbox.retry(queued, T0, "chat said \x00")
        await tx.inbox.set_aside(item.seq, T0, "body was \x00")
    async with store.transaction() as tx:
        [again] = await tx.outbox.claim_due(T0, 1, "sender", T0 + LEASE)
        assert again.attempts == 1
        assert await tx.inbox.unfinished_count() == 0


async def test_the_callers_own_error_passes_unchanged_and_nothing_is_written(
    store: PostgresStore,
) -> None:
    with pytest.raises(KeyError, match="boom"):
        async with store.transaction() as tx:
            await tx.links.insert(a_link())
            raise KeyError("boom")
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_1") is None


async def test_a_refusal_caught_inside_the_block_still_fails_the_transaction(
    store: PostgresStore,
) -> None:
    # PostgreSQL aborts the transaction at the failed statement; a COMMIT then would
    # roll back without a word, and the block would believe its first insert kept.
    async with store.transaction() as tx:
        await tx.links.insert(a_link("lnk_0"))
    with pytest.raises(StoreRejected, match="rolled back"):
        async with store.transaction() as tx:
            await tx.links.insert(a_link("lnk_1"))
            with pytest.raises(StoreRejected):
                await tx.links.insert(replace(a_link("lnk_2"), token="plt_lnk_0"))
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_1") is None


async def test_a_naive_datetime_is_refused_before_it_reaches_the_database(
    store: PostgresStore,
) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        async with store.transaction() as tx:
            await tx.contacts.note_inbound(ALICE, datetime(2026, 11, 30, 12, 0))


async def test_the_servers_errors_map_by_their_class(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("SET statement_timeout = '50ms'")
        with pytest.raises(StoreUnavailable, match="57014"), translated_errors():
            await connection.execute("SELECT pg_sleep(5)")
        with pytest.raises(StoreRejected, match="22012"), translated_errors():
            await connection.fetchval("SELECT 1 / 0")
        with pytest.raises(asyncpg.UndefinedTableError), translated_errors():
            await connection.fetchval("SELECT * FROM no_such_table")
    finally:
        await connection.close()


async def test_a_deadlock_is_unavailable_so_that_the_loser_tries_again(url: str) -> None:
    first, second = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        await first.execute(
            "CREATE TABLE pair (id int PRIMARY KEY); INSERT INTO pair VALUES (1), (2)"
        )
        outcomes = await asyncio.gather(
            _lock_both(first, 1, 2), _lock_both(second, 2, 1), return_exceptions=True
        )
    finally:
        await first.close()
        await second.close()
    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "NoneType",
        "StoreUnavailable",
    ]
    [lost] = [outcome for outcome in outcomes if outcome is not None]
    assert isinstance(lost.__cause__, asyncpg.DeadlockDetectedError)


async def _lock_both(connection: asyncpg.Connection, one: int, other: int) -> None:
    """Lock row `one`, wait until the other connection holds its row, then lock `other`."""
    with translated_errors():
        async with connection.transaction():
            await connection.execute("SELECT 1 FROM pair WHERE id = $1 FOR UPDATE", one)
            await connection.execute("SELECT pg_advisory_xact_lock_shared(7)")
            await _until_both_hold_their_rows(connection)
            await connection.execute("SELECT 1 FROM pair WHERE id = $1 FOR UPDATE", other)


async def _until_both_hold_their_rows(connection: asyncpg.Connection) -> None:
    for _ in range(200):
        holders = await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7 AND granted"
        )
        if holders == 2:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the two connections never both held their rows")
