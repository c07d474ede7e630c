"""Twilio's Messages API: the outbox's sending side for WhatsApp.

Inside WhatsApp's customer-service window (the chat wrote to us in the last 24
hours) a message is free-form: its text as `Body` and, for an invoice, the QR
as `MediaUrl` (`PAYBOT_PUBLIC_URL/qr/{link id}.png`, the bot's own route).
Outside it WhatsApp takes only an approved template, sent as `ContentSid` and
`ContentVariables`; the templates must have these variables:

    TWILIO_INVOICE_CONTENT_SID   {{1}} business name   {{2}} order id
                                 {{3}} total with its currency, "GH₵75.00"
                                 {{4}} the payment link
    TWILIO_STATUS_CONTENT_SID    {{1}} order id
                                 {{2}} the status in words, "Paid", "Confirmed", ...
    TWILIO_REMINDER_CONTENT_SID  the invoice's four variables, for a reminder to pay

for example "{{1}}: order {{2}}, {{3}}. Pay here: {{4}}" and "Order {{1}}: {{2}}".
The status template carries the link's status when the message is sent.
A message that needs a template none is configured for is dropped
(`PermanentDelivery`); so is one that is not about a link.

Twilio is called over httpx, not twilio's own REST client: one HTTP stack with
the Cimplify client, `TWILIO_API_BASE` honoured by building the URL ourselves,
our own timeouts, and tests that fake the transport. twilio's library is used
for what it alone should do: checking webhook signatures (handlers.whatsapp).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from bot import render
from bot.config import Settings
from bot.errors import ChannelOff, PermanentDelivery, RetryLater, TransientDelivery
from bot.follow_up_messages import REMINDER_ACTION
from bot.i18n import Voice
from bot.models import ChatRef, Link, MessageKind
from bot.outbox import Delivery
from bot.ports import Store

log = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status"
EXPORTS_PATH = "/exports"  # GET /exports/{id}.csv: an /export file (handlers/web.py)
WINDOW = timedelta(hours=24)  # WhatsApp's customer-service window
BODY_LIMIT = 1600  # Twilio's limit for one message's Body
MAX_RETRY_AFTER = 600.0
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_SECONDS = re.compile(r"[0-9]{1,6}(?:\.[0-9]+)?")

NO_TEMPLATE = "outside WhatsApp's 24-hour window and no approved template is configured"


def twilio_account(settings: Settings) -> tuple[str, str, str]:
    """Account SID, auth token and WhatsApp sender; ChannelOff unless all are set."""
    sid, token, sender = (
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_whatsapp_from,
    )
    if sid is None or token is None or sender is None:
        raise ChannelOff("whatsapp")
    return sid, token.reveal(), sender


class WhatsAppMessenger:
    """Sends one outbox `Delivery` as one Twilio message."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime],
    ) -> None:
        sid, token, sender = twilio_account(settings)
        self._settings = settings
        self._store = store
        self._http = http
        self._clock = clock
        self._url = f"{settings.twilio_api_base}/2010-04-01/Accounts/{sid}/Messages.json"
        self._auth = httpx.BasicAuth(sid, token)
        self._sender = sender

    async def deliver(self, delivery: Delivery) -> str | None:
        """Send it; Twilio's MessageSid, which its status callbacks name."""
        message = delivery.message
        if message.kind is MessageKind.CAPTION:
            return None  # WhatsApp cannot edit; status changes arrive as new messages anyway
        if await self._in_window(message.chat):
            content = self._free_form(delivery)
        else:
            content = self._template(delivery)
        fields = {
            "From": self._sender,
            "To": f"whatsapp:{message.chat.chat_id}",
            "StatusCallback": self._settings.public_url + STATUS_PATH,
            **content,
        }
        return _message_sid(await self._post(fields))

    async def _in_window(self, chat: ChatRef) -> bool:
        async with self._store.transaction() as tx:
            last = await tx.contacts.last_inbound_at(chat)
        return last is not None and self._clock() - last < WINDOW

    def _free_form(self, delivery: Delivery) -> dict[str, str]:
        message = delivery.message
        fields = {"Body": _clipped(message.text)}
        if message.attachment is not None:
            if delivery.attachment is None:
                raise PermanentDelivery("the export has expired before it could be sent")
            # The file as WhatsApp media, and its URL in the text too, for a phone that
            # does not open a CSV itself. Served by handlers/web.py for a day.
            url = f"{self._settings.public_url}{EXPORTS_PATH}/{message.attachment}.csv"
            fields = {"Body": _clipped(f"{message.text}\n{url}"), "MediaUrl": url}
        if message.kind is MessageKind.INVOICE:
            link = _link_of(delivery)
            fields["MediaUrl"] = f"{self._settings.public_url}/qr/{link.id}.png"
        return fields

    def _template(self, delivery: Delivery) -> dict[str, str]:
        message = delivery.message
        sid: str | None = None  # an answer or notice about no link: no template says it
        fill = _status_variables
        if message.kind is MessageKind.INVOICE and _is_reminder(delivery):
            sid, fill = self._settings.twilio_reminder_content_sid, _invoice_variables
        elif message.kind is MessageKind.INVOICE:
            sid, fill = self._settings.twilio_invoice_content_sid, _invoice_variables
        elif message.link_id is not None:
            sid = self._settings.twilio_status_content_sid
        if sid is None:
            raise PermanentDelivery(NO_TEMPLATE)
        variables = json.dumps(fill(_link_of(delivery), delivery.voice), ensure_ascii=False)
        return {"ContentSid": sid, "ContentVariables": variables}

    async def _post(self, fields: dict[str, str]) -> httpx.Response:
        try:
            response = await self._http.post(self._url, data=fields, auth=self._auth)
        except httpx.TimeoutException as error:
            problem = f"Twilio did not answer in time ({type(error).__name__})"
            raise TransientDelivery(problem) from error
        except httpx.TransportError as error:  # connection refused, reset, DNS
            problem = f"could not reach Twilio ({type(error).__name__})"
            raise TransientDelivery(problem) from error
        _raise_for_error(response)
        return response


def _is_reminder(delivery: Delivery) -> bool:
    """A reminder to pay (bot/follow_ups.py) carries the QR as an invoice does, and this
    mark, so that outside the window it goes as the reminder's template."""
    return any(button.action == REMINDER_ACTION for button in delivery.message.buttons)


def _link_of(delivery: Delivery) -> Link:
    if delivery.link is None:
        raise PermanentDelivery("the message's payment link is gone")
    return delivery.link


def _invoice_variables(link: Link, voice: Voice) -> dict[str, str]:
    values = (
        render.plain_name(link.business_name),
        link.order_id,
        render.money(link.total, voice),
        link.url,
    )
    return {str(n): _variable(value) for n, value in enumerate(values, start=1)}


def _status_variables(link: Link, voice: Voice) -> dict[str, str]:
    return {"1": _variable(link.order_id), "2": _variable(render.status_words(link, voice))}


def _variable(value: str) -> str:
    """WhatsApp refuses template variables that are empty or hold newlines or tabs."""
    return " ".join(value.split()) or "-"


def _clipped(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[: BODY_LIMIT - 1] + "…"


def _raise_for_error(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        raise RetryLater(_retry_after(response.headers.get("retry-after")))
    if status >= 500:
        raise TransientDelivery(f"Twilio answered {status}")
    code, text = _twilio_error(response)
    if status == 401:
        # Our credentials, not this message: keep it until the operator fixes them.
        raise TransientDelivery(
            f"Twilio {code}: {text} (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)"
        )
    raise PermanentDelivery(f"Twilio {code}: {text}")


def _twilio_error(response: httpx.Response) -> tuple[str, str]:
    """Twilio's error code (21211, 21610, 63016, ...) and message, as far as given."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return str(response.status_code), "no error detail"
    code, text = body.get("code"), body.get("message")
    shown_code = str(code) if isinstance(code, int) else str(response.status_code)
    shown_text = " ".join(text.split())[:200] if isinstance(text, str) else "no error detail"
    return shown_code, shown_text


def _retry_after(header: str | None) -> float:
    """Seconds from a Retry-After of seconds; 1 s when absent or an HTTP date."""
    if header is None or not _SECONDS.fullmatch(header.strip()):
        return 1.0
    return min(float(header), MAX_RETRY_AFTER)


def _message_sid(response: httpx.Response) -> str | None:
    try:
        sid = response.json().get("sid")
    except (ValueError, AttributeError):
        sid = None
    if isinstance(sid, str) and _SID.fullmatch(sid):
        return sid
    # Sent, but its receipts cannot be matched to it.
    log.warning("whatsapp: Twilio accepted a message but gave no valid sid")
    return None
