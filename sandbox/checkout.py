"""The provider's side of a payment a customer starts on the payment page.

After `init`, the provider takes `provider_delay` seconds to reach the customer
(a prompt on the phone, the bank's 3-D Secure check, the transfer's details): the
link moves from `processing` to `awaiting_authorization`. The customer then
approves or declines, on the page in place of their phone, and the link settles.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable

from sandbox.ledger import Ledger
from sandbox.records import Attempt, Link, LinkStatus

MOVING = (LinkStatus.PROCESSING, LinkStatus.AWAITING_AUTHORIZATION)


class NotAuthorizable(Exception):
    """No payment with that reference is waiting for the customer: the page's 409."""


class Checkout:
    def __init__(
        self,
        ledger: Ledger,
        settle: Callable[[Link, LinkStatus], None],
        provider_delay: float = 2.0,
    ) -> None:
        self.provider_delay = provider_delay  # seconds; the demo and tests may change it
        self._ledger = ledger
        self._settle = settle
        self._tasks: set[asyncio.Task[None]] = set()

    def started(self, link: Link) -> None:
        """A payment began on the page: the provider reaches the customer shortly."""
        attempt = link.attempt
        if attempt is None:
            return
        task = asyncio.get_running_loop().create_task(self._reach_customer(link, attempt))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reach_customer(self, link: Link, attempt: Attempt) -> None:
        await asyncio.sleep(self.provider_delay)  # the provider's pace, not a wait for a condition
        if link.attempt is attempt and self._ledger.status(link) is LinkStatus.PROCESSING:
            self._ledger.move(link.token, LinkStatus.AWAITING_AUTHORIZATION)

    def authorize(self, token: str, reference: str, approve: bool) -> Link:
        """The customer's answer to the payment `reference`: it settles paid or failed.

        KeyError for an unknown token; NotAuthorizable when that payment is not waiting.
        """
        link = self._ledger.link(token)
        known = link.reference or ""
        if not hmac.compare_digest(known.encode(), reference.encode()):
            raise NotAuthorizable("that payment is not the one under way")
        if link.attempt is None or self._ledger.status(link) not in MOVING:
            raise NotAuthorizable(f"the payment is {self._ledger.status(link).value}")
        self._settle(link, LinkStatus.PAID if approve else LinkStatus.FAILED)
        return link

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
