"""The demo's chats, printed: the merchant's (the console's own) and the customer's
WhatsApp chat that the demo plays, shown apart.

Each stands in for a channel's messenger: the outbox delivers to it as it would to
Telegram or Twilio, and it prints, and keeps every text for `paybot demo --script`.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Coroutine
from typing import Any

from bot.invoices import qr_text
from bot.models import ExportFile, MessageKind
from bot.outbox import Delivery

_QR_GAP = "  "
FILE_LINES = 6  # of a file sent to the chat (`/export`'s CSV): its header and five rows


class PrintedChat:
    """One chat whose messages are printed under `name ›`, each line after the first
    indented under it."""

    def __init__(self, name: str, show: Callable[[str], None], margin: str = "") -> None:
        self.texts: list[str] = []
        self._head = f"{margin}{name} › "
        self._indent = margin + " " * (len(name) + 3)
        self._show = show

    async def deliver(self, delivery: Delivery) -> str | None:
        message = delivery.message
        self.texts.append(message.text)
        if message.kind is MessageKind.CAPTION:
            # Telegram edits the invoice's caption in place; here that would repeat the
            # status message just printed, so the edit is kept (for --script) but not shown.
            return None
        text = message.text
        if delivery.attachment is not None:
            text += "\n" + file_shown(delivery.attachment, self._width())
        shown = self._message(text)
        if message.kind is MessageKind.INVOICE and delivery.link is not None:
            shown = self._invoice(delivery.link.url) + shown
        self._show(shown)
        return str(len(self.texts))

    def _message(self, text: str) -> str:
        first, *rest = text.split("\n")
        lines = [self._head + first, *(self._indent + line if line else "" for line in rest)]
        return "\n".join(lines) + "\n\n"

    def _invoice(self, url: str) -> str:
        return qr_text(url)

    def _width(self) -> int:
        """The columns a line of a message has, after the chat's name or indent."""
        return max(20, shutil.get_terminal_size().columns - len(self._indent))


def file_shown(export: ExportFile, width: int) -> str:
    """A file as the chat shows it: its name, then its first lines, each cut to `width`."""
    lines = export.content.decode("utf-8-sig", errors="replace").splitlines()
    shown = [f"[{export.filename}]"]
    for line in lines[:FILE_LINES]:
        shown.append(line if len(line) <= width else line[: width - 1] + "…")
    if len(lines) > FILE_LINES:
        shown.append(f"… and {len(lines) - FILE_LINES} more lines")
    return "\n".join(shown)


class MerchantChat(PrintedChat):
    """The merchant's chat: the invoice's QR code, with the link beside it to open in a
    browser on this machine (the sandbox listens on loopback only)."""

    def _invoice(self, url: str) -> str:
        return with_link_beside(qr_text(url), url, shutil.get_terminal_size().columns)


class CustomerChat(PrintedChat):
    """The customer's WhatsApp chat: an invoice is an image there, so it is named, not drawn.

    WhatsApp reports each message delivered (Twilio's status callback); `on_delivered`
    plays that report for the customer's copy of an invoice, so the merchant hears it.
    """

    def __init__(self, name: str, show: Callable[[str], None], margin: str = "") -> None:
        super().__init__(name, show, margin)
        self.on_delivered: Callable[[str], Coroutine[Any, Any, None]] | None = None
        self._receipts: set[asyncio.Task[None]] = set()

    async def deliver(self, delivery: Delivery) -> str | None:
        sent = await super().deliver(delivery)
        if delivery.message.kind is MessageKind.INVOICE and sent and self.on_delivered:
            # A receipt may come before the send is recorded: the outbox expects that.
            receipt = asyncio.get_running_loop().create_task(self.on_delivered(sent))
            self._receipts.add(receipt)
            receipt.add_done_callback(self._receipts.discard)
        return sent

    async def close(self) -> None:
        for receipt in list(self._receipts):
            receipt.cancel()
        await asyncio.gather(*self._receipts, return_exceptions=True)

    def _invoice(self, url: str) -> str:
        return f"{self._head}[the QR code image of {url}]\n"


def with_link_beside(qr: str, url: str, columns: int) -> str:
    """The QR code with the link to its right when the terminal is wide enough, else below."""
    rows = qr.rstrip("\n").split("\n")
    note = ["Open it in a browser", "on this machine:", url]
    width = max(len(row) for row in rows)
    if columns < width + len(_QR_GAP) + len(url):
        below = "Or open it in a browser on this machine:"
        return qr + f"{below}\n{url}\n\n"
    top = (len(rows) - len(note)) // 2
    for offset, line in enumerate(note):
        rows[top + offset] += _QR_GAP + line
    return "\n".join(rows) + "\n\n"
