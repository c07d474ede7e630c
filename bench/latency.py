"""Webhook → chat: confirmations at 200 a second, each timed from its `2xx` to its message.

Every event confirms a different link in a different chat, so the 1-second gap
per chat never applies. The bot runs at its default pace, `PAYBOT_SEND_RATE=30`,
smooth: the k-th "Confirmed" it sends cannot leave before max(its 2xx, the
(k-1)-th's earliest time + 1/30 s). That earliest time is subtracted: what
remains is the bot's own delay. The k-th is counted in the order the bot sent
them: answers to webhooks stored in one commit reach the sender together, in no
particular order, and a swap would count a whole 1/30 s against the bot.

At `PAYBOT_SEND_RATE=1000` the pacing would vanish, but 200 confirmations a second
are 400 Bot API calls (a text and a caption edit each), more than the bot's one
core makes while taking the webhooks: the queue, not the bot's delay, would be
measured.
"""

from __future__ import annotations

from pathlib import Path

from bench.databases import Database
from bench.posting import Confirmations, Posted, events, post_paced, unstored
from bench.report import Report, median, percentile
from bench.stage import staged
from bench.store_reads import read_store

EVENTS = 400  # links, chats and events: 2 s at RATE, then 13 s for the pacing to drain
RATE = 200.0  # events a second
SEND_RATE = 30.0  # the bot's default, set explicitly so the pacing subtracted is the pacing used
TARGET_MS = 100.0


async def measure(workdir: Path, database: Database, instances: int = 1) -> Report:
    settings = {"PAYBOT_SEND_RATE": str(SEND_RATE)}
    async with staged(
        workdir,
        database,
        orders=EVENTS,
        merchants=EVENTS,
        webhooks=False,
        settings=settings,
        instances=instances,
    ) as stage:
        await stage.invoice(list(zip(stage.merchants, stage.orders, strict=True)), timeout=60)
        chat_of = dict(zip(stage.orders, stage.merchants, strict=True))
        queue = events(stage, "payment.succeeded", stage.orders, "evt_ps_")
        confirmed = Confirmations(stage.fake)
        posted = await post_paced(stage, queue, RATE)
        await stage.until(lambda: confirmed() >= EVENTS, EVENTS / SEND_RATE + 30)
        arrived = confirmed.first_at
    by_chat = {chat_of[p.event_id.removeprefix("evt_ps_")]: p for p in posted}
    lost = unstored(posted, await read_store(database))
    return _report(by_chat, arrived, lost)


def _earliest_sends(answered: list[float]) -> list[float]:
    """When each message, in sending order, could leave at the soonest at SEND_RATE."""
    earliest: list[float] = []
    for at in answered:
        earliest.append(max(at, earliest[-1] + 1 / SEND_RATE) if earliest else at)
    return earliest


def _report(by_chat: dict[int, Posted], arrived: dict[int, float], lost: set[str]) -> Report:
    chats = sorted(by_chat, key=lambda chat: arrived[chat])  # in the order they were sent
    answered = [by_chat[chat].answered_at for chat in chats]
    earliest = _earliest_sends(answered)
    total = [(arrived[chat] - at) * 1000 for chat, at in zip(chats, answered, strict=True)]
    beyond = [(arrived[chat] - at) * 1000 for chat, at in zip(chats, earliest, strict=True)]
    pacing = [(e - a) * 1000 for e, a in zip(earliest, answered, strict=True)]
    p50, p99 = percentile(beyond, 50), percentile(beyond, 99)
    report = Report("latency")
    report.add(
        f"webhook → chat: {len(chats):,} confirmations at {RATE:.0f}/s, each a different "
        f'chat; `2xx` → "Confirmed" at the Bot API, less the pacing (PAYBOT_SEND_RATE='
        f"{SEND_RATE:.0f}, the default)",
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms beyond pacing (pacing itself: p99 "
        f"{percentile(pacing, 99):.1f} ms; with it p99 {percentile(total, 99):.1f} ms)",
        f"p99 ≤ {TARGET_MS:.0f} ms beyond pacing",
        p99 <= TARGET_MS and all(p.acknowledged for p in by_chat.values()) and not lost,
    )
    report.figures = {
        "events": len(chats),
        "rate_per_s": RATE,
        "send_rate": SEND_RATE,
        "not_2xx": sum(1 for p in by_chat.values() if not p.acknowledged),
        "acknowledged_not_stored": sorted(lost),
        "beyond_pacing_ms": {"p50": p50, "p99": p99, "median": median(beyond)},
        "pacing_ms": {"p50": percentile(pacing, 50), "p99": percentile(pacing, 99)},
        "total_ms": {"p50": percentile(total, 50), "p99": percentile(total, 99)},
        "post_to_2xx_ms_p99": percentile(
            [(p.answered_at - p.sent_at) * 1000 for p in by_chat.values()], 99
        ),
        "beyond_pacing_all_ms": [round(ms, 3) for ms in beyond],
    }
    return report
