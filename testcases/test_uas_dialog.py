"""Dialogs at a UAS (RFC 3261 §12, §14, §15; RFC 3311 UPDATE, RFC 6086 INFO, RFC 3428 MESSAGE): BYE, requests
that name another dialog, CSeq ordering, re-INVITE, and the other methods inside and outside a dialog.

A request that names a dialog the device does not have may be accepted (RFC 3261 §12.2.2: "Based on the To tag, the
UAS MAY either accept or reject the request"); if it is rejected, the code MUST be 481. The test purposes assert
that, warn when the device accepts, and always check that the real dialog was not touched.
"""

from __future__ import annotations

import pytest

from conformance.peer import ExpectationFailed, response
from conformance.plugin import inconclusive
from conformance.sip import Request, Response, build_sdp, new_call_id, new_tag
from testcases._invite import (
    calls_fixture,  # noqa: F401  (the calls fixture)
    describe,
    dialog_request,
    final_responses,
    judge_no_dialog,
    route_key,
    sdp_answer,
    sent_time,
    sleep_until,
    tolerance,
    transact,
    two_xx,
    wait_until,
)

pytestmark = pytest.mark.sip_requires(role="uas")

TEXT = b"sipcert: RFC 3428 test message\r\n"


def _reoffer(peer, version: int) -> bytes:
    host = peer.endpoint().local[0]
    return build_sdp(host, 40010, session_version=version, ipv6=":" in host)


def _bye(peer, profile, call) -> Response:
    return transact(peer, profile, dialog_request(peer, call, "BYE"))


def _still_up(peer, profile, call, after: str, why: str = "the dialog was torn down by a request that did not "
             "belong to it") -> None:
    """The dialog survived ``after``: a BYE with its identifiers is answered 2xx (RFC 3261 §15.1.2: "the UAS core MUST
    generate a 2xx response to the BYE")."""
    final = _bye(peer, profile, call)
    assert 200 <= final.status < 300, (
        f"after {after}, a BYE in the real dialog was answered {final.status} {final.reason}: {why}")


def _same_to(req: Request, rsp: Response) -> None:
    """§8.2.6.2: "If a request contained a To tag in the request, the To header field in the response MUST equal that
    of the request." Equal as header fields (§20.39, §19.1.4): same URI and the same parameters, tag included."""
    a, b = req.to, rsp.to
    same = a is not None and b is not None and route_key(a) == route_key(b)
    assert same, (f"the {rsp.status} to the in-dialog {req.method} has To {rsp.header('To')!r}, the request had "
                  f"{req.header('To')!r} (3261-8.2.6.2-to-copied)")


def _expect_no_answer_to_ack(peer, call_id: str, within: float) -> None:
    peer.expect_nothing(response(call_id=call_id).where(
        lambda m: m.cseq is not None and m.cseq.method == "ACK", "a response to the ACK"), within)


# -- BYE ------------------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-DLG-001", "BYE in a confirmed dialog is answered 2xx, with the dialog's To",
                         "RFC 3261 §15.1.2", "RFC 3261 §8.2.6.2")
@pytest.mark.sip_faults("to-changed")
def test_s15_1_2_bye_in_dialog_answered_2xx(sip_peer, sip_profile, calls):
    """§15.1.2: "A UAS core receiving a BYE request for an existing dialog MUST follow the procedures of Section
    12.2.2 to process the request. [...] Whether or not it ends its participation on the session, the UAS core MUST
    generate a 2xx response to the BYE, and MUST pass that to the server transaction for transmission." §8.2.6.2:
    "If a request contained a To tag in the request, the To header field in the response MUST equal that of the
    request." """
    call = calls.established()
    req = dialog_request(sip_peer, call, "BYE")
    final = transact(sip_peer, sip_profile, req)
    assert 200 <= final.status < 300, f"BYE in the confirmed dialog was answered {final.status} {final.reason}"
    _same_to(req, final)


@pytest.mark.sip_purpose("TP-DLG-002", "After BYE the dialog is gone: a second BYE gets 481",
                         "RFC 3261 §15.1.2", "RFC 3261 §12.2.2")
def test_s15_1_2_second_bye_gets_481(sip_peer, sip_profile, calls, sip_should):
    """§15.1.2: "If the BYE does not match an existing dialog, the UAS core SHOULD generate a 481 (Call/Transaction
    Does Not Exist) response and pass that to the server transaction." The first BYE ended the dialog ("If no SIP
    extensions have defined other application layer states associated with the dialog, the BYE also terminates the
    dialog", §15); a second BYE with the same tags (and the next CSeq) names a dialog that no longer exists.
    §12.2.2: a rejection MUST be 481."""
    call = calls.established()
    first = _bye(sip_peer, sip_profile, call)
    assert 200 <= first.status < 300, f"BYE in the confirmed dialog was answered {first.status} {first.reason}"
    second = _bye(sip_peer, sip_profile, call)
    judge_no_dialog(second, sip_should, "a second BYE in the terminated dialog", to_tagged=True,
                    rule="3261-15.1.2-bye-481", citation="RFC 3261 §15.1.2")


@pytest.mark.sip_purpose("TP-DLG-003", "BYE with another To tag gets 481 and leaves the dialog up",
                         "RFC 3261 §15.1.2", "RFC 3261 §12.2.2", "RFC 3261 §12")
def test_s15_1_2_bye_wrong_to_tag(sip_peer, sip_profile, calls, sip_should):
    """§12: "A dialog is identified at each UA with a dialog ID, which consists of a Call-ID value, a local tag and
    a remote tag." §15.1.2: "A UAS core receiving a BYE request checks if it matches an existing dialog. If the BYE
    does not match an existing dialog, the UAS core SHOULD generate a 481 (Call/Transaction Does Not Exist)
    response". The BYE carries the dialog's Call-ID and From tag but a To tag the device never issued: it must not
    end the dialog (the real dialog then answers BYE 2xx); a rejection MUST be 481 (§12.2.2)."""
    call = calls.established()
    bogus = dialog_request(sip_peer, call, "BYE", to_tag=new_tag())
    final = transact(sip_peer, sip_profile, bogus)
    _still_up(sip_peer, sip_profile, call, f"a BYE with To tag {bogus.to.tag!r} answered {final.status}")
    judge_no_dialog(final, sip_should, "a BYE with an unknown To tag", to_tagged=True,
                    rule="3261-15.1.2-bye-481", citation="RFC 3261 §15.1.2")


@pytest.mark.sip_purpose("TP-DLG-004", "BYE with another Call-ID gets 481 and leaves the dialog up",
                         "RFC 3261 §15.1.2", "RFC 3261 §12.2.2", "RFC 3261 §12")
def test_s15_1_2_bye_wrong_call_id(sip_peer, sip_profile, calls, sip_should):
    """§12: "A dialog is identified at each UA with a dialog ID, which consists of a Call-ID value, a local tag and
    a remote tag." §15.1.2: "If the BYE does not match an existing dialog, the UAS core SHOULD generate a 481
    (Call/Transaction Does Not Exist) response". Same tags, another Call-ID: not the dialog; it must survive, and a
    rejection MUST be 481 (§12.2.2)."""
    call = calls.established()
    bogus = dialog_request(sip_peer, call, "BYE", call_id=new_call_id("sipcert.invalid"))
    final = transact(sip_peer, sip_profile, bogus)
    _still_up(sip_peer, sip_profile, call, f"a BYE with Call-ID {bogus.call_id!r} answered {final.status}")
    judge_no_dialog(final, sip_should, "a BYE with an unknown Call-ID", to_tagged=True,
                    rule="3261-15.1.2-bye-481", citation="RFC 3261 §15.1.2")


@pytest.mark.sip_purpose("TP-DLG-005", "A request with the dialog's Call-ID and To tag but another From tag gets 481",
                         "RFC 3261 §12", "RFC 3261 §12.2.2", "RFC 3261 §15.1.2")
def test_s12_2_2_unknown_remote_tag(sip_peer, sip_profile, calls, sip_should):
    """§12: "As one would expect for a UAS, the Call-ID value of the dialog ID is set to the Call-ID of the message,
    the remote tag is set to the tag in the From field of the message, and the local tag is set to the tag in the To
    field of the message." A BYE with the right Call-ID and To tag but a From tag the dialog does not have (its
    remote tag) names another dialog: the real one must survive, and a rejection MUST be 481 (§12.2.2)."""
    call = calls.established()
    bogus = dialog_request(sip_peer, call, "BYE", from_tag=new_tag())
    final = transact(sip_peer, sip_profile, bogus)
    _still_up(sip_peer, sip_profile, call, f"a BYE with From tag {bogus.from_.tag!r} answered {final.status}")
    judge_no_dialog(final, sip_should, "a BYE with an unknown From (remote) tag", to_tagged=True,
                    rule="3261-15.1.2-bye-481", citation="RFC 3261 §15.1.2")


@pytest.mark.sip_purpose("TP-DLG-006", "A BYE without To tag is not a request in the dialog: 481, dialog up",
                         "RFC 3261 §15.1.2", "RFC 3261 §12.2.1.1")
def test_s15_1_2_bye_without_to_tag(sip_peer, sip_profile, calls, sip_should):
    """§12.2.1.1: "The tag in the To header field of the request MUST be set to the remote tag of the dialog ID."
    §15.1.2: "If the BYE does not match an existing dialog, the UAS core SHOULD generate a 481 (Call/Transaction Does
    Not Exist) response [...] This rule means that a BYE sent without tags by a UAC will be rejected. This is a
    change from RFC 2543, which allowed BYE without tags." A BYE with the dialog's Call-ID and From tag but no To tag
    must not end the dialog."""
    call = calls.established()
    req = dialog_request(sip_peer, call, "BYE")
    untagged = req.with_header("To", f"<{call.dialog.remote_uri}>")
    final = transact(sip_peer, sip_profile, untagged)
    _still_up(sip_peer, sip_profile, call, f"a BYE without To tag answered {final.status}")
    judge_no_dialog(final, sip_should, "a BYE without To tag", to_tagged=False,
                    rule="3261-15.1.2-bye-481", citation="RFC 3261 §15.1.2")


@pytest.mark.sip_purpose("TP-DLG-007", "BYE with a CSeq lower than the dialog's remote sequence number gets 500",
                         "RFC 3261 §12.2.2")
@pytest.mark.sip_faults("no-500-dialog-cseq")
def test_s12_2_2_bye_lower_cseq_500(sip_peer, sip_profile, calls):
    """§12.2.2: "If the remote sequence number was not empty, but the sequence number of the request is lower than
    the remote sequence number, the request is out of order and MUST be rejected with a 500 (Server Internal Error)
    response." The remote sequence number is the INVITE's; a BYE one lower is rejected 500 and, being rejected, ends
    nothing ("If the request is rejected, none of the state changes are performed")."""
    call = calls.established()
    low = call.invite.cseq.number - 1
    req = dialog_request(sip_peer, call, "BYE", cseq=low)
    final = transact(sip_peer, sip_profile, req)
    call.dialog.local_cseq = call.invite.cseq.number
    assert final.status == 500, (
        f"a BYE with CSeq {low}, below the dialog's remote sequence number {call.invite.cseq.number}, was answered "
        f"{final.status} {final.reason}")
    _still_up(sip_peer, sip_profile, call, f"a BYE with CSeq {low} answered {final.status}",
              "a rejected request changed the dialog (\"If the request is rejected, none of the state changes are "
              "performed\")")


# -- re-INVITE -----------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-DLG-008", "A re-INVITE with an offer gets a 2xx with the answer and the dialog's To",
                         "RFC 3261 §14.2", "RFC 3261 §13.3.1.4", "RFC 3264 §6", "RFC 3261 §8.2.6.2")
@pytest.mark.sip_faults("to-changed")
def test_s14_2_reinvite_answered_with_sdp(sip_peer, sip_profile, calls):
    """§14.1: "The same offer-answer model that applies to session descriptions in INVITEs (Section 13.2.1) applies
    to re-INVITEs." §13.3.1.4: "If the INVITE request contained an offer, and the UAS had not yet sent an answer,
    the 2xx MUST contain an answer." RFC 3264 §6: "The answer MUST contain exactly the same number of "m=" lines as
    the offer." §8.2.6.2: the To of the response equals the request's (the device keeps its local tag). After the
    ACK the dialog goes on: BYE 2xx."""
    call = calls.established()
    req = dialog_request(sip_peer, call, "INVITE", body=_reoffer(sip_peer, 1), content_type="application/sdp")
    final = transact(sip_peer, sip_profile, req, 10.0)
    assert 200 <= final.status < 300, f"the re-INVITE was answered {final.status} {final.reason}"
    sip_peer.send(call.dialog.create_ack(req, via=sip_peer.via()), sip_profile.target.address)
    _same_to(req, final)
    assert final.sdp is not None, f"the {final.status} to a re-INVITE with an SDP offer carries no SDP answer"
    assert len(final.sdp.media) == len(req.sdp.media), (
        f"the answer to the re-INVITE has {len(final.sdp.media)} m= lines, the offer {len(req.sdp.media)}")
    _still_up(sip_peer, sip_profile, call, "the re-INVITE")


@pytest.mark.sip_purpose("TP-DLG-009", "The 2xx to a re-INVITE is retransmitted until the ACK",
                         "RFC 3261 §14.2", "RFC 3261 §13.3.1.4")
@pytest.mark.sip_timer(4)
@pytest.mark.sip_faults("no-2xx-retransmit")
def test_s14_2_reinvite_2xx_retransmitted_until_ack(sip_peer, sip_profile, calls):
    """§14.2: "Section 13.3.1 describes the procedure for distinguishing incoming re-INVITEs from incoming initial
    INVITEs and handling a re-INVITE for an existing dialog." and "If a UAS generates a 2xx response and never
    receives an ACK, it SHOULD generate a BYE to terminate the dialog." §13.3.1.4: "The 2xx response is passed to the
    transport with an interval that starts at T1 seconds and doubles for each retransmission until it reaches T2
    seconds [...] Response retransmissions cease when an ACK request for the response is received." With the ACK
    withheld the 2xx to the re-INVITE comes again at T1 (± tolerance); after the ACK it stops."""
    t = sip_profile.timers
    call = calls.established()
    req = dialog_request(sip_peer, call, "INVITE", body=_reoffer(sip_peer, 1), content_type="application/sdp")
    final = transact(sip_peer, sip_profile, req, 10.0)
    assert 200 <= final.status < 300, f"the re-INVITE was answered {final.status} {final.reason}"
    first = two_xx(sip_peer, req)[0].time
    got = wait_until(sip_peer, lambda: len(two_xx(sip_peer, req)) >= 2, t.t1 + tolerance(t.t1) + 0.05)
    copies = two_xx(sip_peer, req)
    ack_req = call.dialog.create_ack(req, via=sip_peer.via())
    sip_peer.send(ack_req, sip_profile.target.address)
    acked = sent_time(sip_peer, ack_req)
    assert got, f"the 2xx to the re-INVITE was not retransmitted within T1 = {t.t1:g} s (+ tolerance) without ACK " \
                "(3261-13.3.1.4-2xx-retransmit)"
    gap = copies[1].time - first
    assert abs(gap - t.t1) <= tolerance(t.t1), (
        f"the 2xx to the re-INVITE came again {gap:.3f} s after the first copy, expected T1 = {t.t1:g} s "
        f"(3261-13.3.1.4-2xx-retransmit)")
    sleep_until(sip_peer, first + 3 * t.t1 + tolerance(2 * t.t1))
    late = [e for e in two_xx(sip_peer, req) if e.time > acked + tolerance(0)]
    assert not late, f"the 2xx to the re-INVITE was retransmitted after the ACK: {describe(late, first)}"
    _still_up(sip_peer, sip_profile, call, "the re-INVITE")


@pytest.mark.sip_purpose("TP-DLG-010", "A re-INVITE without an offer gets an offer in the 2xx; the ACK answers it",
                         "RFC 3261 §14.1", "RFC 3261 §14.2", "RFC 3261 §13.3.1.4")
def test_s14_2_reinvite_without_offer(sip_peer, sip_profile, calls):
    """§14.1: "Of course, a UAC MAY send a re-INVITE with no session description, in which case the first reliable
    non-failure response to the re-INVITE will contain the offer (in this specification, that is a 2xx response)."
    §13.3.1.4: "If the INVITE did not contain an offer, the 2xx MUST contain an offer if the UAS had not yet sent an
    offer." The ACK carries our answer; the dialog then goes on."""
    call = calls.established()
    req = dialog_request(sip_peer, call, "INVITE")
    final = transact(sip_peer, sip_profile, req, 10.0)
    assert 200 <= final.status < 300, f"the re-INVITE without a body was answered {final.status} {final.reason}"
    body = sdp_answer(sip_peer, final) if final.sdp is not None else b""
    sip_peer.send(call.dialog.create_ack(req, via=sip_peer.via(), body=body,
                                         content_type="application/sdp" if body else None),
                  sip_profile.target.address)
    assert final.sdp is not None and final.sdp.media, (
        f"the {final.status} to a re-INVITE without a body carries no SDP offer (Content-Type "
        f"{final.header('Content-Type')!r}, {len(final.body)} body bytes)")
    _expect_no_answer_to_ack(sip_peer, call.invite.call_id, 0.3)
    _still_up(sip_peer, sip_profile, call, "the re-INVITE without offer")


@pytest.mark.sip_purpose("TP-DLG-011", "A request whose CSeq jumps ahead is processed", "RFC 3261 §12.2.2")
def test_s12_2_2_cseq_gap_accepted(sip_peer, sip_profile, calls, sip_should):
    """§12.2.2: "It is possible for the CSeq sequence number to be higher than the remote sequence number by more than
    one. This is not an error condition, and a UAS SHOULD be prepared to receive and process requests with CSeq
    values more than one higher than the previous received request." A re-INVITE 10 above the INVITE; a refusal is a
    warning, and the dialog must survive it either way."""
    call = calls.established()
    number = call.invite.cseq.number + 10
    req = dialog_request(sip_peer, call, "INVITE", cseq=number, body=_reoffer(sip_peer, 1),
                         content_type="application/sdp")
    final = transact(sip_peer, sip_profile, req, 10.0)
    if 200 <= final.status < 300:
        sip_peer.send(call.dialog.create_ack(req, via=sip_peer.via()), sip_profile.target.address)
    sip_should(200 <= final.status < 300, "3261-12.2.2-cseq-gap", "RFC 3261 §12.2.2",
               f"a re-INVITE with CSeq {number} (10 above the last) was answered {final.status} {final.reason}")
    _still_up(sip_peer, sip_profile, call, f"a re-INVITE with CSeq {number}")


@pytest.mark.sip_purpose("TP-DLG-012", "A re-INVITE with a CSeq lower than the INVITE's gets 500",
                         "RFC 3261 §12.2.2", "RFC 3261 §14.2")
@pytest.mark.sip_faults("no-500-dialog-cseq")
def test_s12_2_2_reinvite_lower_cseq_500(sip_peer, sip_profile, calls):
    """§12.2.2: "If the remote sequence number was not empty, but the sequence number of the request is lower than
    the remote sequence number, the request is out of order and MUST be rejected with a 500 (Server Internal Error)
    response." A re-INVITE one below the initial INVITE's CSeq; the session is unchanged and the dialog goes on."""
    call = calls.established()
    low = call.invite.cseq.number - 1
    req = dialog_request(sip_peer, call, "INVITE", cseq=low, body=_reoffer(sip_peer, 1),
                         content_type="application/sdp")
    final = transact(sip_peer, sip_profile, req, 10.0)
    if 200 <= final.status < 300:
        sip_peer.send(call.dialog.create_ack(req, via=sip_peer.via()), sip_profile.target.address)
    call.dialog.local_cseq = call.invite.cseq.number
    assert final.status == 500, (
        f"a re-INVITE with CSeq {low}, below the dialog's remote sequence number {call.invite.cseq.number}, was "
        f"answered {final.status} {final.reason}")
    _still_up(sip_peer, sip_profile, call, f"a re-INVITE with CSeq {low} answered {final.status}",
              "a rejected request changed the dialog")


@pytest.mark.sip_purpose("TP-DLG-013", "An INVITE in the dialog while the first INVITE is pending gets 500 with "
                         "Retry-After", "RFC 3261 §14.2")
def test_s14_2_second_invite_while_first_pending(sip_peer, sip_profile, calls):
    """§14.2: "A UAS that receives a second INVITE before it sends the final response to a first INVITE with a lower
    CSeq sequence number on the same dialog MUST return a 500 (Server Internal Error) response to the second INVITE
    and MUST include a Retry-After header field with a randomly chosen value of between 0 and 10 seconds." While the
    device rings, a second INVITE goes in the early dialog of its 18x with the next CSeq: the first INVITE has no
    final response yet. (The 491 of §14.2 is for another case, an INVITE crossing one the UAS itself sent: "A UAS that
    receives an INVITE on a dialog while an INVITE it had sent on that dialog is in progress MUST return a 491
    (Request Pending) response"; this device sent none.) Inconclusive when the device does not ring, or answered the
    first INVITE before the second arrived."""
    call = calls.ringing()
    second = dialog_request(sip_peer, call, "INVITE", body=_reoffer(sip_peer, 1), content_type="application/sdp")
    tx = sip_peer.request(second, sip_profile.target.address)
    sent = sent_time(sip_peer, second)
    try:
        final: Response | None = sip_peer.final_response(tx, 10.0)
    except ExpectationFailed:
        final = None
    if final is not None and 200 <= final.status < 300:
        sip_peer.send(call.dialog.create_ack(second, via=sip_peer.via()), sip_profile.target.address)
    # The race first: §14.2's case exists only if the first INVITE was still pending when the second arrived.
    first_final = final_responses(sip_peer, call.invite)
    if first_final and (final is None or final.status != 500):
        second_final = final_responses(sip_peer, second)
        if first_final[0].time <= sent:
            inconclusive(f"the device answered the first INVITE ({first_final[0].summary}) "
                         f"{(sent - first_final[0].time) * 1000:.1f} ms before the second one left: the first was "
                         "no longer pending")
        if second_final and first_final[0].time < second_final[0].time:
            inconclusive(f"the device answered the first INVITE ({first_final[0].summary}) before the second one")
    assert final is not None, "no final response to the second INVITE within 10 s"
    assert final.status == 500, (
        f"a second INVITE in the dialog, sent while the first INVITE was still pending, was answered {final.status} "
        f"{final.reason}")
    retry = final.header("Retry-After")
    assert retry is not None, "the 500 to the second INVITE has no Retry-After"
    value = retry.split(";", 1)[0].split("(", 1)[0].strip()
    assert value.isdigit() and 0 <= int(value) <= 10, f"Retry-After: {retry!r} is not from 0 to 10 seconds"


# -- INFO, UPDATE, MESSAGE ------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-DLG-014", "INFO in a confirmed dialog is answered 2xx", "RFC 6086 §4.2.2",
                         "RFC 3261 §12.2.2")
@pytest.mark.sip_requires(methods=("INFO",))
@pytest.mark.sip_faults("to-changed", "info-481")
def test_rfc6086_info_in_dialog(sip_peer, sip_profile, calls):
    """RFC 6086 §4.2.2: "The UAS MAY send other error responses, such as Request Failure (4xx), Server Failure
    (5xx), and Global Failure (6xx), in accordance with the error handling procedures defined in [RFC3261].
    Otherwise, if the INFO request is syntactically correct and well structured, the UA MUST send a 200 (OK)
    response." An INFO without Info-Package header field is legacy INFO usage (RFC 6086, Abstract: "For backward
    compatibility, this document also specifies a "legacy" mode of usage of the INFO method that is compatible with
    the usage previously defined in RFC 2976"), so the 469 of §4.2.2 (an Info Package the UA did not indicate) does
    not apply. RFC 3261 §12.2.2: "If there is a match, this is a mid-dialog request.  In that case, the UAS first
    applies the same processing rules for requests outside of a dialog, discussed in Section 8.2."

    Pass: 2xx, with the dialog's To, and the dialog goes on. Fail: 481 (the dialog exists), 469 (no package was
    named), no final response, a wrong To, or a dialog that ends. Another 4xx-6xx is the MAY above: no sentence is
    broken, but the 2xx path could not be checked, so the verdict is inconclusive."""
    call = calls.established()
    req = dialog_request(sip_peer, call, "INFO")
    final = transact(sip_peer, sip_profile, req)
    _same_to(req, final)
    assert final.status != 481, (
        "INFO in the confirmed dialog was answered 481: RFC 3261 §12.2.2 matched it to the dialog, which exists")
    assert final.status != 469, (
        "a legacy INFO (no Info-Package header field) was answered 469 Bad Info Package: RFC 6086 §4.2.2 keeps 469 "
        "for an INFO associated with an Info Package the UA has not indicated")
    _still_up(sip_peer, sip_profile, call, "the INFO")
    if final.status >= 300:
        inconclusive(f"INFO in the confirmed dialog was answered {final.status} {final.reason}: RFC 6086 §4.2.2 "
                     "lets a UAS send other 4xx-6xx error responses (a MAY), so the 200 path was not exercised")
    assert 200 <= final.status < 300, f"INFO in the confirmed dialog was answered {final.status} {final.reason}"


@pytest.mark.sip_purpose("TP-DLG-015", "UPDATE with an offer in a confirmed dialog gets a 2xx with the answer",
                         "RFC 3311 §5.2")
@pytest.mark.sip_requires(methods=("UPDATE",))
@pytest.mark.sip_faults("to-changed")
def test_rfc3311_update_in_dialog(sip_peer, sip_profile, calls):
    """RFC 3311 §5.2: "If a UA receives an UPDATE for an existing dialog, it MUST check any version identifiers in the
    session description or, if there are no version identifiers, the content of the session description to see if
    it has changed. If the session description has changed, the UAS MUST adjust the session parameters accordingly
    and generate an answer in the 2xx response. However, unlike a re-INVITE, the UPDATE MUST be responded to
    promptly". The offer has a new o= version and another port; no ACK follows an UPDATE."""
    call = calls.established()
    req = dialog_request(sip_peer, call, "UPDATE", body=_reoffer(sip_peer, 1), content_type="application/sdp")
    final = transact(sip_peer, sip_profile, req)
    assert 200 <= final.status < 300, f"UPDATE with an offer was answered {final.status} {final.reason}"
    _same_to(req, final)
    assert final.sdp is not None, f"the {final.status} to an UPDATE with a changed offer carries no SDP answer"
    assert len(final.sdp.media) == len(req.sdp.media), (
        f"the answer to the UPDATE has {len(final.sdp.media)} m= lines, the offer {len(req.sdp.media)}")
    _still_up(sip_peer, sip_profile, call, "the UPDATE")


def _check_message_2xx(req: Request, final: Response) -> None:
    assert 200 <= final.status < 300, f"MESSAGE with a text/plain body was answered {final.status} {final.reason}"
    assert not final.body, f"the {final.status} to MESSAGE has a {len(final.body)}-octet body"
    assert not final.contact, f"the {final.status} to MESSAGE carries Contact {[c.raw for c in final.contact]}"


@pytest.mark.sip_purpose("TP-DLG-016", "MESSAGE in a dialog gets a 2xx without body or Contact", "RFC 3428 §7")
@pytest.mark.sip_requires(methods=("MESSAGE",))
@pytest.mark.sip_faults("to-changed")
def test_rfc3428_message_in_dialog(sip_peer, sip_profile, calls):
    """RFC 3428 §7: "A 2xx response to a MESSAGE request MUST NOT contain a body. A UAS MUST NOT insert a Contact
    header field into a 2xx response." A device whose profile lists MESSAGE accepts a text/plain MESSAGE in the
    dialog with 2xx; the dialog goes on."""
    call = calls.established()
    req = dialog_request(sip_peer, call, "MESSAGE", body=TEXT, content_type="text/plain")
    final = transact(sip_peer, sip_profile, req)
    _check_message_2xx(req, final)
    _same_to(req, final)
    _still_up(sip_peer, sip_profile, call, "the MESSAGE")


@pytest.mark.sip_purpose("TP-DLG-017", "MESSAGE outside a dialog gets a 2xx without body or Contact",
                         "RFC 3428 §4", "RFC 3428 §7")
@pytest.mark.sip_requires(methods=("MESSAGE",))
def test_rfc3428_message_outside_dialog(sip_peer, sip_profile):
    """RFC 3428 §4: "MESSAGE requests do not initiate dialogs." §7: "A 2xx response to a MESSAGE request MUST NOT
    contain a body. A UAS MUST NOT insert a Contact header field into a 2xx response." A text/plain MESSAGE to the
    device's address, without Contact, is accepted with 2xx."""
    from testcases._support import target_uri

    req = sip_peer.build_request("MESSAGE", target_uri(sip_profile), contact=False, body=TEXT,
                                 content_type="text/plain")
    final = transact(sip_peer, sip_profile, req)
    _check_message_2xx(req, final)


def _out_of_dialog(peer, profile, method: str, body: bytes = b"", content_type: str | None = None) -> Request:
    """A request naming a dialog that never existed: fresh Call-ID and From tag, and a To tag."""
    from testcases._support import target_uri

    uri = target_uri(profile)
    to = f"<{uri.split(';', 1)[0]}>;tag={new_tag()}"
    return peer.build_request(method, uri, to=to, body=body, content_type=content_type,
                              contact=method == "UPDATE")


@pytest.mark.sip_purpose("TP-DLG-018", "INFO for a dialog that does not exist gets 481", "RFC 3261 §12.2.2",
                         "RFC 6086")
@pytest.mark.sip_requires(methods=("INFO",))
def test_s12_2_2_info_outside_dialog_481(sip_peer, sip_profile, sip_should):
    """RFC 3261 §12.2.2: "If the request has a tag in the To header field, but the dialog identifier does not match
    any existing dialogs, [...] Based on the To tag, the UAS MAY either accept or reject the request." and "If the
    UAS wishes to reject the request because it does not wish to recreate the dialog, it MUST respond to the request
    with a 481 (Call/Transaction Does Not Exist) status code". INFO belongs to an invite dialog usage (RFC 6086); an
    INFO with a fresh Call-ID and a To tag names none. A rejection other than 481 fails; acceptance is a
    warning."""
    req = _out_of_dialog(sip_peer, sip_profile, "INFO")
    final = transact(sip_peer, sip_profile, req)
    judge_no_dialog(final, sip_should, "an INFO for a dialog that never existed", to_tagged=True,
                    rule="3261-12.2.2-no-dialog-481", citation="RFC 3261 §12.2.2")


@pytest.mark.sip_purpose("TP-DLG-019", "UPDATE for a dialog that does not exist gets 481", "RFC 3261 §12.2.2",
                         "RFC 3311 §5.2")
@pytest.mark.sip_requires(methods=("UPDATE",))
def test_s12_2_2_update_outside_dialog_481(sip_peer, sip_profile, sip_should):
    """RFC 3261 §12.2.2: "Based on the To tag, the UAS MAY either accept or reject the request." and "If the UAS
    wishes to reject the request because it does not wish to recreate the dialog, it MUST respond to the request with
    a 481 (Call/Transaction Does Not Exist) status code". UPDATE works within a dialog (RFC 3311 §5.2: "If a UA
    receives an UPDATE for an existing dialog [...]"); an UPDATE with a fresh Call-ID and a To tag names none. A
    rejection other than 481 fails; acceptance is a warning."""
    req = _out_of_dialog(sip_peer, sip_profile, "UPDATE", _reoffer(sip_peer, 0), "application/sdp")
    final = transact(sip_peer, sip_profile, req)
    judge_no_dialog(final, sip_should, "an UPDATE for a dialog that never existed", to_tagged=True,
                    rule="3261-12.2.2-no-dialog-481", citation="RFC 3261 §12.2.2")


# -- early dialog ---------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-DLG-020", "BYE in the early dialog: 2xx to the BYE, and a final response to the INVITE",
                         "RFC 3261 §15", "RFC 3261 §15.1.2")
def test_s15_1_2_bye_in_early_dialog(sip_peer, sip_profile, calls, sip_should):
    """§15: "The caller's UA MAY send a BYE for either confirmed or early dialogs". §15.1.2: "the UAS core MUST
    generate a 2xx response to the BYE" and "The UAS MUST still respond to any pending requests received for that
    dialog. It is RECOMMENDED that a 487 (Request Terminated) response be generated to those pending requests." The
    BYE goes in the early dialog of the device's 18x while it rings (inconclusive when it does not ring, or when it
    answered the INVITE before the BYE arrived)."""
    call = calls.ringing()
    req = dialog_request(sip_peer, call, "BYE")
    bye_tx = sip_peer.request(req, sip_profile.target.address)
    bye_final = sip_peer.final_response(bye_tx, 5.0)
    try:
        inv_final = sip_peer.final_response(call.tx, 10.0)
    except ExpectationFailed:
        raise AssertionError("after the BYE in its early dialog the INVITE got no final response within 10 s (RFC "
                             "3261 §15.1.2: \"The UAS MUST still respond to any pending requests\")") from None
    call.final = inv_final
    bye_answered = [e.time for e in final_responses(sip_peer, req)]
    inv_answered = [e.time for e in final_responses(sip_peer, call.invite)]
    if 200 <= inv_final.status < 300 and inv_answered and bye_answered and inv_answered[0] <= bye_answered[0]:
        inconclusive(f"the device answered the INVITE {inv_final.status} before the BYE: the dialog was no longer "
                     "early")
    assert 200 <= bye_final.status < 300, (
        f"a BYE in the early dialog (To tag {req.to.tag!r} of the {call.provisionals[0].status}) was answered "
        f"{bye_final.status} {bye_final.reason}")
    sip_should(inv_final.status == 487, "3261-15.1.2-487-pending", "RFC 3261 §15.1.2",
               f"the pending INVITE was answered {inv_final.status} {inv_final.reason} after the BYE ended its early "
               "dialog, not 487")
