"""Flood: 1,000 confirmations to 1,000 chats against Telegram's flood limits.

The fake Bot API enforces them (tests/fakes/send_limits.py): at most 30 new
messages in any sliding second overall and one a second per chat, refusing more
with `429` and `retry_after`. Caption edits are not counted (each confirmation
also edits its chat's invoice photo). The bot runs at its default pace,
`PAYBOT_SEND_RATE=29`, a hair under the limit. The invoices go out first with the limits off; then
1,000 signed `payment.succeeded` are posted at once, and the clock runs from the
first post to the last "Confirmed" arriving at the fake. 1,000 messages at 30 a
second cannot take less than 33.3 s.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.databases import Database
from bench.posting import Confirmations, events, post_concurrently, unstored
from bench.report import Report
from bench.stage import BOT_TOKEN, staged
from bench.store_reads import read_store
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.send_limits import SendLimits

CHATS = 1_000
LIMITS = SendLimits(overall=30, per_chat=1, window=1.0)
TARGET_S = 35.0
SENDERS = 50


async def measure(workdir: Path, database: Database) -> Report:
    fake = FakeBotApi(token=BOT_TOKEN, username="paybot_bench_bot")
    async with staged(
        workdir, database, orders=CHATS, merchants=CHATS, webhooks=False, fake=fake
    ) as stage:
        await stage.invoice(list(zip(stage.merchants, stage.orders, strict=True)), timeout=120)
        queue = events(stage, "payment.succeeded", stage.orders, "evt_ps_")
        confirmed = Confirmations(fake)
        fake.limits = LIMITS
        started = time.monotonic()
        posted = await post_concurrently(stage, queue, SENDERS)
        await stage.until(lambda: confirmed() >= CHATS, 3 * TARGET_S)
    took = max(confirmed.first_at.values()) - started
    # One each, both at the fake and in what the bot queued (read after it stopped).
    stored = await read_store(database)
    queued = stored.confirmations_by_chat
    counts = [(confirmed.per_chat[chat], queued.get(str(chat), 0)) for chat in stage.merchants]
    every_post_kept = all(p.acknowledged for p in posted) and not unstored(posted, stored)
    return _report(took, len(fake.throttled), counts, every_post_kept=every_post_kept)


def _report(
    took: float, refused: int, counts: list[tuple[int, int]], *, every_post_kept: bool
) -> Report:
    """`counts`: for each chat, "Confirmed" messages delivered and queued."""
    lost = sum(1 for delivered, _ in counts if delivered == 0)
    twice = sum(1 for delivered, queued in counts if delivered > 1 or queued > 1)
    report = Report("flood")
    report.add(
        f"flood: {CHATS:,} confirmations to {CHATS:,} chats; the fake Bot API refuses more "
        "than 30 new messages in any second and 1 a chat (`429 retry_after`); caption edits "
        "not counted; bot at its default PAYBOT_SEND_RATE=29",
        f"all delivered in {took:.1f} s (the limit allows 33.3 s); {refused} refused with 429; "
        f"{lost} lost, {twice} repeated",
        f"all in ≤ {TARGET_S:.0f} s, 0 lost",
        took <= TARGET_S and lost == 0 and twice == 0 and every_post_kept,
    )
    report.figures = {
        "chats": CHATS,
        "limits": {
            "overall": LIMITS.overall,
            "per_chat": LIMITS.per_chat,
            "window_s": LIMITS.window,
        },
        "seconds": took,
        "floor_s": CHATS / LIMITS.overall,
        "refused_429": refused,
        "lost": lost,
        "repeated": twice,
        "every_post_2xx_and_stored": every_post_kept,
    }
    return report
