"""`paybot demo` as a person lives it, on a terminal: the chat, the link to open, the
customer's chat, and leaving at once."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bot.models import ExportFile
from paybot.demo import CUSTOMER_STEP, WATCHED
from paybot.demo_messengers import FILE_LINES, file_shown
from sandbox import Sandbox, new_webhook_secret
from tests.factories import NOW, make_link
from tests.process import ENTRY, clean_env, start_paybot
from tests.terminal import CTRL_C, CTRL_D, paybot_on_terminal

LINK = r"http://127\.0\.0\.1:[0-9]+/plt_[A-Za-z0-9_-]+"


@pytest.mark.parametrize("leave", [CTRL_C, CTRL_D, "/quit\r"], ids=["ctrl-c", "ctrl-d", "quit"])
def test_the_demo_leaves_at_once_with_0(tmp_path: Path, leave: str) -> None:
    with paybot_on_terminal(["demo"], tmp_path) as terminal:
        terminal.wait_for("you › ")
        terminal.type("/inv")  # half a line typed: Ctrl-C must not wait for Enter
        # Ctrl-D and /quit come on an empty line (Ctrl-U empties it), as at a shell.
        terminal.type(leave if leave == CTRL_C else "\x15" + leave)
        assert terminal.wait_exit(timeout=3.0) == 0


def test_the_demo_shows_every_status_and_the_link_beside_the_qr(tmp_path: Path) -> None:
    with paybot_on_terminal(["demo"], tmp_path) as terminal:
        terminal.wait_for("you › ")
        terminal.type("/invoice 1001\r")
        beside = terminal.wait_for(rf"█ +on this machine:\n.*█ +({LINK})\n")
        terminal.wait_for(rf"Pay here: {beside[1]}")
        terminal.type("/pay 1001\r")
        for status in ("Processing", "Awaiting authorization", "Confirmed"):
            terminal.wait_for(rf"paybot › Order 1001 \(Kofi's Kitchen\): {status} - ", 20)
        terminal.type(CTRL_C)
        assert terminal.wait_exit(timeout=3.0) == 0
    assert "you › you ›" not in terminal.screen  # the prompt is redrawn, never doubled


def test_paying_at_the_printed_link_moves_the_chat(tmp_path: Path) -> None:
    with paybot_on_terminal(["demo"], tmp_path) as terminal:
        terminal.wait_for("you › ")
        terminal.type("/invoice 1002\r")
        url = terminal.wait_for(rf"Pay here: ({LINK})")[1]
        sandbox, token = url.rsplit("/", 1)
        assert httpx.get(url, timeout=5).status_code == 200  # the page, as a browser gets it
        body = {"method": "mobile_money", "provider": "mtn", "phone": "+233241234567"}
        started = httpx.post(f"{sandbox}/v1/pay/orders/{token}/init", json=body, timeout=5)
        terminal.wait_for(r"Order 1002 \(Kofi's Kitchen\): Awaiting authorization")
        answer = {"reference": started.json()["reference"], "approve": True}
        httpx.post(f"{sandbox}/sandbox/checkout/{token}/authorize", json=answer, timeout=5)
        terminal.wait_for(r"Order 1002 \(Kofi's Kitchen\): Confirmed")
        terminal.type("/quit\r")
        assert terminal.wait_exit(timeout=3.0) == 0


def test_the_customer_chat_is_played_and_shown_apart(tmp_path: Path) -> None:
    with paybot_on_terminal(["demo"], tmp_path) as terminal:
        terminal.wait_for("you › ")
        terminal.type("/invoice 1002 +233241234567\r")
        terminal.wait_for(r"\n    customer › \[the QR code image of ")
        terminal.wait_for(r"paybot › Order 1002: the link is on its way to the customer")
        terminal.wait_for(r"paybot › .*delivered")  # WhatsApp's receipt, played by the demo
        terminal.type("/pay 1002\r")
        terminal.wait_for(r"\n    customer › Confirmed - thank you! Your receipt", 20)
        terminal.type(CTRL_D)
        assert terminal.wait_exit(timeout=3.0) == 0


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("/pay 2001", "type /invoice 2001 first"),
        ("/pay 1004", "Order 1004 is already paid"),
        ("/pay 9999", "There is no order '9999'"),
        ("/pay", "Type /pay <order_id>"),
    ],
)
def test_pay_without_a_live_link_answers_in_chat_words(
    tmp_path: Path, line: str, answer: str
) -> None:
    with paybot_on_terminal(["demo"], tmp_path) as terminal:
        terminal.wait_for("you › ")
        terminal.type(f"{line}\r")
        terminal.wait_for(rf"demo › .*{re.escape(answer)}")
        terminal.type(CTRL_C)
        assert terminal.wait_exit(timeout=3.0) == 0
    assert "POST /v1" not in terminal.screen


def test_the_script_plays_a_customer_too_and_ignores_settings_it_does_not_use(
    tmp_path: Path,
) -> None:
    unused = {
        "TELEGRAM_BOT_TOKEN": "garbage-token-value",
        "PAYBOT_DATABASE": "postgresql://u:p@h/db",
        "PAYBOT_HTTP_PORT": "notaport",
    }
    with start_paybot(["demo", "--script"], clean_env(tmp_path, **unused), tmp_path) as demo:
        code = demo.finish(timeout=40.0)
    assert code == 0, demo.lines
    assert any(line.startswith("    customer › Confirmed") for line in demo.lines["stdout"])
    assert demo.lines["stdout"][-1] == "demo: the whole conversation played as expected."


def piped_demo(tmp_path: Path, lines: str, **env: str) -> str:
    """What `paybot demo` prints with `lines` piped in (no terminal); it must end with 0."""
    done = subprocess.run(  # noqa: S603 - fixed arguments, this test's own
        [sys.executable, "-c", ENTRY, "demo"],
        input=lines,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=clean_env(tmp_path, **env),
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_lines_piped_in_are_each_answered_before_the_end(tmp_path: Path) -> None:
    printed = piped_demo(tmp_path, "/invoice 1001\n/status 1001\n")
    assert "Pay here:" in printed
    assert "paybot › Order 1001 (Kofi's Kitchen): Pending" in printed
    assert "you › " not in printed  # no prompt without a terminal


def test_export_shows_the_file_it_sends_its_name_and_first_lines(tmp_path: Path) -> None:
    printed = piped_demo(tmp_path, "/invoice 1001\n/invoice 2001\n/export\n", COLUMNS="60")
    shown = printed.split("2 links, in a CSV file for a spreadsheet.\n", 1)[1].split("\n")
    assert re.fullmatch(r" {9}\[paybot-links-[0-9-]+-to-[0-9-]+\.csv\]", shown[0])
    assert [line.strip()[:32] for line in shown[1:4]] == [
        "order_id,business,currency,total",
        "1001,Kofi's Kitchen,GHS,75.00,pe",
        "2001,Mama Put Lagos,NGN,10000.00",
    ]
    assert [len(line) for line in shown[1:4]] == [60, 60, 60]  # cut to the terminal
    assert all(line.endswith("…") for line in shown[1:4])
    assert shown[4] == ""  # the file's two rows, and nothing more


def test_a_long_file_shows_its_first_lines_and_counts_the_rest() -> None:
    rows = ["order_id,total", *(f"{1000 + n},75.00" for n in range(8))]
    content = ("\ufeff" + "\r\n".join(rows) + "\r\n").encode()
    export = ExportFile("x", "links.csv", content, NOW, NOW + timedelta(days=1))
    shown = file_shown(export, width=12).split("\n")
    assert shown == ["[links.csv]", "order_id,to…", *rows[1:FILE_LINES], "… and 3 more lines"]


async def test_the_demo_sees_processing_however_long_ago_the_link_was_made() -> None:
    # `processing` lasts the sandbox provider's delay on the page, a step of /pay in the
    # played customer: a poll must land in it however long the link sat unpaid.
    sandbox = Sandbox(secret_key="sk_test_demo_pace_0123", webhook_secret=new_webhook_secret())
    try:
        shortest = timedelta(seconds=min(sandbox.checkout.provider_delay, CUSTOMER_STEP))
    finally:
        await sandbox.close()
    link = make_link()
    for waited in (timedelta(seconds=5), timedelta(minutes=15), timedelta(hours=20)):
        assert WATCHED.interval(link, NOW + waited) * 2 <= shortest, waited


def test_the_demo_greets_within_an_80_column_terminal(tmp_path: Path) -> None:
    # A terminal's default width: a longer line wraps mid-word on a newcomer's first screen.
    with paybot_on_terminal(["demo"], tmp_path, columns=80) as terminal:
        intro = terminal.wait_for(r"(?s)\A(.*?)\nyou › ")[1]
        terminal.type(CTRL_C)
        assert terminal.wait_exit(timeout=3.0) == 0
    assert "/invoice 1001" in intro
    assert max(len(line) for line in intro.splitlines()) < 80, intro


def test_ctrl_c_while_the_demo_starts_leaves_at_once_with_0(tmp_path: Path) -> None:
    # A newcomer may change their mind at once: no traceback, no 130, no wait.
    env = clean_env(tmp_path, TMPDIR=str(tmp_path))  # the demo's folder shows it has begun
    with subprocess.Popen(  # noqa: S603 - fixed arguments, this test's own
        [sys.executable, "-c", ENTRY, "demo"],
        stdin=subprocess.PIPE,  # kept open: the demo would otherwise end at its input's end
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        text=True,
    ) as demo:
        deadline = time.monotonic() + 15
        while not any(tmp_path.glob("paybot-demo-*")) and demo.poll() is None:
            assert time.monotonic() < deadline, "the demo never began to start"
            time.sleep(0.005)
        demo.send_signal(signal.SIGINT)
        stdout, stderr = demo.communicate(timeout=3)
    assert demo.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "you are a merchant" not in stdout  # it was stopped while starting
