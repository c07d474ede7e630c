"""The stage for the tests of several instances: N `paybot run` processes as one bot.

All run on one fresh PostgreSQL database, each on its own PAYBOT_HTTP_PORT, and
share the sandbox (as Cimplify) and the fake Bot API, which enforces Telegram's
flood limits. Built from the crash tests' pieces (tests/crash_stage.py): the
orders, the process started again after a kill, the readings of what Telegram
took and what the store holds. Each instance reaches the fake by its own address
(tests/fakes/tagged_bot_api.py), so a call says which instance made it.

Cimplify delivers each event to one instance, and the stage posts it again to
another, signed afresh: a sender behind a load balancer that delivers twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox import Sandbox, SandboxServer
from tests.crash_stage import WEBHOOK_RETRIES, BotProcess, CrashStage, crash_orders
from tests.databases import drop_database, fresh_postgres_url
from tests.fakes.send_limits import SendLimits
from tests.fakes.tagged_bot_api import TaggedBotApi
from tests.harness import BOT_TOKEN, SECRET_KEY, WEBHOOK_SECRET
from tests.process import clean_env, free_port

TELEGRAM_SECRET = "multi-stage-telegram-secret"  # TELEGRAM_WEBHOOK_SECRET, in webhook mode
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PUBLIC_URL = "https://paybot.example"  # one address for all instances, as behind a balancer
ECHO_DEADLINE = 60.0  # seconds an echoed event keeps being posted until one instance takes it


class Instance(BotProcess):
    """One `paybot run` of the stage: its own port and Bot API address, one database."""

    def __init__(self, number: int, port: int, env: dict[str, str], cwd: Path, fake: TaggedBotApi):
        super().__init__(env, cwd, fake)
        self.number, self.url, self.tagged_fake = number, f"http://127.0.0.1:{port}", fake
        # Telegram's last call of a start: the webhook set, or removed before polling.
        webhook = env["TELEGRAM_MODE"] == "webhook"
        self._last_start_call = "setWebhook" if webhook else "deleteWebhook"

    @property
    def pid(self) -> int | None:
        """The running process's id; None once it has exited."""
        if self.current is None or self.current.process.poll() is not None:
            return None
        return self.current.process.pid

    def _polled_since(self, moment: float) -> bool:
        """What `start` waits for. Only one instance polls, so the crash stage's sign of
        life (a getUpdates) will not do: here it is this instance's last start call,
        answered. The roles were taken before it, and the loops started."""
        done = self.tagged_fake.calls_by(self.number, self._last_start_call, moment)
        return any(t.ended is not None for t in done)


class EveryInstance:
    """What the crash checks read as `stage.bot`: the kills, here of every instance, since
    a repeat is allowed just before the kill of whichever process sent it."""

    def __init__(self, instances: list[Instance]) -> None:
        self._instances = instances

    @property
    def kills(self) -> list[float]:
        return sorted(k for i in self._instances for k in i.kills)


@dataclass
class MultiStage(CrashStage):
    fake: TaggedBotApi
    instances: list[Instance] = field(default_factory=list)
    echoes: Echoes = field(init=False)

    async def start_all(self) -> None:
        for instance in self.instances:  # one after the other: the first takes every role
            await instance.start()

    async def holder_of(self, role: str) -> Instance:
        """The instance whose running process holds `role` (holder: `host:pid:hex`)."""
        found = await self.rows("SELECT holder FROM roles WHERE name = ?", role)
        assert found, f"nobody holds {role}"
        pid = int(found[0]["holder"].split(":")[-2])
        return next(i for i in self.instances if i.pid == pid)

    def in_turn(self) -> itertools.cycle[Instance]:
        """The instances one after another, to spread inputs over all of them."""
        return itertools.cycle(self.instances)

    async def stop_all(self) -> list[int]:
        """SIGTERM to each in turn; their exit codes."""
        return [(await instance.terminate())[0] for instance in self.instances]


class Echoes:
    """Each event the sandbox delivers, posted once more to another instance."""

    def __init__(self, sandbox: Sandbox, instances: list[Instance]) -> None:
        self._sandbox, self._instances = sandbox, instances
        self._http = httpx.AsyncClient(timeout=5.0)
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.acknowledged: set[str] = set()

    async def observe(self, request: httpx.Request) -> None:
        """The sandbox's request hook: the first delivery of each event is echoed."""
        event_id = request.headers["webhook-id"]
        if event_id in self._seen:
            return
        self._seen.add(event_id)
        others = [i for i in self._instances if not str(request.url).startswith(i.url + "/")]
        task = asyncio.create_task(self._echo(event_id, request.content, others))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _echo(self, event_id: str, body: bytes, others: list[Instance]) -> None:
        """Post to the other instances in turn until one takes it; a dead one refuses."""
        deadline = time.monotonic() + ECHO_DEADLINE
        for instance in itertools.cycle(others):
            headers = {"content-type": "application/json"}
            headers |= self._sandbox.sign(body, event_id=event_id)
            url = f"{instance.url}/webhooks/cimplify"
            with contextlib.suppress(httpx.HTTPError):
                if (await self._http.post(url, content=body, headers=headers)).is_success:
                    self.acknowledged.add(event_id)
                    return
            if time.monotonic() > deadline:
                return  # the test's wait for every echo then says what is missing
            await asyncio.sleep(0.2)  # a sender's retry delay, not a wait for a condition

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()


async def post_update(http: httpx.AsyncClient, instance: Instance, update: dict[str, Any]) -> int:
    """Post a Telegram update as Telegram does in webhook mode: the status, 0 if refused."""
    try:
        answer = await http.post(
            f"{instance.url}/webhooks/telegram",
            json=update,
            headers={SECRET_HEADER: TELEGRAM_SECRET},
        )
    except httpx.HTTPError:
        return 0
    return answer.status_code


def _settings(
    fake: TaggedBotApi, server: SandboxServer, mode: str, database: str
) -> dict[str, str]:
    """What every instance is given alike."""
    settings = {
        "CIMPLIFY_API_BASE": server.url,
        "CIMPLIFY_SECRET_KEY": SECRET_KEY,
        "CIMPLIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_MODE": mode,
        "PAYBOT_PUBLIC_URL": PUBLIC_URL,
        "PAYBOT_SEND_RATE": "30",  # the default: Telegram's 30 a second overall
        "PAYBOT_POLL_RATE": "5",
        "PAYBOT_LOG_LEVEL": "WARNING",
        "PAYBOT_DATABASE": database,
    }
    if mode == "webhook":
        settings["TELEGRAM_WEBHOOK_SECRET"] = TELEGRAM_SECRET
    return settings


@contextlib.asynccontextmanager
async def multi_stage(
    tmp_path: Path, *, instances: int, merchants: int, per_merchant: int, mode: str
) -> AsyncIterator[MultiStage]:
    """`instances` paybots in `mode` (polling or webhook) on a fresh PostgreSQL database,
    none started yet; Telegram's flood limits enforced by the fake Bot API."""
    orders, merchant_of = crash_orders(merchants, per_merchant)
    database = await fresh_postgres_url()
    # The sandbox's deliveries go through this client, whose hook echoes each event.
    delivering = httpx.AsyncClient(timeout=5.0)
    sandbox = Sandbox(
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        retry_delays=WEBHOOK_RETRIES,
        orders=orders,
        http=delivering,
    )
    crew: list[Instance] = []
    try:
        async with (
            TaggedBotApi(token=BOT_TOKEN, limits=SendLimits()) as fake,
            SandboxServer(sandbox) as server,
        ):
            shared = _settings(fake, server, mode, database)
            shared["TELEGRAM_MERCHANTS"] = ",".join(
                str(c) for c in sorted(set(merchant_of.values()))
            )
            for number in range(instances):
                port = free_port()
                env = clean_env(
                    tmp_path,
                    **shared,
                    TELEGRAM_API_BASE=fake.base_for(number),
                    PAYBOT_HTTP_PORT=str(port),
                )
                crew.append(Instance(number, port, env, tmp_path, fake))
            stage = MultiStage(fake, sandbox, EveryInstance(crew), database, merchant_of, crew)  # type: ignore[arg-type]
            stage.echoes = Echoes(sandbox, crew)
            delivering.event_hooks = {"request": [stage.echoes.observe]}
            sandbox.webhook_url = f"{crew[0].url}/webhooks/cimplify"
            try:
                yield stage
            finally:
                for instance in crew:
                    instance.close()
                await stage.echoes.close()
    finally:
        await sandbox.close()
        await delivering.aclose()
        await drop_database(database)
