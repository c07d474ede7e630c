"""The textbook receiver (bench/textbook_receiver.py) taking the very events paybot took.

Same signed events, same order, same senders and load generator, in the same run:
the ratio of the two rates is what the target is about, since the machine's own
speed cancels out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.posting import Event, post_spread
from bench.processes import cpu_seconds, started, until_listening
from bench.textbook_receiver import stored_ids
from tests.process import free_port


@dataclass(frozen=True)
class PeerIngest:
    events_per_s: float
    wall_s: float
    cpu_s: float  # the receiver's CPU seconds while the events were posted
    not_2xx: int
    lost: list[str]  # acknowledged with a 2xx, missing from its database


async def textbook_ingest(
    workdir: Path, queue: list[Event], webhook_secret: str, senders: int
) -> PeerIngest:
    folder = workdir / "textbook-receiver"
    folder.mkdir(parents=True, exist_ok=True)
    database, port = folder / "events.db", free_port()
    env = {
        "TEXTBOOK_DATABASE": str(database),
        "TEXTBOOK_WEBHOOK_SECRET": webhook_secret,
        "TEXTBOOK_PORT": str(port),
    }
    with started("bench.textbook_receiver", env, folder) as process:
        await until_listening(process, port, folder)
        cpu_before, began = cpu_seconds(process.pid), time.monotonic()
        posted = await post_spread([f"http://127.0.0.1:{port}"], queue, senders)
        wall = time.monotonic() - began
        cpu = cpu_seconds(process.pid) - cpu_before
    acknowledged = {p.event_id for p in posted if p.acknowledged}
    lost = sorted(acknowledged - stored_ids(database))
    refused = sum(1 for p in posted if not p.acknowledged)
    return PeerIngest(len(posted) / wall, wall, cpu, refused, lost)
