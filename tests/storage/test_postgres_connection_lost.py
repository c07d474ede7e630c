"""A PostgreSQL that goes away under a running store: StoreUnavailable, never a hang
or a driver error, and the store carries on once the server is back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.errors import StoreUnavailable
from storage.postgres import PostgresStore
from tests.storage.contract.support import a_link


class Relay:
    """A loopback TCP relay to the PostgreSQL server: closing it is the server vanishing."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, upstream_writer]
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        writer.close()

    async def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()


@pytest.fixture
async def relayed(url: str) -> AsyncIterator[tuple[str, Relay]]:
    """The test database's URL through a relay, and the relay."""
    parts = urlsplit(url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    port = await relay.start()
    user = f"{parts.username}@" if parts.username else ""
    try:
        yield urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}")), relay
    finally:
        await relay.close()


async def _terminate_sessions_of(url: str) -> int:
    """End every session on the database but this one, as an administrator would."""
    admin = await asyncpg.connect(url)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await admin.close()


async def test_a_session_ended_mid_transaction_is_unavailable_and_the_next_one_works(
    url: str,
) -> None:
    store = PostgresStore(url)
    await store.open()
    try:
        with pytest.raises(StoreUnavailable) as lost:
            async with store.transaction() as tx:
                await tx.links.insert(a_link("lnk_1"))
                assert await _terminate_sessions_of(url) == 1
                await tx.links.get("lnk_1")
        assert type(lost.value.__cause__).__module__.startswith("asyncpg")
        async with store.transaction() as tx:
            assert await tx.links.get("lnk_1") is None
            await tx.links.insert(a_link("lnk_2"))
        assert await store.ping()
    finally:
        await store.close()


async def test_a_server_that_vanishes_is_unavailable_and_ping_says_so(
    relayed: tuple[str, Relay],
) -> None:
    through_relay, relay = relayed
    store = PostgresStore(through_relay, connect_timeout=1)
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.links.insert(a_link())
        await relay.close()
        async with asyncio.timeout(10):
            for _ in range(2):  # the pooled connection is cut; a new one is refused
                with pytest.raises(StoreUnavailable):
                    async with store.transaction() as tx:
                        await tx.links.get("lnk_1")
            assert not await store.ping()
    finally:
        await store.close()


async def test_a_store_that_is_not_open_is_unavailable() -> None:
    store = PostgresStore("postgresql://paybot@127.0.0.1:5432/paybot")
    with pytest.raises(StoreUnavailable, match="not open"):
        async with store.transaction():
            pass
    assert not await store.ping()
