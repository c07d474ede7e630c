"""Schema migrations: numbered SQL files, applied in order, tracked in `schema_version`.

Several paybot processes may open one database at once. Each migrates inside one
transaction under a transaction-level advisory lock, so the first applies what is
missing and the others, let in after it commits, find nothing left to do.
"""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from bot.errors import ConfigError
from storage.postgres.pool import SETTING

# Any constant will do, as long as nothing else takes this advisory lock: "paybot" in ASCII.
MIGRATION_LOCK = 0x706179626F74
_MIGRATION_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")

_CREATE_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version integer PRIMARY KEY,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)


def migrations() -> list[tuple[int, str]]:
    """The packaged migrations as (version, sql), numbered 1, 2, 3... without gaps."""
    folder = resources.files("storage.postgres").joinpath("migrations")
    found = sorted(
        (int(match[1]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (match := _MIGRATION_FILE.fullmatch(entry.name))
    )
    if [version for version, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("storage/postgres/migrations must be numbered 0001, 0002, ... in turn")
    return found


async def migrate(connection: asyncpg.Connection) -> None:
    """Bring the database up to this paybot's schema, once however many processes start.

    A user that may not create the tables (PostgreSQL 15 lets only the database
    owner create in `public`) is a settings error, said at start.
    """
    try:
        await _migrate(connection)
    except asyncpg.InsufficientPrivilegeError as error:
        raise ConfigError(
            SETTING,
            f"the user may not set up paybot's tables ({error}); connect as the database's"
            " owner, or grant the user CREATE on its schema",
        ) from error


async def _migrate(connection: asyncpg.Connection) -> None:
    known = migrations()
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await connection.execute(_CREATE_VERSIONS)
        found = await schema_version(connection)
        if found > len(known):
            database = await connection.fetchval("SELECT current_database()")
            raise ConfigError(
                SETTING,
                f"database {database} has schema version {found}, newer than this"
                f" paybot's {len(known)}; upgrade paybot",
            )
        for version, script in known[found:]:
            # No arguments: the simple query protocol, which runs a whole script.
            await connection.execute(script)
            await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)


async def schema_version(connection: asyncpg.Connection) -> int:
    """The highest version applied; 0 for an empty database."""
    found = await connection.fetchval("SELECT max(version) FROM schema_version")
    return 0 if found is None else int(found)
