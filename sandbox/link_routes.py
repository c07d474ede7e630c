"""JSON the payment page calls besides the Pay API: the customer's answer in place of
their phone, and Cimplify Link (a one-time code the page shows, saved methods, enrolment).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import catalogue
from sandbox.api import PHONE, error, read_json_object
from sandbox.checkout import NotAuthorizable
from sandbox.link_accounts import Account
from sandbox.records import Attempt, Link, LinkStatus

if TYPE_CHECKING:
    from sandbox.app import Sandbox

SESSION_COOKIE = "cimplify_link"
_TOKEN = re.compile(r"plt_[A-Za-z0-9_-]{1,64}")
_CODE = re.compile(r"[0-9]{6}")
_REFERENCE = re.compile(r"[A-Z]{2,8}-[0-9]{1,12}")
_BAD_PHONE = "send a phone number: + and 7 to 15 digits"


class LinkRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._accounts = sandbox.accounts

    def routes(self) -> list[Route]:
        return [
            Route("/sandbox/checkout/{token}/authorize", self.authorize, methods=["POST"]),
            Route("/sandbox/link/code", self.send_code, methods=["POST"]),
            Route("/sandbox/link/sign-in", self.sign_in, methods=["POST"]),
            Route("/sandbox/link/account", self.account, methods=["GET"]),
            Route("/sandbox/link/enrol", self.enrol, methods=["POST"]),
            Route("/sandbox/link/sign-out", self.sign_out, methods=["POST"]),
        ]

    async def authorize(self, request: Request) -> Response:
        """The customer approves or declines on their phone; the sandbox plays the phone."""
        body = await read_json_object(request) or {}
        token, reference = request.path_params["token"], body.get("reference")
        approve = body.get("approve")
        if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
            return error(400, "bad_request", 'send {"reference": "...", "approve": true|false}')
        if not _TOKEN.fullmatch(token) or not isinstance(approve, bool):
            return error(400, "bad_request", 'send {"reference": "...", "approve": true|false}')
        try:
            link = self._sandbox.checkout.authorize(token, reference, approve)
        except KeyError:
            return error(404, "link_not_found", "no such payment link")
        except NotAuthorizable as exc:
            return error(409, "not_waiting", str(exc))
        return JSONResponse({"status": link.status.value, "reference": link.reference})

    async def send_code(self, request: Request) -> Response:
        phone = _phone(await read_json_object(request))
        if phone is None:
            return error(400, "bad_request", _BAD_PHONE)
        # A real code comes by SMS; the sandbox gives it to the page, which shows it.
        return JSONResponse({"phone": phone, "code": self._accounts.send_code(phone, self._now())})

    async def sign_in(self, request: Request) -> Response:
        body = await read_json_object(request)
        phone, code = _phone(body), (body or {}).get("code")
        if phone is None or not isinstance(code, str) or not _CODE.fullmatch(code):
            return error(400, "bad_request", 'send {"phone": "+233…", "code": "123456"}')
        session = self._accounts.sign_in(phone, code, self._now())
        if session is None:
            return error(401, "wrong_code", "that code is wrong or expired")
        account = self._accounts.account(session)
        assert account is not None
        return self._signed_in(account, session, (body or {}).get("token"))

    async def account(self, request: Request) -> Response:
        account = self._accounts.account(request.cookies.get(SESSION_COOKIE))
        if account is None:
            return error(404, "not_signed_in", "this browser is not signed in to Link")
        token = request.query_params.get("token")
        return JSONResponse(self._describe(account, token))

    async def enrol(self, request: Request) -> Response:
        """A guest who just paid saves that way of paying, in one click."""
        body = await read_json_object(request) or {}
        token = body.get("token")
        link = self._sandbox.ledger.links.get(token) if isinstance(token, str) else None
        if link is None or link.attempt is None or link.status is not LinkStatus.PAID:
            return error(409, "nothing_to_save", "enrol after a payment on this link")
        phone = _phone(body) or link.attempt.phone
        if phone is None:
            return error(400, "bad_request", _BAD_PHONE)
        session = self._accounts.enrol(phone, link.attempt)
        account = self._accounts.account(session)
        assert account is not None
        return self._signed_in(account, session, token)

    async def sign_out(self, request: Request) -> Response:
        self._accounts.sign_out(request.cookies.get(SESSION_COOKIE))
        response = JSONResponse({"signed_in": False})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def _signed_in(self, account: Account, session: str, token: Any) -> Response:
        response = JSONResponse(self._describe(account, token))
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax", path="/")
        return response

    def _describe(self, account: Account, token: Any) -> dict[str, Any]:
        """The account, with the saved methods that can pay the link `token`'s order."""
        link = self._sandbox.ledger.links.get(token) if isinstance(token, str) else None
        usable = [m for m in account.methods if link is None or self._usable(m, link)]
        return {"phone": account.phone, "methods": [_method_view(m) for m in usable]}

    def _usable(self, method: Attempt, link: Link) -> bool:
        currency = self._sandbox.ledger.order(link.order_id).currency
        if method.method not in catalogue.methods(currency):
            return False
        provider = method.provider
        return provider is None or catalogue.provider_name(currency, provider) is not None

    def _now(self) -> datetime:
        return self._sandbox.ledger.now()


def _phone(body: dict[str, Any] | None) -> str | None:
    phone = (body or {}).get("phone")
    return phone if isinstance(phone, str) and PHONE.fullmatch(phone) else None


def _method_view(method: Attempt) -> dict[str, Any]:
    if method.method == "mobile_money" and method.provider is not None:
        label = f"{catalogue.name_of(method.provider)} {method.phone}"
    else:
        label = {"card": "Card", "bank_transfer": "Bank transfer"}.get(method.method, method.method)
    return {
        "method": method.method,
        "provider": method.provider,
        "phone": method.phone,
        "label": label,
    }
