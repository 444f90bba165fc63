"""CANCEL at a UAS (RFC 3261 §9.2, with §17.2.3 matching and §17.2.1 for the 487): a pending INVITE is ended with
487 and the CANCEL answered 200; a CANCEL that matches nothing, or comes after the final response, changes nothing.

A CANCEL needs an INVITE that is still pending: the peer sends it as soon as the device's first 101-199 with To tag
arrives. When the device answers finally before that, the test purpose ends inconclusive.
"""

from __future__ import annotations

import pytest

from conformance.peer import ExpectationFailed, response, with_wrong_branch
from conformance.plugin import inconclusive
from conformance.sip import Request, Response, build_cancel, build_sdp
from testcases._invite import (
    RELIABLE,
    ack_non2xx,
    calls_fixture,  # noqa: F401  (the calls fixture)
    describe,
    dialog_request,
    final_responses,
    judge_no_dialog,
    received,
    sent_time,
    sleep_until,
    tolerance,
    transact,
)
from testcases._support import ack, bye

pytestmark = pytest.mark.sip_requires(role="uas")


def _cancel(peer, profile, call, cancel: Request | None = None) -> tuple[Request, Response]:
    req = cancel or build_cancel(call.invite)
    return req, transact(peer, profile, req)


#: How long "immediately" (§9.2: "the UAS SHOULD immediately respond to the INVITE with a 487") may take here.
PROMPT = 2.0


def _invite_final(peer, call, timeout: float = PROMPT) -> Response | None:
    """The INVITE's final response, or ``None`` when none came within ``timeout``."""
    try:
        final = peer.final_response(call.tx, timeout)
    except ExpectationFailed:
        return None
    call.final = final
    return final


def _first_time(peer, req: Request) -> float | None:
    finals = final_responses(peer, req)
    return finals[0].time if finals else None


def _race_lost(peer, call, cancel: Request) -> bool:
    """The device had answered the INVITE finally before the CANCEL reached it: the INVITE's final response arrived
    before the CANCEL's. The CANCEL then had nothing to cancel."""
    inv_at, cancel_at = _first_time(peer, call.invite), _first_time(peer, cancel)
    final = call.final
    return (inv_at is not None and (cancel_at is None or inv_at < cancel_at) and final is not None
            and 200 <= final.status < 300)


@pytest.mark.sip_faults("cancel-no-487")
@pytest.mark.sip_purpose("TP-CAN-001", "CANCEL of a pending INVITE: 200 to the CANCEL, 487 to the INVITE",
                         "RFC 3261 §9.2")
@pytest.mark.sip_faults("cancel-481-always", "cancel-no-200")
def test_s9_2_cancel_pending_invite(sip_peer, sip_profile, calls, sip_should):
    """§9.2: "If the UAS has not issued a final response for the original request, its behavior depends on the
    method of the original request. If the original request was an INVITE, the UAS SHOULD immediately respond to the
    INVITE with a 487 (Request Terminated)." and "Regardless of the method of the original request, as long as the
    CANCEL matched an existing transaction, the UAS answers the CANCEL request itself with a 200 (OK) response." The
    CANCEL goes out as soon as the device rings; the 200 is asserted, the 487 is a SHOULD."""
    call = calls.ringing()
    cancel = build_cancel(call.invite)
    tx = sip_peer.request(cancel, sip_profile.target.address)
    try:
        cancel_final = sip_peer.final_response(tx, 5.0)
    except ExpectationFailed:
        cancel_final = None
    inv_final = _invite_final(sip_peer, call)
    if inv_final is not None and _race_lost(sip_peer, call, cancel):
        inconclusive(f"the device answered the INVITE {inv_final.status} before the CANCEL reached it")
    outcome = (f"answered {inv_final.status} {inv_final.reason}" if inv_final is not None
               else f"not answered within {PROMPT:g} s")
    assert cancel_final is not None, (
        f"no response to the CANCEL of a pending INVITE within 5 s (the INVITE was {outcome} after it)")
    assert cancel_final.status == 200, (
        f"the CANCEL of the pending INVITE was answered {cancel_final.status} {cancel_final.reason} (the INVITE, "
        f"still pending then, was {outcome})")
    sip_should(inv_final is not None and inv_final.status == 487, "3261-9.2-cancel-487", "RFC 3261 §9.2",
               f"after the CANCEL was answered 200 the INVITE was {outcome}, not 487 at once")


@pytest.mark.sip_faults("cancel-to-tag-differs")
@pytest.mark.sip_purpose("TP-CAN-002", "The 487 has the To tag of the INVITE's provisional; so has the 200 to CANCEL",
                         "RFC 3261 §8.2.6.2", "RFC 3261 §9.2")
def test_s9_2_487_and_cancel_200_keep_to_tag(sip_peer, sip_profile, calls, sip_should):
    """§8.2.6.2: "The same tag MUST be used for all responses to that request, both final and provisional (again
    excepting the 100 (Trying))." — so the 487 repeats the 18x's To tag. §9.2: "This response is constructed
    following the procedures described in Section 8.2.6 noting that the To tag of the response to the CANCEL and the
    To tag in the response to the original request SHOULD be the same." (3261-8.2.6.2-to-tag-stable,
    3261-9.2-cancel-to-tag)"""
    call = calls.ringing()
    tag = call.provisionals[0].to.tag
    cancel, cancel_final = _cancel(sip_peer, sip_profile, call)
    inv_final = _invite_final(sip_peer, call)
    if inv_final is None or inv_final.status != 487:
        inconclusive("the INVITE was " + (f"answered {inv_final.status} {inv_final.reason}" if inv_final else
                                          f"not answered within {PROMPT:g} s") + ", not 487: nothing to compare")
    assert inv_final.to.tag == tag, (
        f"the 487 carries To tag {inv_final.to.tag!r}, the {call.provisionals[0].status} carried {tag!r} "
        "(3261-8.2.6.2-to-tag-stable)")
    if cancel_final.status == 200:
        sip_should(cancel_final.to is not None and cancel_final.to.tag == tag, "3261-9.2-cancel-to-tag",
                   "RFC 3261 §9.2", f"the 200 to CANCEL has To {cancel_final.header('To')!r}, the INVITE's responses "
                   f"the tag {tag!r}")


@pytest.mark.sip_purpose("TP-CAN-003", "The 487 is retransmitted until its ACK, and the ACK is absorbed",
                         "RFC 3261 §9.2", "RFC 3261 §17.2.1")
@pytest.mark.sip_timer(4)
def test_s17_2_1_487_ack_absorbed(sip_peer, sip_profile, calls):
    """§17.2.1: "For unreliable transports, timer G is set to fire in T1 seconds" (the 487 comes again at T1 without
    ACK; over reliable transports it is sent once), "If an ACK is received while the server transaction is in the
    "Completed" state, the server transaction MUST transition to the "Confirmed" state. As Timer G is ignored in this
    state, any retransmissions of the response will cease." and "The purpose of the "Confirmed" state is to absorb
    any additional ACK messages that arrive". The INVITE is sent outside a client transaction so that the test owns
    the ACK: withheld past T1, then sent twice; no response to either, and no 487 afterwards."""
    t = sip_profile.timers
    call = calls.ringing(in_transaction=False)
    cancel, cancel_final = _cancel(sip_peer, sip_profile, call)
    try:
        inc = sip_peer.expect(response(range(200, 700)).for_transaction(call.invite), PROMPT)
    except ExpectationFailed:
        inconclusive(f"the INVITE got no final response within {PROMPT:g} s of the CANCEL: no 487 to acknowledge")
    final = inc.message
    call.final = final
    first = inc.time
    if final.status < 300:
        inconclusive(f"the device answered the INVITE {final.status} before the CANCEL took effect")
    sleep_until(sip_peer, first + t.t1 + tolerance(t.t1))
    copies = final_responses(sip_peer, call.invite, range(300, 700))
    ack_req = ack_non2xx(call.invite, final)
    sip_peer.send(ack_req, sip_profile.target.address)
    acked = sent_time(sip_peer, ack_req)
    sip_peer.sleep(min(t.t1 / 2, 0.2))
    sip_peer.send(ack_req, sip_profile.target.address)
    if sip_profile.target.transport in RELIABLE:
        assert len(copies) == 1, (
            f"the {final.status} was sent {len(copies)} times over {sip_profile.target.transport}, where Timer G is "
            f"not set: {describe(copies, first)}")
    else:
        assert len(copies) >= 2, (
            f"the {final.status} was not retransmitted at T1 = {t.t1:g} s (± {tolerance(t.t1):.3f} s) while its ACK "
            f"was withheld: {describe(copies, first)} (Timer G, RFC 3261 §17.2.1)")
    sleep_until(sip_peer, first + 3 * t.t1 + tolerance(2 * t.t1))
    answers = received(sip_peer, lambda m: isinstance(m, Response) and m.call_id == call.invite.call_id
                       and m.cseq is not None and m.cseq.method == "ACK")
    assert not answers, f"the device answered an ACK: {describe(answers, first)} (3261-17-no-response-to-ack)"
    late = [e for e in final_responses(sip_peer, call.invite, range(300, 700)) if e.time > acked + tolerance(0)]
    assert not late, f"the {final.status} was sent again after the ACK: {describe(late, first)}"


@pytest.mark.sip_purpose("TP-CAN-004", "A CANCEL that matches no transaction gets 481", "RFC 3261 §9.2")
def test_s9_2_cancel_without_transaction_481(sip_peer, sip_profile, sip_should):
    """§9.2: "If the UAS did not find a matching transaction for the CANCEL according to the procedure above, it
    SHOULD respond to the CANCEL with a 481 (Call Leg/Transaction Does Not Exist)." The CANCEL is built for an
    INVITE that was never sent. It must be answered (a final response of its non-INVITE transaction); 481 is a
    SHOULD, and a 200 would claim a transaction that does not exist."""
    from testcases._support import target_uri

    never_sent = sip_peer.build_request("INVITE", target_uri(sip_profile))
    cancel, final = _cancel(sip_peer, sip_profile, None, build_cancel(never_sent))
    sip_should(final.status == 481, "3261-9.2-cancel-481", "RFC 3261 §9.2",
               f"a CANCEL matching no transaction was answered {final.status} {final.reason}, not 481")


@pytest.mark.sip_purpose("TP-CAN-005", "CANCEL after the 2xx has no effect: the call stays up",
                         "RFC 3261 §9.2", "RFC 3261 §9")
def test_s9_2_cancel_after_2xx_no_effect(sip_peer, sip_profile, calls):
    """§9.2: "If it has [already sent a final response for the original request], the CANCEL request has no effect on
    the processing of the original request, no effect on any session state, and no effect on the responses generated
    for the original request." §9: "CANCEL has no effect on a request to which a UAS has already given a final
    response." The CANCEL comes after the 2xx (before the ACK). It is answered 200 while the INVITE transaction
    exists (RFC 6026 keeps it in "Accepted") or 481 when it is gone; either way the INVITE gets no other final
    response and the session survives: after the ACK a BYE is answered 2xx."""
    call = calls.answered()
    cancel, cancel_final = _cancel(sip_peer, sip_profile, call)
    assert cancel_final.status in (200, 481), (
        f"a CANCEL after the 2xx was answered {cancel_final.status} {cancel_final.reason}: 200 (transaction still "
        "there, no effect) or 481 (transaction gone) expected")
    ack(sip_peer, sip_profile, call)
    sip_peer.sleep(0.2)
    others = [e for e in final_responses(sip_peer, call.invite) if e.message.status >= 300]
    assert not others, f"after the 2xx the INVITE was answered again: {describe(others)}"
    final = bye(sip_peer, sip_profile, call)
    assert 200 <= final.status < 300, (
        f"after a CANCEL that came after the 2xx, BYE in the dialog was answered {final.status} {final.reason}: the "
        "CANCEL ended the session")


def _not_cancelled(peer, profile, calls, mutate, what: str, sip_should, *, confirm: bool) -> None:
    """A CANCEL that does not match the pending INVITE's transaction must not end the INVITE. With ``confirm`` the
    right CANCEL follows after a pause and must find the INVITE still pending (200). (Without, the right CANCEL is
    left to the clean-up: a CANCEL with the branch of a non-matching one but another sent-by would be taken for its
    retransmission by a trace reader that keys server transactions on the branch alone.)"""
    call = calls.ringing()
    bogus = mutate(build_cancel(call.invite))
    # Sent outside a client transaction: its branch may be the one of the right CANCEL sent later.
    peer.send(bogus, profile.target.address)
    sent = sent_time(peer, bogus)
    try:
        bogus_final = peer.expect(response(range(200, 700)).for_transaction(bogus).where(
            lambda m: bool(m.via) and m.via[0].host == bogus.via[0].host, "the non-matching CANCEL's Via"), 2.0).message
    except ExpectationFailed:
        bogus_final = None
    peer.sleep(0.5)
    finals = final_responses(peer, call.invite)
    if finals and finals[0].time < sent:
        inconclusive(f"the device answered the INVITE ({finals[0].summary}) before the non-matching CANCEL was sent")
    ended = [e for e in finals if isinstance(e.message, Response) and e.message.status == 487]
    assert not ended, (
        f"a CANCEL with {what}, which matches no transaction (RFC 3261 §17.2.3), ended the INVITE: "
        f"{describe(ended)}")
    if bogus_final is None:
        sip_should(False, "3261-9.2-cancel-481", "RFC 3261 §9.2", f"no response to a CANCEL with {what}")
    else:
        sip_should(bogus_final.status == 481, "3261-9.2-cancel-481", "RFC 3261 §9.2",
                   f"a CANCEL with {what} was answered {bogus_final.status} {bogus_final.reason}, not 481")
    if confirm and not finals:
        # The INVITE is still pending: the right CANCEL finds it.
        right, right_final = _cancel(peer, profile, call)
        assert right_final.status == 200, (
            f"after a non-matching CANCEL, the right CANCEL of the still pending INVITE got {right_final.status} "
            f"{right_final.reason}: the first CANCEL did away with the INVITE's transaction")


@pytest.mark.sip_purpose("TP-CAN-006", "A CANCEL with another branch matches nothing: 481, the INVITE goes on",
                         "RFC 3261 §9.2", "RFC 3261 §17.2.3")
def test_s9_2_cancel_other_branch_does_not_cancel(sip_peer, sip_profile, calls, sip_should):
    """§9.2: "The TU determines the transaction to be cancelled by taking the CANCEL request, and then assuming that
    the request method is anything but CANCEL or ACK and applying the transaction matching procedures of Section
    17.2.3. The matching transaction is the one to be cancelled." §17.2.3: "the branch parameter in the request is
    equal to the one in the top Via header field of the request that created the transaction". A CANCEL identical
    but for a fresh branch matches no transaction: it must not end the INVITE (no 487), and SHOULD get 481."""
    _not_cancelled(sip_peer, sip_profile, calls, with_wrong_branch, "another Via branch", sip_should, confirm=True)


@pytest.mark.sip_purpose("TP-CAN-007", "A CANCEL with another Via sent-by matches nothing: the INVITE goes on",
                         "RFC 3261 §9.2", "RFC 3261 §17.2.3")
def test_s9_2_cancel_other_sent_by_does_not_cancel(sip_peer, sip_profile, calls, sip_should):
    """§17.2.3: "2. the sent-by value in the top Via of the request is equal to the one in the request that created
    the transaction" ("The sent-by value is used as part of the matching process because there could be accidental
    or malicious duplication of branch parameters from different clients."). A CANCEL with the INVITE's branch but
    another sent-by host (same port: the response still reaches the peer through ``received``, §18.2.2) cancels
    nothing: no 487; 481 is a SHOULD."""

    def other_sent_by(msg: Request) -> Request:
        via = msg.via[0]
        host = via.raw.split(" ", 1)[1].split(";", 1)[0]
        port = host.rsplit(":", 1)[1] if host.count(":") == 1 or host.startswith("[") else ""
        new = via.raw.replace(host, f"other.sipcert.invalid:{port}" if port else "other.sipcert.invalid", 1)
        changed = msg.with_header("Via", new)
        assert isinstance(changed, Request)
        return changed

    _not_cancelled(sip_peer, sip_profile, calls, other_sent_by, "another Via sent-by", sip_should, confirm=False)


@pytest.mark.sip_purpose("TP-CAN-008", "A CANCEL right behind the INVITE, before any provisional, is handled",
                         "RFC 3261 §9.2", "RFC 3261 §9.1")
@pytest.mark.sip_faults("cancel-481-always", "cancel-no-200")
def test_s9_2_cancel_before_provisional(sip_peer, sip_profile, calls, sip_should):
    """§9.1 forbids the client to do this ("If no provisional response has been received, the CANCEL request MUST
    NOT be sent"), because "the server could receive the CANCEL before the original request". Here the CANCEL
    follows the INVITE at once on the same path, so it arrives after it: the INVITE's transaction exists, and §9.2
    applies ("as long as the CANCEL matched an existing transaction, the UAS answers the CANCEL request itself with a
    200 (OK) response"; the INVITE SHOULD get 487). The CANCEL must be answered; when it gets 481 while the INVITE is
    still pending (its final response comes later), the device lost the transaction."""
    call = calls.invite()
    cancel = build_cancel(call.invite)
    tx = sip_peer.request(cancel, sip_profile.target.address)
    try:
        cancel_final = sip_peer.final_response(tx, 5.0)
    except ExpectationFailed:
        raise AssertionError("no response to a CANCEL sent right behind its INVITE within 5 s") from None
    inv_final = _invite_final(sip_peer, call)
    if inv_final is not None and _race_lost(sip_peer, call, cancel):
        inconclusive(f"the device answered the INVITE {inv_final.status} before it processed the CANCEL")
    outcome = (f"answered {inv_final.status} {inv_final.reason}" if inv_final is not None
               else f"not answered within {PROMPT:g} s")
    assert cancel_final.status == 200, (
        f"a CANCEL for an INVITE the device was still processing got {cancel_final.status} {cancel_final.reason} "
        f"(the INVITE was {outcome} after it)")
    sip_should(inv_final is not None and inv_final.status == 487, "3261-9.2-cancel-487", "RFC 3261 §9.2",
               f"after the CANCEL was answered 200 the INVITE was {outcome}, not 487 at once")


@pytest.mark.sip_purpose("TP-CAN-009", "After the 487 the early dialog is gone: a BYE in it gets 481",
                         "RFC 3261 §12.3", "RFC 3261 §15.1.2")
def test_s12_3_early_dialog_ends_with_487(sip_peer, sip_profile, calls, sip_should):
    """§12.3: "Independent of the method, if a request outside of a dialog generates a non-2xx final response, any
    early dialogs created through provisional responses to that request are terminated." §15.1.2: "If the BYE does
    not match an existing dialog, the UAS core SHOULD generate a 481 (Call/Transaction Does Not Exist) response". A
    BYE with the tags of the device's 18x, after the INVITE was cancelled with 487, names no dialog; a rejection MUST
    be 481 (§12.2.2), acceptance is a warning."""
    call = calls.ringing()
    cancel, _ = _cancel(sip_peer, sip_profile, call)
    inv_final = _invite_final(sip_peer, call)
    if inv_final is None or inv_final.status < 300:
        inconclusive("the INVITE was " + (f"answered {inv_final.status}" if inv_final else
                                          f"not answered within {PROMPT:g} s") + ": no early dialog ended by a 487")
    final = transact(sip_peer, sip_profile, dialog_request(sip_peer, call, "BYE"))
    judge_no_dialog(final, sip_should, f"a BYE in the early dialog ended by the {inv_final.status}", to_tagged=True,
                    rule="3261-15.1.2-bye-481", citation="RFC 3261 §15.1.2")


@pytest.mark.sip_purpose("TP-CAN-010", "A CANCEL for a dialog's re-INVITE answered long ago has no effect",
                         "RFC 3261 §9.2")
def test_s9_2_cancel_of_answered_reinvite(sip_peer, sip_profile, calls):
    """§9.2: "If it has [already sent a final response for the original request], the CANCEL request has no effect on
    the processing of the original request, no effect on any session state, and no effect on the responses generated
    for the original request." A re-INVITE is answered and acknowledged; a CANCEL for it then must not end the
    session: a BYE in the dialog is still answered 2xx."""
    call = calls.established()
    host = sip_peer.endpoint().local[0]
    reinvite = dialog_request(sip_peer, call, "INVITE", body=build_sdp(host, 40020, session_version=1,
                                                                        ipv6=":" in host),
                              content_type="application/sdp")
    final = transact(sip_peer, sip_profile, reinvite, 10.0)
    assert 200 <= final.status < 300, f"the re-INVITE was answered {final.status} {final.reason}"
    sip_peer.send(call.dialog.create_ack(reinvite, via=sip_peer.via()), sip_profile.target.address)
    _, cancel_final = _cancel(sip_peer, sip_profile, call, build_cancel(reinvite))
    assert cancel_final.status in (200, 481), (
        f"a CANCEL of a re-INVITE answered {final.status} got {cancel_final.status} {cancel_final.reason}: 200 or 481 "
        "expected")
    bye_final = transact(sip_peer, sip_profile, dialog_request(sip_peer, call, "BYE"))
    assert 200 <= bye_final.status < 300, (
        f"after a CANCEL of an answered re-INVITE, BYE in the dialog was answered {bye_final.status} "
        f"{bye_final.reason}: the CANCEL ended the session")

