"""The database locked or full when a webhook arrives: 503, never a 2xx without a durable write.

Cimplify delivers again whatever was not acknowledged; the redelivery, once the
fault clears, must be stored, acknowledged and applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.flow_events import event
from tests.harness import SECRET_KEY, WEBHOOK_SECRET, World, wait_until
from tests.process import Paybot, clean_env, free_port, start_paybot

BUSY_TIMEOUT = 5.0  # storage/sqlite/__init__.py's PRAGMA busy_timeout, in seconds
# Each file paybot writes may grow to this: room for the schema (about 120 KiB of
# write-ahead log) and a few 60 KiB events (about 200 KiB of log each: marking one
# applied rewrites its row), then writes fail as on a full disk.
FILE_LIMIT = 1024 * 1024
PADDING = 60_000  # characters: an event of about 60 KiB, under the 64 KiB body cap


@pytest.fixture
def world(sqlite_world: World) -> World:
    """SQLite's own faults (a lock held by another process, a full disk file)."""
    return sqlite_world


def now() -> float:
    return asyncio.get_running_loop().time()


async def post(world: World, body: dict[str, Any]) -> httpx.Response:
    """The event, signed, with patience for a store that waits out its busy timeout: each
    writer in line before it (poller, outbox, roles, follow-ups, digest) takes 5 s in turn."""
    raw = json.dumps(body).encode()
    headers = world.sandbox.sign(raw, event_id=str(body["id"]))
    return await world.http.post(world.webhook_url, content=raw, headers=headers, timeout=60)


@contextlib.contextmanager
def database_locked(path: str) -> Iterator[sqlite3.Connection]:
    """Another process's writer holding the database until the block ends."""
    holder = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        yield holder
    finally:
        holder.close()  # rolls back, releasing the lock


async def store_refused(caplog: pytest.LogCaptureFixture, *lines: str) -> None:
    """Until one of `lines` is logged: a part of the bot found the store failing it."""

    async def count() -> int:
        return sum(any(line in r.getMessage() for line in lines) for r in caplog.records)

    # Each transaction queued ahead waits out the busy timeout: allow a few.
    await wait_until(count, lambda n: n >= 1, timeout=4 * BUSY_TIMEOUT)


async def test_a_webhook_on_a_locked_database_gets_503_then_is_applied_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot")
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    link = await world.link_for("1001")
    body = event("payment.succeeded", token=link.token, event_id="evt_locked")

    await world.wait_idle()  # the invoice recorded as sent: nothing left to send again
    with database_locked(world.settings.database) as holder:
        # In a thread: the bot may be mid-transaction, and its commit needs this loop.
        await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
        started = now()
        health = asyncio.create_task(world.http.get(f"{world.local_url}/healthz", timeout=30))
        refused = await post(world, body)
        waited = now() - started
        world.sandbox.set_status(link.token, "processing")  # for the poller, once it can say it
        # Held until the poller and the sender were refused too, as in a long lock: the
        # outbox fails a transaction, or cannot renew its role and stops sending first.
        await store_refused(caplog, "poller: the store failed")
        await store_refused(caplog, "outbox: the store failed", "roles: could not renew sender")
        answered = await health

    assert refused.status_code == 503
    assert waited >= BUSY_TIMEOUT - 0.1  # SQLite waited out its busy timeout first
    # The store's ping reads no table: it answers, once the waiting writers let it.
    assert answered.status_code == 200 and answered.text == "ok"
    assert "evt_locked" not in stored_events(Path(world.settings.database))
    # The poller and the outbox outlived the locked store: the change is announced.
    await world.wait_message("Processing")

    again = await post(world, body)
    assert again.status_code == 200
    assert again.json() == {"received": "evt_locked", "duplicate": False}
    await world.wait_message("Confirmed")
    await world.wait_idle()
    assert world.count("Confirmed") == 1


# ---- a full disk, in a real process whose files cannot grow past FILE_LIMIT


@contextlib.contextmanager
def paybot_with_file_limit(env: dict[str, str], cwd: Path, limit: int) -> Iterator[Paybot]:
    """`paybot run` under RLIMIT_FSIZE: past `limit` bytes a write fails with EFBIG.

    Python ignores SIGXFSZ, so the write fails rather than killing the process.
    SQLite reports EFBIG as "disk I/O error" (it keeps SQLITE_FULL for ENOSPC): the
    same failed write as on a full disk, told in other words.
    """
    # Only the soft limit: this test lifts it later, which needs no privilege.
    limited = (
        "import resource; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))"
    )
    with start_paybot(["run"], env, cwd, prelude=limited) as paybot:
        yield paybot


def signed_post(base: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    event_id = str(body["id"])
    moment = datetime.now(UTC)
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(WEBHOOK_SECRET).sign(event_id, moment, raw.decode()),
    }
    return httpx.post(f"{base}/webhooks/cimplify", content=raw, headers=headers, timeout=10)


def big_event(number: int) -> dict[str, Any]:
    # Unknown top-level fields are ignored by the verifier and stored with the body.
    return event("payment.succeeded", event_id=f"evt_big_{number}") | {"padding": "x" * PADDING}


def fill(base: str) -> tuple[list[str], dict[str, Any]]:
    """Post big events until one is refused: the acknowledged ids, and the refused event."""
    acknowledged = []
    for number in range(20):
        body = big_event(number)
        answer = signed_post(base, body)
        if answer.status_code != 200:
            assert answer.status_code == 503, answer.text
            return acknowledged, body
        acknowledged.append(str(body["id"]))
    raise AssertionError(f"20 events of {PADDING} bytes fitted under {FILE_LIMIT} bytes")


def stored_events(database: Path) -> dict[str, str | None]:
    """Cimplify events in the inbox: id -> when it was applied (None: not yet)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        found = db.execute("SELECT source_id, finished_at FROM inbox WHERE source = 'cimplify'")
        return dict(found.fetchall())


def all_applied(database: Path, deadline: float) -> None:
    """Until every stored event is applied; fails at `deadline` (time.monotonic)."""
    while any(applied is None for applied in stored_events(database).values()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not all applied: {stored_events(database)}")
        time.sleep(0.05)  # a real process applies them; look again shortly


def test_a_full_disk_answers_503_and_keeps_every_acknowledged_event(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        tmp_path,
        PAYBOT_HTTP_PORT=str(port),
        CIMPLIFY_API_BASE=f"http://127.0.0.1:{free_port()}",  # never called: no link is made
        CIMPLIFY_SECRET_KEY=SECRET_KEY,
        CIMPLIFY_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    with paybot_with_file_limit(env, tmp_path, FILE_LIMIT) as paybot:
        paybot.wait_for("stderr", f"paybot is up: {base}")
        acknowledged, refused = fill(base)
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200  # still serving
        # The disk is freed: the limit is lifted on the running process.
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(paybot.process.pid, resource.RLIMIT_FSIZE, unlimited)
        again = signed_post(base, refused)
        # Applied by the inbox once the disk is free: events whose handling failed are
        # retried, and one whose claim could not even be released is taken again when
        # its lease ends.
        all_applied(tmp_path / "paybot.db", deadline=time.monotonic() + 30)
        paybot.process.send_signal(signal.SIGTERM)
        assert paybot.finish() == 0, paybot.lines["stderr"][-20:]

    assert len(acknowledged) >= 2, "FILE_LIMIT leaves too little room to fill"
    assert again.status_code == 200
    assert again.json() == {"received": refused["id"], "duplicate": False}
    stored = stored_events(tmp_path / "paybot.db")
    assert set(stored) == {*acknowledged, refused["id"]}  # every 2xx was durable
    # Every one applied, the refused one too once redelivered. (An event stored just
    # before the disk filled may have had its first application rolled back, since
    # marking it applied could not be written: it was applied again, whole, later.)
    assert all(applied is not None for applied in stored.values())
    log = paybot.lines["stderr"]
    assert any(f"event {refused['id']} could not be stored" in line for line in log)
