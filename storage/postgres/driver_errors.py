"""asyncpg's failures, translated into the store's error tree at the boundary.

By SQLSTATE class (PostgreSQL's stable error codes, appendix A of its manual),
because asyncpg's exception classes follow them:

    OSError (refused, reset, timed out, unknown host)  → StoreUnavailable
    asyncpg.InterfaceError
    ├── "connection is closed", "pool is closing",
    │   "released back to the pool" (asyncpg detaches a
    │   lost connection from its pool proxy)            → StoreUnavailable
    ├── DataError (a value the client cannot encode)    → StoreRejected
    └── anything else (two operations at once…)         unchanged: a bug
    asyncpg.InternalClientError (outdated schema cache) → StoreUnavailable
    asyncpg.PostgresError, by SQLSTATE
    ├── 08 connection exception                         → StoreUnavailable
    ├── 40 serialization failure, deadlock detected     → StoreUnavailable
    ├── 53 disk full, out of memory, too many clients   → StoreUnavailable
    ├── 55P03 lock not available, 55006 object in use   → StoreUnavailable
    ├── 57 query canceled, admin shutdown, cannot connect now → StoreUnavailable
    ├── 58 I/O error; XX internal error                 → StoreUnavailable
    ├── 25006 read-only transaction (a standby, mid failover) → StoreUnavailable
    ├── 25P03 idle-in-transaction timeout               → StoreUnavailable
    ├── 0A000 cached statement invalid (schema changed) → StoreUnavailable
    ├── 22 data exception (a NUL in text, out of range) → StoreRejected
    ├── 23 integrity constraint violation               → StoreRejected
    ├── 54 program limit exceeded (a key too big)       → StoreRejected
    └── anything else (syntax, undefined table…)        unchanged: a bug

Everything else, the caller's own exceptions included, passes through unchanged:
loops that "try again later" catch StoreUnavailable only, so a bug must not look
like an outage.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from bot.errors import StoreError, StoreRejected, StoreUnavailable

_UNAVAILABLE_CLASSES = frozenset({"08", "40", "53", "57", "58", "XX"})
_UNAVAILABLE_STATES = frozenset({"55P03", "55006", "25006", "25P03"})
_REJECTED_CLASSES = frozenset({"22", "23", "54"})
# The store never uses a connection after releasing it (statements.py refuses), so
# "released back to the pool" inside a transaction means asyncpg detached it, lost.
_CLOSED_WORDS = ("closed", "closing", "released back to the pool")


def store_error_for(error: BaseException) -> StoreError | None:
    """The StoreError that `error` stands for; None when it is not the store's failure."""
    if isinstance(error, StoreError):
        return None
    if isinstance(error, OSError):
        return StoreUnavailable(f"PostgreSQL unreachable: {error}")
    if isinstance(error, asyncpg.PostgresError):
        return _for_server_error(error)
    if isinstance(error, asyncpg.InterfaceError):
        return _for_client_error(error)
    if isinstance(error, asyncpg.InternalClientError):
        return StoreUnavailable(f"PostgreSQL client out of step: {error}")
    return None


def _for_server_error(error: asyncpg.PostgresError) -> StoreError | None:
    state = str(getattr(error, "sqlstate", None) or "")
    if state[:2] in _REJECTED_CLASSES:
        return StoreRejected(f"PostgreSQL refused the data ({state}): {error}")
    if (
        state[:2] in _UNAVAILABLE_CLASSES
        or state in _UNAVAILABLE_STATES
        or isinstance(error, asyncpg.InvalidCachedStatementError)
    ):
        return StoreUnavailable(f"PostgreSQL unavailable ({state}): {error}")
    return None


def _for_client_error(error: asyncpg.InterfaceError) -> StoreError | None:
    if isinstance(error, ValueError) and not isinstance(error, asyncpg.ClientConfigurationError):
        # asyncpg's client-side DataError: a value it cannot encode for its column.
        return StoreRejected(f"PostgreSQL cannot take the value: {error}")
    if any(word in str(error) for word in _CLOSED_WORDS):
        return StoreUnavailable(f"PostgreSQL connection lost: {error}")
    return None


@contextmanager
def translated_errors() -> Iterator[None]:
    """Raise the store's own error, `from` the driver's, for what the driver raises inside."""
    try:
        yield
    except Exception as error:
        translated = store_error_for(error)
        if translated is None:
            raise
        raise translated from error
