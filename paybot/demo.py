"""`paybot demo`: the whole bot, the embedded sandbox, and a console chat.

The console stands in for Telegram: what you type is a merchant's message, what
paybot sends is printed, the QR drawn with block characters. `/pay 1001` plays
the customer paying. `--script` plays a whole conversation and checks it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bot.config import Settings
from bot.invoices import qr_text
from bot.models import ChatRef, MessageKind
from bot.outbox import Delivery
from bot.tracking import PollPolicy
from handlers.commands import Command
from paybot.app import Paybot, Tuning

CHAT = ChatRef("console", "merchant")
DEADLINE = 30.0
_BACKGROUND: set[asyncio.Task[None]] = set()  # payments being played in the background

SCRIPT = [
    "/help",
    "/invoice 1001",
    "/invoice 1001",
    "/pay 1001",
    "/status 1001",
    "/invoice 1004",
    "/invoice 1005",
    "/invoice 10O1!",
    "/invoice 2001",
    "/pay 2001 failed",
    "/open",
]


class ConsoleMessenger:
    """Prints what paybot sends to the console chat, and remembers it."""

    def __init__(self, write: Callable[[str], object] = sys.stdout.write) -> None:
        self._write = write
        self.texts: list[str] = []

    async def deliver(self, delivery: Delivery) -> str | None:
        message = delivery.message
        self.texts.append(message.text)
        if message.kind is MessageKind.CAPTION:
            status = message.text.rsplit("\n", 1)[-1]
            self._write(f"  (the invoice above now reads: {status})\n")
            return None
        if message.kind is MessageKind.INVOICE and delivery.link is not None:
            self._write(qr_text(delivery.link.url))
        self._write("paybot › " + message.text.replace("\n", "\n         ") + "\n\n")
        return str(len(self.texts))


async def run_demo(settings: Settings, script: bool) -> int:
    console = ConsoleMessenger()
    with tempfile.TemporaryDirectory(prefix="paybot-demo-") as folder:
        demo_settings = replace(
            settings,
            database=str(Path(folder) / "demo.db"),
            http_port=0,
            cimplify_api_base=None,
            telegram_bot_token=None,
        )
        paybot = Paybot(demo_settings, _tuning(console, script))
        await paybot.start()
        try:
            if script:
                return await _play(paybot, console)
            await _chat(paybot)
            return 0
        finally:
            await paybot.stop()


def _tuning(console: ConsoleMessenger, script: bool) -> Tuning:
    if not script:
        return Tuning(messengers={"console": console}, per_chat_gap=0.3)
    quick = timedelta(milliseconds=150)
    return Tuning(
        messengers={"console": console},
        per_chat_gap=0.0,
        poll_policy=PollPolicy(active=quick, fresh=quick, idle_min=quick, jitter=0.0),
    )


async def _chat(paybot: Paybot) -> None:
    print("paybot demo: you are a merchant on a chat with paybot. Orders 1001, 1002, 2001,")
    print("3001 are open; 1004 is paid; 1005 is cancelled. Try /invoice 1001, then")
    print("/pay 1001 to play the customer paying. /quit or Ctrl-D ends.\n")
    loop = asyncio.get_running_loop()
    while True:
        try:
            line = await loop.run_in_executor(None, input, "you › ")
        except EOFError:
            return
        if line.strip() in ("/quit", "/exit"):
            return
        await _say(paybot, line, step_delay=2.5, wait=False)


async def _say(paybot: Paybot, line: str, step_delay: float, wait: bool = True) -> None:
    words = line.split()
    if not words:
        return
    if words[0] == "/pay":
        paying = asyncio.create_task(_pay(paybot, words[1:], step_delay))
        if wait:
            await paying
        else:
            _BACKGROUND.add(paying)
            paying.add_done_callback(_BACKGROUND.discard)
        return
    name = words[0].lstrip("/").lower()
    await paybot.conversation.handle(Command(CHAT, "console", True, name, tuple(words[1:])))


async def _pay(paybot: Paybot, args: list[str], step_delay: float) -> None:
    if not args or paybot.sandbox is None:
        print("Type /pay <order_id> [failed]")
        return
    outcome = "failed" if args[1:] == ["failed"] else "paid"
    try:
        await paybot.sandbox.pay(args[0], outcome=outcome, step_delay=step_delay)
    except (KeyError, ValueError) as error:
        print(f"(sandbox) {error}")


async def _play(paybot: Paybot, console: ConsoleMessenger) -> int:
    for line in SCRIPT:
        print(f"you › {line}")
        seen = len(console.texts)
        await _say(paybot, line, step_delay=0.5)
        expected = _expectation(line)
        if not await _wait_for(paybot, console, expected, seen):
            print(f"demo: expected {expected!r} after {line!r}", file=sys.stderr)
            return 1
    print("demo: the whole conversation played as expected.")
    return 0


def _expectation(line: str) -> str:
    """Words that must appear in paybot's answers after each scripted line."""
    return {
        "/help": "/invoice <order_id>",
        "/invoice 1001": "Pay here:",
        "/pay 1001": "Confirmed",
        "/status 1001": "Confirmed",
        "/invoice 1004": "Already paid",
        "/invoice 1005": "cannot take payment",
        "/invoice 10O1!": "not an order id",
        "/invoice 2001": "Pay here:",
        "/pay 2001 failed": "Failed",
        "/open": "2001",
    }[line]


async def _wait_for(paybot: Paybot, console: ConsoleMessenger, words: str, seen: int) -> bool:
    """Until the outbox is empty and `words` was in a message after the first `seen`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        async with paybot.store.transaction() as tx:
            pending = await tx.outbox.pending_count()
        if pending == 0 and any(words in text for text in console.texts[seen:]):
            return True
        await asyncio.sleep(0.05)
    return False
