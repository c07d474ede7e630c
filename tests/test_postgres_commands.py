"""A Telegram command's transactions, as PostgreSQL itself records them.

The update that carried an /invoice is marked handled in the very transaction that
queues its answer (PostgreSQL stamps each row with the transaction that last wrote
it), so no crash can come between the two. And PostgreSQL ends a transaction with a
deadlock or a serialization failure when concurrent work collides, expecting the
client to try again: a command whose transaction it ends is not lost, but handled
again once the store works, and the chat gets one answer. A trigger makes PostgreSQL
end the first claim on an order, from outside paybot, as a real collision would.
"""

from __future__ import annotations

import asyncpg
import pytest

from tests.harness import World

# Makes PostgreSQL fail the first claim on an order as a deadlock would (SQLSTATE
# 40P01); a sequence counts the claims, since it moves even in a transaction that fails.
ONE_DEADLOCK = """
CREATE SEQUENCE claims_tried;
CREATE FUNCTION first_claim_deadlocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('claims_tried') = 1 THEN
        RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER first_claim_deadlocks BEFORE INSERT OR UPDATE ON order_claims
    FOR EACH ROW EXECUTE FUNCTION first_claim_deadlocks();
"""


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # tests/conftest.py
async def test_a_command_whose_transaction_postgres_ends_is_answered_once_after(
    world: World, database: str
) -> None:
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(ONE_DEADLOCK)
        world.say("/invoice 1001")
        await world.wait_message("Pay here", timeout=10)
        await world.wait_idle()
        claims = await admin.fetchval("SELECT last_value FROM claims_tried")
    finally:
        await admin.close()

    assert claims >= 2  # the deadlock happened, and a later claim went through
    assert len(world.photos()) == 1
    assert len(world.sandbox.ledger.links_of("1001")) == 1


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_an_invoice_is_marked_handled_in_the_transaction_that_queues_its_photo(
    world: World, database: str
) -> None:
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    world.say("/invoice 1001")  # answered from the link paybot has
    await world.wait_idle()
    await world.fake.wait_for(lambda: len(world.photos()) == 2 or None)

    admin = await asyncpg.connect(database)
    try:
        # xmin: the transaction that wrote the row last. The new link's follow-ups are
        # written once, when it is stored; the merchant's asks budget, by each
        # /invoice's first look (which answers the second from the store). Outbox and
        # subscription rows cannot say: sending the photo rewrites them.
        handled = await admin.fetch(
            "SELECT xmin::text AS tx FROM inbox WHERE source = 'telegram' ORDER BY seq"
        )
        stored = await admin.fetch("SELECT DISTINCT xmin::text AS tx FROM follow_ups")
        asked = await admin.fetchval("SELECT xmin::text FROM limits WHERE key LIKE 'asks:%'")
    finally:
        await admin.close()
    assert len(stored) == 1  # one transaction stored the link and its follow-ups
    assert [row["tx"] for row in handled] == [stored[0]["tx"], asked]
