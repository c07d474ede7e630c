"""Payment truth, model-based: random interleavings against a whole paybot (issue 4).

Hypothesis' stateful testing drives one running paybot per example (the real
python-telegram-bot on the fake Bot API, the real Cimplify client on the
sandbox) through invoices, a customer opening the share link, payments moving
in the sandbox, polls on request, webhooks (genuine, duplicated, held back and
delivered late, forged, with amounts that do not match), restarts and expiry.
`truth_model.Truth` predicts what the bot must believe; after every step the
test waits, with deadlines, until the bot agrees and has sent everything, then:

- `Confirmed` shows in a chat only for a link that had an acknowledged, verified
  success event whose amount matched (or stated none). The signed webhook is the
  truth: the sandbox's own status is not consulted, as in bot/payments.py;
- each chat subscribed at that moment is told `Confirmed` exactly once;
- the statuses a chat is told for a link never move backwards (`can_move`);
- every acknowledged webhook is stored and applied; no refused one is stored;
- reminders (at PAYBOT_REMINDERS marks as the clock is moved on, "try again" after a
  failure, `/remind`) reach each customer as often as the model says, and no chat
  hears one about an order after it heard that order was paid;
- `/renew` of a live or paid link answers and makes no new link;
- `/cancel` cancels an unpaid order in the sandbox and here (every chat of its link
  told `Cancelled`, no reminder after it), and a paid or cancelled one is answered.

The test posts most webhooks itself, so that it knows which were acknowledged;
one rule has the sandbox send its own, with its sender's retries.
Each order gets one link here (no new `/invoice` or renewal once the sandbox expired
it), so every chat line names its link; renewal after expiry is in test_flow_payment
and test_flow_renewal.

CI runs a few derandomized examples, without shrinking. The long run, random,
shrinking a failure to a minimal case (about 4 s an example):
    PAYBOT_TRUTH_EXAMPLES=500 PAYBOT_TRUTH_RANDOM=1 pytest tests/test_payment_truth.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from bot.models import CONFIRMED_WORDS, Status
from tests.clocks import MovableClock
from tests.databases import drop_database, fresh_postgres_url
from tests.harness import MERCHANT, OTHER_MERCHANT, World, quick_tuning, running_world
from tests.store_rows import inbox_entries
from tests.truth_model import (
    AMOUNT_VARIANTS,
    CLOCK_MOST,
    CLOCK_STEP,
    FOLLOW_UP_ENV,
    FORGERIES,
    ORDERS,
    PATIENCE,
    SANDBOX_NEXT,
    SUCCESS_KINDS,
    LinkModel,
    Truth,
    ask_status,
    backward_step,
    cancel,
    caption_histories,
    chat_texts,
    customer_reminders,
    follow_ups_handled,
    forged,
    notices_in_texts,
    press_refresh,
    remind,
    reminded_after_payment,
    renew_answers,
    reply,
    settle,
    told_in_texts,
)

CUSTOMER = 7777  # a Telegram user who is no merchant
MERCHANTS = (MERCHANT, OTHER_MERCHANT)
CHATS = (*MERCHANTS, CUSTOMER)
KINDS = (*SUCCESS_KINDS, "payment.failed")


class PaymentTruth(RuleBasedStateMachine):
    sent = Bundle("sent")  # genuine events delivered at least once: for duplicates
    held = Bundle("held")  # genuine events made but held back: delivered late, reordered
    on_postgres = False  # which store the bot runs on (PaymentTruthOnPostgres: True)

    def __init__(self) -> None:
        super().__init__()
        self.truth = Truth()
        self.clock = MovableClock()
        self.runner = asyncio.Runner()
        self.folder = Path(tempfile.mkdtemp(prefix="paybot-truth-"))
        self.stack = contextlib.AsyncExitStack()
        try:
            database = self.runner.run(self._database())
            tuning = quick_tuning(clock=self.clock)
            world = running_world(self.folder, tuning, env=FOLLOW_UP_ENV, database=database)
            self.world: World = self.runner.run(self.stack.enter_async_context(world))
        except BaseException:
            self.teardown()
            raise

    async def _database(self) -> str | None:
        """A fresh PostgreSQL database, dropped at teardown; None: a SQLite file."""
        if not self.on_postgres:
            return None
        url = await fresh_postgres_url()
        self.stack.push_async_callback(drop_database, url)
        return url

    def teardown(self) -> None:
        confirmed = sum(m.confirmed for m in self.truth.links.values())
        event(
            f"links confirmed: {confirmed} of {len(self.truth.links)}"
        )  # see --hypothesis-show-statistics
        reminders = sum(m.reminded[CUSTOMER] for m in self.truth.links.values())
        event(f"customer reminders: {min(reminders, 3)}{'+' if reminders >= 3 else ''}")
        try:
            self.runner.run(self.stack.aclose())
        finally:
            self.runner.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _step(self, action: Coroutine[Any, Any, None] | None = None) -> None:
        """Run one step's action in the world's loop, then wait until the bot caught up."""

        async def act_and_settle() -> None:
            if action is not None:
                await action
            await settle(self.world, self.truth)

        self.runner.run(act_and_settle())

    def _link(self, data: st.DataObject) -> LinkModel:
        return self.truth.links[data.draw(st.sampled_from(sorted(self.truth.links)), "order")]

    # ---- the merchants and the customer

    @initialize(opens=st.booleans())
    def first_invoice(self, opens: bool) -> None:
        """One link from the start, so that every rule has something to act on; in half
        the examples its customer is there from the start too, for reminders to reach."""
        self._step(self._invoice(MERCHANT, "1001"))
        if opens:
            self._step(self._opens(self.truth.links["1001"]))

    def _invoiceable(self) -> list[str]:
        """Orders that keep one link: none once expired or cancelled in the sandbox."""
        ended = (Status.EXPIRED, Status.CANCELLED)
        done = {o for o, m in self.truth.links.items() if m.sandbox in ended}
        return [o for o in sorted(ORDERS) if o not in done]

    @precondition(lambda self: self._invoiceable())
    @rule(data=st.data(), chat=st.sampled_from(MERCHANTS))
    def invoice(self, data: st.DataObject, chat: int) -> None:
        order = data.draw(st.sampled_from(self._invoiceable()), label="order")
        self._step(self._invoice(chat, order))

    async def _invoice(self, chat: int, order: str) -> None:
        link = self.truth.links.get(order)
        before = len(self.world.fake.messages(chat))
        self.world.say(f"/invoice {order}", user_id=chat)
        if link is not None and (link.confirmed or link.bot is Status.PAID):
            await reply(self.world, chat, before, "Already paid")
            return
        await reply(self.world, chat, before, f"Order {order}\n")  # the invoice photo's caption
        if link is None:
            stored = await self.world.link_for(order)
            link = LinkModel(order, stored.token, stored.id, stored.share_code)
            link.created_ahead = self.clock.ahead
            self.truth.links[order] = link
        link.subscribers.add(chat)

    @rule(data=st.data())
    def customer_opens_share_link(self, data: st.DataObject) -> None:
        self._step(self._opens(self._link(data)))

    async def _opens(self, link: LinkModel) -> None:
        before = len(self.world.fake.messages(CUSTOMER))
        self.world.say(f"/start {link.share_code}", user_id=CUSTOMER)
        await reply(self.world, CUSTOMER, before, f"Order {link.order_id}\n")
        link.subscribers.add(CUSTOMER)

    @rule(data=st.data(), button=st.booleans())
    def merchant_asks_for_the_status(self, data: st.DataObject, button: bool) -> None:
        """`/status`, or the invoice's Refresh button: a poll now, on the merchant's request."""
        link = self._link(data)
        chats = sorted(link.subscribers & set(MERCHANTS))
        w = self.world
        self._step(press_refresh(w, chats[0], link) if button and chats else ask_status(w, link))

    @rule(data=st.data(), chat=st.sampled_from(MERCHANTS))
    def merchant_reminds(self, data: st.DataObject, chat: int) -> None:
        self._step(remind(self.world, chat, self._link(data)))

    def _renewals_that_answer(self) -> list[str]:
        """Orders whose renewal is refused with an answer: paid, or still live."""
        ended = (Status.EXPIRED, Status.CANCELLED)  # a new link is tried for those
        return sorted(o for o, m in self.truth.links.items() if m.confirmed or m.bot not in ended)

    @precondition(lambda self: self._renewals_that_answer())
    @rule(data=st.data(), chat=st.sampled_from(MERCHANTS))
    def merchant_renews_a_paid_or_live_link(self, data: st.DataObject, chat: int) -> None:
        link = self.truth.links[data.draw(st.sampled_from(self._renewals_that_answer()), "order")]
        self._step(renew_answers(self.world, chat, link))

    @rule(data=st.data(), chat=st.sampled_from(MERCHANTS))
    def merchant_cancels(self, data: st.DataObject, chat: int) -> None:
        link = self._link(data)
        event(f"/cancel of a {'confirmed' if link.confirmed else link.bot.value} link")
        self._step(cancel(self.world, chat, link))

    @precondition(lambda self: self.clock.ahead + CLOCK_STEP < CLOCK_MOST)
    @rule()
    def clock_moves_past_a_reminder_mark(self) -> None:
        """Time passes for the bot (a MovableClock): the follow-ups now due go out."""

        async def time_passes() -> None:
            self.clock.ahead += CLOCK_STEP
            self.world.paybot.tracker.wake()
            for link in self.truth.sorted_links():
                link.time_passes(self.clock.ahead)
            await follow_ups_handled(self.world, self.clock())

        self._step(time_passes())

    # ---- the customer's payment in the sandbox, and the bot's restarts

    def _moving(self) -> list[str]:
        return sorted(o for o, m in self.truth.links.items() if m.sandbox in SANDBOX_NEXT)

    @precondition(lambda self: self._moving())
    @rule(data=st.data())
    def payment_moves(self, data: st.DataObject) -> None:
        link = self.truth.links[data.draw(st.sampled_from(self._moving()), label="order")]
        new = data.draw(st.sampled_from((*SANDBOX_NEXT[link.sandbox], Status.EXPIRED)), "to")
        if new is Status.EXPIRED:
            self.world.sandbox.expire(link.token)
        else:
            self.world.sandbox.set_status(link.token, new.value)
        link.sandbox = new
        self._step()

    @rule()
    def restart(self) -> None:
        self._step(self.world.restart())

    # ---- webhooks

    @rule(
        target=sent,
        kind=st.sampled_from(KINDS),
        order=st.sampled_from(sorted(ORDERS)),
        variant=st.sampled_from(AMOUNT_VARIANTS),
    )
    def event_arrives(self, kind: str, order: str, variant: str) -> dict[str, Any]:
        body = self.truth.body(kind, order, variant)
        self._step(self._deliver(body))
        return body

    @rule(target=held, kind=st.sampled_from(KINDS), order=st.sampled_from(sorted(ORDERS)))
    def event_held_back(self, kind: str, order: str) -> dict[str, Any]:
        """An event Cimplify made now and delivers later, after whatever happens meanwhile."""
        return self.truth.body(kind, order)

    @rule(target=sent, body=consumes(held))
    def held_event_arrives_late(self, body: dict[str, Any]) -> dict[str, Any]:
        self._step(self._deliver(body))
        return body

    async def _deliver(self, body: dict[str, Any]) -> None:
        response = await self.world.post_event(body)
        assert response.status_code == 200, response.text
        self.truth.acknowledged(body)

    @rule(body=sent)
    def delivered_again(self, body: dict[str, Any]) -> None:
        """The same event id once more: acknowledged as a duplicate, applied never again."""

        async def again() -> None:
            response = await self.world.post_event(body)
            assert response.status_code == 200, response.text
            assert response.json()["duplicate"] is True

        self._step(again())

    @rule(
        kind=st.sampled_from(SUCCESS_KINDS),
        order=st.sampled_from(sorted(ORDERS)),
        how=st.sampled_from(FORGERIES),
    )
    def forged_success_is_refused(self, kind: str, order: str, how: str) -> None:
        """A success with the right amount that Cimplify did not sign: 401, nothing stored."""
        body, headers = forged(self.truth.body(kind, order), how, self.world.sandbox.sign)

        async def refused() -> None:
            response = await self.world.post_event(body, headers=headers)
            assert response.status_code == 401, (how, response.status_code, response.text)
            self.truth.refused.add(body["id"])

        self._step(refused())

    @rule(data=st.data(), kind=st.sampled_from(KINDS))
    def sandbox_sends_its_own_event(self, data: st.DataObject, kind: str) -> None:
        """The sandbox's sender: its own body, signature and retries, as Cimplify's would be."""
        link = self._link(data)

        async def sends() -> None:
            body = self.truth.body(kind, link.order_id)  # what the sandbox will say
            sandbox, token = self.world.sandbox, body["data"].get("token")
            body["id"] = sandbox.send_event(kind, link.order_id, token=token)
            await sandbox.wait_delivered(body["id"], PATIENCE)
            self.truth.acknowledged(body)

        self._step(sends())

    # ---- invariants, checked after every step once the bot has caught up

    @invariant()
    def confirmed_only_after_a_verified_matching_success(self) -> None:
        for chat in CHATS:
            for order in ORDERS:
                if CONFIRMED_WORDS in told_in_texts(chat_texts(self.world.fake, chat), order):
                    link = self.truth.links.get(order)
                    assert link is not None and link.successes, (chat, order)
            for token, words in caption_histories(self.world.fake, chat):
                if CONFIRMED_WORDS in words:
                    link = self.truth.by_token(token)
                    assert link is not None and link.successes, (chat, token, words)

    @invariant()
    def confirmed_exactly_once_per_subscribed_chat(self) -> None:
        for chat in CHATS:
            texts = chat_texts(self.world.fake, chat)
            for order in ORDERS:
                link = self.truth.links.get(order)
                said = told_in_texts(texts, order).count(CONFIRMED_WORDS)
                wanted = int(link is not None and chat in link.confirmed_chats)
                assert said == wanted, (chat, order, said, wanted, texts)
                notices = link.notices[chat] if link else 0  # amount mismatches, each told once
                assert notices_in_texts(texts, order) == notices, (chat, order, texts)

    @invariant()
    def told_statuses_never_move_backwards(self) -> None:
        for chat in CHATS:
            texts = chat_texts(self.world.fake, chat)
            for order in ORDERS:
                told = told_in_texts(texts, order)
                assert backward_step(told) is None, (chat, order, told)
            for token, words in caption_histories(self.world.fake, chat):
                assert backward_step(words) is None, (chat, token, words)

    @invariant()
    def reminded_as_predicted_and_never_after_payment(self) -> None:
        for chat in CHATS:
            texts = chat_texts(self.world.fake, chat)
            for order in ORDERS:
                late = reminded_after_payment(texts, order)
                assert late is None, (chat, order, late, texts)
        customer = chat_texts(self.world.fake, CUSTOMER)
        for order, link in self.truth.links.items():
            said = customer_reminders(customer, order)
            assert said == link.reminded[CUSTOMER], (order, said, link.reminded, customer)

    @invariant()
    def every_acknowledged_webhook_is_applied(self) -> None:
        stored = self.runner.run(inbox_entries(self.world.settings.database, "cimplify"))
        acked, refused = self.truth.acked, self.truth.refused
        assert acked <= stored.keys(), acked - stored.keys()
        assert not [i for i in acked if stored[i] is None], stored
        assert not refused & stored.keys(), refused & stored.keys()


EXAMPLES = int(os.environ.get("PAYBOT_TRUTH_EXAMPLES", "10"))
RANDOM = bool(os.environ.get("PAYBOT_TRUTH_RANDOM"))
# No explain phase: its tracer slows a whole bot tenfold on Python 3.11. No shrinking in
# CI: each try of a failing step waits out PATIENCE; the long run shrinks to a minimal case.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate) + ((Phase.shrink,) if RANDOM else ())
# pytest-timeout's 60 s covers the whole run of examples: a long run needs more.
pytestmark = pytest.mark.timeout(max(60, 20 * EXAMPLES))

PaymentTruth.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=int(os.environ.get("PAYBOT_TRUTH_STEPS", "14")),
    deadline=None,  # a step waits for a whole bot over loopback
    derandomize=not RANDOM,  # CI: the same examples every run
    phases=PHASES,
    database=None,
    # too_slow: each example starts a whole paybot (~1 s); that is the point, not a slow strategy.
    suppress_health_check=[HealthCheck.too_slow],
)
TestPaymentTruth = PaymentTruth.TestCase


class PaymentTruthOnPostgres(PaymentTruth):
    on_postgres = True


PaymentTruthOnPostgres.TestCase.settings = PaymentTruth.TestCase.settings
TestPaymentTruthOnPostgres = PaymentTruthOnPostgres.TestCase
