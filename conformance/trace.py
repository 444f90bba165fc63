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
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .sip import STREAM_TRANSPORTS, Defect, Request, Response, parse

__all__ = ["Address", "MessageEntry", "TimerEntry", "NoteEntry", "VerdictEntry", "Entry", "Trace"]

#: (host, port) as the socket layer gives it; IPv6 hosts without brackets.
Address = tuple[str, int]
Direction = Literal["sent", "received"]


class MessageEntry:
    """A message on the wire: exactly the bytes that were sent or received, and what the parser made of them.

    The bytes are the record. The parsed message and its complete defect list are views of them: an entry made by
    :meth:`Trace.record_message` holds the message the peer already parsed only weakly, and parses the bytes again
    (deterministically, with the same result) if a report or a rule asks after the peer has let go of it. A long
    trace is then a list of byte strings, not of parsed object graphs, which keeps the garbage collector's full
    passes short on load tests (the calls-per-second benchmark spent over 40 % of its time there before).
    """

    __slots__ = (
        "seq", "time", "direction", "transport", "local", "remote", "data", "endpoint", "note",
        "_message", "_ref", "_defects", "_extra", "_stream",
    )

    seq: int
    #: Seconds since the trace started (monotonic clock).
    time: float
    direction: Direction
    #: ``udp``, ``tcp``, ``tls``, ``ws``, ``wss`` or ``sctp``.
    transport: str
    local: Address
    remote: Address
    data: bytes
    #: Which endpoint or flow of the owner this went through (a peer may open several).
    endpoint: str
    #: Free text: ``raw`` for bytes sent on the raw path, ``fault:duplicate`` for deliberate misbehaviour, ...
    note: str

    def __init__(
        self,
        seq: int,
        time: float,
        direction: Direction,
        transport: str,
        local: Address,
        remote: Address,
        data: bytes,
        message: Request | Response | None = None,
        defects: tuple[Defect, ...] | None = None,
        endpoint: str = "",
        note: str = "",
        *,
        weak: bool = False,
        extra: tuple[Defect, ...] = (),
        stream: bool | None = None,
    ) -> None:
        """``weak=True`` holds ``message`` (parsed from exactly ``data``) weakly, see the class docstring; ``extra``
        are defects found below the parser, put before the parser's own; ``stream`` is how ``data`` is parsed when
        it has to be (default: whether ``transport`` is framed as a stream)."""
        self.seq = seq
        self.time = time
        self.direction = direction
        self.transport = transport
        self.local = local
        self.remote = remote
        self.data = data
        self.endpoint = endpoint
        self.note = note
        #: strong reference: the message given here, or parsed on first reading
        self._message = None if weak else message
        self._ref: weakref.ref[Request | Response] | None = weakref.ref(message) if weak and message else None
        #: the complete defect list once known; ``None`` until then
        self._defects = defects
        self._extra = extra
        self._stream = transport in STREAM_TRANSPORTS if stream is None else stream

    @property
    def message(self) -> Request | Response | None:
        msg = self._message
        if msg is not None:
            return msg
        if self._ref is not None:
            msg = self._ref()
        if msg is None:
            if self._ref is None and self._defects is not None:
                return None  # made with no message and its defects given: nothing could be parsed
            result = parse(self.data, stream=self._stream)
            msg = result.message
            if msg is None:
                self._ref = None
                self._defects = self._extra + result.defects
                return None
        self._message = msg
        self._ref = None
        return msg

    @property
    def defects(self) -> tuple[Defect, ...]:
        if self._defects is None:
            msg = self.message
            if self._defects is None:
                self._defects = self._extra + (msg.defects if msg is not None else ())
        return self._defects

    @property
    def summary(self) -> str:
        message = self.message
        if message is None:
            return f"<unparseable {len(self.data)} bytes>"
        return message.start_line

    def __repr__(self) -> str:
        return (
            f"MessageEntry(seq={self.seq}, time={self.time:.6f}, direction={self.direction!r}, "
            f"transport={self.transport!r}, local={self.local!r}, remote={self.remote!r}, {len(self.data)} bytes, "
            f"{self.summary!r})"
        )


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
        stream: bool | None = None,
        framed: bool = True,
    ) -> MessageEntry:
        """Record bytes on the wire.

        ``message``, when given, must be what :func:`~conformance.sip.parse` makes of exactly ``data``; the entry
        then keeps it only as long as the caller does and parses ``data`` again if it is read later. Without it,
        ``data`` is parsed when the entry is first read (``stream``: as framed from a stream; by default, when
        ``transport`` is one of :data:`~conformance.sip.STREAM_TRANSPORTS`). ``defects``
        are defects found below the parser (stream framing), listed before the parser's own. ``framed=False``
        records bytes that could not be framed into a message at all: they are not parsed, and ``defects`` says why.
        """
        if not framed:
            entry: MessageEntry = self._append(
                MessageEntry, direction, transport, local, remote, data, None, tuple(defects or ()), endpoint, note
            )
            return entry
        entry = self._append(
            MessageEntry, direction, transport, local, remote, data, message, None, endpoint, note,
            weak=True, extra=tuple(defects or ()), stream=stream,
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
