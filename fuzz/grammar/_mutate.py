"""Grammar-aware near misses: values that almost match a rule.

A valid value is first derived from its rule (:meth:`Grammar.derive`), so the
mutations can aim at the parts the grammar names -- the ``port`` of a
``hostport``, the ``token`` of a ``tag-param``, the ``IPv6reference`` of a
``host`` -- and say which part they changed.  A value that does not match is
still mutated, lexically.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ._abnf import Lit, Range, Ref, iter_nodes
from ._grammar import Grammar, from_octets, load_grammar, to_octets
from ._match import Span

__all__ = [
    "BOUNDARY_INTEGERS",
    "MUTATION_KINDS",
    "Mutation",
    "near_misses",
]

#: Every label :func:`near_misses` uses, in the order it emits them.
MUTATION_KINDS = (
    "empty",  # the value, or one named part of it, emptied
    "truncated",  # the value cut short
    "int-boundary",  # a digit run replaced by a boundary integer
    "overlong",  # a token stretched to 256 .. 65537 octets
    "bad-char",  # an octet the part's rule cannot contain
    "whitespace",  # white space or a line break where the grammar has none
    "delimiter-missing",  # one of : ; @ < > " / = , [ ] ? & removed
    "delimiter-doubled",  # one of them doubled
    "bad-escape",  # a broken %HEX escape
    "wrong-case",  # letter case flipped (where a rule is case-sensitive, first)
    "ipv6-form",  # a malformed IPv6 reference in a host
    "boofuzz-string",  # a value from boofuzz's String fuzz library
)

#: Integers put in place of a number, most telling first: zero, negative,
#: the 31-bit limit RFC 3261 sets for CSeq (section 8.1.1.5) and RFC 3262 for
#: RSeq, the 32-bit limit, far too large, then the rest.
BOUNDARY_INTEGERS = (
    "0",
    "-1",
    str(2**31 - 1),
    str(2**31),
    str(2**32),
    "9" * 40,
    str(2**32 - 1),
    str(2**64),
    "0" * 20 + "1",
)
OVERLONG_LENGTHS = (256, 1025, 8193, 65537)
BAD_CHARS = (
    "\x00",
    "\x01",
    "\r",
    "\n",
    "\x7f",
    "\x80",
    "\xff",
    "\xc0\x80",  # overlong UTF-8 NUL
    " ",
    "\t",
    '"',
    "<",
    ">",
    "@",
    ";",
    ":",
    ",",
    "/",
    "\\",
    "%",
    "[",
    "]",
    "{",
    "}",
)
DELIMITERS = ':;@<>"/=,[]?&'
BAD_ESCAPES = ("%", "%G0", "%0", "%%", "%0g", "%zz", "%-1")
IPV6_FORMS = (
    "2001:db8::1",  # unbracketed
    "[2001:db8:::1]",  # three colons
    "[2001:db8:::192.0.2.1]",  # RFC 5118 section 4.10
    "[2001:db8::g1]",  # bad hex digit
    "[2001:db8::12345]",  # five hex digits in a group
    "[1:2:3:4:5:6:7:8:9]",  # nine groups
    "[2001:db8::1",  # no closing bracket
    "2001:db8::1]",  # no opening bracket
    "[::ffff:256.0.2.1]",  # IPv4 octet out of range
    "[]",
    "[2001:db8::1%25eth0]",  # zone id (RFC 6874), not in RFC 3261
)
_HOST_RULES = frozenset({"host", "ipv6reference", "ipv6address", "ipv4address", "hostname", "ipv6reference-rfc3261"})
_NUMBER = re.compile(r"(?<![A-Za-z0-9])[0-9]+(?![A-Za-z0-9])")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


@dataclass(frozen=True, slots=True)
class Mutation:
    """One near miss: ``value`` was made from a value of ``rule`` by a ``kind`` change to ``target``.

    ``target`` names the sub-rule whose text was changed ("" for the whole value).
    """

    rule: str
    kind: str
    value: str
    target: str = ""

    @property
    def data(self) -> bytes:
        """The value as wire octets."""
        return self.value.encode("utf-8", "surrogateescape")


class _RuleFacts:
    """Per-grammar facts the mutators use: which octets a rule can contain, which rules are case-sensitive."""

    def __init__(self, grammar: Grammar) -> None:
        self.m = grammar.matcher
        self.rules = self.m.rules
        self._allowed: dict[str, frozenset[str]] = {}
        self._closures: dict[str, frozenset[str]] = {}
        self.case_sensitive = frozenset(k for k in self.rules if self._is_case_sensitive(k))

    def closure(self, key: str) -> frozenset[str]:
        """Keys of every rule reachable from ``key`` (itself included)."""
        key = key.lower()
        if key not in self._closures:
            seen: set[str] = set()
            stack = [key]
            while stack:
                k = stack.pop()
                if k in seen or k not in self.rules:
                    continue
                seen.add(k)
                stack.extend(n.key for n in iter_nodes(self.rules[k].node) if isinstance(n, Ref))
            self._closures[key] = frozenset(seen)
        return self._closures[key]

    def uses_escapes(self, key: str) -> bool:
        """Whether the rule's text may hold %HEX escapes (RFC 3261 "escaped")."""
        return "escaped" in self.closure(key)

    def allowed(self, key: str) -> frozenset[str]:
        """Every octet that can appear in a match of rule ``key``."""
        key = key.lower()
        if key not in self._allowed:
            out: set[str] = set()
            for k in self.closure(key):
                for n in iter_nodes(self.rules[k].node):
                    if isinstance(n, Range):
                        out.update(chr(c) for c in range(n.lo, n.hi + 1))
                    elif isinstance(n, Lit):
                        out.update(n.text if n.case_sensitive else n.text.lower() + n.text.upper())
            self._allowed[key] = frozenset(out)
        return self._allowed[key]

    def _is_case_sensitive(self, key: str) -> bool:
        """A rule whose own definition holds a letter but not its other case.

        Looks at the octets the definition names directly (ranges, one-octet
        literals, one-octet rules such as LHEX) and at case-sensitive
        literals (%x-strings such as INVITEm).
        """
        octets: set[str] = set()
        for n in iter_nodes(self.rules[key].node):
            if isinstance(n, Lit) and n.case_sensitive and len(n.text) > 1 and any(c.isalpha() for c in n.text):
                return True
            cs = None
            if isinstance(n, Range | Lit):
                cs = self.m.charset(n)
            elif isinstance(n, Ref) and n.key in self.rules:
                cs = self.m.rule_charset(n.key)
            if cs:
                octets |= cs
        return any(c.isascii() and c.isalpha() and c.swapcase() not in octets for c in octets)


@functools.lru_cache(maxsize=8)
def _facts(grammar: Grammar) -> _RuleFacts:
    return _RuleFacts(grammar)


@functools.lru_cache(maxsize=1)
def _boofuzz_library() -> tuple[str, ...]:
    """boofuzz's String fuzz library, as octet-space text, without the megabyte-long entries."""
    try:
        from boofuzz.primitives import String
    except ImportError:  # pragma: no cover - boofuzz is a dependency
        return ()
    lib = getattr(String, "_fuzz_library", ())
    return tuple(to_octets(v) for v in lib if isinstance(v, str) and len(v) <= 1024)


def _is_word(text: str) -> bool:
    return any(c.isalnum() for c in text)


def near_misses(
    rule: str,
    value: str | bytes,
    rng: random.Random,
    *,
    per_kind: int = 6,
    invalid_only: bool = False,
    grammar: Grammar | None = None,
) -> list[Mutation]:
    """Values that almost match ``rule``, made from ``value`` (ideally a valid one).

    At most ``per_kind`` mutations of each kind (:data:`MUTATION_KINDS`),
    chosen with ``rng`` so a seed reproduces the list.  Not every near miss
    fails validation: a boundary integer or an overlong token is usually
    still grammatical, and is there to break the *receiver*; pass
    ``invalid_only=True`` to keep only the values the rule rejects.
    """
    g = grammar or load_grammar()
    name = g.canonical(rule)
    facts = _facts(g)
    s = to_octets(value)
    root = g.derive(name, s.encode("latin-1"))
    spans = [sp for sp in root.walk()][1:] if root is not None else []
    words = _word_spans(s, spans) or [Span(name, 0, len(s))]
    # Parts that cannot hold white space: where a space or a control is a near miss.
    tight = [sp for sp in words if " " not in facts.allowed(sp.rule)] or words

    found: dict[str, list[tuple[str, str]]] = {k: [] for k in MUTATION_KINDS}

    def emit(kind: str, new: str, target: str = "") -> None:
        if new != s:
            found[kind].append((new, target))

    def splice(sp: Span, new: str) -> str:
        return s[: sp.start] + new + s[sp.end :]

    # empty -----------------------------------------------------------------
    emit("empty", "")
    for sp in _pick(rng, [sp for sp in spans if sp.end > sp.start], 4):
        emit("empty", splice(sp, ""), sp.rule)
    # truncated -------------------------------------------------------------
    for p in sorted({1, len(s) // 2, len(s) - 1}):
        if 0 < p < len(s):
            emit("truncated", s[:p])
    # int-boundary ------------------------------------------------------------
    numbers = list(_NUMBER.finditer(s))
    for n_run, m in enumerate(_pick(rng, numbers, 2)):
        target = _innermost(spans, m.start(), m.end())
        values = BOUNDARY_INTEGERS if n_run == 0 else rng.sample(BOUNDARY_INTEGERS, 3)
        for n in values:
            emit("int-boundary", s[: m.start()] + n + s[m.end() :], target)
    # overlong ----------------------------------------------------------------
    for sp in _pick(rng, words, 2):
        text = s[sp.start : sp.end] or "a"
        for length in OVERLONG_LENGTHS:
            emit("overlong", splice(sp, (text * (length // len(text) + 1))[:length]), sp.rule)
    # bad-char ----------------------------------------------------------------
    for sp in _pick(rng, tight, 3):
        allowed = facts.allowed(sp.rule)
        palette = [c for c in BAD_CHARS if not all(ch in allowed for ch in c)] or ["\x00", "\r", "\n"]
        for c in _pick(rng, palette, 3):
            at = rng.randint(sp.start, sp.end)
            emit("bad-char", s[:at] + c + s[at:], sp.rule)
        at = rng.randrange(sp.start, sp.end) if sp.end > sp.start else sp.start
        emit("bad-char", s[:at] + rng.choice(palette) + s[at + 1 :], sp.rule)
    # whitespace ----------------------------------------------------------------
    emit("whitespace", " " + s)
    emit("whitespace", s + " ")
    emit("whitespace", s + "\r\n")
    for sp in _pick(rng, tight, 2):
        mid = (sp.start + sp.end) // 2
        for ws in (" ", "\t", "\r\n", "\r", "\n"):
            emit("whitespace", s[:mid] + ws + s[mid:], sp.rule)
    # delimiters ------------------------------------------------------------------
    delims = [i for i, c in enumerate(s) if c in DELIMITERS]
    for i in _pick(rng, delims, per_kind * 2):
        target = _innermost(spans, i, i + 1)
        emit("delimiter-missing", s[:i] + s[i + 1 :], target)
        emit("delimiter-doubled", s[:i] + s[i] + s[i:], target)
    # bad-escape --------------------------------------------------------------------
    escapes = list(_ESCAPE.finditer(s))
    if escapes:
        for m in _pick(rng, escapes, 2):
            target = _innermost(spans, m.start(), m.end())
            for bad in BAD_ESCAPES:
                emit("bad-escape", s[: m.start()] + bad + s[m.end() :], target)
    for sp in _pick(rng, [sp for sp in words if facts.uses_escapes(sp.rule)], 2):
        at = rng.randint(sp.start, sp.end)
        for bad in BAD_ESCAPES:
            emit("bad-escape", s[:at] + bad + s[at:], sp.rule)
    # wrong-case --------------------------------------------------------------------
    for sp in _dedupe_spans(sp for sp in spans if sp.rule.lower() in facts.case_sensitive):
        emit("wrong-case", splice(sp, s[sp.start : sp.end].swapcase()), sp.rule)
    for sp in _pick(rng, words, 1):
        emit("wrong-case", splice(sp, s[sp.start : sp.end].swapcase()), sp.rule)
    emit("wrong-case", s.swapcase())
    # ipv6-form ---------------------------------------------------------------------
    hosts = _dedupe_spans(sp for sp in spans if sp.rule.lower() in _HOST_RULES)
    if not hosts and name.lower() in _HOST_RULES:
        hosts = [Span(name, 0, len(s))]
    for sp in _pick(rng, hosts, 2):
        for form in IPV6_FORMS:
            emit("ipv6-form", splice(sp, form), sp.rule)
    # boofuzz-string ------------------------------------------------------------------
    lib = _boofuzz_library()
    if lib:
        for sp in _pick(rng, words, 2):
            for v in rng.sample(lib, min(per_kind, len(lib))):
                emit("boofuzz-string", splice(sp, v), sp.rule)

    out: list[Mutation] = []
    for kind in MUTATION_KINDS:
        unique = list(dict.fromkeys(found[kind]))
        # Boundary integers keep their order (the most telling come first);
        # every other kind is sampled.
        chosen = unique[:per_kind] if kind == "int-boundary" else _pick(rng, unique, per_kind)
        out.extend(Mutation(name, kind, from_octets(new), target) for new, target in chosen)
    if invalid_only:
        out = [m for m in out if not g.validate(name, m.data)]
    return out


def _word_spans(s: str, spans: list[Span]) -> list[Span]:
    """The largest named parts that are words: some letter or digit, nothing but single characters below.

    ``pname`` (made of ``paramchar``), ``token``, ``user``, ``domainlabel``,
    ``port``: the parts a parser copies into a buffer.
    """
    cands = [
        sp
        for sp in spans
        if sp.end > sp.start and _is_word(s[sp.start : sp.end]) and all(c.end - c.start <= 3 for c in sp.children)
    ]
    cands = _dedupe_spans(cands)
    out = []
    for sp in cands:
        if not any(o is not sp and o.start <= sp.start and sp.end <= o.end for o in cands):
            out.append(sp)
    return out


def _pick(rng: random.Random, items: list, k: int) -> list:
    """Up to ``k`` items, in their original order."""
    if len(items) <= k:
        return list(items)
    chosen = sorted(rng.sample(range(len(items)), k))
    return [items[i] for i in chosen]


def _dedupe_spans(spans: Iterable[Span]) -> list[Span]:
    """One span per (start, end): the innermost (last in a parents-first walk)."""
    by_extent: dict[tuple[int, int], Span] = {}
    for sp in spans:
        by_extent[(sp.start, sp.end)] = sp
    return sorted(by_extent.values(), key=lambda sp: (sp.start, sp.end))


def _innermost(spans: list[Span], start: int, end: int) -> str:
    """The name of the smallest span covering ``[start, end)``, "" if none."""
    best: Span | None = None
    for sp in spans:
        if sp.start <= start and end <= sp.end and (best is None or sp.end - sp.start <= best.end - best.start):
            best = sp
    return best.rule if best is not None else ""
