"""The store on PostgreSQL (`PAYBOT_DATABASE=postgresql://…`), for one or many processes.

`PostgresStore` implements `bot.ports.Store`; its schema is the numbered SQL files
in `migrations/`, applied by `migrate`.

The driver is asyncpg rather than psycopg 3: it is asyncio from the ground up, brings
its own pool and LISTEN support, and its binary protocol with prepared statements
kept webhook ingest on a par with SQLite's (bench: ingest); psycopg's strengths (sync
and async in one, server-side cursors, COPY ergonomics) are ones paybot does not use.
"""

from storage.postgres.store import PostgresStore, PostgresTx

__all__ = ["PostgresStore", "PostgresTx"]
