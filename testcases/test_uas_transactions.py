"""The UAS's server transactions and the identifiers it makes (RFC 3261 §17.2, §17, §19.3, §8.2.6.2; RFC 4475).

Requests are sent on the raw path (outside the peer's client transactions) where the test must control what is
retransmitted and when; every response the device sends is in the trace, and the passive rules judge them too.
"""

from __future__ import annotations

import pytest

from conformance.checks import tag_entropy_bits
from conformance.peer import ExpectationFailed, Incoming, response
from conformance.plugin import inconclusive
from conformance.sip import Request, Response, name_addr, parse
from testcases._requests import (
    answer_wait,
    assert_alive,
    baseline_options,
    describe,
    edit,
    end_call,
    final_to,
    invite_request,
    merged_invites,
    quiet_time,
    responses_to,
    unique,
)
from testcases._support import bye, establish, in_dialog, target_uri

pytestmark = pytest.mark.sip_requires(role="uas")

#: A response sent less than this long after our retransmission may have left the device before the retransmission
#: reached it (a race, judged inconclusive rather than failed).
_RACE = 0.015
#: How long no further provisional must arrive before an INVITE is retransmitted in the Proceeding state.
_QUIET = 0.005
#: After a 100 Trying, how long to wait for the provisional the TU may be about to send.
_SETTLE = 0.1


def _send(peer, profile, data: bytes | Request) -> float:
    """Send on the raw path; return the trace time of the send."""
    peer.send(data if isinstance(data, bytes) else data, profile.target.address)
    sent = peer.trace.messages("sent")
    return sent[-1].time if sent else peer.trace.now()


def _tag(r: Response) -> str | None:
    return r.to.tag if r.to is not None else None


def _msgs(items: list[Incoming]) -> list[Response]:
    return [i.message for i in items if isinstance(i.message, Response)]


# ---------------------------------------------------------------------------------------------------------------------
# §17.2.1, §17.2.2: request retransmissions
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-TXN-001", "An INVITE retransmission in Proceeding gets the last provisional again",
                         "RFC 3261 §17.2.1", "RFC 3261 §17.2.3")
@pytest.mark.sip_faults("no-provisional-retransmit")
def test_s17_2_1_invite_retransmission_gets_last_provisional(sip_peer, sip_profile):
    """§17.2.1: "If a request retransmission is received while in the "Proceeding" state, the most recent provisional
    response that was received from the TU MUST be passed to the transport layer for retransmission.  A request is a
    retransmission if it matches the same server transaction based on the rules of Section 17.2.3."

    The INVITE is sent again, byte for byte, as soon as its first provisional response arrives. A provisional sent
    before must come again (the most recent one when the retransmission arrived: it may be one already under way when
    the test reacted). A device that answers with a final response before the retransmission could reach it leaves
    the Proceeding state untested: inconclusive. An OPTIONS goes first, so that on a stream transport the connection
    (and a TLS session) is set up before the timing matters."""
    baseline_options(sip_peer, sip_profile)
    inv = invite_request(sip_peer, sip_profile)
    branch = inv.transaction_branch
    _send(sip_peer, sip_profile, bytes(inv))
    wait = answer_wait(sip_profile)
    try:
        first = sip_peer.expect(response(call_id=inv.call_id, branch=branch), wait)
    except ExpectationFailed:
        raise AssertionError(f"no response within {wait:g} s to an INVITE") from None
    # Let the provisionals the device sends back to back (a 180 right after the 100) arrive first, so that the test
    # knows which one is the most recent when the retransmission reaches the device: after a 100, wait up to _SETTLE
    # for a later provisional; then until _QUIET passes without one.
    before = [first]
    last_seen = first.time
    while True:
        now = sip_peer.trace.now()
        advanced = any(m.status > 100 for m in _msgs(before))
        if now - last_seen >= _QUIET and (advanced or now - first.time >= _SETTLE):
            break
        more = responses_to(sip_peer, 0.002, call_id=inv.call_id, branch=branch)
        if more:
            before += more
            last_seen = max(i.time for i in more)
            if any(m.status >= 200 for m in _msgs(more)):
                break
    finals = [m for m in _msgs(before) if m.status >= 200]
    if finals:
        end_call(sip_peer, sip_profile, inv, finals[0])
        inconclusive(f"the device answered the INVITE at once ({describe(before)}): no Proceeding state to test")
    resent_at = _send(sip_peer, sip_profile, bytes(inv))
    after = responses_to(sip_peer, quiet_time(sip_profile), call_id=inv.call_id, branch=branch)
    msgs = _msgs(after)
    final = next((m for m in msgs if m.status >= 200), None)
    end_call(sip_peer, sip_profile, inv, final)
    # The most recent provisional when the retransmission reached the device may be one that was already under way
    # (a 180 following the 100 the test reacted to): any provisional that comes after the retransmission and repeats
    # one sent before it is the repetition.
    seen: list[tuple[int, str | None]] = [(m.status, _tag(m)) for m in _msgs(before)]
    for m in msgs:
        if m.status >= 200:
            break
        if (m.status, _tag(m)) in seen:
            return
        seen.append((m.status, _tag(m)))
    final_in = next((i for i in after if isinstance(i.message, Response) and i.message.status >= 200), None)
    if final_in is not None and final_in.time - resent_at < _RACE:
        inconclusive(f"the final response left {1000 * (final_in.time - resent_at):.0f} ms after the retransmission: "
                     "the device may have ended Proceeding before the retransmission reached it")
    raise AssertionError(
        f"the INVITE, retransmitted after {describe(before)}, got no provisional response again "
        f"(after the retransmission: {describe(after)}); RFC 3261 §17.2.1 (3261-17.2.1-retransmit-provisional)"
    )


@pytest.mark.sip_purpose("TP-TXN-002", "An INVITE retransmission after the final response gets it again and makes "
                         "no new dialog", "RFC 3261 §17.2.1", "RFC 3261 §13.3.1.4", "RFC 3261 §17.2.3")
def test_s17_2_1_invite_retransmission_after_final_same_response(sip_peer, sip_profile, sip_should):
    """§17.2.3: a request matches a transaction if "the branch parameter in the request is equal to the one in the top
    Via header field of the request that created the transaction" (and sent-by and method match): the same INVITE sent
    again is a retransmission, not a new call. §17.2.1: "while in the "Completed" state, if a request retransmission
    is received, the server SHOULD pass the response to the transport for retransmission." §13.3.1.4, for a 2xx: "The
    2xx response is passed to the transport with an interval that starts at T1 seconds and doubles for each
    retransmission until it reaches T2 seconds" until the ACK.

    After the final response the INVITE is sent again. Whatever comes after it must be that final response (same
    status, same To tag): no new 100/180, no second dialog. For a 2xx something must come (the UAS retransmits it
    until the ACK); for a 300-699 its repetition is the SHOULD."""
    inv = invite_request(sip_peer, sip_profile)
    branch = inv.transaction_branch
    _send(sip_peer, sip_profile, bytes(inv))
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=inv.call_id, branch=branch, timeout=wait)
    if final is None:
        end_call(sip_peer, sip_profile, inv, None)
        inconclusive(f"no final response to the INVITE within {wait:g} s")
    responses_to(sip_peer, 0.0, call_id=inv.call_id, branch=branch)  # what came before the retransmission
    _send(sip_peer, sip_profile, bytes(inv))
    after = _msgs(responses_to(sip_peer, quiet_time(sip_profile), call_id=inv.call_id, branch=branch))
    end_call(sip_peer, sip_profile, inv, final)
    odd = [m for m in after if m.status != final.status or _tag(m) != _tag(final)]
    assert not odd, (
        f"after the {final.status} (To tag {_tag(final)!r}) the retransmitted INVITE got {describe(odd)} "
        f"(To tags {sorted({str(_tag(m)) for m in odd})}): it was handled as a new request, not as a retransmission "
        "(RFC 3261 §17.2.3)"
    )
    if 200 <= final.status < 300:
        assert after, (
            f"after the retransmitted INVITE no {final.status} came within {quiet_time(sip_profile):g} s, though the "
            "2xx is retransmitted until the ACK (RFC 3261 §13.3.1.4, 3261-13.3.1.4-2xx-retransmit)"
        )
    else:
        sip_should(bool(after), "3261-17.2.1-completed-retransmit", "RFC 3261 §17.2.1",
                   f"the INVITE retransmitted after its {final.status} did not get the {final.status} again")


@pytest.mark.sip_purpose("TP-TXN-003", "An OPTIONS retransmission gets the same final response",
                         "RFC 3261 §17.2.2", "RFC 3261 §17.2.3")
@pytest.mark.sip_requires(transports=("udp",))
@pytest.mark.sip_faults("no-response-retransmit", "final-response-unstable")
def test_s17_2_2_options_retransmission_gets_same_final(sip_peer, sip_profile):
    """§17.2.2: "While in the "Completed" state, the server transaction MUST pass the final response to the transport
    layer for retransmission whenever a retransmission of the request is received.  Any other final responses passed
    by the TU to the server transaction MUST be discarded while in the "Completed" state." Over UDP the Completed state
    lasts Timer J, 64*T1 (over reliable transports requests are not retransmitted, so the test is for UDP)."""
    req = sip_peer.build_request("OPTIONS", target_uri(sip_profile))
    _send(sip_peer, sip_profile, bytes(req))
    wait = answer_wait(sip_profile)
    first = final_to(sip_peer, call_id=req.call_id, branch=req.transaction_branch, timeout=wait)
    assert first is not None, f"no final response within {wait:g} s to an OPTIONS"
    _send(sip_peer, sip_profile, bytes(req))
    again = final_to(sip_peer, call_id=req.call_id, branch=req.transaction_branch, timeout=quiet_time(sip_profile))
    assert again is not None, (
        f"the retransmitted OPTIONS got no response within {quiet_time(sip_profile):g} s; the first got "
        f"{first.status} {first.reason} (RFC 3261 §17.2.2, 3261-17.2.2-retransmit-response)"
    )
    assert (again.status, _tag(again)) == (first.status, _tag(first)), (
        f"the retransmitted OPTIONS got {again.status} {again.reason} (To tag {_tag(again)!r}), the first "
        f"{first.status} {first.reason} (To tag {_tag(first)!r}): the final response must be the same "
        "(RFC 3261 §17.2.2, 3261-17.2.2-final-response-stable)"
    )
    if bytes(again) != bytes(first):
        sip_peer.trace.note("the retransmitted final response is not byte-identical to the first")


@pytest.mark.sip_purpose("TP-TXN-004", "A BYE retransmission gets the same final response, not 481",
                         "RFC 3261 §17.2.2", "RFC 3261 §15.1.2")
@pytest.mark.sip_requires(transports=("udp",))
@pytest.mark.sip_faults("no-response-retransmit", "final-response-unstable")
def test_s17_2_2_bye_retransmission_gets_same_final(sip_peer, sip_profile):
    """§17.2.2: "While in the "Completed" state, the server transaction MUST pass the final response to the transport
    layer for retransmission whenever a retransmission of the request is received." The BYE ends the dialog, but its
    retransmission still belongs to the BYE's server transaction (Timer J, 64*T1 over UDP): it gets the same 200, not a
    481 from a core that no longer knows the dialog."""
    call = establish(sip_peer, sip_profile, timeout=answer_wait(sip_profile))
    if call.dialog is None:
        inconclusive(f"the INVITE was answered {call.final.status if call.final else 'nothing'}: no dialog to end")
    bye_req = in_dialog(sip_peer, call, "BYE")
    _send(sip_peer, sip_profile, bytes(bye_req))
    wait = answer_wait(sip_profile)
    first = final_to(sip_peer, call_id=bye_req.call_id, branch=bye_req.transaction_branch, method="BYE", timeout=wait)
    assert first is not None, f"no final response within {wait:g} s to the BYE"
    _send(sip_peer, sip_profile, bytes(bye_req))
    again = final_to(sip_peer, call_id=bye_req.call_id, branch=bye_req.transaction_branch, method="BYE",
                     timeout=quiet_time(sip_profile))
    assert again is not None, (
        f"the retransmitted BYE got no response within {quiet_time(sip_profile):g} s; the first got {first.status} "
        f"{first.reason} (RFC 3261 §17.2.2, 3261-17.2.2-retransmit-response)"
    )
    assert (again.status, _tag(again)) == (first.status, _tag(first)), (
        f"the retransmitted BYE got {again.status} {again.reason}, the first {first.status} {first.reason}: the "
        "final response must be the same (RFC 3261 §17.2.2, 3261-17.2.2-final-response-stable)"
    )


@pytest.mark.sip_purpose("TP-TXN-005", "An INVITE with a new branch is its own transaction, not a retransmission",
                         "RFC 3261 §17.2.3", "RFC 3261 §8.2.2.2")
def test_s17_2_3_new_branch_is_not_a_retransmission(sip_peer, sip_profile):
    """§17.2.3: "If it is present and begins with the magic cookie "z9hG4bK", the request was generated by a client
    transaction compliant to this specification.  Therefore, the branch parameter will be unique across all
    transactions sent by that client.  The request matches a transaction if: 1. the branch parameter in the request is
    equal to the one in the top Via header field of the request that created the transaction, [...]"

    A second INVITE with the same Call-ID, From tag and CSeq but another branch matches no transaction: it is a new
    request (a merged one, §8.2.2.2), answered on its own branch. A device that takes it for a retransmission of the
    first answers only on the first INVITE's branch."""
    second, got, wait = merged_invites(sip_peer, sip_profile)
    assert got is not None, (
        f"the INVITE with a new branch (same Call-ID, From tag, CSeq as one in progress) got no final response on "
        f"its own branch within {wait:g} s: it was taken for a retransmission (RFC 3261 §17.2.3)"
    )


@pytest.mark.sip_purpose("TP-TXN-006", "An ACK that matches nothing is never answered", "RFC 3261 §17",
                         "RFC 3261 §17.1", "RFC 3261 §18.2.1")
def test_s17_ack_for_unknown_transaction_not_answered(sip_peer, sip_profile):
    """§17.1: "There is no client transaction for ACK.  If the TU wishes to send an ACK, it passes one directly to
    the transport layer for transmission." §17: the client transaction filters out "disallowed responses (such as a
    response to ACK)". §18.2.1: an ACK matching no server transaction "is passed to the UAS core, where it is
    processed" - and a UAS core does not answer ACK.

    Two ACKs the device cannot match: one as for a 2xx (unknown To tag, new branch), one as for a 300-699 (no To tag,
    a branch no INVITE had). Neither may be answered."""
    uri = target_uri(sip_profile)
    to_uri = uri.split(";", 1)[0]
    for_2xx = sip_peer.build_request("ACK", uri, to=name_addr(to_uri, None, unique("t")), contact=False)
    for_non2xx = sip_peer.build_request("ACK", uri, contact=False)
    _send(sip_peer, sip_profile, bytes(for_2xx))
    _send(sip_peer, sip_profile, bytes(for_non2xx))
    window = quiet_time(sip_profile)
    for ack_req in (for_2xx, for_non2xx):
        got = responses_to(sip_peer, window if ack_req is for_2xx else 0.0, call_id=ack_req.call_id)
        assert not got, (
            f"an ACK matching no transaction ({'unknown To tag' if ack_req is for_2xx else 'no To tag'}) was "
            f"answered {describe(got)}: an ACK is never answered (RFC 3261 §17, 3261-17-no-response-to-ack)"
        )
    assert_alive(sip_peer, sip_profile, "two ACKs matching nothing")


@pytest.mark.sip_purpose("TP-TXN-007", "The ACK for a 2xx is not answered", "RFC 3261 §17", "RFC 3261 §13.3.1.4")
@pytest.mark.sip_faults("answer-ack")
def test_s17_ack_for_2xx_not_answered(sip_peer, sip_profile):
    """§17: "If the response was a 2xx, the ACK is not considered part of the transaction." and the client transaction
    filters out "disallowed responses (such as a response to ACK)". §13.3.1.4: "Response retransmissions cease when an
    ACK request for the response is received." The ACK ends the 2xx retransmissions; it gets no response."""
    call = establish(sip_peer, sip_profile, timeout=answer_wait(sip_profile))
    if call.acked is None:
        inconclusive(f"the INVITE was answered {call.final.status if call.final else 'nothing'}: no 2xx to ACK")
    got = responses_to(sip_peer, quiet_time(sip_profile), call_id=call.invite.call_id, method="ACK")
    bye(sip_peer, sip_profile, call)
    assert not got, (
        f"the ACK for the 2xx was answered {describe(got)}: an ACK is never answered (RFC 3261 §17, "
        "3261-17-no-response-to-ack)"
    )


@pytest.mark.sip_faults("trying-to-tag")
@pytest.mark.sip_purpose("TP-TXN-008", "An INVITE gets 100 Trying within 200 ms unless answered sooner",
                         "RFC 3261 §17.2.1")
@pytest.mark.sip_timer(1)
def test_s17_2_1_trying_within_200ms(sip_peer, sip_profile):
    """§17.2.1: "When a server transaction is constructed for a request, it enters the "Proceeding" state.  The server
    transaction MUST generate a 100 (Trying) response unless it knows that the TU will generate a provisional or final
    response within 200 ms, in which case it MAY generate a 100 (Trying) response.  This provisional response is
    needed to quench request retransmissions rapidly in order to avoid network congestion."

    Pass: a 100 within 200 ms. Fail: the first response comes later than 200 ms and is not a 100 (or nothing comes).
    When another response came first within 200 ms the 100 was not required: inconclusive. Tolerance: 200 ms plus
    max(50 ms, T1/10) for scheduling on the two hosts."""
    inv = invite_request(sip_peer, sip_profile)
    sent_at = _send(sip_peer, sip_profile, bytes(inv))
    limit = 0.2 + max(0.05, sip_profile.timers.t1 / 10)
    wait = answer_wait(sip_profile)
    try:
        first = sip_peer.expect(response(call_id=inv.call_id, branch=inv.transaction_branch), wait)
    except ExpectationFailed:
        end_call(sip_peer, sip_profile, inv, None)
        raise AssertionError(f"no response at all within {wait:g} s to an INVITE; a 100 Trying is due within "
                             "200 ms (RFC 3261 §17.2.1)") from None
    rest = responses_to(sip_peer, 0.0, call_id=inv.call_id, branch=inv.transaction_branch)
    msg = first.message
    assert isinstance(msg, Response)
    delay = first.time - sent_at
    trying = next((i for i in [first, *rest] if isinstance(i.message, Response) and i.message.status == 100), None)
    final_items = [i for i in [first, *rest] if isinstance(i.message, Response) and i.message.status >= 200]
    final = final_items[0].message if final_items else final_to(
        sip_peer, call_id=inv.call_id, branch=inv.transaction_branch, timeout=wait)
    end_call(sip_peer, sip_profile, inv, final if isinstance(final, Response) else None)
    if trying is not None and trying.time - sent_at <= limit:
        return
    if msg.status != 100 and delay <= limit:
        inconclusive(f"the device answered {msg.status} {msg.reason} after {1000 * delay:.0f} ms, within 200 ms, so "
                     "a 100 Trying was not required and its timing could not be provoked")
    raise AssertionError(
        f"the first response to the INVITE, {msg.status} {msg.reason}, came after {1000 * delay:.0f} ms; a 100 Trying "
        f"is due within 200 ms (limit with tolerance {1000 * limit:.0f} ms) when the TU has not answered by then "
        "(RFC 3261 §17.2.1)"
    )


@pytest.mark.sip_purpose("TP-TXN-009", "An RFC 2543 INVITE (no branch, no From tag) is accepted or answered 400",
                         "RFC 3261 §17.2.3", "RFC 3261 §12.1.1", "RFC 4475 §3.4.1")
def test_s17_2_3_rfc2543_invite_handled(sip_peer, sip_profile):
    """§17.2.3: "If the branch parameter in the top Via header field is not present, or does not contain the magic
    cookie, the following procedures are used.  These exist to handle backwards compatibility with RFC 2543 compliant
    implementations." §12.1.1: "A UAS MUST be prepared to receive a request without a tag in the From field, in which
    case the tag is considered to have a value of null." RFC 4475 §3.4.1 (inv2543): "This is a legal message per RFC
    2543 (and several bis versions) that should be accepted by RFC 3261 elements that want to maintain backwards
    compatibility."

    The INVITE has no branch, no From tag and no Max-Forwards; over UDP no Content-Length (the body is the rest of the
    datagram), over a stream a Content-Length (§18.3: it MUST be used there). Accepted: a 2xx (then ACK and BYE) or a
    400; the device must answer and keep answering."""
    inv = invite_request(sip_peer, sip_profile)
    ep = sip_peer.endpoint()
    via = f"SIP/2.0/{ep.via_transport} {ep.sent_by()}"
    from_ = f"<{sip_peer.local_uri()}>"
    stream = sip_profile.target.transport != "udp"
    data = edit(inv, drop=["Max-Forwards"], replace={"Via": via, "From": from_, "CSeq": "56 INVITE"},
                content_length="auto" if stream else None)
    sent = parse(data, stream=stream).message
    assert isinstance(sent, Request)
    _send(sip_peer, sip_profile, data)
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=inv.call_id, method="INVITE", timeout=wait)
    end_call(sip_peer, sip_profile, sent, final)
    assert final is not None, f"no final response within {wait:g} s to an RFC 2543 style INVITE (RFC 4475 §3.4.1)"
    assert 200 <= final.status < 300 or final.status == 400, (
        f"an RFC 2543 style INVITE (no branch, no From tag) was answered {final.status} {final.reason}; accept it "
        "(RFC 4475 §3.4.1, RFC 3261 §12.1.1) or reject it as malformed with 400"
    )
    assert_alive(sip_peer, sip_profile, "an RFC 2543 style INVITE")


@pytest.mark.sip_purpose("TP-TXN-010", "A branch that is only the magic cookie is accepted or answered 400",
                         "RFC 3261 §17.2.3", "RFC 3261 §8.1.1.7", "RFC 4475 §3.2.1")
def test_s17_2_3_branch_cookie_only_handled(sip_peer, sip_profile):
    """RFC 4475 §3.2.1 (badbranch, branch=z9hG4bK): "This request indicates support for RFC 3261-style transaction
    identifiers by providing the z9hG4bK prefix to the branch parameter, but it provides no identifier.  A parser must
    not break when receiving this message.  An element receiving this request could reject the request with a 400
    Response (preferably statelessly, as other requests from the source are likely also to have a malformed branch
    parameter), or it could fall back to the RFC 2543-style transaction identifier." Accepted: 400, or the answer the
    device gives a well-formed OPTIONS."""
    normal = baseline_options(sip_peer, sip_profile)
    req = sip_peer.build_request("OPTIONS", target_uri(sip_profile))
    ep = sip_peer.endpoint()
    data = edit(req, replace={"Via": f"SIP/2.0/{ep.via_transport} {ep.sent_by()};branch=z9hG4bK"})
    _send(sip_peer, sip_profile, data)
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=req.call_id, timeout=wait)
    assert final is not None, f"no final response within {wait:g} s to an OPTIONS with branch=z9hG4bK"
    assert final.status in (400, normal.status), (
        f"an OPTIONS whose branch is only the magic cookie was answered {final.status} {final.reason}; RFC 4475 "
        f"§3.2.1 allows 400 or processing it ({normal.status}, as a well-formed OPTIONS)"
    )
    assert_alive(sip_peer, sip_profile, "a branch that is only the magic cookie")


# ---------------------------------------------------------------------------------------------------------------------
# §19.3: tags; §8.1.1.4: Call-ID
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-TXN-011", "To tags differ from the From tag, from each other, and look random",
                         "RFC 3261 §19.3")
@pytest.mark.sip_faults("fixed-tag", "weak-tags")
def test_s19_3_to_tags_unique_and_random(sip_peer, sip_profile, sip_should):
    """§19.3: "When a tag is generated by a UA for insertion into a request or response, it MUST be globally unique and
    cryptographically random with at least 32 bits of randomness.  A property of this selection requirement is that a
    UA will place a different tag into the From header of an INVITE than it would place into the To header of the
    response to the same INVITE." and "two responses for different calls will have different To tags."

    Four OPTIONS, each from a new call: the To tags differ from the request's From tag (MUST) and from each other
    (MUST), and do not count up (a counter is not random: MUST). Whether each can hold 32 random bits (length and
    alphabet) is a heuristic: SHOULD (3261-19.3-tag-random)."""
    tags: list[str] = []
    for _ in range(4):
        req = sip_peer.build_request("OPTIONS", target_uri(sip_profile))
        final = sip_peer.final_response(sip_peer.request(req, sip_profile.target.address), answer_wait(sip_profile))
        tag = _tag(final)
        assert tag, f"the {final.status} to an OPTIONS has no To tag (RFC 3261 §8.2.6.2)"
        assert req.from_ is not None and tag != req.from_.tag, (
            f"the To tag of the {final.status} equals the request's From tag {tag!r} (RFC 3261 §19.3)"
        )
        tags.append(tag)
    assert len(set(tags)) == len(tags), (
        f"four calls got the To tags {tags}: tags MUST be globally unique (RFC 3261 §19.3, 3261-19.3-tag-unique)"
    )
    if all(t.isdigit() for t in tags):
        steps = [int(b) - int(a) for a, b in zip(tags, tags[1:], strict=False)]
        assert not all(0 < s <= 1000 for s in steps), (
            f"the To tags of four calls count up ({tags}): a counter is not cryptographically random "
            "(RFC 3261 §19.3)"
        )
    for t in tags:
        bits = tag_entropy_bits(t)
        sip_should(bits >= 32, "3261-19.3-tag-random", "RFC 3261 §19.3",
                   f"the To tag {t!r} can hold at most {bits:.1f} bits of randomness, fewer than 32")


@pytest.mark.sip_purpose("TP-TXN-012", "Two INVITEs get two different To tags", "RFC 3261 §19.3",
                         "RFC 3261 §12.1.1")
@pytest.mark.sip_faults("fixed-tag")
def test_s19_3_distinct_to_tags_for_two_invites(sip_peer, sip_profile):
    """§19.3: "Similarly, two INVITEs for different calls will have different From tags, and two responses for
    different calls will have different To tags." Two calls; the To tags of their final responses differ (and each
    differs from the From tag of its INVITE)."""
    calls = [establish(sip_peer, sip_profile, timeout=answer_wait(sip_profile)) for _ in range(2)]
    for call in calls:
        if call.dialog is not None:
            bye(sip_peer, sip_profile, call)
    finals = [c.final for c in calls]
    assert all(f is not None for f in finals)
    tags = [_tag(f) for f in finals if f is not None]
    if not all(tags):
        inconclusive(f"the INVITEs got {describe([f for f in finals if f])} without To tags to compare")
    assert tags[0] != tags[1], (
        f"two INVITEs for different calls both got the To tag {tags[0]!r} (RFC 3261 §19.3, 3261-19.3-tag-unique)"
    )
    for call, tag in zip(calls, tags, strict=True):
        assert call.invite.from_ is not None and tag != call.invite.from_.tag, (
            f"the To tag {tag!r} equals the INVITE's From tag (RFC 3261 §19.3)"
        )


@pytest.mark.sip_purpose("TP-TXN-013", "Call-ID, tags and branch with unusual legal characters are echoed exactly",
                         "RFC 3261 §8.2.6.2", "RFC 3261 §8.1.1.4", "RFC 3261 §25.1", "RFC 4475 §3.1.1.2")
@pytest.mark.sip_faults("call-id-changed", "from-changed", "wrong-via")
def test_s8_2_6_2_unusual_identifiers_echoed(sip_peer, sip_profile):
    """RFC 4475 §3.1.1.2 (intmeth): "A branch parameter contains all non-alphanum characters from token." "The tag
    parameter on this value contains the non-alphanum token characters." "The Call-ID header field value contains the
    non-alphanum characters from word. [...] % is not an escape character [...] " does not start a quoted string [...]
    The characters []{}()<> do not have any grouping semantics." §8.2.6.2: "The From field of the response MUST equal
    the From header field of the request.  The Call-ID header field of the response MUST equal the Call-ID header
    field of the request. [...] The Via header field values in the response MUST equal the Via header field values in
    the request". §8.1.1.4: "Call-IDs are case-sensitive and are simply compared byte-by-byte."

    The OPTIONS has intmeth's Call-ID, From (token display name, odd parameter, odd tag), To display name (quoted NUL,
    BEL and DEL) and branch, each made unique."""
    u = unique("")
    call_id = f"intmeth{u}.word%ZK-!.*_+'@word`~)(><:\\/\"][?}}{{"
    tag = f"_token~1'+`*%!-.{u}"
    branch = f"z9hG4bK-.!%66*_+`'~{u}"
    req = sip_peer.build_request("OPTIONS", target_uri(sip_profile))
    ep = sip_peer.endpoint()
    from_ = f"token1~` token2'+_ token3*%!.- <{sip_peer.local_uri()}>;fromParam''~+*_!.-%=\"\u0440\u0430\u0431\";tag={tag}"
    to = f'"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <{target_uri(sip_profile).split(";", 1)[0]}>'
    data = edit(req, replace={
        "Via": f"SIP/2.0/{ep.via_transport} {ep.sent_by()};branch={branch}",
        "Call-ID": call_id,
        "From": from_,
        "To": to,
    })
    sent = parse(data).message
    assert isinstance(sent, Request) and sent.call_id == call_id and sent.transaction_branch == branch
    _send(sip_peer, sip_profile, data)
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, branch=branch, timeout=wait) or final_to(sip_peer, call_id=call_id, timeout=0.1)
    assert final is not None, f"no final response within {wait:g} s to an OPTIONS with intmeth's identifiers"
    assert final.header("Call-ID") == call_id, (
        f"Call-ID is {final.header('Call-ID')!r}, the request had {call_id!r} (byte for byte, RFC 3261 §8.1.1.4, "
        "§8.2.6.2, 3261-8.2.6.2-call-id-copied)"
    )
    assert final.from_ is not None and final.from_.tag is not None and final.from_.tag.lower() == tag.lower(), (
        f"the From tag is {final.from_.tag if final.from_ else None!r}, the request had {tag!r} (RFC 3261 §8.2.6.2)"
    )
    assert final.transaction_branch == branch, (
        f"the top Via branch is {final.transaction_branch!r}, the request had {branch!r} (RFC 3261 §8.2.6.2)"
    )
    if final.from_.tag != tag:
        sip_peer.trace.note(f"the From tag came back in another case: {final.from_.tag!r}")
