"""SQLite migration 0007: links gain `issued_by`, and `cancelled` joins the statuses that
links and their history accept, without losing a link's subscribers or history."""

from __future__ import annotations

import sqlite3

import pytest

from bot.models import ChatRef, Status
from storage.sqlite import SqliteStore
from storage.sqlite.migrate import migrations
from tests.storage.test_sqlite import T0, add_version_1_link, create_database_at, user_version

ALICE = ChatRef("telegram", "100")


async def test_a_version_6_database_takes_cancelled_links_and_keeps_everything(
    db_path: str,
) -> None:
    raw = create_database_at(db_path, 6)
    add_version_1_link(raw, "old_1")
    raw.execute(
        "INSERT INTO subscriptions (link_id, channel, chat_id, role) VALUES"
        " ('old_1', 'telegram', '100', 'merchant')"
    )
    raw.execute(
        "INSERT INTO status_history (link_id, status, at) VALUES ('old_1', 'pending', ?)",
        (T0.isoformat(),),
    )
    raw.commit()
    raw.close()

    store = SqliteStore(db_path)
    await store.open()
    try:
        async with store.transaction() as tx:
            moved = await tx.links.move_status("old_1", Status.PENDING, Status.CANCELLED, T0, None)
        async with store.transaction() as tx:
            link = await tx.links.get("old_1")
            subscribers = await tx.subscriptions.for_link("old_1")
            history = await tx.links.history("old_1")
    finally:
        await store.close()

    assert moved and link is not None and link.status is Status.CANCELLED
    assert link.issued_by is None  # issued before roles: the owners'
    assert [sub.chat for sub in subscribers] == [ALICE]
    assert [status for status, _ in history] == [Status.PENDING, Status.CANCELLED]
    assert user_version(db_path) == len(migrations())
    with sqlite3.connect(db_path) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert check.execute("PRAGMA writable_schema").fetchone() == (0,)
        with pytest.raises(sqlite3.IntegrityError):  # the CHECK still refuses the unknown
            check.execute("UPDATE links SET status = 'refunded' WHERE id = 'old_1'")
    check.close()
