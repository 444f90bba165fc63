"""The machine-readable SIP grammar the fuzzer is built on.

``sip.abnf`` beside this file holds RFC 3261 section 25 with RFC 3262, the
RFC 4566 SDP rules, the RFC 5234 core rules and the published corrections
(RFC 5954, RFC 4475 section 3.1.1.6), each rule citing its source.  This
package reads it and offers:

* :func:`validate` -- strict full match of a value against a rule;
* :func:`from_rule`, :func:`header`, :func:`sip_request`, :func:`sip_response`
  -- hypothesis strategies producing values that match;
* :func:`near_misses` -- labelled :class:`Mutation` values that almost match.

Text is octets: ``bytes`` are matched as they are and ``str`` is UTF-8
encoded first.  Example::

    >>> from fuzz.grammar import validate
    >>> validate("Via", "Via: SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bK1")
    True
    >>> validate("IPv6reference", "[2001:db8:::192.0.2.1]")  # RFC 5118 section 4.10
    False
"""

from __future__ import annotations

from ._abnf import Alt, GrammarSyntaxError, Lit, Node, Range, Ref, Rep, RuleDef, Seq
from ._grammar import DEFAULT_GRAMMAR, Grammar, from_octets, load_grammar, to_octets
from ._headers import (
    COMPACT_FORMS,
    HEADER_RULES,
    MANDATORY_REQUEST_HEADERS,
    MANDATORY_RESPONSE_HEADERS,
    header_rule,
)
from ._match import Span
from ._mutate import BOUNDARY_INTEGERS, MUTATION_KINDS, Mutation, near_misses
from ._strategies import (
    OPTIONAL_HEADERS,
    REQUEST_METHODS,
    from_rule,
    from_rule_bytes,
    header,
    sip_request,
    sip_response,
)

__all__ = [
    "Alt",
    "BOUNDARY_INTEGERS",
    "COMPACT_FORMS",
    "DEFAULT_GRAMMAR",
    "Grammar",
    "GrammarSyntaxError",
    "HEADER_RULES",
    "Lit",
    "MANDATORY_REQUEST_HEADERS",
    "MANDATORY_RESPONSE_HEADERS",
    "MUTATION_KINDS",
    "Mutation",
    "Node",
    "OPTIONAL_HEADERS",
    "REQUEST_METHODS",
    "Range",
    "Ref",
    "Rep",
    "RuleDef",
    "Seq",
    "Span",
    "derive",
    "from_octets",
    "from_rule",
    "from_rule_bytes",
    "header",
    "header_rule",
    "load_grammar",
    "near_misses",
    "rule_names",
    "sip_request",
    "sip_response",
    "to_octets",
    "validate",
]


def validate(rule: str, text: str | bytes) -> bool:
    """Whether ``text`` as a whole matches grammar rule ``rule`` (name in any case)."""
    return load_grammar().validate(rule, text)


def derive(rule: str, text: str | bytes) -> Span | None:
    """One derivation of ``text`` from ``rule`` (named sub-rule spans), or None if it does not match."""
    return load_grammar().derive(rule, text)


def rule_names() -> list[str]:
    """Every rule of the default grammar, as written, in file order."""
    return load_grammar().rule_names()
