"""Each chat's own language, kept by the store."""

from __future__ import annotations

from bot.models import ChatRef
from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, OpenStore


async def test_a_chat_keeps_the_language_it_chose_and_others_keep_none(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.chat_settings.language_of(ALICE) is None
        await tx.chat_settings.set_language(ALICE, "fr")
    async with store.transaction() as tx:
        alice = await tx.chat_settings.language_of(ALICE)
        bob = await tx.chat_settings.language_of(BOB)
        elsewhere = await tx.chat_settings.language_of(ChatRef("whatsapp", ALICE.chat_id))
    assert (alice, bob, elsewhere) == ("fr", None, None)


async def test_a_later_choice_replaces_the_earlier_one_for_every_store(
    open_store: OpenStore,
) -> None:
    one, another = await open_store(), await open_store()
    async with one.transaction() as tx:
        await tx.chat_settings.set_language(BOB, "fr")
    async with another.transaction() as tx:
        await tx.chat_settings.set_language(BOB, "en")
    async with one.transaction() as tx:
        assert await tx.chat_settings.language_of(BOB) == "en"


async def test_a_choice_in_a_transaction_that_fails_is_not_kept(store: Store) -> None:
    try:
        async with store.transaction() as tx:
            await tx.chat_settings.set_language(ALICE, "fr")
            raise RuntimeError("the command failed after choosing")
    except RuntimeError:
        pass
    async with store.transaction() as tx:
        assert await tx.chat_settings.language_of(ALICE) is None


async def test_a_moved_chat_keeps_its_language_unless_the_new_id_chose_one(store: Store) -> None:
    moved, chosen = ChatRef("telegram", "-100300"), ChatRef("telegram", "-100400")
    async with store.transaction() as tx:
        await tx.chat_settings.set_language(ALICE, "fr")
        await tx.chat_settings.set_language(BOB, "fr")
        await tx.chat_settings.set_language(chosen, "en")
        await tx.chat_settings.move_chat(ALICE, moved)
        await tx.chat_settings.move_chat(BOB, chosen)
    async with store.transaction() as tx:
        found = [await tx.chat_settings.language_of(c) for c in (ALICE, moved, chosen)]
    assert found == [None, "fr", "en"]


async def test_within_one_transaction_a_language_read_follows_its_changes(store: Store) -> None:
    moved = ChatRef("telegram", "-100500")
    async with store.transaction() as tx:
        before = await tx.chat_settings.language_of(ALICE)
        await tx.chat_settings.set_language(ALICE, "fr")
        chosen = await tx.chat_settings.language_of(ALICE)
        await tx.chat_settings.move_chat(ALICE, moved)
        after_move = [await tx.chat_settings.language_of(c) for c in (ALICE, moved)]
        await tx.chat_settings.set_language(moved, "en")
        again = await tx.chat_settings.language_of(moved)
    assert (before, chosen, after_move, again) == (None, "fr", [None, "fr"], "en")


async def test_a_language_another_store_chose_is_read_by_the_next_transaction(
    open_store: OpenStore,
) -> None:
    one, another = await open_store(), await open_store()
    async with one.transaction() as tx:
        assert await tx.chat_settings.language_of(BOB) is None
    async with another.transaction() as tx:
        await tx.chat_settings.set_language(BOB, "fr")
    async with one.transaction() as tx:
        assert await tx.chat_settings.language_of(BOB) == "fr"
