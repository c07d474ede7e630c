"""The French catalogue kept in step with the code: `python -m paybot.catalogue`.

Reads every sentence the code says to a chat (`voice.t(...)`, `voice.tn(...)`,
`N_(...)` with literal English text) with Babel's extractor, adds the new ones to
bot/locale/<language>/LC_MESSAGES/paybot.po with an empty translation, marks the
ones the code no longer says obsolete, and lists what still needs a translator.
Exit status 1 while anything is untranslated or fuzzy; tests/test_catalogue.py
fails in the same case.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, ENGLISH, LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
# Where chat sentences live: the core, the channels, the console demo.
SOURCES = ("bot", "handlers", "paybot")
KEYWORDS = {"t": None, "tn": (1, 2), "N_": None}


def extracted() -> Catalog:
    """Every message id the code says, with where it is said."""
    catalog = Catalog(domain=DOMAIN)
    for folder in SOURCES:
        found = extract_from_dir(ROOT / folder, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",))
        for filename, line, message, comments, context in found:
            where = [(f"{folder}/{filename}", line)]
            catalog.add(message, locations=where, auto_comments=comments, context=context)
    return catalog


def po_path(language: str) -> Path:
    return ROOT / "bot" / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(language: str) -> Catalog:
    with po_path(language).open("rb") as po:
        return read_po(po, locale=language, domain=DOMAIN)


def needs_translation(message: Message) -> bool:
    """Untranslated (any form empty) or fuzzy: what a translator must still do."""
    forms = message.string if isinstance(message.string, tuple) else (message.string,)
    return message.fuzzy or not all(forms)


def untranslated(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id and needs_translation(m)]


def update(language: str) -> list[Message]:
    """Add what the code says and the catalogue lacks (untranslated); the messages still
    to translate. Nothing is removed: a translation waiting for a branch not merged yet
    (CONTRACT §5's `Cancelled`) stays, and an unused one costs nothing."""
    catalog = read(language)
    for message in extracted():
        known = catalog.get(message.id)
        if known is None:
            empty = ("",) * catalog.num_plurals if isinstance(message.id, tuple) else ""
            catalog.add(message.id, empty, locations=message.locations)
        else:
            known.locations = message.locations
    with po_path(language).open("wb") as po:
        write_po(po, catalog, width=100, sort_output=True)
    return untranslated(catalog)


def main() -> int:
    missing = 0
    for language in LANGUAGES:
        if language == ENGLISH:
            continue  # the message ids are English
        for message in update(language):
            print(f"{po_path(language).relative_to(ROOT)}: untranslated: {message.id!r}")
            missing += 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
