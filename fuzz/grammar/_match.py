"""A strict full-match recogniser for the ABNF tree of :mod:`._abnf`.

Every node is compiled to a function ``f(s, i, memo)`` that returns *all* the
positions where a match of the node starting at ``i`` can end.  Working with
sets of end positions gives ABNF its exact meaning (alternation and repetition
are not greedy, so ``*(token LWS) [token] LAQUOT`` needs no lookahead) without
exponential backtracking: results are memoised per (rule, position) for the
duration of one match, so each rule is tried at each position at most once.

Nodes that always match exactly one octet are folded into a character class,
and a repetition of a class is one regular-expression scan that yields a
``range`` of end positions.  Text is matched in *octet space*: a ``str`` whose
code points are all < 256, one per octet (``bytes.decode("latin-1")``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from ._abnf import Alt, Lit, Node, Range, Ref, Rep, RuleDef, Seq, iter_nodes

__all__ = ["Matcher", "Span"]

Ends = Collection[int]
MatchFn = Callable[[str, int, dict], Ends]

_EMPTY: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Span:
    """A rule matched over ``text[start:end]`` in one derivation of the input."""

    rule: str
    start: int
    end: int
    children: tuple[Span, ...] = ()

    def walk(self):
        """This span and every span below it, parents first."""
        stack = [self]
        while stack:
            sp = stack.pop()
            yield sp
            stack.extend(reversed(sp.children))


def char_class_pattern(chars: frozenset[str]) -> str:
    """A regular-expression class ``[...]`` for a set of octets."""
    codes = sorted(ord(c) for c in chars)
    parts: list[str] = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        if j == i:
            parts.append(f"\\x{codes[i]:02x}")
        else:
            parts.append(f"\\x{codes[i]:02x}-\\x{codes[j]:02x}")
        i = j + 1
    return "[" + "".join(parts) + "]"


class Matcher:
    """Compiled recogniser for one rule list."""

    def __init__(self, rules: Mapping[str, RuleDef]) -> None:
        self.rules = rules
        self._keys = list(rules)
        self._index = {k: n for n, k in enumerate(self._keys)}
        self._nrules = len(self._keys)
        self._charsets: dict[str, frozenset[str] | None] = {}
        self._node_charsets: dict[int, frozenset[str] | None] = {}
        self._node_fns: dict[int, MatchFn] = {}
        self._bodies: list[MatchFn] = [_fail] * self._nrules
        self._refs: list[MatchFn] = []
        for idx in range(self._nrules):
            self._refs.append(self._make_ref(idx))
        self._inline = self._small_nonrecursive_rules()
        for idx, key in enumerate(self._keys):
            self._bodies[idx] = self._compile(rules[key].node)

    # ---------------------------------------------------------------- analysis
    def rule_charset(self, key: str) -> frozenset[str] | None:
        """The octets a rule matches if it always matches exactly one octet, else None."""
        if key not in self._charsets:
            self._charsets[key] = None  # recursion guard
            self._charsets[key] = self.charset(self.rules[key].node)
        return self._charsets[key]

    def charset(self, node: Node) -> frozenset[str] | None:
        """The octets a node matches if it always matches exactly one octet, else None."""
        k = id(node)
        if k in self._node_charsets:
            return self._node_charsets[k]
        cs = self._charset(node)
        if not isinstance(node, Ref):  # a Ref's answer may still be the recursion guard
            self._node_charsets[k] = cs
        return cs

    def _charset(self, node: Node) -> frozenset[str] | None:
        if isinstance(node, Range):
            return frozenset(chr(c) for c in range(node.lo, node.hi + 1))
        if isinstance(node, Lit):
            if len(node.text) != 1:
                return None
            c = node.text
            return frozenset({c}) if node.case_sensitive else frozenset({c.lower(), c.upper()})
        if isinstance(node, Ref):
            return self.rule_charset(node.key) if node.key in self.rules else None
        if isinstance(node, Alt):
            out: set[str] = set()
            for item in node.items:
                cs = self.charset(item)
                if cs is None:
                    return None
                out |= cs
            return frozenset(out)
        if isinstance(node, Seq):
            return self.charset(node.items[0]) if len(node.items) == 1 else None
        if isinstance(node, Rep):
            return self.charset(node.item) if node.min == node.max == 1 else None
        return None

    def _small_nonrecursive_rules(self, max_nodes: int = 4) -> frozenset[str]:
        refs = {k: {n.key for n in iter_nodes(rd.node) if isinstance(n, Ref)} for k, rd in self.rules.items()}
        out = set()
        for key, rd in self.rules.items():
            if sum(1 for _ in iter_nodes(rd.node)) > max_nodes:
                continue
            seen: set[str] = set()
            stack = list(refs[key])
            while stack:
                k = stack.pop()
                if k not in seen and k in refs:
                    seen.add(k)
                    stack.extend(refs[k])
            if key not in seen:
                out.add(key)
        return frozenset(out)

    # ----------------------------------------------------------------- compile
    def _make_ref(self, idx: int) -> MatchFn:
        bodies = self._bodies
        nrules = self._nrules

        def ref(s: str, i: int, memo: dict) -> Ends:
            k = i * nrules + idx
            r = memo.get(k)
            if r is None:
                memo[k] = _EMPTY  # guards against left recursion
                r = bodies[idx](s, i, memo)
                memo[k] = r
            return r

        return ref

    def fn(self, node: Node) -> MatchFn:
        """The compiled function of a node of this grammar's trees."""
        f = self._node_fns.get(id(node))
        if f is None:
            f = self._compile(node)
        return f

    def _compile(self, node: Node) -> MatchFn:
        f = self._compile_uncached(node)
        self._node_fns[id(node)] = f
        return f

    def _compile_uncached(self, node: Node) -> MatchFn:
        cs = self.charset(node)
        if cs is not None:
            return _char_class(cs)
        if isinstance(node, Lit):
            return _literal(node)
        if isinstance(node, Ref):
            if node.key not in self._index:
                return _undefined(node.key)
            if node.key in self._inline:
                # Small rules (SWS, SEMI, EQUAL, ...) are cheaper to redo than to memoise.
                return self._compile(self.rules[node.key].node)
            return self._refs[self._index[node.key]]
        if isinstance(node, Seq):
            return _sequence([self._compile(item) for item in node.items])
        if isinstance(node, Alt):
            return _alternation([self._compile(item) for item in node.items])
        if isinstance(node, Rep):
            item_cs = self.charset(node.item)
            if item_cs is not None:
                return _class_run(item_cs, node.min, node.max)
            g = self._compile(node.item)
            if node.min == 0 and node.max == 1:
                return _option(g)
            return _repetition(g, node.min, node.max)
        raise TypeError(f"not a grammar node: {node!r}")

    # -------------------------------------------------------------------- match
    def ends(self, key: str, s: str, start: int = 0) -> Ends:
        """All end positions of matches of rule ``key`` on ``s`` from ``start``."""
        return self._refs[self._index[key]](s, start, {})

    def fullmatch(self, key: str, s: str) -> bool:
        """Whether rule ``key`` matches all of ``s`` (octet-space text)."""
        return len(s) in self._refs[self._index[key]](s, 0, {})

    def fullmatch_node(self, node: Node, s: str) -> bool:
        return len(s) in self.fn(node)(s, 0, {})

    # ------------------------------------------------------------------ derive
    def derive(self, key: str, s: str) -> Span | None:
        """One derivation of ``s`` from rule ``key``: the spans of the named rules in it.

        Rules that match a single octet (``DIGIT``, ``alphanum``, ...) are not
        reported; everything above them is.  None if ``s`` does not match.
        """
        memo: dict = {}
        if len(s) not in self._refs[self._index[key]](s, 0, memo):
            return None
        spans = _Deriver(self, s, memo).rule(key, 0, len(s))
        return spans


def _fail(s: str, i: int, memo: dict) -> Ends:  # placeholder before compilation
    return _EMPTY


def _undefined(key: str) -> MatchFn:
    def undefined(s: str, i: int, memo: dict) -> Ends:
        raise KeyError(f"the grammar refers to rule {key!r} but does not define it")

    return undefined


def _char_class(cs: frozenset[str]) -> MatchFn:
    if len(cs) == 1:
        (c,) = cs

        def one(s: str, i: int, memo: dict) -> Ends:
            return (i + 1,) if i < len(s) and s[i] == c else _EMPTY

        return one

    def cls(s: str, i: int, memo: dict) -> Ends:
        return (i + 1,) if i < len(s) and s[i] in cs else _EMPTY

    return cls


def _literal(node: Lit) -> MatchFn:
    text = node.text
    k = len(text)
    if node.case_sensitive:

        def lit(s: str, i: int, memo: dict) -> Ends:
            return (i + k,) if s.startswith(text, i) else _EMPTY

        return lit
    low = text.lower()

    def lit_ci(s: str, i: int, memo: dict) -> Ends:
        # Only ASCII letters fold: the literal is ASCII and no octet above
        # 0x7F lower-cases to an ASCII letter.
        return (i + k,) if s[i : i + k].lower() == low else _EMPTY

    return lit_ci


def _class_run(cs: frozenset[str], lo: int, hi: int | None) -> MatchFn:
    quant = "*" if hi is None else f"{{0,{hi}}}"
    rx = re.compile(char_class_pattern(cs) + quant)
    match = rx.match

    def run(s: str, i: int, memo: dict) -> Ends:
        e = match(s, i).end()  # type: ignore[union-attr]  # always matches (min 0)
        if e - i < lo:
            return _EMPTY
        return range(i + lo, e + 1)

    return run


def _sequence(fs: list[MatchFn]) -> MatchFn:
    if len(fs) == 1:
        return fs[0]

    def seq(s: str, i: int, memo: dict) -> Ends:
        cur: Ends = (i,)
        for g in fs:
            if len(cur) == 1:
                for p in cur:
                    cur = g(s, p, memo)
            else:
                nxt: set[int] = set()
                for p in cur:
                    nxt.update(g(s, p, memo))
                cur = nxt
            if not cur:
                return _EMPTY
        return cur

    return seq


def _alternation(fs: list[MatchFn]) -> MatchFn:
    def alt(s: str, i: int, memo: dict) -> Ends:
        out: Ends = _EMPTY
        owned: set[int] | None = None
        for g in fs:
            r = g(s, i, memo)
            if not r:
                continue
            if not out:
                out = r
            else:
                if owned is None:
                    owned = set(out)
                    out = owned
                owned.update(r)
        return out

    return alt


def _option(g: MatchFn) -> MatchFn:
    def opt(s: str, i: int, memo: dict) -> Ends:
        r = g(s, i, memo)
        if not r:
            return (i,)
        if i in r:
            return r
        out = set(r)
        out.add(i)
        return out

    return opt


def _repetition(g: MatchFn, lo: int, hi: int | None) -> MatchFn:
    def rep(s: str, i: int, memo: dict) -> Ends:
        cur: set[int] = {i}
        for _ in range(lo):
            nxt: set[int] = set()
            for p in cur:
                nxt.update(g(s, p, memo))
            if not nxt:
                return _EMPTY
            cur = nxt
        result = set(cur)
        frontier = cur
        count = lo
        while frontier and (hi is None or count < hi):
            nxt = set()
            for p in frontier:
                for q in g(s, p, memo):
                    if q not in result:
                        result.add(q)
                        nxt.add(q)
            frontier = nxt
            count += 1
        return result

    return rep


class _Deriver:
    """Rebuilds one derivation top-down from the memoised end-position sets."""

    def __init__(self, matcher: Matcher, s: str, memo: dict) -> None:
        self.m = matcher
        self.s = s
        self.memo = memo
        self.rule_cache: dict[tuple[str, int, int], Span | None] = {}

    def ends(self, node: Node, i: int) -> Ends:
        return self.m.fn(node)(self.s, i, self.memo)

    def rule(self, key: str, i: int, j: int) -> Span | None:
        ck = (key, i, j)
        if ck in self.rule_cache:
            return self.rule_cache[ck]
        self.rule_cache[ck] = None
        children = self.node(self.m.rules[key].node, i, j)
        sp = None if children is None else Span(self.m.rules[key].name, i, j, tuple(children))
        self.rule_cache[ck] = sp
        return sp

    def node(self, node: Node, i: int, j: int) -> list[Span] | None:
        if self.m.charset(node) is not None:
            return [] if j == i + 1 else None
        if isinstance(node, Lit):
            return [] if j == i + len(node.text) else None
        if isinstance(node, Ref):
            sp = self.rule(node.key, i, j)
            return None if sp is None else [sp]
        if isinstance(node, Alt):
            for item in node.items:
                if j in self.ends(item, i):
                    got = self.node(item, i, j)
                    if got is not None:
                        return got
            return None
        if isinstance(node, Seq):
            return self.seq(node.items, i, j)
        if isinstance(node, Rep):
            return self.rep(node, i, j)
        return None

    def seq(self, items: tuple[Node, ...], i: int, j: int) -> list[Span] | None:
        levels: list[set[int]] = [{i}]
        for item in items[:-1]:
            nxt: set[int] = set()
            for p in levels[-1]:
                nxt.update(q for q in self.ends(item, p) if q <= j)
            levels.append(nxt)
        cuts = [j]
        target = j
        for k in range(len(items) - 1, -1, -1):
            for p in sorted(levels[k]):
                if target in self.ends(items[k], p):
                    cuts.append(p)
                    target = p
                    break
            else:
                return None
        cuts.reverse()
        out: list[Span] = []
        for k, item in enumerate(items):
            got = self.node(item, cuts[k], cuts[k + 1])
            if got is None:
                return None
            out.extend(got)
        return out

    def rep(self, node: Rep, i: int, j: int) -> list[Span] | None:
        lo, hi = node.min, node.max
        if self.m.charset(node.item) is not None:
            n = j - i
            return [] if n >= lo and (hi is None or n <= hi) else None
        cap = lo if hi is None else hi

        def key(pos: int, count: int) -> tuple[int, int]:
            return (pos, min(count, cap) if hi is None else count)

        start = key(i, 0)
        parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
        frontier = [start]
        goal = None
        while frontier and goal is None:
            nxt = []
            for pos, count in frontier:
                if hi is not None and count >= hi:
                    continue
                for q in sorted(self.ends(node.item, pos)):
                    if q > j or (q == pos and count >= lo):
                        continue
                    st = key(q, count + 1)
                    if st in parent:
                        continue
                    parent[st] = (pos, count)
                    nxt.append(st)
            frontier = nxt
            for st in [start, *frontier]:
                if st[0] == j and st[1] >= lo:
                    goal = st
                    break
        if goal is None:
            return None
        cuts = []
        cur: tuple[int, int] | None = goal
        while cur is not None:
            cuts.append(cur[0])
            cur = parent[cur]
        cuts.reverse()
        out: list[Span] = []
        for a, b in zip(cuts, cuts[1:], strict=False):
            got = self.node(node.item, a, b)
            if got is None:
                return None
            out.extend(got)
        return out
