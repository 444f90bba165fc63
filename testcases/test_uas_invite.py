"""INVITE at a UAS (RFC 3261 §13.3, §12.1.1, §17.2.1; RFC 6026): the responses that accept or reject a call, the
2xx retransmitted until the ACK (and what does not count as that ACK), and the INVITE server transaction's Timers
G, H and I for a rejected INVITE.

Timing is judged in tolerance bands (an interval passes within ``max(0.1 s, 25 %)`` of the expected value) derived
from the profile's T1 and T2.
"""

from __future__ import annotations

import pytest

from conformance.peer import response, with_cseq, with_wrong_tag
from conformance.plugin import inconclusive
from conformance.sip import Response, SipURI
from testcases._invite import (
    RELIABLE,
    ack_non2xx,
    answer_bye,
    calls_fixture,  # noqa: F401  (the calls fixture)
    describe,
    final_responses,
    interval,
    judge_schedule,
    observation_window,
    received,
    rejected_raw,
    route_key,
    schedule,
    sdp_answer,
    sent_time,
    sleep_until,
    tolerance,
    two_xx,
    wait_until,
)
from testcases._support import ack, bye

pytestmark = pytest.mark.sip_requires(role="uas")

RECORD_ROUTE = (
    "<sip:p1.sipcert.invalid;lr;x-sipcert=1>",
    '"edge" <sip:p2.sipcert.invalid:5070;transport=udp;lr>;x-rr-param="quoted value"',
)


def _bye_ok(peer, profile, call) -> None:
    final = bye(peer, profile, call)
    assert 200 <= final.status < 300, f"BYE in the confirmed dialog was answered {final.status} {final.reason}"


# -- accepting the call --------------------------------------------------------------------------------------------


@pytest.mark.sip_faults("require-unsupported")
@pytest.mark.sip_purpose("TP-INV-001", "INVITE is accepted with a 2xx whose To tag all its non-100 responses share",
                         "RFC 3261 §13.3.1.4", "RFC 3261 §13.3.1.1", "RFC 3261 §8.2.6.2")
@pytest.mark.sip_faults("unstable-to-tag")
def test_s13_3_1_4_invite_accepted_with_stable_to_tag(sip_peer, sip_profile, calls):
    """§8.2.6.2: "the UAS MUST add a tag to the To header field in the response (with the exception of the 100
    (Trying) response, in which a tag MAY be present). [...] The same tag MUST be used for all responses to that
    request, both final and provisional (again excepting the 100 (Trying))." §13.3.1.1: "A UAS MAY send as many
    provisional responses as it likes. Each of these MUST indicate the same dialog ID." The 180 is optional; the
    2xx and any 101-199 must carry one and the same To tag, and the To URI of the request."""
    call = calls.answered()
    final = call.final
    assert final.to is not None and final.to.tag, (
        f"the {final.status} to the INVITE has no To tag: {final.header('To')!r} (3261-8.2.6.2-to-tag)")
    assert final.to.uri_text == call.invite.to.uri_text, (
        f"the 2xx To URI {final.to.uri_text!r} is not the request's {call.invite.to.uri_text!r} (3261-8.2.6.2-to-uri)")
    for p in call.provisionals:
        if p.status == 100:
            continue
        assert p.to is not None and p.to.tag, f"the {p.status} {p.reason} has no To tag (3261-8.2.6.2-to-tag)"
        assert p.to.tag == final.to.tag, (
            f"the {p.status} carried To tag {p.to.tag!r} and the {final.status} {final.to.tag!r}: one INVITE, two "
            "dialog IDs (3261-8.2.6.2-to-tag-stable)")
    ack(sip_peer, sip_profile, call)
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_purpose("TP-INV-002", "The first response to an INVITE comes within 200 ms (100 Trying rule)",
                         "RFC 3261 §17.2.1")
def test_s17_2_1_first_response_within_200ms(sip_peer, sip_profile, calls):
    """§17.2.1: "The server transaction MUST generate a 100 (Trying) response unless it knows that the TU will
    generate a provisional or final response within 200 ms, in which case it MAY generate a 100 (Trying)
    response." Either way a response leaves the device within 200 ms of the INVITE (judged with 100 ms of
    tolerance)."""
    call = calls.invite()
    sent = sent_time(sip_peer, call.invite)
    sip_peer.transaction_response(call.tx, None, 5.0)
    first = received(sip_peer, lambda m: isinstance(m, Response) and m.call_id == call.invite.call_id)[0]
    delay = first.time - sent
    assert delay <= 0.2 + tolerance(0.2), (
        f"the first response to the INVITE ({first.summary}) came {delay * 1000:.0f} ms after it; a 100 Trying is due "
        "within 200 ms when the TU does not answer sooner")


@pytest.mark.sip_purpose("TP-INV-003", "The 2xx to INVITE carries exactly one Contact, a SIP or SIPS URI",
                         "RFC 3261 §12.1.1", "RFC 3261 §13.3.1.4")
@pytest.mark.sip_faults("no-contact-2xx", "contact-not-sip", "contact-not-sips")
def test_s12_1_1_2xx_contact_single_sip_uri(sip_peer, sip_profile, calls):
    """§12.1.1: "The UAS MUST add a Contact header field to the response. [...] The URI provided in the Contact
    header field MUST be a SIP or SIPS URI. If the request that initiated the dialog contained a SIPS URI in the
    Request-URI or in the top Record-Route header field value, if there was any, or the Contact header field if
    there was no Record-Route header field, the Contact header field in the response MUST be a SIPS URI." The
    Contact is the remote target of the dialog: one address, not a list (§12.1.2 "The remote target MUST be set to
    the URI from the Contact header field of the response")."""
    call = calls.answered()
    final = call.final
    contacts = final.contact
    assert contacts, f"the {final.status} to the INVITE has no Contact (3261-12.1.1-contact-in-2xx)"
    assert len(contacts) == 1 and not final.contact_star, (
        f"the {final.status} to the INVITE has {len(contacts)} Contact values {[c.raw for c in contacts]}: the "
        "remote target must be one URI (3261-12.1.1-contact-sip-uri)")
    uri = contacts[0].uri
    assert isinstance(uri, SipURI), (
        f"the Contact {contacts[0].uri_text!r} of the 2xx is not a SIP or SIPS URI (3261-12.1.1-contact-sip-uri)")
    if call.invite.uri_text.lower().startswith("sips:"):
        assert uri.scheme.lower() == "sips", (
            f"the INVITE had a SIPS Request-URI but the 2xx Contact is {contacts[0].uri_text!r} "
            "(3261-12.1.1-contact-sips)")
    ack(sip_peer, sip_profile, call)
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_purpose("TP-INV-004", "A 101-199 with To tag (early dialog) carries one SIP Contact",
                         "RFC 3261 §13.3.1.1", "RFC 3261 §12.1.1")
@pytest.mark.sip_faults("no-contact-1xx", "contact-not-sip")
def test_s13_3_1_1_provisional_with_tag_has_contact(sip_peer, sip_profile, calls):
    """§13.3.1.1: "This is accomplished with a provisional response between 101 and 199. These provisional responses
    establish early dialogs and therefore follow the procedures of Section 12.1.1 in addition to those of Section
    8.2.6." §12.1.1: "The UAS MUST add a Contact header field to the response. [...] The URI provided in the Contact
    header field MUST be a SIP or SIPS URI." Needs a device that sends a 101-199 with To tag (else inconclusive)."""
    call = calls.answered()
    early = [p for p in call.provisionals if 101 <= p.status <= 199 and p.to is not None and p.to.tag]
    if not early:
        inconclusive("the device sent no 101-199 with To tag before its 2xx: no early dialog to check")
    for p in early:
        assert p.contact, f"the {p.status} {p.reason} creates an early dialog but has no Contact " \
                          "(3261-13.3.1.1-contact-in-1xx)"
        assert len(p.contact) == 1 and isinstance(p.contact[0].uri, SipURI), (
            f"the Contact of the {p.status} is {[c.raw for c in p.contact]}: one SIP or SIPS URI expected "
            "(3261-12.1.1-contact-sip-uri)")
    ack(sip_peer, sip_profile, call)
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_purpose("TP-INV-005", "The 2xx to INVITE copies every Record-Route of the request, in order",
                         "RFC 3261 §12.1.1")
@pytest.mark.sip_faults("record-route-not-copied")
def test_s12_1_1_2xx_copies_record_route(sip_peer, sip_profile, calls):
    """§12.1.1: "When a UAS responds to a request with a response that establishes a dialog (such as a 2xx to
    INVITE), the UAS MUST copy all Record-Route header field values from the request into the response (including
    the URIs, URI parameters, and any Record-Route header field parameters, whether they are known or unknown to the
    UAS) and MUST maintain the order of those values." The INVITE carries two Record-Route values with URI
    parameters, a display name and an unknown header parameter with a quoted value."""
    call = calls.answered(headers=[("Record-Route", rr) for rr in RECORD_ROUTE])
    final = call.final
    got = [na.raw for na in final.record_route]
    same = [route_key(na) for na in final.record_route] == [route_key(na) for na in call.invite.record_route]
    # As if the two proxies had consumed their Route entries: the ACK and BYE go straight to the device.
    call.dialog.route_set = ()
    assert same, (
        f"the {final.status} carries Record-Route {got}, the INVITE had {list(RECORD_ROUTE)} "
        "(3261-12.1.1-record-route-copied)")
    ack(sip_peer, sip_profile, call)
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_purpose("TP-INV-006", "A 101-199 with To tag copies every Record-Route of the request, in order",
                         "RFC 3261 §13.3.1.1", "RFC 3261 §12.1.1")
@pytest.mark.sip_faults("record-route-not-copied")
def test_s13_3_1_1_provisional_copies_record_route(sip_peer, sip_profile, calls):
    """§13.3.1.1: "These provisional responses establish early dialogs and therefore follow the procedures of
    Section 12.1.1". §12.1.1: "the UAS MUST copy all Record-Route header field values from the request into the
    response [...] and MUST maintain the order of those values." Needs a 101-199 with To tag (else inconclusive)."""
    call = calls.answered(headers=[("Record-Route", rr) for rr in RECORD_ROUTE])
    call.dialog.route_set = ()
    early = [p for p in call.provisionals if 101 <= p.status <= 199 and p.to is not None and p.to.tag]
    if not early:
        inconclusive("the device sent no 101-199 with To tag before its 2xx: no early dialog to check")
    for p in early:
        got = [na.raw for na in p.record_route]
        assert [route_key(na) for na in p.record_route] == [route_key(na) for na in call.invite.record_route], (
            f"the {p.status} {p.reason} carries Record-Route {got}, the INVITE had {list(RECORD_ROUTE)} "
            "(3261-12.1.1-record-route-copied)")
    ack(sip_peer, sip_profile, call)
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_purpose("TP-INV-007", "The 2xx to an INVITE with an offer carries the answer, m-line for m-line",
                         "RFC 3261 §13.3.1.4", "RFC 3264 §6")
@pytest.mark.sip_faults("no-content-type")
def test_s13_3_1_4_2xx_carries_sdp_answer(sip_peer, sip_profile, calls):
    """§13.3.1.4: "If the INVITE request contained an offer, and the UAS had not yet sent an answer, the 2xx MUST
    contain an answer." RFC 3264 §6: "The answer MUST contain exactly the same number of "m=" lines as the offer."
    The offer has one audio stream; no reliable provisional was negotiated, so the answer cannot have gone
    earlier."""
    call = calls.answered()
    final = call.final
    offered = call.invite.sdp
    assert final.body, f"the {final.status} to an INVITE with an SDP offer has no body: no answer"
    ct = final.content_type
    assert ct is not None and ct.mime == "application/sdp", (
        f"the {final.status} answers an SDP offer with a body of type {ct.mime if ct else None!r}")
    answer = final.sdp
    assert answer is not None, "the SDP answer cannot be read"
    assert len(answer.media) == len(offered.media), (
        f"the answer has {len(answer.media)} m= lines, the offer {len(offered.media)}")
    assert [m.media for m in answer.media] == [m.media for m in offered.media], (
        f"the answer's streams {[m.media for m in answer.media]} do not match the offer's "
        f"{[m.media for m in offered.media]} in order")
    ack(sip_peer, sip_profile, call)
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_purpose("TP-INV-008", "The 2xx to an INVITE without an offer carries an offer; the ACK answers it",
                         "RFC 3261 §13.3.1.4", "RFC 3261 §13.2.1")
@pytest.mark.sip_faults("no-content-type")
def test_s13_3_1_4_2xx_offers_when_invite_has_none(sip_peer, sip_profile, calls):
    """§13.3.1.4: "If the INVITE did not contain an offer, the 2xx MUST contain an offer if the UAS had not yet sent
    an offer." §13.2.1: "If the initial offer is in the first reliable non-failure message from the UAS back to
    UAC, the answer MUST be in the acknowledgement for that message (in this specification, ACK for a 2xx
    response)." and "All user agents that support INVITE MUST support these two exchanges." The ACK carries our
    answer; the session is then up (a BYE is answered 2xx)."""
    call = calls.answered(with_sdp=False)
    final = call.final
    if final.sdp is None:
        raise AssertionError(
            f"the {final.status} to an INVITE without a body carries no SDP offer (Content-Type "
            f"{final.header('Content-Type')!r}, {len(final.body)} body bytes)")
    assert final.sdp.media, "the SDP offer in the 2xx has no m= line"
    answer = sdp_answer(sip_peer, final)
    ack_req = call.dialog.create_ack(call.invite, via=sip_peer.via(), body=answer, content_type="application/sdp")
    sip_peer.send(ack_req, sip_profile.target.address)
    call.acked = ack_req
    sip_peer.expect_nothing(response(cseq=call.invite.cseq.number).where(
        lambda m: m.cseq is not None and m.cseq.method == "ACK", "a response to the ACK"), 0.3)
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_purpose("TP-INV-009", "The 2xx is retransmitted at T1, 2*T1, 4*T1 ... capped at T2 until the ACK",
                         "RFC 3261 §13.3.1.4", "RFC 6026 §8.1")
@pytest.mark.sip_timer(20)
@pytest.mark.sip_faults("no-2xx-retransmit")
def test_s13_3_1_4_2xx_retransmitted_t1_doubling_to_t2(sip_peer, sip_profile, calls):
    """§13.3.1.4 (as updated by RFC 6026 §8.1): "The 2xx response is passed to the transport with an interval that
    starts at T1 seconds and doubles for each retransmission until it reaches T2 seconds (T1 and T2 are defined in
    Section 17). Response retransmissions cease when an ACK request for the response is received. This is
    independent of whatever transport protocols are used to send the response." The ACK is withheld until two
    intervals capped at T2 were seen (or 3/4 of 64*T1), sent half-way through a gap, and then no copy may follow.
    Each interval must be within max(0.1 s, 25 %) of the expected one (3261-13.3.1.4-2xx-retransmit)."""
    t = sip_profile.timers
    ack_at, due = observation_window(t.t1, t.t2)
    call = calls.answered()
    first = two_xx(sip_peer, call.invite)[0].time
    sleep_until(sip_peer, first + ack_at)
    ack_req = ack(sip_peer, sip_profile, call)
    acked = sent_time(sip_peer, ack_req)
    sip_peer.sleep(t.t2 + tolerance(t.t2))
    copies = two_xx(sip_peer, call.invite)
    before = [e.time for e in copies if e.time <= acked]
    after = [e for e in copies if e.time > acked + tolerance(0)]
    problems = judge_schedule(before, t.t1, t.t2, acked - first, "2xx")
    assert not problems, "; ".join(problems) + " (3261-13.3.1.4-2xx-retransmit)"
    assert len(before) >= due, (
        f"{len(before)} copies of the 2xx in {acked - first:.3f} s without ACK, {due} due at T1={t.t1:g} s, "
        f"T2={t.t2:g} s: {describe(copies, first)}")
    assert not after, (
        f"the 2xx was retransmitted after the ACK sent at {acked - first:.3f} s: {describe(after, first)} "
        "(\"Response retransmissions cease when an ACK request for the response is received\")")
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_purpose("TP-INV-010", "The ACK stops the 2xx retransmissions", "RFC 3261 §13.3.1.4")
@pytest.mark.sip_timer(4)
def test_s13_3_1_4_ack_stops_2xx_retransmissions(sip_peer, sip_profile, calls):
    """§13.3.1.4: "Response retransmissions cease when an ACK request for the response is received." The ACK goes
    out at once; the 2xx would be due again at T1 and 3*T1: no copy may come after the ACK (a copy within 100 ms of
    it may have been in flight)."""
    t = sip_profile.timers
    call = calls.answered()
    first = two_xx(sip_peer, call.invite)[0].time
    ack_req = ack(sip_peer, sip_profile, call)
    acked = sent_time(sip_peer, ack_req)
    s = schedule(t.t1, t.t2, 10 * t.t2)
    sleep_until(sip_peer, first + s[2] + tolerance(interval(t.t1, t.t2, 1)))
    after = [e for e in two_xx(sip_peer, call.invite) if e.time > acked + tolerance(0)]
    assert not after, (
        f"the 2xx was retransmitted after the ACK sent {acked - first:.3f} s after it: {describe(after, first)} "
        "(3261-13.3.1.4-2xx-retransmit)")
    _bye_ok(sip_peer, sip_profile, call)


@pytest.mark.sip_faults("no-bye-after-ack-timeout")
@pytest.mark.sip_purpose("TP-INV-011", "Without ACK for 64*T1 the 2xx retransmissions stop and the session ends with BYE",
                         "RFC 3261 §13.3.1.4", "RFC 3261 §14.2", "RFC 3261 §15", "RFC 6026 §8.1")
@pytest.mark.sip_timer(38)
@pytest.mark.sip_faults("no-2xx-retransmit")
def test_s13_3_1_4_no_ack_for_64t1_ends_session(sip_peer, sip_profile, calls, sip_should):
    """§13.3.1.4: "If the server retransmits the 2xx response for 64*T1 seconds without receiving an ACK, the dialog
    is confirmed, but the session SHOULD be terminated. This is accomplished with a BYE, as described in Section
    15." §14.2: "If a UAS generates a 2xx response and never receives an ACK, it SHOULD generate a BYE to terminate
    the dialog." §15: "the callee's UA MUST NOT send a BYE on a confirmed dialog until it has received an ACK for its
    2xx response or until the server transaction times out." The retransmissions last 64*T1 and then stop (MUST);
    a BYE comes after 64*T1, not before (MUST), and comes at all (SHOULD). The BYE is answered 200."""
    t = sip_profile.timers
    limit = 64 * t.t1
    call = calls.answered()
    first = two_xx(sip_peer, call.invite)[0].time
    wait = limit + max(t.t2, 4 * t.t1) + tolerance(t.t2)
    bye_in = answer_bye(sip_peer, wait, call.invite.call_id)
    sleep_until(sip_peer, first + wait)
    copies = two_xx(sip_peer, call.invite)
    late = [e for e in copies if e.time - first > limit + tolerance(t.t2)]
    assert not late, (
        f"the 2xx was still retransmitted {late[0].time - first:.3f} s after the first send, past 64*T1 = {limit:g} s "
        f"without ACK: {describe(late, first)}")
    problems = judge_schedule([e.time for e in copies if e.time - first <= limit], t.t1, t.t2,
                              limit - tolerance(t.t2), "2xx")
    assert not problems, "; ".join(problems) + " (3261-13.3.1.4-2xx-retransmit)"
    if bye_in is not None:
        bye_at = bye_in.time - first
        assert bye_at >= limit - tolerance(t.t2), (
            f"the device sent BYE {bye_at:.3f} s after its 2xx, before the ACK wait of 64*T1 = {limit:g} s was over "
            "(RFC 3261 §15: not before the ACK or the server transaction timing out)")
    sip_should(bye_in is not None, "3261-13.3.1.4-bye-after-no-ack", "RFC 3261 §13.3.1.4",
               f"no BYE within {wait:.1f} s of a 2xx that was never acknowledged")


@pytest.mark.sip_purpose("TP-INV-012", "An ACK with another To tag does not stop the 2xx retransmissions",
                         "RFC 3261 §13.3.1.4", "RFC 3261 §12", "RFC 3261 §17.2.3")
@pytest.mark.sip_timer(6)
@pytest.mark.sip_faults("no-2xx-retransmit")
def test_s13_3_1_4_ack_with_wrong_to_tag_does_not_stop_2xx(sip_peer, sip_profile, calls):
    """§13.3.1.4: "Response retransmissions cease when an ACK request for the response is received." The ACK for the
    2xx is an in-dialog request (§13.2.2.4: "The header fields of the ACK are constructed in the same way as for any
    request sent within a dialog"), and the dialog is identified by the tags (§12: "A dialog is identified at each UA
    with a dialog ID, which consists of a Call-ID value, a local tag and a remote tag"). An ACK whose To tag is not
    the one in the 2xx belongs to no dialog of the device: the 2xx must still come at T1 and 3*T1; the right ACK
    then stops it."""
    _wrong_ack_keeps_2xx(sip_peer, sip_profile, calls, "To tag", lambda a: with_wrong_tag(a, "To"))


@pytest.mark.sip_purpose("TP-INV-013", "An ACK with another CSeq number does not stop the 2xx retransmissions",
                         "RFC 3261 §13.3.1.4", "RFC 3261 §13.2.2.4")
@pytest.mark.sip_timer(6)
@pytest.mark.sip_faults("no-2xx-retransmit")
def test_s13_3_1_4_ack_with_wrong_cseq_does_not_stop_2xx(sip_peer, sip_profile, calls):
    """§13.3.1.4: "Response retransmissions cease when an ACK request for the response is received." §13.2.2.4:
    "The sequence number of the CSeq header field MUST be the same as the INVITE being acknowledged, but the CSeq
    method MUST be ACK." An ACK with the INVITE's CSeq number plus one acknowledges no response the device sent: the
    2xx must still come at T1 and 3*T1; the right ACK then stops it."""
    _wrong_ack_keeps_2xx(sip_peer, sip_profile, calls, "CSeq number",
                         lambda a: with_cseq(a, a.cseq.number + 1, "ACK"))


def _wrong_ack_keeps_2xx(peer, profile, calls, what, mutate) -> None:
    t = profile.timers
    call = calls.answered()
    first = two_xx(peer, call.invite)[0].time
    good = call.dialog.create_ack(call.invite, via=peer.via())
    bad = mutate(good)
    peer.send(bad, profile.target.address)
    bad_at = sent_time(peer, bad)
    s = schedule(t.t1, t.t2, 10 * t.t2)
    sleep_until(peer, first + s[2] + tolerance(interval(t.t1, t.t2, 1)))
    after_bad = [e for e in two_xx(peer, call.invite) if e.time > bad_at]
    assert len(after_bad) >= 2, (
        f"after an ACK with the wrong {what} ({bad.header('To') if what == 'To tag' else bad.header('CSeq')}) the 2xx "
        f"came {len(after_bad)} more time(s) within {s[2] + tolerance(interval(t.t1, t.t2, 1)):.3f} s, expected at "
        f"{s[1]:g} s and {s[2]:g} s: the device took it for the ACK of its 2xx ({describe(after_bad, first)})")
    peer.send(good, profile.target.address)
    call.acked = good
    acked = sent_time(peer, good)
    sleep_until(peer, first + s[3] + tolerance(interval(t.t1, t.t2, 2)))
    late = [e for e in two_xx(peer, call.invite) if e.time > acked + tolerance(0)]
    assert not late, f"the 2xx was retransmitted after the right ACK: {describe(late, first)}"
    _bye_ok(peer, profile, call)


@pytest.mark.sip_purpose("TP-INV-014", "ACKs re-sent for each 2xx copy are absorbed: never answered, call unharmed",
                         "RFC 3261 §13.2.2.4", "RFC 3261 §17", "RFC 3261 §13.3.1.4")
@pytest.mark.sip_timer(4)
@pytest.mark.sip_faults("answer-ack", "no-2xx-retransmit")
def test_s13_2_2_4_repeated_ack_absorbed(sip_peer, sip_profile, calls):
    """§13.2.2.4: "The ACK MUST be passed to the client transport every time a retransmission of the 2xx final
    response that triggered the ACK arrives." The UAS therefore gets the same ACK several times; an ACK is never
    answered (§17: "disallowed responses (such as a response to ACK)"; 3261-17-no-response-to-ack) and the copies
    change nothing. The peer withholds the
    ACK until the first retransmission, then acknowledges both copies, and once more: no response to any ACK, no
    2xx afterwards, and the dialog still answers BYE 200."""
    t = sip_profile.timers
    call = calls.answered()
    first = two_xx(sip_peer, call.invite)[0].time
    s = schedule(t.t1, t.t2, 10 * t.t2)
    assert wait_until(sip_peer, lambda: len(two_xx(sip_peer, call.invite)) >= 2, s[1] + tolerance(s[1]) + 1.0), (
        f"the 2xx was not retransmitted within {s[1] + tolerance(s[1]):.3f} s without ACK "
        "(3261-13.3.1.4-2xx-retransmit)")
    ack_req = ack(sip_peer, sip_profile, call)
    sip_peer.send(ack_req, sip_profile.target.address)
    sip_peer.sleep(min(t.t1 / 2, 0.2))
    sip_peer.send(ack_req, sip_profile.target.address)
    acked = sent_time(sip_peer, ack_req)
    sleep_until(sip_peer, first + s[2] + tolerance(interval(t.t1, t.t2, 1)))
    answers = received(sip_peer, lambda m: isinstance(m, Response) and m.call_id == call.invite.call_id
                       and m.cseq is not None and m.cseq.method == "ACK")
    assert not answers, f"the device answered an ACK: {describe(answers, first)} (3261-17-no-response-to-ack)"
    late = [e for e in two_xx(sip_peer, call.invite) if e.time > acked + tolerance(0)]
    assert not late, f"the 2xx came again after the ACKs: {describe(late, first)}"
    _bye_ok(sip_peer, sip_profile, call)


# -- a rejected INVITE: the INVITE server transaction -------------------------------------------------------------


@pytest.mark.sip_purpose("TP-INV-015", "A 300-699 to INVITE is retransmitted per Timer G until the ACK (UDP)",
                         "RFC 3261 §17.2.1")
@pytest.mark.sip_requires(transports=("udp",))
@pytest.mark.sip_timer(20)
def test_s17_2_1_non2xx_retransmitted_until_ack(sip_peer, sip_profile):
    """§17.2.1: "For unreliable transports, timer G is set to fire in T1 seconds [...] If timer G fires, the response
    is passed to the transport layer once more for retransmission, and timer G is set to fire in MIN(2*T1, T2)
    seconds. From then on, when timer G fires, the response is passed to the transport again for transmission, and
    timer G is reset with a value that doubles, unless that value exceeds T2, in which case it is reset with the
    value of T2." and "If an ACK is received while the server transaction is in the "Completed" state, the server
    transaction MUST transition to the "Confirmed" state. As Timer G is ignored in this state, any retransmissions of
    the response will cease." The INVITE (outside a client transaction, Require with an unknown option) is rejected;
    the ACK is withheld until two intervals capped at T2 were seen, then sent half-way through a gap."""
    t = sip_profile.timers
    ack_at, due = observation_window(t.t1, t.t2)
    inv, first_entry = rejected_raw(sip_peer, sip_profile)
    final = first_entry.message
    first = first_entry.time
    sleep_until(sip_peer, first + ack_at)
    ack_req = ack_non2xx(inv, final)
    sip_peer.send(ack_req, sip_profile.target.address)
    acked = sent_time(sip_peer, ack_req)
    sip_peer.sleep(t.t2 + tolerance(t.t2))
    copies = final_responses(sip_peer, inv, range(300, 700))
    assert all(e.message.status == final.status for e in copies), (
        f"the final response changed while it was retransmitted: {describe(copies, first)}")
    before = [e.time for e in copies if e.time <= acked]
    problems = judge_schedule(before, t.t1, t.t2, acked - first, f"{final.status}")
    assert not problems, "; ".join(problems) + " (Timer G, RFC 3261 §17.2.1)"
    assert len(before) >= due, (
        f"{len(before)} copies of the {final.status} in {acked - first:.3f} s without ACK, {due} due: "
        f"{describe(copies, first)}")
    after = [e for e in copies if e.time > acked + tolerance(0)]
    assert not after, f"the {final.status} was retransmitted after the ACK: {describe(after, first)}"


@pytest.mark.sip_purpose("TP-INV-016", "Over a reliable transport a 300-699 to INVITE is sent once",
                         "RFC 3261 §17.2.1")
@pytest.mark.sip_requires(transports=RELIABLE)
@pytest.mark.sip_timer(3)
def test_s17_2_1_non2xx_not_retransmitted_over_reliable_transport(sip_peer, sip_profile):
    """§17.2.1: "For unreliable transports, timer G is set to fire in T1 seconds, and is not set to fire for reliable
    transports." ("This is a change from RFC 2543, where responses were always retransmitted, even over reliable
    transports.") With the ACK withheld, the final response is sent once: no copy at T1 or 3*T1."""
    t = sip_profile.timers
    inv, first_entry = rejected_raw(sip_peer, sip_profile)
    final = first_entry.message
    first = first_entry.time
    s = schedule(t.t1, t.t2, 10 * t.t2)
    sleep_until(sip_peer, first + s[2] + tolerance(interval(t.t1, t.t2, 1)))
    copies = final_responses(sip_peer, inv, range(300, 700))
    sip_peer.send(ack_non2xx(inv, final), sip_profile.target.address)
    assert len(copies) == 1, (
        f"the {final.status} was sent {len(copies)} times over {sip_profile.target.transport}, where Timer G is not "
        f"set: {describe(copies, first)}")


@pytest.mark.sip_purpose("TP-INV-017", "Timer H: without ACK the 300-699 is retransmitted for 64*T1 and then no more",
                         "RFC 3261 §17.2.1")
@pytest.mark.sip_requires(transports=("udp",))
@pytest.mark.sip_timer(38)
def test_s17_2_1_timer_h_ends_non2xx_retransmissions(sip_peer, sip_profile):
    """§17.2.1: "When the "Completed" state is entered, timer H MUST be set to fire in 64*T1 seconds for all
    transports. Timer H determines when the server transaction abandons retransmitting the response." and "If timer
    H fires while in the "Completed" state, it implies that the ACK was never received. In this case, the server
    transaction MUST transition to the "Terminated" state". The ACK never comes: the final response follows Timer G
    up to 64*T1 and is not sent after it."""
    t = sip_profile.timers
    limit = 64 * t.t1
    inv, first_entry = rejected_raw(sip_peer, sip_profile)
    final = first_entry.message
    first = first_entry.time
    sleep_until(sip_peer, first + limit + t.t2 + tolerance(t.t2))
    copies = final_responses(sip_peer, inv, range(300, 700))
    late = [e for e in copies if e.time - first > limit + tolerance(t.t2)]
    assert not late, (
        f"the {final.status} was still sent {late[0].time - first:.3f} s after the first copy, past Timer H "
        f"(64*T1 = {limit:g} s): {describe(late, first)}")
    problems = judge_schedule([e.time for e in copies if e.time - first <= limit], t.t1, t.t2,
                              limit - tolerance(t.t2), f"{final.status}")
    assert not problems, "; ".join(problems) + " (Timer G, RFC 3261 §17.2.1)"


@pytest.mark.sip_purpose("TP-INV-018", "The ACK for a 300-699 and its repetitions are absorbed (Timer I)",
                         "RFC 3261 §17.2.1", "RFC 3261 §17")
@pytest.mark.sip_timer(3)
def test_s17_2_1_ack_retransmissions_absorbed(sip_peer, sip_profile):
    """§17.2.1: "The purpose of the "Confirmed" state is to absorb any additional ACK messages that arrive, triggered
    from retransmissions of the final response. When this state is entered, timer I is set to fire in T4 seconds
    for unreliable transports, and zero seconds for reliable transports." The ACK is sent three times: none is
    answered (an ACK never is) and the final response is not sent again after the first ACK."""
    t = sip_profile.timers
    inv, first_entry = rejected_raw(sip_peer, sip_profile)
    final = first_entry.message
    first = first_entry.time
    ack_req = ack_non2xx(inv, final)
    sip_peer.send(ack_req, sip_profile.target.address)
    acked = sent_time(sip_peer, ack_req)
    for _ in range(2):
        sip_peer.sleep(min(t.t1 / 2, 0.2))
        sip_peer.send(ack_req, sip_profile.target.address)
    s = schedule(t.t1, t.t2, 10 * t.t2)
    sleep_until(sip_peer, first + s[2] + tolerance(interval(t.t1, t.t2, 1)))
    answers = received(sip_peer, lambda m: isinstance(m, Response) and m.call_id == inv.call_id
                       and m.cseq is not None and m.cseq.method == "ACK")
    assert not answers, f"the device answered an ACK: {describe(answers, first)} (3261-17-no-response-to-ack)"
    late = [e for e in final_responses(sip_peer, inv, range(300, 700)) if e.time > acked + tolerance(0)]
    assert not late, f"the {final.status} was sent again after the ACK: {describe(late, first)}"


@pytest.mark.sip_purpose("TP-INV-019", "An INVITE retransmission in Completed gets the final response again",
                         "RFC 3261 §17.2.1")
@pytest.mark.sip_timer(4)
def test_s17_2_1_invite_retransmission_in_completed_gets_final(sip_peer, sip_profile, sip_should):
    """§17.2.1: "Furthermore, while in the "Completed" state, if a request retransmission is received, the server
    SHOULD pass the response to the transport for retransmission." The INVITE is sent again after the 300-699; over
    UDP half-way through the gap between two Timer G retransmissions, so that an answer to it cannot be taken for
    one of them. A SHOULD: its absence is a warning. Whatever answers it must be the same final response."""
    t = sip_profile.timers
    inv, first_entry = rejected_raw(sip_peer, sip_profile)
    final = first_entry.message
    first = first_entry.time
    reliable = sip_profile.target.transport in RELIABLE
    s = schedule(t.t1, t.t2, 10 * t.t2)
    if reliable:
        again_at, window_end = first, 1.0
    else:
        gap = interval(t.t1, t.t2, 2)
        again_at = first + s[2] + gap / 2
        window_end = gap / 2 - tolerance(gap)
    sleep_until(sip_peer, again_at)
    sip_peer.send(inv, sip_profile.target.address)
    sent = sent_time(sip_peer, inv)
    sip_peer.sleep(max(window_end, 0.05))
    answers = [e for e in final_responses(sip_peer, inv) if sent < e.time <= sent + max(window_end, 0.05)]
    sip_peer.send(ack_non2xx(inv, final), sip_profile.target.address)
    for e in answers:
        assert e.message.status == final.status and e.message.to.tag == final.to.tag, (
            f"the INVITE retransmission was answered {e.summary} with To {e.message.header('To')!r}; the transaction "
            f"had sent {final.status} with To {final.header('To')!r} (3261-8.2.6.2-to-tag-stable)")
    sip_should(bool(answers), "3261-17.2.1-retransmit-final", "RFC 3261 §17.2.1",
               f"no {final.status} again within {max(window_end, 0.05) * 1000:.0f} ms of an INVITE retransmission in "
               "the Completed state")


@pytest.mark.sip_purpose("TP-INV-020", "An INVITE retransmission in Proceeding gets the latest provisional again",
                         "RFC 3261 §17.2.1")
@pytest.mark.sip_faults("no-provisional-retransmit")
def test_s17_2_1_invite_retransmission_in_proceeding_gets_provisional(sip_peer, sip_profile, calls):
    """§17.2.1: "If a request retransmission is received while in the "Proceeding" state, the most recent
    provisional response that was received from the TU MUST be passed to the transport layer for retransmission. A
    request is a retransmission if it matches the same server transaction based on the rules of Section 17.2.3."
    The INVITE is sent again as soon as the device rings (inconclusive when it does not ring). The INVITE does not
    offer 100rel: the provisional is then unreliable, and what answers the retransmission cannot be taken for a
    reliable retransmission. When the next response is the final one, it was sent after the retransmission arrived
    if it reached the peer later than the retransmission left it (loopback: well within 30 ms), so the transaction
    was still in Proceeding and the provisional was due first (3261-17.2.1-retransmit-provisional). A final response
    that had arrived before the retransmission left means the device was no longer in Proceeding: inconclusive."""
    call = calls.ringing(hold_with_100rel=False)

    def same(m):
        return (isinstance(m, Response) and m.call_id == call.invite.call_id and m.cseq is not None
                and m.cseq.method == "INVITE")

    latest = [e.message for e in received(sip_peer, same) if e.message.status < 200][-1]
    sip_peer.send(call.invite, sip_profile.target.address)
    sent = sent_time(sip_peer, call.invite)
    early = [e for e in received(sip_peer, same) if e.message.status >= 200 and e.time <= sent]
    if early:
        # The device had answered before the retransmission left: the transaction was in Completed (or, after a
        # 2xx, gone), not in Proceeding, when the retransmission reached it (as TP-TXN-001 does).
        inconclusive(f"the device sent its {early[0].message.status} {early[0].message.reason} "
                     f"{(sent - early[0].time) * 1000:.1f} ms before the INVITE retransmission left: no Proceeding "
                     "state to test")
    sip_peer.sleep(1.0)
    answers = [e for e in received(sip_peer, same) if e.time > sent]
    assert answers, (
        f"no response to the INVITE retransmission within 1 s while the transaction was in Proceeding (last "
        f"provisional: {latest.status} {latest.reason})")
    got = answers[0].message
    if got.status >= 200:
        # The final response went out after the retransmission arrived (it reached us later than the retransmission
        # left): unless it came right away, the device let the retransmission go unanswered in Proceeding.
        delay = answers[0].time - sent
        if delay < 0.03:
            inconclusive(f"the device sent its {got.status} {delay * 1000:.0f} ms after the INVITE retransmission: "
                         "too close to tell whether it was still in Proceeding")
        raise AssertionError(
            f"the INVITE retransmission sent while the device was ringing ({latest.status} {latest.reason}) got no "
            f"provisional again; the next response was the {got.status} {delay * 1000:.0f} ms later "
            "(3261-17.2.1-retransmit-provisional)")
    assert got.status == latest.status and got.to.tag == latest.to.tag, (
        f"the INVITE retransmission was answered {got.status} with To {got.header('To')!r}; the most recent "
        f"provisional was {latest.status} with To {latest.header('To')!r}")


@pytest.mark.sip_faults("no-allow-supported-2xx")
@pytest.mark.sip_purpose("TP-INV-021", "The 2xx to INVITE lists Allow (with ACK, BYE, CANCEL, INVITE) and Supported",
                         "RFC 3261 §13.3.1.4", "RFC 3261 §13.1", "RFC 3261 §20.5")
@pytest.mark.sip_faults("allow-incomplete")
def test_s13_3_1_4_2xx_allow_and_supported(sip_peer, sip_profile, calls, sip_should):
    """§13.3.1.4: "A 2xx response to an INVITE SHOULD contain the Allow header field and the Supported header field,
    and MAY contain the Accept header field." §13.1: "A UA that supports INVITE MUST also support ACK, CANCEL and
    BYE." §20.5: "The Allow header field lists the set of methods supported by the UA generating the message." A
    missing header is a warning; an Allow that leaves out ACK, BYE, CANCEL or INVITE misstates what the device
    does."""
    call = calls.answered()
    final = call.final
    has_allow = final.has_header("Allow")
    sip_should(has_allow, "3261-13.3.1.4-allow-supported-in-2xx", "RFC 3261 §13.3.1.4", "no Allow in the 2xx to INVITE")
    sip_should(final.has_header("Supported"), "3261-13.3.1.4-allow-supported-in-2xx", "RFC 3261 §13.3.1.4",
               "no Supported in the 2xx to INVITE")
    if has_allow:
        missing = [m for m in ("ACK", "BYE", "CANCEL", "INVITE") if m not in final.allow]
        assert not missing, f"Allow: {', '.join(final.allow)} in the 2xx to INVITE lacks {', '.join(missing)}"
    ack(sip_peer, sip_profile, call)
    _bye_ok(sip_peer, sip_profile, call)
