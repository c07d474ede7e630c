"""Scale: 10,000 live links tracked by one `paybot run` process.

1,000 merchants ask for 10 invoices each through `/invoice` (PAYBOT_SEND_RATE=1000,
so the photos are not what takes the time). Once every invoice has arrived and
the bot has settled, nothing happens to any link: they all sit pending, and the
poller works through them at its budget. paybot runs with PAYBOT_POLL_RATE unset,
the default of 5 requests a second: at that budget each of 10,000 idle links is
asked about every half hour or so, which is the point of a budget (and why
webhooks, not polling, carry confirmations at this size).

- Memory: the bot's resident set (VmRSS) at the end, and its peak (VmHWM).
- Budget: Pay API status requests the sandbox saw, per 1 s and per 10 s window.
- Idle CPU: the bot's CPU seconds per wall second while it polls at its budget.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.databases import Database
from bench.rates import BURST, TICK_SLOP, StatusRate, allowed, sampling
from bench.report import Report
from bench.stage import Stage, staged
from bench.store_reads import tracked_links

LINKS = 10_000
MERCHANTS = 1_000
POLL_RATE = 5.0  # the default of PAYBOT_POLL_RATE, left unset
WATCH = 60.0  # seconds of request counting
CPU_WINDOW = 30.0  # the last seconds of WATCH, over which CPU is measured
SETTLE = 5.0  # seconds after the last invoice, for the outbox and the issuers to go quiet
RSS_TARGET_MB = 150.0
IDLE_CPU_TARGET = 0.05


async def measure(workdir: Path, database: Database) -> Report:
    async with staged(
        workdir,
        database,
        orders=LINKS,
        merchants=MERCHANTS,
        webhooks=False,
        settings={"PAYBOT_SEND_RATE": "1000"},
    ) as stage:
        issued_in = await _issue_all(stage)
        await asyncio.sleep(SETTLE)  # a pause for the bot, not a wait for a condition
        async with sampling(stage.sandbox.requests) as rate:
            cpu = await _idle_cpu(stage)
        rss, peak = stage.rss_mb(), _peak_rss_mb(stage)
        live = await tracked_links(database)  # read while the bot runs
    return _report(issued_in, rate, cpu, rss, peak, live)


async def _issue_all(stage: Stage) -> float:
    """Every merchant asks for its ten invoices; seconds until the last photo arrived."""
    pairs = [(stage.merchants[n % MERCHANTS], order) for n, order in enumerate(stage.orders)]
    started = time.monotonic()
    await stage.invoice(pairs, timeout=600)
    return time.monotonic() - started


async def _idle_cpu(stage: Stage) -> float:
    """CPU seconds per wall second over the last CPU_WINDOW seconds of WATCH."""
    await asyncio.sleep(WATCH - CPU_WINDOW)
    cpu, wall = stage.cpu_seconds(), time.monotonic()
    await asyncio.sleep(CPU_WINDOW)
    return (stage.cpu_seconds() - cpu) / (time.monotonic() - wall)


def _peak_rss_mb(stage: Stage) -> float:
    for line in Path(f"/proc/{stage.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM for the bot process")


def _report(
    issued_in: float, rate: StatusRate, cpu: float, rss: float, peak: float, live: int
) -> Report:
    max_1s, max_10s = rate.most_in(1), rate.most_in(10)
    report = Report("scale")
    report.add(
        f"scale: memory ({LINKS:,} live links)",
        f"RSS {rss:.0f} MB (peak {peak:.0f} MB) with {live:,} links tracked",
        f"RSS ≤ {RSS_TARGET_MB:.0f} MB",
        peak <= RSS_TARGET_MB and live == LINKS,
    )
    report.add(
        f"scale: poll budget ({LINKS:,} links, PAYBOT_POLL_RATE={POLL_RATE:g})",
        f"at most {max_1s} status requests in any 1 s window and {max_10s} in any 10 s "
        f"({rate.mean():.2f}/s on average over {len(rate.windows)} s)",
        f"never above {POLL_RATE:g}/s: ≤ {POLL_RATE:g}·T + {BURST} (the bucket's burst) "
        f"in any T s, + {TICK_SLOP} for the sampler's tick",
        max_1s <= allowed(POLL_RATE, 1) and max_10s <= allowed(POLL_RATE, 10),
    )
    report.add(
        f"scale: idle CPU ({LINKS:,} links polled at the budget)",
        f"{cpu:.1%} of one core ({cpu / max(rate.mean(), 1e-9) * 1000:.1f} ms CPU per poll)",
        f"near zero (≤ {IDLE_CPU_TARGET:.0%})",
        cpu <= IDLE_CPU_TARGET,
    )
    report.figures = {
        "links": LINKS,
        "merchants": MERCHANTS,
        "tracked_links": live,
        "issue_seconds": issued_in,
        "rss_mb": rss,
        "peak_rss_mb": peak,
        "poll_rate": POLL_RATE,
        "status_requests_per_1s_window": rate.windows,
        "most_in_1s": max_1s,
        "most_in_10s": max_10s,
        "idle_cpu_fraction": cpu,
    }
    return report
