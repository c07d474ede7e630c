"""The fake Bot API, driven by the real python-telegram-bot over loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.fakes.bot_api import FakeBotApi
from tests.fakes.send_limits import SendLimiter, SendLimits

CHAT = 1001
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\r\n--not-a-boundary\r\n"
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Refresh", callback_data="refresh:1")]])


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as running:
        yield running


@pytest.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=f"{fake.base_url}/bot") as real_bot:
        yield real_bot


async def start_app(fake: FakeBotApi, *handlers: object) -> Application:  # type: ignore[type-arg]
    app = (
        Application.builder()
        .token(fake.token)
        .base_url(f"{fake.base_url}/bot")
        .base_file_url(f"{fake.base_url}/file/bot")
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)  # type: ignore[arg-type]
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    return app


async def stop_app(app: Application) -> None:  # type: ignore[type-arg]
    assert app.updater is not None
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


async def test_a_command_reaches_the_handler_and_its_reply_is_recorded(fake: FakeBotApi) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_user is not None and update.message is not None
        await update.message.reply_text(f"hello {update.effective_user.first_name} {context.args}")

    app = await start_app(fake, CommandHandler("start", start))
    try:
        fake.send_text("/start now", first_name="Kofi")
        reply = await fake.wait_for(lambda: next(iter(fake.messages(CHAT)), None))
    finally:
        await stop_app(app)
    assert reply.text == "hello Kofi ['now']"
    assert reply.chat_id == CHAT
    assert [c.method for c in fake.calls if c.method != "getUpdates"][:2] == [
        "getMe",
        "deleteWebhook",
    ]


async def test_a_button_press_reaches_the_callback_handler(fake: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "Pay here", reply_markup=KEYBOARD)
    pressed: list[str | None] = []

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None and update.callback_query.message is not None
        pressed.append(update.callback_query.data)
        assert update.callback_query.message.message_id == sent.message_id
        await update.callback_query.answer("checking")

    app = await start_app(fake, CallbackQueryHandler(on_button))
    try:
        fake.press_button("refresh:1", message_id=sent.message_id)
        answer = await fake.wait_for(
            lambda: next((c for c in fake.calls if c.method == "answerCallbackQuery"), None)
        )
    finally:
        await stop_app(app)
    assert pressed == ["refresh:1"]
    assert answer.params["text"] == "checking"


async def test_a_photo_keeps_its_bytes_caption_and_keyboard(fake: FakeBotApi, bot: Bot) -> None:
    message = await bot.send_photo(CHAT, photo=PNG, caption="123", reply_markup=KEYBOARD)
    (sent,) = fake.messages(CHAT)
    assert sent.photo == PNG
    assert sent.caption == "123"  # free text is not JSON-decoded into a number
    assert sent.reply_markup == KEYBOARD.to_dict()
    assert message.photo and message.photo[-1].file_id
    assert message.caption == "123" and message.reply_markup == KEYBOARD


async def test_a_caption_edit_is_recorded_and_a_no_op_edit_refused(
    fake: FakeBotApi, bot: Bot
) -> None:
    message = await bot.send_photo(CHAT, photo=PNG, caption="Pending", reply_markup=KEYBOARD)
    await bot.edit_message_caption(CHAT, message.message_id, caption="Paid", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_caption(
            CHAT, message.message_id, caption="Paid", reply_markup=KEYBOARD
        )
    (sent,) = fake.messages(CHAT)
    assert sent.caption == "Paid" and sent.edits == ["Paid"]
    assert [c.method for c in fake.calls].count("editMessageCaption") == 2


async def test_editing_an_unknown_message_is_a_bad_request(fake: FakeBotApi, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("new", chat_id=CHAT, message_id=999)
    assert fake.messages(CHAT) == []


async def test_a_text_edit_appends_to_edits(fake: FakeBotApi, bot: Bot) -> None:
    message = await bot.send_message(CHAT, "one", reply_markup=KEYBOARD)
    await bot.edit_message_text("two", chat_id=CHAT, message_id=message.message_id)
    (sent,) = fake.messages(CHAT)
    # An edit without reply_markup drops the keyboard, as Telegram does.
    assert (sent.text, sent.edits, sent.reply_markup) == ("two", ["two"], None)


async def test_fail_next_429_raises_retry_after(
    fake: FakeBotApi, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without PTB_TIMEDELTA, PTB 22 emits a deprecation warning when it builds RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.fail_next("sendMessage", retry_after=7, description="Too Many Requests: retry after 7")
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(CHAT, "first")
    assert raised.value.retry_after == timedelta(seconds=7)
    await bot.send_message(CHAT, "second")  # only the next call failed
    assert [m.text for m in fake.messages(CHAT)] == ["second"]


async def test_a_blocked_chat_is_forbidden(fake: FakeBotApi, bot: Bot) -> None:
    await bot.send_message(CHAT + 1, "still fine")
    fake.block(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "hello")
    assert fake.messages(CHAT) == [] and len(fake.messages(CHAT + 1)) == 1


async def test_unknown_methods_and_wrong_tokens_are_refused(fake: FakeBotApi, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with Bot("999:wrong", base_url=f"{fake.base_url}/bot"):
            pass  # entering calls getMe
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{fake.base_url}/bot{fake.token}/noSuchMethod")
    assert answer.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_get_updates_wakes_when_an_update_is_queued(fake: FakeBotApi, bot: Bot) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_for(lambda: any(c.method == "getUpdates" for c in fake.calls))
    started = time.monotonic()
    update_id = fake.send_text("hi")
    (update,) = await polling
    assert update.update_id == update_id and update.message and update.message.text == "hi"
    assert time.monotonic() - started < 2


async def test_stop_ends_a_pending_long_poll_quickly() -> None:
    fake = FakeBotApi()
    await fake.start()
    async with Bot(fake.token, base_url=f"{fake.base_url}/bot") as polling_bot:
        polling = asyncio.create_task(polling_bot.get_updates(timeout=30))
        await fake.wait_for(lambda: any(c.method == "getUpdates" for c in fake.calls))
        started = time.monotonic()
        await fake.stop()
        assert await polling == ()
    assert time.monotonic() - started < 2


async def test_wait_for_times_out_with_the_recent_calls(fake: FakeBotApi, bot: Bot) -> None:
    await bot.send_message(CHAT, "visible")
    with pytest.raises(AssertionError, match="sendMessage"):
        await fake.wait_for(lambda: False, timeout=0.2)


async def test_hostile_bodies_get_a_bad_request(fake: FakeBotApi) -> None:
    url = f"{fake.base_url}/bot{fake.token}/sendMessage"
    async with httpx.AsyncClient() as client:
        not_json = await client.post(
            url, content=b"{", headers={"content-type": "application/json"}
        )
        a_list = await client.post(url, json=[1, 2])
        no_chat = await client.post(url, data={"chat_id": "@nobody", "text": "hi"})
        as_json = await client.post(url, json={"chat_id": CHAT, "text": "via JSON"})
    assert [r.status_code for r in (not_json, a_list, no_chat)] == [400, 400, 400]
    assert as_json.json()["result"]["text"] == "via JSON"
    assert [m.text for m in fake.messages(CHAT)] == ["via JSON"]


async def test_flood_limits_refuse_with_retry_after_and_can_be_switched(
    fake: FakeBotApi, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    message = await bot.send_message(CHAT, "before the limits")
    fake.limits = SendLimits(overall=3, per_chat=1, window=30.0)
    for chat in (CHAT + 1, CHAT + 2, CHAT + 3):
        await bot.send_message(chat, "within the overall limit")
    with pytest.raises(RetryAfter) as overall:
        await bot.send_message(CHAT + 4, "a fourth in the window")
    with pytest.raises(RetryAfter):
        await bot.send_message(CHAT + 1, "a second to one chat")
    # Edits are not new messages: never counted, never refused.
    await bot.edit_message_text("edited", chat_id=CHAT, message_id=message.message_id)
    assert timedelta(seconds=1) <= overall.value.retry_after <= timedelta(seconds=30)
    assert [c.params["chat_id"] for c in fake.throttled] == [CHAT + 4, CHAT + 1]
    fake.limits = None
    await bot.send_message(CHAT + 4, "limits off")
    assert [m.text for m in fake.messages(CHAT + 4)] == ["limits off"]


def test_the_limiter_is_a_sliding_window_per_chat_and_overall() -> None:
    now = [0.0]
    limiter = SendLimiter(SendLimits(overall=2, per_chat=1, window=1.0), clock=lambda: now[0])
    assert limiter.admit("a") is None
    now[0] = 0.5
    assert limiter.admit("b") is None
    assert limiter.admit("c") == 1  # two in the last second already
    assert limiter.admit("a") == 1  # and "a" had one 0.5 s ago
    now[0] = 1.0  # the send at 0.0 has left the window; a refusal took no place
    assert limiter.admit("a") is None
    assert limiter.admit("c") == 1  # 0.5 and 1.0 fill it until 1.5
    now[0] = 1.5
    assert limiter.admit("c") is None
