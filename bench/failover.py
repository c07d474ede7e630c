"""When one dies: two instances, the one that sends is killed mid-flood.

Two `paybot run` share one PostgreSQL database; the first started holds every
role, the sender's among them. 300 confirmations are posted, spread over both
(every post answered before the kill), and once a third of the "Confirmed"
messages have reached the fake Bot API, that first process gets SIGKILL: no
goodbye, its roles and claims simply stop being renewed. The other must take the
sender's role when the lease lapses and send the rest. Measured: the longest
silence between two "Confirmed" messages (the takeover), the whole flood against
its floor at the default pace, and how many chats got none (lost) or two (the
message in flight at the kill, which Telegram may already have taken).

CONTRACT §6: a process killed at any moment loses nothing, the others carry on
its work within 10 seconds.
"""

from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path

from bench.databases import Database
from bench.posting import Confirmations, events, post_concurrently, unstored
from bench.report import Report
from bench.stage import staged
from bench.store_reads import read_store

CHATS = 300
SEND_RATE = 30.0  # the default pace
KILL_AFTER = CHATS // 3  # "Confirmed" messages delivered before the kill
TARGET_GAP_S = 10.0
SENDERS = 20


async def measure(workdir: Path, database: Database, instances: int = 2) -> Report:
    async with staged(
        workdir, database, orders=CHATS, merchants=CHATS, webhooks=False, instances=instances
    ) as stage:
        await stage.invoice(list(zip(stage.merchants, stage.orders, strict=True)), timeout=120)
        queue = events(stage, "payment.succeeded", stage.orders, "evt_ps_")
        confirmed = Confirmations(stage.fake)
        started = time.monotonic()
        posted = await post_concurrently(stage, queue, SENDERS)
        await stage.until(lambda: confirmed() >= KILL_AFTER, 60.0)
        stage.bot.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await stage.until(lambda: confirmed() >= CHATS, 120.0)
        stored = await read_store(database)
    arrivals = sorted(confirmed.first_at.values())
    gap = max(b - a for a, b in itertools.pairwise(arrivals))
    repeated = sum(1 for n in confirmed.per_chat.values() if n > 1)
    lost = CHATS - len(confirmed.first_at)
    kept = all(p.acknowledged for p in posted) and not unstored(posted, stored)
    took = arrivals[-1] - started
    report = Report("failover")
    report.add(
        f"one dies: {CHATS} confirmations over two instances; SIGKILL to the sender after "
        f"{KILL_AFTER} had arrived; the other takes over when its lease lapses",
        f"longest silence {gap:.1f} s; all delivered in {took:.1f} s (floor at "
        f"{SEND_RATE:.0f}/s: {CHATS / SEND_RATE:.1f} s); {lost} lost, {repeated} sent twice",
        f"carried on within {TARGET_GAP_S:.0f} s, 0 lost",
        gap <= TARGET_GAP_S and lost == 0 and kept,
    )
    report.figures = {
        "chats": CHATS,
        "killed_after": KILL_AFTER,
        "longest_silence_s": gap,
        "first_after_kill_s": min(a for a in arrivals if a > killed_at) - killed_at,
        "seconds": took,
        "lost": lost,
        "sent_twice": repeated,
        "every_post_2xx_and_stored": kept,
    }
    return report
