"""Statements that do many at once: webhook events stored together, due heads by kind."""

from __future__ import annotations

from bot.models import ChatRef, MessageKind, Outgoing
from storage.sqlite import SqliteStore
from tests.factories import make_link
from tests.storage.test_sqlite import T0, make_event


async def test_record_events_returns_the_new_ids_and_stores_a_repeat_once(
    store: SqliteStore,
) -> None:
    async with store.transaction() as tx:
        assert await tx.record_event(make_event("evt_old"), b"{}", T0)
        batch = [
            make_event("a"),
            make_event("evt_old"),
            make_event("b"),
            make_event("a", reference="ref-2"),
        ]
        new = await tx.record_events([(e, b"{}") for e in batch], T0)
        pending = await tx.unapplied_events(10)
    assert new == {"a", "b"}
    assert [p.event.id for p in pending] == ["evt_old", "a", "b"]  # in the order given
    assert pending[1].event.reference == "ref-1"  # the first appearance is the one kept


async def test_record_events_takes_more_than_one_statement_can_bind(store: SqliteStore) -> None:
    many = [(make_event(f"evt_{n}"), b"{}") for n in range(1234)]  # 12,340 values
    async with store.transaction() as tx:
        assert len(await tx.record_events(many, T0)) == 1234
        assert await tx.record_events(many, T0) == set()
        assert await tx.record_events([], T0) == set()
        assert len(await tx.unapplied_events(2000)) == 1234


async def test_due_messages_by_kind_takes_only_chats_whose_head_is_of_that_kind(
    store: SqliteStore,
) -> None:
    link = make_link()
    ana, ben = ChatRef("fake", "ana"), ChatRef("fake", "ben")
    async with store.transaction() as tx:
        await tx.links.insert(link)
        await tx.outbox.enqueue(
            [
                Outgoing(ana, MessageKind.CAPTION, "ana edit", link.id),
                Outgoing(ana, MessageKind.TEXT, "ana text"),  # behind ana's edit
                Outgoing(ben, MessageKind.TEXT, "ben text"),
            ],
            T0,
        )
        edits = await tx.due_messages(T0, 10, kinds=frozenset({MessageKind.CAPTION}))
        texts = await tx.due_messages(T0, 10, kinds=frozenset({MessageKind.TEXT}))
        every = await tx.due_messages(T0, 10)
    assert [m.message.text for m in edits] == ["ana edit"]
    assert [m.message.text for m in texts] == ["ben text"]  # never ana's, out of order
    assert [m.message.text for m in every] == ["ana edit", "ben text"]
