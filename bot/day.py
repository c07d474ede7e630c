"""The merchant's day in PAYBOT_TIMEZONE: `/today`, `/export` and the daily digest.

A day runs from local midnight; `/today` and the digest count the day so far
(`Reports.day`). The digest goes to each merchant chat of a link issued that day
before PAYBOT_DIGEST_AT, once that time has passed: sent once a chat a day however
many instances look and however often they restart, because the digest is queued
only by the transaction whose `digests.mark_sent` took the row. An instance that
starts after the hour sends the day's digest then; an older day's is not sent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot import render_day
from bot.errors import StoreUnavailable
from bot.export_csv import export_csv
from bot.i18n import Voices
from bot.inbox import finish_within
from bot.models import ChatRef, ExportFile, MessageKind, Outgoing
from bot.ports import Store

log = logging.getLogger(__name__)

EXPORT_DAYS = 7  # /export without a number
EXPORT_KEPT = timedelta(days=1)  # how long an export's URL serves it
MIDNIGHT = time(0, 0)


def local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The day's local midnight, as an aware time."""
    return datetime.combine(day, MIDNIGHT, tzinfo=zone)


class MerchantDay:
    """A merchant's `/today` and `/export`, answered through the outbox."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        voices: Voices,
        zone: ZoneInfo,
        on_queued: Callable[[], None],
    ) -> None:
        self._store, self._clock, self._voices = store, clock, voices
        self._zone, self._on_queued = zone, on_queued

    async def today(
        self, chat: ChatRef, issued_by: str | None = None, finishes_input: bool = False
    ) -> None:
        """`/today`; `finishes_input`: nothing follows in the command's handling, so the
        answer's transaction marks its inbox entry handled (bot/inbox.py)."""
        now = self._clock()
        day = local_day(now, self._zone)
        async with self._store.transaction() as tx:
            counts = await tx.reports.day(day_start(day, self._zone), now, issued_by)
            voice = await self._voices.of(tx, chat)
            text = render_day.today(voice, day, counts)
            await tx.outbox.enqueue([Outgoing(chat, MessageKind.TEXT, text)], now)
            finished = await finish_within(tx, now, last=finishes_input)
        finished()
        self._on_queued()

    async def export(
        self,
        chat: ChatRef,
        args: Sequence[str],
        issued_by: str | None = None,
        finishes_input: bool = False,
    ) -> None:
        """The CSV of the links issued in the last `days` local days, today included;
        `finishes_input` as for `today`."""
        days = export_days(args)
        if days is None:
            async with self._store.transaction() as tx:
                voice = await self._voices.of(tx, chat)
                usage = Outgoing(chat, MessageKind.TEXT, render_day.export_usage(voice))
                await tx.outbox.enqueue([usage], self._clock())
                finished = await finish_within(tx, self._clock(), last=finishes_input)
            finished()
            self._on_queued()
            return
        now = self._clock()
        today = local_day(now, self._zone)
        since = today - timedelta(days=days - 1)
        async with self._store.transaction() as tx:
            links = await tx.reports.issued_between(day_start(since, self._zone), now, issued_by)
        # Written between the two transactions: a year of links takes a while, and SQLite's
        # one writer should not wait for it.
        export = ExportFile(
            id=secrets.token_urlsafe(24),  # the media URL's only secret: 192 bits
            filename=f"paybot-links-{since.isoformat()}-to-{today.isoformat()}.csv",
            content=export_csv(links, self._zone),
            created_at=now,
            expires_at=now + EXPORT_KEPT,
        )
        async with self._store.transaction() as tx:
            await tx.exports.add(export)
            voice = await self._voices.of(tx, chat)
            text = render_day.export_caption(voice, since, len(links))
            answer = Outgoing(chat, MessageKind.TEXT, text, attachment=export.id)
            await tx.outbox.enqueue([answer], now)
            finished = await finish_within(tx, now, last=finishes_input)
        finished()
        self._on_queued()


def export_days(args: Sequence[str]) -> int | None:
    """`/export [days]`'s number of days; None when the arguments are not one."""
    if not args:
        return EXPORT_DAYS
    # isascii: int() would also read "٣" and " 3"; isdigit refuses "-1" and "+3".
    if len(args) != 1 or not (args[0].isascii() and args[0].isdigit()) or len(args[0]) > 3:
        return None
    days = int(args[0])
    return days if 1 <= days <= render_day.EXPORT_MOST_DAYS else None


class DailyDigest:
    """Sends each merchant chat its day's digest once PAYBOT_DIGEST_AT has passed."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        voices: Voices,
        zone: ZoneInfo,
        at: time | None,
        on_queued: Callable[[], None],
        every: float = 30.0,
        scope: Callable[[ChatRef], str | None] = lambda chat: None,
    ) -> None:
        self._store, self._clock, self._voices = store, clock, voices
        self._scope = scope  # a chat's `issued_by` filter: a cashier's own links, or all
        self._zone, self._at, self._on_queued, self._every = zone, at, on_queued, every
        # The last day this process has sent every digest of: only spares it the store's
        # time until the next day. What is sent is decided in the store.
        self._done: date | None = None

    @property
    def done_for(self) -> date | None:
        """The last local day whose digests this process has looked at and queued."""
        return self._done

    async def run(self) -> None:
        """Until cancelled; started only when PAYBOT_DIGEST_AT is a time."""
        while True:
            try:
                await self.send_due()
            except StoreUnavailable as error:  # the digests wait for the next look
                log.warning("digest: the store failed (%s); trying again", error)
            await asyncio.sleep(self._every)

    async def send_due(self) -> int:
        """Queue today's digests not sent yet, when their time has come; how many."""
        if self._at is None:
            return 0
        now = self._clock()
        day = local_day(now, self._zone)
        due = datetime.combine(day, self._at, tzinfo=self._zone)
        if now < due or self._done == day:
            return 0
        start = day_start(day, self._zone)
        async with self._store.transaction() as tx:
            chats = await tx.reports.merchant_chats(start, due)
        sent = 0
        for chat in chats:
            sent += await self._send(chat, day, start, now)
        if sent:
            log.info("digest: %d sent for %s", sent, day)
            self._on_queued()
        self._done = day
        return sent

    async def _send(self, chat: ChatRef, day: date, start: datetime, now: datetime) -> int:
        async with self._store.transaction() as tx:
            if not await tx.digests.mark_sent(chat, day, now):
                return 0  # sent already, by this process before a restart or by another
            counts = await tx.reports.day(start, now, self._scope(chat))
            voice = await self._voices.of(tx, chat)
            text = render_day.digest(voice, day, counts)
            await tx.outbox.enqueue([Outgoing(chat, MessageKind.TEXT, text)], now)
        return 1
