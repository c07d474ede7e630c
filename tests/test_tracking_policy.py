from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import httpx

from bot.cimplify import CimplifyClient
from bot.models import Status, can_move
from bot.payments import Payments
from bot.tracking import FAIR_EVERY, PollPolicy, Tracker
from storage.sqlite import SqliteStore
from tests.counted_store import Counted
from tests.factories import NOW, make_link
from tests.harness import wait_until

NOT_POLLER_WATCHED = 0.5  # seconds a process without the poller's role is watched
POLICY = PollPolicy(jitter=0.0, moving_jitter=0.0)


def test_slow_while_nobody_pays_fast_while_a_payment_moves() -> None:
    fresh = make_link()
    assert POLICY.interval(fresh, NOW + timedelta(seconds=30)) == POLICY.fresh
    processing = replace(fresh, status=Status.PROCESSING)
    assert POLICY.interval(processing, NOW + timedelta(hours=1)) == POLICY.active
    authorizing = replace(fresh, status=Status.AWAITING_AUTHORIZATION)
    assert POLICY.interval(authorizing, NOW + timedelta(hours=1)) == POLICY.authorizing
    assert max(POLICY.active, POLICY.authorizing) < POLICY.fresh


def test_a_prompt_is_looked_at_again_only_once_a_person_could_have_answered_it() -> None:
    prompted_at = NOW + timedelta(minutes=3)
    prompt = replace(
        make_link(), status=Status.AWAITING_AUTHORIZATION, status_changed_at=prompted_at
    )
    assert POLICY.next_poll(prompt, prompted_at) == prompted_at + POLICY.answer_time
    later = prompted_at + timedelta(seconds=2)
    assert POLICY.next_poll(prompt, later) == prompted_at + POLICY.answer_time
    read = prompted_at + POLICY.answer_time
    assert POLICY.next_poll(prompt, read) == read + POLICY.authorizing
    assert POLICY.authorizing < POLICY.answer_time


def test_a_failed_payment_is_watched_as_freshly_as_a_new_link() -> None:
    # The customer may try again at once; "fresh" counts from the last change.
    failed_at = NOW + timedelta(hours=2)
    failed = replace(make_link(), status=Status.FAILED, status_changed_at=failed_at)
    assert POLICY.interval(failed, failed_at + timedelta(seconds=20)) == POLICY.fresh


def test_backs_off_while_idle_within_bounds() -> None:
    link = make_link()
    gaps = [POLICY.interval(link, NOW + timedelta(minutes=m)) for m in (3, 10, 30, 600)]
    assert gaps == sorted(gaps)
    assert gaps[0] >= POLICY.idle_min and gaps[-1] == POLICY.idle_max


def test_defaults_ask_about_a_moving_payment_more_often_than_every_two_seconds() -> None:
    # What bench/polling.py compares against: a naive poller asking every 2 s.
    policy = PollPolicy()
    slowest_moving = max(policy.active, policy.authorizing) * (1 + policy.moving_jitter)
    assert slowest_moving <= timedelta(seconds=2)
    assert policy.idle_min * (1 - policy.jitter) > slowest_moving


def test_never_sleeps_past_the_expiry() -> None:
    link = make_link(expires_in=timedelta(seconds=10))
    assert POLICY.next_poll(link, NOW + timedelta(seconds=9)) == link.expires_at


def test_past_the_expiry_asks_again_soon_then_less_often() -> None:
    # Until Cimplify says how the link ended (its clock may be a moment behind ours).
    link = make_link(expires_in=timedelta(seconds=10))
    just_past = link.expires_at + timedelta(seconds=1)
    assert POLICY.next_poll(link, just_past) == just_past + POLICY.active
    long_past = link.expires_at + timedelta(hours=1)
    assert POLICY.next_poll(link, long_past) == long_past + POLICY.idle_max


def test_jitter_stays_within_its_fraction() -> None:
    policy = PollPolicy(jitter=0.2)
    gaps = {policy.interval(make_link(), NOW) for _ in range(50)}
    assert len(gaps) > 1
    assert all(policy.fresh * 0.8 <= gap <= policy.fresh * 1.2 for gap in gaps)


def test_a_moving_payment_keeps_closer_to_its_pace() -> None:
    policy = PollPolicy(moving_jitter=0.05)
    moving = replace(make_link(), status=Status.PROCESSING)
    gaps = {policy.interval(moving, NOW) for _ in range(50)}
    assert len(gaps) > 1
    assert all(policy.active * 0.95 <= gap <= policy.active * 1.05 for gap in gaps)


def test_status_only_moves_forward_but_failed_may_be_retried() -> None:
    assert can_move(Status.PENDING, Status.PROCESSING)
    assert can_move(Status.FAILED, Status.PROCESSING)
    assert can_move(Status.EXPIRED, Status.PAID)  # money after expiry is still money
    assert not can_move(Status.PAID, Status.FAILED)
    assert not can_move(Status.AWAITING_AUTHORIZATION, Status.PROCESSING)
    assert not can_move(Status.PROCESSING, Status.PENDING)
    assert not any(can_move(Status.PAID, s) for s in Status)


# the tracker under a short budget


async def test_a_moving_payment_is_polled_before_a_backlog_of_idle_links(
    store: SqliteStore,
) -> None:
    # 30 idle links long overdue, and one payment that fell due last of all.
    moving = make_link("link-moving", order_id="2001", status=Status.AWAITING_AUTHORIZATION)
    async with store.transaction() as tx:
        for n in range(30):
            idle = make_link(f"link-idle-{n:02d}", order_id=f"1{n:03d}")
            await tx.links.insert(idle)
            await tx.polls.schedule(idle.id, NOW - timedelta(minutes=30) + timedelta(seconds=n))
        await tx.links.insert(moving)
        await tx.polls.schedule(moving.id, NOW)
    statuses = {moving.token: "awaiting_authorization"}
    asked = await tokens_polled(store, statuses, count=3, rate=20.0)  # claims 2 at a time
    assert asked[0] == moving.token
    assert asked[1:3] == ["plt_link-idle-00", "plt_link-idle-01"]  # then soonest due


async def test_moving_payments_that_use_the_whole_budget_do_not_starve_the_rest(
    store: SqliteStore,
) -> None:
    # Three payments always moving and always due again (active interval 0), and one
    # new link waiting: moving-first alone would never reach it.
    moving = [
        make_link(f"link-moving-{n}", order_id=f"2{n:03d}", status=Status.PROCESSING)
        for n in range(3)
    ]
    waiting = make_link("link-waiting", order_id="1999")
    async with store.transaction() as tx:
        for link in [*moving, waiting]:
            await tx.links.insert(link)
            await tx.polls.schedule(link.id, NOW)
    always_due = PollPolicy(active=timedelta(0), jitter=0.0)
    ticks = itertools.count(1)  # a clock that moves a millisecond each time it is read

    def clock() -> datetime:
        return NOW + timedelta(milliseconds=next(ticks))

    statuses = {link.token: "processing" for link in moving}
    asked = await tokens_polled(store, statuses, count=20, rate=5.0, policy=always_due, clock=clock)
    assert waiting.token in asked[: FAIR_EVERY + 1]
    assert sum(token != waiting.token for token in asked[:20]) >= 15  # still mostly moving


async def tokens_polled(
    store: SqliteStore,
    statuses: dict[str, str],
    *,
    count: int,
    rate: float,
    policy: PollPolicy | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
) -> list[str]:
    """Run a Tracker against a Cimplify at the HTTP transport until it has asked
    `count` status questions; the tokens asked about, in order. Links not in
    `statuses` are pending."""
    asked: list[str] = []
    enough = asyncio.Event()

    def cimplify(request: httpx.Request) -> httpx.Response:
        token = request.url.path.split("/")[-2]
        asked.append(token)
        if len(asked) >= count:
            enough.set()
        status = statuses.get(token, "pending")
        body = {"status": status, "updated_at": "2026-11-23T10:00:00Z", "reference": None}
        return httpx.Response(200, content=json.dumps(body))

    async with httpx.AsyncClient(transport=httpx.MockTransport(cimplify)) as http:
        client = CimplifyClient("https://cimplify.test", "sk_test_policy", http=http)
        payments = Payments(store, clock, on_queued=lambda: None)
        tracker = Tracker(store, client, payments, clock, rate=rate, policy=policy)
        running = asyncio.create_task(tracker.run())
        try:
            async with asyncio.timeout(10):
                await enough.wait()
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    return asked


async def test_status_polls_in_two_processes_share_one_budget(store: SqliteStore) -> None:
    # Two trackers on one store stand for two processes, each taking /status commands:
    # together they keep to the rate, where each once kept its own.
    rate, polls = 5.0, 12
    links = [make_link(f"link-asked-{n}", order_id=f"3{n:03d}") for n in range(polls)]
    async with store.transaction() as tx:
        for link in links:
            await tx.links.insert(link)
    asked_at: list[float] = []

    def cimplify(request: httpx.Request) -> httpx.Response:
        asked_at.append(time.monotonic())
        body = {"status": "pending", "updated_at": "2026-11-23T10:00:00Z", "reference": None}
        return httpx.Response(200, content=json.dumps(body))

    async with httpx.AsyncClient(transport=httpx.MockTransport(cimplify)) as http:
        client = CimplifyClient("https://cimplify.test", "sk_test_policy", http=http)
        payments = Payments(store, lambda: NOW, on_queued=lambda: None)
        processes = [Tracker(store, client, payments, lambda: NOW, rate=rate) for _ in range(2)]
        await asyncio.gather(*(processes[n % 2].poll_now(link) for n, link in enumerate(links)))
    assert len(asked_at) == polls
    took = max(asked_at) - min(asked_at)
    assert took >= (polls - 1) / rate * 0.95  # one budget: each process alone took half


async def test_a_process_that_is_not_the_poller_leaves_the_schedule_alone_until_it_is(
    store: SqliteStore,
) -> None:
    # An overdue link is the poller's to ask about. Another process that looked at the
    # schedule each time it idled would find it due at once, and look every 10 ms.
    link = make_link("link-overdue-0001", order_id="4001")
    async with store.transaction() as tx:
        await tx.links.insert(link)
        await tx.polls.schedule(link.id, NOW - timedelta(seconds=1))
    asked: list[str] = []

    def cimplify(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path.split("/")[-2])
        body = {"status": "pending", "updated_at": "2026-11-23T10:00:00Z", "reference": None}
        return httpx.Response(200, content=json.dumps(body))

    counted = Counted(store)
    async with httpx.AsyncClient(transport=httpx.MockTransport(cimplify)) as http:
        client = CimplifyClient("https://cimplify.test", "sk_test_policy", http=http)
        payments = Payments(store, lambda: NOW, on_queued=lambda: None)
        tracker = Tracker(counted, client, payments, lambda: NOW)  # type: ignore[arg-type]
        poller = False
        tracker.may_poll = lambda: poller
        running = asyncio.create_task(tracker.run())
        try:
            await asyncio.sleep(NOT_POLLER_WATCHED)  # the span watched, not a condition
            assert (counted.begun, asked) == (0, [])

            poller = True  # the role is gained, and its holder wakes the tracker
            tracker.wake()

            async def asked_so_far() -> list[str]:
                return asked

            await wait_until(asked_so_far, lambda tokens: tokens == [link.token])
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def test_a_new_link_due_after_the_pollers_next_look_does_not_make_it_look_sooner(
    store: SqliteStore,
) -> None:
    # A new link's first poll is seconds away; the poller looks at its schedule anyway
    # every few seconds. A link due before that look wakes it.
    counted = Counted(store)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(500))
    ) as http:
        client = CimplifyClient("https://cimplify.test", "sk_test_policy", http=http)
        payments = Payments(store, lambda: NOW, on_queued=lambda: None)
        tracker = Tracker(counted, client, payments, lambda: NOW)  # type: ignore[arg-type]

        async def next_look() -> object:
            return tracker.looks_at

        running = asyncio.create_task(tracker.run())
        try:
            await wait_until(next_look, lambda at: at is not None)  # nothing due: idle
            looked = counted.begun
            assert tracker.looks_at is not None
            tracker.wake(tracker.looks_at + timedelta(seconds=1))
            await asyncio.sleep(NOT_POLLER_WATCHED)  # the span watched, not a condition
            assert counted.begun == looked

            tracker.wake(NOW)  # due before the next look
            await wait_until(counted.begun_so_far, lambda n: n > looked)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def test_a_poll_that_hears_the_status_the_claim_read_spends_no_transaction(
    store: SqliteStore,
) -> None:
    # Most polls hear what the poller's claim read a moment before: nothing to apply.
    link = make_link("link-unchanged-0001", order_id="5001")  # pending
    async with store.transaction() as tx:
        await tx.links.insert(link)
    says = {"status": "pending"}

    def cimplify(request: httpx.Request) -> httpx.Response:
        body = {"status": says["status"], "updated_at": "2026-11-23T10:00:00Z", "reference": None}
        return httpx.Response(200, content=json.dumps(body))

    counted = Counted(store)
    async with httpx.AsyncClient(transport=httpx.MockTransport(cimplify)) as http:
        client = CimplifyClient("https://cimplify.test", "sk_test_policy", http=http)
        payments = Payments(counted, lambda: NOW, on_queued=lambda: None)  # type: ignore[arg-type]
        tracker = Tracker(counted, client, payments, lambda: NOW)  # type: ignore[arg-type]
        assert await tracker.poll(link) == link
        assert counted.begun == 0

        says["status"] = "processing"  # a payment started: applied, in a transaction
        moved = await tracker.poll(link)
    assert moved is not None and moved.status is Status.PROCESSING
    assert counted.begun >= 1
    async with store.transaction() as tx:
        stored = await tx.links.get(link.id)
    assert stored is not None and stored.status is Status.PROCESSING
