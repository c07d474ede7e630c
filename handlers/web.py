"""The bot's own HTTP server: Cimplify webhooks, Telegram webhook updates, QR images, health.

A Cimplify webhook is verified on its raw bytes, stored under its id, and only
then answered `2xx`; it is applied after the answer. A crash between the two
loses nothing: stored events not yet applied are applied at start. Webhooks that
arrive together share one commit (bot/webhook_intake.py).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.cimplify import WebhookVerifier
from bot.errors import InvalidWebhook
from bot.invoices import qr_png
from bot.payments import Payments
from bot.webhook_intake import WebhookIntake
from handlers.serving import read_body
from handlers.telegram import TelegramChannel
from handlers.whatsapp import WhatsAppChannel
from storage import Store

log = logging.getLogger(__name__)

_LINK_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class WebRoutes:
    def __init__(
        self,
        store: Store,
        verifier: WebhookVerifier,
        payments: Payments,
        clock: Callable[[], datetime],
        telegram: TelegramChannel | None = None,
        whatsapp: WhatsAppChannel | None = None,
    ) -> None:
        self._store = store
        self._verifier = verifier
        self._telegram = telegram
        self._whatsapp = whatsapp
        self._intake = WebhookIntake(store, payments, clock)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/webhooks/cimplify", self.cimplify_webhook, methods=["POST"]),
                Route("/webhooks/telegram", self.telegram_webhook, methods=["POST"]),
                Route("/webhooks/twilio", self.twilio_inbound, methods=["POST"]),
                Route("/webhooks/twilio/status", self.twilio_status, methods=["POST"]),
                Route("/qr/{name}", self.qr_image, methods=["GET"]),
                Route("/healthz", self.health, methods=["GET"]),
            ]
        )

    async def cimplify_webhook(self, request: Request) -> Response:
        body = await read_body(request)
        if body is None:
            return _error(413, "body too large")
        try:
            event = self._verifier.verify(body, dict(request.headers))
        except InvalidWebhook as error:
            log.warning("cimplify webhook refused: %s", error)
            return _error(error.status_code, str(error))
        try:
            fresh = await self._intake.record(event, body)
        except Exception:
            # Not stored, so not acknowledged: Cimplify will deliver it again.
            log.exception("cimplify webhook %s could not be stored", event.id)
            return _error(503, "could not store the event; deliver it again")
        return JSONResponse({"received": event.id, "duplicate": not fresh})

    async def drain(self) -> None:
        """Wait for events being stored and applied (on shutdown)."""
        await self._intake.drain()

    async def telegram_webhook(self, request: Request) -> Response:
        if self._telegram is None:
            return _error(404, "the Telegram channel is off")
        secret = request.headers.get("x-telegram-bot-api-secret-token")
        if not self._telegram.secret_matches(secret):
            return _error(403, "bad secret token")
        body = await read_body(request)
        try:
            data = json.loads(body or b"")
        except ValueError:
            return _error(400, "not JSON")
        if not isinstance(data, dict):
            return _error(400, "not an update")
        try:
            await self._telegram.process_webhook_update(data)
        except ValueError:
            return _error(400, "not an update")
        return JSONResponse({"ok": True})

    async def twilio_inbound(self, request: Request) -> Response:
        if self._whatsapp is None:
            return _error(404, "the WhatsApp channel is off")
        return await self._whatsapp.inbound(request)

    async def twilio_status(self, request: Request) -> Response:
        if self._whatsapp is None:
            return _error(404, "the WhatsApp channel is off")
        return await self._whatsapp.status_callback(request)

    async def qr_image(self, request: Request) -> Response:
        name = request.path_params["name"]
        link_id = name.removesuffix(".png")
        if not name.endswith(".png") or not _LINK_ID.fullmatch(link_id):
            return _error(404, "no such image")
        async with self._store.transaction() as tx:
            link = await tx.link(link_id)
        if link is None:
            return _error(404, "no such image")
        return Response(
            qr_png(link.url),
            media_type="image/png",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    async def health(self, request: Request) -> Response:
        if await self._store.ping():
            return PlainTextResponse("ok")
        return PlainTextResponse("store not answering", status_code=503)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
