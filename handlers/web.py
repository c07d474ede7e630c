"""The bot's own HTTP server: Cimplify webhooks, Telegram webhook updates, QR images, health.

A webhook (Cimplify's, Telegram's, Twilio's) is checked, stored in the inbox under
its sender's id, and only then answered `2xx`; it is handled after the answer, by
whichever process claims it (bot/inbox.py). Webhooks that arrive together share
one commit.
"""

from __future__ import annotations

import logging
import re

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.cimplify import WebhookVerifier
from bot.errors import InvalidWebhook, StoreError, StoreRejected
from bot.inbox import Intake
from bot.invoices import qr_png
from bot.models import InboxEntry
from bot.payments import event_entry
from bot.ports import Store
from handlers.serving import read_body
from handlers.telegram import TelegramChannel
from handlers.whatsapp import WhatsAppChannel

log = logging.getLogger(__name__)

_LINK_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class WebRoutes:
    def __init__(
        self,
        store: Store,
        verifier: WebhookVerifier,
        intake: Intake,
        telegram: TelegramChannel | None = None,
        whatsapp: WhatsAppChannel | None = None,
    ) -> None:
        self._store = store
        self._verifier = verifier
        self._telegram = telegram
        self._whatsapp = whatsapp
        self._intake = intake

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
        fresh = await self._stored(event_entry(event, body))
        if isinstance(fresh, Response):
            return fresh
        return JSONResponse({"received": event.id, "duplicate": not fresh})

    async def _stored(self, entry: InboxEntry) -> bool | Response:
        """Store the entry: whether it was new, or the answer when it could not be stored.

        Not stored, not acknowledged: the sender delivers it again, unless it never
        can be stored (then a 400, so that it stops trying).
        """
        try:
            return await self._intake.store(entry)
        except StoreRejected as error:
            log.warning("%s %s refused by the store: %s", entry.kind, entry.source_id, error)
            return _error(400, "this cannot be stored")
        except StoreError as error:
            log.warning("%s %s could not be stored: %s", entry.kind, entry.source_id, error)
            return _error(503, "could not store it; deliver it again")

    async def drain(self) -> None:
        """Wait for webhooks being stored (on shutdown)."""
        await self._intake.drain()

    async def telegram_webhook(self, request: Request) -> Response:
        if self._telegram is None or not self._telegram.takes_webhooks:
            return _error(404, "Telegram updates are not taken here (TELEGRAM_MODE=webhook)")
        secret = request.headers.get("x-telegram-bot-api-secret-token")
        if not self._telegram.secret_matches(secret):
            return _error(403, "bad secret token")
        body = await read_body(request)
        if body is None:
            return _error(413, "body too large")
        try:
            entry = self._telegram.webhook_entry(body)
        except ValueError:
            return _error(400, "not an update")
        stored = await self._stored(entry)
        return stored if isinstance(stored, Response) else JSONResponse({"ok": True})

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
            link = await tx.links.get(link_id)
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
