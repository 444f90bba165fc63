"""The shapes of the rule catalogue: levels, what a rule applies to, the context it reads, rules and findings.

Everything here is a small frozen value. A rule is data (DESIGN.md principle 5): a stable id tied to its section, the
RFC 2119 level, what it applies to, the sentence of the RFC it encodes, a one-line summary, and a predicate. The
predicate says *what* is wrong (an :class:`Issue`); the rule turns that into a :class:`Finding` that carries the id,
the section, the level and the evidence, so no predicate can get those wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from ..sip import Request, Response

if TYPE_CHECKING:
    from ..trace import MessageEntry, Trace, VerdictEntry

__all__ = [
    "Level",
    "Role",
    "TransportKind",
    "MessageKind",
    "AppliesTo",
    "Context",
    "Issue",
    "Finding",
    "Violation",
    "Rule",
    "RULE_ID",
    "MessagePredicate",
    "TracePredicate",
    "message_rule",
    "trace_rule",
    "transport_kind",
    "is_reliable",
]


class Level(StrEnum):
    """The RFC 2119 level of a rule. ``MUST NOT`` is a ``MUST`` rule, ``SHOULD NOT`` and ``NOT RECOMMENDED`` are
    ``SHOULD`` rules, ``RECOMMENDED`` is ``SHOULD``."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"

    def __str__(self) -> str:
        return self.value


#: The role the device plays. A registrar is a UAS (RFC 3261 §10.3: "A registrar is a UAS that responds to REGISTER
#: requests"), so rules for ``uas`` apply to it too.
Role = Literal["uas", "uac", "registrar", "proxy"]
#: How the transport frames messages: ``stream`` (TCP, TLS: Content-Length delimits messages, RFC 3261 §18.3) or
#: ``datagram`` (UDP, and the message-oriented SCTP, WS and WSS).
TransportKind = Literal["stream", "datagram"]
MessageKind = Literal["request", "response"]

#: ``3261-8.2.6.2-to-tag``: the RFC number, the section, then a slug of lower-case words.
RULE_ID = re.compile(r"^(?P<rfc>\d{4})-(?P<section>\d+(?:\.\d+)*)-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)$")

_STREAM_TRANSPORTS = frozenset(("tcp", "tls"))
_RELIABLE_TRANSPORTS = frozenset(("tcp", "tls", "sctp", "tls-sctp", "ws", "wss"))


def transport_kind(transport: str) -> TransportKind:
    """``stream`` for TCP and TLS, ``datagram`` for everything message-oriented (UDP, SCTP, WS, WSS)."""
    return "stream" if transport.lower() in _STREAM_TRANSPORTS else "datagram"


def is_reliable(transport: str) -> bool:
    """Whether a transport is reliable (RFC 3261 §17: only unreliable transports retransmit requests)."""
    return transport.lower() in _RELIABLE_TRANSPORTS


@dataclass(frozen=True, slots=True)
class AppliesTo:
    """What a rule is about. An empty set means "any"."""

    #: ``request`` or ``response``; ``None`` for both (and for trace rules, which choose their own messages).
    kind: MessageKind | None = None
    #: Request methods; for a response, the method of the request it answers (its CSeq method).
    methods: frozenset[str] = frozenset()
    #: Inclusive status ranges, for responses.
    statuses: tuple[tuple[int, int], ...] = ()
    #: The roles of the device in which the rule applies (see :func:`effective_role` in the engine).
    roles: frozenset[str] = frozenset()
    #: ``stream`` and/or ``datagram``.
    transports: frozenset[str] = frozenset()

    def matches(self, msg: Request | Response, role: str | None, transport: str | None) -> bool:
        if self.kind == "request" and not isinstance(msg, Request):
            return False
        if self.kind == "response" and not isinstance(msg, Response):
            return False
        if self.methods:
            method = msg.method if isinstance(msg, Request) else (msg.cseq.method if msg.cseq else None)
            if method not in self.methods:
                return False
        if self.statuses and isinstance(msg, Response):
            if not any(low <= msg.status <= high for low, high in self.statuses):
                return False
        if not self.role_ok(role):
            return False
        if self.transports and transport is not None and transport not in self.transports:
            return False
        return True

    def role_ok(self, role: str | None) -> bool:
        if not self.roles or role is None:
            return True
        return role in self.roles or (role == "registrar" and "uas" in self.roles)

    def describe(self) -> str:
        """One line for the catalogue: ``responses to INVITE, 200-299; roles uas``."""
        parts = []
        kind = {"request": "requests", "response": "responses", None: "messages"}[self.kind]
        if self.methods:
            methods = ", ".join(sorted(self.methods))
            parts.append(f"{kind} to {methods}" if self.kind == "response" else f"{methods} {kind}")
        else:
            parts.append(kind)
        if self.statuses:
            parts.append(", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.statuses))
        if self.roles:
            parts.append("role " + "/".join(sorted(self.roles)))
        if self.transports:
            parts.append("over " + "/".join(sorted(self.transports)))
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Context:
    """What a rule may know besides the message itself.

    The engine fills ``request``, ``request_source``, ``transport`` and ``reliable`` per message from the trace;
    callers of :func:`check_message` give what they know. ``None`` means "unknown": rules that need it stay silent.
    """

    #: The request the message answers (the one the tester sent), for a response.
    request: Request | None = None
    #: The device's role. ``None``: inferred per message (a request makes it a UAC, a response a UAS).
    role: Role | None = None
    #: How the transport the message travelled on frames messages.
    transport: TransportKind | None = None
    #: Whether that transport is reliable (TCP, TLS, SCTP, WS); ``None`` when unknown.
    reliable: bool | None = None
    #: The (host, port) the answered request was sent from: what ``received`` and ``rport`` must say (RFC 3581).
    request_source: tuple[str, int] | None = None
    #: RFC 3261 timer values in seconds (§17.1.1.1, §17.1.2.2): T1 is the RTT estimate, T2 the retransmit cap.
    t1: float = 0.5
    t2: float = 4.0
    #: Timing tolerance of the retransmission rules: an interval passes when within ``max(tolerance,
    #: tolerance_ratio * expected)`` seconds of the expected value. Loopback traces need little; a loaded CI more.
    tolerance: float = 0.1
    tolerance_ratio: float = 0.25
    #: How long after a stimulus (a final response, a request retransmission) a missing reaction counts as missing.
    #: A rule that judges an absence stays silent when the trace ends sooner.
    response_wait: float = 2.0

    def allowed_error(self, expected: float) -> float:
        return max(self.tolerance, self.tolerance_ratio * expected)


@dataclass(frozen=True, slots=True)
class Issue:
    """What a predicate found: the problem in concrete terms, and the trace entries that show it (trace rules)."""

    message: str
    entries: tuple[MessageEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict on one thing the device did: which rule, where in which RFC, how bad, what, and the proof."""

    rule_id: str
    rfc: str
    section: str
    level: Level
    message: str
    #: ``seq`` numbers of the trace's MessageEntry items that show it (empty when checking a lone message).
    evidence: tuple[int, ...] = ()
    #: The messages themselves, for renderings that want to show them.
    messages: tuple[Request | Response, ...] = field(default=(), compare=False, repr=False)

    @property
    def citation(self) -> str:
        """``RFC 3261 §8.2.6.2``."""
        return f"{self.rfc} §{self.section}"

    @property
    def is_violation(self) -> bool:
        """A MUST-level finding: the device is not conformant. SHOULD and MAY findings are warnings."""
        return self.level is Level.MUST

    def record(self, trace: Trace) -> VerdictEntry:
        """Append this finding to a trace as a ``violation`` verdict."""
        return trace.record_verdict(self.rule_id, self.citation, self.level.value, "violation", self.message, self.evidence)

    def __str__(self) -> str:
        where = f" [entries {', '.join(map(str, self.evidence))}]" if self.evidence else ""
        return f"{self.level.value} {self.rule_id} ({self.citation}): {self.message}{where}"


#: The same thing under the name a report or a test may prefer.
Violation = Finding

MessagePredicate = Callable[[Request | Response, Context], Iterable[Issue]]
TracePredicate = Callable[[Sequence["MessageEntry"], Context], Iterable[Issue]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One normative statement of an RFC, as data, with the predicate that checks it."""

    id: str
    rfc: str
    section: str
    level: Level
    applies_to: AppliesTo
    #: The RFC sentence, quoted exactly.
    sentence: str
    #: One line: what the rule checks.
    summary: str
    predicate: MessagePredicate | TracePredicate
    #: ``message``: judges one message the device sent. ``trace``: judges several messages (sequences, timing).
    scope: Literal["message", "trace"] = "message"
    #: Where the check is a heuristic, where RFC-NOTES.md or the RFC's own tables disagree, what is not checked.
    note: str = ""
    heuristic: bool = False

    @property
    def citation(self) -> str:
        return f"{self.rfc} §{self.section}"

    def applies(self, msg: Request | Response, ctx: Context, role: str | None) -> bool:
        return self.scope == "message" and self.applies_to.matches(msg, role, ctx.transport)

    def finding(self, issue: Issue, evidence: Sequence[int] = (), messages: Sequence[Request | Response] = ()) -> Finding:
        seqs = tuple(evidence) + tuple(e.seq for e in issue.entries if e.seq not in evidence)
        msgs = tuple(messages) + tuple(e.message for e in issue.entries if e.message is not None)
        return Finding(self.id, self.rfc, self.section, self.level, issue.message, tuple(sorted(set(seqs))), msgs)

    def check(self, msg: Request | Response, ctx: Context) -> list[Finding]:
        """Run a message rule on one message (no applicability filter: see :func:`check_message` for that)."""
        if self.scope != "message":
            raise TypeError(f"{self.id} is a trace rule: use check_trace")
        predicate: MessagePredicate = self.predicate  # type: ignore[assignment]
        extra = (ctx.request,) if ctx.request is not None else ()
        return [self.finding(issue, (), (msg, *extra)) for issue in predicate(msg, ctx)]

    def check_entries(self, entries: Sequence[MessageEntry], ctx: Context) -> list[Finding]:
        """Run a trace rule on the message entries of a trace, in order."""
        if self.scope != "trace":
            raise TypeError(f"{self.id} is a message rule: use check")
        predicate: TracePredicate = self.predicate  # type: ignore[assignment]
        return [self.finding(issue) for issue in predicate(entries, ctx)]


def _rule(
    scope: Literal["message", "trace"],
    rule_id: str,
    level: Level,
    sentence: str,
    summary: str,
    applies_to: AppliesTo,
    note: str,
    heuristic: bool,
) -> Callable[[Callable[..., Iterable[Issue]]], Rule]:
    m = RULE_ID.fullmatch(rule_id)
    if m is None:
        raise ValueError(f"rule id {rule_id!r} does not follow RFC-section-slug")
    rfc = f"RFC {m.group('rfc')}"
    section = m.group("section")

    def wrap(fn: Callable[..., Iterable[Issue]]) -> Rule:
        text = " ".join(sentence.split())
        return Rule(rule_id, rfc, section, level, applies_to, text, summary, fn, scope, " ".join(note.split()), heuristic)

    return wrap


def message_rule(
    rule_id: str,
    level: Level,
    sentence: str,
    summary: str,
    applies_to: AppliesTo = AppliesTo(),
    *,
    note: str = "",
    heuristic: bool = False,
) -> Callable[[Callable[..., Iterable[Issue]]], Rule]:
    """Make a per-message :class:`Rule` of the decorated predicate ``(msg, ctx) -> Iterable[Issue]``.

    The RFC and the section are read from the id, so they cannot disagree with it.
    """
    return _rule("message", rule_id, level, sentence, summary, applies_to, note, heuristic)


def trace_rule(
    rule_id: str,
    level: Level,
    sentence: str,
    summary: str,
    applies_to: AppliesTo = AppliesTo(),
    *,
    note: str = "",
    heuristic: bool = False,
) -> Callable[[Callable[..., Iterable[Issue]]], Rule]:
    """Make a trace :class:`Rule` of the decorated predicate ``(entries, ctx) -> Iterable[Issue]``."""
    return _rule("trace", rule_id, level, sentence, summary, applies_to, note, heuristic)


def with_request(ctx: Context, request: Request | None) -> Context:
    return replace(ctx, request=request)
