"""Cimplify Link as the sandbox plays it: a phone number, a one-time code, saved methods.

A real code comes by SMS; the sandbox hands it to the page, which shows it. A
browser that signed in or enrolled holds a session cookie, so the next link it
opens skips the choice between Link and guest. Everything is kept in memory,
bounded, since every input here comes from a browser.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sandbox.records import Attempt

CODE_TTL = timedelta(minutes=5)
_MAX_TRIES = 5
_MAX_ENTRIES = 10_000  # per table; the oldest entry goes first

V = TypeVar("V")


@dataclass(frozen=True)
class Account:
    phone: str
    methods: tuple[Attempt, ...]


@dataclass
class _Code:
    code: str
    expires_at: datetime
    tries: int = 0


class LinkAccounts:
    def __init__(self) -> None:
        self._codes: OrderedDict[str, _Code] = OrderedDict()
        self._methods: OrderedDict[str, tuple[Attempt, ...]] = OrderedDict()
        self._sessions: OrderedDict[str, str] = OrderedDict()  # session id -> phone

    def send_code(self, phone: str, now: datetime) -> str:
        """A fresh six-digit code for `phone`, replacing any earlier one."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        _put(self._codes, phone, _Code(code, now + CODE_TTL))
        return code

    def sign_in(self, phone: str, code: str, now: datetime) -> str | None:
        """A new session id when `code` is `phone`'s current code; each code works once."""
        sent = self._codes.get(phone)
        if sent is None or now >= sent.expires_at or sent.tries >= _MAX_TRIES:
            return None
        sent.tries += 1
        if not hmac.compare_digest(sent.code.encode(), code.encode()):
            return None
        del self._codes[phone]
        return self._new_session(phone)

    def enrol(self, phone: str, method: Attempt) -> str:
        """Save `method` for `phone` (first in the list) and sign this browser in."""
        kept = tuple(m for m in self._methods.get(phone, ()) if m != method)
        _put(self._methods, phone, (method, *kept))
        return self._new_session(phone)

    def account(self, session: str | None) -> Account | None:
        phone = self._sessions.get(session or "")
        if phone is None:
            return None
        return Account(phone, self._methods.get(phone, ()))

    def sign_out(self, session: str | None) -> None:
        self._sessions.pop(session or "", None)

    def _new_session(self, phone: str) -> str:
        session = secrets.token_urlsafe(24)
        _put(self._sessions, session, phone)
        return session


def _put(table: OrderedDict[str, V], key: str, value: V) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > _MAX_ENTRIES:
        table.popitem(last=False)
