"""SIGTERM or SIGINT at any moment of `paybot run`, starting included: exit 0 within 10 s.

The handlers go in as `main` begins, before the rest of paybot is loaded (about 0.07 s
after the process starts, from 0.3 to 0.7 s when they went in after the imports)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.process import (
    DEADLINE,
    ROOT,
    Paybot,
    clean_env,
    free_port,
    refuses_connections,
    start_paybot,
)

# What takes most of a second to load on a busy machine, and must wait until the handlers
# are in: a SIGTERM before them kills the process with exit -15.
HEAVY = ("asyncio", "bot", "handlers", "storage", "sandbox", "telegram", "httpx", "uvicorn")


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether the process has a handler of its own for `sig` (SigCgt in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (sig - 1) & 1)


def wait_until_caught(paybot: Paybot, sig: signal.Signals) -> None:
    """Until paybot's own handler is in: the first instant its code can act on `sig`.

    Before, only the interpreter is loading (Python's own SIGINT handler aside)."""
    deadline = time.monotonic() + DEADLINE
    while not catches(paybot.process.pid, sig):
        assert paybot.process.poll() is None, paybot.lines
        assert time.monotonic() < deadline, "paybot never installed its signal handlers"
        time.sleep(0.001)  # look again: the handler goes in within milliseconds of start


def stopped_cleanly(paybot: Paybot, port: int) -> None:
    code = paybot.finish(timeout=DEADLINE)
    assert code == 0, (code, paybot.lines["stderr"][-20:])
    assert not any("Traceback" in line for line in paybot.lines["stderr"]), paybot.lines
    assert refuses_connections(port)


def test_the_handlers_go_in_before_the_rest_of_paybot_is_loaded(tmp_path: Path) -> None:
    """The console script imports paybot.cli, then calls main: until main has installed
    the handlers, only the standard library's small modules may load."""
    look = (
        "import sys; import paybot.cli; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    loaded = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", look],
        env=clean_env(tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    assert loaded.stdout.strip() == "[]", loaded


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_the_first_instant_exits_0(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    env = clean_env(tmp_path, PAYBOT_HTTP_PORT=str(port))
    with start_paybot(["run"], env, tmp_path) as paybot:
        wait_until_caught(paybot, signal.SIGTERM)  # SIGINT's goes in with it
        paybot.process.send_signal(stop)
        stopped_cleanly(paybot, port)
    # The handler was in long before the start finished, and the signal ended it.
    assert not any("paybot is up" in line for line in paybot.lines["stderr"]), paybot.lines


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_the_first_log_line_exits_0(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    env = clean_env(tmp_path, PAYBOT_HTTP_PORT=str(port))
    with start_paybot(["run"], env, tmp_path) as paybot:
        paybot.wait_for("stderr", "embedded Cimplify sandbox at")  # the store is open
        paybot.process.send_signal(stop)
        stopped_cleanly(paybot, port)


@pytest.mark.parametrize("later", [0.05, 0.2, 0.4, 0.8])
def test_a_sigterm_some_moment_into_the_start_exits_0(tmp_path: Path, later: float) -> None:
    """Moments spread over loading, opening the store and starting the parts."""
    port = free_port()
    env = clean_env(tmp_path, PAYBOT_HTTP_PORT=str(port))
    with start_paybot(["run"], env, tmp_path) as paybot:
        wait_until_caught(paybot, signal.SIGTERM)
        time.sleep(later)  # not a wait for anything: the moment the signal lands
        paybot.process.send_signal(signal.SIGTERM)
        stopped_cleanly(paybot, port)


def test_a_sigterm_once_up_still_exits_0(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(tmp_path, PAYBOT_HTTP_PORT=str(port))
    with start_paybot(["run"], env, tmp_path) as paybot:
        paybot.wait_for("stderr", f"paybot is up: http://127.0.0.1:{port}")
        started = time.monotonic()
        paybot.process.send_signal(signal.SIGTERM)
        stopped_cleanly(paybot, port)
    assert time.monotonic() - started < DEADLINE
