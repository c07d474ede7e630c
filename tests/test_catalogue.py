"""The French catalogue says everything the code says: a sentence added anywhere without
its translation fails here (run `python -m paybot.catalogue` to list and add them)."""

from __future__ import annotations

import re

import pytest
from babel.messages.catalog import Catalog, Message

from bot.i18n import ENGLISH, LANGUAGES, _translations
from paybot.catalogue import extracted, read

TRANSLATED = [language for language in LANGUAGES if language != ENGLISH]
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")


def forms(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ("",)
    return value if isinstance(value, tuple) else (value,)


def said() -> list[Message]:
    return [message for message in extracted() if message.id]


def test_the_code_says_what_the_catalogue_expects() -> None:
    ids = {m.id for m in said()}
    assert "Confirmed" in ids and "Awaiting authorization" in ids  # the extractor finds them
    assert ("… and {count} more items", "… and {count} more items") in ids  # tn: both forms
    assert all(isinstance(m.id, str | tuple) and m.locations for m in said())


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_sentence_has_a_translation_and_none_is_fuzzy(language: str) -> None:
    catalog = read(language)
    missing = [
        m.id
        for m in said()
        if (known := catalog.get(m.id)) is None or known.fuzzy or not all(forms(known.string))
    ]
    assert missing == [], f"untranslated in {language}: run python -m paybot.catalogue"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_placeholder_of_the_english_is_in_the_translation(language: str) -> None:
    catalog: Catalog = read(language)
    wrong = []
    for message in catalog:
        if not message.id:
            continue
        wanted = {name for text in forms(message.id) for name in PLACEHOLDER.findall(text)}
        for text in forms(message.string):
            if {name for name in PLACEHOLDER.findall(text)} != wanted:
                wrong.append((message.id, text))
    assert wrong == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_catalogue_compiles_and_is_what_a_chat_gets(language: str) -> None:
    translations = _translations(language)
    for message in said():
        if isinstance(message.id, str):
            assert translations.gettext(message.id) == read(language)[message.id].string
    assert translations.ngettext("… and {count} more items", "… and {count} more items", 1) != (
        translations.ngettext("… and {count} more items", "… and {count} more items", 2)
    )


def test_the_status_words_of_the_contract() -> None:
    french = _translations("fr")
    contract = {
        "Processing": "En cours",
        "Awaiting authorization": "En attente d'autorisation",
        "Paid": "Payé",
        "Failed": "Échoué",
        "Expired": "Expiré",
        "Cancelled": "Annulé",
        "Already paid": "Déjà payé",
        "Confirmed": "Confirmé",
    }
    assert {english: french.gettext(english) for english in contract} == contract
