"""A fake Twilio on loopback: the Messages resource for WhatsApp, and signed webhooks.

paybot POSTs `{base_url}/2010-04-01/Accounts/{sid}/Messages.json`; the fake checks it
the way Twilio does, records accepted messages and injects faults. `paybot check`
GETs the account itself, `/2010-04-01/Accounts/{sid}.json`. It also drives
paybot like Twilio: inbound messages and status callbacks, signed X-Twilio-Signature.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tests.fakes.loopback import LoopbackServer

T = TypeVar("T")
Json = dict[str, Any]

API_VERSION = "2010-04-01"
_WHATSAPP = re.compile(r"whatsapp:\+[1-9][0-9]{1,14}")  # E.164: at most 15 digits
_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
_MAX_BODY, _MAX_MEDIA = 1600, 10  # Twilio's limits per message
_ERROR_CODES_FOR = frozenset({"failed", "undelivered"})


@dataclass(frozen=True)
class TwilioMessage:
    sid: str
    to: str
    from_: str
    body: str | None
    media_urls: list[str]
    content_sid: str | None
    content_variables: dict[str, Any] | None
    status_callback: str | None


class TwilioError(Exception):
    """A Twilio REST error; the endpoint renders it as Twilio's error JSON."""

    def __init__(
        self, status: int, code: int, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    def response(self) -> JSONResponse:
        more_info = f"https://www.twilio.com/docs/errors/{self.code}"
        body = {"code": self.code, "message": self.message, "more_info": more_info}
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return JSONResponse(body | {"status": self.status}, self.status, headers)


class FakeTwilio:
    """Real HTTP on 127.0.0.1; inspect `messages`, drive paybot with send_inbound/report_status."""

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "twilio-test-auth-token-0123456789",  # noqa: S107 - a test token
        sender: str = "whatsapp:+15550001111",
    ) -> None:
        self.account_sid, self.auth_token, self.sender = account_sid, auth_token, sender
        self.messages: list[TwilioMessage] = []
        self.requests: list[list[tuple[str, str]]] = []  # every authenticated send, as fields
        self._faults: list[TwilioError] = []
        self._rejected: dict[str, TwilioError] = {}
        self._activity = asyncio.Condition()
        self.account_status = "active"  # or "suspended", "closed"
        path = f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json"
        account = f"/{API_VERSION}/Accounts/{{account_sid}}.json"
        routes = [
            Route(path, self._send, methods=["POST"]),
            Route(account, self._account, methods=["GET"]),
        ]
        self._server = LoopbackServer(Starlette(routes=routes))

    @property
    def base_url(self) -> str:
        return self._server.base_url

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> FakeTwilio:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- what paybot sent

    def to(self, number: str) -> list[TwilioMessage]:
        """Messages to `number`, given as "+E164" or "whatsapp:+E164"."""
        address = number if number.startswith("whatsapp:") else f"whatsapp:{number}"
        return [m for m in self.messages if m.to == address]

    async def wait_for(self, predicate: Callable[[], T | bool | None], timeout: float = 5.0) -> T:
        """Re-check `predicate` after every request until it is truthy; return its value."""
        try:
            async with asyncio.timeout(timeout), self._activity:
                return cast(T, await self._activity.wait_for(predicate))
        except TimeoutError:
            recent = "\n".join(f"  {fields}" for fields in self.requests[-8:])
            raise AssertionError(
                f"condition not met within {timeout}s; {len(self.requests)} sends, "
                f"the last ones:\n{recent or '  (none)'}"
            ) from None

    # ---- faults

    def fail_next(
        self,
        *,
        status: int = 500,
        code: int = 20500,
        message: str = "Internal error",
        count: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """The next `count` authenticated sends fail with this error, before any validation."""
        self._faults.extend(TwilioError(status, code, message, retry_after) for _ in range(count))

    def reject(
        self,
        number: str,
        *,
        code: int = 63024,
        message: str = "Invalid message recipient",
        status: int = 400,
    ) -> None:
        """From now on every send to `number` fails with this permanent error."""
        address = number if number.startswith("whatsapp:") else f"whatsapp:{number}"
        self._rejected[address] = TwilioError(status, code, message)

    # ---- driving paybot, signed like Twilio

    async def send_inbound(
        self,
        paybot_url: str,
        from_number: str,
        body: str,
        *,
        message_sid: str | None = None,
        public_url: str | None = None,
        signature: str | None = None,
        profile_name: str = "Ama",
    ) -> httpx.Response:
        """POST an inbound WhatsApp message to paybot's /webhooks/twilio.

        Signed over `{public_url or paybot_url}/webhooks/twilio`, since paybot checks
        against PAYBOT_PUBLIC_URL; `signature` forges it ("" sends no header).
        """
        sid = message_sid or _new_sid("SM")
        sender = from_number.removeprefix("whatsapp:")
        fields = {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid}
        fields |= {"AccountSid": self.account_sid, "From": f"whatsapp:{sender}"}
        fields |= {"To": self.sender, "Body": body, "NumMedia": "0", "NumSegments": "1"}
        fields |= {"ProfileName": profile_name, "WaId": sender.removeprefix("+")}
        fields |= {"SmsStatus": "received", "ApiVersion": API_VERSION}
        signed_url = f"{public_url or paybot_url}/webhooks/twilio"
        return await self._post(f"{paybot_url}/webhooks/twilio", signed_url, fields, signature)

    async def report_status(
        self,
        message: TwilioMessage,
        status: str,
        *,
        public_url: str | None = None,
        deliver_to: str | None = None,
        error_code: int = 30008,
    ) -> httpx.Response:
        """POST a status callback for `message` to its StatusCallback URL.

        Signed over that URL, with its origin replaced by `public_url` if given;
        `deliver_to` replaces the origin the request goes to (when the callback
        names a public host the test cannot reach). ErrorCode goes with failures.
        """
        if message.status_callback is None:
            raise ValueError(f"message {message.sid} has no StatusCallback")
        fields = {"MessageSid": message.sid, "SmsSid": message.sid, "MessageStatus": status}
        fields |= {"SmsStatus": status, "AccountSid": self.account_sid, "To": message.to}
        fields |= {"From": message.from_, "ApiVersion": API_VERSION, "ChannelPrefix": "whatsapp"}
        if status in _ERROR_CODES_FOR:
            fields["ErrorCode"] = str(error_code)
        url = message.status_callback
        signed_url = _with_origin(url, public_url) if public_url else url
        target = _with_origin(url, deliver_to) if deliver_to else url
        return await self._post(target, signed_url, fields, None)

    async def _post(
        self, url: str, signed_url: str, fields: dict[str, str], signature: str | None
    ) -> httpx.Response:
        if signature is None:
            signature = RequestValidator(self.auth_token).compute_signature(signed_url, fields)
        headers = {"User-Agent": "TwilioProxy/1.1"}
        if signature:
            headers["X-Twilio-Signature"] = signature
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.post(url, data=fields, headers=headers)

    # ---- the Messages resource

    async def _send(self, request: Request) -> JSONResponse:
        try:
            self._authenticate(request)
            fields = _form_fields(await request.body())
            self.requests.append(fields)
            if self._faults:
                raise self._faults.pop(0)
            message = self._checked_message(fields)
        except TwilioError as error:
            response = error.response()
        else:
            self.messages.append(message)
            response = JSONResponse(self._resource(message), status_code=201)
        await self._notify()  # a waiter may be watching for this send, failed or not
        return response

    async def _account(self, request: Request) -> JSONResponse:
        """The Account resource, as Twilio describes it (fields paybot reads, and a few)."""
        try:
            self._authenticate(request)
        except TwilioError as error:
            return error.response()
        resource = {"sid": self.account_sid, "friendly_name": "paybot test", "type": "Full"}
        return JSONResponse(resource | {"status": self.account_status})

    async def _notify(self) -> None:
        async with self._activity:
            self._activity.notify_all()

    def _authenticate(self, request: Request) -> None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            credentials = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            credentials = ""
        expected = f"{self.account_sid}:{self.auth_token}"
        if scheme.lower() != "basic" or not secrets.compare_digest(credentials, expected):
            raise TwilioError(401, 20003, "Authenticate")
        if request.path_params["account_sid"] != self.account_sid:
            path = request.url.path
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")

    def _checked_message(self, fields: list[tuple[str, str]]) -> TwilioMessage:
        first = dict(reversed(fields))  # a repeated field counts by its first value
        to, from_ = first.get("To", ""), first.get("From", "")
        for name, address in (("To", to), ("From", from_)):
            if not _WHATSAPP.fullmatch(address):
                raise TwilioError(400, 21211, f"Invalid '{name}' Phone Number: {address}")
        if from_ != self.sender:
            raise TwilioError(400, 63007, f"Could not find a Channel with the From address {from_}")
        media = [value for key, value in fields if key == "MediaUrl"]
        body, content_sid = first.get("Body"), first.get("ContentSid")
        _check_content(body, media, content_sid)
        variables = _content_variables(first.get("ContentVariables"))
        callback = first.get("StatusCallback")
        if callback is not None and not _is_web_url(callback):
            raise TwilioError(400, 21609, f"Invalid StatusCallback url: {callback}")
        if to in self._rejected:
            raise self._rejected[to]
        sid = _new_sid("SM")
        return TwilioMessage(sid, to, from_, body, media, content_sid, variables, callback)

    def _resource(self, message: TwilioMessage) -> Json:
        now = format_datetime(datetime.now(UTC))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message.sid}"
        resource: Json = {"sid": message.sid, "account_sid": self.account_sid, "status": "queued"}
        resource |= {"to": message.to, "from": message.from_, "body": message.body or ""}
        resource |= {"num_media": str(len(message.media_urls)), "num_segments": "1"}
        resource |= {"date_created": now, "date_updated": now, "date_sent": None}
        resource |= {"direction": "outbound-api", "api_version": API_VERSION, "price": None}
        resource |= {"error_code": None, "error_message": None, "messaging_service_sid": None}
        resource |= {"uri": f"{uri}.json", "subresource_uris": {"media": f"{uri}/Media.json"}}
        return resource


def _form_fields(body: bytes) -> list[tuple[str, str]]:
    """The urlencoded body, repeated keys kept (python-multipart is not installed)."""
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise TwilioError(400, 20001, "Could not parse the request body") from None


def _check_content(body: str | None, media: list[str], content_sid: str | None) -> None:
    if content_sid is not None and not _CONTENT_SID.fullmatch(content_sid):
        raise TwilioError(400, 21655, f"The ContentSid is Invalid: {content_sid}")
    if content_sid is None and not body and not media:
        raise TwilioError(400, 21619, "A text message body or media urls must be specified.")
    if body is not None and len(body) > _MAX_BODY:
        raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 limit")
    if len(media) > _MAX_MEDIA or not all(_is_web_url(url) for url in media):
        raise TwilioError(400, 21620, "Invalid media URL(s)")


def _content_variables(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        raise TwilioError(400, 21656, "The ContentVariables Parameter is invalid")
    return decoded


def _is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _with_origin(url: str, root: str) -> str:
    """`url` with its scheme and host replaced by those of `root`."""
    target = urlsplit(root)
    return urlsplit(url)._replace(scheme=target.scheme, netloc=target.netloc).geturl()


def _new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)
