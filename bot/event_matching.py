"""Which link a verified success event confirms, if any.

A signed event is the truth about money (CONTRACT §2), so it must name exactly
one link: its token and its order id the same link (or, with no token, the
order's one link still in play), and its amount and currency that link's total.
Anything else is stored, not applied, and the link's merchants hear that an
event did not match, so that nothing is confirmed for the wrong order or sum,
and nothing that arrived goes unsaid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import Link, Status, WebhookEvent
from bot.ports import Tx


@dataclass(frozen=True)
class Match:
    """The link the event speaks of (None: none paybot knows), and why it may not
    confirm it (None: it may)."""

    link: Link | None
    mismatch: str | None = None


async def match_success(tx: Tx, event: WebhookEvent, now: datetime) -> Match:
    if event.token:
        found = await _by_token(tx, event)
    else:
        found = await _by_order(tx, event, now)
    if found.mismatch is not None or found.link is None:
        return found
    return _by_amount(found.link, event)


async def _by_token(tx: Tx, event: WebhookEvent) -> Match:
    assert event.token is not None
    link = await tx.links.by_token(event.token)
    if link is None:
        # Whose money is it? Tell the order's merchant, if paybot knows the order.
        return Match(
            await tx.links.latest_for_order(event.order_id), "its token names no link of ours"
        )
    if link.order_id != event.order_id:
        return Match(link, f"its token is this link's, but it names order {event.order_id}")
    return Match(link)


async def _by_order(tx: Tx, event: WebhookEvent, now: datetime) -> Match:
    # `order.completed` speaks of the order and may carry no token (CONTRACT §2). Only
    # the newest link of an order can be in play: a new one is made only when it is not.
    link = await tx.links.latest_for_order(event.order_id)
    if link is None:
        return Match(None)
    expired = link.status is Status.EXPIRED or (
        link.status is not Status.PAID and now >= link.expires_at
    )
    if expired and link.confirmed_at is None:
        return Match(link, "it names no token, and the order has no link in play")
    return Match(link)


def _by_amount(link: Link, event: WebhookEvent) -> Match:
    if event.amount is None:
        return Match(link, "it names no amount")
    if event.amount != link.total:
        return Match(link, "amount")  # said with both sums: render.amount_mismatch
    return Match(link)
