"""The real `paybot` program, started as a user would, in a clean environment."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.process import DEADLINE, clean_env, free_port, refuses_connections, start_paybot


def run_to_end(
    args: list[str],
    tmp_path: Path,
    settings: dict[str, str] | None = None,
    timeout: float = DEADLINE,
) -> tuple[int, list[str], list[str]]:
    """Run `paybot <args>` until it exits by itself: exit code, stdout and stderr lines."""
    with start_paybot(args, clean_env(tmp_path, **(settings or {})), tmp_path) as paybot:
        code = paybot.finish(timeout)
    return code, paybot.lines["stdout"], paybot.lines["stderr"]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"PAYBOT_HTTP_PORT": "notaport"}, "PAYBOT_HTTP_PORT"),
        ({"TELEGRAM_MERCHANTS": "abc"}, "TELEGRAM_MERCHANTS"),
        ({"CIMPLIFY_API_BASE": "http://x"}, "CIMPLIFY_SECRET_KEY"),
        ({"PAYBOT_DATABASE": "postgresql://u:hunter2pw@h:x/db"}, "PAYBOT_DATABASE"),
        ({"TELEGRAM_BOT_TOKEN": "garbage-token-value"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_MODE": "webhooks"}, "TELEGRAM_MODE"),
        ({"TELEGRAM_MODE": "webhook"}, "TELEGRAM_WEBHOOK_SECRET"),
        (
            {"TELEGRAM_MODE": "webhook", "TELEGRAM_WEBHOOK_SECRET": "garbage-token-value!"},
            "TELEGRAM_WEBHOOK_SECRET",
        ),
    ],
)
def test_a_malformed_setting_stops_the_program_with_one_line(
    tmp_path: Path, settings: dict[str, str], named: str
) -> None:
    port = free_port()
    code, stdout, stderr = run_to_end(
        ["run"], tmp_path, {"PAYBOT_HTTP_PORT": str(port), **settings}
    )
    assert code != 0
    assert len(stderr) == 1 and named in stderr[0], stderr
    assert stdout == []
    assert "hunter2pw" not in stderr[0] and "garbage-token-value" not in stderr[0]
    assert refuses_connections(port)
    assert not (tmp_path / "paybot.db").exists()  # stopped before even opening the store


def test_an_unreachable_postgresql_is_one_line_naming_the_setting_and_exit_2(
    tmp_path: Path,
) -> None:
    port, closed = free_port(), free_port()  # nothing listens on `closed`
    url = f"postgresql://paybot:hunter2pw@127.0.0.1:{closed}/paybot"
    env = {"PAYBOT_HTTP_PORT": str(port), "PAYBOT_DATABASE": url}
    code, _, stderr = run_to_end(["run"], tmp_path, env)
    assert code == 2
    refusals = [line for line in stderr if line.startswith("paybot: ")]
    assert refusals == [stderr[-1]] and stderr[-1].startswith("paybot: PAYBOT_DATABASE: ")
    assert not any("hunter2pw" in line for line in stderr)
    assert refuses_connections(port)  # stopped before anything listens


@pytest.mark.parametrize("where", ["in a folder that does not exist", "a folder", "not SQLite"])
def test_a_sqlite_path_paybot_cannot_use_is_one_line_naming_the_setting_and_exit_2(
    tmp_path: Path, where: str
) -> None:
    path = {
        "in a folder that does not exist": tmp_path / "no-such-folder" / "paybot.db",
        "a folder": tmp_path,
        "not SQLite": tmp_path / "notes.txt",
    }[where]
    (tmp_path / "notes.txt").write_text("not a database, but long enough to look like one\n" * 4)
    port = free_port()
    env = {"PAYBOT_HTTP_PORT": str(port), "PAYBOT_DATABASE": str(path)}
    code, _, stderr = run_to_end(["run"], tmp_path, env)
    assert code == 2, stderr
    refusals = [line for line in stderr if line.startswith("paybot: ")]
    assert refusals == [stderr[-1]] and stderr[-1].startswith("paybot: PAYBOT_DATABASE: ")
    assert not any("Traceback" in line for line in stderr), stderr
    assert refuses_connections(port)  # stopped before anything listens


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_healthz_and_stops_cleanly_on_a_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    port = free_port()
    env = clean_env(tmp_path, PAYBOT_HTTP_PORT=str(port))
    with start_paybot(["run"], env, tmp_path) as paybot:
        paybot.wait_for("stderr", f"paybot is up: http://127.0.0.1:{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        paybot.process.send_signal(stop)
        assert paybot.finish() == 0, paybot.lines
    assert refuses_connections(port)
    assert not any("sk_sandbox_" in line for line in paybot.lines["stderr"])
    assert not any("Traceback" in line for line in paybot.lines["stderr"])


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sandbox_alone_prints_its_keys_once_and_stops_on_a_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    port = free_port()
    env = clean_env(tmp_path)
    with start_paybot(["sandbox", "--port", str(port)], env, tmp_path) as sandbox:
        sandbox.wait_for("stdout", f"Cimplify sandbox at http://127.0.0.1:{port}")
        sandbox.wait_for("stdout", "Seeded orders:")
        orders = httpx.get(f"http://127.0.0.1:{port}/sandbox/orders", timeout=5)
        assert orders.status_code == 200
        assert "1001" in orders.text
        sandbox.process.send_signal(stop)
        code = sandbox.finish()
    keys = [line for line in sandbox.lines["stdout"] if "CIMPLIFY_SECRET_KEY=sk_sandbox_" in line]
    assert len(keys) == 1, sandbox.lines["stdout"]
    assert not any("sk_sandbox_" in line for line in sandbox.lines["stderr"])
    # A signal ends it in order, like `paybot run`: no traceback, exit 0.
    assert code == 0, (code, sandbox.lines["stderr"])
    assert not any("Traceback" in line for line in sandbox.lines["stderr"])


def test_demo_script_plays_to_a_confirmed_payment(tmp_path: Path) -> None:
    code, stdout, _ = run_to_end(["demo", "--script"], tmp_path, timeout=30.0)
    assert code == 0
    assert any("Confirmed" in line for line in stdout)


@pytest.mark.parametrize("args", [[], ["nonsense"]])
def test_no_command_or_an_unknown_one_shows_usage(tmp_path: Path, args: list[str]) -> None:
    code, stdout, stderr = run_to_end(args, tmp_path)
    assert code == 2
    assert stderr and stderr[0].startswith("usage: paybot"), stderr
    assert stdout == []


@pytest.mark.parametrize("command", ["run", "sandbox"])
def test_a_port_already_in_use_exits_with_one_clear_line(tmp_path: Path, command: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        args = ["run"] if command == "run" else ["sandbox", "--port", port]
        code, _, stderr = run_to_end(args, tmp_path, {"PAYBOT_HTTP_PORT": port})
    assert code != 0  # and it did exit: the embedded sandbox did not keep it alive
    failures = [line for line in stderr if line.startswith("paybot:")]
    assert len(failures) == 1, stderr
    assert port in failures[0], f"the line should say which address is taken: {failures}"
    assert not any("Traceback" in line for line in stderr), stderr
