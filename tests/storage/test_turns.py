"""WriterTurns: one at a time, in order, urgent work first."""

from __future__ import annotations

import asyncio

import pytest

from storage.sqlite.turns import WriterTurns


async def hold(
    turns: WriterTurns, name: str, log: list[str], release: asyncio.Event, urgent: bool = False
) -> None:
    async with turns.turn(urgent):
        log.append(name)
        await release.wait()


async def started(*tasks: asyncio.Task[None]) -> None:
    """Let every task run up to its first wait."""
    for _ in range(3):
        await asyncio.sleep(0)
    assert not any(task.done() for task in tasks)


async def test_turns_are_one_at_a_time_in_arrival_order_urgent_first() -> None:
    turns, log, go = WriterTurns(), [], asyncio.Event()
    first = asyncio.create_task(hold(turns, "first", log, go))
    await started(first)
    others = [
        asyncio.create_task(hold(turns, "a", log, go)),
        asyncio.create_task(hold(turns, "b", log, go)),
        asyncio.create_task(hold(turns, "urgent", log, go, urgent=True)),
    ]
    await started(*others)
    assert log == ["first"]  # the others wait while it holds the turn
    go.set()
    async with asyncio.timeout(5):
        await asyncio.gather(first, *others)
    assert log == ["first", "urgent", "a", "b"]


async def test_a_waiter_cancelled_gives_up_its_place_and_the_rest_go_on() -> None:
    turns, log, go = WriterTurns(), [], asyncio.Event()
    first = asyncio.create_task(hold(turns, "first", log, go))
    await started(first)
    gone = asyncio.create_task(hold(turns, "gone", log, go))
    after = asyncio.create_task(hold(turns, "after", log, go))
    await started(gone, after)
    gone.cancel()
    go.set()
    async with asyncio.timeout(5):
        await asyncio.gather(first, after)
    assert gone.cancelled()
    assert log == ["first", "after"]
    async with asyncio.timeout(1), turns.turn():  # and the turn is free again
        pass


@pytest.mark.parametrize("handed_the_turn", [False, True])
async def test_a_waiter_cancelled_as_its_turn_comes_passes_it_on(handed_the_turn: bool) -> None:
    turns, log, go = WriterTurns(), [], asyncio.Event()
    go.set()
    async with turns.turn():  # hold the turn while the others line up
        unlucky = asyncio.create_task(hold(turns, "unlucky", log, go))
        after = asyncio.create_task(hold(turns, "after", log, go))
        await started(unlucky, after)
        if not handed_the_turn:
            unlucky.cancel()  # cancelled while queued; the release passes over it
    if handed_the_turn:
        unlucky.cancel()  # the release just handed it the turn; it has not run yet
    async with asyncio.timeout(5):
        await after
    assert log == ["after"]
    assert unlucky.cancelled()
    async with asyncio.timeout(1), turns.turn():  # and the turn is free again
        pass
