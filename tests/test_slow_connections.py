"""Slow and idle connections cannot take the HTTP server offline.

The flood is a real `paybot run` under an open-files limit of 1,024; the
deadlines are checked on the same server class, in this process, on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from handlers.connections import REQUEST_DEADLINE
from handlers.serving import HttpServer, read_body
from tests.flow_events import event
from tests.harness import SECRET_KEY, WEBHOOK_SECRET
from tests.process import clean_env, free_port, start_paybot
from tests.test_faults_store import signed_post, stored_events

SOCKETS = 1_100
FILES = 1_024
LIMITED = f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, ({FILES}, {FILES}))"


@contextlib.contextmanager
def half_open(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` sockets, each having sent half a request line, then nothing."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /webhooks/cimpl")
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def cannot(reason: str) -> None:
    """A machine that cannot run the test: skipped, except in CI (`.ci/run` sets CI),
    whose machines can, so that CI can never skip it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)


@pytest.fixture
def files_for_the_flood() -> Iterator[None]:
    """This test process needs a file for each socket it opens."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < SOCKETS + 256:
        cannot(f"the open-files hard limit ({hard}) is too low for {SOCKETS} sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("files_for_the_flood")
def test_1100_half_open_sockets_under_1024_files_leave_webhooks_answered(
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        tmp_path,
        PAYBOT_HTTP_PORT=str(port),
        CIMPLIFY_API_BASE=f"http://127.0.0.1:{free_port()}",  # never called: no link is made
        CIMPLIFY_SECRET_KEY=SECRET_KEY,
        CIMPLIFY_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    with start_paybot(["run"], env, tmp_path, prelude=LIMITED) as paybot:
        paybot.wait_for("stderr", f"paybot is up: {base}")
        with half_open(port, SOCKETS):
            started = time.monotonic()
            answer = signed_post(base, event("payment.succeeded", event_id="evt_flood"))
            took = time.monotonic() - started
            healthz = httpx.get(f"{base}/healthz", timeout=5)
        paybot.process.terminate()
        assert paybot.finish() == 0, paybot.lines["stderr"][-20:]
    assert answer.status_code == 200, answer.text
    assert took < 5.0
    assert healthz.status_code == 200
    assert "evt_flood" in stored_events(tmp_path / "paybot.db")
    # Evictions are said once a thousand, and no accept failed: a few lines, not millions.
    assert len(paybot.lines["stderr"]) < 30, paybot.lines["stderr"][-30:]
    ran_out = [line for line in paybot.lines["stderr"] if "out of system resource" in line]
    assert not ran_out, paybot.lines["stderr"]


def test_the_open_files_limit_is_raised_to_the_hard_one_at_start(tmp_path: Path) -> None:
    port = free_port()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        cannot(f"the hard limit ({hard}) leaves nothing to raise to")
    low = f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}))"
    env = clean_env(tmp_path, PAYBOT_HTTP_PORT=str(port))
    with start_paybot(["run"], env, tmp_path, prelude=low) as paybot:
        paybot.wait_for("stderr", "paybot is up")
        soft, _ = resource.prlimit(paybot.process.pid, resource.RLIMIT_NOFILE)
        paybot.process.terminate()
        assert paybot.finish() == 0
    assert soft == hard


async def echo(request: Request) -> Response:
    body = await read_body(request)
    return Response(f"{len(body or b'')} bytes")


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    serving = HttpServer(Starlette(routes=[Route("/", echo, methods=["POST"])]), "127.0.0.1", 0)
    await serving.start()
    yield serving
    await serving.stop()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """How long until the server closes the connection; fails past `seconds`."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        while await reader.read(4096):
            pass  # an answer before the close (there should be none) is read past
    return time.monotonic() - started


@pytest.mark.parametrize(
    "sent",
    [
        b"POST / HT",  # half a request line
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n",  # half a head
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",  # a tenth
    ],
)
async def test_a_request_not_complete_in_time_is_closed(
    server: HttpServer, sent: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(sent)
    took = await closed_within(reader, REQUEST_DEADLINE + 2)
    writer.close()
    assert took >= REQUEST_DEADLINE - 0.5  # the deadline, not sooner
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_kept_alive_connection_has_a_deadline_for_its_next_request(
    server: HttpServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
    assert b"2 bytes" in await reader.readuntil(b"2 bytes")
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n")  # the next one stalls in its head
    await closed_within(reader, REQUEST_DEADLINE + 2)
    writer.close()


async def test_out_of_files_is_logged_once_however_often_accept_fails(
    server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(1_000):  # asyncio's own report of a failed accept, as when out of files
        loop.call_exception_handler(
            {"message": "socket.accept() out of system resource", "exception": OSError(24)}
        )
    said = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(said) == 1
