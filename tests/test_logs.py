"""Redacting logs: no secret, bot token or Bearer credential reaches a log line."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from bot.config import Settings
from bot.logs import configure_logging, log_context, redact
from bot.models import ChatRef
from tests.flow_events import event
from tests.harness import World

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
QUIETED = ("httpx", "httpcore", "uvicorn.access")

log = logging.getLogger("paybot.test")


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """Put the root logger and the quieted loggers back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIETED}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.fixture
def output() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("DEBUG", [KEY, TOKEN], stream=stream)
    return stream


def test_line_format_is_utc_iso8601(output: io.StringIO) -> None:
    log.info("hello %s", "world")
    line = output.getvalue()
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO paybot\.test: hello world\n"
    assert re.fullmatch(pattern, line)


def test_secret_in_message_and_args_is_masked(output: io.StringIO) -> None:
    log.info(f"calling with key {KEY}")
    log.warning("token is %s and key is %r", TOKEN, KEY)
    text = output.getvalue()
    assert KEY not in text
    assert TOKEN not in text
    assert text.count("********") == 3


def test_secret_inside_a_traceback_is_masked(output: io.StringIO) -> None:
    try:
        raise RuntimeError(f"refused key {KEY}")
    except RuntimeError:
        log.exception("request failed")
    text = output.getvalue()
    assert "Traceback" in text
    assert "RuntimeError: refused key ********" in text
    assert KEY not in text


def test_bot_token_in_a_url_is_masked_even_when_unknown(output: io.StringIO) -> None:
    other = "987654:ZZZdqTcvCH1vGWJxfSeofSAs0K5PALD"
    logging.getLogger("httpx").warning(
        'HTTP Request: POST https://api.telegram.org/bot%s/sendMessage "HTTP/1.1 502"', other
    )
    text = output.getvalue()
    assert other not in text
    assert "https://api.telegram.org/bot<redacted>/sendMessage" in text


def test_bearer_credentials_are_masked(output: io.StringIO) -> None:
    log.debug("headers: %s", {"Authorization": "Bearer unknown-credential-123"})
    log.debug("authorization: bearer other.credential")
    text = output.getvalue()
    assert "unknown-credential-123" not in text
    assert "other.credential" not in text
    assert "'Bearer ********'" in text
    assert "bearer ********" in text


def test_httpx_request_lines_are_not_logged(output: io.StringIO) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    with httpx.Client(transport=transport) as client:
        response = client.get(f"https://api.telegram.org/bot{TOKEN}/getMe")
    assert response.status_code == 200
    log.debug("after the request")
    text = output.getvalue()
    assert "after the request" in text  # DEBUG lines do get through
    assert "HTTP Request" not in text
    assert all(logging.getLogger(name).level == logging.WARNING for name in QUIETED)


def test_configuring_again_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", [], stream=first)
    configure_logging("WARNING", [KEY], stream=second)
    log.info("quiet now")
    log.warning("key %s", KEY)
    assert first.getvalue() == ""
    assert "quiet now" not in second.getvalue()
    assert "WARNING paybot.test: key ********" in second.getvalue()
    named = [h for h in logging.getLogger().handlers if h.name == "paybot"]
    assert len(named) == 1


def test_settings_secrets_feed_the_redaction() -> None:
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}, dotenv_path=None)
    stream = io.StringIO()
    configure_logging(settings.log_level, settings.secrets(), stream=stream)
    assert settings.telegram_bot_token is not None
    log.error("token %s", settings.telegram_bot_token.reveal())
    assert "ERROR paybot.test: token ********" in stream.getvalue()


def test_redact_rules_on_one_string() -> None:
    secret = "whsec_ab+/cd=="
    assert redact(f"x {secret} y", [secret]) == "x ******** y"
    assert redact("url ?s=whsec_ab%2B%2Fcd%3D%3D", [secret]) == "url ?s=********"
    assert redact("short abc stays", ["abc"]) == "short abc stays"
    assert redact("key sk_live_1234567 and sk_live_12", ["sk_live_1234567", "sk_live_12"]) == (
        "key ******** and ********"
    )
    assert redact("nothing to hide", []) == "nothing to hide"


def test_redact_escaped_repr_of_a_secret() -> None:
    secret = 'sk_"quoted\\back'
    assert redact(repr({"k": secret}), [secret]) == "{'k': '********'}"


@pytest.fixture
def json_output() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("DEBUG", [KEY, TOKEN], stream=stream, form="json")
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, str]]:
    """Each line one JSON object, and nothing else."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_is_one_object_a_line_with_time_level_logger_and_message(
    json_output: io.StringIO,
) -> None:
    log.info("hello %s", "world")
    log.warning("two\nlines")
    first, second = json_lines(json_output)
    assert first.keys() == {"time", "level", "logger", "message"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "paybot.test",
        "hello world",
    )
    assert second["message"] == "two\nlines"


def test_json_carries_order_link_chat_and_event_where_given(json_output: io.StringIO) -> None:
    chat = ChatRef("telegram", "1001")
    context = {"order_id": "1001", "link_id": "lnk_1", "chat": chat, "event_id": "evt_1"}
    log.info("confirmed", extra=context)
    log.info("no context")
    given, plain = json_lines(json_output)
    assert given["order_id"] == "1001" and given["link_id"] == "lnk_1"
    assert given["chat"] == "telegram:1001" and given["event_id"] == "evt_1"
    assert "order_id" not in plain and "chat" not in plain


def test_json_is_redacted_in_message_context_and_traceback(json_output: io.StringIO) -> None:
    log.info("key %s", KEY, extra={"order_id": f"x{TOKEN}"})
    try:
        raise RuntimeError(f'refused "{KEY}"')
    except RuntimeError:
        log.exception("failed with bearer abc.def-credential")
    text = json_output.getvalue()
    assert KEY not in text and TOKEN not in text and "abc.def-credential" not in text
    first, second = json_lines(json_output)
    assert first["message"] == "key ********" and first["order_id"] == "x********"
    assert 'RuntimeError: refused "********"' in second["exception"]


async def test_a_confirmation_logs_json_lines_naming_its_order_link_and_event(
    world: World,
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", world.settings.secrets(), stream=stream, form="json")
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    link = await world.link_for("1001")
    body = event("payment.succeeded", token=link.token)
    assert (await world.post_event(body)).status_code == 200
    await world.wait_message("Confirmed")

    lines = json_lines(stream)
    confirmed = [line for line in lines if "Confirmed by webhook" in line["message"]]
    assert len(confirmed) == 1
    assert confirmed[0]["order_id"] == "1001"
    assert confirmed[0]["link_id"] == link.id
    assert confirmed[0]["event_id"] == body["id"]
    assert not any(secret in stream.getvalue() for secret in world.settings.secrets())


async def test_lines_said_while_handling_a_command_name_its_chat(world: World) -> None:
    """The refusal's log line gives no `extra`: the inbox names the chat it is handling."""
    stream = io.StringIO()
    configure_logging("INFO", world.settings.secrets(), stream=stream, form="json")
    world.fake.send_text("/invoice 1001", user_id=4242)
    await world.wait_message("not authorized", chat_id=4242)

    refused = [line for line in json_lines(stream) if "not a merchant" in line["message"]]
    assert len(refused) == 1
    assert refused[0]["chat"] == "telegram:4242"
    assert "order_id" not in refused[0] and "event_id" not in refused[0]


def test_a_running_context_is_named_and_a_calls_own_extra_wins(json_output: io.StringIO) -> None:
    with log_context(chat="telegram:1", order_id="1001"):
        log.info("inside")
        log.info("own", extra={"order_id": "1002"})
    log.info("outside")
    inside, own, outside = json_lines(json_output)
    assert (inside["chat"], inside["order_id"]) == ("telegram:1", "1001")
    assert (own["chat"], own["order_id"]) == ("telegram:1", "1002")
    assert "chat" not in outside and "order_id" not in outside
