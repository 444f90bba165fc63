"""Dialogs (RFC 3261 §12, §13.2.2): creation on both sides, forking, route sets, in-dialog requests, CSeq rules."""

from __future__ import annotations

import pytest

from conformance.sip import Request, Response, build_request, build_response, name_addr
from conformance.sip.state import (
    Dialog,
    DialogError,
    DialogId,
    DialogSet,
    DialogState,
    Rejection,
    dialog_id_of,
)

VIA = "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8"
VIA2 = "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKsecond"


def invite(
    *,
    uri: str = "sip:bob@biloxi.example.com",
    record_route: tuple[str, ...] = (),
    cseq: int = 314159,
    headers: tuple[tuple[str, str], ...] = (),
) -> Request:
    return build_request(
        "INVITE",
        uri,
        from_=name_addr("sip:alice@atlanta.example.com", "Alice", tag="1928301774"),
        to=name_addr("sip:bob@biloxi.example.com", "Bob"),
        via=VIA,
        call_id="a84b4c76e66710@pc33.atlanta.example.com",
        cseq=cseq,
        contact="<sip:alice@pc33.atlanta.example.com>",
        headers=[*(("Record-Route", rr) for rr in record_route), *headers],
    )


def answer(
    request: Request, status: int, tag: str | None = "a6c85cf", contact: str = "<sip:bob@192.0.2.4>"
) -> Response:
    return build_response(request, status, to_tag=tag, contact=contact)


def in_dialog(method: str, dialog_of_peer: Dialog, cseq: int | None = None, contact: str | None = None) -> Request:
    """A request the peer sends in its dialog (which is ours seen from the other side)."""
    return dialog_of_peer.create_request(method, via=VIA2, cseq=cseq, contact=contact)


RR = ("<sip:p2.biloxi.example.com;lr>", "<sip:p1.atlanta.example.com;lr>")


# -- creation -----------------------------------------------------------------------------------------------------


def test_s12_1_2_uac_dialog_from_a_2xx():
    """§12.1.2: "The route set MUST be set to the list of URIs in the Record-Route header field from the response,
    taken in reverse order and preserving all URI parameters." "The remote target MUST be set to the URI from the
    Contact header field of the response." "The local sequence number MUST be set to the value of the sequence
    number in the CSeq header field of the request. The remote sequence number MUST be empty" and the dialog ID's
    "local tag component ... MUST be set to the tag in the From field in the request, and the remote tag component
    ... MUST be set to the tag in the To field of the response"."""
    req = invite(record_route=RR)
    ok = answer(req, 200)
    d = Dialog.from_response(req, ok)
    assert d.id == DialogId("a84b4c76e66710@pc33.atlanta.example.com", "1928301774", "a6c85cf")
    assert d.state is DialogState.CONFIRMED and d.role == "UAC"
    assert d.route_set == ("<sip:p1.atlanta.example.com;lr>", "<sip:p2.biloxi.example.com;lr>")
    assert d.remote_target == "sip:bob@192.0.2.4"
    assert (d.local_cseq, d.remote_cseq) == (314159, None)
    assert (d.local_uri, d.remote_uri) == ("sip:alice@atlanta.example.com", "sip:bob@biloxi.example.com")
    assert d.secure is False


def test_s12_1_early_dialog_from_a_1xx_with_a_to_tag_only():
    """§12.1: "only 2xx and 101-199 responses with a To tag, where the request was INVITE, will establish a dialog.
    A dialog established by a non-final response to a request is in the "early" state"."""
    req = invite()
    early = Dialog.from_response(req, answer(req, 180))
    assert early.state is DialogState.EARLY and early.early
    untagged_180 = answer(req, 180).with_header("To", req.header("To") or "")
    assert isinstance(untagged_180, Response) and untagged_180.to is not None and untagged_180.to.tag is None
    with pytest.raises(DialogError):
        Dialog.from_response(req, untagged_180)
    with pytest.raises(DialogError):
        Dialog.from_response(req, build_response(req, 100))
    with pytest.raises(DialogError):
        Dialog.from_response(req, answer(req, 486))
    # §12.1.2: "A UAC MUST be prepared to receive a response without a tag in the To field, in which case the tag
    # is considered to have a value of null." (RFC 2543 2xx)
    untagged_200 = answer(req, 200).with_header("To", req.header("To") or "")
    assert isinstance(untagged_200, Response)
    legacy = Dialog.from_response(req, untagged_200)
    assert legacy.remote_tag is None and legacy.confirmed


def test_s12_1_1_uas_dialog_from_the_request():
    """§12.1.1: "The route set MUST be set to the list of URIs in the Record-Route header field from the request,
    taken in order and preserving all URI parameters." "The remote target MUST be set to the URI from the Contact
    header field of the request." "The remote sequence number MUST be set to the value of the sequence number in the
    CSeq header field of the request. The local sequence number MUST be empty." The local tag is "the tag in the To
    field in the response to the request"."""
    req = invite(record_route=RR)
    d = Dialog.from_request(req, "a6c85cf", early=True, local_contact="<sip:bob@192.0.2.4>")
    assert d.id == DialogId("a84b4c76e66710@pc33.atlanta.example.com", "a6c85cf", "1928301774")
    assert d.role == "UAS" and d.state is DialogState.EARLY
    assert d.route_set == RR
    assert d.remote_target == "sip:alice@pc33.atlanta.example.com"
    assert (d.local_cseq, d.remote_cseq) == (None, 314159)
    assert (d.local_uri, d.remote_uri) == ("sip:bob@biloxi.example.com", "sip:alice@atlanta.example.com")
    d.confirm()
    assert d.confirmed


def test_s12_1_secure_flag_needs_tls_and_a_sips_request_uri():
    """§12.1.1: "If the request arrived over TLS, and the Request-URI contained a SIPS URI, the "secure" flag is set
    to TRUE." (§12.1.2 likewise for the UAC.)"""
    sips = invite(uri="sips:bob@biloxi.example.com")
    assert Dialog.from_request(sips, "t", secure_transport=True).secure is True
    assert Dialog.from_request(sips, "t", secure_transport=False).secure is False
    assert Dialog.from_request(invite(), "t", secure_transport=True).secure is False
    assert Dialog.from_response(sips, answer(sips, 200), secure_transport=True).secure is True


def test_dialog_id_of_a_received_message_uses_the_uas_or_uac_rule():
    """§12: "For a UAC, ... the remote tag is set to the tag in the To field of the message, and the local tag is set
    to the tag in the From field" and "for a UAS, ... the remote tag is set to the tag in the From field of the
    message, and the local tag is set to the tag in the To field of the message"."""
    req = invite()
    ok = answer(req, 200)
    assert dialog_id_of(ok) == DialogId(req.call_id or "", "1928301774", "a6c85cf")
    uas = Dialog.from_request(req, "a6c85cf")
    uac = Dialog.from_response(req, ok)
    bye_from_uac = in_dialog("BYE", uac)
    assert dialog_id_of(bye_from_uac) == uas.id and uas.matches(bye_from_uac)
    assert not uac.matches(bye_from_uac)


# -- forking ------------------------------------------------------------------------------------------------------


def test_s13_2_2_4_forked_responses_with_different_to_tags_make_separate_dialogs():
    """§13.2.2.4: "Multiple 2xx responses may arrive at the UAC for a single INVITE request due to a forking proxy.
    Each response is distinguished by the tag parameter in the To header field, and each represents a distinct
    dialog, with a distinct dialog identifier." §13.2.2.1: "If a provisional response has a tag in the To field, and
    if the dialog ID of the response does not match an existing dialog, one is constructed"."""
    req = invite()
    dialogs = DialogSet(req)
    assert dialogs.receive_response(build_response(req, 100)) is None
    a = dialogs.receive_response(answer(req, 180, tag="fork-a", contact="<sip:bob@a.example.com>"))
    b = dialogs.receive_response(answer(req, 180, tag="fork-b", contact="<sip:bob@b.example.com>"))
    assert a is not None and b is not None and a is not b
    assert dialogs.receive_response(answer(req, 183, tag="fork-a")) is a
    b2 = dialogs.receive_response(answer(req, 200, tag="fork-b", contact="<sip:bob@b.example.com>"))
    c = dialogs.receive_response(answer(req, 200, tag="fork-c", contact="<sip:bob@c.example.com>"))
    assert b2 is b and b.confirmed and a.early
    assert c is not None and c.confirmed and c.remote_target == "sip:bob@c.example.com"
    assert len(dialogs) == 3 and dialogs.confirmed == [b, c]
    assert {d.remote_tag for d in dialogs} == {"fork-a", "fork-b", "fork-c"}
    assert dialogs.terminate_early() == [a] and a.terminated


def test_s13_2_2_4_a_2xx_confirms_the_early_dialog_and_recomputes_its_route_set():
    """§13.2.2.4: "If the dialog identifier in the 2xx response matches the dialog identifier of an existing dialog,
    the dialog MUST be transitioned to the "confirmed" state, and the route set for the dialog MUST be recomputed
    based on the 2xx response" — "RFC 2543 did not mandate mirroring of the Record-Route header field in a 1xx"."""
    req = invite(record_route=RR)
    dialogs = DialogSet(req)
    ringing = build_response(req, 180, to_tag="t1", contact="<sip:bob@192.0.2.4>", record_route=False)
    early = dialogs.receive_response(ringing)
    assert early is not None and early.route_set == ()
    early.create_request("INFO", via=VIA2)  # a request in the early dialog moves the local CSeq
    ok = build_response(req, 200, to_tag="t1", contact="<sip:bob@192.0.2.4>")
    assert dialogs.receive_response(ok) is early
    assert early.confirmed
    assert early.route_set == tuple(reversed(RR))
    assert early.local_cseq == 314160  # "Other pieces of state such as the highest sequence numbers ... are not
    # recomputed."


def test_s13_2_2_3_a_non2xx_final_terminates_all_early_dialogs():
    """§13.2.2.3: "All early dialogs are considered terminated upon reception of the non-2xx final response." and
    §12.3: "if a request outside of a dialog generates a non-2xx final response, any early dialogs created through
    provisional responses to that request are terminated." """
    req = invite()
    dialogs = DialogSet(req)
    a = dialogs.receive_response(answer(req, 180, tag="a"))
    b = dialogs.receive_response(answer(req, 183, tag="b"))
    assert dialogs.receive_response(answer(req, 486, tag="b")) is None
    assert a is not None and b is not None and a.terminated and b.terminated and dialogs.failed == 486


# -- requests within a dialog -------------------------------------------------------------------------------------


def test_s12_2_1_1_loose_routing_remote_target_in_request_uri_route_set_in_route():
    """§12.2.1.1: "If the route set is not empty, and the first URI in the route set contains the lr parameter (see
    Section 19.1.1), the UAC MUST place the remote target URI into the Request-URI and MUST include a Route header
    field containing the route set values in order, including all parameters." (The §16.12.1.1 trapezoid.)"""
    req = invite(record_route=RR)
    d = Dialog.from_response(req, answer(req, 200, contact="<sip:callee@u2.domain.example.com>"))
    bye = d.create_request("BYE", via=VIA2)
    assert bye.uri_text == "sip:callee@u2.domain.example.com"
    assert [r.raw for r in bye.route] == ["<sip:p1.atlanta.example.com;lr>", "<sip:p2.biloxi.example.com;lr>"]


def test_s12_2_1_1_empty_route_set_no_route_header():
    """§12.2.1.1: "If the route set is empty, the UAC MUST place the remote target URI into the Request-URI. The UAC
    MUST NOT add a Route header field to the request." """
    req = invite()
    bye = Dialog.from_response(req, answer(req, 200)).create_request("BYE", via=VIA2)
    assert bye.uri_text == "sip:bob@192.0.2.4" and not bye.has_header("Route")


def test_s12_2_1_1_strict_router_first_route_goes_to_the_request_uri():
    """§12.2.1.1: "For example, if the remote target is sip:user@remoteua and the route set contains:
    <sip:proxy1>,<sip:proxy2>,<sip:proxy3;lr>,<sip:proxy4> The request will be formed with the following Request-URI
    and Route header field: METHOD sip:proxy1 Route: <sip:proxy2>,<sip:proxy3;lr>,<sip:proxy4>,<sip:user@remoteua>" """
    req = invite(record_route=("<sip:proxy4>", "<sip:proxy3;lr>", "<sip:proxy2>", "<sip:proxy1;method=INVITE>"))
    d = Dialog.from_response(req, answer(req, 200, contact="<sip:user@remoteua>"))
    assert d.route_set == ("<sip:proxy1;method=INVITE>", "<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>")
    info = d.create_request("INFO", via=VIA2)
    # "stripping any parameters that are not allowed in a Request-URI"
    assert info.uri_text == "sip:proxy1"
    assert [r.raw for r in info.route] == ["<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>", "<sip:user@remoteua>"]


def test_s12_2_1_1_to_from_call_id_and_cseq_incremented_by_one():
    """§12.2.1.1: "The URI in the To field of the request MUST be set to the remote URI from the dialog state. The tag
    in the To header field of the request MUST be set to the remote tag of the dialog ID. The From URI of the request
    MUST be set to the local URI from the dialog state. The tag in the From header field of the request MUST be set
    to the local tag of the dialog ID." "if the local sequence number is not empty, the value of the local sequence
    number MUST be incremented by one, and this value MUST be placed into the CSeq header field." """
    req = invite()
    d = Dialog.from_response(req, answer(req, 200))
    first = d.create_request("INFO", via=VIA2)
    second = d.create_request("BYE", via=VIA2)
    assert first.cseq is not None and second.cseq is not None
    assert (first.cseq.number, first.cseq.method) == (314160, "INFO")
    assert second.cseq.number == 314161 and d.local_cseq == 314161
    assert first.to is not None and first.to.uri_text == "sip:bob@biloxi.example.com" and first.to.tag == "a6c85cf"
    assert first.from_ is not None and first.from_.tag == "1928301774"
    assert first.from_.display_name == "Alice" and first.to.display_name == "Bob"
    assert first.call_id == req.call_id
    assert not first.defects


def test_s12_2_1_1_uas_chooses_an_initial_cseq_below_2_31():
    """§12.2.1.1: "If the local sequence number is empty, an initial value MUST be chosen using the guidelines of
    Section 8.1.1.5" — §8.1.1.5: "MUST be less than 2**31"."""
    d = Dialog.from_request(invite(), "a6c85cf")
    bye = d.create_request("BYE", via=VIA2)
    assert bye.cseq is not None and 0 < bye.cseq.number < 2**31
    assert bye.uri_text == "sip:alice@pc33.atlanta.example.com"
    assert bye.to is not None and bye.to.tag == "1928301774"
    assert bye.from_ is not None and bye.from_.tag == "a6c85cf"
    assert d.create_request("BYE", via=VIA2, cseq=77).cseq == (77, "BYE")


def test_s12_2_1_1_target_refresh_requests_carry_a_contact():
    """§12.2.1.1: "A UAC SHOULD include a Contact header field in any target refresh requests within a dialog, and
    unless there is a need to change it, the URI SHOULD be the same as used in previous requests within the
    dialog." """
    req = invite()
    d = Dialog.from_response(req, answer(req, 200))
    reinvite = d.create_request("INVITE", via=VIA2)
    assert [c.uri_text for c in reinvite.contact] == ["sip:alice@pc33.atlanta.example.com"]
    assert not d.create_request("INFO", via=VIA2).has_header("Contact")


def test_s13_2_2_4_ack_for_2xx_keeps_the_invite_cseq_and_credentials():
    """§13.2.2.4: "The sequence number of the CSeq header field MUST be the same as the INVITE being acknowledged,
    but the CSeq method MUST be ACK. The ACK MUST contain the same credentials as the INVITE." (Not the CSeq of a
    PRACK sent since: drachtio-srf #119.)"""
    req = invite(headers=(("Proxy-Authorization", 'Digest username="alice", realm="atlanta.example.com"'),))
    d = Dialog.from_response(req, answer(req, 183))
    d.create_request("PRACK", via=VIA2, headers=[("RAck", "1 314159 INVITE")])
    d.receive_response(answer(req, 200), req)
    ack = d.create_ack(req, via=VIA2)
    assert ack.cseq is not None and (ack.cseq.number, ack.cseq.method) == (314159, "ACK")
    assert ack.header("Proxy-Authorization") == req.header("Proxy-Authorization")
    assert ack.uri_text == "sip:bob@192.0.2.4" and ack.to is not None and ack.to.tag == "a6c85cf"
    assert d.local_cseq == 314160  # the ACK did not consume a number
    with pytest.raises(DialogError):
        d.create_request("ACK", via=VIA2)
    with pytest.raises(DialogError):
        d.create_request("CANCEL", via=VIA2)


# -- requests received in a dialog --------------------------------------------------------------------------------


def test_s12_2_2_a_lower_remote_cseq_is_rejected_with_500():
    """§12.2.2: "If the remote sequence number was not empty, but the sequence number of the request is lower than
    the remote sequence number, the request is out of order and MUST be rejected with a 500 (Server Internal Error)
    response." "If the request is rejected, none of the state changes are performed." """
    req = invite()
    uac = Dialog.from_response(req, answer(req, 200))
    uas = Dialog.from_request(req, "a6c85cf")
    late = in_dialog("INVITE", uac, cseq=314150, contact="<sip:alice@new.example.com>")
    assert uas.receive_request(late) == Rejection(500, "Server Internal Error", "RFC 3261 §12.2.2")
    assert uas.remote_cseq == 314159 and uas.remote_target == "sip:alice@pc33.atlanta.example.com"


def test_s12_2_2_higher_cseq_with_a_gap_is_in_order():
    """§12.2.2: "It is possible for the CSeq sequence number to be higher than the remote sequence number by more
    than one. This is not an error condition" and "The UAS MUST then set the remote sequence number to the value of
    the sequence number in the CSeq header field value in the request." """
    req = invite()
    uac = Dialog.from_response(req, answer(req, 200))
    uas = Dialog.from_request(req, "a6c85cf")
    assert uas.receive_request(in_dialog("INFO", uac, cseq=314170)) is None
    assert uas.remote_cseq == 314170
    # ACK and CANCEL carry the number of the request they belong to and do not move it.
    assert uas.receive_request(uac.create_ack(req, via=VIA2)) is None and uas.remote_cseq == 314170


def test_s12_2_2_empty_remote_cseq_is_set_by_the_first_request():
    """§12.2.2: "If the remote sequence number is empty, it MUST be set to the value of the sequence number in the
    CSeq header field value in the request." (The UAC's dialog learns it from the callee's first request.)"""
    req = invite()
    uac = Dialog.from_response(req, answer(req, 200))
    uas = Dialog.from_request(req, "a6c85cf")
    bye = uas.create_request("BYE", via=VIA2, cseq=5)
    assert uac.remote_cseq is None
    assert uac.receive_request(bye) is None
    assert uac.remote_cseq == 5
    assert uac.terminated  # §15: BYE ends the dialog


def test_s12_2_2_target_refresh_updates_the_remote_target_other_requests_do_not():
    """§12.2.2: "When a UAS receives a target refresh request, it MUST replace the dialog's remote target URI with
    the URI from the Contact header field in that request, if present." §12.2: "requests that are not target
    refresh requests do not modify the dialog's remote target URI"."""
    req = invite()
    uac = Dialog.from_response(req, answer(req, 200))
    uas = Dialog.from_request(req, "a6c85cf")
    info = build_request(
        "INFO", "sip:bob@192.0.2.4", from_=name_addr("sip:alice@atlanta.example.com", tag="1928301774"),
        to=name_addr("sip:bob@biloxi.example.com", tag="a6c85cf"), via=VIA2, call_id=req.call_id, cseq=314160,
        contact="<sip:alice@moved.example.com>",
    )  # fmt: skip
    assert uas.receive_request(info) is None
    assert uas.remote_target == "sip:alice@pc33.atlanta.example.com"
    reinvite = in_dialog("INVITE", uac, cseq=314161, contact="<sip:alice@moved.example.com>")
    assert uas.receive_request(reinvite) is None
    assert uas.remote_target == "sip:alice@moved.example.com"


def test_s12_2_2_a_request_of_another_dialog_gets_481():
    """§12.2.2: "If the UAS wishes to reject the request because it does not wish to recreate the dialog, it MUST
    respond to the request with a 481 (Call/Transaction Does Not Exist) status code"."""
    req = invite()
    uas = Dialog.from_request(req, "a6c85cf")
    stranger = Dialog.from_response(req, answer(req, 200, tag="other"))
    assert uas.receive_request(in_dialog("BYE", stranger)) == Rejection(
        481, "Call/Transaction Does Not Exist", "RFC 3261 §12.2.2"
    )


def test_s12_2_1_2_2xx_to_a_target_refresh_replaces_the_remote_target():
    """§12.2.1.2: "When a UAC receives a 2xx response to a target refresh request, it MUST replace the dialog's
    remote target URI with the URI from the Contact header field in that response, if present." """
    req = invite()
    d = Dialog.from_response(req, answer(req, 200))
    reinvite = d.create_request("INVITE", via=VIA2)
    d.receive_response(answer(reinvite, 200, contact="<sip:bob@198.51.100.7>"), reinvite)
    assert d.remote_target == "sip:bob@198.51.100.7"
    info = d.create_request("INFO", via=VIA2)
    d.receive_response(answer(info, 200, contact="<sip:bob@elsewhere.example.com>"), info)
    assert d.remote_target == "sip:bob@198.51.100.7"


@pytest.mark.parametrize("status", [481, 408])
def test_s12_2_1_2_481_or_408_terminates_the_dialog(status: int):
    """§12.2.1.2: "If the response for a request within a dialog is a 481 (Call/Transaction Does Not Exist) or a 408
    (Request Timeout), the UAC SHOULD terminate the dialog." """
    req = invite()
    d = Dialog.from_response(req, answer(req, 200))
    info = d.create_request("INFO", via=VIA2)
    d.receive_response(answer(info, status), info)
    assert d.terminated
    with pytest.raises(DialogError):
        d.create_request("BYE", via=VIA2)


def test_s12_2_1_2_other_failures_leave_a_confirmed_dialog_alone():
    """§12.2.1.2 names only 481 and 408; a re-INVITE rejected with 488 keeps the dialog (§14.1)."""
    req = invite()
    d = Dialog.from_response(req, answer(req, 200))
    reinvite = d.create_request("INVITE", via=VIA2)
    d.receive_response(answer(reinvite, 488), reinvite)
    assert d.confirmed
