"""Connections that cannot hold the HTTP server: bounded in number, each request in time.

uvicorn keeps a connection open for as long as its request head or body is
incomplete, and takes every connection the kernel hands it. A few hundred
sockets sending half a request line would then use up the open-files limit,
and the bot would stop answering everyone. Here:

- a request's head and body must be complete within `REQUEST_DEADLINE` of the
  connection opening or of the previous response ending, or it is closed;
- at most `cap` connections are open; one more closes the oldest connection
  still waiting for its request (or refuses itself when every one is busy in
  the application, which the deadline does not bound).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

REQUEST_DEADLINE = 5.0  # seconds for a request's head and body to arrive
# asyncio accepts up to `backlog` sockets each time the listening socket is ready, and
# a socket is seen here (`connection_made`) only two loop turns after its accept: one
# to make its transport, one to call the protocol. A connection closed to make room
# keeps its file one more turn. So up to ACCEPT_BATCHES_UNSEEN batches hold files the
# cap cannot count, beside the store, logs and outgoing HTTP (the reserve).
ACCEPT_BATCH = 100  # asyncio's own default
ACCEPT_BATCHES_UNSEEN = 4  # accepted, transport made, and room made (one spare)
FILES_RESERVED = 192  # the store, logs, and the HTTP pools to Cimplify, Telegram, Twilio
MOST_CONNECTIONS = 10_000


def connection_cap() -> int:
    """How many connections fit under this process's open-files limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MOST_CONNECTIONS
    return max(
        16, min(MOST_CONNECTIONS, soft - ACCEPT_BATCH * ACCEPT_BATCHES_UNSEEN - FILES_RESERVED)
    )


class Waiting:
    """The connections waiting for a request to complete, oldest first, and the cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.since: OrderedDict[GuardedH11Protocol, float] = OrderedDict()
        self.evicted = 0

    def make_room(self, connections: int) -> bool:
        """Close the oldest waiting connection when `connections` is at the cap.

        False when none can be closed: the newcomer must go."""
        if connections <= self.cap:
            return True
        if not self.since:
            return False
        oldest, _ = self.since.popitem(last=False)
        oldest.close_waiting()
        self.evicted += 1
        if self.evicted % 1000 == 1:  # a flood: say so, not once a connection
            log.warning("http: at %d connections, closed %d waiting ones", self.cap, self.evicted)
        return True


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline per request and a shared connection cap."""

    waiting: Waiting  # set by `guarded_protocol`, one per server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.waiting.make_room(len(self.connections)):
            transport.abort()  # every connection is busy: this one goes, unanswered
            return
        self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_complete()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            self._request_complete()  # head and body are in: the application has it

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_request()  # kept alive: the next request has its own deadline

    def _await_request(self) -> None:
        self._request_complete()
        self.waiting.since[self] = time.monotonic()
        self._deadline = self.loop.call_later(REQUEST_DEADLINE, self.close_waiting)

    def _request_complete(self) -> None:
        self.waiting.since.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def close_waiting(self) -> None:
        """Too slow, or the oldest when room is needed: close without an answer."""
        self._request_complete()
        self.transport.abort()  # frees the socket now, whatever is unsent


def guarded_protocol(cap: int) -> type[GuardedH11Protocol]:
    """A protocol class for one server: its connections share one `Waiting`."""

    class ServerGuardedH11Protocol(GuardedH11Protocol):
        waiting = Waiting(cap)

    return ServerGuardedH11Protocol


class AcceptErrorLimit(logging.Filter):
    """Lets asyncio's "out of system resource" through once per `interval` seconds.

    Out of files, asyncio logs each failed accept with its traceback: thousands a
    second, a hundred megabytes a minute. The first says what is wrong."""

    MESSAGE = "socket.accept() out of system resource"

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._next = 0.0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(self.MESSAGE):
            return True
        now = time.monotonic()
        if now < self._next:
            self.suppressed += 1
            return False
        self._next = now + self.interval
        if self.suppressed:
            record.msg = f"{record.msg} ({self.suppressed} more since the last one)"
            self.suppressed = 0
        return True


ACCEPT_ERROR_LIMIT = AcceptErrorLimit()


def raise_open_files_limit() -> None:
    """The soft open-files limit up to the hard one: connections need a file each."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:  # an unlimited hard limit is above the kernel's
        log.warning("could not raise the open-files limit from %d: %s", soft, error)
