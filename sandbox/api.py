"""The Cimplify API as this project models it (CONTRACT §1): payment links and the Pay API.

Errors answer `{"error": {"code", "message"}}`. Choices the contract leaves open:
- an unpaid link past its expiry answers 410 on both Pay API reads, with
  `"status": "expired"` in the body; a paid link stays readable (paid is final);
- creating a link without an `Idempotency-Key` is 400, so a client that forgets
  it fails in tests; a key reused for another order is 422.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import catalogue
from sandbox.ledger import (
    Ledger,
    LinkExpired,
    OrderNotPayable,
    OrderPaid,
    PaymentInProgress,
    StoredReply,
)
from sandbox.records import ORDER_ID, Attempt, Link, LinkStatus, money, rfc3339

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
PHONE = re.compile(r"\+?[0-9]{7,15}")
_MAX_BODY = 2048


def error(status_code: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}, **extra}, status_code)


async def read_json_object(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object (`{}` when empty), or None when it is anything else."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            return None
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def payment_method(body: dict[str, Any], currency: str) -> Attempt | None:
    """The payment a valid `/init` body asks for, or None when the body is bad.

    Only the methods and providers the page offers for the order's currency are taken.
    """
    method = body.get("method")
    if method not in catalogue.methods(currency):
        return None
    if method != "mobile_money":
        return Attempt(method) if body == {"method": method} else None
    if body.keys() != {"method", "provider", "phone"}:
        return None
    provider, phone = body["provider"], body["phone"]
    if not isinstance(provider, str) or catalogue.provider_name(currency, provider) is None:
        return None
    if not isinstance(phone, str) or not PHONE.fullmatch(phone):
        return None
    return Attempt(method, provider, phone)


class CimplifyApi:
    def __init__(
        self,
        ledger: Ledger,
        *,
        secret_key: str,
        link_url: Callable[[str], str],
        challenge_url: Callable[[Link], str],
        on_started: Callable[[Link], None],
        being_played: Callable[[str], bool] = lambda token: False,
    ) -> None:
        self._ledger = ledger
        self._secret = f"Bearer {secret_key}".encode()
        self._link_url = link_url
        self._challenge_url = challenge_url  # a card's 3-D Secure page
        self._on_started = on_started
        self._being_played = being_played  # Sandbox.pay is paying it, from its first step

    def routes(self) -> list[Route]:
        return [
            Route("/v1/orders/{order_id}/payment-link", self.create_link, methods=["POST"]),
            Route("/v1/orders/{order_id}/cancel", self.cancel_order, methods=["POST"]),
            Route("/v1/pay/orders/{token}", self.summary, methods=["GET"]),
            Route("/v1/pay/orders/{token}/status", self.status, methods=["GET"]),
            Route("/v1/pay/orders/{token}/init", self.init, methods=["POST"]),
        ]

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._secret)

    async def create_link(self, request: Request) -> Response:
        if not self._authorized(request):
            return error(401, "unauthorized", "missing or wrong secret key")
        order_id = request.path_params["order_id"]
        if not ORDER_ID.fullmatch(order_id):
            return error(404, "order_not_found", "no such order")
        key = request.headers.get("idempotency-key", "")
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            return error(400, "idempotency_key_required", "send an Idempotency-Key header")
        if await read_json_object(request) is None:
            return error(400, "bad_request", "the body must be a JSON object")
        stored = self._ledger.reply_for(key)
        if stored is not None:
            if stored.order_id != order_id:
                return error(422, "idempotency_key_reused", "key was used for another order")
            return JSONResponse(stored.body, stored.status_code)
        return self._issue(order_id, key)

    async def cancel_order(self, request: Request) -> Response:
        """The Orders SDK's cancel: 200 for an open or cancelled order, 409 for a paid one."""
        if not self._authorized(request):
            return error(401, "unauthorized", "missing or wrong secret key")
        order_id = request.path_params["order_id"]
        if not ORDER_ID.fullmatch(order_id):
            return error(404, "order_not_found", "no such order")
        if await read_json_object(request) is None:
            return error(400, "bad_request", "the body must be a JSON object")
        try:
            self._ledger.cancel_order(order_id)
        except KeyError:
            return error(404, "order_not_found", f"no order {order_id}")
        except OrderPaid:
            return error(409, "order_paid", f"order {order_id} is paid and cannot be cancelled")
        return JSONResponse({"order_id": order_id, "status": "cancelled"})

    def _issue(self, order_id: str, key: str) -> Response:
        try:
            link, created = self._ledger.issue_link(order_id)
        except KeyError:
            return error(404, "order_not_found", f"no order {order_id}")
        except OrderNotPayable:
            return error(409, "order_not_payable", f"order {order_id} is cancelled")
        body = {"token": link.token, "url": self._link_url(link.token)}
        body["expires_at"] = rfc3339(link.expires_at)
        # Only answers that did the work are remembered: a refused request may be retried.
        reply = StoredReply(order_id, 201 if created else 200, body)
        self._ledger.remember(key, reply)
        return JSONResponse(reply.body, reply.status_code)

    def _readable_link(self, token: str) -> Link | Response:
        try:
            link = self._ledger.link(token)
        except KeyError:
            return error(404, "link_not_found", "no such payment link")
        if self._ledger.status(link) is LinkStatus.EXPIRED:
            return error(410, "link_expired", "this payment link has expired", status="expired")
        return link

    async def summary(self, request: Request) -> Response:
        link = self._readable_link(request.path_params["token"])
        if isinstance(link, Response):
            return link
        return JSONResponse(order_summary(self._ledger, link))

    async def status(self, request: Request) -> Response:
        link = self._readable_link(request.path_params["token"])
        if isinstance(link, Response):
            return link
        return JSONResponse(
            {
                "status": self._ledger.status(link).value,
                "updated_at": rfc3339(link.updated_at),
                "reference": link.reference,
            }
        )

    async def init(self, request: Request) -> Response:
        link = self._readable_link(request.path_params["token"])
        if isinstance(link, Response):
            return link
        body = await read_json_object(request)
        currency = self._ledger.order(link.order_id).currency
        attempt = None if body is None else payment_method(body, currency)
        if attempt is None:
            offered = ", ".join(catalogue.methods(currency))
            return error(400, "bad_request", f"expected a payment method of {offered}")
        try:
            if self._being_played(link.token):
                raise PaymentInProgress(f"a payment is already under way on {link.token}")
            self._ledger.start_payment(link.token, attempt.reference_prefix, attempt)
        except LinkExpired:
            return error(410, "link_expired", "this payment link has expired", status="expired")
        except PaymentInProgress as exc:
            return error(409, "payment_in_progress", str(exc))
        except OrderNotPayable as exc:
            return error(409, "order_not_payable", str(exc))
        self._on_started(link)
        redirect = self._challenge_url(link) if attempt.method == "card" else None
        return JSONResponse(
            {"reference": link.reference, "status": link.status.value, "redirect_url": redirect}
        )


def order_summary(ledger: Ledger, link: Link) -> dict[str, Any]:
    """The Pay API's order summary for `link` (CONTRACT §1)."""
    order = ledger.order(link.order_id)
    return {
        "token": link.token,
        "order_id": order.order_id,
        "business_name": order.business_name,
        "currency": order.currency,
        "total": money(order.total),
        "status": ledger.status(link).value,
        "expires_at": rfc3339(link.expires_at),
        "line_items": [
            {
                "name": item.name,
                "quantity": item.quantity,
                "unit_price": money(item.unit_price),
                "total": money(item.total),
            }
            for item in order.line_items
        ],
    }
