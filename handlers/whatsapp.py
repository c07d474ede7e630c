"""WhatsApp through Twilio: signed webhooks in, outbox messages out (handlers.whatsapp_send).

An inbound message is checked against its `X-Twilio-Signature`, stored under
its MessageSid, and only then answered `200` with empty TwiML; it is handled
after the answer, in the background. Answers go out through the outbox, never
as TwiML, so they share its durability and pacing. A crash between storing
and handling loses nothing: `handle_pending` at start handles what is left.
A crash after handling and before it is marked handled answers it twice.

Signatures are checked against `PAYBOT_PUBLIC_URL` + the route's path, the URL
Twilio was given, never the URL this server sees (behind a proxy they differ).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import httpx
from starlette.datastructures import MultiDict
from starlette.requests import Request
from starlette.responses import Response
from twilio.request_validator import RequestValidator

from bot.config import Settings
from bot.models import ChatRef, DeliveryStatus, InboundMessage
from handlers.commands import Command, Conversation
from handlers.serving import read_body
from handlers.whatsapp_send import STATUS_PATH, WhatsAppMessenger, twilio_account
from storage import Store

if TYPE_CHECKING:
    from bot.deliveries import Deliveries

__all__ = ["CHANNEL", "INBOUND_PATH", "STATUS_PATH", "WhatsAppChannel", "WhatsAppMessenger"]

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
INBOUND_PATH = "/webhooks/twilio"
# Twilio's webhooks are a few hundred bytes of form fields; refuse anything larger unread.
BATCH = 20
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_FROM = re.compile(r"whatsapp:(\+[1-9][0-9]{6,14})")
_MESSAGE_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_ERROR_CODE = re.compile(r"[0-9]{1,6}")
_RECEIPTS = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
}  # queued, sending, accepted, ...: nothing the chat needs to hear about


class WhatsAppChannel:
    """The WhatsApp channel: Twilio's two webhooks, and the messenger the outbox sends with."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        conversation: Conversation,
        deliveries: Deliveries,
        clock: Callable[[], datetime],
        http: httpx.AsyncClient | None = None,
    ) -> None:
        _, token, _ = twilio_account(settings)
        self._settings = settings
        self._store = store
        self._conversation = conversation
        self._deliveries = deliveries
        self._clock = clock
        self._validator = RequestValidator(token)
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        self.messenger = WhatsAppMessenger(settings, store, self._http, clock)
        self._lock = asyncio.Lock()
        self._handling: set[asyncio.Task[None]] = set()
        self._run_queued = False

    async def inbound(self, request: Request) -> Response:
        """POST /webhooks/twilio: a message from a WhatsApp user, stored before the 200."""
        form = await self._signed_form(request, INBOUND_PATH)
        if isinstance(form, Response):
            return form
        sender, sid = _single(form, "From"), _single(form, "MessageSid")
        number = _FROM.fullmatch(sender or "")
        if number is None or sid is None or not _MESSAGE_SID.fullmatch(sid):
            return _refuse(400, "expected one From of whatsapp:+E164 and one MessageSid")
        chat = ChatRef(CHANNEL, number.group(1))
        message = InboundMessage(chat, sid, _single(form, "Body") or "", self._clock())
        try:
            async with self._store.transaction() as tx:
                fresh = await tx.record_inbound(message)
        except Exception:
            # Not stored, so not acknowledged: Twilio may deliver it again.
            log.exception("whatsapp: message %s from %s could not be stored", sid, chat)
            return _refuse(503, "could not store the message")
        if fresh:
            self._handle_soon()
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def status_callback(self, request: Request) -> Response:
        """POST /webhooks/twilio/status: how far one of our messages got."""
        form = await self._signed_form(request, STATUS_PATH)
        if isinstance(form, Response):
            return form
        sid, raw = _single(form, "MessageSid"), _single(form, "MessageStatus")
        if sid is None or raw is None or not _MESSAGE_SID.fullmatch(sid):
            return _refuse(400, "expected one MessageSid and one MessageStatus")
        status = _RECEIPTS.get(raw)
        if status is None:
            return Response(status_code=204)
        if status is DeliveryStatus.FAILED:
            code = _single(form, "ErrorCode") or ""
            shown = code if _ERROR_CODE.fullmatch(code) else "not given"
            log.warning("whatsapp: message %s was %s (Twilio error %s)", sid, raw, shown)
        try:
            await self._deliveries.apply(CHANNEL, sid, status)
        except Exception:
            log.exception("whatsapp: receipt %s for %s could not be recorded", raw, sid)
            return _refuse(503, "could not record the receipt")
        return Response(status_code=204)

    async def _signed_form(self, request: Request, path: str) -> MultiDict | Response:
        """The form fields, once the signature over public URL + path holds; else the refusal."""
        signature = request.headers.get("x-twilio-signature")
        if not signature:
            return _refuse(403, "missing X-Twilio-Signature")
        body = await read_body(request)
        if body is None:
            return _refuse(413, "body too large")
        try:
            # Repeated keys are kept: the signature covers every value.
            form = MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return _refuse(400, "expected a form-encoded UTF-8 body")
        if not self._validator.validate(self._settings.public_url + path, form, signature):
            log.warning("whatsapp: refused a post to %s with a bad signature", path)
            return _refuse(403, "bad X-Twilio-Signature")
        return form

    def _handle_soon(self) -> None:
        if self._run_queued:  # a run that has not started yet will see this message too
            return
        self._run_queued = True
        task = asyncio.create_task(self._queued_run())
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _queued_run(self) -> None:
        async with self._lock:
            self._run_queued = False
            await self._handle_stored()

    async def handle_pending(self) -> None:
        """Handle stored messages not handled yet, oldest first; one caller at a time."""
        async with self._lock:
            await self._handle_stored()

    async def _handle_stored(self) -> None:
        while True:
            try:
                async with self._store.transaction() as tx:
                    batch = await tx.unhandled_inbound(BATCH)
            except Exception:  # they stay stored; the next message or a restart retries
                log.exception("whatsapp: could not read the stored messages")
                return
            if not batch or not await self._handle_batch(batch):
                return

    async def _handle_batch(self, batch: list[InboundMessage]) -> bool:
        """Each chat's messages in order, chats side by side; False when the store failed."""
        by_chat: dict[ChatRef, list[InboundMessage]] = {}
        for message in batch:
            by_chat.setdefault(message.chat, []).append(message)
        marked = await asyncio.gather(*(self._handle_chat(msgs) for msgs in by_chat.values()))
        return all(marked)

    async def _handle_chat(self, messages: list[InboundMessage]) -> bool:
        for message in messages:
            if not await self._handle_one(message):
                return False
        return True

    async def _handle_one(self, message: InboundMessage) -> bool:
        """Answer it, then mark it handled; False when the marking failed."""
        sid, chat = message.message_id, message.chat
        try:
            await self._conversation.handle(self.command(message))
        except Exception:  # one bad message must not stop the rest
            log.exception("whatsapp: message %s from %s failed", sid, chat)
        try:
            async with self._store.transaction() as tx:
                await tx.mark_handled(chat, sid, self._clock())
        except Exception:
            log.exception("whatsapp: message %s from %s could not be marked handled", sid, chat)
            return False
        return True

    def command(self, message: InboundMessage) -> Command:
        """`invoice 1001`, `/Invoice 1001`: a name without slash, lower case; then the args."""
        words = message.text.split()
        name = words[0].lstrip("/").lower() if words else "help"
        sender = message.chat.chat_id
        return Command(
            chat=message.chat,
            sender=sender,
            is_merchant=sender in self._settings.whatsapp_merchants,
            name=name,
            args=tuple(words[1:]),
        )

    async def drain(self) -> None:
        """Wait for messages being handled (on shutdown); what is left is handled at start."""
        if self._handling:
            _, late = await asyncio.wait(list(self._handling), timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()


def _single(form: MultiDict, name: str) -> str | None:
    """The field's value when it is given exactly once."""
    values = form.getlist(name)
    return values[0] if len(values) == 1 else None


def _refuse(status: int, message: str) -> Response:
    return Response(message, status_code=status, media_type="text/plain")
