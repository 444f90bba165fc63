"""The catalogue and the engine that runs it on a message or a trace."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from ..sip import Request, Response
from ..trace import Entry, MessageEntry, Trace
from ._message_rules import RULES as _MESSAGE_RULES
from ._model import Context, Finding, Issue, Level, Rule, is_reliable, transport_kind
from ._trace_rules import RULES as _TRACE_RULES
from ._util import TraceView

__all__ = ["catalogue", "get_rule", "check_message", "check_trace", "effective_role", "split_by_level"]

_ALL: tuple[Rule, ...] = tuple(sorted(_MESSAGE_RULES + _TRACE_RULES, key=lambda r: r.id))
_BY_ID: dict[str, Rule] = {r.id: r for r in _ALL}
assert len(_BY_ID) == len(_ALL), "duplicate rule ids"

#: The rules that still judge a response to a request with fatal defects: the response's own framing.
MALFORMED_REQUEST_RULES = frozenset(
    {"3261-20.14-content-length-value", "3261-20.14-content-length-present", "3261-18.3-content-length-on-stream"}
)

#: The rule that reports what the device sent and the parser could not read as SIP at all.
SYNTAX_RULE = "3261-25-syntax"


def catalogue() -> tuple[Rule, ...]:
    """Every rule, sorted by id."""
    return _ALL


def get_rule(rule_id: str) -> Rule:
    """The rule with this id; ``KeyError`` when there is none."""
    return _BY_ID[rule_id]


def effective_role(msg: Request | Response, declared: str | None) -> str:
    """The role the device plays for this message. Roles are per transaction in SIP: a UAS that hangs up sends a BYE
    as a UAC. A declared ``proxy`` stays a proxy; otherwise a request makes the device a UAC, a response to REGISTER
    a registrar, any other response a UAS."""
    if declared == "proxy":
        return "proxy"
    if isinstance(msg, Request):
        return "uac"
    cseq = msg.cseq
    if declared == "registrar" or (cseq is not None and cseq.method == "REGISTER"):
        return "registrar"
    return "uas"


def _selected(rules: Iterable[Rule] | None, levels: Iterable[Level] | None) -> list[Rule]:
    chosen = list(_ALL if rules is None else rules)
    if levels is not None:
        wanted = set(levels)
        chosen = [r for r in chosen if r.level in wanted]
    return chosen


def check_message(
    msg: Request | Response,
    ctx: Context | None = None,
    *,
    rules: Iterable[Rule] | None = None,
    levels: Iterable[Level] | None = None,
) -> list[Finding]:
    """Run the message rules that apply to one message the device sent. Findings carry their level: a caller that
    wants only violations keeps ``f.is_violation`` (or passes ``levels=[Level.MUST]``)."""
    ctx = ctx or Context()
    role = effective_role(msg, ctx.role)
    out: list[Finding] = []
    for rule in _selected(rules, levels):
        if rule.applies(msg, ctx, role):
            out.extend(rule.check(msg, ctx))
    return out


def check_trace(
    entries: Trace | Iterable[Entry],
    ctx: Context | None = None,
    *,
    rules: Iterable[Rule] | None = None,
    levels: Iterable[Level] | None = None,
) -> list[Finding]:
    """Judge everything the device sent in a trace.

    The message rules run on every entry the device sent (``direction == "received"`` from the tester's point of
    view), each response paired with the request the tester sent by transaction key (RFC 3261 §17.1.3: top-Via
    branch and CSeq method); then the trace rules run on the whole sequence. Findings come out in trace order, each
    with the ``seq`` numbers of its evidence.
    """
    ctx = ctx or Context()
    messages: list[MessageEntry] = [e for e in entries if isinstance(e, MessageEntry)]
    chosen = _selected(rules, levels)
    message_rules = [r for r in chosen if r.scope == "message"]
    trace_rules = [r for r in chosen if r.scope == "trace"]
    view = TraceView(messages)
    out: list[Finding] = []
    syntax = _BY_ID[SYNTAX_RULE]
    for entry in messages:
        if entry.direction != "received":
            continue
        msg = entry.message
        if msg is None:
            if syntax in message_rules:
                text = "; ".join(str(d) for d in entry.defects) or "no SIP start line"
                out.append(syntax.finding(Issue(f"unparseable message: {text}"), (entry.seq,)))
            continue
        req_entry = view.request_for(entry) if isinstance(msg, Response) else None
        request = req_entry.message if req_entry is not None else None
        mctx = replace(
            ctx,
            request=request if isinstance(request, Request) else None,
            request_source=req_entry.local if req_entry is not None else None,
            transport=transport_kind(entry.transport),
            reliable=is_reliable(entry.transport),
        )
        role = effective_role(msg, ctx.role)
        evidence = (entry.seq,) if req_entry is None else (req_entry.seq, entry.seq)
        # A response to a request that is itself unusable (fatal defects: a missing To, a malformed CSeq ...) cannot
        # copy what the request lacks or got wrong and still be valid SIP; only its own framing is judged here, the
        # test purpose judges its status code (docs/deviations.md).
        malformed_request = isinstance(request, Request) and any(d.fatal for d in request.defects)
        for rule in message_rules:
            if malformed_request and rule.id not in MALFORMED_REQUEST_RULES:
                continue
            if rule.applies(msg, mctx, role):
                extra = (mctx.request,) if mctx.request is not None else ()
                out.extend(rule.finding(i, evidence, (msg, *extra)) for i in rule.predicate(msg, mctx))  # type: ignore[arg-type]
    for rule in trace_rules:
        if ctx.role is not None and not _trace_role_ok(rule, ctx.role):
            continue
        out.extend(rule.check_entries(messages, ctx))
    out.sort(key=lambda f: (f.evidence[-1] if f.evidence else -1, f.rule_id))
    return out


def _trace_role_ok(rule: Rule, declared: str) -> bool:
    """A trace rule judges the device as client or server of each transaction; a declared role only separates the
    proxy from user agents."""
    roles = rule.applies_to.roles
    if not roles:
        return True
    if declared == "proxy":
        return "proxy" in roles
    return bool(roles - {"proxy"})


def split_by_level(findings: Sequence[Finding]) -> tuple[list[Finding], list[Finding]]:
    """``(violations, warnings)``: MUST findings, then SHOULD and MAY findings."""
    return [f for f in findings if f.is_violation], [f for f in findings if not f.is_violation]
