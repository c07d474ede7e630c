"""The outbox's and the inbox's claims and due times read a bounded number of rows,
however long the backlog, and whether or not the tables have statistics yet.

A fresh database has none until autovacuum's first ANALYZE, and meanwhile the
planner takes IS NULL ("unsent", "waiting") to hold for 0.5% of rows: a plan that
suits a handful of waiting rows may then read all of them, for every head, once
thousands wait. These tests time nothing. They run each statement the store runs
under EXPLAIN ANALYZE, on a backlog of BACKLOG rows over 1 and over 100 lanes
with the heads of half the lanes claimed by a live holder (passed over, as while
sends are in flight), and count the rows the plan read from the queue's table:
what each of its nodes on that table returned plus what their filters removed,
over all their loops. A claim first walks the WALK oldest waiting rows, then, if
it found too few heads there, reads each lane's head; a due time reads each
lane's head. Each row is read a few times (found, looked up to be locked,
updated), so the count stays within a small multiple of WALK or of the lanes,
plus the claim's limit. BACKLOG is many times that bound, so a plan that reads
the backlog, by a sequential scan or by walking a whole index, fails here,
however fast this machine runs it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bot.models import ChatRef, InboxEntry, MessageKind, Outgoing, Status
from storage.postgres import PostgresStore, inbox, links, outbox
from tests.storage.contract.support import LEASE, T0, a_link, at

BACKLOG = 10_000
LIMIT = 10
NOW = at(60)  # every row is due
QUEUES = ["outbox", "inbox", "links"]
TRACKED = 2_000  # links polled, all but DUE of them later
DUE = 2 * LIMIT

KINDS = sorted(kind.value for kind in MessageKind)
WALK = LIMIT + outbox.WALK_BEYOND_LIMIT  # the oldest waiting rows a claim looks at first
assert inbox.WALK_BEYOND_LIMIT == outbox.WALK_BEYOND_LIMIT

# (table, statement, its arguments as PostgresOutbox and PostgresInbox pass them,
# whether it reads a bounded walk rather than each lane's head)
STATEMENTS: dict[str, tuple[str, str, tuple[Any, ...], bool]] = {
    "outbox claim, oldest": (
        "outbox",
        outbox.CLAIM_OLDEST,
        (NOW, KINDS, LIMIT, "claimer", NOW + LEASE, WALK),
        True,
    ),
    "outbox claim, heads": (
        "outbox",
        outbox.CLAIM_HEADS,
        (NOW, KINDS, LIMIT, "claimer", NOW + LEASE, []),
        False,
    ),
    "outbox next due": ("outbox", outbox.NEXT_DUE, (), False),
    "inbox claim, oldest": (
        "inbox",
        inbox.CLAIM_OLDEST,
        (NOW, LIMIT, "claimer", NOW + LEASE, WALK),
        True,
    ),
    "inbox claim, heads": (
        "inbox",
        inbox.CLAIM_HEADS,
        (NOW, LIMIT, "claimer", NOW + LEASE, []),
        False,
    ),
    "inbox next due": ("inbox", inbox.NEXT_DUE, (), False),
}


def rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows the plan's nodes on `table` returned or filtered out, over all their loops
    (EXPLAIN gives both as averages per loop)."""
    read = 0
    if plan.get("Relation Name") == table:
        per_loop = (
            plan["Actual Rows"]
            + plan.get("Rows Removed by Filter", 0)
            + plan.get("Rows Removed by Index Recheck", 0)
        )
        read = per_loop * plan["Actual Loops"]
    return read + sum(rows_read(child, table) for child in plan.get("Plans", []))


@pytest.fixture
async def connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A session on the migrated database, its queues kept from autovacuum's ANALYZE
    (so they stay as they are in a new database's first seconds)."""
    store = PostgresStore(url)
    await store.open()
    await store.close()
    opened = await asyncpg.connect(url)
    try:
        for table in QUEUES:
            await opened.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
        yield opened
    finally:
        await opened.close()


async def _fill(url: str, lanes: int) -> None:
    """BACKLOG messages and entries over `lanes` lanes, through the store; then the
    heads of half the lanes, the oldest, claimed by a live holder."""
    messages = [
        Outgoing(ChatRef("telegram", f"chat-{n % lanes}"), MessageKind.TEXT, f"message {n}")
        for n in range(BACKLOG)
    ]
    entries = [
        InboxEntry("cimplify", f"event-{n}", "payment", f"order:{n % lanes}", "{}")
        for n in range(BACKLOG)
    ]
    store = PostgresStore(url)
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.outbox.enqueue(messages, T0)
            await tx.inbox.record(entries, T0)
        async with store.transaction() as tx:
            await tx.outbox.claim_due(NOW, (lanes + 1) // 2, "sender", NOW + LEASE)
            await tx.inbox.claim(NOW, (lanes + 1) // 2, "handler", NOW + LEASE)
    finally:
        await store.close()


async def _plan(connection: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> Any:
    """The executed plan of `sql`, its changes rolled back."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        found = await connection.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args)
    finally:
        await transaction.rollback()
    return json.loads(found)[0]["Plan"]


async def _analyze_or_not(
    connection: asyncpg.Connection, tables: list[str], analyzed: bool
) -> None:
    """Leave the tables without statistics, as in a new database, or analyse them."""
    for table in tables if analyzed else []:
        await connection.execute(f"ANALYZE {table}")
    found = await connection.fetchval(
        "SELECT count(DISTINCT tablename) FROM pg_stats"
        " WHERE schemaname = 'public' AND tablename = ANY($1)",
        tables,
    )
    assert found == (len(tables) if analyzed else 0)


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh", "analyzed"])
@pytest.mark.parametrize("lanes", [1, 100])
async def test_claims_and_due_times_read_the_heads_not_the_backlog(
    url: str, connection: asyncpg.Connection, lanes: int, analyzed: bool
) -> None:
    await _fill(url, lanes)
    await _analyze_or_not(connection, ["outbox", "inbox"], analyzed)

    for name, (table, sql, args, walks) in STATEMENTS.items():
        bound = 3 * (WALK if walks else lanes) + 2 * LIMIT
        assert bound * 10 < BACKLOG
        plan = await _plan(connection, sql, args)
        read = rows_read(plan, table)
        assert read <= bound, f"{name} read {read} rows of {table}: {json.dumps(plan, indent=1)}"
        if args:  # a claim: it took the heads left unclaimed, up to its limit
            assert plan["Actual Rows"] == min(LIMIT, lanes - (lanes + 1) // 2), name


async def _track(url: str) -> None:
    """TRACKED links, DUE of them due at NOW (half of those moving), the rest later."""
    store = PostgresStore(url)
    await store.open()
    try:
        async with store.transaction() as tx:
            for n in range(TRACKED):
                moving = n % 2 == 0
                link = a_link(
                    f"lnk_{n}",
                    order_id=str(n),
                    status=Status.PROCESSING if moving else Status.PENDING,
                    next_poll_at=T0 if n < DUE else at(86_400),
                )
                await tx.links.insert(link)
    finally:
        await store.close()


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh", "analyzed"])
async def test_poll_claims_read_the_due_links_not_every_link(
    url: str, connection: asyncpg.Connection, analyzed: bool
) -> None:
    """The same count for the poll schedule: its claims read the links due (each a
    few times), not every link ever tracked."""
    await _track(url)
    await _analyze_or_not(connection, ["links"], analyzed)

    bound = 4 * DUE
    assert bound * 20 < TRACKED
    for sql in (links.CLAIM_MOVING_FIRST, links.CLAIM_SOONEST):
        plan = await _plan(connection, sql, (NOW, LIMIT, NOW + LEASE))
        read = rows_read(plan, "links")
        assert read <= bound, f"read {read} rows of links: {json.dumps(plan, indent=1)}"
        assert plan["Actual Rows"] == LIMIT


async def test_heads_beyond_the_walked_rows_are_still_claimed_oldest_first(url: str) -> None:
    """A chat whose head is in flight with more than WALK messages behind it hides no
    other chat's head from a claim, and the oldest of those goes first."""
    busy, later_chats = ChatRef("telegram", "busy"), [ChatRef("telegram", c) for c in "xyz"]
    store = PostgresStore(url)
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.outbox.enqueue([Outgoing(busy, MessageKind.TEXT, "m")] * (WALK + 5), T0)
            await tx.inbox.record([_entry("busy", n) for n in range(WALK + 5)], T0)
            await tx.outbox.claim_due(NOW, 1, "sender", NOW + LEASE)
            await tx.inbox.claim(NOW, 1, "handler", NOW + LEASE)
        for chat in later_chats:
            async with store.transaction() as tx:
                await tx.outbox.enqueue([Outgoing(chat, MessageKind.TEXT, "m")], T0)
                await tx.inbox.record([_entry(chat.chat_id, 0)], T0)
        async with store.transaction() as tx:
            messages = await tx.outbox.claim_due(NOW, 2, "claimer", NOW + LEASE)
            entries = await tx.inbox.claim(NOW, 2, "claimer", NOW + LEASE)
    finally:
        await store.close()
    assert [m.message.chat for m in messages] == later_chats[:2]
    assert [item.entry.lane for item in entries] == ["x", "y"]


def _entry(lane: str, n: int) -> InboxEntry:
    return InboxEntry("telegram", f"{lane}-{n}", "update", lane, "{}")
