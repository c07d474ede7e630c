"""The bot's own HTTP server: webhooks, QR images, health, readiness and metrics.

A webhook (Cimplify's, Telegram's, Twilio's) is checked, stored in the inbox under
its sender's id, and only then answered `2xx`; it is handled after the answer, by
whichever process claims it (bot/inbox.py). Webhooks that arrive together share
one commit.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.cimplify import WebhookVerifier
from bot.errors import InvalidWebhook, StoreError, StoreRejected
from bot.inbox import Intake
from bot.invoices import qr_png
from bot.models import InboxEntry, utcnow
from bot.payments import event_entry
from bot.ports import Store
from bot.readiness import Readiness
from handlers.metrics import CONTENT_TYPE_LATEST, PrometheusMeter
from handlers.serving import read_body
from handlers.telegram import TelegramChannel
from handlers.whatsapp import WhatsAppChannel
from handlers.whatsapp_send import EXPORTS_PATH

log = logging.getLogger(__name__)

_LINK_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_EXPORT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
Endpoint = Callable[[Request], Awaitable[Response]]


class WebRoutes:
    def __init__(
        self,
        store: Store,
        verifier: WebhookVerifier,
        intake: Intake,
        telegram: TelegramChannel | None = None,
        whatsapp: WhatsAppChannel | None = None,
        readiness: Readiness | None = None,
        meter: PrometheusMeter | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._clock = clock
        self._readiness = readiness
        self._meter = meter or PrometheusMeter()
        self._verifier = verifier
        self._telegram = telegram
        self._whatsapp = whatsapp
        self._intake = intake

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                self._webhook("/webhooks/cimplify", "cimplify", self.cimplify_webhook),
                self._webhook("/webhooks/telegram", "telegram", self.telegram_webhook),
                self._webhook("/webhooks/twilio", "twilio", self.twilio_inbound),
                self._webhook("/webhooks/twilio/status", "twilio", self.twilio_status),
                Route("/qr/{name}", self.qr_image, methods=["GET"]),
                Route(EXPORTS_PATH + "/{name}", self.export_file, methods=["GET"]),
                Route("/healthz", self.health, methods=["GET"]),
                Route("/readyz", self.ready, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
            ]
        )

    def _webhook(self, path: str, source: str, endpoint: Endpoint) -> Route:
        """A webhook route whose refusals are counted; the inbox's intake counts what it
        stores (stored or duplicate), so each request counts once."""

        async def counted(request: Request) -> Response:
            response = await endpoint(request)
            if response.status_code >= 300:
                self._meter.webhook(source, "refused")
            return response

        return Route(path, counted, methods=["POST"])

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

    async def export_file(self, request: Request) -> Response:
        """An /export file, for WhatsApp's media fetch: by its unguessable id, for a day."""
        name = request.path_params["name"]
        export_id = name.removesuffix(".csv")
        if not name.endswith(".csv") or not _EXPORT_ID.fullmatch(export_id):
            return _error(404, "no such file")
        async with self._store.transaction() as tx:
            export = await tx.exports.get(export_id, self._clock())
        if export is None:
            return _error(404, "no such file")
        return Response(
            export.content,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{export.filename}"',
                # The id is the only key: no cache on the way may keep the file.
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def health(self, request: Request) -> Response:
        """Alive: the process answers. Nothing else is asked (that is /readyz)."""
        return PlainTextResponse("ok")

    async def ready(self, request: Request) -> Response:
        if self._readiness is None:
            problems = ["paybot is starting"]
        else:
            problems = await self._readiness.problems()
        if problems:
            return PlainTextResponse("\n".join(problems) + "\n", status_code=503)
        return PlainTextResponse("ready")

    async def metrics(self, request: Request) -> Response:
        if self._readiness is not None:
            with contextlib.suppress(StoreError):  # the gauge keeps its last value
                reading = await self._readiness.store_reading()
                if reading is not None:
                    self._meter.outbox_oldest_due(reading.outbox_late.total_seconds())
                    self._meter.inbox_oldest_waiting(reading.inbox_waiting.total_seconds())
        return Response(self._meter.exposition(), media_type=CONTENT_TYPE_LATEST)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
