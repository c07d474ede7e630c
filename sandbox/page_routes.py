"""The customer's side of the sandbox: the payment page at `/{token}`, its assets, the
card's 3-D Secure page, and the JSON the page calls besides the Pay API (answers in
place of the customer's phone, Cimplify Link).

Every input comes from a browser: tokens, references, phones and codes are checked
against their shapes before anything is looked up.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.checkout import NotAuthorizable
from sandbox.link_routes import LinkRoutes
from sandbox.page_html import render_page
from sandbox.records import LinkStatus
from sandbox.three_ds import render_challenge

if TYPE_CHECKING:
    from sandbox.app import Sandbox

TOKEN = re.compile(r"plt_[A-Za-z0-9_-]{1,64}")
REFERENCE = re.compile(r"[A-Z]{2,8}-[0-9]{1,12}")
_ASSETS = Path(__file__).parent / "assets"
_ASSET_TYPES = {"page.js": "text/javascript", "page.css": "text/css"}
_MAX_FORM = 1024
# Nothing from outside the sandbox, and no inline script: the page works offline.
_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"


@cache
def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def page_response(html: str, status_code: int = 200) -> HTMLResponse:
    headers = {"Content-Security-Policy": _CSP, "Cache-Control": "no-store"}
    return HTMLResponse(html, status_code, headers=headers)


class PageRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/sandbox/assets/{name}", self.asset, methods=["GET"]),
            Route("/sandbox/3ds/{token}", self.challenge, methods=["GET"]),
            Route("/sandbox/3ds/{token}", self.challenge_answer, methods=["POST"]),
            *LinkRoutes(self._sandbox).routes(),
            Route("/{token}", self.page, methods=["GET"]),  # last: it would match any name
        ]

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        link = self._sandbox.ledger.links.get(token) if TOKEN.fullmatch(token) else None
        order = None if link is None else self._sandbox.ledger.order(link.order_id)
        html = render_page(token if link else "", order, Template(_asset("page.html")))
        return page_response(html, 200 if link else 404)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSET_TYPES:
            return Response("not found", 404, media_type="text/plain")
        headers = {"Cache-Control": "no-cache"}
        return Response(_asset(name), media_type=_ASSET_TYPES[name], headers=headers)

    async def challenge(self, request: Request) -> Response:
        """The bank's 3-D Secure page, where a card payment is confirmed or refused."""
        token = request.path_params["token"]
        reference = request.query_params.get("reference", "")
        link = self._sandbox.ledger.links.get(token) if TOKEN.fullmatch(token) else None
        if link is None or not REFERENCE.fullmatch(reference) or link.reference != reference:
            return page_response(render_challenge(None, "", ""), 404)
        order = self._sandbox.ledger.order(link.order_id)
        waiting = self._sandbox.ledger.status(link) in (
            LinkStatus.PROCESSING,
            LinkStatus.AWAITING_AUTHORIZATION,
        )
        return page_response(render_challenge(order if waiting else None, token, reference))

    async def challenge_answer(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await _small_form(request)
        reference = form.get("reference", "")
        answer = form.get("answer")
        if not TOKEN.fullmatch(token) or not REFERENCE.fullmatch(reference):
            return Response("bad request", 400, media_type="text/plain")
        if answer not in ("approve", "decline"):
            return Response("bad request", 400, media_type="text/plain")
        try:
            self._sandbox.checkout.authorize(token, reference, approve=answer == "approve")
        except KeyError:
            return Response("no such payment link", 404, media_type="text/plain")
        except NotAuthorizable:
            pass  # already answered: back to the page, which shows how it ended
        # Back to the payment page, which resumes following the payment (CONTRACT §9).
        return RedirectResponse(f"/{token}?reference={reference}", status_code=303)


async def _small_form(request: Request) -> dict[str, str]:
    """A url-encoded form of at most 1 KiB, one value a name; {} for anything else."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return {}
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=8, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in fields.items() if len(values) == 1}
