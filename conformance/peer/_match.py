"""Matchers: what a test expects to receive, and why a message is not it.

``request("BYE")``, ``response(180)``, ``response("2xx", method="INVITE")``, ``response(call_id=..., branch=...)``.
A matcher says what it wants (:meth:`Matcher.describe`) and, for any message, what differs
(:meth:`Matcher.difference`), so a failed expectation can say "a 486 arrived where a 180 was expected".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..sip import Message, Request, Response

__all__ = ["Matcher", "request", "response", "any_message", "StatusSpec"]

#: A status code, a class such as ``"2xx"``, a range, or a tuple of those.
StatusSpec = int | str | range | tuple[int | str | range, ...]


def _status_ok(spec: StatusSpec, status: int) -> bool:
    if isinstance(spec, tuple):
        return any(_status_ok(s, status) for s in spec)
    if isinstance(spec, int):
        return status == spec
    if isinstance(spec, range):
        return status in spec
    if len(spec) == 3 and spec[0].isdigit() and spec[1:].lower() == "xx":
        return status // 100 == int(spec[0])
    raise ValueError(f"status {spec!r}: give a code (180), a class ('2xx'), a range or a tuple of those")


def _status_text(spec: StatusSpec) -> str:
    if isinstance(spec, tuple):
        return " or ".join(_status_text(s) for s in spec)
    if isinstance(spec, range):
        return f"{spec.start}-{spec.stop - 1}"
    return str(spec)


@dataclass(frozen=True, slots=True)
class Matcher:
    """What a test expects. Build with :func:`request`, :func:`response` or :func:`any_message`."""

    kind: str  # "request" | "response" | "any"
    method: str | None = None
    status: StatusSpec | None = None
    call_id: str | None = None
    branch: str | None = None
    cseq: int | None = None
    from_tag: str | None = None
    to_tag: str | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    predicate: Callable[[Message], bool] | None = None
    predicate_text: str = ""

    def difference(self, msg: Message | None) -> list[str]:
        """Why ``msg`` does not match (empty when it does)."""
        if msg is None:
            return ["the bytes could not be parsed as a SIP message"]
        out: list[str] = []
        if self.kind == "request" and not isinstance(msg, Request):
            out.append(f"a response {msg.start_line!r} arrived, a request was expected")
            return out
        if self.kind == "response" and not isinstance(msg, Response):
            out.append(f"a request {msg.start_line!r} arrived, a response was expected")
            return out
        if self.method is not None:
            if isinstance(msg, Request):
                if msg.method != self.method:
                    out.append(f"method is {msg.method}, expected {self.method}")
            else:
                got = msg.cseq.method if msg.cseq else None
                if got != self.method:
                    out.append(f"CSeq method is {got}, expected {self.method}")
        if self.status is not None and isinstance(msg, Response) and not _status_ok(self.status, msg.status):
            out.append(f"status is {msg.status} {msg.reason}, expected {_status_text(self.status)}")
        if self.call_id is not None and msg.call_id != self.call_id:
            out.append(f"Call-ID is {msg.call_id!r}, expected {self.call_id!r}")
        if self.branch is not None:
            got_branch = msg.via[0].branch if msg.via else None
            if got_branch != self.branch:
                out.append(f"top Via branch is {got_branch!r}, expected {self.branch!r}")
        if self.cseq is not None:
            got_cseq = msg.cseq.number if msg.cseq else None
            if got_cseq != self.cseq:
                out.append(f"CSeq number is {got_cseq}, expected {self.cseq}")
        if self.from_tag is not None:
            got_tag = msg.from_.tag if msg.from_ else None
            if got_tag != self.from_tag:
                out.append(f"From tag is {got_tag!r}, expected {self.from_tag!r}")
        if self.to_tag is not None:
            got_tag = msg.to.tag if msg.to else None
            if got_tag != self.to_tag:
                out.append(f"To tag is {got_tag!r}, expected {self.to_tag!r}")
        for name, value in self.headers:
            have = msg.header(name)
            if have is None:
                out.append(f"no {name} header")
            elif value is not None and have != value:
                out.append(f"{name} is {have!r}, expected {value!r}")
        if self.predicate is not None and not self.predicate(msg):
            out.append(f"does not satisfy: {self.predicate_text or 'the predicate'}")
        return out

    def matches(self, msg: Message | None) -> bool:
        return not self.difference(msg)

    def describe(self) -> str:
        parts: list[str] = []
        if self.kind == "request":
            parts.append(f"{self.method or 'any'} request")
        elif self.kind == "response":
            status = _status_text(self.status) if self.status is not None else "any"
            parts.append(f"{status} response" + (f" to {self.method}" if self.method else ""))
        else:
            parts.append("any message")
        for label, value in (
            ("Call-ID", self.call_id),
            ("branch", self.branch),
            ("CSeq", self.cseq),
            ("From tag", self.from_tag),
            ("To tag", self.to_tag),
        ):
            if value is not None:
                parts.append(f"{label} {value}")
        parts += [f"with {n}" + (f": {v}" if v is not None else "") for n, v in self.headers]
        if self.predicate is not None:
            parts.append(f"where {self.predicate_text or 'predicate holds'}")
        return ", ".join(parts)

    def where(self, predicate: Callable[[Message], bool], text: str) -> Matcher:
        """The same matcher with one more condition, described by ``text`` in failure messages."""
        if self.predicate is None:
            return _replace(self, predicate=predicate, predicate_text=text)
        first, first_text = self.predicate, self.predicate_text
        return _replace(self, predicate=lambda m: first(m) and predicate(m), predicate_text=f"{first_text} and {text}")

    def for_transaction(self, req: Request) -> Matcher:
        """Narrowed to responses of ``req``'s transaction (RFC 3261 §17.1.3: top Via branch and CSeq method)."""
        return _replace(
            self,
            branch=req.via[0].branch if req.via else None,
            method=self.method or (req.cseq.method if req.cseq else None),
            call_id=req.call_id,
        )

    def __str__(self) -> str:
        return self.describe()


def _replace(m: Matcher, **changes: object) -> Matcher:
    from dataclasses import replace

    return replace(m, **changes)  # type: ignore[arg-type]


def _headers(with_headers: Iterable[str] | dict[str, str | None] | None) -> tuple[tuple[str, str | None], ...]:
    if with_headers is None:
        return ()
    if isinstance(with_headers, dict):
        return tuple(with_headers.items())
    return tuple((h, None) for h in with_headers)


def request(
    method: str | None = None,
    *,
    call_id: str | None = None,
    branch: str | None = None,
    cseq: int | None = None,
    from_tag: str | None = None,
    to_tag: str | None = None,
    with_headers: Iterable[str] | dict[str, str | None] | None = None,
) -> Matcher:
    """A request, optionally of one method and dialog/transaction."""
    return Matcher("request", method, None, call_id, branch, cseq, from_tag, to_tag, _headers(with_headers))


def response(
    status: StatusSpec | None = None,
    *,
    method: str | None = None,
    call_id: str | None = None,
    branch: str | None = None,
    cseq: int | None = None,
    to_tag: str | None = None,
    with_headers: Iterable[str] | dict[str, str | None] | None = None,
) -> Matcher:
    """A response: ``response(180)``, ``response("2xx", method="INVITE")``, ``response(range(300, 700))``."""
    if status is not None:
        _status_ok(status, 100)  # validate the spec now, not at the first message
    return Matcher("response", method, status, call_id, branch, cseq, None, to_tag, _headers(with_headers))


def any_message() -> Matcher:
    return Matcher("any")
