"""The model behind tests/test_payment_truth.py: what paybot should believe, and what chats show.

`Truth` predicts the bot's view of each payment link from the inputs the test
gave (sandbox moves, acknowledged webhooks); the readers turn a chat's messages
back into the statuses it was told, so the test can compare the two. The
forgeries are here too (webhooks that must be refused), and the steps that
drive the bot as people do and wait for its answer.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from standardwebhooks import Webhook

from bot.models import CONFIRMED_WORDS, Status, can_move
from tests.fakes.bot_api import FakeBotApi
from tests.harness import MERCHANT, OTHER_MERCHANT, World, wait_until
from tests.store_rows import inbox_entries


@dataclass(frozen=True)
class SeededOrder:
    total: str
    currency: str


# Three of the sandbox's seeded orders (sandbox/seed.py): two currencies, two businesses.
ORDERS = {
    "1001": SeededOrder("75.00", "GHS"),
    "1002": SeededOrder("52.00", "GHS"),
    "2001": SeededOrder("10000.00", "NGN"),
}
SUCCESS_KINDS = ("payment.succeeded", "order.completed")
PATIENCE = 8.0  # seconds for the bot to catch up after a step; generous for a busy CI box

# Where a customer's payment may go in the sandbox: forward only, as Cimplify does.
SANDBOX_NEXT = {
    Status.PENDING: (Status.PROCESSING,),
    Status.PROCESSING: (Status.AWAITING_AUTHORIZATION, Status.PAID, Status.FAILED),
    Status.AWAITING_AUTHORIZATION: (Status.PAID, Status.FAILED),
    Status.FAILED: (Status.PROCESSING,),
}

MERCHANT_CHATS = frozenset({MERCHANT, OTHER_MERCHANT})

# The follow-ups the machine's bot runs with (PAYBOT_REMINDERS, PAYBOT_FAILED_REMINDER), and
# how far one step moves its clock: past the next reminder mark and any "try again".
REMINDER_MARKS = (timedelta(hours=1), timedelta(hours=2))
FAILED_REMINDER = timedelta(minutes=30)
CLOCK_STEP = timedelta(minutes=61)
FOLLOW_UP_ENV = {"PAYBOT_REMINDERS": "1h,2h", "PAYBOT_FAILED_REMINDER": "30m"}
# Links live 24 hours and are warned of an hour before: the clock stays well short of that.
CLOCK_MOST = timedelta(hours=20)

# How an event states its money: (amount, currency) from the order's, or None for absent.
AMOUNT_VARIANTS = ("exact", "more digits", "a tenth", "a cent short", "other currency", "absent")


def stated_money(order_id: str, variant: str) -> tuple[str, str] | None:
    order = ORDERS[order_id]
    total = Decimal(order.total)
    if variant == "absent":
        return None
    other = "NGN" if order.currency == "GHS" else "GHS"
    return {
        "exact": (order.total, order.currency),
        "more digits": (f"{total:.4f}", order.currency),  # the same amount, written longer
        "a tenth": (f"{total / 10:.2f}", order.currency),
        "a cent short": (f"{total - Decimal('0.01'):.2f}", order.currency),
        "other currency": (order.total, other),
    }[variant]


def matches_total(order_id: str, money: tuple[str, str] | None) -> bool:
    """What bot/event_matching.py accepts: exactly the total, in its currency."""
    if money is None:
        return False
    order = ORDERS[order_id]
    return Decimal(money[0]) == Decimal(order.total) and money[1] == order.currency


def event_body(
    kind: str, order_id: str, token: str | None, money: tuple[str, str] | None
) -> dict[str, Any]:
    """A webhook body as CONTRACT §2 shapes it, with a fresh id."""
    data: dict[str, Any] = {"order_id": order_id, "reference": "MOMO-" + uuid.uuid4().hex[:8]}
    if token is not None:
        data["token"] = token
    if money is not None:
        data["amount"], data["currency"] = money
    created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"id": f"evt_{uuid.uuid4().hex}", "type": kind, "created_at": created, "data": data}


@dataclass
class LinkModel:
    """One payment link: the sandbox's truth and the bot's predicted view of it."""

    order_id: str
    token: str
    link_id: str
    share_code: str
    sandbox: Status = Status.PENDING
    bot: Status = Status.PENDING
    confirmed: bool = False
    subscribers: set[int] = field(default_factory=set)
    confirmed_chats: frozenset[int] = frozenset()  # subscribed when it was confirmed
    notices: Counter[int] = field(default_factory=Counter)  # amount-mismatch notices per chat
    successes: list[str] = field(default_factory=list)  # acknowledged, verified, amount matching
    created_ahead: timedelta = timedelta(0)  # how far the bot's clock was moved when issued
    marks_passed: int = 0  # of REMINDER_MARKS, handled
    failures_waiting: int = 0  # moves to `failed` whose "try again" is not yet due
    reminded: Counter[int] = field(default_factory=Counter)  # reminders and try-agains, a chat

    def poll(self) -> None:
        """What the poller makes of the sandbox: forward moves only, until final or confirmed."""
        if not self.confirmed and not self.bot.is_final and can_move(self.bot, self.sandbox):
            self._move(self.sandbox)

    def _move(self, new: Status) -> None:
        if new is Status.FAILED and self.bot is not Status.FAILED:
            self.failures_waiting += 1  # bot/payments.py schedules its "try again"
        self.bot = new

    @property
    def remindable(self) -> bool:
        """Unpaid and live: what bot/follow_ups.py reminds about."""
        return not self.confirmed and self.bot not in (
            Status.PAID,
            Status.EXPIRED,
            Status.CANCELLED,
        )

    def reminded_now(self) -> None:
        """Every customer chat subscribed now gets one reminder (a mark, or /remind)."""
        self.reminded.update(self.subscribers - MERCHANT_CHATS)

    def time_passes(self, ahead: timedelta) -> None:
        """The bot's clock moved to `ahead`: the marks and failures now due are handled."""
        due = sum(mark <= ahead - self.created_ahead for mark in REMINDER_MARKS)
        for _ in range(due - self.marks_passed):
            if self.remindable:
                self.reminded_now()
        self.marks_passed = due
        tries, self.failures_waiting = self.failures_waiting, 0
        for _ in range(tries):
            if self.remindable and self.bot is Status.FAILED:
                self.reminded_now()

    def succeeded(self, event_id: str, matching: bool) -> None:
        """A verified success event was acknowledged for this link."""
        if self.confirmed:
            return  # a repeat, or the other of payment.succeeded / order.completed
        if not matching:  # the merchants hear it, once an event (bot/event_matching.py)
            self.notices.update(self.subscribers & MERCHANT_CHATS)
            return
        self.successes.append(event_id)
        self.confirmed, self.bot = True, Status.PAID
        self.confirmed_chats = frozenset(self.subscribers)

    def failed(self) -> None:
        """A verified payment.failed was acknowledged for this link."""
        if not self.confirmed and can_move(self.bot, Status.FAILED):
            self._move(Status.FAILED)


class Truth:
    """Every link of one example, and every webhook the bot acknowledged or refused."""

    def __init__(self) -> None:
        self.links: dict[str, LinkModel] = {}  # by order id: one link per order here
        self.acked: set[str] = set()
        self.refused: set[str] = set()

    def sorted_links(self) -> list[LinkModel]:
        return [self.links[o] for o in sorted(self.links)]

    def by_token(self, token: str | None) -> LinkModel | None:
        return next((m for m in self.links.values() if m.token == token), None)

    def body(self, kind: str, order_id: str, variant: str = "exact") -> dict[str, Any]:
        """A genuine event about the order's link, as Cimplify would send it."""
        link = self.links.get(order_id)
        # order.completed speaks of the order (CONTRACT §2): no token, matched by order id.
        token = link.token if link is not None and kind != "order.completed" else None
        return event_body(kind, order_id, token, stated_money(order_id, variant))

    def acknowledged(self, body: dict[str, Any]) -> None:
        """The bot answered 2xx: apply the event as bot/payments.py `_apply` must."""
        self.acked.add(body["id"])
        data = body["data"]
        link = self.by_token(data.get("token")) or self.links.get(data["order_id"])
        if link is None:
            return  # no link for the order yet: acknowledged, applied, nothing to change
        if body["type"] in SUCCESS_KINDS:
            money = (data["amount"], data["currency"]) if "amount" in data else None
            # Without a token, only the order's link in play: not one that has expired.
            in_play = data.get("token") is not None or link.bot is not Status.EXPIRED
            link.succeeded(body["id"], in_play and matches_total(link.order_id, money))
        elif body["type"] == "payment.failed":
            link.failed()


# ---- forgeries: each must be answered 401 and stored nowhere

FORGERIES = ("bad signature", "tampered body", "stale timestamp", "unsigned", "other secret")
_OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-secret-paybot-was-given!").decode()
Signer = Callable[..., dict[str, str]]  # Sandbox.sign(raw, event_id=..., timestamp=...)


def forged(body: dict[str, Any], how: str, sign: Signer) -> tuple[dict[str, Any], dict[str, str]]:
    """The body to send and the headers to send it with, forged `how`."""
    raw, event_id = json.dumps(body).encode(), body["id"]
    if how == "unsigned":
        return body, {}
    if how == "stale timestamp":  # beyond the 5 minutes of tolerance
        return body, sign(
            raw, event_id=event_id, timestamp=datetime.now(UTC) - timedelta(minutes=6)
        )
    signed = sign(raw, event_id=event_id)
    if how == "bad signature":
        made_up = base64.b64encode(secrets.token_bytes(32)).decode()
        return body, signed | {"webhook-signature": f"v1,{made_up}"}
    if how == "other secret":
        signature = Webhook(_OTHER_SECRET).sign(event_id, datetime.now(UTC), raw.decode())
        return body, signed | {"webhook-signature": signature}
    # tampered body: signed as it was, then its amount changed on the way
    tampered = json.loads(raw)
    tampered["data"]["amount"] = "1.00"
    return tampered, signed


# ---- reading chats

_WORDS = "|".join([*(s.words for s in Status), CONFIRMED_WORDS])
_MERCHANT_TEXT = re.compile(rf"^Order (?P<order>[\w-]+) \(.*?\): (?P<words>{_WORDS}) - ")
_CUSTOMER_TEXT = re.compile(
    rf"^Your payment to .*? for order (?P<order>[\w-]+): (?P<words>{_WORDS}) - "
)
_RECEIPT = re.compile(rf"^{CONFIRMED_WORDS} - thank you! .*\nOrder (?P<order>[\w-]+)\n")
_CAPTION_STATUS = re.compile(rf"^Status: (?P<words>{_WORDS})$", re.MULTILINE)
_CAPTION_TOKEN = re.compile(r"/(?P<token>plt_[\w-]+)\n")
NOT_CONFIRMED = "Not confirmed: check the payment"


def told_in_texts(texts: Iterable[str], order_id: str) -> list[str]:
    """The status words of every status-change or confirmation message about the order."""
    told = []
    for text in texts:
        found = _MERCHANT_TEXT.match(text) or _CUSTOMER_TEXT.match(text) or _RECEIPT.match(text)
        if found and found["order"] == order_id:
            told.append(found.groupdict().get("words") or CONFIRMED_WORDS)
    return told


def is_reminder(text: str, order_id: str) -> bool:
    """A reminder or "try again" (bot/render_follow_up.py), to a customer or a merchant."""
    return (
        (text.startswith("A reminder from ") and f" order {order_id}, " in text)
        or f" for order {order_id} did not go through. Please try again" in text
        or text.startswith(
            (f"Order {order_id}: reminded ", f"Order {order_id}: the payment failed;")
        )
        or (text.startswith(f"Order {order_id} (") and "forward them the link" in text)
    )


def customer_reminders(texts: Iterable[str], order_id: str) -> int:
    return sum(
        is_reminder(text, order_id) and not text.startswith(f"Order {order_id}") for text in texts
    )


def reminded_after_payment(texts: Iterable[str], order_id: str) -> str | None:
    """The first reminder about the order told after the chat heard it was paid, if any."""
    paid = False
    for text in texts:
        told = told_in_texts([text], order_id)
        if told and told[0] in (CONFIRMED_WORDS, Status.PAID.words):
            paid = True
        elif paid and is_reminder(text, order_id):
            return text
    return None


def notices_in_texts(texts: Iterable[str], order_id: str) -> int:
    return sum(NOT_CONFIRMED in t and t.startswith(f"Order {order_id} ") for t in texts)


def caption_history(captions: Sequence[str]) -> tuple[str | None, list[str]]:
    """An invoice photo's link token and the status words of its captions, oldest first."""
    token = _CAPTION_TOKEN.search(captions[0]) if captions else None
    words = [found["words"] for c in captions if (found := _CAPTION_STATUS.search(c))]
    return (token["token"] if token else None), words


def backward_step(told: Sequence[str]) -> tuple[str, str] | None:
    """The first pair of consecutive words that moves backwards, if any.

    Forward is `can_move` (bot/models.py); `Confirmed` may follow anything and
    nothing may follow it; saying the same again is not a step.
    """
    by_words = {s.words: s for s in Status}
    for old, new in itertools.pairwise(told):
        if old == CONFIRMED_WORDS:
            return old, new
        if new in (old, CONFIRMED_WORDS):
            continue  # a caption shown again as it was is not a step back
        if not can_move(by_words[old], by_words[new]):
            return old, new
    return None


def chat_texts(fake: FakeBotApi, chat: int) -> list[str]:
    return [m.text for m in fake.messages(chat) if m.text is not None]


def caption_histories(fake: FakeBotApi, chat: int) -> list[tuple[str | None, list[str]]]:
    """Each invoice photo's link and statuses: as sent (from its sendPhoto call), then edited."""
    sent = [
        str(c.params.get("caption", ""))
        for c in fake.calls
        if c.method == "sendPhoto" and str(c.params.get("chat_id")) == str(chat)
    ]
    photos = [m for m in fake.messages(chat) if m.photo is not None]
    assert len(sent) == len(photos), (chat, len(sent), len(photos))
    return [caption_history([first, *p.edits]) for first, p in zip(sent, photos, strict=True)]


# ---- driving the bot as people do, waiting for its answer


async def reply(world: World, chat: int, before: int, words: str) -> None:
    """Until a message after the chat's first `before` holds `words`."""

    def arrived() -> bool:
        new = world.fake.messages(chat)[before:]
        return any(words in (m.text or m.caption or "") for m in new)

    await world.fake.wait_for(arrived, PATIENCE)


async def ask_status(world: World, link: LinkModel) -> None:
    before = len(world.fake.messages(MERCHANT))
    world.say(f"/status {link.order_id}", user_id=MERCHANT)
    await reply(world, MERCHANT, before, f"Order {link.order_id} (")


async def press_refresh(world: World, chat: int, link: LinkModel) -> None:
    """The invoice photo's Refresh status button, until the bot answers the press."""
    fake = world.fake
    photo = next(m for m in world.photos(chat) if link.token in (m.caption or ""))

    def answered() -> int:
        return sum(c.method == "answerCallbackQuery" for c in fake.calls)

    before = answered()
    fake.press_button(f"refresh:{link.link_id}", message_id=photo.message_id, user_id=chat)
    await fake.wait_for(lambda: answered() > before, PATIENCE)


async def remind(world: World, chat: int, link: LinkModel) -> None:
    """`/remind`: a reminder to every customer of a live link, or the answer why not."""
    before = len(world.fake.messages(chat))
    world.say(f"/remind {link.order_id}", user_id=chat)
    if link.confirmed or link.bot is Status.PAID:
        await reply(world, chat, before, "Already paid")
    elif link.bot in (Status.EXPIRED, Status.CANCELLED):
        await reply(world, chat, before, "no live payment link")
    else:
        link.reminded_now()
        await reply(world, chat, before, f"Order {link.order_id}")


async def cancel(world: World, chat: int, link: LinkModel) -> None:
    """`/cancel`: the order cancelled in the sandbox and here, every chat of the link told
    (bot/cancelling.py); or, paid or cancelled already, the answer why not."""
    before = len(world.fake.messages(chat))
    world.say(f"/cancel {link.order_id}", user_id=chat)
    if link.confirmed or Status.PAID in (link.bot, link.sandbox):
        await reply(world, chat, before, "already paid, so it cannot be cancelled")
    elif link.bot is Status.CANCELLED:
        await reply(world, chat, before, "is already cancelled")
    else:
        link.sandbox = link.bot = Status.CANCELLED

        def told() -> bool:
            new = world.fake.messages(chat)[before:]
            return any(
                f"Order {link.order_id} " in (m.text or "") and "ancelled" in (m.text or "")
                for m in new
            )

        await world.fake.wait_for(told, PATIENCE)


async def renew_answers(world: World, chat: int, link: LinkModel) -> None:
    """`/renew` of a paid or live link answers, and makes no new link."""
    before = len(world.fake.messages(chat))
    world.say(f"/renew {link.order_id}", user_id=chat)
    paid = link.confirmed or link.bot is Status.PAID
    await reply(world, chat, before, "Already paid" if paid else "still live")
    latest = await world.link_for(link.order_id)
    assert latest.id == link.link_id, (link.order_id, latest.id, link.link_id)


async def follow_ups_handled(world: World, now: datetime) -> None:
    """Until no follow-up due by `now` waits (each handled, or found moot)."""

    async def due() -> list[str]:
        world.paybot.follow_ups.wake()
        async with world.paybot.store.transaction() as tx:
            return [
                f"{f.link_id}:{f.kind}"
                for link in [await tx.links.latest_for_order(o) for o in ORDERS]
                if link is not None
                for f in await tx.follow_ups.pending_for(link.id)
                if f.due_at <= now
            ]

    await wait_until(due, lambda left: not left, PATIENCE)


async def settle(world: World, truth: Truth) -> None:
    """Until every stored event is applied, each link is as the model says, the outbox empty."""
    store, links = world.paybot.store, truth.links

    async def unapplied() -> list[str]:
        stored = await inbox_entries(world.settings.database, "cimplify")
        return [event_id for event_id, applied in stored.items() if applied is None]

    async def believed() -> dict[str, tuple[Status, bool]]:
        async with store.transaction() as tx:
            found = {o: await tx.links.by_token(m.token) for o, m in links.items()}
        return {o: (k.status, k.confirmed_at is not None) for o, k in found.items() if k}

    await wait_until(unapplied, lambda ids: not ids, PATIENCE)
    for link in links.values():
        link.poll()  # the poller runs all the time: it will have asked by now
    expected = {o: (m.bot, m.confirmed) for o, m in links.items()}
    await wait_until(believed, expected.__eq__, PATIENCE)
    await world.wait_idle(PATIENCE)
