"""One trace, many renderings.

Every message sent or received, every timer that fired, every note and every verdict goes into one structured,
append-only :class:`Trace`. JSON, JUnit, Allure, HTML, pcap and ladder diagrams are views of it (``reports/``), and
the rule catalogue (``conformance/checks``) reads it.

The trace is thread-safe for appends (the peer's event loop runs in a background thread) and cheap: an entry holds
the raw bytes and the parsed message, nothing is rendered until a report asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .sip import Defect, Request, Response, parse

__all__ = ["Address", "MessageEntry", "TimerEntry", "NoteEntry", "VerdictEntry", "Entry", "Trace"]

#: (host, port) as the socket layer gives it; IPv6 hosts without brackets.
Address = tuple[str, int]
Direction = Literal["sent", "received"]


@dataclass(frozen=True, slots=True)
class MessageEntry:
    """A message on the wire: exactly the bytes that were sent or received, and what the parser made of them."""

    seq: int
    #: Seconds since the trace started (monotonic clock).
    time: float
    direction: Direction
    #: ``udp``, ``tcp``, ``tls``, ``ws``, ``wss`` or ``sctp``.
    transport: str
    local: Address
    remote: Address
    data: bytes
    message: Request | Response | None
    defects: tuple[Defect, ...]
    #: Which endpoint or flow of the owner this went through (a peer may open several).
    endpoint: str = ""
    #: Free text: ``raw`` for bytes sent on the raw path, ``fault:duplicate`` for deliberate misbehaviour, ...
    note: str = ""

    @property
    def summary(self) -> str:
        if self.message is None:
            return f"<unparseable {len(self.data)} bytes>"
        return self.message.start_line


@dataclass(frozen=True, slots=True)
class TimerEntry:
    """A protocol timer that fired (``A`` ... ``M``, or a named UA timer), and for which transaction or dialog."""

    seq: int
    time: float
    timer: str
    owner: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NoteEntry:
    """Something the test or the framework wants in the record (a step, a device restart, a fault injected)."""

    seq: int
    time: float
    text: str
    level: Literal["info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class VerdictEntry:
    """A rule's verdict on what the device did, with the messages that show it."""

    seq: int
    time: float
    rule: str
    rfc: str
    level: Literal["MUST", "SHOULD", "MAY"]
    outcome: Literal["violation", "pass"]
    message: str
    #: ``seq`` numbers of the MessageEntry items that are the evidence.
    evidence: tuple[int, ...] = ()


Entry = MessageEntry | TimerEntry | NoteEntry | VerdictEntry


@dataclass
class Trace:
    """Append-only record of one test (or one fuzz case, or one run)."""

    name: str = ""
    started_wall: float = field(default_factory=time.time)
    _t0: float = field(default_factory=time.monotonic, repr=False)
    _entries: list[Entry] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _append(self, make: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            entry = make(len(self._entries), self.now(), *args, **kwargs)
            self._entries.append(entry)
            return entry

    def record_message(
        self,
        direction: Direction,
        transport: str,
        local: Address,
        remote: Address,
        data: bytes,
        message: Request | Response | None = None,
        defects: tuple[Defect, ...] | None = None,
        *,
        endpoint: str = "",
        note: str = "",
        stream: bool = False,
    ) -> MessageEntry:
        """Record bytes on the wire; they are parsed here when the caller has not parsed them already."""
        if message is None and defects is None:
            result = parse(data, stream=stream)
            message, defects = result.message, result.defects
        elif defects is None:
            defects = message.defects if message is not None else ()
        entry: MessageEntry = self._append(
            MessageEntry, direction, transport, local, remote, data, message, defects, endpoint, note
        )
        return entry

    def record_timer(self, timer: str, owner: str, detail: str = "") -> TimerEntry:
        entry: TimerEntry = self._append(TimerEntry, timer, owner, detail)
        return entry

    def note(self, text: str, level: Literal["info", "warning", "error"] = "info") -> NoteEntry:
        entry: NoteEntry = self._append(NoteEntry, text, level)
        return entry

    def record_verdict(
        self,
        rule: str,
        rfc: str,
        level: Literal["MUST", "SHOULD", "MAY"],
        outcome: Literal["violation", "pass"],
        message: str,
        evidence: tuple[int, ...] = (),
    ) -> VerdictEntry:
        entry: VerdictEntry = self._append(VerdictEntry, rule, rfc, level, outcome, message, evidence)
        return entry

    # -- reading -------------------------------------------------------------------------------------------------
    @property
    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self._entries)

    def messages(self, direction: Direction | None = None) -> list[MessageEntry]:
        return [
            e for e in self.entries if isinstance(e, MessageEntry) and (direction is None or e.direction == direction)
        ]

    def verdicts(self) -> list[VerdictEntry]:
        return [e for e in self.entries if isinstance(e, VerdictEntry)]

    def entry(self, seq: int) -> Entry:
        return self._entries[seq]
