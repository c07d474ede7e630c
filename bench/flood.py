"""Flood: 1,000 confirmations to 1,000 chats against Telegram's flood limits.

The fake Bot API enforces them (tests/fakes/send_limits.py): at most 30 new
messages in any sliding second overall and one a second per chat, refusing more
with `429` and `retry_after`. Caption edits are not counted (each confirmation
also edits its chat's invoice photo). The bot runs at its default pace,
`PAYBOT_SEND_RATE=30`, the limit itself: a message holds its place in the outbox's
window until a second after its answer, so no second at Telegram sees more. The
invoices go out first with the limits off; then
1,000 signed `payment.succeeded` are posted at once, and the clock runs from the
first post to the last "Confirmed" arriving at the fake. 1,000 messages at 30 a
second cannot take less than 33.3 s: the target is within 1.02× of that floor,
without a single `429`. With two instances the posts are spread over both and
either may apply them; one elected sender sends, so the floor is the same.
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
FLOOR_S = CHATS / LIMITS.overall
TARGET_RATIO = 1.02  # of the floor
TARGET_S = TARGET_RATIO * FLOOR_S
SENDERS = 50


async def measure(workdir: Path, database: Database, instances: int = 1) -> Report:
    fake = FakeBotApi(token=BOT_TOKEN, username="paybot_bench_bot")
    async with staged(
        workdir,
        database,
        orders=CHATS,
        merchants=CHATS,
        webhooks=False,
        fake=fake,
        instances=instances,
    ) as stage:
        await stage.invoice(list(zip(stage.merchants, stage.orders, strict=True)), timeout=120)
        queue = events(stage, "payment.succeeded", stage.orders, "evt_ps_")
        confirmed = Confirmations(fake)
        fake.limits = LIMITS
        started = time.monotonic()
        posted = await post_concurrently(stage, queue, SENDERS)
        await stage.until(lambda: confirmed() >= CHATS, 3 * FLOOR_S)
    took = max(confirmed.first_at.values()) - started
    # One each, both at the fake and in what the bot queued (read after it stopped).
    stored = await read_store(database)
    queued = stored.confirmations_by_chat
    counts = [(confirmed.per_chat[chat], queued.get(str(chat), 0)) for chat in stage.merchants]
    every_post_kept = all(p.acknowledged for p in posted) and not unstored(posted, stored)
    kept = every_post_kept
    return _report(took, len(fake.throttled), counts, instances, every_post_kept=kept)


def _report(
    took: float,
    refused: int,
    counts: list[tuple[int, int]],
    instances: int,
    *,
    every_post_kept: bool,
) -> Report:
    """`counts`: for each chat, "Confirmed" messages delivered and queued."""
    lost = sum(1 for delivered, _ in counts if delivered == 0)
    twice = sum(1 for delivered, queued in counts if delivered > 1 or queued > 1)
    report = Report("flood")
    report.add(
        f"flood: {CHATS:,} confirmations to {CHATS:,} chats; the fake Bot API refuses more "
        "than 30 new messages in any second and 1 a chat (`429 retry_after`); caption edits "
        "not counted; bot at its default PAYBOT_SEND_RATE=30; posts spread over its instances",
        f"all delivered in {took:.1f} s, {took / FLOOR_S:.3f}× the {FLOOR_S:.1f} s floor; "
        f"{refused} refused with 429; {lost} lost, {twice} repeated",
        f"≤ {TARGET_RATIO}× the floor ({TARGET_S:.1f} s), no 429, 0 lost",
        took <= TARGET_S and refused == 0 and lost == 0 and twice == 0 and every_post_kept,
    )
    report.figures = {
        "chats": CHATS,
        "limits": {
            "overall": LIMITS.overall,
            "per_chat": LIMITS.per_chat,
            "window_s": LIMITS.window,
        },
        "seconds": took,
        "floor_s": FLOOR_S,
        "over_floor": took / FLOOR_S,
        "instances": instances,
        "refused_429": refused,
        "lost": lost,
        "repeated": twice,
        "every_post_2xx_and_stored": every_post_kept,
    }
    return report
