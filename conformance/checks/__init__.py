"""The rule catalogue as data (DESIGN.md principle 5).

Each :class:`Rule` has a stable id tied to its section (``3261-8.2.6.2-to-tag``), the RFC 2119 :class:`Level`, what
it :class:`AppliesTo`, the RFC sentence it encodes, a summary and a predicate. The same catalogue drives passive
checking in every test (:func:`check_trace`), the fuzz oracles (:func:`check_message`), ``sipcert checks``
(:func:`render_catalogue`) and the reports (each :class:`Finding` carries rule id, section, level and evidence).

    >>> from conformance.checks import check_message, Context
    >>> findings = check_message(response, Context(request=request))
    >>> [str(f) for f in findings if f.is_violation]
"""

from ._engine import catalogue, check_message, check_trace, effective_role, get_rule, split_by_level
from ._message_rules import tag_entropy_bits
from ._model import (
    RULE_ID,
    AppliesTo,
    Context,
    Finding,
    Issue,
    Level,
    MessagePredicate,
    Role,
    Rule,
    TracePredicate,
    TransportKind,
    Violation,
    is_reliable,
    message_rule,
    trace_rule,
    transport_kind,
)
from ._render import DOCS_PATH, render_catalogue, rule_dict, write_docs

__all__ = [
    "RULE_ID",
    "AppliesTo",
    "Context",
    "DOCS_PATH",
    "Finding",
    "Issue",
    "Level",
    "MessagePredicate",
    "Role",
    "Rule",
    "TracePredicate",
    "TransportKind",
    "Violation",
    "catalogue",
    "check_message",
    "check_trace",
    "effective_role",
    "get_rule",
    "is_reliable",
    "message_rule",
    "render_catalogue",
    "rule_dict",
    "split_by_level",
    "tag_entropy_bits",
    "trace_rule",
    "transport_kind",
    "write_docs",
]
