"""French (`/lang`, PAYBOT_LANGUAGE) and local times (PAYBOT_TIMEZONE), through real PTB,
the fake Twilio and the sandbox, on each store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime

from bot.models import ChatRef
from tests.flow_events import event
from tests.harness import MERCHANT, WA_MERCHANT, World, running_world

CUSTOMER = 7777  # a Telegram user who is no merchant
FRENCH_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.")
FRENCH_MONTHS += ("nov.", "déc.")


def moment(at: object, zone: str, locale: str) -> str:
    """How a chat in `locale` and `zone` writes a time (the expected text, by Babel)."""
    return format_datetime(at, "d MMM y, HH:mm", tzinfo=ZoneInfo(zone), locale=locale)


async def in_french(world: World, user_id: int = MERCHANT) -> None:
    world.say("/lang fr", user_id=user_id)
    await world.wait_message("je parle français", chat_id=user_id)


async def test_lang_fr_then_invoice_speaks_french_from_caption_to_confirmed(world: World) -> None:
    await in_french(world)
    world.say("/invoice 1001")
    invoice = await world.wait_message("Commande 1001")
    link = await world.link_for("1001")

    caption = invoice.caption or ""
    for words in ("Total : 75,00 GH₵", "2 × Jollof rice : ", f"Payer ici : {link.url}"):
        assert words in caption, words
    assert f"Le lien expire dans 1 jour ({moment(link.expires_at, 'UTC', 'fr')} UTC)" in caption
    assert any(month in caption for month in FRENCH_MONTHS)
    assert "\nStatut : En attente\n" in caption
    assert "Pour le client sur Telegram : https://t.me/" in caption
    buttons = invoice.reply_markup["inline_keyboard"][0]  # type: ignore[index]
    assert [b["text"] for b in buttons] == ["Ouvrir la page de paiement", "Actualiser le statut"]

    world.sandbox.set_status(link.token, "processing")
    await world.wait_message("Commande 1001 (Kofi's Kitchen) : En cours - ")
    await world.post_event(event("payment.succeeded", token=link.token))
    confirmed = await world.wait_message("Confirmé")
    await world.wait_idle()

    assert "75,00 GH₵ reçus" in (confirmed.text or "")
    assert invoice.edits and invoice.edits[-1].endswith("Statut : Confirmé")
    assert not any("Order" in text or "Status" in text for text in world.texts())


async def test_the_language_is_the_chats_and_survives_a_restart(world: World) -> None:
    await in_french(world)
    await world.restart()  # a new paybot on the same database
    world.say("/status 1001")
    answer = await world.wait_message("paybot n'a créé aucun lien de paiement pour la commande")
    assert "Tapez /invoice 1001" in (answer.text or "")


async def test_a_customer_hears_english_while_the_merchant_speaks_french(world: World) -> None:
    await in_french(world)
    world.say("/invoice 1001")
    invoice = await world.wait_message("Pour le client sur Telegram")
    code = (invoice.caption or "").rsplit("?start=", 1)[1]
    link = await world.link_for("1001")

    world.say(f"/start {code}", user_id=CUSTOMER)
    copy = await world.wait_message("Order 1001", chat_id=CUSTOMER)
    await world.wait_message("Commande 1001 : le client a ouvert le lien de paiement sur Telegram.")
    assert "Total: GH₵75.00" in (copy.caption or "") and "Status: Pending" in (copy.caption or "")

    world.sandbox.set_status(link.token, "processing")
    await world.wait_message("for order 1001: Processing", chat_id=CUSTOMER)
    await world.wait_message(": En cours - ")
    await world.wait_idle()
    assert not any("En cours" in text for text in world.texts(CUSTOMER))


async def test_a_customer_may_choose_french_for_their_own_chat(world: World) -> None:
    world.say("/invoice 1001")
    invoice = await world.wait_message("For the customer on Telegram")
    world.say(f"/start {(invoice.caption or '').rsplit('?start=', 1)[1]}", user_id=CUSTOMER)
    await world.wait_message("Order 1001", chat_id=CUSTOMER)
    await in_french(world, CUSTOMER)  # no merchant, and still their own chat's choice
    world.say("/status", user_id=CUSTOMER)
    answer = await world.wait_message("Vos paiements :", chat_id=CUSTOMER)
    assert "• Commande 1001 de Kofi's Kitchen : 75,00 GH₵, En attente" in (answer.text or "")
    world.say("/open")
    await world.wait_message("Open payment links:")  # the merchant's chat is unchanged


@pytest.mark.parametrize("typed", ["/lang de", "/lang", "/lang fr en"])
async def test_a_bad_language_gets_one_answer_naming_the_languages(
    world: World, typed: str
) -> None:
    world.say(typed)
    answer = await world.wait_message("/lang en")
    await world.wait_idle()
    assert "/lang fr" in (answer.text or "")
    assert len(world.texts()) == 1
    world.say("/lang EN")  # any case
    await world.wait_message("From now on I speak English in this chat.")


@pytest.fixture
async def french_by_default(tmp_path: Path, database: str) -> AsyncIterator[World]:
    env = {"PAYBOT_LANGUAGE": "fr", "PAYBOT_TIMEZONE": "Africa/Lagos"}
    async with running_world(tmp_path, env=env, database=database) as world:
        yield world


async def test_paybot_language_fr_is_every_chats_default_until_it_picks_its_own(
    french_by_default: World,
) -> None:
    world = french_by_default
    world.say("/invoice 1001")
    invoice = await world.wait_message("Commande 1001")
    link = await world.link_for("1001")
    assert f"({moment(link.expires_at, 'Africa/Lagos', 'fr')} Africa/Lagos)" in (
        invoice.caption or ""
    )
    world.say("/lang en")
    await world.wait_message("From now on I speak English in this chat.")
    world.say("/open")
    answer = await world.wait_message("Open payment links:")
    assert "GH₵75.00, Pending, expires in 1 day" in (answer.text or "")


async def test_paybot_timezone_shows_the_expiry_in_local_time(
    tmp_path: Path, database: str
) -> None:
    env = {"PAYBOT_TIMEZONE": "Africa/Lagos"}
    async with running_world(tmp_path, env=env, database=database) as world:
        world.say("/invoice 1001")
        invoice = await world.wait_message("Order 1001")
        link = await world.link_for("1001")
        local = moment(link.expires_at, "Africa/Lagos", "en")
        assert local != moment(link.expires_at, "UTC", "en")  # Lagos is UTC+1 all year
        assert f"Link expires in 1 day ({local} Africa/Lagos)" in (invoice.caption or "")


@pytest.fixture
async def wa(tmp_path: Path, database: str) -> AsyncIterator[World]:
    async with running_world(tmp_path, whatsapp=True, database=database) as world:
        yield world


async def test_lang_fr_on_whatsapp_without_the_slash(wa: World) -> None:
    await wa.whatsapp(WA_MERCHANT, "lang fr")
    await wa.wa_message(WA_MERCHANT, "je parle français")
    await wa.whatsapp(WA_MERCHANT, "invoice 1001")
    invoice = await wa.wa_message(WA_MERCHANT, "Commande 1001")
    assert "Total : 75,00 GH₵" in (invoice.body or "") and "Statut : En attente" in (
        invoice.body or ""
    )


async def test_a_group_that_became_a_supergroup_keeps_its_language(world: World) -> None:
    group, supergroup = -4001, -1004001
    world.fake.send_text("/lang fr", user_id=MERCHANT, chat_id=group)
    await world.wait_message("je parle français", chat_id=group)
    world.fake.send_text("/invoice 1001", user_id=MERCHANT, chat_id=group)
    await world.wait_message("Payer ici", chat_id=group)
    await world.wait_idle()
    link = await world.link_for("1001")
    world.fake.migrate(group, supergroup)

    world.sandbox.set_status(link.token, "processing")
    await world.wait_message(": En cours - ", chat_id=supergroup, timeout=10)
    async with world.paybot.store.transaction() as tx:
        assert await tx.chat_settings.language_of(ChatRef("telegram", str(supergroup))) == "fr"
    world.fake.send_text("/open", user_id=MERCHANT, chat_id=supergroup)
    await world.wait_message("Liens de paiement ouverts :", chat_id=supergroup)
