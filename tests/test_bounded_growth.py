"""Bounded growth and bounded asking (issue 10, item 6).

- What is done and older than PAYBOT_RETENTION is pruned; what is not is kept.
- A stranger who keeps writing gets one answer a minute.
- A merchant's commands that reach Cimplify are limited, with a clear answer past it.
- A command addressed to another bot is ignored.
- /status spends the poller's budget, so chats cannot push Cimplify past the rate.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.models import ChatRef, MessageKind, Outgoing
from handlers.commands import CIMPLIFY_ASKS
from tests.clocks import MovableClock
from tests.flow_events import event
from tests.harness import MERCHANT, World, quick_tuning, running_world, wait_until
from tests.store_rows import rows

STRANGER = 4242


async def count(world: World, sql: str) -> int:
    return int((await rows(world.settings.database, sql))[0][0])


async def test_what_is_done_and_older_than_the_retention_is_pruned(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    async with running_world(tmp_path, quick_tuning(clock=clock), database=database) as world:
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        link = await world.link_for("1001")
        assert (await world.post_event(event("payment.succeeded", token=link.token))).is_success
        await world.wait_message("Confirmed")
        await world.wait_idle()
        later = Outgoing(ChatRef("telegram", str(MERCHANT)), MessageKind.TEXT, "not yet due")
        async with world.paybot.store.transaction() as tx:
            await tx.outbox.enqueue([later], clock() + timedelta(days=365))
        assert await count(world, "SELECT COUNT(*) FROM inbox") > 0
        assert await count(world, "SELECT COUNT(*) FROM status_history") > 0

        clock.ahead = world.settings.retention + timedelta(days=1)
        assert await world.paybot.housekeeping.prune() > 0

        assert await count(world, "SELECT COUNT(*) FROM inbox") == 0
        assert await count(world, "SELECT COUNT(*) FROM status_history") == 0
        kept = await rows(world.settings.database, "SELECT text FROM outbox")
        assert [row["text"] for row in kept] == ["not yet due"]  # unsent: kept
        assert (await world.link_for("1001")).confirmed_at is not None  # links are kept


async def test_a_stranger_who_keeps_writing_gets_one_answer_a_minute(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    async with running_world(tmp_path, quick_tuning(clock=clock), database=database) as world:
        for _ in range(3):
            world.fake.send_text("/invoice 1001", user_id=STRANGER)
        world.say("/help")  # the merchant's answer comes after the stranger's are handled
        await world.wait_message("/invoice")
        await wait_until(lambda: _unfinished(world), lambda n: n == 0)
        await world.wait_idle()
        assert len(world.fake.messages(STRANGER)) == 1
        assert "not authorized" in (world.fake.messages(STRANGER)[0].text or "")

        clock.ahead = timedelta(seconds=61)
        world.fake.send_text("/help", user_id=STRANGER)
        await wait_until(lambda: _count(world, STRANGER), lambda n: n == 2)


async def _unfinished(world: World) -> int:
    async with world.paybot.store.transaction() as tx:
        return await tx.inbox.unfinished_count()


async def _count(world: World, chat: int) -> int:
    return len(world.fake.messages(chat))


async def test_a_merchant_past_the_limit_of_asks_a_minute_is_told_to_wait(world: World) -> None:
    for _ in range(CIMPLIFY_ASKS + 1):
        world.say("/invoice 1001")
    await world.wait_message("requests to Cimplify in a minute", timeout=15)
    await world.wait_idle()
    photos = [m for m in world.photos() if "Order 1001" in (m.caption or "")]
    assert len(photos) == CIMPLIFY_ASKS  # one link, answered each time within the limit
    assert world.count("requests to Cimplify in a minute") == 1


async def test_a_command_for_another_bot_is_ignored(world: World) -> None:
    world.say("/invoice@other_bot 1001")
    world.say("/help@paybot_test_bot")  # the fake Bot API's bot
    await world.wait_message("/invoice")
    await world.wait_idle()
    assert world.photos() == []
    assert len(world.fake.messages(MERCHANT)) == 1


async def test_status_spends_the_pollers_budget(tmp_path: Path, database: str) -> None:
    async with running_world(tmp_path, env={"PAYBOT_POLL_RATE": "2"}, database=database) as world:
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        asked = 8
        for _ in range(asked):
            world.say("/status 1001")
        await wait_until(lambda: _answers(world), lambda found: len(found) == asked, 15)
        answers = await _answers(world)
        # At 2 a second, with a burst of 1: the last of 8 polls waits 3.5 s at least.
        assert answers[-1] - answers[0] >= (asked - 2) / 2


async def _answers(world: World) -> list[float]:
    return [m.at for m in world.fake.messages(MERCHANT) if "Order 1001 (" in (m.text or "")]


async def test_a_merchants_commands_and_buttons_share_one_budget_of_asks(world: World) -> None:
    for _ in range(CIMPLIFY_ASKS):
        world.say("/invoice 1001")
    await world.fake.wait_for(lambda: len(world.photos()) == CIMPLIFY_ASKS, timeout=15)
    message = world.photos()[0]
    link = await world.link_for("1001")
    world.fake.press_button(f"refresh:{link.id}", message_id=message.message_id)
    answer = await world.fake.wait_for(
        lambda: next((c for c in world.fake.calls if c.method == "answerCallbackQuery"), None)
    )
    assert "requests to Cimplify in a minute" in answer.params["text"]
