"""Webhook ingest: 2,000 signed events, 10 % of them repeats, from 50 senders at once.

The links exist first (each merchant invoices one order). Every link then gets a
`payment.succeeded` and an `order.completed` with ids of their own, and one post
in ten repeats an id already posted, as Cimplify's retries do. Throughput is
posts over the wall time from the first post to the last answer. The `2xx` only
says an event is stored; applying it (confirming its link) comes after, so the
bench then waits for every link to be confirmed, and reports how long that took
after the last answer. After the bot has stopped, its database must hold every
acknowledged event, each link must be confirmed, and each chat must have exactly
one "Confirmed" queued for it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from bench.databases import Database
from bench.peer_ingest import PeerIngest, textbook_ingest
from bench.posting import Event, Posted, events, post_concurrently, unstored
from bench.report import Report
from bench.stage import staged
from bench.store_reads import Stored, read_store, until_confirmed

POSTS = 2_000
REPEATS = POSTS // 10
LINKS = (POSTS - REPEATS) // 2  # two distinct events per link
SENDERS = 50
TARGET = 1_000.0  # events a second
RATIO_TARGET = 0.8  # PostgreSQL's events a second over SQLite's, same run
TEXTBOOK_TARGET = 1.5  # two instances on PostgreSQL over the textbook receiver, same run
APPLY_TIMEOUT = 120.0  # seconds after the last answer for every link to be confirmed


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds from the first post to the last answer
    cpu: float  # the bot's CPU seconds meanwhile
    applied_in: float | None  # seconds after the last answer until every link was confirmed


async def measure(workdir: Path, database: Database, instances: int = 1) -> Report:
    # The bot at its defaults: its outbox sends the confirmations (30 a second) meanwhile.
    async with staged(
        workdir, database, orders=LINKS, merchants=LINKS, webhooks=False, instances=instances
    ) as stage:
        await stage.invoice(list(zip(stage.merchants, stage.orders, strict=True)), timeout=120)
        queue = _with_repeats(
            events(stage, "payment.succeeded", stage.orders, "evt_ps_")
            + events(stage, "order.completed", stage.orders, "evt_oc_")
        )
        cpu_before, started = stage.cpu_seconds(), time.monotonic()
        posted = await post_concurrently(stage, queue, SENDERS)
        wall = time.monotonic() - started
        cpu = stage.cpu_seconds() - cpu_before
        applied_in = await until_confirmed(database, LINKS, APPLY_TIMEOUT)
        secret = stage.keys.webhook_secret
    report = _report(posted, Timing(wall, cpu, applied_in), await read_store(database))
    peer = await textbook_ingest(workdir, queue, secret, SENDERS)
    _against_textbook(report, peer, instances)
    return report


def _against_textbook(report: Report, peer: PeerIngest, instances: int) -> None:
    """paybot's rate over the textbook receiver's, in the figures; a row of its own
    (the target) for two instances."""
    ratio = report.figures["events_per_s"] / peer.events_per_s
    report.figures["textbook"] = {
        "events_per_s": peer.events_per_s,
        "wall_s": peer.wall_s,
        "cpu_s_while_posting": peer.cpu_s,
        "not_2xx": peer.not_2xx,
        "lost": peer.lost,
    }
    report.figures["over_textbook"] = ratio
    peer_sound = not peer.lost and not peer.not_2xx
    bot_cpu_ms = report.figures["bot_cpu_s_while_posting"] * 1e3 / POSTS
    report.add(
        f"webhook ingest against the textbook receiver (Starlette, standardwebhooks, aiosqlite, "
        f"one commit an event), the same {POSTS:,} events and senders, same run",
        f"{ratio:.2f}× the textbook's ({report.figures['events_per_s']:,.0f} vs "
        f"{peer.events_per_s:,.0f} events/s); textbook: {peer.not_2xx} not 2xx, "
        f"{len(peer.lost)} lost; CPU {bot_cpu_ms:.2f} ms an event vs "
        f"{peer.cpu_s * 1e3 / POSTS:.2f} ms",
        f"two instances on PostgreSQL: ≥ {TEXTBOOK_TARGET}× the textbook's; every 2xx stored",
        (ratio >= TEXTBOOK_TARGET or instances < 2) and not report.figures["lost"] and peer_sound,
    )


def _with_repeats(distinct: list[Event]) -> list[Event]:
    """The distinct events shuffled, and REPEATS of them posted again later on."""
    chance = random.Random(4)  # a fixed shuffle, the same every run
    chance.shuffle(distinct)
    queue = list(distinct)
    for _ in range(REPEATS):
        at = chance.randrange(len(queue))
        queue.insert(chance.randrange(at, len(queue)) + 1, queue[at])
    return queue


def _report(posted: list[Posted], timing: Timing, stored: Stored) -> Report:
    acknowledged = {p.event_id for p in posted if p.acknowledged}
    lost = unstored(posted, stored)
    refused = sum(1 for p in posted if not p.acknowledged)
    twice = sum(1 for n in stored.confirmations_by_chat.values() if n != 1)
    unconfirmed = LINKS - len(stored.confirmations_by_chat) + twice
    rate = len(posted) / timing.wall
    applied = _seconds(timing.applied_in)
    sound = not lost and not refused and not unconfirmed and stored.confirmed_links == LINKS
    report = Report("ingest")
    report.add(
        f"webhook ingest: {len(posted):,} signed events ({REPEATS} repeats) for {LINKS} links, "
        f"{SENDERS} concurrent senders; bot at its defaults; load generator on the same 2 cores",
        f"{rate:,.0f} events/s; {len(acknowledged):,} distinct acknowledged, {len(lost)} lost, "
        f"{refused} not 2xx, {stored.confirmed_links}/{LINKS} links confirmed once "
        f"(all applied {applied} after the last answer)",
        f"≥ {TARGET:,.0f} events/s, every 2xx stored, 0 lost",
        rate >= TARGET and sound,
    )
    report.figures = {
        "posts": len(posted),
        "repeats": REPEATS,
        "links": LINKS,
        "senders": SENDERS,
        "wall_s": timing.wall,
        "events_per_s": rate,
        "bot_cpu_s_while_posting": timing.cpu,
        "applied_s_after_last_answer": timing.applied_in,
        "acknowledged_distinct": len(acknowledged),
        "not_2xx": refused,
        "lost": sorted(lost),
        "stored_events": len(stored.event_ids),
        "unapplied_after_stop": stored.unapplied,
        "confirmed_links": stored.confirmed_links,
        "chats_without_exactly_one_confirmed": unconfirmed,
    }
    return report


def _seconds(applied_in: float | None) -> str:
    return f"in {applied_in:.1f} s" if applied_in is not None else f"not in {APPLY_TIMEOUT:.0f} s"


def compare(sqlite: Report, postgres: Report) -> None:
    """Add to PostgreSQL's report its ingest against SQLite's, both measured in this run."""
    on_sqlite, on_postgres = sqlite.figures["events_per_s"], postgres.figures["events_per_s"]
    ratio = on_postgres / on_sqlite
    postgres.add(
        "webhook ingest, PostgreSQL against SQLite (the row above, same run)",
        f"{ratio:.2f}× SQLite's ({on_postgres:,.0f} vs {on_sqlite:,.0f} events/s)",
        f"≥ {RATIO_TARGET}× SQLite's, every 2xx stored",
        ratio >= RATIO_TARGET and not postgres.figures["lost"],
    )
    postgres.figures["postgres_over_sqlite"] = ratio
