"""Routes for driving a demo by hand.

No authentication: this is a sandbox on a developer's machine, and nothing here
moves money.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.api import error, read_json_object
from sandbox.ledger import OrderNotPayable, PaymentInProgress
from sandbox.records import Order, OrderState, money, rfc3339

if TYPE_CHECKING:
    from sandbox.app import Sandbox

_MAX_STEP_DELAY = 60.0


class AdminRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/sandbox/orders", self.list_orders, methods=["GET"]),
            Route("/sandbox/orders/{order_id}/pay", self.pay, methods=["POST"]),
            Route("/sandbox/links/{token}/expire", self.expire, methods=["POST"]),
        ]

    async def list_orders(self, request: Request) -> Response:
        orders = self._sandbox.ledger.orders.values()
        return JSONResponse({"orders": [self._describe(order) for order in orders]})

    def _describe(self, order: Order) -> dict[str, Any]:
        ledger = self._sandbox.ledger
        links = [
            {
                "token": link.token,
                "url": self._sandbox.link_url(link.token),
                "status": ledger.status(link).value,
                "expires_at": rfc3339(link.expires_at),
                "reference": link.reference,
            }
            for link in ledger.links_of(order.order_id)
        ]
        return {
            "order_id": order.order_id,
            "business_name": order.business_name,
            "currency": order.currency,
            "total": money(order.total),
            "state": order.state.value,
            "links": links,
        }

    async def pay(self, request: Request) -> Response:
        body = await read_json_object(request)
        outcome = "paid" if body is None else body.get("outcome", "paid")
        step_delay = 1.0 if body is None else body.get("step_delay", 1.0)
        if body is None or outcome not in ("paid", "failed"):
            return error(400, "bad_request", 'send {"outcome": "paid" | "failed"}')
        if isinstance(step_delay, bool) or not isinstance(step_delay, int | float):
            return error(400, "bad_request", "step_delay must be a number of seconds")
        if not 0 <= step_delay <= _MAX_STEP_DELAY:
            return error(400, "bad_request", f"step_delay must be 0 to {_MAX_STEP_DELAY:g}")
        order_id = request.path_params["order_id"]
        try:
            self._issue_if_needed(order_id)
            token = self._sandbox.pay_later(order_id, outcome=outcome, step_delay=step_delay)
        except KeyError:
            return error(404, "order_not_found", f"no order {order_id}")
        except OrderNotPayable:
            return error(409, "order_not_payable", f"order {order_id} is cancelled")
        except PaymentInProgress as exc:
            return error(409, "payment_in_progress", str(exc))
        except ValueError as exc:
            return error(409, "no_live_link", str(exc))
        url = self._sandbox.link_url(token)
        body = {"order_id": order_id, "token": token, "url": url, "outcome": outcome}
        return JSONResponse(body, 202)

    def _issue_if_needed(self, order_id: str) -> None:
        """An open order with no live link gets one, so that the banner's example works
        on a fresh sandbox (a bot's later `/invoice` reuses it)."""
        ledger = self._sandbox.ledger
        if ledger.order(order_id).state is OrderState.OPEN and ledger.live_link(order_id) is None:
            ledger.issue_link(order_id)

    async def expire(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            self._sandbox.expire(token)
        except KeyError:
            return error(404, "link_not_found", "no such payment link")
        return JSONResponse({"token": token, "status": "expired"})
