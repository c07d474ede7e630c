"""SIGINT and SIGTERM for `paybot run`, caught from its first instant.

This module loads nothing but the standard library's signal and socket, so that
`paybot/cli.py` can install the handlers before the rest of paybot (asyncio, the
store, the channels: most of a second on a busy machine) is even imported.
Without handlers of its own the process would die of the default action (exit
-15) in that time, before anything could be stopped in order.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Callable


class Signals:
    """SIGINT and SIGTERM from the first instant of `run`, kept until the loop asks."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._wake: Callable[[], object] | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._note)

    def _note(self, signum: int, _frame: object) -> None:
        self.received = signum
        if self._wake is not None:
            # A second signal can come as the loop closes: then there is no one to wake.
            with contextlib.suppress(RuntimeError):
                self._wake()

    async def wait(self) -> None:
        """Until a signal arrives; at once if one already has."""
        import asyncio  # loaded by then: the caller runs in its loop

        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()
        self._wake = lambda: loop.call_soon_threadsafe(arrived.set)  # safe from a handler
        if self.received is not None:
            return
        # Python runs the handler only once the main thread runs again; a signal the
        # kernel gives another thread (sqlite's, say) must also wake the loop from select.
        wakeup, written = socket.socketpair()
        wakeup.setblocking(False)
        written.setblocking(False)
        previous = signal.set_wakeup_fd(written.fileno(), warn_on_full_buffer=False)
        loop.add_reader(wakeup.fileno(), wakeup.recv, 64)
        try:
            await arrived.wait()
        finally:
            self._wake = None  # the loop that `arrived` belongs to may close after this
            loop.remove_reader(wakeup.fileno())
            signal.set_wakeup_fd(previous)
            wakeup.close()
            written.close()


SIGNALS = Signals()
