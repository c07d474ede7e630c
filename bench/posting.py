"""Signed Cimplify webhooks posted at the bot, and which of them it acknowledged.

Shared by the ingest, latency and flood measures. Events are signed before the
clock starts, so signing is not counted as the bot's time, and they are posted by a
bare HTTP/1.1 keep-alive client: httpx spends about a millisecond of CPU on each
request, which on a 2-core machine shared with the bot would make the load
generator, not the bot, the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.stage import Stage
from bench.store_reads import Stored
from bot.models import CONFIRMED_WORDS
from tests.fakes.bot_api import FakeBotApi


@dataclass(frozen=True)
class Event:
    id: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Posted:
    event_id: str
    status: int  # 0: no answer (a transport error)
    sent_at: float  # time.monotonic() when the post began
    answered_at: float  # and when its answer came back

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300


def tokens(stage: Stage) -> dict[str, str]:
    """Each order's newest payment token at the sandbox."""
    return {link.order_id: link.token for link in stage.sandbox.ledger.links.values()}


def events(stage: Stage, kind: str, order_ids: Iterable[str], prefix: str) -> list[Event]:
    """One signed `kind` event per order, for its link's token; ids `{prefix}{order_id}`."""
    token_of = tokens(stage)
    signed = []
    for order_id in order_ids:
        event_id = f"{prefix}{order_id}"
        body, headers = stage.signed_event(
            kind, order_id, token=token_of[order_id], event_id=event_id
        )
        signed.append(Event(event_id, body, headers))
    return signed


class WebhookPoster:
    """POSTs to the bot's webhook route over reused loopback connections."""

    PATH = "/webhooks/cimplify"

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        self._host, self._port = address.hostname or "127.0.0.1", address.port or 80
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, event: Event) -> Posted:
        started = time.monotonic()
        try:
            status = await self._exchange(event)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            status = 0  # not acknowledged; if it was stored anyway, it is not lost either
        return Posted(event.id, status, started, time.monotonic())

    async def _exchange(self, event: Event) -> int:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(self._request(event))
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self._idle.append((reader, writer))
        return status

    def _request(self, event: Event) -> bytes:
        headers = event.headers | {
            "host": f"{self._host}:{self._port}",
            "content-length": str(len(event.body)),
        }
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return f"POST {self.PATH} HTTP/1.1\r\n{head}\r\n".encode() + event.body

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def post_concurrently(stage: Stage, queue: list[Event], senders: int) -> list[Posted]:
    """`senders` tasks post the events in list order, spread over the bot's instances."""
    return await post_spread(stage.urls, queue, senders)


async def post_spread(urls: list[str], queue: list[Event], senders: int) -> list[Posted]:
    """`senders` tasks post the events in list order, each taking the next as it is free;
    sender k posts to `urls[k % len(urls)]`, so every address takes its share."""
    posters = [WebhookPoster(url) for url in urls]
    pending = iter(queue)
    posted: list[Posted] = []

    async def sender(poster: WebhookPoster) -> None:
        for event in pending:  # one iterator shared: each event is taken once
            posted.append(await poster.post(event))

    try:
        await asyncio.gather(*(sender(posters[k % len(posters)]) for k in range(senders)))
    finally:
        for poster in posters:
            poster.close()
    return posted


async def post_paced(stage: Stage, queue: list[Event], rate: float) -> list[Posted]:
    """Post event k at k/rate seconds from now, without waiting for earlier answers;
    event k to instance k mod the instances."""
    posters = [WebhookPoster(url) for url in stage.urls]
    start = time.monotonic()

    async def at_its_time(k: int, event: Event) -> Posted:
        await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
        return await posters[k % len(posters)].post(event)

    try:
        return list(await asyncio.gather(*(at_its_time(k, e) for k, e in enumerate(queue))))
    finally:
        for poster in posters:
            poster.close()


def unstored(posted: list[Posted], stored: Stored) -> set[str]:
    """Event ids the bot acknowledged with a `2xx` that its database does not hold."""
    return {p.event_id for p in posted if p.acknowledged} - stored.event_ids


class Confirmations:
    """The "Confirmed" messages the fake Bot API accepted, by chat, read as they come.

    Each call looks only at messages new since the last (the list only grows), so it
    is cheap enough to re-check at every Bot API call.
    """

    def __init__(self, fake: FakeBotApi) -> None:
        self._fake = fake
        self._seen = 0
        self.first_at: dict[int, float] = {}  # chat -> when its first one arrived
        self.per_chat: Counter[int] = Counter()

    def __call__(self) -> int:
        """How many chats have one by now."""
        sent = self._fake.sent
        for message in sent[self._seen :]:
            if message.text is not None and CONFIRMED_WORDS in message.text:
                self.first_at.setdefault(message.chat_id, message.at)
                self.per_chat[message.chat_id] += 1
        self._seen = len(sent)
        return len(self.first_at)
