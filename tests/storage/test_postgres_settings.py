"""A `PAYBOT_DATABASE` that does not serve stops PostgresStore.open() with one clear
line naming the setting (CONTRACT §3), and never with the password in it."""

from __future__ import annotations

import asyncio
import socket
import traceback
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.errors import ConfigError
from storage.postgres import PostgresStore
from storage.postgres.pool import redacted
from tests.databases import drop_database, fresh_postgres_url, server_url, with_database

PASSWORD = "s3cret-pw"


def _closed_port() -> int:
    """A loopback port nothing listens on: bound, then let go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{where}"))


async def _refusal(url: str, connect_timeout: float = 5.0) -> ConfigError:
    """The ConfigError that opening a store on `url` raises, checked for secrets."""
    store = PostgresStore(url, connect_timeout=connect_timeout)
    with pytest.raises(ConfigError) as refused:
        await store.open()
    error = refused.value
    told = "".join(traceback.format_exception(error))
    assert error.setting == "PAYBOT_DATABASE"
    assert "s3cret" not in told
    assert "\n" not in str(error)
    assert not await store.ping()
    return error


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """The test server's URL; the test is skipped when no server answers."""
    probe = await fresh_postgres_url()
    await drop_database(probe)
    yield server_url()


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_url_that_is_not_a_postgresql_url_is_a_settings_error() -> None:
    error = await _refusal(f"postgresql://paybot:{PASSWORD}@127.0.0.1:port/paybot")
    assert "not a usable PostgreSQL URL" in str(error)
    assert "postgresql://paybot:***@127.0.0.1:port/paybot" in str(error)


async def test_a_server_that_refuses_connections_is_a_settings_error() -> None:
    port = _closed_port()
    error = await _refusal(f"postgresql://paybot:{PASSWORD}@127.0.0.1:{port}/paybot")
    assert f"cannot reach PostgreSQL at postgresql://paybot:***@127.0.0.1:{port}/paybot" in str(
        error
    )


async def test_a_password_given_as_a_parameter_is_kept_out_too() -> None:
    port = _closed_port()
    error = await _refusal(f"postgresql://paybot@127.0.0.1:{port}/paybot?password={PASSWORD}")
    assert "password=***" in str(error)


async def test_a_server_that_never_answers_is_a_settings_error_within_the_timeout(
    silent_server: int,
) -> None:
    url = f"postgresql://paybot:{PASSWORD}@127.0.0.1:{silent_server}/paybot"
    async with asyncio.timeout(5):
        error = await _refusal(url, connect_timeout=0.5)
    assert "did not answer in time" in str(error)


async def test_a_database_that_does_not_exist_is_a_settings_error(server: str) -> None:
    user = urlsplit(server).username or "postgres"
    url = with_database(_with_user(server, user, PASSWORD), "paybot_no_such_db")
    error = await _refusal(url)
    assert "refused the connection" in str(error)
    assert 'database "paybot_no_such_db" does not exist' in str(error)


async def test_a_user_the_server_does_not_know_is_a_settings_error(server: str) -> None:
    error = await _refusal(_with_user(server, "paybot_no_such_user", PASSWORD))
    assert "paybot_no_such_user" in str(error)


async def test_a_percent_encoded_password_is_kept_out_as_written() -> None:
    port = _closed_port()
    await _refusal(f"postgresql://paybot:s3cret%2F%40pw@127.0.0.1:{port}/paybot")


def test_a_password_holding_at_signs_and_slashes_is_redacted_whole() -> None:
    url = "postgresql://paybot:s3cret@pw/x@db.example:5432/paybot"
    assert redacted(f"cannot reach {url}", url) == (
        "cannot reach postgresql://paybot:***@db.example:5432/paybot"
    )


def test_a_url_without_a_password_is_left_as_it_is() -> None:
    url = "postgresql://paybot@db.example:5432/paybot?sslmode=require"
    assert redacted(url, url) == url
