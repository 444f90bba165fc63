"""ABNF (RFC 5234 + RFC 7405) rule-list reader and the grammar's syntax tree.

The tree is deliberately tiny: six frozen node types.  Terminal values are
kept in *octet space*: every character of a literal or a range is one octet
(code point 0..255), which is how the matcher and the generators see text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Alt",
    "GrammarSyntaxError",
    "Lit",
    "Node",
    "Range",
    "Ref",
    "Rep",
    "RuleDef",
    "Seq",
    "iter_nodes",
    "parse_rulelist",
    "references",
]


class GrammarSyntaxError(ValueError):
    """The ABNF text could not be read; the message names the line."""


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal string; ``"..."`` is case-insensitive, ``%x``/``%s`` values are not."""

    text: str
    case_sensitive: bool


@dataclass(frozen=True, slots=True)
class Range:
    """One octet in ``lo..hi`` (a ``%xAA-BB`` value)."""

    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another rule; ``key`` is the lower-cased name."""

    key: str


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Alt:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Rep:
    """``min*max item``; ``max`` is None for unbounded.  ``[x]`` is ``Rep(0, 1, x)``."""

    min: int
    max: int | None
    item: Node


Node = Lit | Range | Ref | Seq | Alt | Rep


@dataclass(frozen=True, slots=True)
class RuleDef:
    """One rule of the rule list, with where it came from."""

    name: str  # as first written
    node: Node
    source: str  # the citation comment ("RFC 3261 section 25.1 -- ...")
    text: str  # the ABNF text of the definition(s), comments stripped
    line: int  # 1-based line of the first definition
    increments: tuple[int, ...] = field(default=())  # lines of "=/" additions


def iter_nodes(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents first."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, Seq | Alt):
            stack.extend(reversed(n.items))
        elif isinstance(n, Rep):
            stack.append(n.item)


def references(node: Node) -> set[str]:
    """Keys of the rules a tree refers to."""
    return {n.key for n in iter_nodes(node) if isinstance(n, Ref)}


# --------------------------------------------------------------------------
# Reading the rule list
# --------------------------------------------------------------------------

_RULENAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_DEFINED_AS = re.compile(r"\s*(=/|=)")
_RFC_CITATION = re.compile(r"RFC\s*\d{3,5}", re.IGNORECASE)


def _strip_comment(line: str) -> tuple[str, str]:
    """Split a line into (ABNF text, comment), respecting "..." and <...>."""
    in_quote = False
    in_prose = False
    for i, ch in enumerate(line):
        if in_quote:
            if ch == '"':
                in_quote = False
        elif in_prose:
            if ch == ">":
                in_prose = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_prose = True
        elif ch == ";":
            return line[:i], line[i + 1 :].strip()
    return line, ""


def parse_rulelist(text: str) -> dict[str, RuleDef]:
    """Read an ABNF rule list into ``{lower-cased name: RuleDef}``.

    ``=/`` adds alternatives to an earlier rule (RFC 5234 section 3.3).  The
    citation of a rule is the last comment line mentioning an RFC before it.
    """
    rules: dict[str, RuleDef] = {}
    citation = ""
    block: list[str] = []  # the comment block being read (column-0 comment lines)

    def close_block() -> None:
        nonlocal citation, block
        cited = [c for c in block if _RFC_CITATION.search(c)]
        if cited:
            citation = cited[0].split(" -- ")[0].strip()
        block = []

    # Group physical lines into rules: a rule starts in column 0, continuation
    # lines are indented.
    chunks: list[tuple[int, str, str]] = []  # (line number, text, citation)
    current: list[str] | None = None
    start_line = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        body, comment = _strip_comment(raw)
        if not body.strip():
            if raw.startswith(";"):
                if current is not None:
                    chunks.append((start_line, " ".join(current), citation))
                    current = None
                block.append(comment)
            elif not raw.strip():
                close_block()
            continue
        if raw[:1].isspace():
            if current is None:
                raise GrammarSyntaxError(f"line {lineno}: continuation line outside a rule: {raw!r}")
            current.append(body)
            continue
        close_block()
        if current is not None:
            chunks.append((start_line, " ".join(current), citation))
        current = [body]
        start_line = lineno
    if current is not None:
        chunks.append((start_line, " ".join(current), citation))

    for lineno, chunk, cite in chunks:
        m = _RULENAME.match(chunk)
        if not m:
            raise GrammarSyntaxError(f"line {lineno}: expected a rule name: {chunk!r}")
        name = m.group(0)
        d = _DEFINED_AS.match(chunk, m.end())
        if not d:
            raise GrammarSyntaxError(f"line {lineno}: expected '=' or '=/' after {name!r}")
        node = _ElementsParser(chunk, d.end(), lineno).parse()
        key = name.lower()
        definition = " ".join(chunk[d.end() :].split())
        if d.group(1) == "=/":
            if key not in rules:
                raise GrammarSyntaxError(f"line {lineno}: '=/' for undefined rule {name!r}")
            old = rules[key]
            old_items = old.node.items if isinstance(old.node, Alt) else (old.node,)
            new_items = node.items if isinstance(node, Alt) else (node,)
            rules[key] = RuleDef(
                old.name,
                Alt(old_items + new_items),
                old.source,
                f"{old.text} / {definition}",
                old.line,
                old.increments + (lineno,),
            )
        else:
            if key in rules:
                raise GrammarSyntaxError(f"line {lineno}: rule {name!r} defined twice (line {rules[key].line})")
            rules[key] = RuleDef(name, node, cite, definition, lineno)
    return rules


class _ElementsParser:
    """Recursive descent over the right-hand side of one rule (RFC 5234 section 4)."""

    def __init__(self, text: str, pos: int, lineno: int) -> None:
        self.s = text
        self.i = pos
        self.lineno = lineno

    def error(self, what: str) -> GrammarSyntaxError:
        return GrammarSyntaxError(f"line {self.lineno}: {what} at {self.s[self.i : self.i + 20]!r} in {self.s!r}")

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def parse(self) -> Node:
        node = self.alternation()
        self.ws()
        if self.i != len(self.s):
            raise self.error("unexpected text")
        return node

    def alternation(self) -> Node:
        items = [self.concatenation()]
        while True:
            self.ws()
            if self.i < len(self.s) and self.s[self.i] == "/":
                self.i += 1
                items.append(self.concatenation())
            else:
                break
        return items[0] if len(items) == 1 else Alt(tuple(items))

    def concatenation(self) -> Node:
        items = [self.repetition()]
        while True:
            self.ws()
            if self.i >= len(self.s) or self.s[self.i] in "/)]":
                break
            items.append(self.repetition())
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def repetition(self) -> Node:
        self.ws()
        m = re.compile(r"(\d*)\*(\d*)|(\d+)").match(self.s, self.i)
        if m:
            self.i = m.end()
            hi: int | None
            if m.group(3) is not None:
                lo = hi = int(m.group(3))
            else:
                lo = int(m.group(1)) if m.group(1) else 0
                hi = int(m.group(2)) if m.group(2) else None
            if hi is not None and hi < lo:
                raise self.error(f"repeat {lo}*{hi} can never match")
            item = self.element()
            return Rep(lo, hi, item)
        return self.element()

    def element(self) -> Node:
        self.ws()
        if self.i >= len(self.s):
            raise self.error("element expected")
        ch = self.s[self.i]
        if ch == "(":
            self.i += 1
            node = self.alternation()
            self.ws()
            if self.i >= len(self.s) or self.s[self.i] != ")":
                raise self.error("')' expected")
            self.i += 1
            return node
        if ch == "[":
            self.i += 1
            node = self.alternation()
            self.ws()
            if self.i >= len(self.s) or self.s[self.i] != "]":
                raise self.error("']' expected")
            self.i += 1
            return Rep(0, 1, node)
        if ch == '"':
            return self.char_val(case_sensitive=False)
        if ch == "%":
            nxt = self.s[self.i + 1 : self.i + 2].lower()
            if nxt in ("s", "i") and self.s[self.i + 2 : self.i + 3] == '"':
                self.i += 2
                return self.char_val(case_sensitive=nxt == "s")
            return self.num_val()
        if ch == "<":
            raise self.error("prose-val <...> cannot be matched; write the rule out")
        m = _RULENAME.match(self.s, self.i)
        if m:
            self.i = m.end()
            return Ref(m.group(0).lower())
        raise self.error("element expected")

    def char_val(self, case_sensitive: bool) -> Node:
        end = self.s.find('"', self.i + 1)
        if end < 0:
            raise self.error("closing '\"' expected")
        text = self.s[self.i + 1 : end]
        self.i = end + 1
        if any(not (0x20 <= ord(c) <= 0x7E) for c in text):
            raise self.error("char-val holds a character outside %x20-7E")
        # A literal without letters has no case; keep it case-sensitive so the
        # matcher can use a plain comparison.
        has_letters = any(c.isalpha() for c in text)
        return Lit(text, case_sensitive or not has_letters)

    def num_val(self) -> Node:
        m = re.compile(r"%([xXdDbB])").match(self.s, self.i)
        if not m:
            raise self.error("num-val expected")
        base = {"x": 16, "d": 10, "b": 2}[m.group(1).lower()]
        digits = {16: "[0-9A-Fa-f]+", 10: "[0-9]+", 2: "[01]+"}[base]
        m2 = re.compile(rf"({digits})(?:-({digits})|((?:\.{digits})+))?").match(self.s, m.end())
        if not m2:
            raise self.error("num-val digits expected")
        self.i = m2.end()
        first = int(m2.group(1), base)
        if m2.group(2) is not None:
            lo, hi = first, int(m2.group(2), base)
            if hi < lo:
                raise self.error("empty range")
            if hi > 0xFF:
                raise self.error("value above %xFF: the grammar is octet-based")
            return Range(lo, hi)
        values = [first]
        if m2.group(3):
            values += [int(v, base) for v in m2.group(3)[1:].split(".")]
        if any(v > 0xFF for v in values):
            raise self.error("value above %xFF: the grammar is octet-based")
        if len(values) == 1:
            return Range(values[0], values[0])
        return Lit("".join(chr(v) for v in values), True)


def undefined(rules: Mapping[str, RuleDef]) -> dict[str, set[str]]:
    """``{rule key: referenced keys that no rule defines}`` for rules with dangling references."""
    out: dict[str, set[str]] = {}
    for key, rd in rules.items():
        missing = {r for r in references(rd.node) if r not in rules}
        if missing:
            out[key] = missing
    return out
