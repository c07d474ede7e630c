"""Webhook ingest: 2,000 signed events, 10 % of them repeats, from 50 senders at once.

The links exist first (each merchant invoices one order). Every link then gets a
`payment.succeeded` and an `order.completed` with ids of their own, and one post
in ten repeats an id already posted, as Cimplify's retries do. Throughput is
posts over the wall time from the first post to the last answer. After the bot
has stopped, its SQLite file must hold every acknowledged event, each link must
be confirmed, and each chat must have exactly one "Confirmed" queued for it.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from bench.posting import Event, Posted, events, post_concurrently, read_store
from bench.report import Report
from bench.stage import staged

POSTS = 2_000
REPEATS = POSTS // 10
LINKS = (POSTS - REPEATS) // 2  # two distinct events per link
SENDERS = 50
TARGET = 1_000.0  # events a second


async def measure(workdir: Path) -> Report:
    # The bot at its defaults: its outbox sends the confirmations (30 a second) meanwhile.
    async with staged(workdir, orders=LINKS, merchants=LINKS, webhooks=False) as stage:
        await stage.invoice(list(zip(stage.merchants, stage.orders, strict=True)), timeout=120)
        queue = _with_repeats(
            events(stage, "payment.succeeded", stage.orders, "evt_ps_")
            + events(stage, "order.completed", stage.orders, "evt_oc_")
        )
        cpu_before, started = stage.cpu_seconds(), time.monotonic()
        posted = await post_concurrently(stage, queue, SENDERS)
        wall = time.monotonic() - started
        cpu = stage.cpu_seconds() - cpu_before
    return _report(posted, wall, cpu, stage.database)


def _with_repeats(distinct: list[Event]) -> list[Event]:
    """The distinct events shuffled, and REPEATS of them posted again later on."""
    chance = random.Random(4)  # a fixed shuffle, the same every run
    chance.shuffle(distinct)
    queue = list(distinct)
    for _ in range(REPEATS):
        at = chance.randrange(len(queue))
        queue.insert(chance.randrange(at, len(queue)) + 1, queue[at])
    return queue


def _report(posted: list[Posted], wall: float, cpu: float, db: Path) -> Report:
    stored = read_store(db)
    acknowledged = {p.event_id for p in posted if p.acknowledged}
    lost = acknowledged - stored.event_ids
    refused = sum(1 for p in posted if not p.acknowledged)
    twice = sum(1 for n in stored.confirmations_by_chat.values() if n != 1)
    unconfirmed = LINKS - len(stored.confirmations_by_chat) + twice
    rate = len(posted) / wall
    sound = not lost and not refused and not unconfirmed and stored.confirmed_links == LINKS
    report = Report("ingest")
    report.add(
        f"webhook ingest: {len(posted):,} signed events ({REPEATS} repeats) for {LINKS} links, "
        f"{SENDERS} concurrent senders; bot at its defaults; load generator on the same 2 cores",
        f"{rate:,.0f} events/s; {len(acknowledged):,} distinct acknowledged, {len(lost)} lost, "
        f"{refused} not 2xx, {stored.confirmed_links}/{LINKS} links confirmed once",
        f"≥ {TARGET:,.0f} events/s, every 2xx stored, 0 lost",
        rate >= TARGET and sound,
    )
    report.figures = {
        "posts": len(posted),
        "repeats": REPEATS,
        "links": LINKS,
        "senders": SENDERS,
        "wall_s": wall,
        "events_per_s": rate,
        "bot_cpu_s_while_posting": cpu,
        "acknowledged_distinct": len(acknowledged),
        "not_2xx": refused,
        "lost": sorted(lost),
        "stored_events": len(stored.event_ids),
        "unapplied_after_stop": stored.unapplied,
        "confirmed_links": stored.confirmed_links,
        "chats_without_exactly_one_confirmed": unconfirmed,
    }
    return report
