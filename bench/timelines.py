"""Random payment timelines for the polling measure, and playing one on the sandbox's ledger.

One link's life, from the moment it is issued (seconds, real time):

- 25 % of customers never open the link: it sits pending until it expires.
- The others open it after an exponential delay, mean 90 s, and pay by mobile
  money (75 %) or card (25 %).
- Mobile money: `processing` for 3-15 s while Cimplify asks the provider to
  push a prompt to the phone, then `awaiting_authorization` for 10-45 s while
  the customer reads it and types their PIN, then `paid` (85 %) or `failed`
  (wrong PIN, no funds, the prompt timed out).
- Card: `processing` for 2-8 s; 30 % go through 3-D Secure, `awaiting_authorization`
  for 10-40 s; then `paid` (90 %) or `failed`.
- After a failure, half the customers try again 15-45 s later; half give up.
- Nothing happens in the link's last 15 s, so no payment races its expiry.

The payment itself runs at its real pace: those seconds are what detection
latency is made of. The waiting around it is compressed (real customers open a
link minutes to hours later, and a link lives 24 h, not 4 minutes), which
favours a fixed-period poller: every second of waiting cut from the bench is
half a request it does not spend, where paybot, backing off, spends almost none.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.ledger import Ledger
from sandbox.records import LinkStatus

ABANDONED = 0.25
OPEN_MEAN = 90.0
CARD = 0.25
RETRY = 0.5
QUIET_END = 15.0  # seconds before expiry after which nothing happens


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the link was issued
    status: LinkStatus  # PROCESSING: a payment attempt starts


@dataclass(frozen=True)
class Timeline:
    kind: str  # "abandoned", "mobile money" or "card"
    steps: tuple[Step, ...]

    @property
    def settles_at(self) -> float | None:
        paid = [step.at for step in self.steps if step.status is LinkStatus.PAID]
        return paid[0] if paid else None


def random_timeline(rng: random.Random, ttl: float) -> Timeline:
    """One customer's behaviour for a link that lives `ttl` seconds."""
    if rng.random() < ABANDONED:
        return Timeline("abandoned", ())
    kind = "card" if rng.random() < CARD else "mobile money"
    steps: list[Step] = []
    at = rng.expovariate(1 / OPEN_MEAN)
    while True:
        attempt = _card_attempt(rng, at) if kind == "card" else _mobile_money_attempt(rng, at)
        steps.extend(attempt)
        at = attempt[-1].at
        if attempt[-1].status is LinkStatus.PAID or rng.random() >= RETRY:
            break
        at += rng.uniform(15, 45)
    return Timeline(kind, tuple(_within(steps, ttl - QUIET_END)))


def _mobile_money_attempt(rng: random.Random, at: float) -> list[Step]:
    prompt = at + rng.uniform(3, 15)
    outcome = prompt + rng.uniform(10, 45)
    return [
        Step(at, LinkStatus.PROCESSING),
        Step(prompt, LinkStatus.AWAITING_AUTHORIZATION),
        Step(outcome, LinkStatus.PAID if rng.random() < 0.85 else LinkStatus.FAILED),
    ]


def _card_attempt(rng: random.Random, at: float) -> list[Step]:
    steps = [Step(at, LinkStatus.PROCESSING)]
    at += rng.uniform(2, 8)
    if rng.random() < 0.3:
        steps.append(Step(at, LinkStatus.AWAITING_AUTHORIZATION))
        at += rng.uniform(10, 40)
    steps.append(Step(at, LinkStatus.PAID if rng.random() < 0.9 else LinkStatus.FAILED))
    return steps


def _within(steps: list[Step], end: float) -> list[Step]:
    """The steps before `end`; an attempt cut short stays where it was cut, as a customer
    who walked away mid-payment would leave it."""
    return [step for step in steps if step.at < end]


async def play(
    ledger: Ledger, token: str, timeline: Timeline, on_paid: Callable[[str, float], None]
) -> None:
    """Move the link through its timeline from now; `on_paid(token, monotonic time)` at paid."""
    issued = time.monotonic()
    for step in timeline.steps:
        await asyncio.sleep(max(0.0, issued + step.at - time.monotonic()))
        if ledger.status(ledger.link(token)) is LinkStatus.EXPIRED:
            return
        if step.status is LinkStatus.PROCESSING:
            ledger.start_payment(token, "MOMO" if timeline.kind == "mobile money" else "CARD")
        else:
            ledger.move(token, step.status)
        if step.status is LinkStatus.PAID:
            on_paid(token, time.monotonic())
