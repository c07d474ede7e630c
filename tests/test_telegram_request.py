"""A bot's requests reach the Bot API's socket with their body whole
(handlers/telegram_request.py), photos included, as python-telegram-bot builds them."""

from __future__ import annotations

import json

import httpx
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.request import HTTPXRequest

from bot.invoices import qr_png
from handlers.telegram_request import WholeBodies, bot_api_request
from tests.fakes.bot_api import FakeBotApi

TOKEN = "123456:TEST-token_abc"  # the fake Bot API's


class Recording(httpx.AsyncBaseTransport):
    """Stands where httpcore writes to the socket: the pieces each body came in."""

    def __init__(self) -> None:
        self.pieces: list[list[bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        self.pieces.append([piece async for piece in request.stream])
        message = {"message_id": 1, "date": 0, "chat": {"id": 7001, "type": "private"}}
        return httpx.Response(200, content=json.dumps({"ok": True, "result": message}))


async def _send_photo(transport: httpx.AsyncBaseTransport) -> None:
    request = HTTPXRequest(httpx_kwargs={"transport": transport})
    bot = Bot(TOKEN, base_url="http://bot-api.test/bot", request=request)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Refresh", callback_data="r:1")]])
    photo = qr_png("https://pay.cimplify.test/p/plt_request")
    await bot.send_photo(7001, photo=photo, caption="Order 1001", reply_markup=markup)
    await request.shutdown()


async def test_a_photo_goes_out_in_one_piece() -> None:
    whole, streamed = Recording(), Recording()
    await _send_photo(WholeBodies(whole))
    await _send_photo(streamed)
    assert len(streamed.pieces[0]) > 3  # what httpx does alone: a write for each part
    assert len(whole.pieces[0]) == 1
    assert whole.pieces[0][0] == b"".join(streamed.pieces[0]).replace(
        _boundary(streamed.pieces[0]), _boundary(whole.pieces[0])
    )
    assert b'name="caption"' in whole.pieces[0][0]


def _boundary(pieces: list[bytes]) -> bytes:
    return b"".join(pieces).split(b"\r\n", 1)[0]


async def test_a_bot_with_that_request_reaches_the_bot_api() -> None:
    async with FakeBotApi(token=TOKEN) as fake:
        request = bot_api_request()
        bot = Bot(TOKEN, base_url=f"{fake.base_url}/bot", request=request)
        photo = qr_png("https://pay.cimplify.test/p/plt_request")
        sent = await bot.send_photo(7001, photo=photo, caption="Order 1001")
        await request.shutdown()
    call = next(call for call in fake.calls if call.method == "sendPhoto")
    assert (call.params["chat_id"], call.params["caption"]) == (7001, "Order 1001")
    assert list(call.files.values()) == [photo]
    assert sent.message_id > 0
