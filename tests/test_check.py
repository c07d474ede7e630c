"""`paybot check`, a real process against the fakes: one line a configured service,
exit 0 when every one accepts the settings, non-zero with the failing line otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox import Sandbox, SandboxServer
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import BOT_TOKEN, SECRET_KEY, WEBHOOK_SECRET
from tests.process import DEADLINE, clean_env, free_port, start_paybot


@dataclass
class Services:
    bot_api: FakeBotApi
    twilio: FakeTwilio
    sandbox: Sandbox
    env: dict[str, str]  # settings that every service accepts


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    sandbox = Sandbox(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)
    async with (
        FakeBotApi(token=BOT_TOKEN) as bot_api,
        FakeTwilio() as twilio,
        SandboxServer(sandbox) as server,
    ):
        env = {
            "CIMPLIFY_API_BASE": server.url,
            "CIMPLIFY_SECRET_KEY": SECRET_KEY,
            "CIMPLIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_API_BASE": bot_api.base_url,
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_WHATSAPP_FROM": twilio.sender,
            "TWILIO_API_BASE": twilio.base_url,
        }
        yield Services(bot_api, twilio, sandbox, env)
        await sandbox.close()


async def check(tmp_path: Path, env: dict[str, str]) -> tuple[int, list[str], list[str]]:
    """Run `paybot check` to its end: exit code, stdout and stderr lines.

    The fakes answer on this loop, so the wait for the process runs in a thread."""
    settings = clean_env(tmp_path, **env)
    with start_paybot(["check"], settings, tmp_path) as paybot:
        code = await asyncio.to_thread(paybot.finish, DEADLINE)
    return code, paybot.lines["stdout"], paybot.lines["stderr"]


def line_of(service: str, lines: list[str]) -> str:
    (found,) = [line for line in lines if line.split()[0] == service]
    return found


def no_secret_in(lines: list[str]) -> bool:
    text = "\n".join(lines)
    return not any(s in text for s in (SECRET_KEY, WEBHOOK_SECRET, BOT_TOKEN, "twilio-test-auth"))


async def test_good_settings_pass_with_one_ok_line_a_service(
    tmp_path: Path, services: Services
) -> None:
    code, stdout, stderr = await check(tmp_path, services.env)

    assert code == 0, (stdout, stderr)
    assert [line.split()[:2] for line in stdout] == [
        ["database", "ok"],
        ["cimplify", "ok"],
        ["telegram", "ok"],
        ["twilio", "ok"],
    ]
    assert "@paybot_test_bot" in line_of("telegram", stdout)
    assert "no webhook set" in line_of("telegram", stdout)
    called = [call.method for call in services.bot_api.calls]
    assert called == ["getMe", "getWebhookInfo"]  # asked, nothing changed
    assert services.sandbox.ledger.links == {}  # the key was checked, no link was made
    assert no_secret_in(stdout + stderr)


async def test_in_webhook_mode_the_telegram_line_says_where_the_webhook_goes(
    tmp_path: Path, services: Services
) -> None:
    webhook_mode = {
        "TELEGRAM_MODE": "webhook",
        "TELEGRAM_WEBHOOK_SECRET": "tg-check_secret-0123456789",
        "PAYBOT_PUBLIC_URL": "https://paybot.example",
    }
    code, stdout, stderr = await check(tmp_path, services.env | webhook_mode)

    assert code == 0, (stdout, stderr)
    telegram = line_of("telegram", stdout)
    assert "sets the webhook to https://paybot.example/webhooks/telegram at start" in telegram
    assert "getUpdates" not in telegram
    assert "tg-check_secret-0123456789" not in "\n".join(stdout + stderr)
    called = [call.method for call in services.bot_api.calls]
    assert called == ["getMe", "getWebhookInfo"]  # nothing set by a check


async def test_only_configured_services_are_asked(tmp_path: Path, services: Services) -> None:
    code, stdout, _ = await check(tmp_path, {})  # the embedded sandbox, no chat channel

    assert code == 0
    assert [line.split()[:2] for line in stdout] == [["database", "ok"]]


@pytest.mark.parametrize(
    ("setting", "wrong", "service", "reason"),
    [
        ("CIMPLIFY_SECRET_KEY", "sk_test_wrong_0123456789abcdef", "cimplify", "refused"),
        ("TELEGRAM_BOT_TOKEN", "123456:WRONG-token_abcdefghijklmno", "telegram", "refused"),
        ("TWILIO_AUTH_TOKEN", "not-the-twilio-token-0123456", "twilio", "refused"),
    ],
)
async def test_a_refused_credential_fails_its_line_and_the_exit(
    tmp_path: Path, services: Services, setting: str, wrong: str, service: str, reason: str
) -> None:
    code, stdout, stderr = await check(tmp_path, services.env | {setting: wrong})

    assert code != 0
    failed = line_of(service, stdout)
    assert failed.split()[1] == "FAILED" and reason in failed and setting in failed
    assert all(line.split()[1] == "ok" for line in stdout if line != failed)
    assert wrong not in "\n".join(stdout + stderr)
    assert no_secret_in(stdout + stderr)


async def test_a_suspended_twilio_account_fails(tmp_path: Path, services: Services) -> None:
    services.twilio.account_status = "suspended"
    code, stdout, _ = await check(tmp_path, services.env)
    assert code != 0
    assert line_of("twilio", stdout).split()[1] == "FAILED"
    assert "suspended" in line_of("twilio", stdout)


async def test_an_unreachable_service_fails_with_the_reason(
    tmp_path: Path, services: Services
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    code, stdout, _ = await check(tmp_path, services.env | {"TELEGRAM_API_BASE": nowhere})
    assert code != 0
    telegram = line_of("telegram", stdout)
    assert telegram.split()[1] == "FAILED"
    assert len(telegram.split()) > 2  # with words saying why


async def test_an_unreachable_database_fails_without_showing_its_password(
    tmp_path: Path, services: Services
) -> None:
    url = f"postgresql://paybot:hunter2pw@127.0.0.1:{free_port()}/paybot"
    code, stdout, stderr = await check(tmp_path, services.env | {"PAYBOT_DATABASE": url})
    assert code != 0
    database = line_of("database", stdout)
    assert database.split()[1] == "FAILED" and "PAYBOT_DATABASE" in database
    assert "hunter2pw" not in "\n".join(stdout + stderr)
