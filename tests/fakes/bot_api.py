"""A fake Telegram Bot API on loopback that real python-telegram-bot can talk to.

It answers `{base_url}/bot{token}/{method}` in Bot API shape, queues updates for
getUpdates, records every call, and injects faults (429, blocked users). With
`limits`, it also enforces Telegram's flood limits on new messages (send_limits.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer
from tests.fakes.send_limits import NEW_MESSAGE_METHODS, SendLimiter, SendLimits

T = TypeVar("T")
Json = dict[str, Any]

# Fields whose value is free text: PTB sends them raw, so they must not be JSON-decoded
# ("123" as a message text stays a string).
_FREE_TEXT = frozenset(
    {"text", "caption", "parse_mode", "callback_query_id", "url", "photo", "secret_token"}
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_STALE_QUERY = "query is too old and response timeout expired or query ID is invalid"
_MAX_LENGTH = {"text": 4096, "caption": 1024}  # Bot API limits, in characters
_TOO_MANY = "Too Many Requests: retry after 1"
_NOT_FOUND = "Bad Request: message to edit not found"
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


@dataclass(frozen=True)
class ApiCall:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    filenames: dict[str, str] = field(default_factory=dict)  # multipart field -> file name
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class SentMessage:
    message_id: int
    chat_id: int
    text: str | None
    caption: str | None
    photo: bytes | None
    reply_markup: dict[str, Any] | None
    edits: list[str] = field(default_factory=list)
    file_id: str | None = None  # set for photo messages, also those sent by URL or file_id
    document: bytes | None = None  # sendDocument's file, as uploaded
    document_name: str | None = None  # and its file name
    at: float = field(default_factory=time.monotonic)  # when it was accepted


class BotApiError(Exception):
    """An error answer; the method handlers raise it, the endpoint renders it."""

    def __init__(
        self,
        status: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def response(self) -> JSONResponse:
        body: Json = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        if self.migrate_to_chat_id is not None:
            body["parameters"] = {"migrate_to_chat_id": self.migrate_to_chat_id}
        return JSONResponse(body, status_code=self.status)


class FakeBotApi:
    """Real HTTP on 127.0.0.1; drive it with send_text/press_button, inspect calls/messages."""

    def __init__(
        self,
        token: str = "123456:TEST-token_abc",  # noqa: S107 - a test token
        username: str = "paybot_test_bot",
        limits: SendLimits | None = None,
    ) -> None:
        self.token, self.base_url = token, ""
        self.calls: list[ApiCall] = []
        self.throttled: list[ApiCall] = []  # new messages refused by the flood limits
        self.sent: list[SentMessage] = []  # every message accepted, in order
        self._limiter = SendLimiter(limits) if limits else None
        self._bot: Json = {"id": int(token.split(":")[0]), "is_bot": True}
        self._bot |= {"first_name": "paybot", "username": username}
        self._updates: list[Json] = []
        self._next_update_id = self._next_message_id = 1
        self._sent: dict[tuple[int, int], SentMessage] = {}
        self._faults: dict[str, list[BotApiError]] = {}
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}  # a group's old id -> its supergroup's
        # Runs after a message is accepted and before the answer leaves: the moment a
        # bot has sent and not yet recorded it.
        self.before_answering_send: Callable[[SentMessage], Awaitable[None]] | None = None
        self._open_queries: set[str] = set()
        self._names: dict[int, str] = {}
        self._commands: list[Any] = []
        self._webhook_url = ""
        self._activity = asyncio.Condition()
        self._update_queued = asyncio.Event()
        self._stopping = False
        route = Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])
        self._loopback = LoopbackServer(Starlette(routes=[route]))

    # ---- lifecycle

    async def start(self) -> None:
        await self._loopback.start()
        self.base_url = self._loopback.base_url

    async def stop(self) -> None:
        self._stopping = True  # long-polling getUpdates returns [] at once
        self._update_queued.set()
        await self._loopback.stop()

    async def __aenter__(self) -> FakeBotApi:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- driving the bot

    def send_text(
        self, text: str, *, user_id: int = 1001, chat_id: int | None = None, first_name: str = "Ama"
    ) -> int:
        """Queue a Message update from a user; returns its update_id."""
        return self._queue(self._text_message(text, user_id, chat_id, first_name))

    def text_update(self, text: str, *, user_id: int = 1001, chat_id: int | None = None) -> Json:
        """A Message update from a user, numbered as queued ones are but not queued: what
        Telegram would post to a webhook."""
        update_id = self._next_update_id
        self._next_update_id += 1
        return {"update_id": update_id} | self._text_message(text, user_id, chat_id, "Ama")

    def _text_message(self, text: str, user_id: int, chat_id: int | None, first_name: str) -> Json:
        self._names[user_id] = first_name
        message: Json = self._message_head(
            self._next_message_id, user_id if chat_id is None else chat_id
        )
        self._next_message_id += 1
        message |= {"from": self._user(user_id), "text": text}
        if text.startswith("/"):
            # PTB's CommandHandler only fires on a bot_command entity (lengths in UTF-16 units).
            command = text.split(maxsplit=1)[0]
            length = len(command.encode("utf-16-le")) // 2
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"message": message}

    def press_button(
        self, data: str, *, message_id: int, user_id: int = 1001, chat_id: int | None = None
    ) -> int:
        """Queue a CallbackQuery update for a button on `message_id`; returns its update_id."""
        chat = user_id if chat_id is None else chat_id
        sent = self._sent.get((chat, message_id))
        message = self._message_json(sent) if sent else self._message_head(message_id, chat)
        query_id = f"query-{self._next_update_id}"
        self._open_queries.add(query_id)
        query = {"id": query_id, "from": self._user(user_id), "chat_instance": str(chat)}
        return self._queue({"callback_query": query | {"data": data, "message": message}})

    # ---- what the bot did

    def messages(self, chat_id: int) -> list[SentMessage]:
        return [m for (chat, _), m in self._sent.items() if chat == chat_id]

    async def wait_for(self, predicate: Callable[[], T | bool | None], timeout: float = 5.0) -> T:
        """Re-check `predicate` after every request until it is truthy; return its value."""
        try:
            async with asyncio.timeout(timeout), self._activity:
                return cast(T, await self._activity.wait_for(predicate))
        except TimeoutError:
            recent = [c for c in self.calls if c.method != "getUpdates"][-8:]
            lines = "\n".join(f"  {c.method} {c.params} files={list(c.files)}" for c in recent)
            raise AssertionError(
                f"condition not met within {timeout}s; {len(self.calls)} calls, "
                f"the last non-getUpdates ones:\n{lines or '  (none)'}"
            ) from None

    # ---- faults

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        count: int = 1,
        retry_after: int = 1,
        description: str = _TOO_MANY,
    ) -> None:
        if description == _TOO_MANY:  # keep the default's wording true to retry_after
            description = f"Too Many Requests: retry after {retry_after}"
        # Only 429 carries retry_after: PTB raises RetryAfter whenever the parameter is present.
        error = BotApiError(status, description, retry_after if status == 429 else None)
        self._faults.setdefault(method.lower(), []).extend([error] * count)

    def block(self, chat_id: int) -> None:
        self._blocked.add(chat_id)

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        """The group became a supergroup: what is sent to the old id is refused, naming the new."""
        self._migrated[chat_id] = new_chat_id

    @property
    def limits(self) -> SendLimits | None:
        return self._limiter.limits if self._limiter else None

    @limits.setter
    def limits(self, limits: SendLimits | None) -> None:
        """Switch the flood limits on, change them, or (None) off; windows start afresh."""
        self._limiter = SendLimiter(limits) if limits else None

    def _throttle(self, call: ApiCall, chat_id: object) -> None:
        if self._limiter is None or call.method.lower() not in NEW_MESSAGE_METHODS:
            return
        retry_after = self._limiter.admit(chat_id)
        if retry_after is not None:
            self.throttled.append(call)
            raise BotApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    # ---- HTTP

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return BotApiError(401, "Unauthorized").response()
        try:
            call = ApiCall(request.path_params["method"], *await _read_params(request))
        except ValueError:  # undecodable body (JSONDecodeError, UnicodeDecodeError)
            return BotApiError(400, "Bad Request: can't parse the request body").response()
        except BotApiError as error:
            return error.response()
        self.calls.append(call)
        await self._notify()  # a waiter may be watching for this call (a long poll starting)
        try:
            return JSONResponse({"ok": True, "result": await self._dispatch(call)})
        except BotApiError as error:
            return error.response()
        finally:
            await self._notify()  # and for what it changed

    async def _notify(self) -> None:
        async with self._activity:
            self._activity.notify_all()

    async def _dispatch(self, call: ApiCall) -> Any:
        # Bot API method names are case-insensitive.
        handler = getattr(self, f"_api_{call.method.lower()}", None)
        if handler is None:
            raise BotApiError(404, "Not Found")
        if faults := self._faults.get(call.method.lower()):
            raise faults.pop(0)
        chat_id = call.params.get("chat_id")
        if isinstance(chat_id, int) and chat_id in self._blocked:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        if isinstance(chat_id, int) and chat_id in self._migrated:
            upgraded = "Bad Request: group chat was upgraded to a supergroup chat"
            raise BotApiError(400, upgraded, migrate_to_chat_id=self._migrated[chat_id])
        self._throttle(call, chat_id)
        return await handler(call)

    # ---- Bot API methods: `_api_<lowercased name>`, found by _dispatch

    async def _api_getupdates(self, call: ApiCall) -> list[Json]:
        if self._webhook_url:  # as Telegram: one way of receiving updates at a time
            raise BotApiError(409, _WEBHOOK_ACTIVE)
        offset, limit = int(call.params.get("offset", 0)), int(call.params.get("limit", 100))
        if offset > 0:  # a positive offset confirms every earlier update
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(float(call.params.get("timeout", 0))):
                while not self._updates and not self._stopping:
                    self._update_queued.clear()
                    await self._update_queued.wait()
        return self._updates[:limit]

    async def _api_getme(self, call: ApiCall) -> Json:
        return self._bot | {"can_join_groups": False, "supports_inline_queries": False}

    async def _api_deletewebhook(self, call: ApiCall) -> bool:
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        return await self._api_setwebhook(ApiCall(call.method, {}, {}))

    async def _api_setwebhook(self, call: ApiCall) -> bool:
        self._webhook_url = str(call.params.get("url", ""))
        return True

    async def _api_getwebhookinfo(self, call: ApiCall) -> Json:
        info = {"url": self._webhook_url, "has_custom_certificate": False}
        return info | {"pending_update_count": len(self._updates)}

    async def _api_setmycommands(self, call: ApiCall) -> bool:
        self._commands = list(call.params.get("commands", []))  # scopes are not faked
        return True

    async def _api_getmycommands(self, call: ApiCall) -> list[Any]:
        return self._commands

    async def _api_close(self, call: ApiCall) -> bool:
        return True

    _api_logout = _api_close

    async def _api_answercallbackquery(self, call: ApiCall) -> bool:
        query_id = call.params.get("callback_query_id")
        if query_id not in self._open_queries:  # unknown, or answered already
            raise BotApiError(400, f"Bad Request: {_STALE_QUERY}")
        self._open_queries.discard(query_id)
        return True

    async def _api_sendmessage(self, call: ApiCall) -> Json:
        text = _checked_content("text", call.params.get("text"))
        answer = self._store(call.params, text=text)
        if self.before_answering_send is not None:
            await self.before_answering_send(self.sent[-1])
        return answer

    async def _api_sendphoto(self, call: ApiCall) -> Json:
        caption = _checked_content("caption", call.params.get("caption"))
        reference = call.params.get("photo")
        photo = call.files.get("photo") or self._photo_by_reference(reference, call.files)
        if photo is None and not reference:
            raise BotApiError(400, "Bad Request: there is no photo in the request")
        return self._store(call.params, caption=caption, photo=photo, is_photo=True)

    async def _api_senddocument(self, call: ApiCall) -> Json:
        caption = _checked_content("caption", call.params.get("caption"))
        field = "document"
        reference = call.params.get("document")
        if isinstance(reference, str) and reference.startswith("attach://"):
            field = reference.removeprefix("attach://")
        document = call.files.get(field)
        if document is None:  # paybot uploads its files; URLs and file_ids are not faked
            raise BotApiError(400, "Bad Request: there is no document in the request")
        answer = self._store(call.params, caption=caption)
        self.sent[-1].document = document
        self.sent[-1].document_name = call.filenames.get(field)
        return answer

    async def _api_editmessagetext(self, call: ApiCall) -> Json:
        return self._edit(call.params, "text")

    async def _api_editmessagecaption(self, call: ApiCall) -> Json:
        return self._edit(call.params, "caption")

    async def _api_editmessagereplymarkup(self, call: ApiCall) -> Json:
        return self._edit(call.params, None)

    # ---- state and JSON shapes

    def _queue(self, payload: Json) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id} | payload)
        self._update_queued.set()
        return update_id

    def _store(
        self,
        params: Json,
        *,
        text: str | None = None,
        caption: str | None = None,
        photo: bytes | None = None,
        is_photo: bool = False,
    ) -> Json:
        chat_id = _chat_id(params)
        message_id = self._next_message_id
        self._next_message_id += 1
        file_id = f"photo-{chat_id}-{message_id}" if is_photo else None
        sent = SentMessage(message_id, chat_id, text, caption, photo, _markup(params), [], file_id)
        self._sent[(chat_id, message_id)] = sent
        self.sent.append(sent)
        return self._message_json(sent)

    def _edit(self, params: Json, content: str | None) -> Json:
        """editMessageText/Caption/ReplyMarkup; `content` names the field edited, if any."""
        sent = self._to_edit(params)
        editable = {"text": sent.text is not None, "caption": sent.file_id is not None}
        if content and not editable[content]:
            raise BotApiError(400, f"Bad Request: there is no {content} in the message to edit")
        old = getattr(sent, content) if content else None
        new = _checked_content(content, params.get(content)) if content else None
        markup = _markup(params)
        # Telegram drops the keyboard when an edit omits reply_markup, and refuses no-op edits.
        if (new, markup) == (old, sent.reply_markup):
            raise BotApiError(400, _NOT_MODIFIED)
        sent.reply_markup = markup
        if content:
            setattr(sent, content, new)
            sent.edits.append(new or "")
        return self._message_json(sent)

    def _photo_by_reference(self, reference: Any, files: dict[str, bytes]) -> bytes | None:
        """A photo given as attach://name, or as the file_id of a photo sent before."""
        if isinstance(reference, str) and reference.startswith("attach://"):
            return files.get(reference.removeprefix("attach://"))
        known = (m.photo for m in self._sent.values() if m.file_id == reference)
        return next(known, None)

    def _to_edit(self, params: Json) -> SentMessage:
        if "chat_id" not in params or "message_id" not in params:
            raise BotApiError(400, _NOT_FOUND)  # inline messages are not faked
        key = (_chat_id(params), _int_param(params, "message_id"))
        if key not in self._sent:
            raise BotApiError(400, _NOT_FOUND)
        return self._sent[key]

    def _message_json(self, sent: SentMessage) -> Json:
        message = self._message_head(sent.message_id, sent.chat_id) | {"from": self._bot}
        optional = {"text": sent.text, "caption": sent.caption, "reply_markup": sent.reply_markup}
        message |= {key: value for key, value in optional.items() if value is not None}
        if sent.file_id is not None:
            size = {"file_id": sent.file_id, "file_unique_id": sent.file_id, "width": 512}
            message["photo"] = [size | {"height": 512, "file_size": len(sent.photo or b"")}]
        if sent.edits:
            message["edit_date"] = int(time.time())
        return message

    def _message_head(self, message_id: int, chat_id: int) -> Json:
        # Private chats have the user's positive id; groups have negative ids.
        chat: Json = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
        chat |= (
            {"first_name": self._names.get(chat_id, "Ama")} if chat_id > 0 else {"title": "Group"}
        )
        return {"message_id": message_id, "date": int(time.time()), "chat": chat}

    def _user(self, user_id: int) -> Json:
        return {"id": user_id, "is_bot": False, "first_name": self._names.get(user_id, "Ama")}


def _chat_id(params: Json) -> int:
    chat_id = params.get("chat_id")
    if not isinstance(chat_id, int) or isinstance(chat_id, bool):
        raise BotApiError(400, "Bad Request: chat not found")
    return chat_id


def _checked_content(kind: str, value: Any) -> str | None:
    """Text is required and at most 4096 characters; a caption optional, at most 1024."""
    if kind == "text" and not str(value or "").strip():
        raise BotApiError(400, "Bad Request: message text is empty")
    if value is not None and len(str(value)) > _MAX_LENGTH[kind]:
        raise BotApiError(
            400, f"Bad Request: message {'' if kind == 'text' else 'caption '}is too long"
        )
    return None if value is None else str(value)


def _int_param(params: Json, name: str) -> int:
    value = params.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BotApiError(400, f"Bad Request: invalid {name}")
    return value


def _markup(params: Json) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    if markup is not None and not isinstance(markup, dict):
        raise BotApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if len(str(button.get("callback_data", "")).encode()) > 64:  # Bot API limit
                raise BotApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


async def _read_params(request: Request) -> tuple[Json, dict[str, bytes], dict[str, str]]:
    """Decode form, multipart or JSON bodies the way the Bot API accepts them: the
    parameters, the files uploaded and their file names."""
    body, content_type = await request.body(), request.headers.get("content-type", "")
    fields: dict[str, str] = dict(request.query_params)
    files: dict[str, bytes] = {}
    names: dict[str, str] = {}
    if content_type.startswith("application/json") and body:
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise BotApiError(400, "Bad Request: the JSON body must be an object")
        return {**fields, **decoded}, files, names
    if content_type.startswith("multipart/form-data"):
        more, files, names = _parse_multipart(body, content_type)
        fields |= more
    elif body:
        fields |= dict(parse_qsl(body.decode(), keep_blank_values=True))
    return {key: _decode_field(key, value) for key, value in fields.items()}, files, names


def _decode_field(key: str, value: str) -> Any:
    # PTB sends strings raw and everything else (ints, bools, reply_markup) as JSON text.
    if key in _FREE_TEXT:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], dict[str, bytes], dict[str, str]]:
    # Hand-rolled because Starlette's form parser needs python-multipart, which paybot lacks.
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        raise BotApiError(400, "Bad Request: multipart boundary missing")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    names: dict[str, str] = {}
    for part in body.split(b"--" + boundary.group(1).encode())[1:-1]:
        head, _, content = part.removeprefix(b"\r\n").removesuffix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb';\s*name="([^"]*)"', head)
        if name is None:
            continue
        filename = re.search(rb';\s*filename="([^"]*)"', head)
        if filename is not None:
            files[name.group(1).decode()] = content
            names[name.group(1).decode()] = filename.group(1).decode()
        else:
            fields[name.group(1).decode()] = content.decode()
    return fields, files, names
