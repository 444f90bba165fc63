"""The loaded grammar: rules, citations, validation and derivations."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

from ._abnf import Node, RuleDef, parse_rulelist, references, undefined
from ._match import Matcher, Span

__all__ = ["DEFAULT_GRAMMAR", "Grammar", "from_octets", "load_grammar", "to_octets"]

DEFAULT_GRAMMAR = Path(__file__).with_name("sip.abnf")


def to_octets(text: str | bytes) -> str:
    """Wire octets as an octet-space ``str`` (one code point < 256 per octet).

    ``bytes`` are taken as they are; a ``str`` is what would go on the wire,
    so it is UTF-8 encoded first.  Lone surrogates (from ``surrogateescape``,
    which :func:`from_octets` uses for octets that are not valid UTF-8) map
    back to the octets they stand for.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        return bytes(text).decode("latin-1")
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def from_octets(octets: str) -> str:
    """The inverse of :func:`to_octets` for ``str``: UTF-8 text, invalid octets as lone surrogates."""
    return octets.encode("latin-1").decode("utf-8", "surrogateescape")


class Grammar:
    """An ABNF rule list, compiled for strict full-match validation.

    Rule names are case-insensitive, as in ABNF (``grammar.validate("via", ...)``
    and ``grammar.validate("Via", ...)`` are the same).
    """

    def __init__(self, rules: Mapping[str, RuleDef], origin: str = "<text>") -> None:
        self._rules = dict(rules)
        self.origin = origin
        self._matcher = Matcher(self._rules)

    @classmethod
    def from_text(cls, text: str, origin: str = "<text>") -> Grammar:
        return cls(parse_rulelist(text), origin)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Grammar:
        p = Path(path)
        return cls(parse_rulelist(p.read_text(encoding="ascii")), str(p))

    # ------------------------------------------------------------------ rules
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._rules

    def __len__(self) -> int:
        return len(self._rules)

    def rule_names(self) -> list[str]:
        """Every rule name, as written in the grammar, in file order."""
        return [rd.name for rd in self._rules.values()]

    def rule(self, name: str) -> RuleDef:
        """The definition of a rule (``KeyError`` naming close matches if unknown)."""
        try:
            return self._rules[name.lower()]
        except KeyError:
            close = [rd.name for k, rd in self._rules.items() if name.lower() in k][:5]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"no rule {name!r} in {self.origin}{hint}") from None

    def node(self, name: str) -> Node:
        return self.rule(name).node

    def canonical(self, name: str) -> str:
        """The rule name as written in the grammar."""
        return self.rule(name).name

    def source(self, name: str) -> str:
        """The citation of a rule (RFC and section), from the comment above it."""
        return self.rule(name).source

    def references(self, name: str) -> list[str]:
        """Names of the rules a rule refers to directly."""
        return sorted(self._rules[k].name if k in self._rules else k for k in references(self.node(name)))

    def undefined_references(self) -> dict[str, set[str]]:
        """``{rule: names it refers to that nothing defines}``; empty for a complete grammar."""
        return {self._rules[k].name: v for k, v in undefined(self._rules).items()}

    @property
    def matcher(self) -> Matcher:
        return self._matcher

    # ------------------------------------------------------------- matching
    def validate(self, rule: str, text: str | bytes) -> bool:
        """Whether ``text`` as a whole matches ``rule``.

        ``bytes`` are matched octet for octet; a ``str`` is UTF-8 encoded
        first (see :func:`to_octets`).  Input nested so deeply that it would
        exhaust the interpreter stack (hundreds of nested comments) is
        reported as not matching.
        """
        key = self.rule(rule).name.lower()
        try:
            return self._matcher.fullmatch(key, to_octets(text))
        except RecursionError:
            return False

    def derive(self, rule: str, text: str | bytes) -> Span | None:
        """One derivation of ``text`` from ``rule`` as nested :class:`Span` objects, or None.

        Span offsets index the octet-space form of the text (:func:`to_octets`).
        """
        key = self.rule(rule).name.lower()
        try:
            return self._matcher.derive(key, to_octets(text))
        except RecursionError:
            return None


@functools.lru_cache(maxsize=8)
def _load(path: str) -> Grammar:
    return Grammar.from_file(path)


def load_grammar(path: str | os.PathLike[str] | None = None) -> Grammar:
    """Load (once, then from cache) the grammar at ``path``, by default ``sip.abnf``."""
    return _load(str(Path(path or DEFAULT_GRAMMAR).resolve()))
