"""A live holder's heartbeat: `prolong_claims` keeps its claims from lapsing."""

from __future__ import annotations

from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, CAROL, T0, OpenStore, an_entry, at, text_to


async def test_prolonged_outbox_claims_outlive_their_first_lease(open_store: OpenStore) -> None:
    live, other = await open_store(), await open_store()
    async with live.transaction() as tx:
        a1, b1, c1 = await tx.outbox.enqueue(
            [text_to(ALICE, "a1"), text_to(BOB, "b1"), text_to(CAROL, "c1")], T0
        )
        await tx.outbox.claim_due(T0, 2, "live", at(60))
        await tx.outbox.claim_due(T0, 10, "dead", at(60))
    async with live.transaction() as tx:
        await tx.outbox.mark_sent(a1, at(10))
        prolonged = await tx.outbox.prolong_claims("live", at(120))
    async with other.transaction() as tx:
        wake = await tx.outbox.next_due_at()
        taken = await tx.outbox.claim_due(at(61), 10, "other", at(180))
    assert prolonged == 1  # b1 only: a1 was sent, c1 is not live's
    assert wake == at(60)  # c1's lapsing claim
    assert [queued.id for queued in taken] == [c1]  # b1 is still held by `live`
    async with other.transaction() as tx:
        assert [q.id for q in await tx.outbox.claim_due(at(120), 10, "other", at(180))] == [b1]


async def test_prolong_claims_of_a_holder_with_none_moves_nothing(store: Store) -> None:
    async with store.transaction() as tx:
        [message_id] = await tx.outbox.enqueue([text_to(ALICE, "a1")], T0)
        await tx.outbox.claim_due(T0, 10, "sender", at(60))
        await tx.outbox.retry(message_id, at(30), "timeout")  # the claim is released
        await tx.inbox.record([an_entry("u1")], T0)
    async with store.transaction() as tx:
        outbox = await tx.outbox.prolong_claims("sender", at(600))
        inbox = await tx.inbox.prolong_claims("worker", at(600))
        due = await tx.outbox.claim_due(at(30), 10, "sender", at(90))
    assert (outbox, inbox) == (0, 0)
    assert [queued.id for queued in due] == [message_id]


async def test_prolonged_inbox_claims_outlive_their_first_lease(open_store: OpenStore) -> None:
    live, other = await open_store(), await open_store()
    async with live.transaction() as tx:
        await tx.inbox.record([an_entry("x1", "x"), an_entry("y1", "y"), an_entry("z1", "z")], T0)
        x1, _ = await tx.inbox.claim(T0, 2, "live", at(60))
        await tx.inbox.claim(T0, 10, "dead", at(60))
    async with live.transaction() as tx:
        await tx.inbox.finish(x1.seq, at(10))
        prolonged = await tx.inbox.prolong_claims("live", at(120))
    async with other.transaction() as tx:
        taken = await tx.inbox.claim(at(61), 10, "other", at(180))
        later = await tx.inbox.claim(at(120), 10, "other", at(180))
    assert prolonged == 1  # y1 only: x1 is finished, z1 is not live's
    assert [item.entry.source_id for item in taken] == ["z1"]
    assert [(item.entry.source_id, item.attempts) for item in later] == [("y1", 2)]
