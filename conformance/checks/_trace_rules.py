"""Rules that need several messages: transactions, dialogs, sequences and retransmission timing.

A trace rule reads the message entries of a trace in order (``direction == "sent"`` is the tester, ``"received"``
the device) and uses their ``time`` for timing. Rules that judge an absence ("no ACK was sent") stay silent when
the trace ends less than ``ctx.response_wait`` seconds after the stimulus; timing rules use ``ctx.t1``, ``ctx.t2``
and the tolerance ``ctx.allowed_error(expected)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ..sip import Request, Response
from ..trace import MessageEntry
from ._message_rules import is_reliable_provisional
from ._model import AppliesTo, Context, Issue, Level, Rule, is_reliable, trace_rule
from ._util import (
    TraceView,
    Txn,
    fmt_time,
    from_tag,
    norm_uri,
    raw_cseq,
    same_name_addr,
    to_tag,
    via_equal,
)

MUST, SHOULD = Level.MUST, Level.SHOULD
UAC = frozenset({"uac"})
UAS = frozenset({"uas"})
UA = frozenset({"uac", "uas"})


def _req(e: MessageEntry) -> Request:
    assert isinstance(e.message, Request)
    return e.message


def _rsp(e: MessageEntry) -> Response:
    assert isinstance(e.message, Response)
    return e.message


def _status(e: MessageEntry) -> int:
    return _rsp(e).status


def _cseq_num(msg: Request | Response) -> int | None:
    c = raw_cseq(msg)
    return c[0] if c else None


def _new_requests(tv: TraceView) -> list[MessageEntry]:
    """The requests the device sent, first copies only (a retransmission repeats branch and method)."""
    seen: set[tuple[str | None, str]] = set()
    out = []
    for e in tv.device():
        msg = e.message
        if not isinstance(msg, Request):
            continue
        key = (msg.transaction_branch, msg.method)
        if key in seen and key[0] is not None:
            continue
        seen.add(key)
        out.append(e)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Tags and identifiers
# ---------------------------------------------------------------------------------------------------------------------


@trace_rule(
    "3261-8.2.6.2-to-tag-stable",
    MUST,
    """The same tag MUST be used for all responses to that request, both final and provisional (again excepting the
    100 (Trying)).""",
    "every non-100 response of one transaction has the same To tag, retransmissions included",
    AppliesTo(roles=UAS),
)
def to_tag_stable(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in tv.server_txns():
        if to_tag(txn.request):
            continue
        tagged = [(e, to_tag(_rsp(e))) for e in txn.responses if _status(e) != 100]
        tagged = [(e, t) for e, t in tagged if t]
        tags = {t for _, t in tagged}
        if len(tags) > 1:
            seen = ", ".join(f"{_status(e)}:{t}" for e, t in tagged)
            yield Issue(f"{txn.method} responses carry different To tags ({seen})", tuple(e for e, _ in tagged))


@trace_rule(
    "3261-9.2-cancel-to-tag",
    SHOULD,
    """This response is constructed following the procedures described in Section 8.2.6 noting that the To tag of the
    response to the CANCEL and the To tag in the response to the original request SHOULD be the same.""",
    "the 200 to CANCEL has the To tag of the INVITE's responses",
    AppliesTo(roles=UAS),
)
def cancel_to_tag(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    invites = {t.key[0]: t for t in tv.server_txns() if t.method == "INVITE"}
    for txn in tv.server_txns():
        if txn.method != "CANCEL" or txn.key[0] not in invites:
            continue
        inv = invites[txn.key[0]]
        inv_tags = {t for e in inv.responses if _status(e) != 100 and (t := to_tag(_rsp(e)))}
        if not inv_tags:
            continue
        for e in txn.responses:
            if 200 <= _status(e) < 300 and to_tag(_rsp(e)) not in inv_tags:
                yield Issue(
                    f"200 to CANCEL has To tag {to_tag(_rsp(e))!r}, the INVITE's responses {sorted(inv_tags)}",
                    (e, *inv.responses),
                )


@trace_rule(
    "3261-8.1.1.2-no-to-tag-outside-dialog",
    MUST,
    """A request outside of a dialog MUST NOT contain a To tag; the tag in the To field of a request identifies the
    peer of the dialog.""",
    "a request the device sends has a To tag only if that tag came from the peer",
    AppliesTo(roles=UAC),
    note="Heuristic: a To tag the trace never showed before (in any message of the same Call-ID) cannot name a "
    "dialog, so the request is outside one. A trace that starts mid-dialog can make this fire wrongly.",
    heuristic=True,
)
def no_to_tag_outside_dialog(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    known: set[tuple[str | None, str]] = set()
    for e in entries:
        msg = e.message
        if msg is None:
            continue
        tt = to_tag(msg)
        if e.direction == "received" and isinstance(msg, Request) and tt and (msg.call_id, tt) not in known:
            yield Issue(f"{msg.method} carries To tag {tt!r}, which no earlier message of the Call-ID showed", (e,))
        for tag in (from_tag(msg), tt):
            if tag:
                known.add((msg.call_id, tag))


@trace_rule(
    "3261-19.3-tag-unique",
    MUST,
    """When a tag is generated by a UA for insertion into a request or response, it MUST be globally unique and
    cryptographically random with at least 32 bits of randomness.""",
    "the tags the device makes differ across calls, and from the peer's tag",
    AppliesTo(roles=UA),
    note="§19.3 spells out the consequences checked here: 'a UA will place a different tag into the From header of an "
    "INVITE than it would place into the To header of the response to the same INVITE' and 'two INVITEs for "
    "different calls will have different From tags, and two responses for different calls will have different To "
    "tags.'",
)
def tag_unique(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    made: dict[str, tuple[str | None, MessageEntry]] = {}

    def note(tag: str | None, call_id: str | None, e: MessageEntry) -> Iterator[Issue]:
        if not tag:
            return
        prior = made.get(tag)
        if prior is not None and prior[0] != call_id:
            yield Issue(f"tag {tag!r} used for Call-ID {prior[0]!r} and again for {call_id!r}", (prior[1], e))
        made.setdefault(tag, (call_id, e))

    for e in _new_requests(tv):
        msg = _req(e)
        if not to_tag(msg):
            yield from note(from_tag(msg), msg.call_id, e)
    for txn in tv.server_txns():
        req = txn.request
        if to_tag(req):
            continue
        for e in txn.responses:
            tag = to_tag(_rsp(e))
            if tag and tag == from_tag(req):
                yield Issue(f"the response's To tag {tag!r} equals the request's From tag", (txn.requests[0], e))
            if tag and made.get(tag, (req.call_id,))[0] != req.call_id:
                yield from note(tag, req.call_id, e)
            elif tag:
                made.setdefault(tag, (req.call_id, e))


@trace_rule(
    "3261-8.1.1.7-branch-unique",
    MUST,
    """The branch parameter value MUST be unique across space and time for all requests sent by the UA.  The
    exceptions to this rule are CANCEL and ACK for non-2xx responses.""",
    "every new transaction of the device has a new branch",
    AppliesTo(roles=UAC),
    note="A retransmission repeats its branch. CANCEL and the ACK for a non-2xx share the INVITE's; an ACK for a 2xx "
    "is a new transaction and needs a new branch (§17.1.1.3 vs §13.2.2.4).",
)
def branch_unique(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    first: dict[str, MessageEntry] = {}
    invite_final: dict[str, int] = {}
    for txn in tv.client_txns():
        if txn.method == "INVITE":
            finals = [_status(e) for e in txn.responses if _status(e) >= 200]
            if finals:
                invite_final[txn.key[0]] = finals[0]
    for e in tv.device():
        msg = e.message
        if not isinstance(msg, Request) or msg.transaction_branch is None:
            continue
        branch = msg.transaction_branch
        prior = first.get(branch)
        if prior is None:
            first[branch] = e
            continue
        p = _req(prior)
        same_txn = (p.method, _cseq_num(p), p.call_id) == (msg.method, _cseq_num(msg), msg.call_id)
        if same_txn:
            continue
        if p.method == "INVITE" and msg.method in ("CANCEL", "ACK") and _cseq_num(p) == _cseq_num(msg):
            if msg.method == "ACK" and 200 <= invite_final.get(branch, 0) < 300:
                yield Issue(f"ACK for a 2xx reuses the INVITE's branch {branch!r}", (prior, e))
            continue
        yield Issue(
            f"branch {branch!r} of {p.method} CSeq {_cseq_num(p)} reused by {msg.method} CSeq {_cseq_num(msg)}",
            (prior, e),
        )


@trace_rule(
    "3261-12.2.1.1-cseq-increment",
    MUST,
    """Requests within a dialog MUST contain strictly monotonically increasing and contiguous CSeq sequence numbers
    (increasing-by-one) in each direction (excepting ACK and CANCEL of course, whose numbers equal the requests being
    acknowledged or cancelled).""",
    "each new in-dialog request of the device has the previous CSeq + 1",
    AppliesTo(roles=UAC),
    note="The previous request is the device's last new request with the same Call-ID and From tag, in the same "
    "dialog (same To tag) or the dialog-creating request (no To tag). Retransmissions are skipped.",
)
def cseq_increment(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    history: list[MessageEntry] = []
    for e in _new_requests(tv):
        msg = _req(e)
        if msg.method in ("ACK", "CANCEL"):
            continue
        tt = to_tag(msg)
        if tt:
            prev = [
                h
                for h in history
                if _req(h).call_id == msg.call_id
                and from_tag(_req(h)) == from_tag(msg)
                and to_tag(_req(h)) in (None, tt)
            ]
            n, p = _cseq_num(msg), (_cseq_num(_req(prev[-1])) if prev else None)
            if prev and n is not None and p is not None and n != p + 1:
                yield Issue(f"{msg.method} has CSeq {n} after {_req(prev[-1]).method} CSeq {p} (expected {p + 1})",
                            (prev[-1], e))
        history.append(e)


@trace_rule(
    "3261-10.2-register-cseq",
    MUST,
    "A UA MUST increment the CSeq value by one for each REGISTER request with the same Call-ID.",
    "successive REGISTERs with one Call-ID count up by one",
    AppliesTo(roles=UAC),
)
def register_cseq(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    last: dict[str | None, MessageEntry] = {}
    for e in _new_requests(TraceView(entries)):
        msg = _req(e)
        if msg.method != "REGISTER":
            continue
        prev = last.get(msg.call_id)
        if prev is not None:
            p, n = _cseq_num(_req(prev)), _cseq_num(msg)
            if p is not None and n is not None and n != p + 1:
                yield Issue(f"REGISTER CSeq {n} after CSeq {p} with the same Call-ID (expected {p + 1})", (prev, e))
        last[msg.call_id] = e


@trace_rule(
    "3261-10.2-register-call-id",
    SHOULD,
    """All registrations from a UAC SHOULD use the same Call-ID header field value for registrations sent to a
    particular registrar.""",
    "REGISTERs for one address-of-record to one registrar share a Call-ID",
    AppliesTo(roles=UAC),
)
def register_call_id(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    groups: dict[tuple[str, str], list[MessageEntry]] = {}
    for e in _new_requests(TraceView(entries)):
        msg = _req(e)
        if msg.method == "REGISTER" and msg.to is not None:
            groups.setdefault((norm_uri(msg.uri_text), norm_uri(msg.to.uri_text)), []).append(e)
    for (ruri, aor), group in groups.items():
        ids = list(dict.fromkeys(_req(e).call_id for e in group))
        if len(ids) > 1:
            yield Issue(f"REGISTERs of {aor} to {ruri} use {len(ids)} Call-IDs: {ids}", tuple(group))


# ---------------------------------------------------------------------------------------------------------------------
# CANCEL and ACK the device builds
# ---------------------------------------------------------------------------------------------------------------------


def _invite_for(tv: TraceView, msg: Request) -> Txn | None:
    """The device's INVITE transaction a CANCEL or ACK refers to: same branch, else same Call-ID and CSeq number."""
    invites = [t for t in tv.client_txns() if t.method == "INVITE"]
    for t in invites:
        if t.key[0] == msg.transaction_branch:
            return t
    for t in reversed(invites):
        if t.request.call_id == msg.call_id and _cseq_num(t.request) == _cseq_num(msg):
            return t
    return None


def _cancels(tv: TraceView) -> Iterator[tuple[MessageEntry, Request, Txn]]:
    """Each CANCEL the device sent, with the INVITE transaction it targets (CANCELs with none are left out)."""
    for e in _new_requests(tv):
        msg = _req(e)
        if msg.method != "CANCEL":
            continue
        txn = _invite_for(tv, msg)
        if txn is not None:
            yield e, msg, txn


@trace_rule(
    "3261-9.1-cancel-matches-invite",
    MUST,
    """The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the CANCEL request MUST be
    identical to those in the request being cancelled, including tags.  A CANCEL constructed by a client MUST have
    only a single Via header field value matching the top Via value in the request being cancelled.""",
    "a CANCEL copies Request-URI, Call-ID, To, From, CSeq number and top Via of its INVITE",
    AppliesTo(roles=UAC),
)
def cancel_matches_invite(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    for e, msg, txn in _cancels(TraceView(entries)):
        inv = txn.request
        wrong = []
        if msg.uri_text != inv.uri_text:
            wrong.append(f"Request-URI {msg.uri_text!r} vs {inv.uri_text!r}")
        if msg.call_id != inv.call_id:
            wrong.append(f"Call-ID {msg.call_id!r} vs {inv.call_id!r}")
        for name, a, b in (("To", msg.to, inv.to), ("From", msg.from_, inv.from_)):
            if a is not None and b is not None and not same_name_addr(a, b):
                wrong.append(f"{name} {a.raw!r} vs {b.raw!r}")
        if _cseq_num(msg) != _cseq_num(inv):
            wrong.append(f"CSeq number {_cseq_num(msg)} vs {_cseq_num(inv)}")
        if msg.via and inv.via and not via_equal(msg.via[0], inv.via[0]):
            wrong.append(f"Via {msg.via[0].raw!r} vs {inv.via[0].raw!r}")
        if wrong:
            yield Issue("CANCEL differs from its INVITE: " + "; ".join(wrong), (txn.requests[0], e))


@trace_rule(
    "3261-9.1-cancel-after-provisional",
    MUST,
    """If no provisional response has been received, the CANCEL request MUST NOT be sent; rather, the client MUST
    wait for the arrival of a provisional response before sending the request.""",
    "the device cancels an INVITE only after a provisional response to it",
    AppliesTo(roles=UAC),
)
def cancel_after_provisional(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    for e, _msg, txn in _cancels(TraceView(entries)):
        if not any(r.seq < e.seq and _status(r) < 200 for r in txn.responses):
            yield Issue("CANCEL sent before any provisional response to the INVITE", (txn.requests[0], e))


def _non2xx_acks(tv: TraceView) -> Iterator[tuple[MessageEntry, Txn, MessageEntry | None]]:
    """Device ACKs that share their INVITE's branch, with the INVITE transaction and the final response acked."""
    invites = {t.key[0]: t for t in tv.client_txns() if t.method == "INVITE"}
    for e in tv.acks("device"):
        txn = invites.get(_req(e).transaction_branch or "")
        if txn is None:
            continue
        finals = [r for r in txn.responses if _status(r) >= 300 and r.seq < e.seq]
        yield e, txn, (finals[-1] if finals else None)


@trace_rule(
    "3261-17.1.1.3-ack-construction",
    MUST,
    """The To header field in the ACK MUST equal the To header field in the response being acknowledged, and
    therefore will usually differ from the To header field in the original request by the addition of the tag
    parameter.  The ACK MUST contain a single Via header field, and this MUST be equal to the top Via header field of
    the original request.  The CSeq header field in the ACK MUST contain the same value for the sequence number as
    was present in the original request, but the method parameter MUST be equal to "ACK".""",
    "the ACK for a non-2xx has the response's To, the INVITE's top Via, Call-ID, From, Request-URI, CSeq number, Route",
    AppliesTo(roles=UAC),
    note="Also checked from the same section: Call-ID, From and Request-URI equal to the INVITE's; the INVITE's Route "
    "header fields appear in the ACK.",
)
def ack_construction(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for e, txn, final in _non2xx_acks(tv):
        ack, inv = _req(e), txn.request
        wrong = []
        if final is not None:
            rto = _rsp(final).to
            if ack.to is not None and rto is not None and not same_name_addr(ack.to, rto):
                wrong.append(f"To {ack.to.raw!r}, the response had {rto.raw!r}")
        if len(ack.via) != 1:
            wrong.append(f"{len(ack.via)} Via values")
        elif inv.via and not via_equal(ack.via[0], inv.via[0]):
            wrong.append(f"Via {ack.via[0].raw!r}, the INVITE's top Via is {inv.via[0].raw!r}")
        cseq = raw_cseq(ack)
        if cseq is not None and (cseq[0], cseq[1]) != (_cseq_num(inv), "ACK"):
            wrong.append(f"CSeq {cseq[0]} {cseq[1]}, expected {_cseq_num(inv)} ACK")
        if ack.call_id != inv.call_id:
            wrong.append(f"Call-ID {ack.call_id!r} vs {inv.call_id!r}")
        if ack.from_ is not None and inv.from_ is not None and not same_name_addr(ack.from_, inv.from_):
            wrong.append(f"From {ack.from_.raw!r} vs {inv.from_.raw!r}")
        if ack.uri_text != inv.uri_text:
            wrong.append(f"Request-URI {ack.uri_text!r} vs {inv.uri_text!r}")
        if [norm_uri(r.uri_text) for r in ack.route] != [norm_uri(r.uri_text) for r in inv.route]:
            wrong.append(f"Route {[r.raw for r in ack.route]} vs the INVITE's {[r.raw for r in inv.route]}")
        if wrong:
            yield Issue("ACK for a non-2xx: " + "; ".join(wrong), tuple(x for x in (txn.requests[0], final, e) if x))


@trace_rule(
    "3261-8.2.2.3-ack-no-require",
    MUST,
    """Note that Require and Proxy-Require MUST NOT be used in a SIP CANCEL request, or in an ACK request sent for a
    non-2xx response.""",
    "the ACK for a non-2xx carries neither Require nor Proxy-Require",
    AppliesTo(roles=UAC),
)
def ack_no_require(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    for e, _txn, _ in _non2xx_acks(TraceView(entries)):
        present = [n for n in ("Require", "Proxy-Require") if _req(e).has_header(n)]
        if present:
            yield Issue(f"ACK for a non-2xx carries {', '.join(present)}", (e,))


def _unacked(
    finals: list[MessageEntry], acks: list[MessageEntry], tv: TraceView, ctx: Context
) -> list[MessageEntry]:
    """Finals (first copies and retransmissions) that no later ACK answered, one ACK per final, judged only when the
    trace ran on for ``response_wait`` after them."""
    pending: list[MessageEntry] = []
    events = sorted([(f.seq, "f", f) for f in finals] + [(a.seq, "a", a) for a in acks], key=lambda x: x[0])
    for _, kind, entry in events:
        if kind == "f":
            pending.append(entry)
        elif pending:
            pending.pop(0)
    return [f for f in pending if tv.end >= f.time + ctx.response_wait]


@trace_rule(
    "3261-17.1.1.2-ack-non2xx",
    MUST,
    """The client transaction MUST pass the received response up to the TU, and the client transaction MUST generate
    an ACK request, even if the transport is reliable (guidelines for constructing the ACK from the response are given
    in Section 17.1.1.3) and then pass the ACK to the transport layer for transmission.""",
    "every 300-699 to the device's INVITE, retransmissions included, is acknowledged",
    AppliesTo(roles=UAC),
    note="Retransmissions count: 'Any retransmissions of the final response that are received while in the "
    "\"Completed\" state MUST cause the ACK to be re-passed to the transport layer for retransmission'.",
)
def ack_non2xx_sent(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in tv.client_txns():
        if txn.method != "INVITE":
            continue
        finals = [r for r in txn.responses if _status(r) >= 300]
        acks = [a for a in tv.acks("device") if _req(a).transaction_branch == txn.key[0]]
        for f in _unacked(finals, acks, tv, ctx):
            yield Issue(f"no ACK for the {_status(f)} received at {fmt_time(f.time)}", (txn.requests[0], f))


def _acks_for_2xx(tv: TraceView, txn: Txn, tag: str | None) -> list[MessageEntry]:
    inv = txn.request
    return [
        a
        for a in tv.acks("device")
        if _req(a).call_id == inv.call_id and to_tag(_req(a)) == tag and _req(a).transaction_branch != txn.key[0]
    ]


@trace_rule(
    "3261-13.2.2.4-ack-2xx",
    MUST,
    "The UAC core MUST generate an ACK request for each 2xx received from the transaction layer.",
    "every 2xx to the device's INVITE, retransmissions included, is acknowledged",
    AppliesTo(roles=UAC),
    note="Retransmissions count: 'The ACK MUST be passed to the client transport every time a retransmission of the "
    "2xx final response that triggered the ACK arrives.'",
)
def ack_2xx_sent(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in tv.client_txns():
        if txn.method != "INVITE":
            continue
        by_tag: dict[str | None, list[MessageEntry]] = {}
        for r in txn.responses:
            if 200 <= _status(r) < 300:
                by_tag.setdefault(to_tag(_rsp(r)), []).append(r)
        for tag, finals in by_tag.items():
            for f in _unacked(finals, _acks_for_2xx(tv, txn, tag), tv, ctx):
                yield Issue(f"no ACK for the {_status(f)} (To tag {tag!r}) received at {fmt_time(f.time)}",
                            (txn.requests[0], f))


@trace_rule(
    "3261-13.2.2.4-ack-2xx-cseq",
    MUST,
    """The sequence number of the CSeq header field MUST be the same as the INVITE being acknowledged, but the CSeq
    method MUST be ACK.""",
    "the ACK for a 2xx has the INVITE's CSeq number",
    AppliesTo(roles=UAC),
    note="drachtio-srf #119 (RFC-NOTES.md §5): an ACK after PRACK carried the PRACK's CSeq.",
)
def ack_2xx_cseq(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in tv.client_txns():
        if txn.method != "INVITE":
            continue
        tags = {to_tag(_rsp(r)) for r in txn.responses if 200 <= _status(r) < 300}
        for tag in tags:
            for a in _acks_for_2xx(tv, txn, tag):
                cseq = raw_cseq(_req(a))
                want = _cseq_num(txn.request)
                if cseq is not None and (cseq[0], cseq[1]) != (want, "ACK"):
                    yield Issue(f"ACK for 2xx has CSeq {cseq[0]} {cseq[1]}, expected {want} ACK", (txn.requests[0], a))


# ---------------------------------------------------------------------------------------------------------------------
# Server transactions of the device
# ---------------------------------------------------------------------------------------------------------------------


@trace_rule(
    "3261-17.2.2-final-response-stable",
    MUST,
    """Any other final responses passed by the TU to the server transaction MUST be discarded while in the
    "Completed" state.""",
    "after a final response to a non-INVITE, only that response is sent again",
    AppliesTo(roles=UAS),
)
def final_response_stable(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    for txn in TraceView(entries).server_txns():
        if txn.method == "INVITE":
            continue
        finals = [r for r in txn.responses if _status(r) >= 200]
        if not finals:
            continue
        first = finals[0]
        for r in txn.responses:
            if r.seq <= first.seq:
                continue
            if _status(r) != _status(first) or to_tag(_rsp(r)) != to_tag(_rsp(first)):
                yield Issue(
                    f"{txn.method} answered {_status(first)} (To tag {to_tag(_rsp(first))!r}), then "
                    f"{_status(r)} (To tag {to_tag(_rsp(r))!r})",
                    (first, r),
                )
                break


def _answers_to_retransmissions(
    tv: TraceView, ctx: Context, invite: bool
) -> Iterator[Issue]:
    for txn in tv.server_txns():
        if (txn.method == "INVITE") != invite:
            continue
        for rtx in txn.requests[1:]:
            before = [r for r in txn.responses if r.seq < rtx.seq]
            if not before:
                continue
            last = before[-1]
            status = _status(last)
            if invite and status >= 200:
                continue  # 2xx: the TU's business; 3xx-6xx: a SHOULD (§17.2.1), not judged here
            after = [r for r in txn.responses if r.seq > rtx.seq]
            if not after:
                if tv.end >= rtx.time + ctx.response_wait:
                    yield Issue(
                        f"no response to the {txn.method} retransmission at {fmt_time(rtx.time)} "
                        f"(last response sent: {status})",
                        (last, rtx),
                    )
                continue
            nxt = after[0]
            if status < 200:
                # A newer provisional may have been under way when the retransmission arrived (a 180 right after the
                # 100): then that one is the most recent, and its repetition is the answer. Any repetition of a
                # provisional sent before it, or a final response, passes.
                seen = {(_status(r), to_tag(_rsp(r))) for r in before}
                ok = False
                for r in after:
                    key = (_status(r), to_tag(_rsp(r)))
                    if key[0] >= 200 or key in seen:
                        ok = True
                        break
                    seen.add(key)
            else:
                ok = _status(nxt) == status and to_tag(_rsp(nxt)) == to_tag(_rsp(last))
            if not ok:
                yield Issue(
                    f"the {txn.method} retransmission was answered {_status(nxt)}, the last response was {status}",
                    (last, rtx, nxt),
                )


@trace_rule(
    "3261-17.2.1-retransmit-provisional",
    MUST,
    """If a request retransmission is received while in the "Proceeding" state, the most recent provisional response
    that was received from the TU MUST be passed to the transport layer for retransmission.""",
    "an INVITE retransmission after a provisional gets that provisional again",
    AppliesTo(roles=UAS),
    note="A final response sent instead also passes (it may have been under way when the retransmission arrived).",
)
def retransmit_provisional(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    yield from _answers_to_retransmissions(TraceView(entries), ctx, invite=True)


@trace_rule(
    "3261-17.2.2-retransmit-response",
    MUST,
    """While in the "Completed" state, the server transaction MUST pass the final response to the transport layer for
    retransmission whenever a retransmission of the request is received.""",
    "a non-INVITE retransmission gets the last response again",
    AppliesTo(roles=UAS),
    note="The Proceeding state too: 'If a retransmission of the request is received while in the \"Proceeding\" "
    "state, the most recently sent provisional response MUST be passed to the transport layer for retransmission.'",
)
def retransmit_response(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    yield from _answers_to_retransmissions(TraceView(entries), ctx, invite=False)


# ---------------------------------------------------------------------------------------------------------------------
# Retransmission timing
# ---------------------------------------------------------------------------------------------------------------------


def _schedule(
    sends: list[MessageEntry],
    stop: float,
    end: float,
    ctx: Context,
    what: str,
    next_interval: Callable[[int, MessageEntry], float],
) -> Iterator[Issue]:
    """Judge retransmission times: each gap against the expected interval, and a missing retransmission when the trace
    shows the time for it passing before ``stop`` (the ACK, PRACK or response that ends them, or the timeout).

    ``next_interval(k, previous_send)`` gives the expected k-th interval.
    """
    for k in range(len(sends) - 1):
        a, b = sends[k], sends[k + 1]
        if b.time > stop + ctx.allowed_error(0):
            return
        want = next_interval(k, a)
        got = b.time - a.time
        if abs(got - want) > ctx.allowed_error(want):
            yield Issue(f"{what} retransmission #{k + 1} came {got:.3f} s after the previous, expected {want:.3f} s",
                        (a, b))
            return
    last = sends[-1]
    k = len(sends) - 1
    want = next_interval(k, last)
    due = last.time + want
    if due + ctx.allowed_error(want) < min(stop, end):
        yield Issue(f"{what} not retransmitted at {fmt_time(due)} (expected {want:.3f} s after the previous)", (last,))


@trace_rule(
    "3261-13.3.1.4-2xx-retransmit",
    MUST,
    """The 2xx response is passed to the transport with an interval that starts at T1 seconds and doubles for each
    retransmission until it reaches T2 seconds (T1 and T2 are defined in Section 17).""",
    "the device re-sends its 2xx to INVITE at T1, 2*T1, ... capped at T2, until the ACK",
    AppliesTo(roles=UAS),
    note="No 2119 keyword in the sentence, but it is the procedure (and 'Response retransmissions cease when an ACK "
    "request for the response is received'), over every transport. Judged until the tester's ACK or 64*T1, with "
    "the tolerance of the Context; a retransmission later than the ACK plus the tolerance also fails.",
)
def two_xx_retransmit(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in tv.server_txns():
        if txn.method != "INVITE":
            continue
        oks = [r for r in txn.responses if 200 <= _status(r) < 300]
        if not oks:
            continue
        tag = to_tag(_rsp(oks[0]))
        sends = [r for r in oks if to_tag(_rsp(r)) == tag]
        n = _cseq_num(txn.request)
        acks = [
            a
            for a in tv.acks("tester")
            if a.seq > sends[0].seq
            and _req(a).call_id == txn.request.call_id
            and _cseq_num(_req(a)) == n
            and to_tag(_req(a)) == tag
        ]
        ack_time = acks[0].time if acks else float("inf")
        stop = min(ack_time, sends[0].time + 64 * ctx.t1)
        late = [s for s in sends if s.time > ack_time + ctx.allowed_error(0)]
        if late:
            yield Issue(f"2xx retransmitted at {fmt_time(late[0].time)}, after the ACK at {fmt_time(ack_time)}",
                        (acks[0], late[0]))
        yield from _schedule(
            [s for s in sends if s.time <= stop + ctx.allowed_error(0)], stop, tv.end, ctx, "2xx",
            lambda k, _e: min(ctx.t1 * 2**k, ctx.t2),
        )


def _client_sends(tv: TraceView, method_invite: bool) -> Iterator[tuple[Txn, list[MessageEntry]]]:
    for txn in tv.client_txns():
        if (txn.method == "INVITE") == method_invite:
            yield txn, list(txn.requests)


@trace_rule(
    "3261-17.1.1.2-invite-retransmit",
    MUST,
    """This process MUST continue so that the request is retransmitted with intervals that double after each
    transmission.""",
    "over UDP the device re-sends its INVITE at T1, 2*T1, 4*T1 ... until a response (Timer A)",
    AppliesTo(roles=UAC),
    note="Judged over unreliable transports until the first response or Timer B (64*T1).",
)
def invite_retransmit(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn, sends in _client_sends(tv, True):
        if is_reliable(sends[0].transport):
            continue
        first_rsp = txn.responses[0].time if txn.responses else float("inf")
        stop = min(first_rsp, sends[0].time + 64 * ctx.t1)
        yield from _schedule(
            [s for s in sends if s.time <= stop], stop, tv.end, ctx, "INVITE", lambda k, _e: ctx.t1 * 2**k
        )


@trace_rule(
    "3261-17.1.1.2-no-retransmit-after-response",
    SHOULD,
    """In the "Proceeding" state, the client transaction SHOULD NOT retransmit the request any longer.""",
    "the device stops re-sending its INVITE once a response arrived",
    AppliesTo(roles=UAC),
)
def no_retransmit_after_response(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn, sends in _client_sends(tv, True):
        if not txn.responses:
            continue
        first = txn.responses[0]
        late = [s for s in sends if s.seq > first.seq and s.time > first.time + ctx.allowed_error(0)]
        if late:
            yield Issue(f"INVITE re-sent at {fmt_time(late[0].time)} after the {_status(first)} at "
                        f"{fmt_time(first.time)}", (first, late[0]))


@trace_rule(
    "3261-17.1.1.2-no-retransmit-reliable",
    SHOULD,
    """If a reliable transport is being used, the client transaction SHOULD NOT start timer A (Timer A controls
    request retransmissions).""",
    "over TCP, TLS, SCTP or WebSocket the device sends its INVITE once",
    AppliesTo(roles=UAC),
)
def no_retransmit_reliable(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    for _txn, sends in _client_sends(TraceView(entries), True):
        if len(sends) > 1 and is_reliable(sends[0].transport):
            yield Issue(f"INVITE sent {len(sends)} times over {sends[0].transport}", tuple(sends[:2]))


@trace_rule(
    "3261-17.1.2.2-non-invite-retransmit",
    MUST,
    """If an unreliable transport is in use, the client transaction MUST set timer E to fire in T1 seconds.""",
    "over UDP the device re-sends a non-INVITE at T1, 2*T1 ... capped at T2, T2 after a provisional (Timer E)",
    AppliesTo(roles=UAC),
    note="'If timer E fires while still in this state, the timer is reset, but this time with a value of MIN(2*T1, "
    "T2)'; in Proceeding 'Timer E MUST be reset with a value of T2 seconds'. Judged until a final response or "
    "Timer F (64*T1).",
)
def non_invite_retransmit(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn, sends in _client_sends(tv, False):
        if is_reliable(sends[0].transport):
            continue
        finals = [r for r in txn.responses if _status(r) >= 200]
        stop = min(finals[0].time if finals else float("inf"), sends[0].time + 64 * ctx.t1)
        provisional = [r.time for r in txn.responses if _status(r) < 200]

        def expected(k: int, prev: MessageEntry, provisional: list[float] = provisional) -> float:
            if any(t <= prev.time for t in provisional):
                return ctx.t2
            return min(ctx.t1 * 2**k, ctx.t2)

        yield from _schedule([s for s in sends if s.time <= stop], stop, tv.end, ctx, txn.method, expected)


# ---------------------------------------------------------------------------------------------------------------------
# RFC 3262: reliable provisional responses across a transaction
# ---------------------------------------------------------------------------------------------------------------------


def _reliables(txn: Txn) -> list[tuple[int, list[MessageEntry]]]:
    """Distinct reliable provisional responses of a server transaction, by RSeq, in the order they first went out."""
    out: dict[int, list[MessageEntry]] = {}
    for r in txn.responses:
        msg = _rsp(r)
        if 101 <= msg.status <= 199 and is_reliable_provisional(msg) and msg.rseq is not None:
            out.setdefault(msg.rseq, []).append(r)
    return list(out.items())


def _pracks(tv: TraceView, txn: Txn) -> list[MessageEntry]:
    """PRACKs the tester sent in the INVITE's call."""
    return [
        e
        for e in tv.tester()
        if isinstance(e.message, Request) and e.message.method == "PRACK" and e.message.call_id == txn.request.call_id
    ]


def _prack_time(pracks: list[MessageEntry], rseq: int, cseq: int | None) -> MessageEntry | None:
    for p in pracks:
        rack = _req(p).rack
        if rack is not None and rack.rseq == rseq and rack.cseq == cseq and rack.method == "INVITE":
            return p
    return None


def _invite_server_txns(tv: TraceView) -> list[Txn]:
    return [t for t in tv.server_txns() if t.method == "INVITE"]


@trace_rule(
    "3262-3-rseq-first",
    MUST,
    """The value of the header field for the first reliable provisional response in a transaction MUST be between 1
    and 2**31 - 1.""",
    "the first reliable 1xx of a transaction has an RSeq from 1 to 2**31-1",
    AppliesTo(roles=UAS),
)
def rseq_first(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    for txn in _invite_server_txns(TraceView(entries)):
        rel = _reliables(txn)
        if rel and not 1 <= rel[0][0] <= 2**31 - 1:
            yield Issue(f"first RSeq is {rel[0][0]}, not between 1 and {2**31 - 1}", (rel[0][1][0],))


@trace_rule(
    "3262-3-rseq-increment",
    MUST,
    """The value of the RSeq in each subsequent reliable provisional response for the same request MUST be greater by
    exactly one.""",
    "each later reliable 1xx of a transaction has the previous RSeq + 1",
    AppliesTo(roles=UAS),
    note="A retransmission keeps its RSeq. The sentence is quoted from RFC 3262 §3 as implementations quote it "
    "(JAIN-SIP RSeqHeader); RFC-NOTES.md agrees.",
)
def rseq_increment(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    for txn in _invite_server_txns(TraceView(entries)):
        rel = _reliables(txn)
        for (a, ea), (b, eb) in zip(rel, rel[1:], strict=False):
            if b != a + 1:
                yield Issue(f"RSeq {b} follows RSeq {a} (expected {a + 1})", (ea[0], eb[0]))


@trace_rule(
    "3262-3-prack-before-second",
    MUST,
    "The UAS MUST NOT send a second reliable provisional response until the first is acknowledged.",
    "no second reliable 1xx before the first is PRACKed",
    AppliesTo(roles=UAS),
)
def prack_before_second(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in _invite_server_txns(tv):
        rel = _reliables(txn)
        if len(rel) < 2:
            continue
        p = _prack_time(_pracks(tv, txn), rel[0][0], _cseq_num(txn.request))
        if p is None or p.seq > rel[1][1][0].seq:
            yield Issue(f"reliable {_status(rel[1][1][0])} (RSeq {rel[1][0]}) sent before the PRACK of RSeq "
                        f"{rel[0][0]}", (rel[0][1][0], rel[1][1][0]))


@trace_rule(
    "3262-3-prack-before-next",
    SHOULD,
    """After the first, it is RECOMMENDED that the UAS not send an additional reliable provisional response until the
    previous is acknowledged.""",
    "no further reliable 1xx before the previous one is PRACKed",
    AppliesTo(roles=UAS),
    note="RFC-NOTES.md §6 reads 'MUST NOT send a second reliable 1xx until the first is PRACKed' for all; the RFC "
    "makes it MUST only for the first (3262-3-prack-before-second) and RECOMMENDED after.",
)
def prack_before_next(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in _invite_server_txns(tv):
        rel = _reliables(txn)
        pracks = _pracks(tv, txn)
        for (a, ea), (b, eb) in list(zip(rel, rel[1:], strict=False))[1:]:
            p = _prack_time(pracks, a, _cseq_num(txn.request))
            if p is None or p.seq > eb[0].seq:
                yield Issue(f"reliable 1xx RSeq {b} sent before the PRACK of RSeq {a}", (ea[0], eb[0]))


@trace_rule(
    "3262-3-prack-481",
    MUST,
    """If a PRACK request is received by the UA core that does not match any unacknowledged reliable provisional
    response, the UAS MUST respond to the PRACK with a 481 response.""",
    "a PRACK that acknowledges nothing pending is answered 481",
    AppliesTo(roles=UAS),
    note="Matching is by Call-ID and RAck (RSeq, CSeq number, method) against the reliable 1xx the device sent before "
    "the PRACK and that no earlier PRACK acknowledged.",
)
def prack_481(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    acked: set[tuple[str | None, int, int, str]] = set()
    for txn in tv.server_txns():
        if txn.method != "PRACK":
            continue
        prack = txn.request
        rack = prack.rack
        if rack is None:
            continue
        key = (prack.call_id, rack.rseq, rack.cseq, rack.method)
        sent = {
            (_rsp(e).call_id, _rsp(e).rseq, _cseq_num(_rsp(e)), (raw_cseq(_rsp(e)) or (0, ""))[1])
            for e in tv.device()
            if e.seq < txn.requests[0].seq and isinstance(e.message, Response) and is_reliable_provisional(e.message)
        }
        matches = key in sent and key not in acked
        acked.add(key)
        finals = [r for r in txn.responses if _status(r) >= 200]
        if not matches and finals and _status(finals[0]) != 481:
            yield Issue(f"PRACK with RAck {rack} matches no unacknowledged reliable 1xx, answered {_status(finals[0])}",
                        (txn.requests[0], finals[0]))


@trace_rule(
    "3262-3-no-2xx-before-prack",
    MUST,
    """The UAS MAY send a final response to the initial request before having received PRACKs for all unacknowledged
    reliable provisional responses, unless the final response is 2xx and any of the unacknowledged reliable
    provisional responses contained a session description.  In that case, it MUST NOT send a final response until
    those provisional responses are acknowledged.""",
    "no 2xx while a reliable 1xx with a body is not yet PRACKed",
    AppliesTo(roles=UAS),
)
def no_2xx_before_prack(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in _invite_server_txns(tv):
        oks = [r for r in txn.responses if 200 <= _status(r) < 300]
        if not oks:
            continue
        pracks = _pracks(tv, txn)
        for rseq, sends in _reliables(txn):
            if not _rsp(sends[0]).body or sends[0].seq > oks[0].seq:
                continue
            p = _prack_time(pracks, rseq, _cseq_num(txn.request))
            if p is None or p.seq > oks[0].seq:
                yield Issue(f"{_status(oks[0])} sent while the reliable {_status(sends[0])} (RSeq {rseq}) with a "
                            "session description was not acknowledged", (sends[0], oks[0]))


def _scheduled(sends: Sequence[MessageEntry], txn: Txn, ctx: Context) -> list[MessageEntry]:
    """The copies of a response the device sent on its own schedule: without those it sent because a retransmission
    of the request arrived just before (RFC 3261 §17.2.1: "If a request retransmission is received while in the
    "Proceeding" state, the most recent provisional response that was received from the TU MUST be passed to the
    transport layer for retransmission")."""
    echoes = [q.time for q in txn.requests[1:]]
    window = ctx.allowed_error(0)
    return [s for i, s in enumerate(sends) if i == 0 or not any(0 <= s.time - t <= window for t in echoes)]


@trace_rule(
    "3262-3-reliable-retransmit",
    MUST,
    """The reliable provisional response is passed to the transaction layer periodically with an interval that starts
    at T1 seconds and doubles for each retransmission (T1 is defined in Section 17 of RFC 3261).""",
    "the device re-sends a reliable 1xx at T1, 2*T1, 4*T1 ... (no T2 cap) until the PRACK",
    AppliesTo(roles=UAS),
    note="No 2119 keyword in the sentence; it is the procedure. Unlike the 2xx there is no T2 cap (RFC 3262 §3 explains "
    "why). Judged until the PRACK, a final response, or 64*T1.",
)
def reliable_retransmit(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in _invite_server_txns(tv):
        pracks = _pracks(tv, txn)
        finals = [r.time for r in txn.responses if _status(r) >= 200]
        for rseq, all_sends in _reliables(txn):
            sends = _scheduled(all_sends, txn, ctx)
            p = _prack_time(pracks, rseq, _cseq_num(txn.request))
            stop = min(p.time if p else float("inf"), finals[0] if finals else float("inf"),
                       sends[0].time + 64 * ctx.t1)
            yield from _schedule(
                [s for s in sends if s.time <= stop + ctx.allowed_error(0)], stop, tv.end, ctx,
                f"reliable {_status(sends[0])}", lambda k, _e: ctx.t1 * 2**k,
            )


@trace_rule(
    "3262-3-stop-after-prack",
    SHOULD,
    """It SHOULD cease retransmissions of the reliable provisional response, and MUST remove it from the list of
    unacknowledged provisional responses.""",
    "a PRACKed 1xx is not re-sent",
    AppliesTo(roles=UAS),
)
def stop_after_prack(entries: Sequence[MessageEntry], ctx: Context) -> Iterator[Issue]:
    tv = TraceView(entries)
    for txn in _invite_server_txns(tv):
        pracks = _pracks(tv, txn)
        for rseq, all_sends in _reliables(txn):
            p = _prack_time(pracks, rseq, _cseq_num(txn.request))
            if p is None:
                continue
            late = [s for s in _scheduled(all_sends, txn, ctx) if s.time > p.time + ctx.allowed_error(0)]
            if late:
                yield Issue(f"RSeq {rseq} re-sent at {fmt_time(late[0].time)} after its PRACK at {fmt_time(p.time)}",
                            (p, late[0]))


RULES: tuple[Rule, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Rule))

