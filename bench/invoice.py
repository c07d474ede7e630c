"""`/invoice`: 50 merchants at once and one alone, paybot beside the textbook PTB bot.

Each merchant's `/invoice` is queued at the fake Bot API; the bot long-polls it,
asks the sandbox for a link and the order, stores them, draws the QR code and
sends the photo. The time is from queuing the update to the `sendPhoto` call
arriving at the fake, so it holds the long poll's return too. paybot runs at
`PAYBOT_SEND_RATE=1000` (Telegram's paid-broadcast limit) so that deliberate
pacing (1/30 s a message at the default) is not counted as its overhead.

The textbook bot (bench/textbook_bot.py) then does the same, on a fake Bot API of
its own and the same sandbox, with orders of its own: warm-up, one alone, then the
rounds of fifty. Targets are ratios to it: with fifty at once, paybot's p99 at most
half the textbook's; one alone, its median within 1.1× of the textbook's; and
under 3 ms of CPU an invoice (each process's CPU time over the rounds / invoices;
with two instances, both processes').
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.databases import Database
from bench.processes import cpu_seconds, started
from bench.report import Report, median, percentile
from bench.stage import Stage, staged
from tests.fakes.bot_api import FakeBotApi

AT_ONCE = 50  # merchants sending /invoice together
ROUNDS = 4  # rounds of AT_ONCE, fresh merchants and orders each
WARM_UP = 10  # invoices first, not counted: imports, first connections, warm caches
ALONE = 20  # then one merchant at a time: what a single /invoice costs
P99_RATIO = 0.5  # paybot's p99 over the textbook's, fifty at once
ALONE_RATIO = 1.1  # paybot's median over the textbook's, one alone
CPU_TARGET_MS = 3.0
SEND_RATE = "1000"
TOTAL = WARM_UP + ALONE + AT_ONCE * ROUNDS  # invoices each bot makes
TEXTBOOK_TOKEN = "123456:TEXTBOOK-token_abcdefghijklmno"  # noqa: S105 - its fake's token
ROUND_TIMEOUT = 60.0

Pairs = list[tuple[int, str]]  # (merchant, order id)
Cpu = Callable[[], float]  # CPU seconds the bot has used so far


@dataclass(frozen=True)
class Run:
    rounds: list[list[float]]  # ms, each round's invoices
    alone: list[float]  # ms, one at a time
    cpu_ms: float  # CPU an invoice over the rounds

    @property
    def every(self) -> list[float]:
        return [ms for one in self.rounds for ms in one]


async def measure(workdir: Path, database: Database, instances: int = 1) -> Report:
    async with staged(
        workdir,
        database,
        orders=2 * TOTAL,  # the first half paybot's, the second the textbook bot's
        merchants=TOTAL,
        webhooks=False,
        settings={"PAYBOT_SEND_RATE": SEND_RATE},
        instances=instances,
    ) as stage:
        pairs = list(zip(stage.merchants, stage.orders[:TOTAL], strict=True))
        paybot = await _protocol(stage.fake, pairs, stage.cpu_seconds)
        textbook = await _textbook(stage, workdir)
    return _report(paybot, textbook, instances)


async def _protocol(fake: FakeBotApi, pairs: Pairs, cpu: Cpu) -> Run:
    """Warm-up, one alone at a time, then the rounds of fifty, timed at `fake`."""
    for pair in pairs[:WARM_UP]:
        await _one_round(fake, [pair])
    alone = [(await _one_round(fake, [pair]))[0] for pair in pairs[WARM_UP:][:ALONE]]
    first = WARM_UP + ALONE
    batches = [pairs[first + n * AT_ONCE :][:AT_ONCE] for n in range(ROUNDS)]
    cpu_before = cpu()
    rounds = [await _one_round(fake, batch) for batch in batches]
    return Run(rounds, alone, (cpu() - cpu_before) * 1000 / (AT_ONCE * ROUNDS))


async def _textbook(stage: Stage, workdir: Path) -> Run:
    folder = workdir / "textbook-bot"
    folder.mkdir(parents=True, exist_ok=True)
    fake = FakeBotApi(token=TEXTBOOK_TOKEN, username="textbook_bench_bot")
    async with fake:
        env = {
            "TEXTBOOK_BOT_TOKEN": TEXTBOOK_TOKEN,
            "TEXTBOOK_API_BASE": fake.base_url,
            "CIMPLIFY_API_BASE": stage.sandbox_url,
            "CIMPLIFY_SECRET_KEY": stage.keys.secret_key,
        }
        with started("bench.textbook_bot", env, folder) as process:
            await fake.wait_for(lambda: any(c.method == "getUpdates" for c in fake.calls), 20.0)
            pairs = list(zip(stage.merchants, stage.orders[TOTAL:], strict=True))
            return await _protocol(fake, pairs, lambda: cpu_seconds(process.pid))


async def _one_round(fake: FakeBotApi, pairs: Pairs) -> list[float]:
    """Queue every merchant's /invoice at once; ms from queuing to its photo arriving."""
    queued: dict[int, float] = {}
    before = len(fake.calls)
    for merchant, order_id in pairs:
        queued[merchant] = time.monotonic()
        fake.send_text(f"/invoice {order_id}", user_id=merchant)
    await fake.wait_for(lambda: len(_photo_times(fake, before)) >= len(pairs), ROUND_TIMEOUT)
    photos = _photo_times(fake, before)
    return [(photos[merchant] - queued[merchant]) * 1000 for merchant in queued]


def _photo_times(fake: FakeBotApi, since: int) -> dict[int, float]:
    """Arrival time of the first sendPhoto to each chat among calls from `since` on."""
    arrived: dict[int, float] = {}
    for call in fake.calls[since:]:
        if call.method == "sendPhoto":
            arrived.setdefault(int(call.params["chat_id"]), call.at)
    return arrived


def _report(paybot: Run, textbook: Run, instances: int) -> Report:
    p99, peer_p99 = percentile(paybot.every, 99), percentile(textbook.every, 99)
    alone, peer_alone = median(paybot.alone), median(textbook.alone)
    report = Report("invoice")
    report.add(
        f"`/invoice`, {AT_ONCE} merchants at once ({ROUNDS} rounds), update queued → photo at "
        f"the Bot API, against the textbook PTB bot; PAYBOT_SEND_RATE={SEND_RATE}",
        f"p99 {p99:.0f} ms vs {peer_p99:.0f} ms: {p99 / peer_p99:.2f}× (p50 "
        f"{percentile(paybot.every, 50):.0f} vs {percentile(textbook.every, 50):.0f} ms)",
        f"p99 ≤ {P99_RATIO}× the textbook's",
        p99 <= P99_RATIO * peer_p99,
    )
    report.add(
        f"`/invoice`, one merchant alone ({ALONE} in turn), against the textbook PTB bot",
        f"p50 {alone:.1f} ms vs {peer_alone:.1f} ms: {alone / peer_alone:.2f}×",
        f"≤ {ALONE_RATIO}× the textbook's",
        alone <= ALONE_RATIO * peer_alone,
    )
    report.add(
        f"`/invoice` CPU, over the rounds of {AT_ONCE} (every paybot process)",
        f"{paybot.cpu_ms:.1f} ms an invoice (textbook bot: {textbook.cpu_ms:.1f} ms)",
        f"< {CPU_TARGET_MS:.0f} ms an invoice",
        paybot.cpu_ms < CPU_TARGET_MS,
    )
    report.figures = {
        "at_once": AT_ONCE,
        "rounds": ROUNDS,
        "warm_up": WARM_UP,
        "send_rate": float(SEND_RATE),
        "instances": instances,
        "paybot": _figures(paybot),
        "textbook": _figures(textbook),
        "p99_over_textbook": p99 / peer_p99,
        "alone_over_textbook": alone / peer_alone,
    }
    return report


def _figures(run: Run) -> dict[str, object]:
    every = run.every
    return {
        "p50_ms": percentile(every, 50),
        "p99_ms": percentile(every, 99),
        "max_ms": max(every),
        "alone_p50_ms": median(run.alone),
        "cpu_ms_per_invoice": run.cpu_ms,
        "per_round_p99_ms": [percentile(one, 99) for one in run.rounds],
        "alone_ms": [round(ms, 3) for ms in run.alone],
        "latencies_ms": [round(ms, 3) for ms in every],
    }
