"""The textbook webhook receiver, the yardstick for paybot's ingest.

What the Standard Webhooks and Starlette documentation lead anyone to write:
verify the signature with `standardwebhooks.Webhook.verify`, insert the event
with aiosqlite, commit, answer `204`. One commit an event, nothing shared, no
batching; a repeated id is ignored by its primary key. SQLite in WAL mode with
its default `synchronous=FULL`, so a `2xx` means the event is on disk, as
paybot's does. Run as its own process under uvicorn on loopback:
`python -m bench.textbook_receiver`, settings in the environment
(TEXTBOOK_PORT, TEXTBOOK_DATABASE, TEXTBOOK_WEBHOOK_SECRET).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SCHEMA = "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT, body BLOB)"
PATH = "/webhooks/cimplify"  # where the bench posts, as to paybot
INSERT = "INSERT OR IGNORE INTO events (id, type, body) VALUES (?, ?, ?)"


def app(database: str, secret: str) -> Starlette:
    webhook = Webhook(secret)
    db: aiosqlite.Connection | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal db
        db = await aiosqlite.connect(database)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(SCHEMA)
        await db.commit()
        try:
            yield
        finally:
            await db.close()

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            event = webhook.verify(body, dict(request.headers))
        except WebhookVerificationError:
            return Response(status_code=401)
        assert db is not None  # opened by the lifespan before any request
        await db.execute(INSERT, (request.headers["webhook-id"], event.get("type"), body))
        await db.commit()
        return Response(status_code=204)

    return Starlette(routes=[Route(PATH, receive, methods=["POST"])], lifespan=lifespan)


def stored_ids(database: Path) -> set[str]:
    """The event ids the receiver's database holds; read after it has stopped."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return {str(row[0]) for row in db.execute("SELECT id FROM events")}


def main() -> None:
    database, secret = os.environ["TEXTBOOK_DATABASE"], os.environ["TEXTBOOK_WEBHOOK_SECRET"]
    port = int(os.environ["TEXTBOOK_PORT"])
    uvicorn.run(
        app(database, secret), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
