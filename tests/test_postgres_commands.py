"""A Telegram command's transactions, as PostgreSQL itself records them.

The update that carried a command, whichever, is marked handled in the very
transaction that queues its answer (PostgreSQL stamps each row
with the transaction that last wrote it), so no crash can come between the two.
And PostgreSQL ends a transaction with a deadlock or a serialization failure when
concurrent work collides, expecting the client to try again: a command whose
transaction it ends is not lost, but handled again once the store works; the chat
gets one answer, with one link. A trigger makes PostgreSQL end a transaction, from
outside paybot, as a real collision would."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from tests.harness import OTHER_MERCHANT, STRANGER, World, wait_until

# Makes PostgreSQL fail the first write to a table as a deadlock would (SQLSTATE
# 40P01); a sequence counts the writes tried, since it moves even in a transaction
# that fails. `table` is one of this file's own constants.
ONE_DEADLOCK = """
CREATE SEQUENCE writes_tried;
CREATE FUNCTION first_write_deadlocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('writes_tried') = 1 THEN
        RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER first_write_deadlocks BEFORE INSERT OR UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION first_write_deadlocks();
"""


# The order's claim is written before Cimplify is asked; the link, after it answered.
@pytest.mark.parametrize("table", ["order_claims", "links"])
@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # tests/conftest.py
async def test_an_invoice_whose_transaction_postgres_ends_is_answered_once_with_one_link(
    world: World, database: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(ONE_DEADLOCK.format(table=table))
        caplog.set_level(logging.WARNING, logger="bot.inbox")
        world.say("/invoice 1001")
        await world.wait_message("Pay here", timeout=10)
        await world.wait_idle()
        tried = await admin.fetchval("SELECT last_value FROM writes_tried")
    finally:
        await admin.close()

    assert tried >= 2  # the deadlock happened, and a later write went through
    said = [r.getMessage() for r in caplog.records if r.name == "bot.inbox"]
    assert len(said) == 1 and "the store failed (attempt 1), trying again in 1 s" in said[0]
    assert len(world.photos()) == 1
    # Asked again, Cimplify answered with the order's live link (200, not 201).
    made = world.sandbox.ledger.links_of("1001")
    assert len(made) == 1
    assert (await world.link_for("1001")).token == made[0].token


# Makes storing a link take a second: the transaction that stores it has released its
# order's claim already (its first statement), and holds that row until it commits.
SLOW_LINK = """
CREATE FUNCTION link_stored_slowly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(1);
    RETURN NEW;
END $$;
CREATE TRIGGER link_stored_slowly BEFORE INSERT ON links
    FOR EACH ROW EXECUTE FUNCTION link_stored_slowly();
"""


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_claim_granted_as_the_link_commits_answers_with_that_link(
    world: World, database: str
) -> None:
    # Two merchants ask for one order at once. The second looks again while the first
    # stores the link: it finds no link (not committed yet), and its claim waits on the
    # first's row and is granted once that commits, with the link there by then.
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(SLOW_LINK)
        world.say("/invoice 1001")
        world.say("/invoice 1001", user_id=OTHER_MERCHANT)
        first = await world.wait_message("Pay here", timeout=10)
        second = await world.wait_message("Pay here", chat_id=OTHER_MERCHANT, timeout=10)
    finally:
        await admin.close()

    asked = [r for r in world.sandbox.requests if r == ("POST", "/v1/orders/1001/payment-link")]
    assert len(asked) == 1  # Cimplify was asked once
    link = await world.link_for("1001")
    assert link.url in (first.caption or "") and link.url in (second.caption or "")


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


# Notes each answer queued, in a table of its own that nothing rewrites: its rows'
# xmin is the transaction that queued the answer (sending rewrites the outbox row).
NOTE_QUEUED = """
CREATE TABLE queued (id bigint);
CREATE FUNCTION note_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queued VALUES (NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER note_queued AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION note_queued();
"""


# Each merchant command, in the ways it can end: its answer in words, a refusal, a
# usage line, or the component's own answer (a reminder, a digest, a file, the
# invoice and a note after it).
MERCHANT_COMMANDS = (
    "/invoice 1001 tomorrow",
    "/help",
    "/cancel",
    "/cancel 9999",
    "/remind 1001",
    "/renew 1001",
    "/status 1001",
    "/open",
    "/today",
    "/export",
    "/nonsense",
    "/lang fr",
)


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_every_command_is_marked_handled_in_the_transaction_that_queues_its_answer(
    world: World, database: str
) -> None:
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(NOTE_QUEUED)
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        for command in MERCHANT_COMMANDS:
            world.say(command)
        link = await world.link_for("1001")
        world.fake.send_text(f"/start {link.share_code}", user_id=STRANGER)  # a customer
        # The New link button on a live link: answered in words, and the press's toast.
        world.fake.press_button(f"renew:{link.id}", message_id=1)

        async def finished() -> int:
            sql = "SELECT count(finished_at) FROM inbox WHERE source = 'telegram'"
            return int(await admin.fetchval(sql))

        await wait_until(finished, lambda n: n == len(MERCHANT_COMMANDS) + 3, timeout=15)
        await world.wait_idle()
        handled = await admin.fetch("SELECT xmin::text AS tx FROM inbox WHERE source = 'telegram'")
        queued = {row["tx"] for row in await admin.fetch("SELECT xmin::text AS tx FROM queued")}
    finally:
        await admin.close()
    assert len(handled) == len(MERCHANT_COMMANDS) + 3
    assert world.count("still live") == 1  # the press was answered, and once
    assert {row["tx"] for row in handled} <= queued
