"""A real `paybot` process, started as a user would, with its output read as it comes.

Shared by the command-line tests, the crash tests and the benchmark.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[1]
# paybot/cli.py has no `__main__` guard; this is what the `paybot` console script runs.
ENTRY = "import sys; from paybot.cli import main; sys.exit(main(sys.argv[1:]))"
DEADLINE = 10.0


class Paybot:
    """A running paybot process whose stdout and stderr lines are read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._arrived: queue.Queue[tuple[str, str]] = queue.Queue()
        assert process.stdout is not None and process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            self._arrived.put((name, line.rstrip("\n")))

    def wait_for(self, stream: str, text: str, timeout: float = DEADLINE) -> str:
        """The first line on `stream` containing `text`; fails if none comes in time."""
        deadline = time.monotonic() + timeout
        seen = [line for line in self.lines[stream] if text in line]
        while not seen:
            try:
                name, line = self._arrived.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {stream} line with {text!r} in {timeout} s: {self.lines}")
            self.lines[name].append(line)
            if name == stream and text in line:
                return line
        return seen[0]

    def finish(self, timeout: float = DEADLINE) -> int:
        """Wait for the exit code and every line the process wrote."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        while not self._arrived.empty():
            name, line = self._arrived.get_nowait()
            self.lines[name].append(line)
        return code


def clean_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """Only what Python needs, plus the settings: none of the developer's variables."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "PAYBOT_DATABASE": str(tmp_path / "paybot.db"),
        **settings,
    }


@contextmanager
def start_paybot(
    args: list[str], env: dict[str, str], cwd: Path, prelude: str = ""
) -> Iterator[Paybot]:
    """`paybot <args>` running in `cwd` (no .env there); killed if still alive at the end.

    `prelude`: Python run first in the process (a resource limit, say)."""
    process = subprocess.Popen(  # noqa: S603 - fixed arguments, this test's own
        [sys.executable, "-c", f"{prelude}; {ENTRY}" if prelude else ENTRY, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    paybot = Paybot(process)
    try:
        yield paybot
    finally:
        if process.poll() is None:
            process.kill()
        paybot.finish()  # the readers end at EOF, before their streams are closed
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False
