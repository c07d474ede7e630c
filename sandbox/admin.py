"""Routes for driving a demo by hand, and the hosted payment page.

No authentication: this is a sandbox on a developer's machine, and nothing here
moves money.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox.api import error, read_json_object
from sandbox.hosted_page import render_not_found, render_page
from sandbox.records import Order, money, rfc3339

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
            Route("/pay/{token}", self.page, methods=["GET"]),
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
            token = self._sandbox.pay_later(order_id, outcome=outcome, step_delay=step_delay)
        except KeyError:
            return error(404, "order_not_found", f"no order {order_id}")
        except ValueError as exc:
            return error(409, "no_live_link", str(exc))
        return JSONResponse({"order_id": order_id, "token": token, "outcome": outcome}, 202)

    async def expire(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            self._sandbox.expire(token)
        except KeyError:
            return error(404, "link_not_found", "no such payment link")
        return JSONResponse({"token": token, "status": "expired"})

    async def page(self, request: Request) -> Response:
        ledger = self._sandbox.ledger
        link = ledger.links.get(request.path_params["token"])
        if link is None:
            return HTMLResponse(render_not_found(), 404)
        html = render_page(ledger.order(link.order_id), ledger.status(link).value)
        return HTMLResponse(html)
