"""WhatsApp through Twilio: signed webhooks in, outbox messages out (handlers.whatsapp_send).

An inbound message or status callback is checked against its
`X-Twilio-Signature`, stored in the inbox under Twilio's id, and only then
answered; the inbox hands it back to `handle_message` or `handle_receipt`
(bot/inbox.py), in order within a chat, whichever process claims it. Answers go
out through the outbox, never as TwiML, so they share its durability and pacing.

Signatures are checked against `PAYBOT_PUBLIC_URL` + the route's path, the URL
Twilio was given, never the URL this server sees (behind a proxy they differ).
"""

from __future__ import annotations

import json
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
from bot.errors import StoreError
from bot.inbox import Intake
from bot.models import ChatRef, DeliveryStatus, InboxEntry, InboxItem
from bot.ports import Store
from handlers.commands import Command, Conversation
from handlers.serving import read_body
from handlers.whatsapp_send import STATUS_PATH, WhatsAppMessenger, twilio_account

if TYPE_CHECKING:
    from bot.deliveries import Deliveries

__all__ = ["CHANNEL", "INBOUND_PATH", "STATUS_PATH", "WhatsAppChannel", "WhatsAppMessenger"]

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
INBOUND_PATH = "/webhooks/twilio"
WHATSAPP_MESSAGE = "whatsapp.message"  # inbox kinds
WHATSAPP_RECEIPT = "whatsapp.receipt"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_FROM = re.compile(r"whatsapp:(\+[1-9][0-9]{6,14})")
_MESSAGE_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_ERROR_CODE = re.compile(r"[0-9]{1,6}")
# What Twilio sends to a messaging webhook or status callback, and nothing else
# (twilio.com/docs/messaging/guides/webhook-request, .../track-outbound-message-status).
# A signature covers the fields as sent; without this list a captured post could be
# replayed re-cut, with fields added that some later reader would trust. The cost:
# a field Twilio adds later is refused (403, logged by name) until it is listed here.
TWILIO_FIELDS = frozenset(
    """MessageSid SmsSid SmsMessageSid AccountSid MessagingServiceSid From To Body
    NumMedia NumSegments SmsStatus ApiVersion ProfileName WaId Forwarded FrequentlyForwarded
    ButtonText ButtonPayload ButtonType InteractiveData FlowData ChannelMetadata MessageType
    Latitude Longitude Address Label OriginalRepliedMessageSid OriginalRepliedMessageSender
    ReferralNumMedia ReferralBody ReferralHeadline ReferralSourceId ReferralSourceType
    ReferralSourceUrl ReferralMediaId ReferralMediaContentType ReferralMediaUrl ReferralCtwaClid
    FromCity FromState FromZip FromCountry ToCity ToState ToZip ToCountry
    MessageStatus ErrorCode ErrorMessage ChannelPrefix ChannelInstallSid ChannelStatusMessage
    ChannelToAddress StructuredMessage RawDlrDoneDate EventType""".split()  # noqa: SIM905 - one line a group
)
_MEDIA_FIELD = re.compile(r"(MediaUrl|MediaContentType)[0-9]")  # up to 10 media a message
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
        intake: Intake,
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
        self._intake = intake

    async def inbound(self, request: Request) -> Response:
        """POST /webhooks/twilio: a message from a WhatsApp user, stored before the 200."""
        form = await self._signed_form(request, INBOUND_PATH)
        if isinstance(form, Response):
            return form
        sender, sid = _single(form, "From"), _single(form, "MessageSid")
        number = _FROM.fullmatch(sender or "")
        if number is None or sid is None or not _MESSAGE_SID.fullmatch(sid):
            return _refuse(400, "expected one From of whatsapp:+E164 and one MessageSid")
        body = json.dumps({"from": number.group(1), "text": _single(form, "Body") or ""})
        lane = f"{CHANNEL}:{number.group(1)}"
        refused = await self._store_entry(InboxEntry("twilio", sid, WHATSAPP_MESSAGE, lane, body))
        return refused or Response(EMPTY_TWIML, media_type="text/xml")

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
        body = json.dumps({"sid": sid, "status": status.value})
        entry = InboxEntry(
            "twilio-status", f"{sid}:{raw}", WHATSAPP_RECEIPT, f"receipt:{sid}", body
        )
        return await self._store_entry(entry) or Response(status_code=204)

    async def _store_entry(self, entry: InboxEntry) -> Response | None:
        """Store it before the answer; the refusal when it could not be stored."""
        try:
            await self._intake.store(entry)
        except StoreError as error:
            # Not stored, so not acknowledged: Twilio delivers it again.
            log.warning(
                "whatsapp: %s %s could not be stored: %s", entry.kind, entry.source_id, error
            )
            return _refuse(503, "could not store it; deliver it again")
        return None

    async def handle_message(self, item: InboxItem) -> None:
        """The inbox's handler for a stored inbound message: note the contact, answer it."""
        fields = json.loads(item.entry.body)
        chat = ChatRef(CHANNEL, fields["from"])
        async with self._store.transaction() as tx:
            await tx.contacts.note_inbound(chat, item.received_at)
        await self._conversation.handle(self.command(chat, fields["text"]))

    async def handle_receipt(self, item: InboxItem) -> None:
        """The inbox's handler for a stored status callback."""
        fields = json.loads(item.entry.body)
        await self._deliveries.apply(CHANNEL, fields["sid"], DeliveryStatus(fields["status"]))

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
        recut = _recut(form)
        if recut is not None:
            log.warning("whatsapp: refused a signed post to %s: %s", path, recut)
            return _refuse(403, recut)
        return form

    def command(self, chat: ChatRef, text: str) -> Command:
        """`invoice 1001`, `/Invoice 1001`: a name without slash, lower case; then the args."""
        words = text.split()
        name = words[0].lstrip("/").lower() if words else "help"
        sender = chat.chat_id
        return Command(
            chat=chat,
            sender=sender,
            is_merchant=sender in self._settings.whatsapp_merchants,
            name=name,
            args=tuple(words[1:]),
        )

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()


def _recut(form: MultiDict) -> str | None:
    """Why a signed form is not one Twilio sent: a field it never sends, or sends once."""
    names = [name for name, _ in form.multi_items()]
    for name in names:
        if name not in TWILIO_FIELDS and not _MEDIA_FIELD.fullmatch(name):
            return f"a field Twilio does not send: {name[:40]!r}"
        if names.count(name) > 1:
            return f"the field {name[:40]!r} given more than once"
    wa_id = form.get("WaId")
    if wa_id is not None and wa_id != (form.get("From") or "").removeprefix("whatsapp:+"):
        return "WaId is not the number in From"
    return None


def _single(form: MultiDict, name: str) -> str | None:
    """The field's value when it is given exactly once."""
    values = form.getlist(name)
    return values[0] if len(values) == 1 else None


def _refuse(status: int, message: str) -> Response:
    return Response(message, status_code=status, media_type="text/plain")
