"""What is SQLite's own: the file, WAL, its migrations, one writer at a time.

What every store must do is the contract suite's (tests/storage/contract), run on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.errors import ConfigError
from bot.models import ChatRef, LineItem, Link, MessageKind, Money, Outgoing, Status
from storage.sqlite import SqliteStore
from storage.sqlite.migrate import migrations

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ALICE = ChatRef("telegram", "100")
RANDOM_CODE = re.compile(r"[0-9a-f]{24}")


def make_link(link_id: str = "lnk_1") -> Link:
    return Link(
        id=link_id,
        order_id="1001",
        token=f"plt_{link_id}",
        url=f"https://pay.cimplify.test/p/plt_{link_id}",
        expires_at=T0 + timedelta(hours=24),
        business_name="Ama's Kitchen",
        total=Money(Decimal("75.00"), "GHS"),
        line_items=(LineItem("Jollof", 3, Decimal("25.00"), Decimal("75.00")),),
        status=Status.PENDING,
        created_at=T0,
        status_changed_at=T0,
        share_code=f"share_{link_id}",
    )


def tables(path: str) -> set[str]:
    with sqlite3.connect(path) as raw:
        found = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    return found


def user_version(path: str) -> int:
    with sqlite3.connect(path) as raw:
        version = int(raw.execute("PRAGMA user_version").fetchone()[0])
    raw.close()
    return version


async def test_open_creates_the_schema_in_wal_mode(store: SqliteStore, db_path: str) -> None:
    with sqlite3.connect(db_path) as raw:
        mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
    raw.close()
    assert user_version(db_path) == len(migrations()) >= 5
    assert mode == "wal"
    assert {"links", "subscriptions", "status_history", "outbox", "inbox"} <= tables(db_path)
    assert await store.ping()


async def test_reopening_keeps_data_and_migrates_nothing(db_path: str) -> None:
    first = SqliteStore(db_path)
    await first.open()
    async with first.transaction() as tx:
        await tx.links.insert(make_link())
    await first.close()
    assert not await first.ping()

    again = SqliteStore(db_path)
    await again.open()
    try:
        async with again.transaction() as tx:
            assert await tx.links.get("lnk_1") == make_link()
    finally:
        await again.close()
    assert user_version(db_path) == len(migrations())


async def test_a_database_from_a_newer_paybot_is_refused(db_path: str) -> None:
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA user_version = 999")
    raw.close()
    with pytest.raises(ConfigError, match="newer"):
        await SqliteStore(db_path).open()


async def test_transactions_of_one_store_run_one_at_a_time(store: SqliteStore) -> None:
    trace: list[tuple[str, int]] = []

    async def worker(n: int) -> None:
        async with store.transaction() as tx:
            trace.append(("in", n))
            await asyncio.sleep(0)  # give the other tasks every chance to interleave
            await tx.outbox.enqueue([Outgoing(ALICE, MessageKind.TEXT, f"{n}")], T0)
            trace.append(("out", n))

    await asyncio.gather(*(worker(n) for n in range(20)))
    # Each task's "in" is directly followed by its own "out": SQLite's one writer.
    assert all(trace[i][1] == trace[i + 1][1] for i in range(0, len(trace), 2))


# migrations from older paybots


def create_database_at(path: str, version: int) -> sqlite3.Connection:
    raw = sqlite3.connect(path)
    for _, script in migrations()[:version]:
        raw.executescript(script)
    raw.execute(f"PRAGMA user_version = {version:d}")
    return raw


def add_version_1_link(raw: sqlite3.Connection, link_id: str) -> None:
    raw.execute(
        "INSERT INTO links (id, order_id, token, url, expires_at, business_name, currency,"
        " total, line_items, status, created_at, status_changed_at)"
        " VALUES (?, '1001', ?, 'https://pay.test/p', ?, 'Ama', 'GHS', '75.00', '[]',"
        " 'pending', ?, ?)",
        (link_id, f"plt_{link_id}", T0.isoformat(), T0.isoformat(), T0.isoformat()),
    )


async def test_a_version_1_database_is_migrated_and_its_links_get_share_codes(
    db_path: str,
) -> None:
    raw = create_database_at(db_path, 1)
    add_version_1_link(raw, "old_1")
    add_version_1_link(raw, "old_2")
    raw.commit()
    raw.close()
    store = SqliteStore(db_path)
    await store.open()
    try:
        async with store.transaction() as tx:
            first, second = await tx.links.get("old_1"), await tx.links.get("old_2")
            assert first is not None and second is not None
            found = await tx.links.by_share_code(first.share_code)
    finally:
        await store.close()
    assert RANDOM_CODE.fullmatch(first.share_code) and first.share_code != second.share_code
    assert found == first
    assert user_version(db_path) == len(migrations())


def add_version_4_inputs(raw: sqlite3.Connection) -> None:
    """What the three intakes of version 4 held: one of each handled, one of each not."""
    event = json.dumps({"id": "evt_1", "type": "payment.succeeded", "data": {}})
    for event_id, applied in (("evt_1", None), ("evt_0", T0.isoformat())):
        raw.execute(
            "INSERT INTO webhook_events (id, type, created_at, order_id, body, received_at,"
            " applied_at) VALUES (?, 'payment.succeeded', ?, '1001', ?, ?, ?)",
            (event_id, T0.isoformat(), event.encode(), T0.isoformat(), applied),
        )
    for sid, handled in (("SM1", None), ("SM0", T0.isoformat())):
        raw.execute(
            "INSERT INTO inbound_messages (channel, chat_id, message_id, text, received_at,"
            " handled_at) VALUES ('whatsapp', '+233200000001', ?, 'invoice 1001', ?, ?)",
            (sid, T0.isoformat(), handled),
        )
    update = json.dumps({"update_id": 7, "message": {"chat": {"id": 100}, "text": "/help"}})
    raw.execute(
        "INSERT INTO telegram_updates (update_id, body, received_at) VALUES (7, ?, ?)",
        (update, T0.isoformat()),
    )


async def test_inputs_a_version_4_paybot_had_not_handled_move_into_the_inbox(
    db_path: str,
) -> None:
    raw = create_database_at(db_path, 4)
    add_version_4_inputs(raw)
    raw.commit()
    raw.close()
    store = SqliteStore(db_path)
    await store.open()
    try:
        async with store.transaction() as tx:
            claimed = await tx.inbox.claim(T0, 10, "test", T0 + timedelta(seconds=5))
    finally:
        await store.close()
    moved = {(i.entry.source, i.entry.source_id, i.entry.kind, i.entry.lane) for i in claimed}
    assert moved == {
        ("cimplify", "evt_1", "cimplify.event", "order:1001"),
        ("twilio", "SM1", "whatsapp.message", "whatsapp:+233200000001"),
        ("telegram", "7", "telegram.update", "telegram:100"),
    }
    bodies = {i.entry.source_id: json.loads(i.entry.body) for i in claimed}
    assert bodies["SM1"] == {"from": "+233200000001", "text": "invoice 1001"}
    assert bodies["evt_1"]["id"] == "evt_1"
    assert not {"webhook_events", "inbound_messages", "telegram_updates"} & tables(db_path)
