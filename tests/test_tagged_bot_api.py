"""The tagged fake Bot API: which instance made each call, and when each call ended.

tests/test_several_instances.py reads "never two getUpdates in flight at once"
from these records, so they are checked here: a long poll whose caller goes away
(killed, or giving up) ends then, not when the fake would have answered it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import Bot

from tests.crash_stage import until
from tests.fakes.tagged_bot_api import TaggedBotApi

CHAT = 1001


@pytest.fixture
async def fake() -> AsyncIterator[TaggedBotApi]:
    async with TaggedBotApi() as running:
        yield running


async def test_each_call_says_which_instance_made_it_and_is_answered_as_by_the_plain_fake(
    fake: TaggedBotApi,
) -> None:
    async with (
        Bot(fake.token, base_url=f"{fake.base_for(0)}/bot") as first,
        Bot(fake.token, base_url=f"{fake.base_for(1)}/bot") as second,
        Bot(fake.token, base_url=f"{fake.base_url}/bot") as untagged,
    ):
        await first.send_message(CHAT, "one")
        await second.send_message(CHAT, "two")
        await untagged.send_message(CHAT, "three")
    assert [m.text for m in fake.messages(CHAT)] == ["one", "two", "three"]
    sends = [(t.instance, t.call.params["text"]) for t in fake.tagged if t.method == "sendMessage"]
    assert sends == [(0, "one"), (1, "two"), (None, "three")]
    assert all(t.ended is not None and t.ended >= t.began for t in fake.tagged)
    assert [t.method for t in fake.calls_by(1, "sendMessage", since=0.0)] == ["sendMessage"]


async def test_a_long_poll_ends_when_its_caller_hangs_up_not_at_its_timeout(
    fake: TaggedBotApi,
) -> None:
    url = f"{fake.base_for(0)}/bot{fake.token}/getUpdates"
    async with httpx.AsyncClient() as http:
        polling = asyncio.create_task(http.post(url, data={"timeout": "5"}))
        await fake.wait_for(lambda: fake.tagged)
        await asyncio.sleep(0.3)  # the caller waits a while, then gives up: the fault itself
        hung_up = time.monotonic()
        polling.cancel()
        (poll,) = fake.tagged
        await until(lambda: poll.ended, lambda ended: ended is not None, 2.0)
    assert poll.ended is not None and hung_up <= poll.ended < hung_up + 1.0
    # Answered in full, a long poll ends when the fake answers: at its timeout.
    async with Bot(fake.token, base_url=f"{fake.base_for(1)}/bot") as bot:
        await bot.get_updates(timeout=1)
    answered = fake.calls_by(1, "getUpdates", since=0.0)[0]
    assert answered.ended is not None and answered.ended - answered.began >= 1.0
