"""`paybot demo`: the whole bot, the embedded sandbox, and a console chat.

The console stands in for Telegram: what you type is a merchant's message, what
paybot sends is printed, the QR drawn with block characters and the link beside it
to open in a browser, where paying moves the chat. `/invoice 1002 +233241234567`
also plays the customer's WhatsApp chat, printed apart. `/pay 1001` plays the
customer paying. `--script` plays a whole conversation and checks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from pathlib import Path

from bot.config import Settings
from bot.models import ChatRef, DeliveryStatus
from bot.tracking import PollPolicy
from handlers.commands import Command, Conversation, CustomerReach
from paybot.app import MERCHANT_SETTINGS, Paybot, Tuning
from paybot.console import ConsoleChat
from paybot.demo_customer import pay_command
from paybot.demo_messengers import CustomerChat, MerchantChat

CHAT = ChatRef("console", "merchant")
DEADLINE = 30.0  # seconds for each scripted line's answers
# The only settings the demo reads: one meant for `paybot run` (a Telegram token, a
# PostgreSQL database) must not stop it.
DEMO_SETTINGS = ("WHATSAPP_DEFAULT_REGION",)
DEFAULT_REGION = "GH"  # the seeded customers' numbers are Ghanaian
CUSTOMER_STEP = 2.5  # seconds between the played customer's steps: time to read each status
# Polls at a pace a person can watch: every status a payment goes through is seen and told,
# however long ago the link was made (the page's `processing` lasts the sandbox provider's
# 2 s; a link polled every 5 s, as an idle one was, would often skip it).
_WATCHED_IDLE = timedelta(seconds=1)
WATCHED = PollPolicy(
    active=timedelta(seconds=0.5),
    authorizing=timedelta(seconds=0.5),
    answer_time=timedelta(0),
    fresh=_WATCHED_IDLE,
    idle_min=_WATCHED_IDLE,
    idle_max=_WATCHED_IDLE,
    jitter=0.0,
    moving_jitter=0.0,
)
_QUICK = timedelta(milliseconds=150)
SCRIPTED = PollPolicy(
    active=_QUICK,
    authorizing=_QUICK,
    answer_time=timedelta(0),
    fresh=_QUICK,
    idle_min=_QUICK,
    jitter=0.0,
    moving_jitter=0.0,
)

INTRO = """\
paybot demo: you are a merchant chatting with paybot; a sandbox plays Cimplify.
Open orders: 1001 and 1002 (GHS), 2001 (NGN), 3001 (KES).
Not to be paid: 1004 (paid already) and 1005 (cancelled).

  /invoice 1001                the payment link and its QR code
  (open the link in a browser) pay as the customer would: this chat follows
  /pay 1001                    or let the demo's customer pay
  /pay 2001 failed             a payment that fails (after /invoice 2001)
  /invoice 1002 +233241234567  the customer gets their copy too (customer ›)
  /help                        paybot's own commands
  /quit, Ctrl-D or Ctrl-C      leave

"""


class Demo:
    """A running paybot with the console as the merchant's chat."""

    def __init__(
        self, paybot: Paybot, console: ConsoleChat, region: str | None, scripted: bool
    ) -> None:
        self.paybot = paybot
        self.scripted = scripted  # a played payment is awaited, so the script can check it
        self.notes: list[str] = []
        self.console = console
        merchant, customer = (
            paybot.tuning.messengers["console"],
            paybot.tuning.messengers["whatsapp"],
        )
        assert isinstance(merchant, MerchantChat) and isinstance(customer, CustomerChat)
        self.merchant, self.customer = merchant, customer
        customer.on_delivered = self._delivered
        # The demo plays the customer's WhatsApp, so customers are always reachable here.
        reach = CustomerReach(whatsapp=True, default_region=region)
        self.conversation = Conversation(
            paybot.store,
            paybot.invoices,
            paybot.tracker,
            paybot.tuning.clock,
            paybot.outbox.wake,
            MERCHANT_SETTINGS.__getitem__,
            reach,
            paybot.cancelling,
            paybot.voices,
            paybot.day,
            paybot.follow_ups,
        )

    async def say(self, line: str, step_delay: float) -> None:
        """One line typed by the merchant: a command for paybot, or /pay for the customer."""
        words = line.split()
        if not words:
            return
        if words[0].lower() == "/pay":
            await pay_command(self, words[1:], step_delay, wait=self.scripted)
            return
        name = words[0].lstrip("/").lower()
        await self.conversation.handle(Command(CHAT, "console", True, name, tuple(words[1:])))

    async def _delivered(self, message_id: str) -> None:
        await self.paybot.deliveries.apply("whatsapp", message_id, DeliveryStatus.DELIVERED)

    def note(self, text: str) -> None:
        """The demo's own words, as a chat line of their own."""
        self.notes.append(text)
        self.console.show(f"demo › {text}\n\n")


def demo_settings(environ: Mapping[str, str], folder: str) -> Settings:
    used = {name: environ[name] for name in DEMO_SETTINGS if name in environ}
    read = Settings.from_env(used, dotenv_path=None)
    return read.with_overrides(
        database=str(Path(folder) / "demo.db"),
        http_port=0,
        whatsapp_default_region=read.whatsapp_default_region or DEFAULT_REGION,
    )


Signalled = Callable[[], Coroutine[object, object, None]]
INTERRUPTED = 130  # a script stopped by a signal did not check the whole conversation


async def run_demo(environ: Mapping[str, str], script: bool, signalled: Signalled) -> int:
    """The demo until it ends, or until `signalled` returns (Ctrl-C, SIGTERM): then at
    once, whether the bot was starting or chatting, with 0 (a script's with 130)."""
    console = ConsoleChat()
    with tempfile.TemporaryDirectory(prefix="paybot-demo-") as folder:
        settings = demo_settings(environ, folder)
        paybot = Paybot(settings, _tuning(console, script))
        stop = asyncio.create_task(signalled())
        try:
            if not await _started(paybot, stop):
                return INTERRUPTED if script else 0
            demo = Demo(paybot, console, settings.whatsapp_default_region, script)
            try:
                if script:
                    return await _play_unless_stopped(demo, stop)
                return await _chat(demo, stop)
            finally:
                await demo.customer.close()
        finally:
            stop.cancel()
            await asyncio.gather(stop, return_exceptions=True)
            await paybot.stop()
            console.close()


async def _started(paybot: Paybot, stop: asyncio.Task[None]) -> bool:
    """Start `paybot`, unless a signal comes first: then what started is left to `stop`."""
    starting = asyncio.create_task(paybot.start())
    await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
    if not stop.done():
        starting.result()  # raises why it could not start
        return True
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return False


async def _play_unless_stopped(demo: Demo, stop: asyncio.Task[None]) -> int:
    playing = asyncio.create_task(_play(demo))
    await asyncio.wait({playing, stop}, return_when=asyncio.FIRST_COMPLETED)
    if playing.done():
        return playing.result()
    playing.cancel()
    await asyncio.gather(playing, return_exceptions=True)
    return INTERRUPTED


def _tuning(console: ConsoleChat, script: bool) -> Tuning:
    messengers = {
        "console": MerchantChat("paybot", console.show),
        "whatsapp": CustomerChat("customer", console.show, margin="    "),
    }
    if script:
        return Tuning(messengers=messengers, per_chat_gap=0.0, poll_policy=SCRIPTED)
    return Tuning(messengers=messengers, per_chat_gap=0.3, poll_policy=WATCHED)


async def _chat(demo: Demo, stop: asyncio.Task[None]) -> int:
    """Lines in order until /quit, the end of input or a signal; 0 in each case."""
    demo.console.show(INTRO)
    commands: asyncio.Queue[str] = asyncio.Queue()
    worker = asyncio.create_task(_handle_each(demo, commands))

    def interrupt(_: asyncio.Task[None]) -> None:
        demo.console.interrupt()

    stop.add_done_callback(interrupt)
    demo.console.start()
    try:
        while (line := await demo.console.next_line()) is not None:
            if line.strip().lower() in ("/quit", "/exit"):
                break
            commands.put_nowait(line)
        if not demo.console.interactive and not demo.console.interrupted:
            await commands.join()  # lines piped in are each answered before the end
    finally:
        stop.remove_done_callback(interrupt)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    return 0


async def _handle_each(demo: Demo, commands: asyncio.Queue[str]) -> None:
    while True:
        line = await commands.get()
        try:
            await demo.say(line, CUSTOMER_STEP)
        except Exception as error:  # a bug in one command must not end the chat
            print(f"demo: {line!r} failed: {error!r}", file=sys.stderr)
        finally:
            commands.task_done()


# The scripted conversation: each line, whose chat answers, and the words that must
# appear there, in this order.
SCRIPT: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("/help", "merchant", ("/invoice <order_id>",)),
    ("/invoice 1001", "merchant", ("Pay here:",)),
    ("/invoice 1001", "merchant", ("Pay here:",)),
    ("/pay 1001", "merchant", ("Processing", "Awaiting authorization", "Confirmed")),
    ("/status 1001", "merchant", ("Confirmed",)),
    ("/pay 1001", "demo", ("already paid",)),
    ("/invoice 1004", "merchant", ("Already paid",)),
    ("/invoice 1005", "merchant", ("cannot take payment",)),
    ("/invoice 10O1!", "merchant", ("not an order id",)),
    ("/pay 2001", "demo", ("type /invoice 2001 first",)),
    ("/invoice 2001", "merchant", ("Pay here:",)),
    ("/pay 2001 failed", "merchant", ("Failed",)),
    ("/invoice 1002 +233241234567", "customer", ("Pay here:",)),
    ("/pay 1002", "customer", ("Processing", "Confirmed - thank you!")),
    ("/invoice 3001 tomorrow", "merchant", ("Pay here:", "not a phone number")),
    ("/status 9999", "merchant", ("no payment link for order 9999",)),
    ("/open", "merchant", ("2001",)),
)


async def _play(demo: Demo) -> int:
    for line, chat, words in SCRIPT:
        demo.console.show(f"you › {line}\n")
        texts = _texts(demo, chat)
        seen = len(texts)
        await demo.say(line, step_delay=0.5)
        if not await _wait_for(demo.paybot, texts, words, seen):
            print(f"demo: expected {words!r} in the {chat}'s chat after {line!r}", file=sys.stderr)
            return 1
    demo.console.show("demo: the whole conversation played as expected.\n")
    return 0


def _texts(demo: Demo, chat: str) -> list[str]:
    return {"merchant": demo.merchant.texts, "customer": demo.customer.texts}.get(chat, demo.notes)


async def _wait_for(paybot: Paybot, texts: list[str], words: tuple[str, ...], seen: int) -> bool:
    """Until the outbox is empty and `words` came, in order, after the first `seen` texts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        async with paybot.store.transaction() as tx:
            pending = await tx.outbox.pending_count()
        if pending == 0 and _in_order(words, texts[seen:]):
            return True
        await asyncio.sleep(0.05)
    return False


def _in_order(words: tuple[str, ...], texts: list[str]) -> bool:
    remaining = iter(texts)
    return all(any(word in text for text in remaining) for word in words)
