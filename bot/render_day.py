"""The words of the merchant's day: /today, the daily digest, /export. Pure functions.

Every sentence goes through the chat's `Voice`, its English text the message id.
"""

from __future__ import annotations

from datetime import date

from bot.i18n import Voice
from bot.models import DayCounts

EXPORT_MOST_DAYS = 366


def today(voice: Voice, day: date, counts: DayCounts) -> str:
    """`/today`: the day so far."""
    return voice.t("Your day so far, {day}:", day=voice.day(day)) + "\n" + _counts(voice, counts)


def digest(voice: Voice, day: date, counts: DayCounts) -> str:
    """The daily digest, sent by itself at PAYBOT_DIGEST_AT."""
    head = voice.t("Your daily digest, {day}:", day=voice.day(day))
    return head + "\n" + _counts(voice, counts)


def _counts(voice: Voice, counts: DayCounts) -> str:
    lines = [voice.tn("Issued: {count} link", "Issued: {count} links", counts.issued)]
    if counts.paid_sums:
        sums = ", ".join(voice.money(total) for total in counts.paid_sums)
        paid = voice.tn(
            "Paid: {count} link, {sums}", "Paid: {count} links, {sums}", counts.paid, sums=sums
        )
        lines.append(paid)
    else:
        lines.append(voice.tn("Paid: {count} link", "Paid: {count} links", counts.paid))
    lines.append(voice.tn("Open: {count} link", "Open: {count} links", counts.open))
    lines.append(voice.tn("Expired: {count} link", "Expired: {count} links", counts.expired))
    return "\n".join(lines)


def export_usage(voice: Voice) -> str:
    return voice.t(
        "Type /export for the links of the last 7 days, or /export <days> with 1 to {most} "
        "days, for example /export 30.",
        most=EXPORT_MOST_DAYS,
    )


def export_caption(voice: Voice, since: date, count: int) -> str:
    """The export's text: the file goes with it (a Telegram document, a WhatsApp link)."""
    return voice.tn(
        "Your links since {day}: {count} link, in a CSV file for a spreadsheet.",
        "Your links since {day}: {count} links, in a CSV file for a spreadsheet.",
        count,
        day=voice.day(since),
    )
