"""Helpers the predicates share: header comparison per RFC 3261, option tags, and reading a trace by transaction."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..sip import NameAddr, Request, Response, Via
from ..trace import MessageEntry

__all__ = [
    "norm_uri",
    "same_name_addr",
    "param_map",
    "via_equal",
    "option_tags",
    "raw_cseq",
    "Txn",
    "TraceView",
]

_RE_CSEQ_LOOSE = re.compile(r"^\s*(\d+)\s+(\S+)\s*$")
#: Via parameters a server adds to the top Via of a request before answering it (RFC 3261 §18.2.1, RFC 3581 §4).
SERVER_VIA_PARAMS = frozenset(("received", "rport"))


def norm_uri(text: str) -> str:
    """A URI with the parts RFC 3261 §19.1.4 compares case-insensitively (scheme, host) lower-cased.

    This is an approximation of §19.1.4 equality: parameters are compared as written, escapes are not resolved.
    """
    colon = text.find(":")
    if colon <= 0:
        return text
    scheme, rest = text[:colon].lower(), text[colon + 1 :]
    at = rest.rfind("@")
    user, hostpart = (rest[: at + 1], rest[at + 1 :]) if at >= 0 else ("", rest)
    cut = len(hostpart)
    for sep in ";?":
        i = hostpart.find(sep)
        if i >= 0:
            cut = min(cut, i)
    return f"{scheme}:{user}{hostpart[:cut].lower()}{hostpart[cut:]}"


def param_map(params: Iterable[tuple[str, str | None]], skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """Header parameters by lower-case name, values lower-cased (RFC 3261 §7.3.1: parameter values are
    case-insensitive unless stated otherwise); flags map to ``""``."""
    out: dict[str, str] = {}
    for name, value in params:
        key = name.lower()
        if key not in skip:
            out[key] = (value or "").lower()
    return out


def same_name_addr(a: NameAddr, b: NameAddr) -> bool:
    """RFC 3261 §20.20: "Two From header fields are equivalent if their URIs match, and their parameters match."
    The display name and angle brackets do not count."""
    return norm_uri(a.uri_text) == norm_uri(b.uri_text) and param_map(a.params) == param_map(b.params)


def via_equal(a: Via, b: Via, *, top: bool = False) -> bool:
    """Two via-parms are equal: sent-protocol and sent-by (case-insensitive), parameters. For the top Via, the
    ``received`` and ``rport`` a server adds (RFC 3261 §18.2.1, RFC 3581 §4) are not compared."""
    skip = SERVER_VIA_PARAMS if top else frozenset()
    return (
        (a.protocol.upper(), a.version, a.transport.upper(), a.host.lower(), a.port)
        == (b.protocol.upper(), b.version, b.transport.upper(), b.host.lower(), b.port)
        and param_map(a.params, skip) == param_map(b.params, skip)
    )


def option_tags(msg: Request | Response, header: str) -> set[str]:
    """The option tags of Require / Supported / Unsupported / Proxy-Require, lower-cased, every line read."""
    tags: set[str] = set()
    for value in msg.header_values(header):
        for part in value.split(","):
            tag = part.strip(" \t").lower()
            if tag:
                tags.add(tag)
    return tags


def raw_cseq(msg: Request | Response) -> tuple[int, str] | None:
    """CSeq read loosely from the raw header (the typed view is ``None`` when the number is out of range)."""
    value = msg.header("CSeq")
    if value is None:
        return None
    m = _RE_CSEQ_LOOSE.match(value)
    return (int(m.group(1)), m.group(2)) if m else None


def _sent_by(msg: Request | Response) -> str:
    """The top Via's sent-by, lower-cased: part of the §17.2.3 server-transaction match ("the sent-by value in the
    top Via of the request is equal to the one in the request that created the transaction")."""
    via = msg.via[0] if msg.via else None
    if via is None:
        return ""
    return f"{via.host.lower()}:{via.port if via.port is not None else ''}"


def request_key(msg: Request) -> tuple[str, str] | None:
    """The transaction a request belongs to, RFC 3261 §17.2.3: top-Via branch and method (ACK belongs to INVITE).

    Without a magic-cookie branch (RFC 2543), Call-ID and CSeq stand in for the branch.
    """
    method = "INVITE" if msg.method == "ACK" else msg.method
    branch = msg.transaction_branch
    if branch and branch.startswith("z9hG4bK"):
        return branch, method
    cseq = raw_cseq(msg)
    return f"{msg.call_id}/{cseq[0] if cseq else ''}", method


def response_key(msg: Response) -> tuple[str, str] | None:
    """The client transaction a response belongs to, RFC 3261 §17.1.3: top-Via branch and CSeq method."""
    cseq = raw_cseq(msg)
    if cseq is None:
        return None
    branch = msg.transaction_branch
    if branch and branch.startswith("z9hG4bK"):
        return branch, cseq[1]
    return f"{msg.call_id}/{cseq[0]}", cseq[1]


@dataclass(frozen=True, slots=True)
class Txn:
    """One transaction as the trace shows it: the requests (first and retransmissions) and the responses."""

    key: tuple[str, str]
    #: The side that sent the request: ``tester`` (the device is the server) or ``device`` (the device is client).
    client: str
    requests: tuple[MessageEntry, ...]
    responses: tuple[MessageEntry, ...]

    @property
    def request(self) -> Request:
        msg = self.requests[0].message
        assert isinstance(msg, Request)
        return msg

    @property
    def method(self) -> str:
        return self.key[1]


class TraceView:
    """The message entries of a trace, read once and indexed by transaction.

    Entries sent by the tester have ``direction == "sent"``; what the device sent is ``"received"``.
    """

    def __init__(self, entries: Sequence[MessageEntry]) -> None:
        self.entries = list(entries)
        self.end = max((e.time for e in self.entries), default=0.0)
        reqs: dict[tuple[str, str, str, str], list[MessageEntry]] = {}
        # Grouped by side, branch, method and the top Via's sent-by (§17.2.3 matches on all three).
        resps: dict[tuple[str, str, str, str], list[MessageEntry]] = {}
        order: list[tuple[str, str, str, str]] = []
        for e in self.entries:
            msg = e.message
            if msg is None:
                continue
            side = "tester" if e.direction == "sent" else "device"
            if isinstance(msg, Request):
                if msg.method == "ACK":
                    continue
                rk = request_key(msg)
                if rk is None:
                    continue
                k = (side, *rk, _sent_by(msg))
                if k not in reqs:
                    reqs[k] = []
                    order.append(k)
                reqs[k].append(e)
            else:
                sk = response_key(msg)
                if sk is None:
                    continue
                # a response sent by the device answers a request the tester sent, and the reverse
                client = "tester" if side == "device" else "device"
                resps.setdefault((client, *sk, _sent_by(msg)), []).append(e)
        self.txns = [
            Txn((k[1], k[2]), k[0], tuple(reqs[k]), tuple(resps.get(k, ()))) for k in order
        ]
        self._request_of: dict[int, MessageEntry] = {}
        for txn in self.txns:
            for r in txn.responses:
                before = [q for q in txn.requests if q.seq < r.seq]
                self._request_of[r.seq] = before[-1] if before else txn.requests[0]
        # A response whose CSeq method was changed matches no transaction key (§17.1.3 needs branch and method);
        # it still answers the request with its branch, and must be judged against it (so that the rule on the
        # copied CSeq can fire): pair it by branch alone with the latest request before it.
        by_branch: dict[tuple[str, str], list[MessageEntry]] = {}
        for k in order:
            for q in reqs[k]:
                branch = q.message.via[0].branch if q.message is not None and q.message.via else None
                if branch:
                    by_branch.setdefault((k[0], branch), []).append(q)
        for e in self.entries:
            msg = e.message
            if not isinstance(msg, Response) or e.seq in self._request_of or not msg.via or not msg.via[0].branch:
                continue
            client = "tester" if e.direction == "received" else "device"
            candidates = [q for q in by_branch.get((client, msg.via[0].branch), ()) if q.seq < e.seq]
            if candidates:
                self._request_of[e.seq] = max(candidates, key=lambda q: q.seq)

    def request_for(self, response: MessageEntry) -> MessageEntry | None:
        """The entry of the request a response answers (the latest copy sent before it)."""
        return self._request_of.get(response.seq)

    def server_txns(self) -> list[Txn]:
        """Transactions in which the device is the server (the tester sent the request)."""
        return [t for t in self.txns if t.client == "tester"]

    def client_txns(self) -> list[Txn]:
        """Transactions in which the device is the client (it sent the request)."""
        return [t for t in self.txns if t.client == "device"]

    def device(self) -> list[MessageEntry]:
        return [e for e in self.entries if e.direction == "received" and e.message is not None]

    def tester(self) -> list[MessageEntry]:
        return [e for e in self.entries if e.direction == "sent" and e.message is not None]

    def acks(self, side: str) -> list[MessageEntry]:
        direction = "sent" if side == "tester" else "received"
        return [
            e
            for e in self.entries
            if e.direction == direction and isinstance(e.message, Request) and e.message.method == "ACK"
        ]


def to_tag(msg: Request | Response) -> str | None:
    to = msg.to
    return to.tag if to is not None else None


def from_tag(msg: Request | Response) -> str | None:
    fr = msg.from_
    return fr.tag if fr is not None else None


def fmt_time(t: float) -> str:
    return f"{t:.3f} s"
