"""The connection pool, and why it could not be made, said as a settings error.

A URL asyncpg cannot read, or a server that refuses, does not answer, knows no
such database or refuses the credentials, is a wrong `PAYBOT_DATABASE`: paybot
stops at start with one line that names the setting (CONTRACT §3). The password
never appears in it, nor in any log line.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import asyncpg

from bot.errors import ConfigError

SETTING = "PAYBOT_DATABASE"
MAX_CONNECTIONS = 10
# No statement of the store's runs for long (no network I/O inside a transaction);
# one that does is stuck behind a lost network path, and the work is better tried
# again (a TimeoutError, so StoreUnavailable) than waited on for ever.
STATEMENT_SECONDS = 30.0

# The user-info part of a URL: scheme://user:password@host… The password may hold
# anything, '@' and '/' included, so everything up to the last '@' is user info.
_USER_INFO = re.compile(r"^(?P<scheme>[^:/?#]*://)(?P<user>[^:@/]*):(?P<password>.*)@")
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)(?P<password>[^&#]*)", re.IGNORECASE)


def passwords_in(url: str) -> list[str]:
    """Every password the URL carries, in user info or as a `password=` parameter."""
    found = [match["password"] for match in _QUERY_PASSWORD.finditer(url)]
    user_info = _USER_INFO.match(_QUERY_PASSWORD.sub("", url))
    if user_info is not None:
        found.append(user_info["password"])
    return [password for password in found if password]


def redacted(text: str, url: str) -> str:
    """`text` with each of the URL's passwords replaced by ***."""
    # Longest first, so that a password containing another is replaced whole.
    for password in sorted(passwords_in(url), key=len, reverse=True):
        text = text.replace(password, "***")
    return text


async def create_pool(
    url: str,
    connect_timeout: float,
    opened: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """A pool of 1 to MAX_CONNECTIONS connections, one of them open already;
    `opened` is told of each connection the pool makes.

    Raises ConfigError when the URL or the server it names does not serve.
    """
    try:
        return await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=MAX_CONNECTIONS,
            timeout=connect_timeout,
            command_timeout=STATEMENT_SECONDS,
            server_settings={"application_name": "paybot"},
            reset=_leave_session_as_it_is,
            init=opened,
        )
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # `from None`: the driver's exception may quote the URL, password and all.
        raise ConfigError(SETTING, _problem(url, error)) from None


async def _leave_session_as_it_is(connection: asyncpg.Connection) -> None:
    """Release a connection to the pool without asyncpg's reset query.

    The reset (RESET ALL, UNLISTEN *, advisory unlock…) is a round trip on every
    transaction, a quarter of the webhook ingest's; the store changes no session
    state it would undo: no SET, no LISTEN, no cursor, and transaction-level
    advisory locks only. asyncpg still rolls back an open transaction first.
    """


def _problem(url: str, error: Exception) -> str:
    where = redacted(url, url)
    reason = redacted(str(error).splitlines()[0] if str(error) else type(error).__name__, url)
    if isinstance(error, TimeoutError):
        return f"PostgreSQL at {where} did not answer in time; is the server up?"
    if isinstance(error, OSError):
        return f"cannot reach PostgreSQL at {where}: {reason}"
    if isinstance(error, ValueError | asyncpg.InterfaceError):
        return f"not a usable PostgreSQL URL ({where}): {reason}"
    return f"PostgreSQL at {where} refused the connection: {reason}"
