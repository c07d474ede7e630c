"""The Cimplify client: payment links, order summaries and statuses (CONTRACT §1).

Every assumption about Cimplify's HTTP API (paths, fields, status codes) lives in
this module and in `bot.cimplify_events` (value formats, signed webhooks).
Inputs are validated before any URL is built; answers are parsed strictly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from bot.cimplify_events import TOKEN, JsonObject, WebhookVerifier, load_json
from bot.errors import (
    CimplifyAuthError,
    CimplifyError,
    CimplifyProtocolError,
    CimplifyUnavailable,
    LinkExpired,
    LinkNotFound,
    OrderAlreadyPaid,
    OrderNotFound,
    OrderNotPayable,
)
from bot.models import CreatedLink, LineItem, Order, Status, StatusReport, parse_order_id

__all__ = ["CimplifyBusy", "CimplifyClient", "WebhookVerifier"]

log = logging.getLogger(__name__)

_WAIT_CAP = 5.0  # seconds: no single backoff wait is longer
_MAX_ATTEMPTS = 10  # a second bound, should waits be short (Retry-After: 0)
_PRINTABLE = re.compile(r"[\x21-\x7e]+")  # header- and URL-safe: no spaces, no line breaks
_CREATE_ERRORS: Mapping[int, type[CimplifyError]] = {404: OrderNotFound, 409: OrderNotPayable}
_CANCEL_ERRORS: Mapping[int, type[CimplifyError]] = {404: OrderNotFound, 409: OrderAlreadyPaid}
_PAY_ERRORS: Mapping[int, type[CimplifyError]] = {404: LinkNotFound, 410: LinkExpired}
_T = TypeVar("_T")


class CimplifyBusy(CimplifyUnavailable):
    """CimplifyUnavailable with Cimplify's own hint: `retry_after` seconds from a 429, else None."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    shown: str  # the path for logs and messages: tokens shortened, since a token is a credential
    headers: dict[str, str]
    body: bytes | None = None


class CimplifyClient:
    """Talks to Cimplify over httpx, retrying within a time budget."""

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        retry_budget: float = 20.0,
        timeout: float = 10.0,
        backoff_base: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the Cimplify base URL must be an http(s) URL")
        if not _PRINTABLE.fullmatch(secret_key):
            raise ValueError("the Cimplify secret key must be printable, without spaces")
        self._base = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {secret_key}"}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(follow_redirects=False)
        self._budget = retry_budget
        self._timeout = timeout
        self._backoff_base = backoff_base
        self._sleep = sleep
        self._clock = clock
        self._jitter = random.SystemRandom()

    async def create_link(self, order_id: str) -> CreatedLink:
        """Create a payment link for `order_id`; one idempotency key for all retries."""
        order_id = parse_order_id(order_id)
        path = f"/v1/orders/{order_id}/payment-link"
        headers = {**self._auth, "Idempotency-Key": uuid.uuid4().hex}
        headers["Content-Type"] = "application/json"
        call = _Call("POST", path, path, headers, b"{}")
        response = await self._send(call, patient=True)
        _check_status(call, response, _CREATE_ERRORS, ok=(200, 201))
        return _parse(call, response, _created_link)

    async def cancel_order(self, order_id: str) -> None:
        """Cancel the order (the Orders SDK's cancel): every link of it then reports
        `cancelled`. Cancelling a cancelled order changes nothing, so retries are safe.

        OrderAlreadyPaid on 409, OrderNotFound on 404.
        """
        order_id = parse_order_id(order_id)
        path = f"/v1/orders/{order_id}/cancel"
        headers = {**self._auth, "Content-Type": "application/json"}
        call = _Call("POST", path, path, headers, b"{}")
        response = await self._send(call, patient=True)
        _check_status(call, response, _CANCEL_ERRORS, ok=(200,))
        _parse(call, response, lambda value: _cancelled(value, order_id))

    async def order(self, token: str) -> Order:
        """The order summary behind a payment link's token."""
        call = _pay_call(_valid_token(token), "")
        response = await self._send(call, patient=True)
        _check_status(call, response, _PAY_ERRORS, ok=(200,))
        order = _parse(call, response, _order)
        if order.token != token:
            raise CimplifyProtocolError(f"{call.shown}: the summary is for another token")
        return order

    async def status(self, token: str, *, patient: bool = True) -> StatusReport:
        """The link's status; `patient=False` makes one attempt and never waits."""
        call = _pay_call(_valid_token(token), "/status")
        response = await self._send(call, patient=patient)
        _check_status(call, response, _PAY_ERRORS, ok=(200,))
        return _parse(call, response, lambda value: _status_report(value, call.shown))

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _send(self, call: _Call, *, patient: bool) -> httpx.Response:
        """The first answer that is not 429/5xx, or CimplifyBusy once retrying must stop."""
        started = self._clock()
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            outcome = await self._attempt(call, attempt)
            if isinstance(outcome, httpx.Response) and not _is_transient(outcome):
                return outcome
            failure, retry_after = _describe(outcome)
            if not patient:
                raise CimplifyBusy(f"Cimplify did not answer {call.shown}: {failure}", retry_after)
            wait = self._backoff(attempt) if retry_after is None else retry_after
            elapsed = self._clock() - started
            if attempt == _MAX_ATTEMPTS or elapsed + wait > self._budget:
                message = f"Cimplify did not answer after {attempt} attempts over {elapsed:.1f} s"
                raise CimplifyBusy(f"{message}: {failure}", retry_after)
            log.warning(
                "Cimplify %s %s: %s; retry %d in %.2f s",
                call.method,
                call.shown,
                failure,
                attempt,
                wait,
            )
            await self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, call: _Call, attempt: int) -> httpx.Response | httpx.TransportError:
        try:
            response = await self._http.request(
                call.method,
                self._base + call.path,
                headers={"Accept": "application/json", **call.headers},
                content=call.body,
                timeout=self._timeout,
            )
        except httpx.TransportError as exc:  # timeouts and refused connections among them
            log.debug(
                "Cimplify %s %s attempt %d: %s",
                call.method,
                call.shown,
                attempt,
                type(exc).__name__,
            )
            return exc
        log.debug(
            "Cimplify %s %s attempt %d: %d", call.method, call.shown, attempt, response.status_code
        )
        return response

    def _backoff(self, attempt: int) -> float:
        # Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
        # and Jitter"): spreads retries from many callers instead of synchronising them.
        ceiling = min(_WAIT_CAP, self._backoff_base * 2 ** (attempt - 1))
        return self._jitter.uniform(0, ceiling)


def _is_transient(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def _describe(outcome: httpx.Response | httpx.TransportError) -> tuple[str, float | None]:
    """Words for a failed attempt, and the wait Cimplify asked for (429 Retry-After)."""
    if isinstance(outcome, httpx.TransportError):
        return type(outcome).__name__, None
    if outcome.status_code == 429:
        return "429", retry_after_seconds(outcome.headers.get("Retry-After"))
    return str(outcome.status_code), None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date; None when unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _valid_token(token: str) -> str:
    if not TOKEN.fullmatch(token):
        raise LinkNotFound("not a payment link token")
    return token


def _pay_call(token: str, suffix: str) -> _Call:
    # The Pay API is public: the token is the credential, so no Authorization header.
    shown = f"/v1/pay/orders/{token[:6]}...{suffix}"
    return _Call("GET", f"/v1/pay/orders/{token}{suffix}", shown, {})


def _check_status(
    call: _Call,
    response: httpx.Response,
    errors: Mapping[int, type[CimplifyError]],
    *,
    ok: tuple[int, ...],
) -> None:
    code = response.status_code
    if code in ok:
        return
    if code == 401:
        raise CimplifyAuthError(f"Cimplify refused our credentials: 401 on {call.shown}")
    if code in errors:
        raise errors[code](f"Cimplify answered {code} on {call.shown}")
    raise CimplifyProtocolError(f"unexpected {code} from Cimplify on {call.method} {call.shown}")


def _parse(call: _Call, response: httpx.Response, reader: Callable[[object], _T]) -> _T:
    try:
        return reader(load_json(response.content))
    except ValueError as exc:
        raise CimplifyProtocolError(f"Cimplify's answer on {call.shown}: {exc}") from None


def _created_link(value: object) -> CreatedLink:
    link = JsonObject(value, "payment_link")
    url = link.text("url", _PRINTABLE)
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ValueError("payment_link.url: not an http(s) URL")
    return CreatedLink(link.text("token", TOKEN), url, link.timestamp("expires_at"))


def _cancelled(value: object, order_id: str) -> None:
    answer = JsonObject(value, "cancel")
    if answer.order_id() != order_id:
        raise ValueError("cancel.order_id: another order")
    if answer.text("status") != "cancelled":
        raise ValueError("cancel.status: not cancelled")


def _order(value: object) -> Order:
    order = JsonObject(value, "order")
    return Order(
        token=order.text("token", TOKEN),
        order_id=order.order_id(),
        business_name=order.text("business_name"),
        total=order.money("total"),
        status=_known_status(order.text("status"), "order summary"),
        expires_at=order.timestamp("expires_at"),
        line_items=tuple(_line_item(item) for item in order.objects("line_items")),
    )


def _line_item(item: JsonObject) -> LineItem:
    return LineItem(
        name=item.text("name"),
        quantity=item.integer("quantity"),
        unit_price=item.decimal("unit_price"),
        total=item.decimal("total"),
    )


def _status_report(value: object, shown: str) -> StatusReport:
    report = JsonObject(value, "status")
    raw = report.text("status")
    return StatusReport(
        status=_known_status(raw, shown),
        raw_status=raw,
        updated_at=report.optional_timestamp("updated_at"),
        reference=report.optional_text("reference"),
    )


def _known_status(raw: str, where: str) -> Status | None:
    try:
        return Status(raw)
    except ValueError:
        # A status newer than this code is "no change", not a crash (CONTRACT §1).
        log.warning(
            "Cimplify sent an unknown status %r in %s; treated as no change", raw[:64], where
        )
        return None
