"""Polling cost: paybot's poller beside a naive one on the same 1,000 links, webhooks off.

Merchants issue 1,000 invoices through `/invoice`, spread over the first minute
(one order per merchant, so no chat waits on another's messages). Each link then
follows a random customer timeline (bench/timelines.py: a quarter abandoned, the
rest paying by mobile money or card over tens of seconds, some failing and
retrying), played on the sandbox from here while the naive poller (2 s per link,
bench/naive_poller.py) watches the same ledger. Links live 4 minutes.

- Requests per settled link: every Pay API status request over the whole run,
  for all 1,000 links (abandoned ones too), divided by the links that got paid.
- Detection latency: for paybot, when its "Paid" message reached the fake Bot API
  minus when the bench moved the link to paid; for the naive poller, when its
  poll first saw paid minus the same.

paybot runs at PAYBOT_POLL_RATE=100, the most it allows. Even so the budget binds
at the busiest moments, with a hundred payments in flight at once (a day's traffic
squeezed into minutes); moving payments are polled first then.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from pathlib import Path

from bench.databases import Database
from bench.naive_poller import NaivePoller
from bench.rates import StatusRate, is_status_request, sampling
from bench.report import Report, median, percentile
from bench.stage import Stage, staged
from bench.timelines import Timeline, play, random_timeline

LINKS = 1000
POLL_RATE = 100
ISSUE_WINDOW = 60.0  # seconds over which the invoices are asked for
TTL = 240.0  # seconds a link lives
SEED = 1001  # the same timelines on every run
TARGET_RATIO = 0.25  # paybot's requests per settled link over the naive poller's
P90_RATIO = 1.2  # paybot's p90 detection over the naive poller's


class ChatFinals:
    """The first "Paid" and "Expired" message paybot sent about each order, read from the
    fake Bot API's calls as they grow."""

    def __init__(self, stage: Stage) -> None:
        self._calls = stage.fake.calls
        self._seen = 0
        self.paid: dict[str, float] = {}  # order id -> when the message arrived
        self.expired: dict[str, float] = {}

    def count(self) -> int:
        for call in self._calls[self._seen :]:
            text = call.params.get("text") if call.method == "sendMessage" else None
            if isinstance(text, str) and text.startswith("Order "):
                order_id = text.split(maxsplit=2)[1]
                if ": Paid - " in text:
                    self.paid.setdefault(order_id, call.at)
                elif ": Expired - " in text:
                    self.expired.setdefault(order_id, call.at)
        self._seen = len(self._calls)
        return len(self.paid) + len(self.expired)


class PollingRun:
    def __init__(self, stage: Stage, timelines: dict[str, Timeline]) -> None:
        self.stage = stage
        self.timelines = timelines
        self.naive = NaivePoller(stage.sandbox.ledger)
        self.finals = ChatFinals(stage)
        self.paid_at: dict[str, float] = {}  # token -> when the bench moved it to paid
        self.order_of: dict[str, str] = {}  # token -> order id
        self._players: set[asyncio.Task[None]] = set()

    async def play(self) -> StatusRate:
        async with sampling(self.stage.sandbox.requests) as rate:
            issuing = asyncio.get_running_loop().create_task(self._issue())
            await self._follow_new_links()
            await issuing
            await self.stage.until(lambda: self.finals.count() >= LINKS, TTL + 60)
            await self._naive_done()
        return rate

    async def _issue(self) -> None:
        start = time.monotonic()
        pairs = zip(self.stage.merchants, self.timelines, strict=True)
        for n, (merchant, order_id) in enumerate(pairs):
            await asyncio.sleep(max(0.0, start + n * ISSUE_WINDOW / LINKS - time.monotonic()))
            self.stage.fake.send_text(f"/invoice {order_id}", user_id=merchant)

    async def _follow_new_links(self) -> None:
        """Each link, as soon as the sandbox has issued it: the naive poller starts
        watching it and its customer's timeline starts playing."""
        ledger = self.stage.sandbox.ledger
        deadline = time.monotonic() + ISSUE_WINDOW + 120
        while len(self.order_of) < LINKS:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.order_of)} of {LINKS} links were issued")
            for token in list(ledger.links)[len(self.order_of) :]:
                self._start(ledger.links[token].order_id, token)
            await asyncio.sleep(0.02)

    def _start(self, order_id: str, token: str) -> None:
        self.order_of[token] = order_id
        self.naive.track(token)
        ledger = self.stage.sandbox.ledger
        task = asyncio.get_running_loop().create_task(
            play(ledger, token, self.timelines[order_id], self.paid_at.__setitem__)
        )
        self._players.add(task)
        task.add_done_callback(self._players.discard)

    async def _naive_done(self) -> None:
        await self.naive.finish(timeout=10)

    def bot_requests(self) -> int:
        return sum(1 for m, p in self.stage.sandbox.requests if is_status_request(m, p))

    def latencies(self) -> tuple[list[float], list[float], list[str]]:
        """paybot's and the naive poller's detection latencies, and orders paybot missed."""
        bot, naive, missed = [], [], []
        for token, paid in self.paid_at.items():
            order_id = self.order_of[token]
            if order_id in self.finals.paid:
                bot.append(self.finals.paid[order_id] - paid)
            else:
                missed.append(order_id)
            naive.append(self.naive.saw_paid[token] - paid)
        return bot, naive, missed

    def bot_latencies_by_kind(self) -> dict[str, dict[str, float]]:
        """paybot's detection latencies for mobile money and for card payments apart."""
        by_kind: dict[str, list[float]] = {}
        for token, paid in self.paid_at.items():
            order_id = self.order_of[token]
            if order_id in self.finals.paid:
                kind = self.timelines[order_id].kind
                by_kind.setdefault(kind, []).append(self.finals.paid[order_id] - paid)
        return {kind: _spread(values) for kind, values in by_kind.items()}


async def measure(workdir: Path, database: Database) -> Report:
    rng = random.Random(SEED)
    orders = [f"B{n:06d}" for n in range(1, LINKS + 1)]
    timelines = {order_id: random_timeline(rng, TTL) for order_id in orders}
    settings = {"PAYBOT_POLL_RATE": str(POLL_RATE), "PAYBOT_SEND_RATE": "1000"}
    async with staged(
        workdir,
        database,
        orders=LINKS,
        merchants=LINKS,
        webhooks=False,
        link_ttl=timedelta(seconds=TTL),
        settings=settings,
    ) as stage:
        run = PollingRun(stage, timelines)
        rate = await run.play()
    return _report(run, rate)


def _report(run: PollingRun, rate: StatusRate) -> Report:
    settled = len(run.paid_at)
    bot_requests, naive_requests = run.bot_requests(), run.naive.requests
    bot, naive, missed = run.latencies()
    bot_per, naive_per = bot_requests / settled, naive_requests / settled
    ratio = bot_per / naive_per
    p50_bot, p50_naive = median(bot), median(naive)
    p90_bot, p90_naive = percentile(bot, 90), percentile(naive, 90)
    report = Report("polling")
    report.add(
        f"polling cost ({LINKS} links, webhooks off, PAYBOT_POLL_RATE={POLL_RATE})",
        f"{ratio:.2f}× the naive poller's Pay API requests per settled link "
        f"({bot_per:.1f} vs {naive_per:.1f}); p50 detection {p50_bot:.2f} s vs "
        f"{p50_naive:.2f} s; p90 {p90_bot:.2f} s vs {p90_naive:.2f} s, "
        f"{p90_bot / p90_naive:.2f}×"
        + (f"; {len(missed)} paid links never announced as Paid" if missed else ""),
        f"≤ {TARGET_RATIO}× requests per settled link; p90 detection ≤ {P90_RATIO}× the "
        "naive poller's, p50 no worse",
        ratio <= TARGET_RATIO
        and p90_bot <= P90_RATIO * p90_naive
        and p50_bot <= p50_naive
        and not missed,
    )
    kinds = [t.kind for t in run.timelines.values()]
    report.figures = {
        "links": LINKS,
        "settled": settled,
        "expired_announced": len(run.finals.expired),
        "timelines": {kind: kinds.count(kind) for kind in sorted(set(kinds))},
        "poll_rate": POLL_RATE,
        "requests": {"paybot": bot_requests, "naive": naive_requests},
        "requests_per_settled_link": {"paybot": bot_per, "naive": naive_per, "ratio": ratio},
        "detection_s": {
            "paybot": _spread(bot),
            "naive": _spread(naive),
            "paybot_by_kind": run.bot_latencies_by_kind(),
            "paybot_missed": missed,
        },
        "status_requests_per_s": {
            "max_1s": max(rate.windows, default=0),
            "max_10s": rate.max_per(10),
            "mean": rate.mean(),
        },
    }
    return report


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"p{pct}": percentile(values, pct) for pct in (10, 50, 90, 99)} | {"max": max(values)}
