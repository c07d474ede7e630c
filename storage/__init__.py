"""Implementations of the core's store (`bot.ports.Store`), and the one that settings pick.

`storage.sqlite` keeps everything in one SQLite file (the embedded default);
`storage.postgres` in a PostgreSQL database that several processes may share.
"""

from __future__ import annotations

from bot.ports import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(database: str) -> bool:
    return database.startswith(POSTGRES_SCHEMES)


def store_for(database: str) -> Store:
    """The store `PAYBOT_DATABASE` names; nothing is opened yet."""
    if is_postgres(database):
        from storage.postgres import PostgresStore  # asyncpg loads only when it is used

        return PostgresStore(database)
    from storage.sqlite import SqliteStore

    return SqliteStore(database)
