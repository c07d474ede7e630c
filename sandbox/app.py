"""`Sandbox`: an embedded Cimplify, its state, its webhooks and the hooks tests drive it by."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware

from sandbox.admin import AdminRoutes
from sandbox.api import CimplifyApi
from sandbox.checkout import MOVING, Checkout
from sandbox.faults import ApiGate, FaultPlan
from sandbox.ledger import Ledger, PaymentInProgress
from sandbox.link_accounts import LinkAccounts
from sandbox.page_routes import PageRoutes
from sandbox.records import Link, LinkStatus, Order, money, rfc3339, utcnow
from sandbox.seed import seed_orders
from sandbox.webhooks import Delivery, WebhookSender, event_body

logger = logging.getLogger(__name__)

_OUTCOMES = {"paid": LinkStatus.PAID, "failed": LinkStatus.FAILED}
ORDER_COMPLETED = "order.completed"


class Sandbox:
    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        webhook_url: str | None = None,
        link_ttl: timedelta = timedelta(hours=24),
        retry_delays: Sequence[float] = (0.5, 1, 2, 4, 8, 16, 30, 60),
        clock: Callable[[], datetime] = utcnow,
        http: httpx.AsyncClient | None = None,
        orders: Iterable[Order] | None = None,
    ) -> None:
        if not secret_key:
            raise ValueError("the sandbox needs a secret key")
        self.base_url = "http://sandbox.invalid"  # SandboxServer sets the real one
        self.ledger = Ledger(
            seed_orders() if orders is None else orders, clock=clock, link_ttl=link_ttl
        )
        self.requests: list[tuple[str, str]] = []
        self.arrived_at: list[float] = []  # time.monotonic() of each of `requests`
        self._secret_key = secret_key
        self._faults = FaultPlan()
        self._webhooks = WebhookSender(
            webhook_secret, url=webhook_url, retry_delays=retry_delays, http=http
        )
        self.checkout = Checkout(self.ledger, self.settle)
        self.accounts = LinkAccounts()
        self._background: set[asyncio.Task[str]] = set()
        self._playing: set[str] = set()  # tokens that `pay` is playing a customer on
        self._app: Starlette | None = None

    @property
    def webhook_url(self) -> str | None:
        return self._webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self._webhooks.url = url

    @property
    def deliveries(self) -> list[Delivery]:
        return self._webhooks.deliveries

    def link_url(self, token: str) -> str:
        """The payment page, `{sandbox}/{token}`, as `pay.cimplify.io/<token>` (CONTRACT §9)."""
        return f"{self.base_url}/{token}"

    def challenge_url(self, link: Link) -> str:
        """The card's 3-D Secure page, on the "provider's" side of the sandbox."""
        return f"{self.base_url}/sandbox/3ds/{link.token}?reference={link.reference}"

    def asgi(self) -> Starlette:
        if self._app is None:
            api = CimplifyApi(
                self.ledger,
                secret_key=self._secret_key,
                link_url=self.link_url,
                challenge_url=self.challenge_url,
                on_started=self.checkout.started,
                being_played=self._playing.__contains__,
            )
            gate = Middleware(
                ApiGate, plan=self._faults, requests=self.requests, arrived_at=self.arrived_at
            )
            # The page's catch-all `/{token}` goes last, after every fixed route.
            routes = [*api.routes(), *AdminRoutes(self).routes(), *PageRoutes(self).routes()]
            self._app = Starlette(routes=routes, middleware=[gate])
        return self._app

    def settle(self, link: Link, final: LinkStatus) -> None:
        """The payment ends paid or failed, and the signed webhooks say so (CONTRACT §2)."""
        self.ledger.move(link.token, final)
        if final is LinkStatus.PAID:
            self.send_event("payment.succeeded", link.order_id, token=link.token)
            self.send_event(ORDER_COMPLETED, link.order_id)
        else:
            self.send_event("payment.failed", link.order_id, token=link.token)

    async def pay(self, order_id: str, *, outcome: str = "paid", step_delay: float = 0.0) -> str:
        """Play the customer paying the order's newest live link; returns its token.

        PaymentInProgress when another payment is under way on that link (played here
        or started on the payment page): two payments never interleave on one link.
        """
        final = _final_status(outcome)
        link = self._payable_link(order_id)
        self._claim(link)
        return await self._play_claimed(link, final, step_delay)

    def _claim(self, link: Link) -> None:
        on_page = link.attempt is not None and self.ledger.status(link) in MOVING
        if link.token in self._playing or on_page:
            raise PaymentInProgress(f"a payment is already under way on {link.token}")
        self._playing.add(link.token)

    async def _play_claimed(self, link: Link, final: LinkStatus, step_delay: float) -> str:
        try:
            await self._play(link, final, step_delay)
        finally:
            self._playing.discard(link.token)
        return link.token

    async def _play(self, link: Link, final: LinkStatus, step_delay: float) -> None:
        for step in _steps(self.ledger.status(link), final):
            if self.ledger.status(link) is LinkStatus.EXPIRED:
                raise ValueError(f"payment link {link.token} expired during the payment")
            if step is LinkStatus.PROCESSING:
                self.ledger.start_payment(link.token, "MOMO")
            elif step is final:
                self.settle(link, final)
            else:
                self.ledger.move(link.token, step)
            if step is not final:
                await asyncio.sleep(step_delay)  # the customer's pace, not a wait for a condition

    def pay_later(self, order_id: str, *, outcome: str = "paid", step_delay: float = 0.0) -> str:
        """Check that `pay` can start, then run it in the background; returns the token."""
        final = _final_status(outcome)
        link = self._payable_link(order_id)
        self._claim(link)  # now, so that a second request at once is refused
        task = asyncio.get_running_loop().create_task(self._play_claimed(link, final, step_delay))
        self._background.add(task)
        task.add_done_callback(_log_failure)
        task.add_done_callback(self._background.discard)
        return link.token

    def _payable_link(self, order_id: str) -> Link:
        self.ledger.order(order_id)  # KeyError names an unknown order
        link = self.ledger.live_link(order_id)
        if link is None:
            raise ValueError(
                f"order {order_id} has no live payment link: create one first "
                f"(POST /v1/orders/{order_id}/payment-link)"
            )
        return link

    def set_status(self, token: str, status: str) -> None:
        self.ledger.move(token, LinkStatus(status))

    def expire(self, token: str) -> None:
        self.ledger.expire(token)

    def send_event(
        self,
        type: str,
        order_id: str,
        *,
        token: str | None = None,
        amount: str | None = None,
        currency: str | None = None,
        reference: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Queue a signed delivery of one event; missing fields come from the sandbox's records."""
        if amount is None or currency is None:
            order = self.ledger.orders.get(order_id)
            if order is None:
                raise ValueError(f"no order {order_id!r} in the sandbox: pass amount and currency")
            amount = money(order.total) if amount is None else amount
            currency = order.currency if currency is None else currency
        link = self._event_link(order_id, token)
        if token is None and type != ORDER_COMPLETED and link is not None:
            token = link.token  # order.completed speaks of the order, not a link (CONTRACT §2)
        if reference is None and link is not None:
            reference = link.reference
        data: dict[str, Any] = {"order_id": order_id}
        if token is not None:
            data["token"] = token
        data.update(amount=amount, currency=currency, reference=reference)
        event_id = event_id or "evt_" + secrets.token_hex(13)
        body = event_body(event_id, type, rfc3339(self.ledger.now()), data)
        self._webhooks.enqueue(event_id, type, body)
        return event_id

    def _event_link(self, order_id: str, token: str | None) -> Link | None:
        if token is not None:
            return self.ledger.links.get(token)
        links = self.ledger.links_of(order_id)
        return links[-1] if links else None

    def sign(
        self, body: bytes, *, event_id: str, timestamp: datetime | None = None
    ) -> dict[str, str]:
        return self._webhooks.sign(body, event_id=event_id, timestamp=timestamp)

    def fail_next(
        self,
        path_contains: str,
        *,
        status: int = 500,
        count: int = 1,
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> None:
        self._faults.add(
            path_contains, status=status, count=count, retry_after=retry_after, delay=delay
        )

    # A timeout parameter (not asyncio.timeout) because tests read better with it.
    async def wait_delivered(self, event_id: str, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await self._webhooks.wait_delivered(event_id, timeout)

    async def close(self) -> None:
        await self.checkout.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._webhooks.close()


def _final_status(outcome: str) -> LinkStatus:
    try:
        return _OUTCOMES[outcome]
    except KeyError:
        raise ValueError(f"outcome must be 'paid' or 'failed', not {outcome!r}") from None


def _steps(current: LinkStatus, final: LinkStatus) -> list[LinkStatus]:
    """What is left of pending -> processing -> awaiting_authorization -> final."""
    if current is LinkStatus.PROCESSING:
        return [LinkStatus.AWAITING_AUTHORIZATION, final]
    if current is LinkStatus.AWAITING_AUTHORIZATION:
        return [final]
    return [LinkStatus.PROCESSING, LinkStatus.AWAITING_AUTHORIZATION, final]


def _log_failure(task: asyncio.Task[str]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("sandbox payment did not complete: %s", task.exception())
