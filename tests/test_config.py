"""Settings.from_env: defaults, every malformed form, .env handling, secrets kept out of sight."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Secret, Settings
from bot.errors import ConfigError

SECRET_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes of base64
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "9f3c1e5d7b2a4c6e8f0a1b3c5d7e9f11"
TWILIO_FROM = "whatsapp:+14155238886"
INVOICE_TEMPLATE = "HX" + "a1b2c3d4e5f60718" * 2
STATUS_TEMPLATE = "HX" + "0F1E2D3C4B5A6978" * 2

CIMPLIFY = {
    "CIMPLIFY_API_BASE": "https://api.cimplify.example/",
    "CIMPLIFY_SECRET_KEY": SECRET_KEY,
    "CIMPLIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
}
TELEGRAM_SECRET = "tg_Webhook-Secret_0123456789"
TELEGRAM_WEBHOOK = {"TELEGRAM_MODE": "webhook", "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET}
TWILIO = {
    "TWILIO_ACCOUNT_SID": TWILIO_SID,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "TWILIO_WHATSAPP_FROM": TWILIO_FROM,
}


@pytest.fixture
def no_dotenv(tmp_path: Path) -> str:
    return str(tmp_path / "absent.env")


def load(env: dict[str, str], dotenv_path: str) -> Settings:
    return Settings.from_env(env, dotenv_path=dotenv_path)


def test_defaults_when_nothing_is_set(no_dotenv: str) -> None:
    settings = load({}, no_dotenv)

    assert settings.cimplify_api_base is None
    assert settings.embedded_sandbox
    assert settings.cimplify_secret_key is None
    assert settings.cimplify_webhook_secret is None
    assert settings.database == "paybot.db"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.telegram_bot_token is None
    assert settings.telegram_api_base == "https://api.telegram.org"
    assert settings.telegram_merchants == frozenset()
    assert (settings.twilio_account_sid, settings.twilio_auth_token) == (None, None)
    assert settings.twilio_whatsapp_from is None
    assert settings.twilio_api_base == "https://api.twilio.com"
    assert settings.whatsapp_merchants == frozenset()
    assert not settings.whatsapp_enabled
    assert settings.whatsapp_default_region is None
    assert settings.twilio_invoice_content_sid is None
    assert settings.twilio_status_content_sid is None
    assert settings.poll_rate == 5
    assert settings.send_rate == 30
    assert settings.log_level == "INFO"
    assert settings.log_format == "text"
    assert settings.secrets() == []


def test_every_setting_given(no_dotenv: str) -> None:
    env = {
        **CIMPLIFY,
        **TWILIO,
        "PAYBOT_DATABASE": "/var/lib/paybot/paybot.db",
        "PAYBOT_HTTP_HOST": "10.0.0.5",
        "PAYBOT_HTTP_PORT": "9000",
        "PAYBOT_PUBLIC_URL": "https://pay.example.com/bot/",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE": "http://127.0.0.1:5555/",
        "TELEGRAM_MERCHANTS": "42",
        "TWILIO_API_BASE": "http://127.0.0.1:6666",
        "WHATSAPP_MERCHANTS": "+233241234567",
        "WHATSAPP_DEFAULT_REGION": "gh",
        "TWILIO_INVOICE_CONTENT_SID": INVOICE_TEMPLATE,
        "TWILIO_STATUS_CONTENT_SID": STATUS_TEMPLATE,
        "PAYBOT_POLL_RATE": "2.5",
        "PAYBOT_SEND_RATE": "1000",
        "PAYBOT_LOG_LEVEL": "debug",
        "PAYBOT_LOG_FORMAT": "JSON",
    }
    settings = load(env, no_dotenv)

    assert settings.cimplify_api_base == "https://api.cimplify.example"
    assert not settings.embedded_sandbox
    assert settings.cimplify_secret_key == Secret(SECRET_KEY)
    assert settings.cimplify_webhook_secret == Secret(WEBHOOK_SECRET)
    assert settings.database == "/var/lib/paybot/paybot.db"
    assert (settings.http_host, settings.http_port) == ("10.0.0.5", 9000)
    assert settings.public_url == "https://pay.example.com/bot"
    assert settings.telegram_bot_token == Secret(BOT_TOKEN)
    assert settings.telegram_api_base == "http://127.0.0.1:5555"
    assert settings.telegram_merchants == frozenset({42})
    assert settings.twilio_account_sid == TWILIO_SID
    assert settings.twilio_auth_token == Secret(TWILIO_TOKEN)
    assert settings.twilio_whatsapp_from == TWILIO_FROM
    assert settings.twilio_api_base == "http://127.0.0.1:6666"
    assert settings.whatsapp_merchants == frozenset({"+233241234567"})
    assert settings.whatsapp_enabled
    assert settings.whatsapp_default_region == "GH"
    assert settings.twilio_invoice_content_sid == INVOICE_TEMPLATE
    assert settings.twilio_status_content_sid == STATUS_TEMPLATE
    assert settings.poll_rate == 2.5
    assert settings.send_rate == 1000
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"
    assert sorted(settings.secrets()) == sorted(
        [SECRET_KEY, WEBHOOK_SECRET, BOT_TOKEN, TWILIO_TOKEN]
    )


def test_public_url_follows_host_and_port(no_dotenv: str) -> None:
    settings = load({"PAYBOT_HTTP_HOST": "localhost", "PAYBOT_HTTP_PORT": "0"}, no_dotenv)
    assert (settings.http_port, settings.public_url) == (0, "http://localhost:0")


def test_ipv6_host_is_bracketed_in_the_public_url(no_dotenv: str) -> None:
    settings = load({"PAYBOT_HTTP_HOST": "::1"}, no_dotenv)
    assert settings.http_host == "::1"
    assert settings.public_url == "http://[::1]:8080"


MALFORMED_PLAIN = [
    ("CIMPLIFY_API_BASE", "ftp://api.example"),
    ("CIMPLIFY_API_BASE", "api.cimplify.example"),
    ("CIMPLIFY_API_BASE", "https://"),
    ("CIMPLIFY_API_BASE", "https://api.example/v1?x=1"),
    ("CIMPLIFY_API_BASE", "https://api.example/#top"),
    ("CIMPLIFY_API_BASE", "https://api.example:99999"),
    ("PAYBOT_DATABASE", "mysql://db/paybot"),
    ("PAYBOT_DATABASE", "postgres://db"),
    ("PAYBOT_DATABASE", "postgresql:///paybot"),
    ("PAYBOT_DATABASE", "postgresql://db:notaport/paybot"),
    ("PAYBOT_DATABASE", "postgresql://db/pay bot"),
    ("PAYBOT_HTTP_HOST", "not a host"),
    ("PAYBOT_HTTP_HOST", "http://127.0.0.1"),
    ("PAYBOT_HTTP_HOST", "-bad-.example"),
    ("PAYBOT_HTTP_PORT", "http"),
    ("PAYBOT_HTTP_PORT", "-1"),
    ("PAYBOT_HTTP_PORT", "65536"),
    ("PAYBOT_HTTP_PORT", "٨٠"),  # Arabic-Indic digits: int() takes them, we do not
    ("PAYBOT_PUBLIC_URL", "pay.example.com"),
    ("PAYBOT_PUBLIC_URL", "https://pay.example.com/?a=b"),
    ("TELEGRAM_API_BASE", "file:///etc/passwd"),
    ("TELEGRAM_MERCHANTS", "12, abc"),
    ("TELEGRAM_MERCHANTS", "12;13"),
    ("TELEGRAM_MERCHANTS", "0"),
    ("TWILIO_API_BASE", "twilio"),
    ("WHATSAPP_MERCHANTS", "0241234567"),
    ("WHATSAPP_MERCHANTS", "+233241234567, +0123456789"),
    ("WHATSAPP_MERCHANTS", "+1234"),
    ("WHATSAPP_DEFAULT_REGION", "XX"),
    ("WHATSAPP_DEFAULT_REGION", "Ghana"),
    ("WHATSAPP_DEFAULT_REGION", "001"),  # a non-geographic "region": no numbers to read in it
    ("WHATSAPP_DEFAULT_REGION", "+233"),
    ("TWILIO_INVOICE_CONTENT_SID", "HX123"),
    ("TWILIO_INVOICE_CONTENT_SID", "MG" + "0" * 32),
    ("TWILIO_STATUS_CONTENT_SID", "hx" + "0" * 32),
    ("TWILIO_STATUS_CONTENT_SID", "HX" + "g" * 32),
    ("TWILIO_STATUS_CONTENT_SID", "HX" + "0" * 33),
    ("PAYBOT_POLL_RATE", "0"),
    ("PAYBOT_POLL_RATE", "101"),
    ("PAYBOT_POLL_RATE", "nan"),
    ("PAYBOT_POLL_RATE", "inf"),
    ("PAYBOT_POLL_RATE", "-1"),
    ("PAYBOT_POLL_RATE", "fast"),
    ("PAYBOT_SEND_RATE", "0"),
    ("PAYBOT_SEND_RATE", "1001"),
    ("PAYBOT_SEND_RATE", "many"),
    ("PAYBOT_LOG_LEVEL", "TRACE"),
    ("PAYBOT_LOG_LEVEL", "CRITICAL"),
    ("PAYBOT_LOG_FORMAT", "xml"),
    ("PAYBOT_LOG_FORMAT", "jsonl"),
    ("TELEGRAM_MODE", "webhooks"),
    ("TELEGRAM_MODE", "long-polling"),
]


@pytest.mark.parametrize(("name", "value"), MALFORMED_PLAIN)
def test_a_malformed_setting_is_named(name: str, value: str, no_dotenv: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load({name: value}, no_dotenv)
    assert raised.value.setting == name
    assert str(raised.value).startswith(f"{name}: ")
    assert "expected" in raised.value.problem or "give a SQLite file path" in raised.value.problem


def test_a_bad_url_is_quoted_back(no_dotenv: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("'api.cimplify.example'")):
        load({"CIMPLIFY_API_BASE": "api.cimplify.example"}, no_dotenv)


def test_a_url_with_credentials_is_refused_without_quoting_them(no_dotenv: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load({"TELEGRAM_API_BASE": "https://user:hunter2secret@proxy.example"}, no_dotenv)
    assert raised.value.setting == "TELEGRAM_API_BASE"
    assert "hunter2secret" not in str(raised.value)


@pytest.mark.parametrize(
    "url", ["postgresql://paybot:pgpassword1@db:5432/paybot", "postgres://paybot@db/paybot"]
)
def test_a_postgresql_url_is_taken_as_it_is(no_dotenv: str, url: str) -> None:
    assert load({"PAYBOT_DATABASE": url}, no_dotenv).database == url


def test_a_malformed_postgresql_url_is_refused_without_quoting_it(no_dotenv: str) -> None:
    url = "postgresql://paybot:pgpassword1@db:port/paybot"
    with pytest.raises(ConfigError) as raised:
        load({"PAYBOT_DATABASE": url}, no_dotenv)
    assert raised.value.setting == "PAYBOT_DATABASE"
    assert "pgpassword1" not in str(raised.value)


SECRET_NAMES = {
    "CIMPLIFY_SECRET_KEY",
    "CIMPLIFY_WEBHOOK_SECRET",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "TWILIO_AUTH_TOKEN",
}
# Secrets, and the settings that travel with them; only the secrets' values are never quoted.
MALFORMED_SECRETS = [
    ("CIMPLIFY_SECRET_KEY", "sk test with spaces", CIMPLIFY),
    ("CIMPLIFY_SECRET_KEY", "sk_ünïcode_key", CIMPLIFY),
    ("CIMPLIFY_SECRET_KEY", "sk_1234", CIMPLIFY),
    ("CIMPLIFY_WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", CIMPLIFY),
    ("CIMPLIFY_WEBHOOK_SECRET", "whsec_not*base64*at*all!!", CIMPLIFY),
    ("CIMPLIFY_WEBHOOK_SECRET", "whsec_c2hvcnRrZXk=", CIMPLIFY),  # "shortkey": 8 bytes
    ("CIMPLIFY_WEBHOOK_SECRET", "whsec_AAAA", CIMPLIFY),  # 3 bytes
    ("TELEGRAM_BOT_TOKEN", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", {}),
    ("TELEGRAM_BOT_TOKEN", "123456789:short", {}),
    ("TELEGRAM_BOT_TOKEN", "123456789:AAHdqTcvCH1vGWJx/SeofSAs0K5PALDsaw", {}),
    ("TELEGRAM_WEBHOOK_SECRET", "tg secret with spaces", TELEGRAM_WEBHOOK),
    ("TELEGRAM_WEBHOOK_SECRET", "tg.secret.with.dots", TELEGRAM_WEBHOOK),
    ("TELEGRAM_WEBHOOK_SECRET", "tg_sécret", TELEGRAM_WEBHOOK),
    ("TELEGRAM_WEBHOOK_SECRET", "s" * 257, TELEGRAM_WEBHOOK),
    ("TELEGRAM_WEBHOOK_SECRET", "tg/secret+slash=", {}),  # checked in polling mode too
    ("TWILIO_AUTH_TOKEN", "tw token", TWILIO),
    ("TWILIO_ACCOUNT_SID", "AC123", TWILIO),
    ("TWILIO_WHATSAPP_FROM", "+14155238886", TWILIO),
    ("TWILIO_WHATSAPP_FROM", "whatsapp:14155238886", TWILIO),
]


@pytest.mark.parametrize(("name", "value", "others"), MALFORMED_SECRETS)
def test_a_malformed_secret_is_named_but_never_shown(
    name: str, value: str, others: dict[str, str], no_dotenv: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load({**others, name: value}, no_dotenv)
    assert raised.value.setting == name
    if name in SECRET_NAMES:
        assert value not in str(raised.value)


@pytest.mark.parametrize("missing", ["CIMPLIFY_SECRET_KEY", "CIMPLIFY_WEBHOOK_SECRET"])
def test_a_real_cimplify_needs_key_and_webhook_secret(missing: str, no_dotenv: str) -> None:
    env = {name: value for name, value in CIMPLIFY.items() if name != missing}
    with pytest.raises(ConfigError) as raised:
        load(env, no_dotenv)
    assert raised.value.setting == missing
    assert "CIMPLIFY_API_BASE" in raised.value.problem
    assert all(secret not in str(raised.value) for secret in (SECRET_KEY, WEBHOOK_SECRET))


def test_the_embedded_sandbox_needs_no_keys(no_dotenv: str) -> None:
    settings = load({"CIMPLIFY_SECRET_KEY": SECRET_KEY}, no_dotenv)
    assert settings.embedded_sandbox
    assert settings.cimplify_secret_key == Secret(SECRET_KEY)


@pytest.mark.parametrize("missing", list(TWILIO))
def test_whatsapp_needs_all_three_twilio_settings(missing: str, no_dotenv: str) -> None:
    env = {name: value for name, value in TWILIO.items() if name != missing}
    with pytest.raises(ConfigError) as raised:
        load(env, no_dotenv)
    assert raised.value.setting == missing
    assert TWILIO_TOKEN not in str(raised.value)


def test_the_first_bad_setting_is_the_one_reported(no_dotenv: str) -> None:
    env = {"PAYBOT_HTTP_PORT": "eighty", "PAYBOT_LOG_LEVEL": "LOUD", "PAYBOT_DATABASE": "x://y"}
    with pytest.raises(ConfigError) as raised:
        load(env, no_dotenv)
    assert raised.value.setting == "PAYBOT_DATABASE"


def test_merchant_lists_allow_spaces_and_empty_entries(no_dotenv: str) -> None:
    env = {
        "TELEGRAM_MERCHANTS": " 111, 222 ,,333,",
        "WHATSAPP_MERCHANTS": "+233241234567 , ,+14155550100",
    }
    settings = load(env, no_dotenv)
    assert settings.telegram_merchants == frozenset({111, 222, 333})
    assert settings.whatsapp_merchants == frozenset({"+233241234567", "+14155550100"})


def test_dotenv_file_is_read_and_environ_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "PAYBOT_HTTP_PORT=9100\n"
        "PAYBOT_LOG_LEVEL=DEBUG\n"
        "TELEGRAM_MERCHANTS=\n"
        "CIMPLIFY_SECRET_KEY=sk_${HOME}_literal\n"
    )
    settings = Settings.from_env({"PAYBOT_HTTP_PORT": "9200"}, dotenv_path=str(dotenv))
    assert settings.http_port == 9200
    assert settings.log_level == "DEBUG"
    assert settings.telegram_merchants == frozenset()
    # No interpolation: a "$" in a secret stays as written.
    assert settings.cimplify_secret_key == Secret("sk_${HOME}_literal")


def test_a_blank_variable_in_environ_unsets_the_dotenv_value(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PAYBOT_HTTP_PORT=9100\n")
    settings = Settings.from_env({"PAYBOT_HTTP_PORT": ""}, dotenv_path=str(dotenv))
    assert settings.http_port == 8080


def test_a_bad_value_in_the_dotenv_file_is_named(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PAYBOT_POLL_RATE=lots\n")
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({}, dotenv_path=str(dotenv))
    assert raised.value.setting == "PAYBOT_POLL_RATE"


def test_default_dotenv_is_in_the_working_folder_and_none_skips_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("PAYBOT_HTTP_PORT=9300\n")
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({}).http_port == 9300
    assert Settings.from_env({}, dotenv_path=None).http_port == 8080


def test_secret_never_shows_its_value() -> None:
    secret = Secret(SECRET_KEY)
    assert repr(secret) == "Secret('********')"
    assert str(secret) == "Secret('********')"
    assert f"{secret}" == "Secret('********')"
    assert secret.reveal() == SECRET_KEY
    assert secret == Secret(SECRET_KEY)
    assert secret != Secret(SECRET_KEY + "x")
    assert secret != SECRET_KEY
    assert len({secret, Secret(SECRET_KEY)}) == 1


def test_settings_repr_hides_every_secret(no_dotenv: str) -> None:
    env = {**CIMPLIFY, **TWILIO, "TELEGRAM_BOT_TOKEN": BOT_TOKEN}
    shown = repr(load(env, no_dotenv))
    assert "Secret('********')" in shown
    assert all(secret not in shown for secret in (SECRET_KEY, WEBHOOK_SECRET, TWILIO_TOKEN))
    assert BOT_TOKEN not in shown


def test_with_overrides_changes_only_what_is_asked(no_dotenv: str) -> None:
    settings = load({"PAYBOT_HTTP_PORT": "9000"}, no_dotenv)
    changed = settings.with_overrides(http_port=0)
    assert (changed.http_port, settings.http_port) == (0, 9000)
    assert changed.with_overrides(http_port=9000) == settings
    assert hash(changed.with_overrides(http_port=9000)) == hash(settings)


def test_whatsapp_is_enabled_by_the_three_twilio_settings_alone(no_dotenv: str) -> None:
    templates_only = {
        "TWILIO_INVOICE_CONTENT_SID": INVOICE_TEMPLATE,
        "TWILIO_STATUS_CONTENT_SID": STATUS_TEMPLATE,
        "WHATSAPP_DEFAULT_REGION": "NG",
    }
    assert not load(templates_only, no_dotenv).whatsapp_enabled
    settings = load(TWILIO, no_dotenv)
    assert settings.whatsapp_enabled
    assert settings.twilio_invoice_content_sid is None  # templates are optional


def test_a_bad_template_sid_is_quoted_back(no_dotenv: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load({"TWILIO_INVOICE_CONTENT_SID": "HXnot-a-sid"}, no_dotenv)
    assert raised.value.problem == "expected HX and 32 hex digits, got 'HXnot-a-sid'"


def test_telegram_polls_unless_webhook_mode_is_asked(no_dotenv: str) -> None:
    polling = load({"TELEGRAM_BOT_TOKEN": BOT_TOKEN}, no_dotenv)
    assert (polling.telegram_mode, polling.telegram_webhook_secret) == ("polling", None)

    settings = load({**TELEGRAM_WEBHOOK, "TELEGRAM_MODE": "Webhook"}, no_dotenv)

    assert settings.telegram_mode == "webhook"
    assert settings.telegram_webhook_secret == Secret(TELEGRAM_SECRET)
    assert settings.secrets() == [TELEGRAM_SECRET]  # so that logs redact it
    assert TELEGRAM_SECRET not in repr(settings)


def test_webhook_mode_needs_its_secret(no_dotenv: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load({"TELEGRAM_MODE": "webhook", "TELEGRAM_BOT_TOKEN": BOT_TOKEN}, no_dotenv)
    assert raised.value.setting == "TELEGRAM_WEBHOOK_SECRET"
    assert "TELEGRAM_MODE=webhook" in raised.value.problem


@pytest.mark.parametrize("webhook_secret", ["x", "A-z_9" * 51 + "Q"])  # 1 and 256 characters
def test_a_webhook_secret_may_be_one_to_256_characters(webhook_secret: str, no_dotenv: str) -> None:
    settings = load({**TELEGRAM_WEBHOOK, "TELEGRAM_WEBHOOK_SECRET": webhook_secret}, no_dotenv)
    assert settings.telegram_webhook_secret == Secret(webhook_secret)


def test_merchant_roles_by_suffix_and_no_suffix_is_an_owner(no_dotenv: str) -> None:
    env = {
        "TELEGRAM_MERCHANTS": "111, 222:cashier, 333:owner, 444:Cashier",
        "WHATSAPP_MERCHANTS": "+233241234567:cashier, +14155550100",
    }
    settings = load(env, no_dotenv)

    assert settings.telegram_merchants == frozenset({111, 222, 333, 444})
    assert settings.telegram_cashiers == frozenset({222, 444})
    assert settings.whatsapp_merchants == frozenset({"+233241234567", "+14155550100"})
    assert settings.whatsapp_cashiers == frozenset({"+233241234567"})


def test_merchants_without_suffixes_are_all_owners(no_dotenv: str) -> None:
    env = {"TELEGRAM_MERCHANTS": "111,222", "WHATSAPP_MERCHANTS": "+14155550100"}
    settings = load(env, no_dotenv)
    assert settings.telegram_cashiers == frozenset()
    assert settings.whatsapp_cashiers == frozenset()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_MERCHANTS", "111, 222:manager"),
        ("TELEGRAM_MERCHANTS", "111:"),
        ("TELEGRAM_MERCHANTS", "111:cashier:owner"),
        ("TELEGRAM_MERCHANTS", "111:owner, 111:cashier"),
        ("TELEGRAM_MERCHANTS", "abc:cashier"),
        ("WHATSAPP_MERCHANTS", "+233241234567:boss"),
        ("WHATSAPP_MERCHANTS", "0241234567:cashier"),
    ],
)
def test_a_bad_role_suffix_stops_the_start_naming_the_setting(
    no_dotenv: str, name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load({name: value}, no_dotenv)
    assert raised.value.setting == name
    assert str(raised.value).startswith(f"{name}: ")
