"""Hypothesis strategies that generate text from the grammar.

Generation walks the rule's syntax tree and asks hypothesis for every choice
(which alternative, how many repetitions, which octet, which letter case), so
every value it produces matches the rule by construction and shrinks the way
hypothesis shrinks integers: towards the first alternative as written in the
grammar, the fewest repetitions, the first octet of a class and the literal's
own spelling.

Size is bounded two ways: an unbounded repetition (``*x``, ``1*x``) repeats
at most ``max_repeat`` times more than its minimum, and once a rule appears
more than ``max_recursion`` times on the current path (``comment`` inside
``comment``), the rest of that subtree takes the shortest derivation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from hypothesis import strategies as st

from ._abnf import Alt, Lit, Node, Range, Ref, Rep, Seq
from ._grammar import Grammar, from_octets, load_grammar
from ._headers import MANDATORY_REQUEST_HEADERS, MANDATORY_RESPONSE_HEADERS, header_rule

__all__ = [
    "OPTIONAL_HEADERS",
    "REQUEST_METHODS",
    "from_rule",
    "from_rule_bytes",
    "header",
    "sip_request",
    "sip_response",
]

_MAX_DEPTH = 80

# Methods a generated request uses by default: RFC 3261 section 25.1 plus
# PRACK (RFC 3262 section 10).  Pass methods=None to sip_request() for any
# grammar Method (extension-method tokens included).
REQUEST_METHODS = ("INVITE", "ACK", "OPTIONS", "BYE", "CANCEL", "REGISTER", "PRACK")

# Header fields sip_request()/sip_response() may add besides the mandatory
# ones (never Content-Length/-Type/-Encoding: those describe the body).
OPTIONAL_HEADERS = (
    "Contact",
    "Supported",
    "Require",
    "Allow",
    "User-Agent",
    "Server",
    "Subject",
    "Expires",
    "Accept",
    "Record-Route",
    "Route",
    "Date",
    "Timestamp",
    "Organization",
    "Priority",
    "RSeq",
    "RAck",
    "Warning",
    "Call-Info",
    "Retry-After",
)


def _char_order(c: str) -> tuple[int, int]:
    o = ord(c)
    if "a" <= c <= "z":
        return (0, o)
    if "0" <= c <= "9":
        return (1, o)
    if "A" <= c <= "Z":
        return (2, o)
    if 0x20 < o < 0x7F:
        return (3, o)
    return (4, o)


class _Generator:
    """Draws octet-space text for any node of one grammar."""

    def __init__(self, grammar: Grammar, max_repeat: int, max_recursion: int) -> None:
        self.grammar = grammar
        self.m = grammar.matcher
        self.rules = self.m.rules
        self.max_repeat = max_repeat
        self.max_recursion = max_recursion
        self.heights = _rule_heights(self.rules)
        self._ints: dict[tuple[int, int], st.SearchStrategy[int]] = {}
        self._chars: dict[frozenset[str], st.SearchStrategy[str]] = {}
        self._texts: dict[tuple[frozenset[str], int, int], st.SearchStrategy[str]] = {}
        self._bools = st.booleans()

    # strategies are cached: building them is much dearer than drawing
    def ints(self, lo: int, hi: int) -> st.SearchStrategy[int]:
        s = self._ints.get((lo, hi))
        if s is None:
            s = self._ints[(lo, hi)] = st.integers(lo, hi)
        return s

    def chars(self, cs: frozenset[str]) -> st.SearchStrategy[str]:
        s = self._chars.get(cs)
        if s is None:
            s = self._chars[cs] = st.sampled_from(sorted(cs, key=_char_order))
        return s

    def text(self, cs: frozenset[str], lo: int, hi: int) -> st.SearchStrategy[str]:
        s = self._texts.get((cs, lo, hi))
        if s is None:
            s = self._texts[(cs, lo, hi)] = st.text(alphabet=self.chars(cs), min_size=lo, max_size=hi)
        return s

    def height(self, node: Node) -> float:
        return _node_height(node, self.heights)

    def rule(self, draw: st.DrawFn, key: str) -> str:
        return self.node(draw, Ref(key.lower()), {}, False, 0)

    def node(self, draw: st.DrawFn, node: Node, active: dict[str, int], forced: bool, depth: int) -> str:
        cs = self.m.charset(node)
        if cs is not None:
            return draw(self.chars(cs))
        if isinstance(node, Lit):
            return self.literal(draw, node, forced)
        if isinstance(node, Ref):
            n = active.get(node.key, 0)
            sub_forced = forced or n >= self.max_recursion or depth >= _MAX_DEPTH
            active[node.key] = n + 1
            try:
                return self.node(draw, self.rules[node.key].node, active, sub_forced, depth + 1)
            finally:
                active[node.key] = n
        if isinstance(node, Seq):
            return "".join(self.node(draw, item, active, forced, depth) for item in node.items)
        if isinstance(node, Alt):
            items: Sequence[Node] = node.items
            if forced:
                best = min(self.height(it) for it in items)
                items = [it for it in items if self.height(it) == best]
            k = draw(self.ints(0, len(items) - 1)) if len(items) > 1 else 0
            return self.node(draw, items[k], active, forced, depth)
        if isinstance(node, Rep):
            lo = node.min
            hi = lo if forced else lo + self.max_repeat
            if node.max is not None:
                hi = min(hi, node.max)
            item_cs = self.m.charset(node.item)
            if item_cs is not None:
                return draw(self.text(item_cs, lo, hi))
            count = draw(self.ints(lo, hi)) if hi > lo else lo
            return "".join(self.node(draw, node.item, active, forced, depth) for _ in range(count))
        if isinstance(node, Range):  # pragma: no cover - ranges are char classes
            return chr(node.lo)
        raise TypeError(f"not a grammar node: {node!r}")

    def literal(self, draw: st.DrawFn, node: Lit, forced: bool) -> str:
        text = node.text
        if node.case_sensitive or forced or not draw(self._bools):
            return text
        letters = [i for i, c in enumerate(text) if c.isalpha()]
        mask = draw(self.ints(0, (1 << len(letters)) - 1))
        out = list(text)
        for bit, i in enumerate(letters):
            out[i] = out[i].upper() if mask >> bit & 1 else out[i].lower()
        return "".join(out)


def _rule_heights(rules) -> dict[str, float]:
    """Height of the shortest derivation tree of every rule (fixpoint; inf if none)."""
    inf = float("inf")
    h = {k: inf for k in rules}
    changed = True
    while changed:
        changed = False
        for k, rd in rules.items():
            v = 1 + _node_height(rd.node, h)
            if v < h[k]:
                h[k] = v
                changed = True
    return h


def _node_height(node: Node, h: dict[str, float]) -> float:
    if isinstance(node, Lit | Range):
        return 0
    if isinstance(node, Ref):
        return h.get(node.key, float("inf"))
    if isinstance(node, Seq):
        return max((_node_height(i, h) for i in node.items), default=0)
    if isinstance(node, Alt):
        return min(_node_height(i, h) for i in node.items)
    if isinstance(node, Rep):
        return 0 if node.min == 0 else _node_height(node.item, h)
    return float("inf")


@functools.lru_cache(maxsize=16)
def _generator(grammar: Grammar, max_repeat: int, max_recursion: int) -> _Generator:
    return _Generator(grammar, max_repeat, max_recursion)


@functools.lru_cache(maxsize=1024)
def _octets(name: str, max_repeat: int, max_recursion: int, grammar: Grammar | None) -> st.SearchStrategy[str]:
    g = grammar or load_grammar()
    key = g.canonical(name).lower()
    gen = _generator(g, max_repeat, max_recursion)

    @st.composite
    def octets(draw: st.DrawFn) -> str:
        return gen.rule(draw, key)

    return octets()


def from_rule(
    name: str, *, max_repeat: int = 3, max_recursion: int = 2, grammar: Grammar | None = None
) -> st.SearchStrategy[str]:
    """Values of grammar rule ``name``; ``validate(name, value)`` holds for each.

    The value is text as it goes on the wire: encode it with
    ``value.encode("utf-8", "surrogateescape")`` (the grammar allows octet
    sequences that are not valid UTF-8; those come back as lone surrogates).
    """
    return _octets(name, max_repeat, max_recursion, grammar).map(from_octets)


def from_rule_bytes(
    name: str, *, max_repeat: int = 3, max_recursion: int = 2, grammar: Grammar | None = None
) -> st.SearchStrategy[bytes]:
    """Like :func:`from_rule`, as wire octets."""
    return _octets(name, max_repeat, max_recursion, grammar).map(lambda s: s.encode("latin-1"))


def header(name: str, *, max_repeat: int = 2, grammar: Grammar | None = None) -> st.SearchStrategy[str]:
    """A whole header field (name, colon, value; no CRLF) for a header name.

    ``name`` may be a full or compact name in any case ("Via", "v"); unknown
    names give ``extension-header`` values.  The field name in the value may
    itself be the compact form or any letter case, as the grammar allows.
    """
    return from_rule(header_rule(name), max_repeat=max_repeat, grammar=grammar)


def _header_octets(name: str, max_repeat: int, grammar: Grammar | None) -> st.SearchStrategy[str]:
    return _octets(header_rule(name), max_repeat, 2, grammar)


def _body(grammar: Grammar | None) -> st.SearchStrategy[tuple[str, bytes]]:
    """(Content-Type value, body): empty, SDP (RFC 4566 section 9) or opaque octets."""
    return st.one_of(
        st.just(("", b"")),
        _octets("session-description", 1, 1, grammar).map(lambda s: ("application/sdp", s.encode("latin-1"))),
        st.binary(min_size=1, max_size=32).map(lambda b: ("application/octet-stream", b)),
    )


def _assemble(start: str, fields: list[str], body: bytes) -> bytes:
    head = start + "".join(f + "\r\n" for f in fields) + "\r\n"
    return head.encode("latin-1") + body


@st.composite
def _request(
    draw: st.DrawFn,
    methods: tuple[str, ...] | None,
    with_body: bool,
    max_repeat: int,
    grammar: Grammar | None,
) -> bytes:
    if methods:
        method = draw(st.sampled_from(methods))
    else:
        method = draw(_octets("Method", max_repeat, 2, grammar))
    uri = draw(
        st.one_of(
            _octets("SIP-URI", max_repeat, 2, grammar),
            _octets("SIPS-URI", max_repeat, 2, grammar),
            _octets("absoluteURI", max_repeat, 2, grammar),
        )
    )
    start = f"{method} {uri} SIP/2.0\r\n"
    return draw(_fields_and_body(start, method, MANDATORY_REQUEST_HEADERS, with_body, max_repeat, grammar))


@st.composite
def _response(
    draw: st.DrawFn,
    codes: tuple[int, ...] | None,
    with_body: bool,
    max_repeat: int,
    grammar: Grammar | None,
) -> bytes:
    if codes:
        code = str(draw(st.sampled_from(codes)))
    else:
        code = draw(_octets("Status-Code", max_repeat, 2, grammar))
    reason = draw(_octets("Reason-Phrase", max_repeat, 2, grammar))
    method = draw(st.one_of(st.sampled_from(REQUEST_METHODS), _octets("Method", max_repeat, 2, grammar)))
    start = f"SIP/2.0 {code} {reason}\r\n"
    return draw(_fields_and_body(start, method, MANDATORY_RESPONSE_HEADERS, with_body, max_repeat, grammar))


@st.composite
def _fields_and_body(
    draw: st.DrawFn,
    start: str,
    method: str,
    mandatory: tuple[str, ...],
    with_body: bool,
    max_repeat: int,
    grammar: Grammar | None,
) -> bytes:
    content_type, body = draw(_body(grammar)) if with_body else ("", b"")
    fields: list[str] = []
    for name in mandatory:
        if name == "CSeq":
            # RFC 3261 section 8.1.1.5: the method matches the request's and
            # the number is below 2**31.
            fields.append(f"CSeq: {draw(st.integers(0, 2**31 - 1))} {method}")
        elif name == "Content-Length":
            fields.append(f"{draw(st.sampled_from(('Content-Length', 'l')))}: {len(body)}")
        else:
            fields.append(draw(_header_octets(name, max_repeat, grammar)))
    if content_type:
        fields.append(f"Content-Type: {content_type}")
    extra = draw(st.lists(st.sampled_from(OPTIONAL_HEADERS), max_size=3, unique=True))
    fields.extend(draw(_header_octets(name, max_repeat, grammar)) for name in extra)
    fields = list(draw(st.permutations(fields)))
    return _assemble(start, fields, body)


def sip_request(
    *,
    methods: Sequence[str] | None = REQUEST_METHODS,
    body: bool = True,
    max_repeat: int = 2,
    grammar: Grammar | None = None,
) -> st.SearchStrategy[bytes]:
    """Whole requests as wire bytes (CRLF line ends).

    Request-Line with SIP/2.0, then Via, Max-Forwards, To, From, Call-ID,
    CSeq (whose method is the request's) and a Content-Length equal to the
    body length, plus up to three of :data:`OPTIONAL_HEADERS`, in any order.
    The body is empty, an SDP session description (with Content-Type
    application/sdp) or opaque octets.  Every message matches ``SIP-message``.
    """
    return _request(tuple(methods) if methods else None, body, max_repeat, grammar)


def sip_response(
    *,
    codes: Sequence[int] | None = None,
    body: bool = True,
    max_repeat: int = 2,
    grammar: Grammar | None = None,
) -> st.SearchStrategy[bytes]:
    """Whole responses as wire bytes: Status-Line, Via, To, From, Call-ID, CSeq, Content-Length.

    ``codes`` limits the status codes (default: any ``Status-Code`` of the
    grammar, extension codes included).
    """
    return _response(tuple(codes) if codes else None, body, max_repeat, grammar)
