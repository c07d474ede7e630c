"""The durable inbox (bot/inbox.py) against real stores, SQLite and PostgreSQL.

`Intake` stores inputs, many callers to a commit, answering each only once its
entry is committed; `InboxWorker` claims lane heads with a lease and runs their
handlers. What the store holds is read over a connection of its own
(tests/store_rows.py), as another process would see it. Times that leases and
backoff compare are the worker's clock, which the tests move by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.errors import StoreRejected
from bot.inbox import InboxWorker, Intake, Leases, finish_within
from bot.models import InboxEntry, InboxItem
from bot.ports import Store, Tx
from storage import is_postgres, store_for
from tests.harness import wait_until
from tests.store_rows import rows

KIND = "test.input"
LONG = Leases(claim=timedelta(hours=1))  # a lease that never ends by itself here


class Clock:
    """The worker's time: it moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


class CommitLog:
    """The store, noting after each commit which entries another connection then sees."""

    def __init__(self, store: Store, database: str) -> None:
        self.store, self.database = store, database
        self.commits: list[set[str]] = []
        self.holders: list[dict[str, str | None]] = []  # each entry's claimant, each commit

    @contextlib.asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[Tx]:
        async with self.store.transaction(urgent) as tx:
            yield tx
        seen = await rows(self.database, "SELECT source_id, claimed_by FROM inbox")
        self.commits.append({r[0] for r in seen})
        self.holders.append({r[0]: r[1] for r in seen})

    def committed(self) -> set[str]:
        return set().union(*self.commits)


class Handling:
    """The handler: records each entry it gets; entries in `held` wait for `release`."""

    def __init__(self, fail: Callable[[InboxItem], bool] = lambda item: False) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.held: set[str] = set()
        self.release = asyncio.Event()
        self.most_in_a_lane = 0
        self._in_hand: dict[str, int] = {}
        self._fail = fail

    async def __call__(self, item: InboxItem) -> None:
        lane = item.entry.lane
        self._in_hand[lane] = self._in_hand.get(lane, 0) + 1
        self.most_in_a_lane = max(self.most_in_a_lane, self._in_hand[lane])
        self.started.append(item.entry.source_id)
        try:
            if item.entry.source_id in self.held:
                await self.release.wait()
            if self._fail(item):
                raise RuntimeError(f"cannot handle {item.entry.source_id}")
            self.finished.append(item.entry.source_id)
        finally:
            self._in_hand[lane] -= 1

    async def wait(self, done: Callable[[Handling], bool]) -> None:
        async def me() -> Handling:
            return self

        await wait_until(me, done)


def entry(source_id: str, lane: str = "lane:a", body: str = "{}") -> InboxEntry:
    return InboxEntry("test", source_id, KIND, lane, body)


def worker(store: Store, clock: Clock, handling: Handling, **options: Any) -> InboxWorker:
    options.setdefault("leases", LONG)
    holder = options.pop("holder", "worker-1")
    return InboxWorker(store, clock, holder, {KIND: handling}, **options)


@contextlib.asynccontextmanager
async def running(inbox: InboxWorker) -> AsyncIterator[InboxWorker]:
    task = asyncio.create_task(inbox.run())
    try:
        yield inbox
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    """The store `database` names, open (overrides conftest's SQLite-only one)."""
    opened = store_for(database)
    await opened.open()
    yield opened
    await opened.close()


async def record(store: Store, *entries: InboxEntry, at: datetime | None = None) -> None:
    async with store.transaction() as tx:
        assert all(await tx.inbox.record(entries, at or Clock()()))


async def row(database: str, source_id: str) -> dict[str, Any]:
    """The entry's row as the store holds it; times as aware datetimes."""
    found = await rows(database, "SELECT * FROM inbox WHERE source_id = ?", source_id)
    assert len(found) == 1, found
    names = found[0].keys()  # a Row iterates its values
    return {name: _time(value) for name, value in zip(names, found[0], strict=True)}


def _time(value: object) -> object:
    if isinstance(value, str) and value[:4].isdigit() and "T" in value:
        return datetime.fromisoformat(value).astimezone(UTC)
    return value


def refused_text(database: str) -> str:
    """A body this store can never hold: PostgreSQL refuses NUL, SQLite a lone surrogate."""
    return "bad \x00" if is_postgres(database) else "bad \udcff"


# ---- Intake


async def test_a_burst_shares_commits_each_caller_is_answered_after_its_commit(
    store: Store, database: str
) -> None:
    log, woken = CommitLog(store, database), []
    intake = Intake(log, Clock(), lambda: woken.append(1))  # type: ignore[arg-type]
    burst = [entry(f"evt-{n}", lane=f"order:{n}") for n in range(30)]

    async def answered(one: InboxEntry) -> bool:
        fresh = await intake.store(one)
        assert one.source_id in log.committed()  # committed before the answer
        return fresh

    fresh = await asyncio.gather(*(answered(one) for one in burst * 3))

    assert sum(fresh) == len(burst)  # each once new, its two repeats told apart
    assert len(log.commits) < len(burst) // 3  # stored together, not a commit each
    assert woken  # the worker is told there is work
    assert log.commits[-1] == {one.source_id for one in burst}


async def test_an_entry_the_store_refuses_is_refused_alone(store: Store, database: str) -> None:
    intake = Intake(store, Clock(), lambda: None)
    good = [entry(f"good-{n}", lane=f"order:{n}") for n in range(5)]
    bad = entry("bad", body=refused_text(database))

    outcomes = await asyncio.gather(
        *(intake.store(one) for one in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )

    assert isinstance(outcomes[2], StoreRejected)
    assert outcomes[:2] + outcomes[3:] == [True] * 5
    stored = await rows(database, "SELECT source_id FROM inbox ORDER BY seq")
    assert sorted(r[0] for r in stored) == sorted(one.source_id for one in good)


async def test_a_batch_with_an_entry_the_store_refuses_stores_the_rest_and_logs_it(
    store: Store, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A getUpdates answer is stored as one batch, and the next getUpdates confirms it:
    # a batch refused whole would be asked for again and again, and nothing behind it
    # would ever come in.
    woken: list[int] = []
    intake = Intake(store, Clock(), lambda: woken.append(1))
    good = [entry(f"good-{n}", lane=f"chat:{n}") for n in range(4)]
    bad = entry("bad", lane="chat:bad", body=refused_text(database))

    with caplog.at_level(logging.ERROR, logger="bot.inbox"):
        fresh = await intake.store_many([*good[:2], bad, *good[2:]])

    assert fresh == [True, True, False, True, True]
    stored = await rows(database, "SELECT source_id FROM inbox ORDER BY seq")
    assert [r[0] for r in stored] == [one.source_id for one in good]  # in the batch's order
    assert woken
    assert "test.input bad set aside: the store refused it" in caplog.text
    # A repeat of the batch (Telegram sending it again) stores nothing twice.
    assert await intake.store_many(good) == [False] * 4


async def test_what_is_stored_is_claimed_for_an_idle_worker_in_the_same_commit(
    store: Store, database: str
) -> None:
    # The stored update goes to an idle worker already claimed: the commit that stores
    # it makes it the worker's, and no look of the worker's own (a wake, a transaction)
    # stands between storing a command and handling it.
    log, woken, handling = CommitLog(store, database), [], Handling()
    handling.held.add("u1")
    clock = Clock()
    inbox = worker(log, clock, handling)  # type: ignore[arg-type]
    intake = Intake(log, clock, lambda: woken.append(1))  # type: ignore[arg-type]
    intake.hand_over_to(inbox)
    async with running(inbox):
        assert await intake.store_many([entry("u1"), entry("u2", lane="lane:b")]) == [True] * 2
        stored_in = next(n for n, seen in enumerate(log.commits) if "u1" in seen)
        assert log.holders[stored_in] == {"u1": "worker-1", "u2": "worker-1"}
        # Busy (u1 in hand): what is stored now is left to the worker's look, which
        # claims it at once, beside u1, rather than in the transaction that stores it.
        assert await intake.store(entry("w1", lane="lane:c"))
        stored_in = next(n for n, seen in enumerate(log.commits) if "w1" in seen)
        assert log.holders[stored_in]["w1"] is None
        await handling.wait(lambda h: "w1" in h.finished)
        assert "u1" not in handling.finished
        handling.release.set()
        await handling.wait(lambda h: sorted(h.finished) == ["u1", "u2", "w1"])
    assert woken == []  # the intake's own wake is for an intake with no worker


class Counting:
    """The store, counting the transactions begun on it: how often the worker looks."""

    def __init__(self, store: Store) -> None:
        self.store, self.begun = store, 0

    def transaction(self, urgent: bool = False) -> contextlib.AbstractAsyncContextManager[Tx]:
        self.begun += 1
        return self.store.transaction(urgent)


async def test_a_lone_entry_costs_its_store_and_its_finish_and_no_look(store: Store) -> None:
    counting, handling = Counting(store), Handling()
    inbox = worker(counting, Clock(), handling)  # type: ignore[arg-type]
    intake = Intake(counting, Clock(), lambda: None)  # type: ignore[arg-type]
    intake.hand_over_to(inbox)
    async with running(inbox):

        async def looked() -> int:
            return counting.begun

        await wait_until(looked, lambda begun: begun == 1)  # its first look, found nothing
        before = counting.begun
        assert await intake.store(entry("lone"))
        await handling.wait(lambda h: h.finished == ["lone"])
        await wait_until(lambda: unfinished(store), lambda n: n == 0)
        await asyncio.sleep(0.2)  # a look after the finish, had one come, would be begun
        assert counting.begun - before == 2  # stored (and claimed), then finished


class Answering:
    """A handler that marks its entry finished in its answer's own transaction, as an
    /invoice does; with `fail_after`, it then fails, as a process that died right after
    that commit would leave it."""

    def __init__(self, store: Store, clock: Clock, fail_after: bool = False) -> None:
        self.store, self.clock, self.fail_after = store, clock, fail_after
        self.started: list[str] = []

    async def __call__(self, item: InboxItem) -> None:
        self.started.append(item.entry.source_id)
        async with self.store.transaction() as tx:  # the handler's own: not counted
            committed = await finish_within(tx, self.clock())
        committed()
        if self.fail_after:
            raise RuntimeError("gone right after the answer")


async def test_an_entry_finished_in_its_answers_transaction_costs_the_worker_no_mark(
    store: Store, database: str
) -> None:
    clock, counting = Clock(), Counting(store)
    answering = Answering(store, clock)
    inbox = InboxWorker(counting, clock, "worker-1", {KIND: answering}, leases=LONG)  # type: ignore[arg-type]
    intake = Intake(counting, clock, lambda: None)  # type: ignore[arg-type]
    intake.hand_over_to(inbox)
    async with running(inbox):
        await wait_until(lambda: _value(counting.begun), lambda begun: begun == 1)  # first look
        assert await intake.store(entry("answered"))
        await wait_until(lambda: unfinished(store), lambda n: n == 0)
        await asyncio.sleep(0.2)  # a mark of the worker's, had one come, would be begun

    assert answering.started == ["answered"]
    assert counting.begun == 2  # its first look, then the store (and claim): no mark
    assert (await row(database, "answered"))["finished_at"] == clock()


async def test_a_handler_gone_after_its_answers_transaction_is_not_handled_again(
    store: Store, database: str
) -> None:
    clock = Clock()
    answering = Answering(store, clock, fail_after=True)
    await record(store, entry("answered"))
    async with running(worker(store, clock, answering)) as inbox:  # type: ignore[arg-type]
        await wait_until(lambda: unfinished(store), lambda n: n == 0)
        clock.advance(timedelta(minutes=5))  # past any backoff
        inbox.wake()
        await asyncio.sleep(0.2)  # a second handling, had one come, would have started

    assert answering.started == ["answered"]
    done = await row(database, "answered")
    assert done["finished_at"] == clock() - timedelta(minutes=5)  # the answer's own mark
    assert done["last_error"] is None and done["attempts"] == 1  # the failure changed nothing


async def test_outside_a_handler_finish_within_marks_nothing(store: Store, database: str) -> None:
    await record(store, entry("waiting"))
    async with store.transaction() as tx:
        committed = await finish_within(tx, Clock()())
    committed()
    assert (await row(database, "waiting"))["finished_at"] is None


async def _value(value: int) -> int:
    return value


async def test_an_entry_stored_behind_one_in_hand_goes_as_soon_as_that_one_finishes(
    store: Store,
) -> None:
    clock, handling = Clock(), Handling()
    handling.held.add("first")
    inbox = worker(store, clock, handling)
    intake = Intake(store, clock, lambda: None)
    intake.hand_over_to(inbox)
    async with running(inbox):
        assert await intake.store(entry("first"))
        await handling.wait(lambda h: h.started == ["first"])
        assert await intake.store(entry("second"))  # its lane's head is in hand: not claimed
        handling.release.set()
        # Well within the worker's idle look (5 s): its finish made the worker look.
        await wait_until(lambda: _finished(handling), lambda done: done, timeout=2.0)
    assert handling.finished == ["first", "second"]


async def _finished(handling: Handling) -> bool:
    return handling.finished == ["first", "second"]


async def unfinished(store: Store) -> int:
    async with store.transaction() as tx:
        return await tx.inbox.unfinished_count()


async def test_a_worker_that_is_not_running_is_handed_nothing(store: Store, database: str) -> None:
    clock, handling = Clock(), Handling()
    inbox = worker(store, clock, handling)
    intake = Intake(store, clock, lambda: None)
    intake.hand_over_to(inbox)
    assert await intake.store(entry("early"))
    assert (await row(database, "early"))["claimed_by"] is None  # left for its first look
    async with running(inbox):
        await handling.wait(lambda h: h.finished == ["early"])


# ---- InboxWorker


async def test_a_lane_goes_one_entry_at_a_time_in_order_while_others_go_alongside(
    store: Store,
) -> None:
    handling = Handling()
    handling.held.add("a1")
    lane_a = [entry(f"a{n}", lane="chat:a") for n in (1, 2, 3)]
    lane_b = [entry(f"b{n}", lane="chat:b") for n in (1, 2)]
    await record(store, lane_a[0], lane_b[0], lane_a[1], lane_b[1], lane_a[2])

    async with running(worker(store, Clock(), handling)):
        await handling.wait(lambda h: h.finished == ["b1", "b2"])
        assert handling.started == ["a1", "b1", "b2"]  # a2 waits for a1, b does not
        handling.release.set()
        await handling.wait(lambda h: len(h.finished) == 5)

        async def unfinished() -> int:
            async with store.transaction() as tx:
                return await tx.inbox.unfinished_count()

        await wait_until(unfinished, lambda n: n == 0)  # each recorded once handled

    assert [s for s in handling.started if s.startswith("a")] == ["a1", "a2", "a3"]
    assert handling.most_in_a_lane == 1


async def test_a_handler_that_keeps_failing_is_set_aside_and_its_lane_moves_on(
    store: Store, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock, handling = Clock(), Handling(fail=lambda item: item.entry.source_id == "poison")
    await record(store, entry("poison"), entry("after"))

    async with running(worker(store, clock, handling, max_attempts=5)) as inbox:

        async def time_passes() -> Handling:
            clock.advance(timedelta(seconds=61))  # past any backoff, well within the lease
            inbox.wake()
            return handling

        with caplog.at_level(logging.ERROR, logger="bot.inbox"):
            await wait_until(time_passes, lambda h: h.finished == ["after"], timeout=10)

    assert handling.started == ["poison"] * 5 + ["after"]
    poison = await row(database, "poison")
    assert poison["attempts"] == 5 and poison["set_aside_at"] is not None
    assert poison["finished_at"] is None and "cannot handle poison" in poison["last_error"]
    assert "poison (seq" in caplog.text and "set aside after 5 attempts" in caplog.text


async def test_a_handler_that_fails_once_is_retried_after_its_backoff(
    store: Store, database: str
) -> None:
    clock = Clock()
    handling = Handling(fail=lambda item: item.attempts == 1)
    await record(store, entry("flaky"))

    async with running(worker(store, clock, handling)) as inbox:

        async def retried() -> dict[str, Any]:
            return await row(database, "flaky")

        failed = await wait_until(retried, lambda r: r["attempts"] == 1 and not r["claimed_by"])
        assert failed["next_attempt_at"] == clock() + timedelta(seconds=2)
        assert handling.finished == []  # not before its time
        clock.advance(timedelta(seconds=2))
        inbox.wake()
        await handling.wait(lambda h: h.finished == ["flaky"])
        # The handler is done; the worker then records it, before it is stopped here.
        await wait_until(retried, lambda r: r["finished_at"] is not None)

    assert handling.started == ["flaky", "flaky"]
    done = await row(database, "flaky")
    assert done["attempts"] == 2 and done["finished_at"] is not None


async def test_an_entry_held_by_a_holder_that_died_is_handled_when_its_lease_ends(
    store: Store, database: str
) -> None:
    clock, lease = Clock(), Leases(claim=timedelta(seconds=30))
    await record(store, entry("orphan", lane="chat:a"))
    async with store.transaction() as tx:  # the dead process's claim
        (taken,) = await tx.inbox.claim(clock(), 10, "dead-host:1", clock() + lease.claim)
    assert taken.entry.source_id == "orphan"
    handling = Handling()

    async with running(worker(store, clock, handling, leases=lease)) as inbox:
        # Another lane's entry is handled: the worker has looked, and left the orphan.
        await record(store, entry("other", lane="chat:b"))
        inbox.wake()
        await handling.wait(lambda h: h.finished == ["other"])
        assert handling.started == ["other"]
        clock.advance(lease.claim)
        inbox.wake()
        await handling.wait(lambda h: h.finished == ["other", "orphan"])

        async def orphan_row() -> dict[str, Any]:
            return await row(database, "orphan")

        # The handler is done; the worker then records it, before it is stopped here.
        await wait_until(orphan_row, lambda r: r["finished_at"] is not None)

    orphan = await row(database, "orphan")
    assert orphan["attempts"] == 2 and orphan["finished_at"] is not None


async def test_a_live_holder_keeps_its_claim_past_the_lease(store: Store, database: str) -> None:
    """Its heartbeat prolongs the claim, so a second worker never takes the entry."""
    lease = Leases(claim=timedelta(seconds=0.3))  # heartbeats every 0.1 s, on real time
    slow, other = Handling(), Handling()
    slow.held.add("long")
    await record(store, entry("long", lane="chat:a"), at=datetime.now(UTC))
    live = worker(
        store, lambda: datetime.now(UTC), slow, leases=lease, concurrency=1, holder="live"
    )
    rival = worker(store, lambda: datetime.now(UTC), other, leases=lease, holder="rival")

    async with running(live):
        await slow.wait(lambda h: h.started == ["long"])
        first_until = (await row(database, "long"))["claimed_until"]
        async with running(rival):

            async def until() -> Any:
                return (await row(database, "long"))["claimed_until"]

            # Prolonged twice over: the first lease has ended, and the claim holds.
            await wait_until(until, lambda at: at > first_until + 2 * lease.claim)
            await record(store, entry("probe", lane="chat:b"), at=datetime.now(UTC))
            rival.wake()
            await other.wait(lambda h: h.finished == ["probe"])  # the rival looked
            slow.release.set()
            await slow.wait(lambda h: h.finished == ["long"])

    assert other.started == ["probe"]
    assert (await row(database, "long"))["attempts"] == 1


async def test_on_shutdown_an_entry_in_hand_is_due_again_at_once(
    store: Store, database: str
) -> None:
    clock, stuck, after = Clock(), Handling(), Handling()
    stuck.held.add("cut-short")  # never released: the process stops first
    await record(store, entry("cut-short"))

    async with running(worker(store, clock, stuck, holder="stopping")):
        await stuck.wait(lambda h: h.started == ["cut-short"])

    left = await row(database, "cut-short")
    assert left["claimed_by"] is None and left["finished_at"] is None
    assert left["next_attempt_at"] <= clock()  # not when its hour-long lease would end
    assert "paybot stopped first" in left["last_error"]
    async with running(worker(store, clock, after, holder="next")):
        await after.wait(lambda h: h.finished == ["cut-short"])
