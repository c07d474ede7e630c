"""Several `paybot run` processes on one PostgreSQL database behave as one bot
(issue 9, item 5; CONTRACT §6).

Two instances share the sandbox and the fake Bot API, which enforces Telegram's
flood limits (30 new messages a second overall, one a second per chat). Merchants
type every /invoice once, through the whole flow; every payment's events reach
one instance from the sandbox and the other from an echo; one instance is killed
with SIGKILL partway and started again once the other has taken its work over.
Then every payment is confirmed once in its merchant's chat, every command is
answered once, no send was refused for its rate, and the work resumed within
10 s of the kill. In polling mode getUpdates was never in flight twice at once;
in webhook mode it was never called, and every third update was posted to both.
The only repeats allowed are the crash tests' stated windows
(tests/test_crash_recovery.py), whose checks are reused; a repeated message must
moreover have been sent by the very process that was killed, before its kill.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from bot.roles import SENDER, TELEGRAM_POLLING
from tests.crash_stage import SENDS, until
from tests.fakes.bot_api import ApiCall
from tests.fakes.tagged_bot_api import TaggedCall
from tests.multi_stage import Instance, MultiStage, multi_stage, post_update
from tests.test_crash_recovery import (
    assert_each_invoice_queued_once,
    assert_each_payment_confirmed_once,
    assert_every_event_stored_and_applied,
    assert_nothing_left_in_the_outbox,
)

SEED = 20261201
MERCHANTS, PER_MERCHANT = 50, 2  # 100 payments; more chats than 30 a second can serve at once
COMMAND_PACE = 0.08  # seconds between two commands: the merchants type through the kill
FAILOVER = 10.0  # CONTRACT §6: the others carry on a killed process's work within this
POST_DEADLINE = 20.0  # seconds Telegram keeps posting an update until an instance takes it
# A repeat is a message Telegram took from a process that was killed before it could
# record the send. Here the fake knows which process sent each message, so that is
# checked as such; the time is only bounded loosely (two instances, the fake and the
# sandbox share a machine that may be busy), where the crash test's lone bot has 0.25 s.
READ_LAG = 0.1  # the fake may read a request a moment after the kill of its sender
DYING_SENDER = 2.0  # seconds from Telegram taking a message to its sender's kill, at most

TypeCommand = Callable[[str, int], Awaitable[int]]  # (text, merchant) -> the update's id


async def merchants_type(stage: MultiStage, type_command: TypeCommand, asked: list[int]) -> None:
    """Every /invoice typed once, in order, one every COMMAND_PACE s."""
    for order_id, merchant in stage.merchant_of.items():
        asked.append(await type_command(f"/invoice {order_id}", merchant))
        await asyncio.sleep(COMMAND_PACE)  # the merchants' pace, not a wait for a condition


async def customers_pay(stage: MultiStage) -> None:
    """Each order is paid once its merchant has the invoice photo; the sandbox's webhooks
    go to each instance in turn (its retries to wherever the address then points)."""
    paid: set[str] = set()
    targets = stage.in_turn()
    while len(paid) < len(stage.merchant_of):
        for order_id in sorted(stage.photographed() - paid):
            stage.sandbox.webhook_url = f"{next(targets).url}/webhooks/cimplify"
            paid.add(order_id)
            await stage.sandbox.pay(order_id)  # two signed events, delivered and retried
        await asyncio.sleep(0.02)  # look again for new photos; the caller's deadline bounds it


def calls_after(stage: MultiStage, methods: set[str], killed: Instance) -> list[TaggedCall]:
    """Calls made since the last kill by another process: another instance's, or the
    killed one's once started again."""
    moment = killed.kills[-1]
    return [
        t
        for t in stage.fake.tagged
        if t.method in methods
        and t.began > moment
        and (t.instance != killed.number or t.began >= killed.started_at > moment)
    ]


async def kill_partway(
    stage: MultiStage, role: str, asked: list[int], rng: random.Random
) -> tuple[Instance, dict[str, float]]:
    """SIGKILL the holder of `role` once a random share of the commands is typed; start it
    again once another process has taken up sending (and polling). The killed instance,
    and how many seconds after the kill each kind of work resumed."""
    typed = rng.randint(20, 60)  # of 100 commands: the rest come during and after the kill
    await until(lambda: len(asked), lambda n: n >= typed, 30.0)
    killed = await stage.holder_of(role)
    await killed.kill()
    work = {"sends": set(SENDS)}
    if role == TELEGRAM_POLLING:
        work["getUpdates"] = {"getUpdates"}
    resumed = {}
    for name, methods in work.items():
        first = await until(lambda m=methods: calls_after(stage, m, killed), bool, 2 * FAILOVER)
        resumed[name] = round(first[0].began - killed.kills[-1], 2)
    await killed.start()
    return killed, resumed


async def run_flow(
    stage: MultiStage, type_command: TypeCommand, role: str
) -> tuple[Instance, dict[str, float], list[int]]:
    """The whole flow, to its end: every payment confirmed, nothing left to send, every
    event acknowledged to both senders, the instances stopped (exit 0)."""
    await stage.start_all()
    asked: list[int] = []
    async with asyncio.timeout(60), asyncio.TaskGroup() as flow:
        flow.create_task(merchants_type(stage, type_command, asked))
        flow.create_task(customers_pay(stage))
        killed, resumed = await kill_partway(stage, role, asked, random.Random(SEED))
    await until(stage.confirmed, lambda done: len(done) == len(stage.merchant_of), 30.0)
    await until(stage.pending, lambda n: n == 0, 20.0)
    events = 2 * len(stage.merchant_of)  # payment.succeeded and order.completed
    await until(lambda: len(stage.acknowledged_events()), lambda n: n == events, 20.0)
    await until(lambda: len(stage.echoes.acknowledged), lambda n: n == events, 20.0)
    assert await stage.stop_all() == [0, 0]
    return killed, resumed, asked


async def assert_only_dying_senders_repeat(stage: MultiStage) -> dict[int, float]:
    """Every message Telegram took that no process recorded as sent was sent by a process
    killed just after: message id -> seconds from Telegram taking it to that kill."""
    sender = {id(t.call): t.instance for t in stage.fake.tagged}
    repeats = {}
    for message, call in await stage.unrecorded():
        number = sender[id(call)]
        kills = next((i.kills for i in stage.instances if i.number == number), [])
        after = [k - call.at for k in kills if -READ_LAG <= k - call.at <= DYING_SENDER]
        words = (message.text or message.caption or "")[:60]
        assert after, f"not recorded, yet its sender {number} lived on: {words!r}, kills {kills}"
        repeats[message.message_id] = round(min(after), 3)
    return repeats


async def assert_one_bot(stage: MultiStage, resumed: dict[str, float], asked: list[int]) -> str:
    """What both modes must show; a line saying what was seen."""
    late = {work: after for work, after in resumed.items() if after > FAILOVER}
    assert not late, f"resumed later than {FAILOVER} s after the kill: {late}"
    orders = list(stage.merchant_of)
    await assert_nothing_left_in_the_outbox(stage)
    repeats = await assert_only_dying_senders_repeat(stage)
    await assert_each_payment_confirmed_once(stage, set(repeats), orders)
    await assert_every_event_stored_and_applied(stage, 2 * len(orders))
    await assert_each_invoice_queued_once(stage, orders)
    await assert_every_update_stored_once_and_handled(stage, asked)
    return (
        f"work resumed {resumed} s after the kill; {stage.sends()} sends, "
        f"{len(stage.fake.throttled)} refused for the rate; {len(repeats)} window repeats, "
        "every /invoice answered once"
    )


async def assert_every_update_stored_once_and_handled(stage: MultiStage, asked: list[int]) -> None:
    found = await stage.rows("SELECT source_id, finished_at FROM inbox WHERE source = 'telegram'")
    assert sorted(int(row["source_id"]) for row in found) == sorted(asked)  # each once
    assert all(row["finished_at"] is not None for row in found)


def assert_one_poller_at_a_time(stage: MultiStage) -> int:
    """No two getUpdates in flight at once: each began after every earlier one ended
    (answered, or its caller gone). How many calls there were."""
    polls = sorted(
        (t for t in stage.fake.tagged if t.method == "getUpdates"), key=lambda t: t.began
    )
    assert polls, "nobody polled"
    busy_until, busy_by = float("-inf"), None
    for poll in polls:
        assert poll.began >= busy_until, f"{poll} began while {busy_by} was in flight"
        ended = poll.ended if poll.ended is not None else time.monotonic()
        if ended > busy_until:
            busy_until, busy_by = ended, poll
    return len(polls)


def assert_never_throttled(stage: MultiStage) -> None:
    refused = [explain_refusal(stage, call) for call in stage.fake.throttled]
    assert refused == [], f"Telegram's flood limits were broken: {refused}"


def explain_refusal(stage: MultiStage, refused: ApiCall) -> str:
    """Which limit a refused send met: the sends taken in the second before it, overall
    and to its chat, and by which instances."""
    assert stage.fake.limits is not None
    chat, window = refused.params.get("chat_id"), stage.fake.limits.window
    taken = [
        t
        for t in stage.fake.tagged
        if t.method in SENDS
        and all(t.call is not r for r in stage.fake.throttled)
        and refused.at - window <= t.began < refused.at
    ]
    to_chat = [
        round(refused.at - t.began, 3) for t in taken if t.call.params.get("chat_id") == chat
    ]
    by = next(t.instance for t in stage.fake.tagged if t.call is refused)
    senders = sorted({t.instance for t in taken}, key=str)
    first = round(refused.at - taken[0].began, 3) if taken else None
    kills = [round(refused.at - k, 2) for k in stage.bot.kills]
    return (
        f"{refused.method} to {chat} by instance {by}: {len(taken)} sends in the {first} s "
        f"before, by instances {senders}; to its chat {to_chat} s before; {kills} s after a kill"
    )


@pytest.mark.timeout(90)
async def test_two_polling_instances_one_killed_are_one_bot(tmp_path: Path) -> None:
    began = time.monotonic()
    async with multi_stage(
        tmp_path, instances=2, merchants=MERCHANTS, per_merchant=PER_MERCHANT, mode="polling"
    ) as stage:

        async def queue_for_polling(text: str, merchant: int) -> int:
            return stage.fake.send_text(text, user_id=merchant)

        killed, resumed, asked = await run_flow(stage, queue_for_polling, TELEGRAM_POLLING)
        polls = assert_one_poller_at_a_time(stage)
        seen = await assert_one_bot(stage, resumed, asked)
        print(
            f"\npolling, 2 instances, instance {killed.number} killed while polling: {seen}; "
            f"{polls} getUpdates, never two at once; {time.monotonic() - began:.1f} s"
        )
        assert_never_throttled(stage)  # last: what it says is about the flow shown above


class WebhookPosts:
    """Telegram posting each update to the instances in turn, every third one to two of
    them (a repeat), and to the next one whenever an instance does not take it."""

    def __init__(self, stage: MultiStage, http: httpx.AsyncClient) -> None:
        self._stage, self._http = stage, http
        self._turns = stage.in_turn()
        self.repeated = 0

    async def __call__(self, text: str, merchant: int) -> int:
        update = self._stage.fake.text_update(text, user_id=merchant)
        await self._deliver(update)
        if update["update_id"] % 3 == 0:
            await self._deliver(update)  # to the next instance in turn
            self.repeated += 1
        return int(update["update_id"])

    async def _deliver(self, update: dict[str, object]) -> None:
        deadline = time.monotonic() + POST_DEADLINE
        while await post_update(self._http, next(self._turns), update) != 200:
            assert time.monotonic() < deadline, f"no instance took update {update['update_id']}"
            await asyncio.sleep(0.05)  # Telegram's retry delay, not a wait for a condition


@pytest.mark.timeout(90)
async def test_two_webhook_instances_one_killed_are_one_bot(tmp_path: Path) -> None:
    began = time.monotonic()
    async with (
        multi_stage(
            tmp_path, instances=2, merchants=MERCHANTS, per_merchant=PER_MERCHANT, mode="webhook"
        ) as stage,
        httpx.AsyncClient(timeout=5.0) as http,
    ):
        posts = WebhookPosts(stage, http)
        killed, resumed, asked = await run_flow(stage, posts, SENDER)
        assert [t for t in stage.fake.tagged if t.method == "getUpdates"] == []
        seen = await assert_one_bot(stage, resumed, asked)
        print(
            f"\nwebhook, 2 instances, instance {killed.number} killed while sending: {seen}; "
            f"{posts.repeated} updates posted twice; {time.monotonic() - began:.1f} s"
        )
        assert_never_throttled(stage)  # last: what it says is about the flow shown above
