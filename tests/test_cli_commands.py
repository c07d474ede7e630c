"""The command line as a newcomer meets it: --help, --version, `run` with no channel,
and `paybot sandbox` with keys that outlive a restart and a banner that works as printed."""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path

import httpx
import pytest

from tests.process import clean_env, free_port, start_paybot
from tests.test_cli import run_to_end

KEY = "sk_test_fixed_0123456789"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"a-fixed-webhook-secret-32-bytes!").decode()


def test_help_names_each_command_and_where_the_settings_are(tmp_path: Path) -> None:
    code, stdout, _ = run_to_end(["--help"], tmp_path)
    assert code == 0
    text = "\n".join(stdout)
    for command in ("run", "demo", "sandbox"):
        assert re.search(rf"^\s+{command}\s+\S", text, re.MULTILINE), text
    assert "README's Settings section" in text
    code, stdout, _ = run_to_end(["sandbox", "--help"], tmp_path)
    assert code == 0 and "--secret-key" in "\n".join(stdout)


def test_version_answers(tmp_path: Path) -> None:
    code, stdout, _ = run_to_end(["--version"], tmp_path)
    assert code == 0
    assert re.fullmatch(r"paybot [0-9]+\.[0-9]+\.[0-9]+", stdout[0]), stdout


def test_run_with_no_chat_channel_says_nobody_can_reach_it(tmp_path: Path) -> None:
    port = free_port()
    with start_paybot(["run"], clean_env(tmp_path, PAYBOT_HTTP_PORT=str(port)), tmp_path) as run:
        run.wait_for("stderr", "paybot is up")
        run.process.terminate()
        run.finish()  # how it stops is tests/test_cli.py's business
    told = [line for line in run.lines["stderr"] if "nobody can reach" in line]
    assert len(told) == 1, run.lines["stderr"]
    assert "TELEGRAM_BOT_TOKEN" in told[0] and "TWILIO_ACCOUNT_SID" in told[0]


def sandbox_args(port: int, how: str) -> tuple[list[str], dict[str, str]]:
    args = ["sandbox", "--port", str(port)]
    if how == "flags":
        return [*args, "--secret-key", KEY, "--webhook-secret", WEBHOOK_SECRET], {}
    return args, {"CIMPLIFY_SECRET_KEY": KEY, "CIMPLIFY_WEBHOOK_SECRET": WEBHOOK_SECRET}


@pytest.mark.parametrize("how", ["flags", "environment"])
def test_sandbox_keys_given_survive_a_restart(tmp_path: Path, how: str) -> None:
    port = free_port()
    args, settings = sandbox_args(port, how)
    for _ in range(2):  # the same bot settings work with the restarted sandbox
        with start_paybot(args, clean_env(tmp_path, **settings), tmp_path) as sandbox:
            sandbox.wait_for("stdout", f"CIMPLIFY_SECRET_KEY={KEY}")
            sandbox.wait_for("stdout", f"CIMPLIFY_WEBHOOK_SECRET={WEBHOOK_SECRET}")
            made = httpx.post(
                f"http://127.0.0.1:{port}/v1/orders/1001/payment-link",
                json={},
                headers={"Authorization": f"Bearer {KEY}", "Idempotency-Key": "k1"},
                timeout=5,
            )
            assert made.status_code == 201
            sandbox.process.terminate()
            assert sandbox.finish() == 0


def test_a_malformed_sandbox_key_stops_it_with_one_line(tmp_path: Path) -> None:
    code, _, stderr = run_to_end(["sandbox", "--webhook-secret", "nope"], tmp_path)
    assert code == 2
    assert len(stderr) == 1 and "CIMPLIFY_WEBHOOK_SECRET" in stderr[0]


def test_the_banner_examples_work_as_printed_on_a_fresh_start(tmp_path: Path) -> None:
    port = free_port()
    with start_paybot(["sandbox", "--port", str(port)], clean_env(tmp_path), tmp_path) as box:
        box.wait_for("stdout", "Each link's url")
        examples = [line.split(":", 1)[1] for line in box.lines["stdout"] if "curl " in line]
        answers = [_curl(shlex.split(example)) for example in examples]
        box.process.terminate()
        box.finish()
    assert [a.status_code for a in answers] == [200, 202], [a.text for a in answers]
    assert answers[1].json()["url"] == f"http://127.0.0.1:{port}/{answers[1].json()['token']}"


def _curl(words: list[str]) -> httpx.Response:
    """What `curl` does with the banner's words: GET, or -X POST with -d's body."""
    assert words[0] == "curl", words
    url = next(word for word in words[1:] if word.startswith("http"))
    if "-X" not in words:
        return httpx.get(url, timeout=5)
    body = words[words.index("-d") + 1]
    json.loads(body)  # the example's body is JSON
    return httpx.post(url, content=body, timeout=5)
