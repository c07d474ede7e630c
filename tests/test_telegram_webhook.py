"""TELEGRAM_MODE=webhook (CONTRACT §4, §6): setWebhook at start and never getUpdates;
posted updates checked, stored under their update_id, then answered 200.

The whole bot runs against the fake Bot API, which records every call it gets;
the tests post updates to paybot as Telegram would. In polling mode the route is 404.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.errors import ConfigError
from handlers.telegram_polling import ALLOWED_UPDATES
from paybot.app import Paybot
from sandbox import Sandbox, SandboxServer
from tests.fakes.bot_api import ApiCall, FakeBotApi
from tests.harness import (
    BOT_TOKEN,
    MERCHANT,
    PUBLIC_URL,
    SECRET_KEY,
    WEBHOOK_SECRET,
    World,
    quick_tuning,
    running_world,
    settings_for,
)
from tests.store_rows import inbox_entries

TELEGRAM_SECRET = "tg-webhook_Secret-0123456789"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Behind HTTPS as Telegram requires; the tests reach paybot at its loopback address.
WEBHOOK_ENV = {
    "TELEGRAM_MODE": "webhook",
    "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
    "PAYBOT_PUBLIC_URL": PUBLIC_URL,
}
HELP_ANSWER = "/invoice <order_id>"


@pytest.fixture
async def hooked(tmp_path: Path, database: str) -> AsyncIterator[World]:
    """A running paybot in webhook mode, on each store in turn."""
    async with running_world(tmp_path, env=WEBHOOK_ENV, database=database) as world:
        yield world


async def post(
    world: World, update: object, token: str | bytes | None = TELEGRAM_SECRET
) -> httpx.Response:
    """POST `update` (raw when bytes, else as JSON) to the webhook route, as Telegram does."""
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers = {} if token is None else {SECRET_HEADER: token}
    url = f"{world.local_url}/webhooks/telegram"
    return await world.http.post(url, content=body, headers=headers)


async def stored_ids(world: World) -> set[str]:
    """The update ids the inbox holds, read from the database itself."""
    return set(await inbox_entries(world.settings.database, "telegram"))


async def help_answers(world: World, at_least: int) -> int:
    """How many /help answers the merchant got, once there are `at_least`."""

    def enough() -> int | None:
        answers = world.count(HELP_ANSWER)
        return answers if answers >= at_least else None

    return await world.fake.wait_for(enough)


def methods(world: World) -> list[str]:
    return [call.method for call in world.fake.calls]


async def test_start_registers_the_webhook_and_getupdates_is_never_called(hooked: World) -> None:
    registered = [call for call in hooked.fake.calls if call.method == "setWebhook"]
    assert len(registered) == 1
    assert registered[0].params == {
        "url": f"{PUBLIC_URL}/webhooks/telegram",
        "secret_token": TELEGRAM_SECRET,
        "allowed_updates": list(ALLOWED_UPDATES),
    }
    # A whole command's round trip later, still no getUpdates, and the webhook stands.
    assert (await post(hooked, hooked.fake.text_update("/help"))).status_code == 200
    await help_answers(hooked, 1)
    assert "getUpdates" not in methods(hooked)
    assert "deleteWebhook" not in methods(hooked)


async def test_a_posted_update_is_stored_before_its_200_and_answered(hooked: World) -> None:
    update = hooked.fake.text_update("/invoice 1001", user_id=MERCHANT)

    response = await post(hooked, update)

    assert response.status_code == 200
    assert await stored_ids(hooked) == {str(update["update_id"])}
    invoice = await hooked.wait_message("Pay here")
    assert invoice.photo is not None and "1001" in (invoice.caption or "")


async def test_a_repeated_update_id_is_handled_once(hooked: World) -> None:
    update = hooked.fake.text_update("/help")

    answers = await asyncio.gather(post(hooked, update), post(hooked, update))
    assert [answer.status_code for answer in answers] == [200, 200]
    assert (await post(hooked, update)).status_code == 200  # and once more, after
    # One chat's updates are handled in the order stored: once a later update is
    # answered, a second handling of the first would have been sent before it.
    assert (await post(hooked, hooked.fake.text_update("/help"))).status_code == 200

    assert await help_answers(hooked, 2) == 2


@pytest.mark.parametrize(
    "token",
    [None, "", "not-the-secret", TELEGRAM_SECRET + "x", TELEGRAM_SECRET[:-1], b"caf\xe9"],
    ids=["missing", "empty", "wrong", "longer", "shorter", "latin-1"],
)
async def test_a_wrong_or_missing_secret_is_403_and_nothing_is_stored(
    hooked: World, token: str | bytes | None
) -> None:
    refused = hooked.fake.text_update("/invoice 1001")

    response = await post(hooked, refused, token=token)

    assert response.status_code == 403
    assert TELEGRAM_SECRET not in response.text
    assert await stored_ids(hooked) == set()
    # Handled in order: once a later update is answered, the refused one never will be.
    assert (await post(hooked, hooked.fake.text_update("/help"))).status_code == 200
    await help_answers(hooked, 1)
    assert hooked.photos() == []


def nested(depth: int, opening: str = "[", closing: str = "]") -> bytes:
    return (opening * depth + "1" + closing * depth).encode()


NOT_UPDATES = {
    "not JSON": b"{update_id: 1",
    "not UTF-8": b'{"update_id": 7, "message": "caf\xe9"}',
    "a list": b"[1, 2]",
    "no update_id": b'{"message": {"text": "/help"}}',
    "update_id not a number": b'{"update_id": "7"}',
    "update_id true": b'{"update_id": true}',
    "empty": b"",
    # Past the recursion limit of json.loads (RecursionError, not ValueError).
    "30,000 nested arrays": nested(30_000),
    "10,000 nested objects": nested(10_000, '{"a":', "}"),
    # Within json's reach, but deeper than any update; PTB and json.dumps recurse too.
    "a deep field": b'{"update_id": 8, "message": {"text": ' + nested(500) + b"}}",
}


@pytest.mark.parametrize("body", NOT_UPDATES.values(), ids=NOT_UPDATES.keys())
async def test_a_body_that_is_not_an_update_is_400(hooked: World, body: bytes) -> None:
    response = await post(hooked, body)

    assert response.status_code == 400
    assert await stored_ids(hooked) == set()


async def test_a_body_too_big_to_read_is_refused_unread(hooked: World) -> None:
    response = await post(hooked, nested(100_000))  # 200 kB: past what any update holds
    assert response.status_code == 413


async def test_in_polling_mode_the_route_is_404_and_no_webhook_is_set(world: World) -> None:
    world.say("/help")
    await help_answers(world, 1)  # started, and polling

    polled = await stored_ids(world)
    for token in (TELEGRAM_SECRET, None):
        response = await post(world, world.fake.text_update("/help"), token=token)
        assert response.status_code == 404
    assert await stored_ids(world) == polled  # the /help said, and nothing posted
    assert "setWebhook" not in methods(world)


async def test_a_webhook_telegram_refuses_stops_the_start_naming_the_url(tmp_path: Path) -> None:
    sandbox = Sandbox(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)
    async with FakeBotApi(token=BOT_TOKEN) as fake, SandboxServer(sandbox) as server:
        refusal = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
        fake.fail_next("setWebhook", status=400, description=refusal)
        env = WEBHOOK_ENV | {"PAYBOT_PUBLIC_URL": "http://paybot.example"}
        paybot = Paybot(settings_for(fake, server.url, tmp_path, **env), quick_tuning())
        with pytest.raises(ConfigError) as raised:
            await paybot.start()
        await paybot.stop()
        await sandbox.close()

    assert raised.value.setting == "PAYBOT_PUBLIC_URL"
    assert "http://paybot.example/webhooks/telegram" in raised.value.problem
    assert "https url must be provided" in raised.value.problem.lower()
    assert TELEGRAM_SECRET not in str(raised.value)
    assert "getUpdates" not in [call.method for call in fake.calls]


async def test_a_passing_setwebhook_failure_is_retried_and_the_bot_starts(
    tmp_path: Path,
) -> None:
    sandbox = Sandbox(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)
    async with FakeBotApi(token=BOT_TOKEN) as fake, SandboxServer(sandbox) as server:
        fake.fail_next("setWebhook", status=502, description="Bad Gateway", count=2)
        paybot = Paybot(settings_for(fake, server.url, tmp_path, **WEBHOOK_ENV), quick_tuning())
        await paybot.start()  # a Telegram briefly unreachable does not stop the start

        def three_tries() -> list[ApiCall] | None:
            tries = [call for call in fake.calls if call.method == "setWebhook"]
            return tries if len(tries) >= 3 else None

        try:
            tries = await fake.wait_for(three_tries)
            assert len(tries) == 3 and tries[-1].params == tries[0].params
            info = await paybot.telegram.app.bot.get_webhook_info()  # type: ignore[union-attr]
            assert info.url == f"{PUBLIC_URL}/webhooks/telegram"
        finally:
            await paybot.stop()
            await sandbox.close()
