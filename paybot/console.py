"""The terminal as a chat: lines typed in, messages printed above a prompt kept whole.

Lines are read on a daemon thread: `input()` blocks, and it is what gives readline's
line editing and history. A daemon, so that Ctrl-C, Ctrl-D or /quit end the demo at
once rather than when Enter is next pressed. On a terminal each message clears the
prompt line, prints, and draws the prompt again with what was typed so far; piped
input is read raw, with no prompt.

A message that comes between Enter and the next prompt waits for readline to draw
that prompt (its pre-input hook), then goes above it: printed earlier, it could land
before readline's prompt and leave two on one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

PROMPT = "you › "
_CLEAR_LINE = "\r\x1b[K"


class ConsoleChat:
    def __init__(self, out: TextIO = sys.stdout, fd: int = 0) -> None:
        self._out = out
        self._fd = fd
        self.interactive = os.isatty(fd) and out.isatty()
        self.interrupted = False
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._write_lock = threading.Lock()
        self._prompting = False  # readline's prompt is on screen, waiting for a line
        self._held: list[str] = []  # messages that came while no prompt was drawn
        self._reading = False  # the reader thread is between prompts or at one
        self._hooked = False  # readline tells when it has drawn the prompt
        self._terminal: list[Any] | None = None

    def start(self) -> None:
        """Start reading lines; `next_line` returns them, None at the end of input."""
        loop = asyncio.get_running_loop()
        if self.interactive:
            self._terminal = _terminal_state(self._fd)
            self._hooked = _hook_prompt(self._prompt_drawn)
        read = self._read_typed if self.interactive else self._read_piped
        threading.Thread(target=read, args=(loop,), name="console-input", daemon=True).start()

    async def next_line(self) -> str | None:
        return await self._lines.get()

    def interrupt(self) -> None:
        """End the input now (Ctrl-C): `next_line` returns None."""
        self.interrupted = True
        self._lines.put_nowait(None)

    def show(self, text: str) -> None:
        """Print `text` above the prompt, and put the prompt back as it was."""
        with self._write_lock:
            if self.interactive and self._prompting:
                self._out.write(f"{_CLEAR_LINE}{text}{PROMPT}{_typed_so_far()}")
            elif self.interactive and self._reading and self._hooked:
                self._held.append(text)
                return
            else:
                self._out.write(text)
            self._out.flush()

    def _prompt_drawn(self) -> None:
        """readline has drawn a fresh prompt: what came meanwhile goes above it."""
        with self._write_lock:
            self._prompting = True
            if self._held:
                self._out.write(f"{_CLEAR_LINE}{''.join(self._held)}{PROMPT}")
                self._out.flush()
                self._held.clear()

    def close(self) -> None:
        """Leave the terminal as it was found, on a fresh line."""
        if self._terminal is not None:
            _restore_terminal(self._fd, self._terminal)
            self._out.write("\n")
            self._out.flush()

    def _read_typed(self, loop: asyncio.AbstractEventLoop) -> None:
        self._reading = True
        while True:
            if not self._hooked:  # without readline's hook, as near as can be told
                self._prompting = True
            try:
                line: str | None = input(PROMPT)
            except (EOFError, OSError, ValueError):
                line = None
            with self._write_lock:
                self._prompting = False
            loop.call_soon_threadsafe(self._lines.put_nowait, line)
            if line is None:
                break
        with self._write_lock:
            self._reading = False
            held, self._held = "".join(self._held), []
            self._out.write(held)

    def _read_piped(self, loop: asyncio.AbstractEventLoop) -> None:
        # os.read rather than sys.stdin: a daemon thread blocked holding sys.stdin's lock
        # would abort the interpreter's shutdown.
        pending = b""
        while chunk := _read_chunk(self._fd):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                loop.call_soon_threadsafe(self._lines.put_nowait, raw.decode(errors="replace"))
        if pending:
            loop.call_soon_threadsafe(self._lines.put_nowait, pending.decode(errors="replace"))
        loop.call_soon_threadsafe(self._lines.put_nowait, None)


def _read_chunk(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""


def _hook_prompt(drawn: Callable[[], None]) -> bool:
    """Have readline call `drawn` each time it has drawn a prompt; False without readline."""
    try:
        import readline  # imported, it gives input() line editing and history
    except ImportError:
        return False
    readline.set_pre_input_hook(drawn)
    return True


def _typed_so_far() -> str:
    try:
        import readline
    except ImportError:
        return ""
    return readline.get_line_buffer()


def _terminal_state(fd: int) -> list[Any] | None:
    try:
        import termios
    except ImportError:  # not a POSIX terminal
        return None
    try:
        return termios.tcgetattr(fd)
    except termios.error:
        return None


def _restore_terminal(fd: int, state: list[Any]) -> None:
    import termios

    with contextlib.suppress(termios.error):
        termios.tcsetattr(fd, termios.TCSADRAIN, state)
