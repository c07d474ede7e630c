"""Processes the bench starts beside paybot: the textbook peers, and what they cost.

CPU time is read from /proc (psutil is not a dependency): user plus system
seconds of one process, so a measure can divide the time spent over its work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.process import ROOT

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process `pid` has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def started(module: str, env: Mapping[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m <module>` of this repository, stopped with SIGTERM (then killed) at the end.

    Its output goes to `<cwd>/<module>.log`, read when it fails to come up."""
    log = (cwd / f"{module}.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


async def until_listening(process: subprocess.Popen[bytes], port: int, cwd: Path) -> None:
    """Return once `process` accepts connections on loopback `port`; fail if it exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}: {_log(cwd)}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{process.args!r} did not listen on {port}")


def _log(cwd: Path) -> str:
    return " | ".join(p.read_text()[-2000:] for p in cwd.glob("*.log"))
