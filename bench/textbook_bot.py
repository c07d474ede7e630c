"""The textbook python-telegram-bot invoice bot, the yardstick for paybot's `/invoice`.

What PTB's examples lead anyone to write, and the floor of the stack: an
`Application` long-polling the Bot API, one `CommandHandler("invoice", …)` that
asks Cimplify for a payment link and the order behind it (httpx, one client
kept open), draws the link's QR code with segno and sends it with `send_photo`.
No store, no outbox, no retries, no authorization. Updates are handled
concurrently (`concurrent_updates(True)`, as PTB's docs advise for a bot that
waits on the network), so fifty commands wait on one another only for the CPU.

Run as its own process: `python -m bench.textbook_bot`, settings in the
environment (TEXTBOOK_BOT_TOKEN, TEXTBOOK_API_BASE, CIMPLIFY_API_BASE,
CIMPLIFY_SECRET_KEY).
"""

from __future__ import annotations

import io
import os
import uuid

import httpx
import segno
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

CIMPLIFY = "cimplify"  # bot_data key of the httpx client


async def invoice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_chat is None or not context.args:
        return
    cimplify: httpx.AsyncClient = context.bot_data[CIMPLIFY]
    created = await cimplify.post(
        f"/v1/orders/{context.args[0]}/payment-link",
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={},
    )
    created.raise_for_status()
    link = created.json().get("payment_link", created.json())
    summary = await cimplify.get(f"/v1/pay/orders/{link['token']}")
    summary.raise_for_status()
    order = summary.json().get("order", summary.json())
    png = io.BytesIO()
    segno.make(link["url"], micro=False, error="m").save(png, kind="png", scale=8, border=4)
    caption = f"{order['business_name']}: {order['currency']} {order['total']}\n{link['url']}"
    await update.effective_chat.send_photo(png.getvalue(), caption=caption)


async def _open(application: Application) -> None:  # type: ignore[type-arg]
    application.bot_data[CIMPLIFY] = httpx.AsyncClient(
        base_url=os.environ["CIMPLIFY_API_BASE"],
        headers={"Authorization": f"Bearer {os.environ['CIMPLIFY_SECRET_KEY']}"},
    )


async def _close(application: Application) -> None:  # type: ignore[type-arg]
    await application.bot_data[CIMPLIFY].aclose()


def main() -> None:
    application = (
        Application.builder()
        .token(os.environ["TEXTBOOK_BOT_TOKEN"])
        .base_url(f"{os.environ['TEXTBOOK_API_BASE']}/bot")
        .concurrent_updates(True)
        .post_init(_open)
        .post_shutdown(_close)
        .build()
    )
    application.add_handler(CommandHandler("invoice", invoice))
    application.run_polling(poll_interval=0.0, timeout=10)


if __name__ == "__main__":
    main()
