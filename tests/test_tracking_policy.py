from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.models import Status, can_move
from bot.tracking import PollPolicy
from tests.factories import NOW, make_link

POLICY = PollPolicy(jitter=0.0)


def test_fast_after_issuing_and_while_moving() -> None:
    fresh = make_link()
    assert POLICY.interval(fresh, NOW + timedelta(seconds=30)) == POLICY.fresh
    moving = replace(fresh, status=Status.AWAITING_AUTHORIZATION)
    assert POLICY.interval(moving, NOW + timedelta(hours=1)) == POLICY.active


def test_backs_off_while_idle_within_bounds() -> None:
    link = make_link()
    gaps = [POLICY.interval(link, NOW + timedelta(minutes=m)) for m in (3, 10, 30, 600)]
    assert gaps == sorted(gaps)
    assert gaps[0] >= POLICY.idle_min and gaps[-1] == POLICY.idle_max


def test_never_sleeps_past_the_expiry() -> None:
    link = make_link(expires_in=timedelta(seconds=10))
    late = NOW + timedelta(minutes=5)
    assert POLICY.next_poll(link, NOW + timedelta(seconds=9)) == link.expires_at
    assert POLICY.next_poll(link, late) == late


def test_jitter_stays_within_its_fraction() -> None:
    policy = PollPolicy(jitter=0.2)
    gaps = {policy.interval(make_link(), NOW) for _ in range(50)}
    assert len(gaps) > 1
    assert all(policy.fresh * 0.8 <= gap <= policy.fresh * 1.2 for gap in gaps)


def test_status_only_moves_forward_but_failed_may_be_retried() -> None:
    assert can_move(Status.PENDING, Status.PROCESSING)
    assert can_move(Status.FAILED, Status.PROCESSING)
    assert can_move(Status.EXPIRED, Status.PAID)  # money after expiry is still money
    assert not can_move(Status.PAID, Status.FAILED)
    assert not can_move(Status.AWAITING_AUTHORIZATION, Status.PROCESSING)
    assert not can_move(Status.PROCESSING, Status.PENDING)
    assert not any(can_move(Status.PAID, s) for s in Status)
