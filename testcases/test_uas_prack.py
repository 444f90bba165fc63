"""Reliable provisional responses at a UAS (RFC 3262 §3): RSeq, retransmission until PRACK, PRACK matching, and the
order of provisional and final responses.

Each test purpose places one call with an SDP offer. Unless the purpose is about what ``Supported: 100rel`` alone
brings, the INVITE carries ``Require: 100rel`` too, which obliges the device to send every 101-199 reliably (§3), so
that the purpose does not depend on the device's choice. Calls are ended (PRACK, CANCEL, ACK and BYE as needed) at
the end of each purpose.
"""

from __future__ import annotations

import time

import pytest

from conformance.peer import ExpectationFailed, response
from conformance.plugin import inconclusive, not_applicable
from testcases._prack import (
    REQUIRED,
    SUPPORTED,
    RelCall,
    describe,
    finish,
    invite,
    is_reliable,
    key,
    next_response,
    prack,
    prack_request,
    rseq_text,
    wait_reliable,
)

pytestmark = pytest.mark.sip_requires(role="uas", methods=("PRACK",), extensions=("100rel",))

MAX_FIRST_RSEQ = 2**31 - 1


def _wait(profile) -> float:
    """How long to wait for a response the device sends at once: a few T1, at least 2 s."""
    return max(2.0, 4 * profile.timers.t1)


def _tolerance(expected: float) -> float:
    """Tolerance band for a retransmission interval: max(0.1 s, 25 %) of the expected value."""
    return max(0.1, 0.25 * expected)


def _arrival(peer, msg) -> float:
    """When ``msg`` arrived (trace time)."""
    for e in reversed(peer.trace.messages("received")):
        if e.message is msg:
            return e.time
    return peer.trace.now()


def _first_reliable(peer, profile, rc: RelCall):
    rel = wait_reliable(peer, rc, _wait(profile))
    if rel is None:
        got = ", ".join(describe(m) for m in rc.provisionals()) or "no provisional response"
        final = f"; final {rc.final.status} {rc.final.reason}" if rc.final is not None else ""
        inconclusive(f"the device sent no reliable provisional response to the INVITE ({got}{final})")
    return rel


# -- what a reliable provisional response carries ------------------------------------------------------------------


@pytest.mark.sip_faults("prack-no-rseq", "prack-no-require")
@pytest.mark.sip_purpose("TP-REL-001", "A provisional sent reliably carries Require: 100rel and RSeq",
                         "RFC 3262 §3")
def test_s3_reliable_1xx_has_require_and_rseq(sip_peer, sip_profile):
    """§3: "A UAS MAY send any non-100 provisional response to INVITE reliably, so long as the initial INVITE request
    (the request whose provisional response is being sent reliably) contained a Supported header field with the option
    tag 100rel." and "In addition, it MUST contain a Require header field containing the option tag 100rel, and MUST
    include an RSeq header field." (rule 3262-3-reliable-headers). The INVITE has ``Supported: 100rel`` only: sending
    reliably is the device's choice (a MAY, inconclusive when it does not); what it sends reliably carries both."""
    rc = invite(sip_peer, sip_profile, headers=SUPPORTED)
    try:
        end = time.monotonic() + _wait(sip_profile)
        while rc.final is None and time.monotonic() < end:
            msg = next_response(sip_peer, rc, end - time.monotonic())
            if msg is None or (101 <= msg.status <= 199 and is_reliable(msg)):
                break
        marked = [m for m in rc.provisionals() if 101 <= m.status <= 199 and is_reliable(m)]
        if not marked:
            got = ", ".join(describe(m) for m in rc.provisionals()) or "no provisional response"
            inconclusive(f"with Supported: 100rel only, the device sent nothing reliably ({got}); that is its choice "
                         "(§3: MAY)")
        for m in marked:
            assert "100rel" in [t.lower() for t in m.require], (
                f"the reliable {describe(m)} has no Require: 100rel (§3: \"it MUST contain a Require header field "
                "containing the option tag 100rel\"; rule 3262-3-reliable-headers)")
            assert rseq_text(m) is not None, (
                f"the reliable {describe(m)} has no RSeq (§3: \"and MUST include an RSeq header field\"; rule "
                "3262-3-reliable-headers)")
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_faults("unreliable-when-required", "prack-no-rseq", "prack-no-require")
@pytest.mark.sip_purpose("TP-REL-002", "Require: 100rel in the INVITE makes every 101-199 reliable", "RFC 3262 §3")
def test_s3_require_100rel_makes_every_1xx_reliable(sip_peer, sip_profile):
    """§3: "The UAS MUST send any non-100 provisional response reliably if the initial request contained a Require
    header field with the option tag 100rel.  If the UAS is unwilling to do so, it MUST reject the initial request
    with a 420 (Bad Extension) and include an Unsupported header field containing the option tag."
    (rule 3262-3-reliable-when-required). Each reliable provisional is PRACKed so that the call goes on to its final
    response; every 101-199 on the way must carry Require: 100rel and RSeq."""
    rc = invite(sip_peer, sip_profile, headers=REQUIRED)
    try:
        end = time.monotonic() + 3 * _wait(sip_profile)
        while rc.final is None and time.monotonic() < end:
            msg = next_response(sip_peer, rc, end - time.monotonic())
            if msg is None:
                break
            if 101 <= msg.status <= 199 and is_reliable(msg) and rseq_text(msg) is not None:
                if key(msg) not in {key(p) for p in rc.pracked}:
                    prack(sip_peer, sip_profile, rc, msg)
        if rc.final is not None and rc.final.status == 420:
            assert "100rel" in [t.lower() for t in rc.final.unsupported], (
                f"the INVITE requiring 100rel was answered 420 without Unsupported: 100rel ({rc.final.unsupported})")
            not_applicable("the device refused Require: 100rel with 420: it does not send reliably")
        ones = [m for m in rc.provisionals() if 101 <= m.status <= 199]
        if not ones:
            inconclusive("the device sent no 101-199 provisional response before "
                         + (f"its {rc.final.status}" if rc.final is not None else "the wait ended"))
        for m in ones:
            assert "100rel" in [t.lower() for t in m.require] and rseq_text(m) is not None, (
                f"the INVITE had Require: 100rel and the device sent {describe(m)}: not reliable (§3: \"The UAS MUST "
                "send any non-100 provisional response reliably\"; rules 3262-3-reliable-when-required, "
                "3262-3-reliable-headers)")
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_faults("rseq-zero", "rseq-high")
@pytest.mark.sip_purpose("TP-REL-003", "The first RSeq of a transaction is from 1 to 2**31-1", "RFC 3262 §3",
                         "RFC 3262 §7.1")
def test_s3_first_rseq_in_range(sip_peer, sip_profile):
    """§3: "The value of the header field for the first reliable provisional response in a transaction MUST be
    between 1 and 2**31 - 1.  It is RECOMMENDED that it be chosen uniformly in this range." (rule
    3262-3-rseq-first)"""
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        text = rseq_text(rel)
        assert text is not None, f"the first reliable provisional {describe(rel)} has no RSeq"
        assert text.strip().isdigit() and 1 <= int(text) <= MAX_FIRST_RSEQ, (
            f"the first reliable provisional has RSeq: {text}, not from 1 to {MAX_FIRST_RSEQ} (§3; rule "
            "3262-3-rseq-first)")
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_faults("rseq-skip", "rseq-restart")
@pytest.mark.sip_purpose("TP-REL-004", "Each later reliable 1xx of the transaction has RSeq + 1", "RFC 3262 §3")
def test_s3_next_rseq_is_previous_plus_one(sip_peer, sip_profile):
    """§3: "The value of the RSeq in each subsequent reliable provisional response for the same request MUST be
    greater by exactly one.  RSeq numbers MUST NOT wrap around." (rule 3262-3-rseq-increment). Each reliable
    provisional is PRACKed at once, so that the device may send the next; a retransmission repeats its status and
    RSeq."""
    rc = invite(sip_peer, sip_profile)
    try:
        seen: list = []
        end = time.monotonic() + 3 * _wait(sip_profile)
        while rc.final is None and time.monotonic() < end:
            rel = wait_reliable(sip_peer, rc, end - time.monotonic())
            if rel is None:
                break
            seen.append(rel)
            if rseq_text(rel) is not None:
                prack(sip_peer, sip_profile, rc, rel)
        if len(seen) < 2:
            inconclusive(f"the device sent {len(seen)} reliable provisional response(s) "
                         f"({', '.join(describe(m) for m in seen) or 'none'}): a second is needed to see the RSeq step")
        for a, b in zip(seen, seen[1:], strict=False):
            ra, rb = rseq_text(a), rseq_text(b)
            assert ra is not None and rb is not None and ra.strip().isdigit() and rb.strip().isdigit(), (
                f"RSeq missing or not a number in {describe(a)} / {describe(b)}")
            assert int(rb) == int(ra) + 1, (
                f"the reliable {b.status} has RSeq {rb} after RSeq {ra} of the {a.status}: not exactly one more (§3; "
                "rule 3262-3-rseq-increment)")
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_faults("reliable-100")
@pytest.mark.sip_purpose("TP-REL-005", "100 Trying is never sent reliably", "RFC 3262 §3")
def test_s3_100_trying_not_reliable(sip_peer, sip_profile):
    """§3: "A UAS MUST NOT attempt to send a 100 (Trying) response reliably.  Only provisional responses numbered
    101 to 199 may be sent reliably." (rule 3262-3-no-reliable-100). The INVITE requires 100rel; a 100 Trying the
    device sends must carry neither RSeq nor Require: 100rel."""
    rc = invite(sip_peer, sip_profile)
    try:
        end = time.monotonic() + _wait(sip_profile)
        while rc.final is None and time.monotonic() < end:
            msg = next_response(sip_peer, rc, end - time.monotonic())
            if msg is None or msg.status > 100:
                break
        trying = [m for m in rc.provisionals() if m.status == 100]
        if not trying:
            inconclusive("the device sent no 100 Trying (it answered within 200 ms, §17.2.1 allows that)")
        for m in trying:
            assert rseq_text(m) is None and "100rel" not in [t.lower() for t in m.require], (
                f"the device sent {describe(m)}: a 100 Trying sent reliably (§3; rule 3262-3-no-reliable-100)")
    finally:
        finish(sip_peer, sip_profile, rc)


# -- retransmission until PRACK ------------------------------------------------------------------------------------


@pytest.mark.sip_timer(20)
@pytest.mark.sip_faults("prack-not-retransmitted")
@pytest.mark.sip_purpose("TP-REL-006", "An unacknowledged reliable 1xx is re-sent at T1, 2*T1, 4*T1 ... (no T2 cap)",
                         "RFC 3262 §3")
def test_s3_reliable_1xx_retransmitted_t1_doubling(sip_peer, sip_profile):
    """§3: "The reliable provisional response is passed to the transaction layer periodically with an interval that
    starts at T1 seconds and doubles for each retransmission (T1 is defined in Section 17 of RFC 3261)." and "This
    differs from retransmissions of 2xx responses, whose intervals cap at T2 seconds." (rule
    3262-3-reliable-retransmit). The PRACK is withheld for five intervals (T1 ... 16*T1, the last beyond T2 = 8*T1
    here); each interval must be within max(0.1 s, 25 %) of T1 * 2**k. It is the UA core's retransmission, so it
    happens over every transport."""
    t1 = sip_profile.timers.t1
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        first = rc.reliables()[-1].time
        intervals = 5
        horizon = first + sum(t1 * 2**k for k in range(intervals)) + _tolerance(t1 * 2 ** (intervals - 1)) + 0.2
        while rc.final is None:
            remaining = horizon - sip_peer.trace.now()
            if remaining <= 0 or next_response(sip_peer, rc, remaining) is None:
                break
        times = [i.time for i in rc.reliables() if key(i.message) == key(rel)]  # type: ignore[arg-type]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        if rc.final is not None and len(gaps) < 2:
            inconclusive(f"the device sent its final {rc.final.status} after {len(gaps)} retransmission(s) of "
                         f"{describe(rel)}: too few to judge the schedule")
        assert gaps, (
            f"{describe(rel)} was not re-sent within {horizon - first:.1f} s without PRACK (§3: \"passed to the "
            "transaction layer periodically\"; rule 3262-3-reliable-retransmit)")
        for k, gap in enumerate(gaps[:intervals]):
            expected = t1 * 2**k
            assert abs(gap - expected) <= _tolerance(expected), (
                f"retransmission {k + 1} of {describe(rel)} came {gap:.3f} s after the previous one; expected "
                f"{expected:.3f} s +- {_tolerance(expected):.3f} (T1 * 2**{k}, no T2 cap; intervals seen: "
                f"{', '.join(f'{g:.3f}' for g in gaps)})")
        if rc.final is None:
            assert len(gaps) >= intervals, (
                f"{describe(rel)} was re-sent {len(gaps)} time(s) in {horizon - first:.1f} s without PRACK; expected "
                f"{intervals} (intervals {', '.join(f'{g:.3f}' for g in gaps)})")
        prack(sip_peer, sip_profile, rc, rel)
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_purpose("TP-REL-007", "A PRACK matching the pending reliable 1xx is answered 2xx", "RFC 3262 §3")
def test_s3_matching_prack_answered_2xx(sip_peer, sip_profile):
    """§3: "A matching PRACK is defined as one within the same dialog as the response, and whose method, CSeq-num,
    and response-num in the RAck header field match, respectively, the method from the CSeq, the sequence number from
    the CSeq, and the sequence number from the RSeq of the reliable provisional response." and "If the PRACK does
    match an unacknowledged reliable provisional response, it MUST be responded to with a 2xx response." """
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        req, final = prack(sip_peer, sip_profile, rc, rel)
        assert 200 <= final.status < 300, (
            f"the PRACK with RAck: {req.header('RAck')} for {describe(rel)} was answered {final.status} "
            f"{final.reason}, not 2xx (§3)")
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_faults("retransmit-after-prack")
@pytest.mark.sip_purpose("TP-REL-008", "Retransmissions of a reliable 1xx cease after its PRACK", "RFC 3262 §3")
def test_s3_retransmission_stops_after_prack(sip_peer, sip_profile, sip_should):
    """§3: "The retransmissions of the reliable provisional response cease when a matching PRACK is received by the
    UA core." and "It SHOULD cease retransmissions of the reliable provisional response, and MUST remove it from the
    list of unacknowledged provisional responses." (rule 3262-3-stop-after-prack, a SHOULD: a warning). After the
    2xx to the PRACK, the 1xx is watched for the next two intervals it would have been re-sent in (allowing one copy
    already in flight)."""
    t1 = sip_profile.timers.t1
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        _, final = prack(sip_peer, sip_profile, rc, rel)
        assert 200 <= final.status < 300, f"the PRACK was answered {final.status} {final.reason}, not 2xx (§3)"
        acked_at = _arrival(sip_peer, final)
        end = acked_at + 4 * t1 + 0.2
        while sip_peer.trace.now() < end:
            if next_response(sip_peer, rc, end - sip_peer.trace.now()) is None:
                break
        late = [i for i in rc.reliables() if key(i.message) == key(rel) and i.time > acked_at + 0.1]  # type: ignore[arg-type]
        sip_should(not late, "3262-3-stop-after-prack", "RFC 3262 §3",
                   f"{describe(rel)} was re-sent {len(late)} time(s) after the 2xx to its PRACK")
    finally:
        finish(sip_peer, sip_profile, rc)


# -- PRACKs that match nothing ---------------------------------------------------------------------------------------


def _wrong_prack(sip_peer, sip_profile, rack_of) -> None:
    """Send a PRACK whose RAck (from ``rack_of(rseq, cseq, method)``) matches no unacknowledged reliable 1xx; it
    must be answered 481. The correct PRACK follows, so the call goes on."""
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        rseq, cseq = rseq_text(rel), rel.cseq
        assert rseq is not None and rseq.strip().isdigit() and cseq is not None, f"unusable RSeq/CSeq in {describe(rel)}"
        rack = rack_of(int(rseq), cseq.number, cseq.method)
        try:
            req, final = prack(sip_peer, sip_profile, rc, rel, rack=rack)
        except ExpectationFailed as exc:
            pytest.fail(f"a PRACK with RAck: {rack} (the pending {rel.status} has RSeq {rseq}, CSeq {cseq}) got no final "
                        f"response; §3: \"the UAS MUST respond to the PRACK with a 481 response\" ({exc})")
        assert final.status == 481, (
            f"a PRACK with RAck: {rack} (the pending {rel.status} has RSeq {rseq}, CSeq {cseq}) was answered "
            f"{final.status} {final.reason}; §3: \"the UAS MUST respond to the PRACK with a 481 response\" (rule "
            "3262-3-prack-481)")
        prack(sip_peer, sip_profile, rc, rel)
    finally:
        finish(sip_peer, sip_profile, rc)


_PRACK_481_DOC = """§3: "If a PRACK request is received by the UA core that does not match any unacknowledged reliable
    provisional response, the UAS MUST respond to the PRACK with a 481 response." A matching PRACK is "one within the
    same dialog as the response, and whose method, CSeq-num, and response-num in the RAck header field match,
    respectively, the method from the CSeq, the sequence number from the CSeq, and the sequence number from the RSeq
    of the reliable provisional response." (rule 3262-3-prack-481)"""


@pytest.mark.sip_faults("prack-481-never")
@pytest.mark.sip_purpose("TP-REL-009", "A PRACK whose RAck has another RSeq is answered 481", "RFC 3262 §3",
                         "RFC 3262 §7.2")
def test_s3_prack_wrong_rseq_481(sip_peer, sip_profile):
    # An RSeq well away from the pending one: RSeq + 1 could belong to a later reliable 1xx already sent.
    _wrong_prack(sip_peer, sip_profile, lambda rseq, cseq, method: f"{rseq + 1000} {cseq} {method}")


@pytest.mark.sip_faults("prack-481-never")
@pytest.mark.sip_purpose("TP-REL-010", "A PRACK whose RAck has another CSeq number is answered 481", "RFC 3262 §3",
                         "RFC 3262 §7.2")
def test_s3_prack_wrong_cseq_481(sip_peer, sip_profile):
    _wrong_prack(sip_peer, sip_profile, lambda rseq, cseq, method: f"{rseq} {cseq + 1} {method}")


@pytest.mark.sip_faults("prack-481-never", "hang-prack-bad-rack")
@pytest.mark.sip_purpose("TP-REL-011", "A PRACK whose RAck names another method is answered 481", "RFC 3262 §3",
                         "RFC 3262 §7.2")
def test_s3_prack_wrong_method_481(sip_peer, sip_profile):
    _wrong_prack(sip_peer, sip_profile, lambda rseq, cseq, method: f"{rseq} {cseq} UPDATE")


for _t in (test_s3_prack_wrong_rseq_481, test_s3_prack_wrong_cseq_481, test_s3_prack_wrong_method_481):
    _t.__doc__ = _PRACK_481_DOC


@pytest.mark.sip_requires(transports=("udp",))
@pytest.mark.sip_faults("no-response-retransmit", "final-response-unstable")
@pytest.mark.sip_purpose("TP-REL-012", "A retransmitted PRACK gets the same 2xx again", "RFC 3262 §3",
                         "RFC 3261 §17.2.2")
def test_s3_duplicate_prack_same_2xx(sip_peer, sip_profile):
    """RFC 3262 §3: "PRACK is like any other request within a dialog, and the UAS core processes it according to the
    procedures of Sections 8.2 and 12.2.2 of RFC 3261." RFC 3261 §17.2.2: "While in the "Completed" state, the
    server transaction MUST pass the final response to the transport layer for retransmission whenever a
    retransmission of the request is received.  Any other final responses passed by the TU to the server transaction
    MUST be discarded while in the "Completed" state." (rules 3261-17.2.2-retransmit-response,
    3261-17.2.2-final-response-stable). The PRACK is sent, then the same bytes (same branch) once its 2xx arrived.
    Over UDP only: §17.2.2 sets "Timer J to fire in 64*T1 seconds for unreliable transports, and zero seconds for
    reliable transports", so on a stream the transaction is gone with its final response and the same bytes are a new
    PRACK that matches nothing pending (481 is then right)."""
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        req = prack_request(sip_peer, sip_profile, rc, rel)
        sip_peer.send(req, sip_profile.target.address)
        first = sip_peer.expect(response(range(200, 700)).for_transaction(req), _wait(sip_profile)).message
        assert first is not None and 200 <= first.status < 300, (
            f"the PRACK was answered {first.status if first else '?'}, not 2xx (§3)")
        rc.pracked.append(rel)
        sip_peer.send(bytes(req), sip_profile.target.address)
        try:
            again = sip_peer.expect(response().for_transaction(req), _wait(sip_profile)).message
        except ExpectationFailed:
            pytest.fail(f"the retransmitted PRACK (same branch) got no response within {_wait(sip_profile):g} s; "
                        f"§17.2.2: in the \"Completed\" state the server passes the final response {first.status} "
                        "again (rule 3261-17.2.2-retransmit-response)")
        assert again is not None
        assert again.status == first.status, (
            f"the retransmitted PRACK (same branch) was answered {again.status} {again.reason} after {first.status} "
            "(§17.2.2: the final response is passed again)")
        assert (again.to.tag if again.to else None) == (first.to.tag if first.to else None), (
            "the response to the retransmitted PRACK has another To tag than the first")
    finally:
        finish(sip_peer, sip_profile, rc)


# -- ordering ------------------------------------------------------------------------------------------------------


@pytest.mark.sip_faults("second-before-prack")
@pytest.mark.sip_purpose("TP-REL-013", "No second reliable 1xx before the first is PRACKed", "RFC 3262 §3")
def test_s3_no_second_reliable_before_prack(sip_peer, sip_profile):
    """§3: "After the first reliable provisional response for a request has been acknowledged, the UAS MAY send
    additional reliable provisional responses.  The UAS MUST NOT send a second reliable provisional response until
    the first is acknowledged." (rule 3262-3-prack-before-second). The PRACK of the first is withheld for 4*T1 (at
    least 2 s); only retransmissions of it may arrive meanwhile."""
    t1 = sip_profile.timers.t1
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        end = time.monotonic() + max(2.0, 4 * t1)
        while rc.final is None and time.monotonic() < end:
            if next_response(sip_peer, rc, end - time.monotonic()) is None:
                break
        others = [m for m in rc.distinct_reliables() if key(m) != key(rel)]
        assert not others, (
            f"while {describe(rel)} waited for its PRACK, the device sent {describe(others[0])} (§3: \"The UAS MUST "
            "NOT send a second reliable provisional response until the first is acknowledged\"; rule "
            "3262-3-prack-before-second)")
        if rc.final is None:
            prack(sip_peer, sip_profile, rc, rel)
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_faults("200-before-prack")
@pytest.mark.sip_purpose("TP-REL-014", "No 2xx to the INVITE while a reliable 1xx with SDP is unacknowledged",
                         "RFC 3262 §3", "RFC 3261 §13.3.1.4")
def test_s3_no_2xx_before_prack_of_sdp_1xx(sip_peer, sip_profile):
    """§3: "The UAS MAY send a final response to the initial request before having received PRACKs for all
    unacknowledged reliable provisional responses, unless the final response is 2xx and any of the unacknowledged
    reliable provisional responses contained a session description.  In that case, it MUST NOT send a final response
    until those provisional responses are acknowledged." (rule 3262-3-no-2xx-before-prack). RFC 3261 §13.3.1.4:
    "If the INVITE request contained an offer, and the UAS had not yet sent an answer, the 2xx MUST contain an
    answer." -- an answer sent in a reliable provisional has been sent, and RFC 3262 holds the 2xx until that
    provisional is acknowledged. The INVITE carries an offer; when the first reliable 1xx carries a session
    description, its PRACK is withheld for 4*T1 (at least 2 s): no 2xx may come meanwhile (a non-2xx final may);
    after the PRACK the call goes on."""
    t1 = sip_profile.timers.t1
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        if not rel.body:
            inconclusive(f"the first reliable provisional {describe(rel)} carries no session description")
        end = time.monotonic() + max(2.0, 4 * t1)
        while rc.final is None and time.monotonic() < end:
            if next_response(sip_peer, rc, end - time.monotonic()) is None:
                break
        final = rc.final
        assert final is None or not 200 <= final.status < 300, (
            f"the device sent {final.status} {final.reason} while {describe(rel)} (with a session description) was "
            "not PRACKed (§3: \"it MUST NOT send a final response until those provisional responses are "
            "acknowledged\"; rule 3262-3-no-2xx-before-prack)")
        if final is None:
            prack(sip_peer, sip_profile, rc, rel)
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_purpose("TP-REL-019", "An INVITE without offer gets the offer in the first reliable 1xx",
                         "RFC 3261 §13.3.1", "RFC 3261 §13.2.1", "RFC 3262 §3")
def test_s3_offer_in_first_reliable_1xx(sip_peer, sip_profile):
    """RFC 3261 §13.3.1: "If the INVITE does not contain a session description, the UAS is being asked to participate
    in a session, and the UAC has asked that the UAS provide the offer of the session.  It MUST provide the offer in
    its first non-failure reliable message back to the UAC." With 100rel, a reliable provisional is such a message;
    §13.2.1: "If the initial offer is in the first reliable non-failure message from the UAS back to UAC, the answer
    MUST be in the acknowledgement for that message" -- the PRACK, which here carries the answer. The INVITE requires
    100rel and has no body: the first reliable 1xx must carry an SDP offer."""
    rc = invite(sip_peer, sip_profile, with_sdp=False)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        ctype = rel.content_type.mime if rel.content_type else None
        assert rel.body and ctype == "application/sdp", (
            f"the INVITE had no offer and the first reliable provisional, {describe(rel)}, carries "
            + (f"a {ctype} body" if rel.body else "no session description")
            + " (§13.3.1: \"It MUST provide the offer in its first non-failure reliable message back to the UAC\")")
        sdp = rel.sdp
        assert sdp is not None and sdp.media, f"the offer in {describe(rel)} has no media description"
        _, final = prack(sip_peer, sip_profile, rc, rel)
        assert 200 <= final.status < 300, (
            f"the PRACK carrying the answer to the offer in {describe(rel)} was answered {final.status} {final.reason}")
    finally:
        finish(sip_peer, sip_profile, rc)


# -- negotiation ---------------------------------------------------------------------------------------------------


@pytest.mark.sip_faults("reliable-unasked")
@pytest.mark.sip_purpose("TP-REL-015", "Without 100rel in Supported or Require, no provisional is sent reliably",
                         "RFC 3262 §3")
def test_s3_no_reliable_without_100rel(sip_peer, sip_profile):
    """§3: "If the request did not include either a Supported or Require header field indicating this feature, the
    UAS MUST NOT send the provisional response reliably." (rule 3262-3-reliable-needs-offer). The INVITE names no
    option tag; no 101-199 may carry RSeq or Require: 100rel. (A device that insists on 100rel answers 421: that is
    TP-REL-016.)"""
    rc = invite(sip_peer, sip_profile, headers=())
    try:
        end = time.monotonic() + 2 * _wait(sip_profile)
        while rc.final is None and time.monotonic() < end:
            if next_response(sip_peer, rc, end - time.monotonic()) is None:
                break
        ones = [m for m in rc.provisionals() if 101 <= m.status <= 199]
        marked = [m for m in ones if is_reliable(m)]
        assert not marked, (
            f"the INVITE offered no 100rel and the device sent {describe(marked[0])} (§3: \"the UAS MUST NOT send the "
            "provisional response reliably\"; rule 3262-3-reliable-needs-offer)")
        if not ones and (rc.final is None or rc.final.status != 421):
            inconclusive("the device sent no 101-199 provisional response to judge")
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_purpose("TP-REL-016", "A device that requires 100rel answers an INVITE without it 421 with "
                         "Require: 100rel", "RFC 3261 §21.4.16", "RFC 3261 §8.2.2.3", "RFC 3262 §3")
def test_s3_required_100rel_421(sip_peer, sip_profile):
    """RFC 3261 §21.4.16 (421 Extension Required): "The UAS needs a particular extension to process the request, but
    this extension is not listed in a Supported header field in the request.  Responses with this status code MUST
    contain a Require header field listing the required extensions." (rule 3261-8.2.4-require-in-421). The INVITE
    names no option tag. A device that processes it does not require 100rel (not applicable, from what it did); one
    that answers 421 must say, in Require, that 100rel is what it needs."""
    rc = invite(sip_peer, sip_profile, headers=())
    try:
        end = time.monotonic() + 2 * _wait(sip_profile)
        while rc.final is None and time.monotonic() < end:
            msg = next_response(sip_peer, rc, end - time.monotonic())
            if msg is None or 101 <= msg.status <= 199:
                break
        final = rc.final
        if final is None or final.status != 421:
            what = f"answered {final.status} {final.reason}" if final is not None else (
                f"sent {describe(rc.provisionals()[-1])}" if rc.provisionals() else "did not answer")
            not_applicable(f"the device does not require 100rel: it {what} to an INVITE without it")
        assert "100rel" in [t.lower() for t in final.require], (
            f"the 421 to an INVITE without 100rel has Require: {', '.join(final.require) or '(none)'}, not 100rel "
            "(§21.4.16: \"MUST contain a Require header field listing the required extensions\")")
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_faults("no-420", "no-unsupported-420")
@pytest.mark.sip_purpose("TP-REL-017", "An unknown option tag required beside 100rel gets 420 listing only the "
                         "unknown one", "RFC 3261 §8.2.2.3", "RFC 3262 §3")
def test_s3_unknown_require_with_100rel_420(sip_peer, sip_profile):
    """RFC 3261 §8.2.2.3: "If a UAS does not understand an option-tag listed in a Require header field, it MUST
    respond by generating a response with status code 420 (Bad Extension).  The UAS MUST add an Unsupported header
    field, and list in it those options it does not understand amongst those in the Require header field of the
    request." (rule 3261-8.2.2.3-unsupported-in-420). ``Require: 100rel, x-sipcert-unknown``: 420, Unsupported lists
    x-sipcert-unknown and not 100rel, which the device understands."""
    tag = "x-sipcert-unknown"
    rc = invite(sip_peer, sip_profile, headers=(("Supported", "100rel"), ("Require", f"100rel, {tag}")))
    try:
        end = time.monotonic() + _wait(sip_profile)
        while rc.final is None and time.monotonic() < end:
            if next_response(sip_peer, rc, end - time.monotonic()) is None:
                break
        final = rc.final
        got = f"{final.status} {final.reason}" if final is not None else (
            ", ".join(describe(m) for m in rc.provisionals()) or "nothing")
        assert final is not None and final.status == 420, (
            f"Require: 100rel, {tag} was answered with {got}, not 420 (§8.2.2.3)")
        unsupported = [t.lower() for t in final.unsupported]
        assert tag in unsupported, f"the 420 lists Unsupported: {', '.join(final.unsupported) or '(none)'}, not {tag}"
        assert "100rel" not in unsupported, (
            f"the 420 lists 100rel in Unsupported ({', '.join(final.unsupported)}), though the device supports it: "
            "Unsupported lists \"those options it does not understand\" (§8.2.2.3)")
        assert not [m for m in rc.provisionals() if 101 <= m.status <= 199], (
            "the device sent a 101-199 provisional before rejecting the INVITE for its Require")
    finally:
        finish(sip_peer, sip_profile, rc)


@pytest.mark.sip_timer(40)
@pytest.mark.sip_purpose("TP-REL-018", "After 64*T1 without PRACK the INVITE is rejected with a 5xx", "RFC 3262 §3")
def test_s3_no_prack_64t1_rejected_5xx(sip_peer, sip_profile, sip_should):
    """§3: "If a reliable provisional response is retransmitted for 64*T1 seconds without reception of a
    corresponding PRACK, the UAS SHOULD reject the original request with a 5xx response." A SHOULD: no 5xx within
    64*T1 (plus max(1 s, 10 %)) after the first reliable 1xx is a warning; a 2xx while the 1xx with a session
    description was unacknowledged is a MUST violation (rule 3262-3-no-2xx-before-prack)."""
    t1 = sip_profile.timers.t1
    rc = invite(sip_peer, sip_profile)
    try:
        rel = _first_reliable(sip_peer, sip_profile, rc)
        limit = 64 * t1
        end = time.monotonic() + limit + max(1.0, 0.1 * limit)
        while rc.final is None and time.monotonic() < end:
            if next_response(sip_peer, rc, end - time.monotonic()) is None:
                break
        final = rc.final
        if final is not None and 200 <= final.status < 300 and not rel.body:
            inconclusive(f"the device answered {final.status} without waiting for the PRACK of {describe(rel)} (no "
                         "session description in it, so it may)")
        assert final is None or not 200 <= final.status < 300, (
            f"the device answered {final.status} {final.reason} while {describe(rel)} with a session description was "
            "not PRACKed (rule 3262-3-no-2xx-before-prack)")
        sip_should(final is not None and 500 <= final.status < 600, "3262-3-prack-timeout-5xx", "RFC 3262 §3",
                   f"no 5xx within {limit:.1f} s without PRACK of {describe(rel)}: "
                   + (f"final {final.status} {final.reason}" if final is not None else "no final response"))
    finally:
        finish(sip_peer, sip_profile, rc)
