"""PostgreSQL refusing a transaction halfway through a Telegram command.

PostgreSQL ends a transaction with a deadlock or a serialization failure when
concurrent work collides, and expects the client to try again. A command whose
transaction it ends must not be lost: the inbox keeps it and handles it again once
the store works, and the chat gets one answer. Here a trigger makes PostgreSQL end
the first claim on an order, from outside paybot, as a real collision would.
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
