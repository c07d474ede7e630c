"""`paybot` run on a pseudo-terminal, as a person runs it: keys typed, the screen read.

The terminal is the process's controlling terminal, so Ctrl-C typed there is a SIGINT,
as at a real keyboard.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.process import ENTRY, clean_env

CTRL_C = "\x03"
CTRL_D = "\x04"
_CLEAR_LINE = "\r\x1b[K"
_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Terminal:
    def __init__(self, process: subprocess.Popen[bytes], master: int) -> None:
        self.process = process
        self._master = master
        self.screen = ""  # everything written so far, escape sequences removed
        # A character's bytes may straddle two reads.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def type(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def wait_for(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The first match of `pattern` in what the program wrote; fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.screen)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout} s; screen:\n{self.screen}")
            self._read(deadline - time.monotonic())
        return found

    def wait_exit(self, timeout: float) -> int:
        """The exit code, which must come within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s; screen:\n{self.screen}")
            self._read(0.05)
        self._read(0.05)
        return code

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self._master], [], [], max(0.0, min(timeout, 0.2)))
        if not ready:
            return
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # the program ended and closed the terminal
            return
        first, *after_clears = self._decoder.decode(chunk).split(_CLEAR_LINE)
        self._add(first)
        for text in after_clears:  # the line is wiped, as the terminal wipes it
            self.screen = self.screen[: self.screen.rfind("\n") + 1]
            self._add(text)

    def _add(self, text: str) -> None:
        self.screen += _ESCAPES.sub("", text).replace("\r", "")


@contextmanager
def paybot_on_terminal(args: list[str], tmp_path: Path, columns: int = 120) -> Iterator[Terminal]:
    master, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = clean_env(tmp_path, TERM="xterm", COLUMNS=str(columns))

    def own_the_terminal() -> None:  # in the child: a session whose terminal this is
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(  # noqa: S603 - fixed arguments, this test's own
        [sys.executable, "-c", ENTRY, *args],
        stdin=child,
        stdout=child,
        stderr=child,
        cwd=tmp_path,
        env=env,
        preexec_fn=own_the_terminal,  # the only way to give it its terminal
    )
    os.close(child)
    try:
        yield Terminal(process, master)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        os.close(master)
