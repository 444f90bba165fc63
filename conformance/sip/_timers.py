"""SIP timers as data (RFC 3261 Appendix A, RFC 6026 §8.11) and a deadline wheel for sans-I/O machines.

Nothing here reads a clock: a :class:`TimerWheel` holds named deadlines (absolute times on whatever clock the
caller's ``now`` uses), answers :meth:`TimerWheel.next_timer` and hands back the ones that are due.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Timer", "TimerConfig", "TimerDef", "TIMER_TABLE", "TimerWheel"]


class Timer(StrEnum):
    """The timers of RFC 3261 §17 (A to K), RFC 6026 (L, M) and the 200 ms rule for 100 Trying (§17.2.1)."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    #: §17.2.1: "The server transaction MUST generate a 100 (Trying) response unless it knows that the TU will
    #: generate a provisional or final response within 200 ms".
    TRYING = "Trying"


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """The base values T1, T2 and T4 (RFC 3261 §17.1.1.1, §17.1.2.2) from which every timer but D is computed.

    §17.1.1.1: "Nearly all of the transaction timers described here scale with T1, and changing T1 adjusts their
    values." ``trying`` is the 200 ms of §17.2.1 after which an INVITE server transaction sends 100 Trying.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying: float = 0.2
    #: Timer D on unreliable transports. §17.1.1.2: "the client transaction does not know the value of T1 in use by
    #: the server transaction, so an absolute minimum of 32s is used instead of basing Timer D on T1."
    timer_d: float = 32.0

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 > 0 and self.t4 >= 0 and self.trying >= 0 and self.timer_d >= 0):
            raise ValueError(f"timer base values must be positive: {self}")

    def duration(self, timer: Timer | str, reliable: bool) -> float | None:
        """The initial value of ``timer`` on a reliable or unreliable transport; ``None`` when it is not started.

        Zero means "fires at once" (Timers D, I, J and K on reliable transports).
        """
        row = TIMER_TABLE[Timer(timer)]
        rule = row.reliable if reliable else row.unreliable
        return None if rule is None else rule(self)

    # Convenience accessors, one per timer (RFC 3261 Table 4).
    def a(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.A, reliable)

    def b(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.B, reliable)

    def d(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.D, reliable)

    def e(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.E, reliable)

    def f(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.F, reliable)

    def g(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.G, reliable)

    def h(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.H, reliable)

    def i(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.I, reliable)

    def j(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.J, reliable)

    def k(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.K, reliable)

    def l(self, reliable: bool = False) -> float | None:  # noqa: E743 - the RFC's name
        return self.duration(Timer.L, reliable)

    def m(self, reliable: bool = False) -> float | None:
        return self.duration(Timer.M, reliable)

    @property
    def transaction_timeout(self) -> float:
        """64*T1: Timers B, F, H, L and M, the 2xx and reliable 1xx give-up times, the §9.1 CANCEL fallback."""
        return 64 * self.t1


_Rule = Callable[[TimerConfig], float] | None


@dataclass(frozen=True, slots=True)
class TimerDef:
    """One row of RFC 3261 Table 4 (plus RFC 6026's L and M)."""

    timer: Timer
    #: The initial value on UDP, as a function of the config (``None``: not started).
    unreliable: _Rule
    #: The initial value on TCP, TLS, SCTP, WS.
    reliable: _Rule
    #: The formula as the RFC writes it, for the docs.
    formula: str
    section: str
    meaning: str


def _t1(c: TimerConfig) -> float:
    return c.t1


def _t4(c: TimerConfig) -> float:
    return c.t4


def _64t1(c: TimerConfig) -> float:
    return 64 * c.t1


def _zero(c: TimerConfig) -> float:
    return 0.0


def _d_udp(c: TimerConfig) -> float:
    # §17.1.1.2: "with a value of at least 32 seconds for unreliable transports"; fixed, not scaled with T1.
    return c.timer_d


def _trying(c: TimerConfig) -> float:
    return c.trying


#: RFC 3261 Appendix A, Table 4, with RFC 6026 §8.11's Timers L and M.
TIMER_TABLE: dict[Timer, TimerDef] = {
    row.timer: row
    for row in (
        TimerDef(
            Timer.A,
            _t1,
            None,
            "initially T1, doubling (UDP only)",
            "RFC 3261 §17.1.1.2",
            "INVITE request retransmit interval",
        ),
        TimerDef(Timer.B, _64t1, _64t1, "64*T1", "RFC 3261 §17.1.1.2", "INVITE transaction timeout"),
        TimerDef(
            Timer.D,
            _d_udp,
            _zero,
            "> 32 s for UDP, 0 for reliable",
            "RFC 3261 §17.1.1.2",
            "wait time for response retransmits",
        ),
        TimerDef(
            Timer.E,
            _t1,
            None,
            "initially T1, doubling to T2; T2 in Proceeding (UDP only)",
            "RFC 3261 §17.1.2.2",
            "non-INVITE request retransmit interval",
        ),
        TimerDef(Timer.F, _64t1, _64t1, "64*T1", "RFC 3261 §17.1.2.2", "non-INVITE transaction timeout"),
        TimerDef(
            Timer.G,
            _t1,
            None,
            "initially T1, doubling to T2 (UDP only)",
            "RFC 3261 §17.2.1",
            "INVITE response retransmit interval",
        ),
        TimerDef(Timer.H, _64t1, _64t1, "64*T1", "RFC 3261 §17.2.1", "wait time for ACK receipt"),
        TimerDef(
            Timer.I, _t4, _zero, "T4 for UDP, 0 for reliable", "RFC 3261 §17.2.1", "wait time for ACK retransmits"
        ),
        TimerDef(
            Timer.J,
            _64t1,
            _zero,
            "64*T1 for UDP, 0 for reliable",
            "RFC 3261 §17.2.2",
            "wait time for non-INVITE request retransmits",
        ),
        TimerDef(
            Timer.K,
            _t4,
            _zero,
            "T4 for UDP, 0 for reliable",
            "RFC 3261 §17.1.2.2",
            "wait time for response retransmits",
        ),
        TimerDef(Timer.L, _64t1, _64t1, "64*T1", "RFC 6026 §8.11", "wait time for accepted INVITE request retransmits"),
        TimerDef(
            Timer.M,
            _64t1,
            _64t1,
            "64*T1",
            "RFC 6026 §8.11",
            "wait time for retransmission of 2xx to INVITE or additional 2xx from other branches",
        ),
        TimerDef(
            Timer.TRYING,
            _trying,
            _trying,
            "200 ms",
            "RFC 3261 §17.2.1",
            "send 100 Trying if the TU has not answered the INVITE",
        ),
    )
}


class TimerWheel:
    """Named deadlines. Starting a name again replaces its deadline; nothing here reads a clock.

    >>> w = TimerWheel()
    >>> w.start("A", 0.5); w.start("B", 32.0)
    >>> w.next_timer()
    0.5
    >>> w.pop_due(1.0)
    [('A', 0.5)]
    """

    __slots__ = ("_deadlines", "_heap", "_seq")

    def __init__(self) -> None:
        self._deadlines: dict[str, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0

    def start(self, name: str, deadline: float) -> None:
        """Arm ``name`` to fire at ``deadline`` (absolute), replacing any earlier arming of it."""
        self._seq += 1
        self._deadlines[name] = (deadline, self._seq)
        heapq.heappush(self._heap, (deadline, self._seq, name))

    def cancel(self, name: str) -> None:
        self._deadlines.pop(name, None)

    def cancel_all(self) -> None:
        self._deadlines.clear()
        self._heap.clear()

    def deadline(self, name: str) -> float | None:
        entry = self._deadlines.get(name)
        return None if entry is None else entry[0]

    def __contains__(self, name: object) -> bool:
        return name in self._deadlines

    def __len__(self) -> int:
        return len(self._deadlines)

    def names(self) -> list[str]:
        """The armed timers' names, in no particular order (a copy: cancelling while looping over it is safe)."""
        return list(self._deadlines)

    def __iter__(self) -> Iterator[tuple[str, float]]:
        """Armed timers in deadline order."""
        return iter(sorted(((n, d) for n, (d, _) in self._deadlines.items()), key=lambda item: item[1]))

    def _clean(self) -> None:
        heap = self._heap
        while heap:
            deadline, seq, name = heap[0]
            if self._deadlines.get(name) == (deadline, seq):
                return
            heapq.heappop(heap)

    def next_timer(self) -> float | None:
        """The earliest deadline, or ``None`` when nothing is armed."""
        self._clean()
        return self._heap[0][0] if self._heap else None

    def pop_next(self, now: float) -> tuple[str, float] | None:
        """Disarm and return the earliest timer whose deadline is ``<= now`` (ties in arming order), or ``None``."""
        self._clean()
        if not self._heap or self._heap[0][0] > now:
            return None
        deadline, _, name = heapq.heappop(self._heap)
        del self._deadlines[name]
        return name, deadline

    def pop_due(self, now: float) -> list[tuple[str, float]]:
        """Disarm and return every timer due at ``now``, earliest first."""
        due = []
        while (item := self.pop_next(now)) is not None:
            due.append(item)
        return due
