"""`/invoice` overhead: 50 merchants at once, every fake answering at once.

Each merchant's `/invoice` is queued at the fake Bot API; the bot long-polls it,
asks the sandbox for a link and the order, stores them, draws the QR code and
sends the photo. The time is from queuing the update to the `sendPhoto` call
arriving at the fake, so it holds the long poll's return too. The bot runs at
`PAYBOT_SEND_RATE=1000` (Telegram's paid-broadcast limit) so that deliberate
pacing (1/30 s a message at the default) is not counted as the bot's overhead.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.databases import Database
from bench.report import Report, median, percentile
from bench.stage import Stage, staged

AT_ONCE = 50  # merchants sending /invoice together
ROUNDS = 4  # rounds of AT_ONCE, fresh merchants and orders each
WARM_UP = 10  # invoices first, not counted: imports, first connections, warm caches
ALONE = 10  # then one merchant at a time: what a single /invoice costs, for comparison
TARGET_MS = 50.0
SEND_RATE = "1000"


async def measure(workdir: Path, database: Database) -> Report:
    total = WARM_UP + ALONE + AT_ONCE * ROUNDS
    async with staged(
        workdir,
        database,
        orders=total,
        merchants=total,
        webhooks=False,
        settings={"PAYBOT_SEND_RATE": SEND_RATE},
    ) as stage:
        pairs = list(zip(stage.merchants, stage.orders, strict=True))
        await stage.invoice(pairs[:WARM_UP])
        alone = [(await _one_round(stage, [pair]))[0] for pair in pairs[WARM_UP:][:ALONE]]
        first = WARM_UP + ALONE
        rounds = [pairs[first + n * AT_ONCE :][:AT_ONCE] for n in range(ROUNDS)]
        cpu_before = stage.cpu_seconds()
        latencies = [await _one_round(stage, batch) for batch in rounds]
        cpu_ms = (stage.cpu_seconds() - cpu_before) * 1000 / (AT_ONCE * ROUNDS)
    return _report(latencies, alone, cpu_ms)


async def _one_round(stage: Stage, pairs: list[tuple[int, str]]) -> list[float]:
    """Queue every merchant's /invoice at once; ms from queuing to its photo arriving."""
    queued: dict[int, float] = {}
    before = len(stage.fake.calls)
    for merchant, order_id in pairs:
        queued[merchant] = time.monotonic()
        stage.fake.send_text(f"/invoice {order_id}", user_id=merchant)
    await stage.until(lambda: len(_photo_times(stage, before)) >= len(pairs), 60.0)
    photos = _photo_times(stage, before)
    return [(photos[merchant] - queued[merchant]) * 1000 for merchant in queued]


def _photo_times(stage: Stage, since: int) -> dict[int, float]:
    """Arrival time of the first sendPhoto to each chat among calls from `since` on."""
    arrived: dict[int, float] = {}
    for call in stage.fake.calls[since:]:
        if call.method == "sendPhoto":
            arrived.setdefault(int(call.params["chat_id"]), call.at)
    return arrived


def _report(rounds: list[list[float]], alone: list[float], cpu_ms: float) -> Report:
    every = [ms for one in rounds for ms in one]
    p50, p99 = percentile(every, 50), percentile(every, 99)
    report = Report("invoice")
    report.add(
        f"`/invoice` overhead: {AT_ONCE} merchants at once, fakes answering at once, "
        f"update queued → photo at the Bot API ({ROUNDS} rounds, {len(every)} invoices)",
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (PAYBOT_SEND_RATE={SEND_RATE}); one alone: "
        f"p50 {median(alone):.1f} ms; bot CPU {cpu_ms:.1f} ms an invoice",
        f"p99 ≤ {TARGET_MS:.0f} ms",
        p99 <= TARGET_MS,
    )
    report.figures = {
        "at_once": AT_ONCE,
        "rounds": ROUNDS,
        "warm_up": WARM_UP,
        "alone_ms": [round(ms, 3) for ms in alone],
        "bot_cpu_ms_per_invoice": cpu_ms,
        "send_rate": float(SEND_RATE),
        "p50_ms": p50,
        "p99_ms": p99,
        "median_ms": median(every),
        "max_ms": max(every),
        "per_round_p99_ms": [percentile(one, 99) for one in rounds],
        "latencies_ms": [round(ms, 3) for ms in every],
    }
    return report
