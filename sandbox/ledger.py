"""The sandbox's state: orders, their payment links and remembered idempotent replies.

Every method is synchronous, so within one event loop a check and the change it
guards can never interleave with another request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox.records import Attempt, Link, LinkStatus, Order, OrderState

_FINAL = (LinkStatus.PAID, LinkStatus.EXPIRED, LinkStatus.CANCELLED)


class OrderNotPayable(Exception):
    """The order cannot take payment (cancelled): the API's 409."""


class OrderPaid(Exception):
    """A paid order cannot be cancelled: the cancel call's 409."""


class LinkExpired(Exception):
    """The link is past its expiry: the API's 410."""


class PaymentInProgress(Exception):
    """A payment attempt cannot start in the link's current state: the API's 409."""


@dataclass(frozen=True)
class StoredReply:
    """The first answer given for an Idempotency-Key, replayed for every repeat."""

    order_id: str
    status_code: int
    body: dict[str, Any]


class Ledger:
    def __init__(
        self,
        orders: Iterable[Order],
        *,
        clock: Callable[[], datetime],
        link_ttl: timedelta,
    ) -> None:
        self.orders = {order.order_id: order for order in orders}
        self.links: dict[str, Link] = {}
        self._clock = clock
        self._link_ttl = link_ttl
        self._replies: dict[str, StoredReply] = {}

    def now(self) -> datetime:
        # Whole seconds, because the API writes times in whole seconds and a link
        # must not expire a fraction of a second before the time it announced.
        return self._clock().replace(microsecond=0)

    def order(self, order_id: str) -> Order:
        try:
            return self.orders[order_id]
        except KeyError:
            raise KeyError(f"no order {order_id!r} in the sandbox") from None

    def link(self, token: str) -> Link:
        try:
            return self.links[token]
        except KeyError:
            raise KeyError(f"no payment link {token!r} in the sandbox") from None

    def status(self, link: Link) -> LinkStatus:
        """The link's status now: past its expiry, an unpaid link is expired."""
        if link.status not in _FINAL and self.now() >= link.expires_at:
            return LinkStatus.EXPIRED
        return link.status

    def links_of(self, order_id: str) -> list[Link]:
        """The order's links, oldest first."""
        return [link for link in self.links.values() if link.order_id == order_id]

    def live_link(self, order_id: str) -> Link | None:
        """The order's newest link a customer can still pay, if any."""
        for link in reversed(self.links_of(order_id)):
            if self.status(link) not in _FINAL:
                return link
        return None

    def issue_link(self, order_id: str) -> tuple[Link, bool]:
        """The link to hand out for the order, and whether it is new."""
        order = self.order(order_id)
        if order.state is OrderState.CANCELLED:
            raise OrderNotPayable(f"order {order_id!r} is cancelled")
        if order.state is OrderState.PAID:
            # A paid order answers with a paid link, so its summary says "paid".
            for link in reversed(self.links_of(order_id)):
                if link.status is LinkStatus.PAID:
                    return link, False
            return self._new_link(order_id, LinkStatus.PAID), True
        live = self.live_link(order_id)
        if live is not None:
            return live, False
        return self._new_link(order_id, LinkStatus.PENDING), True

    def _new_link(self, order_id: str, status: LinkStatus) -> Link:
        now = self.now()
        token = "plt_" + secrets.token_urlsafe(16)
        link = Link(token, order_id, status, now, now + self._link_ttl, now)
        self.links[token] = link
        return link

    def cancel_order(self, order_id: str) -> Order:
        """Cancel the order unless it is paid: every link of it not paid is `cancelled`
        from now on. Cancelling a cancelled order changes nothing (a retry is safe).

        KeyError for an unknown order, OrderPaid for a paid one.
        """
        order = self.order(order_id)
        if order.state is OrderState.PAID:
            raise OrderPaid(f"order {order_id!r} is paid")
        order.state = OrderState.CANCELLED
        for link in self.links_of(order_id):
            if link.status is not LinkStatus.CANCELLED:
                self.move(link.token, LinkStatus.CANCELLED)
        return order

    def start_payment(
        self, token: str, reference_prefix: str, attempt: Attempt | None = None
    ) -> Link:
        """A customer starts paying: pending or failed moves to processing, with a new reference.

        Raises PaymentInProgress otherwise, so two payments never interleave on one link.
        """
        link = self.link(token)
        status = self.status(link)
        if status is LinkStatus.EXPIRED:
            raise LinkExpired(f"payment link {token!r} has expired")
        if status is LinkStatus.CANCELLED:
            raise OrderNotPayable(f"the order of payment link {token!r} is cancelled")
        if status not in (LinkStatus.PENDING, LinkStatus.FAILED):
            raise PaymentInProgress(f"payment link {token!r} is {status.value}")
        link.reference = f"{reference_prefix}-{secrets.randbelow(90_000_000) + 10_000_000}"
        link.attempt = attempt
        self.move(token, LinkStatus.PROCESSING)
        return link

    def move(self, token: str, status: LinkStatus) -> Link:
        """Force the link's status; a paid link marks its order paid."""
        link = self.link(token)
        link.status = status
        link.updated_at = self.now()
        if status is LinkStatus.PAID:
            self.order(link.order_id).state = OrderState.PAID
        return link

    def expire(self, token: str) -> Link:
        link = self.move(token, LinkStatus.EXPIRED)
        link.expires_at = min(link.expires_at, link.updated_at)
        return link

    def reply_for(self, idempotency_key: str) -> StoredReply | None:
        return self._replies.get(idempotency_key)

    def remember(self, idempotency_key: str, reply: StoredReply) -> None:
        self._replies[idempotency_key] = reply
