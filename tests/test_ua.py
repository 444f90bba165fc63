"""UA core pieces (RFC 3261 §9, §10, §13; RFC 3262) in virtual time, and one call end to end over two tables."""

from __future__ import annotations

from random import Random

import pytest

from conformance.sip import Request, Response, build_request, build_response, name_addr, parse
from conformance.sip.state import (
    AcceptedInvite,
    AckTimedOut,
    CancelTimedOut,
    DialogState,
    InviteClient,
    PrackTimedOut,
    ProvisionalIgnored,
    Registered,
    RegistrationClient,
    RegistrationFailed,
    RegistrationState,
    ReliableProvisionals,
    RequestCreated,
    RequestReceived,
    ResponseCreated,
    ResponseReceived,
    SendMessage,
    ServerInviteTransaction,
    StrayAck,
    TimerConfig,
    TransactionState,
    TransactionTable,
    UaError,
    Unregistered,
    answer_cancel,
    fresh_via,
)

VIA = "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport"


def make_invite(*, supported: str | None = None, cseq: int = 1, body: bytes = b"") -> Request:
    headers = [("Supported", supported)] if supported else []
    return build_request(
        "INVITE",
        "sip:bob@biloxi.example.com",
        from_=name_addr("sip:alice@atlanta.example.com", tag="1928301774"),
        to=name_addr("sip:bob@biloxi.example.com"),
        via=VIA,
        call_id="a84b4c76e66710@pc33.atlanta.example.com",
        cseq=cseq,
        contact="<sip:alice@pc33.atlanta.example.com>",
        headers=headers,
        body=body,
        content_type="application/sdp" if body else None,
    )


def answer(request: Request, status: int, tag: str = "bob-tag", *, headers=(), body: bytes = b"") -> Response:
    return build_response(
        request,
        status,
        to_tag=tag,
        contact="<sip:bob@192.0.2.4>" if status < 300 else None,
        headers=headers,
        body=body,
        content_type="application/sdp" if body else None,
    )


def reliable(request: Request, status: int, rseq: int, tag: str = "bob-tag") -> Response:
    return answer(request, status, tag, headers=[("Require", "100rel"), ("RSeq", str(rseq))])


def step(piece, until: float) -> list[tuple[float, object]]:
    log: list[tuple[float, object]] = [(-1.0, e) for e in piece.events()]
    while (deadline := piece.next_timer()) is not None and deadline <= until:
        piece.handle_timer(deadline)
        log += [(deadline, e) for e in piece.events()]
    return log


def times(log, kind) -> list[float]:
    return [t for t, e in log if isinstance(e, kind)]


# -- UAS: 2xx retransmission (§13.3.1.4) --------------------------------------------------------------------------


def test_s13_3_1_4_2xx_is_retransmitted_t1_doubling_to_t2_until_the_ack():
    """§13.3.1.4: "The 2xx response is passed to the transport with an interval that starts at T1 seconds and doubles
    for each retransmission until it reaches T2 seconds (T1 and T2 are defined in Section 17). Response
    retransmissions cease when an ACK request for the response is received." """
    invite = make_invite()
    ok = answer(invite, 200)
    uas = AcceptedInvite(ok, now=0.0)
    log = step(uas, 12.0)
    assert times(log, SendMessage) == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert all(e.message is ok and e.retransmission for _, e in log if isinstance(e, SendMessage))
    ack = build_request(
        "ACK", "sip:bob@192.0.2.4", from_=invite.header("From") or "", to=ok.header("To") or "",
        via="SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKack1", call_id=invite.call_id, cseq=1,
    )  # fmt: skip
    other = build_request(
        "ACK", "sip:bob@192.0.2.4", from_=invite.header("From") or "",
        to=name_addr("sip:bob@biloxi.example.com", tag="someone-else"),
        via="SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKack2", call_id=invite.call_id, cseq=1,
    )  # fmt: skip
    assert uas.receive_ack(other, 12.5) is False
    assert uas.receive_ack(ack, 13.0) is True
    assert uas.acked and uas.next_timer() is None
    assert step(uas, 100.0) == []


def test_s13_3_1_4_no_ack_within_64t1_advises_bye():
    """§13.3.1.4: "If the server retransmits the 2xx response for 64*T1 seconds without receiving an ACK, the dialog
    is confirmed, but the session SHOULD be terminated. This is accomplished with a BYE"."""
    ok = answer(make_invite(), 200)
    uas = AcceptedInvite(ok, now=10.0)
    log = step(uas, 1000.0)
    assert times(log, SendMessage) == [10.5, 11.5, 13.5, 17.5, 21.5, 25.5, 29.5, 33.5, 37.5, 41.5]
    assert [(t, e) for t, e in log if not isinstance(e, SendMessage)] == [(42.0, AckTimedOut(ok, "BYE"))]
    assert uas.timed_out and uas.next_timer() is None


def test_s13_3_1_4_changed_t1_and_t2_scale_the_2xx_schedule():
    """§17.1.1.1: "changing T1 adjusts their values" — the 2xx interval starts at T1, caps at T2, gives up at
    64*T1."""
    uas = AcceptedInvite(answer(make_invite(), 200), TimerConfig(t1=0.25, t2=1.0), now=0.0)
    log = step(uas, 100.0)
    assert times(log, SendMessage) == [0.25, 0.75, 1.75, 2.75, 3.75, 4.75, 5.75, 6.75, 7.75, 8.75, 9.75, 10.75,
                                       11.75, 12.75, 13.75, 14.75, 15.75]  # fmt: skip
    assert times(log, AckTimedOut) == [16.0]
    with pytest.raises(UaError):
        AcceptedInvite(answer(make_invite(), 180))


# -- UAC: ACK for 2xx (§13.2.2.4) ---------------------------------------------------------------------------------


def test_s13_2_2_4_uac_acks_a_2xx_with_a_new_branch_and_resends_it_for_retransmissions():
    """§13.2.2.4: "The UAC core MUST generate an ACK request for each 2xx received from the transaction layer." "the
    request is passed to the transport layer directly for transmission, rather than a client transaction" and "The
    ACK MUST be passed to the client transport every time a retransmission of the 2xx final response that triggered
    the ACK arrives." RFC-NOTES §4: the ACK for a 2xx has "A new branch"."""
    invite = make_invite()
    uac = InviteClient(invite, now=0.0, rng=Random(1))
    ok = answer(invite, 200)
    dialog = uac.receive_response(ok, 1.0)
    assert dialog is not None and dialog.state is DialogState.CONFIRMED
    (first,) = uac.events()
    assert isinstance(first, SendMessage) and not first.retransmission
    ack = first.message
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.transaction_branch != invite.transaction_branch
    assert ack.transaction_branch is not None and ack.transaction_branch.startswith("z9hG4bK")
    assert ack.via[0].host == "pc33.atlanta.example.com"
    assert ack.cseq == (1, "ACK") and ack.uri_text == "sip:bob@192.0.2.4"
    assert ack.to is not None and ack.to.tag == "bob-tag"
    uac.receive_response(ok, 1.5)
    assert uac.events() == [SendMessage(ack, True)]


def test_s13_2_2_4_each_forked_2xx_gets_its_own_ack_and_late_early_dialogs_end_after_64t1():
    """§13.2.2.4: "each represents a distinct dialog" and "The UAC core considers the INVITE transaction completed
    64*T1 seconds after the reception of the first 2xx response. At this point all the early dialogs that have not
    transitioned to established dialogs are terminated." """
    invite = make_invite()
    uac = InviteClient(invite, now=0.0)
    early = uac.receive_response(answer(invite, 180, "fork-c"), 0.5)
    a = uac.receive_response(answer(invite, 200, "fork-a"), 1.0)
    b = uac.receive_response(answer(invite, 200, "fork-b"), 2.0)
    acks = [e.message for e in uac.events() if isinstance(e, SendMessage)]
    assert [m.to.tag for m in acks] == ["fork-a", "fork-b"]  # type: ignore[union-attr]
    assert acks[0].transaction_branch != acks[1].transaction_branch
    assert a is not None and b is not None and early is not None and early.early
    assert uac.next_timer() == 33.0
    uac.handle_timer(33.0)
    assert early.terminated and a.confirmed and b.confirmed


# -- UAC: CANCEL (§9.1) -------------------------------------------------------------------------------------------


def test_s9_1_cancel_waits_for_a_provisional_response():
    """§9.1: "If no provisional response has been received, the CANCEL request MUST NOT be sent; rather, the client
    MUST wait for the arrival of a provisional response before sending the request." and "The Request-URI, Call-ID,
    To, the numeric part of CSeq, and From header fields in the CANCEL request MUST be identical to those in the
    request being cancelled, including tags." """
    invite = make_invite()
    uac = InviteClient(invite, now=0.0)
    assert uac.cancel(0.1) is None and uac.cancel_pending
    assert uac.events() == []
    uac.receive_response(build_response(invite, 100), 0.4)
    (created,) = uac.events()
    assert isinstance(created, RequestCreated)
    cancel = created.request
    assert cancel.method == "CANCEL" and cancel.uri_text == invite.uri_text
    assert cancel.cseq == (1, "CANCEL") and cancel.header("To") == invite.header("To")
    assert [v.raw for v in cancel.via] == [invite.via[0].raw]
    assert uac.cancel(0.5) is cancel  # once only


def test_s9_1_no_cancel_after_a_final_response():
    """§9.1: "If the original request has generated a final response, the CANCEL SHOULD NOT be sent, as it is an
    effective no-op, since CANCEL has no effect on requests that have already generated a final response." """
    invite = make_invite()
    uac = InviteClient(invite, now=0.0)
    uac.receive_response(answer(invite, 180), 0.2)
    uac.receive_response(answer(invite, 486), 0.3)
    uac.events()
    assert uac.cancel(0.4) is None and uac.events() == []


def test_s9_1_without_final_response_64t1_after_cancel_the_invite_counts_as_cancelled():
    """§9.1: "a UAC canceling a request cannot rely on receiving a 487 (Request Terminated) response for the original
    request, as an RFC 2543-compliant UAS will not generate such a response. If there is no final response for the
    original request in 64*T1 seconds (T1 is defined in Section 17.1.1.1), the client SHOULD then consider the
    original transaction cancelled" (pjproject #503/#796)."""
    invite = make_invite()
    uac = InviteClient(invite, now=0.0)
    early = uac.receive_response(answer(invite, 180), 1.0)
    cancel = uac.cancel(2.0)
    assert cancel is not None and uac.next_timer() == 34.0
    uac.events()
    uac.handle_timer(33.9)
    assert uac.events() == []
    uac.handle_timer(34.0)
    assert uac.events() == [CancelTimedOut(cancel)]
    assert uac.cancelled and early is not None and early.terminated


def test_s9_1_a_final_response_after_cancel_stops_the_fallback():
    """§9.1: "both the transaction corresponding to the original request and the CANCEL transaction will complete
    independently" — a 487 (or any final) ends the wait."""
    invite = make_invite()
    uac = InviteClient(invite, TimerConfig(t1=1.0), now=0.0)
    uac.receive_response(answer(invite, 183), 1.0)
    uac.cancel(2.0)
    uac.receive_response(answer(invite, 487), 2.5)
    assert uac.next_timer() is None and not uac.cancelled


# -- UAS: CANCEL (§9.2) -------------------------------------------------------------------------------------------


def test_s9_2_pending_invite_gets_487_and_the_cancel_200_with_the_same_to_tag():
    """§9.2: "If the original request was an INVITE, the UAS SHOULD immediately respond to the INVITE with a 487
    (Request Terminated)." "the UAS answers the CANCEL request itself with a 200 (OK) response" and "the To tag of the
    response to the CANCEL and the To tag in the response to the original request SHOULD be the same." """
    from conformance.sip import build_cancel

    table = TransactionTable(auto_trying=False)
    invite = make_invite()
    inv_tx = table.receive(invite, 0.0)
    assert isinstance(inv_tx, ServerInviteTransaction)
    inv_tx.send_response(answer(invite, 180, "uas-tag"), 0.1)
    cancel = build_cancel(invite)
    cancel_tx = table.receive(cancel, 1.0)
    result = answer_cancel(cancel, table.cancel_target(cancel))
    assert result.invite_response is not None and result.invite_response.status == 487
    assert result.cancel_response.status == 200
    assert result.invite_response.to.tag == result.cancel_response.to.tag == "uas-tag"  # type: ignore[union-attr]
    inv_tx.send_response(result.invite_response, 1.0)
    assert cancel_tx is not None
    cancel_tx.send_response(result.cancel_response, 1.0)  # type: ignore[union-attr]
    assert inv_tx.state is TransactionState.COMPLETED


def test_s9_2_unmatched_cancel_gets_481():
    """§9.2: "If the UAS did not find a matching transaction for the CANCEL according to the procedure above, it
    SHOULD respond to the CANCEL with a 481 (Call Leg/Transaction Does Not Exist)." """
    from conformance.sip import build_cancel

    cancel = build_cancel(make_invite())
    result = answer_cancel(cancel, TransactionTable().cancel_target(cancel))
    assert result.cancel_response.status == 481 and result.invite_response is None
    with pytest.raises(UaError):
        answer_cancel(make_invite(), None)


def test_s9_2_cancel_after_the_final_response_has_no_effect():
    """§9.2: "If it has, the CANCEL request has no effect on the processing of the original request, no effect on any
    session state, and no effect on the responses generated for the original request." (It is still answered:
    "as long as the CANCEL matched an existing transaction, the UAS answers the CANCEL request itself with a 200".)"""
    from conformance.sip import build_cancel

    invite = make_invite()
    tx = ServerInviteTransaction(invite, auto_trying=False)
    tx.send_response(answer(invite, 200, "uas-tag"), 0.0)
    result = answer_cancel(build_cancel(invite), tx)
    assert result.invite_response is None
    assert result.cancel_response.status == 200 and result.cancel_response.to.tag == "uas-tag"  # type: ignore[union-attr]


# -- UAS: reliable provisionals (RFC 3262 §3) ---------------------------------------------------------------------


def test_rfc3262_s3_first_rseq_in_range_and_each_next_one_greater_by_exactly_one():
    """RFC 3262 §3: "The value of the header field for the first reliable provisional response in a transaction MUST
    be between 1 and 2**31 - 1." "Each subsequent reliable provisional response for the same request MUST have an
    RSeq value greater than the previous by exactly one." It "MUST contain a Require header field containing the
    option tag 100rel, and MUST include an RSeq header field"."""
    invite = make_invite(supported="100rel")
    uas = ReliableProvisionals(invite, now=0.0, rng=Random(7))
    first = uas.send(answer(invite, 180), 0.0)
    assert first.rseq is not None and 1 <= first.rseq <= 2**31 - 1
    assert "100rel" in first.require
    prack = build_request(
        "PRACK", "sip:bob@192.0.2.4", from_=invite.header("From") or "", to=first.header("To") or "",
        via="SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKpr1", call_id=invite.call_id, cseq=2,
        headers=[("RAck", f"{first.rseq} 1 INVITE")],
    )  # fmt: skip
    assert uas.receive_prack(prack, 0.3).status == 200
    second = uas.send(answer(invite, 183), 1.0)
    assert second.rseq == first.rseq + 1
    for seed in range(20):
        rseq = ReliableProvisionals(invite, rng=Random(seed)).send(answer(invite, 180), 0.0).rseq
        assert rseq is not None and 1 <= rseq <= 2**31 - 1


def _prack(invite: Request, provisional: Response, rack: str | None = None) -> Request:
    return build_request(
        "PRACK", "sip:bob@192.0.2.4", from_=invite.header("From") or "", to=provisional.header("To") or "",
        via="SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKprack", call_id=invite.call_id, cseq=2,
        headers=[("RAck", rack or f"{provisional.rseq} 1 INVITE")],
    )  # fmt: skip


def test_rfc3262_s3_reliable_1xx_retransmitted_t1_doubling_until_prack():
    """RFC 3262 §3: "The reliable provisional response is passed to the transaction layer periodically with an
    interval that starts at T1 seconds and doubles for each retransmission" and "Retransmissions of the reliable
    provisional response cease when a matching PRACK is received by the UA core." (No T2 cap in the text.)"""
    invite = make_invite(supported="100rel")
    uas = ReliableProvisionals(invite, now=0.0, first_rseq=1)
    ringing = uas.send(answer(invite, 180), 0.0)
    log = step(uas, 20.0)
    assert log[0] == (-1.0, ResponseCreated(ringing))
    assert times(log, SendMessage) == [0.5, 1.5, 3.5, 7.5, 15.5]
    ok = uas.receive_prack(_prack(invite, ringing), 20.0)
    assert ok.status == 200 and ok.cseq == (2, "PRACK")
    assert uas.pending is None and uas.acknowledged == [ringing] and uas.next_timer() is None


def test_rfc3262_s3_no_prack_for_64t1_rejects_the_invite_with_5xx():
    """RFC 3262 §3: "If a reliable provisional response is retransmitted for 64*T1 seconds without reception of a
    corresponding PRACK, the UAS SHOULD reject the original request with a 5xx response." """
    invite = make_invite(supported="100rel")
    uas = ReliableProvisionals(invite, now=0.0, first_rseq=5)
    ringing = uas.send(answer(invite, 180, "uas-tag"), 0.0)
    log = step(uas, 100.0)
    assert times(log, SendMessage) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    tail = [(t, e) for t, e in log if t >= 32.0]
    assert tail[0] == (32.0, PrackTimedOut(ringing))
    rejection = tail[1][1]
    assert isinstance(rejection, ResponseCreated) and rejection.response.status == 500
    assert rejection.response.to is not None and rejection.response.to.tag == "uas-tag"
    assert uas.receive_prack(_prack(invite, ringing), 40.0).status == 481


def test_rfc3262_s3_a_second_reliable_1xx_waits_for_the_first_prack():
    """RFC 3262 §3: "The UAS MUST NOT send a second reliable provisional response until the first is
    acknowledged." """
    invite = make_invite(supported="100rel")
    uas = ReliableProvisionals(invite, now=0.0, first_rseq=100)
    ringing = uas.send(answer(invite, 180), 0.0)
    progress = uas.send(answer(invite, 183), 0.1)
    assert [type(e) for e in uas.events()] == [ResponseCreated]
    assert list(uas.queue) == [progress] and progress.rseq == 101
    assert uas.receive_prack(_prack(invite, ringing), 0.4).status == 200
    assert uas.events() == [ResponseCreated(progress)]
    assert uas.next_timer() == pytest.approx(0.9)


def test_rfc3262_s3_prack_matching_no_unacknowledged_1xx_gets_481():
    """RFC 3262 §3: "If a PRACK request is received by the UA core that does not match any unacknowledged reliable
    provisional response, the UAS MUST respond to the PRACK with a 481 response." A match needs the same dialog and
    RAck's "method, CSeq-num, and response-num" equal to the response's CSeq method, CSeq number and RSeq."""
    invite = make_invite(supported="100rel")
    uas = ReliableProvisionals(invite, now=0.0, first_rseq=9)
    ringing = uas.send(answer(invite, 180), 0.0)
    assert uas.receive_prack(_prack(invite, ringing, "8 1 INVITE"), 0.1).status == 481
    assert uas.receive_prack(_prack(invite, ringing, "9 2 INVITE"), 0.1).status == 481
    assert uas.receive_prack(_prack(invite, ringing, "9 1 BYE"), 0.1).status == 481
    other_dialog = ringing.with_header("To", "<sip:bob@biloxi.example.com>;tag=fork")
    assert isinstance(other_dialog, Response)
    assert uas.receive_prack(_prack(invite, other_dialog, "9 1 INVITE"), 0.1).status == 481
    assert uas.pending is ringing
    assert uas.receive_prack(_prack(invite, ringing, "9 1 INVITE"), 0.2).status == 200


def test_rfc3262_s3_only_offered_non_100_provisionals_are_reliable():
    """RFC 3262 §3: the UAS sends reliably only when the INVITE carried 100rel in Supported or Require; a 100
    (Trying) is hop-by-hop and never reliable; "The UAS MAY send a final response ... unless the final response is
    2xx and any of the unacknowledged reliable provisional responses contained a session description." """
    with pytest.raises(UaError):
        ReliableProvisionals(make_invite())
    invite = make_invite(supported="100rel, timer")
    uas = ReliableProvisionals(invite, first_rseq=1)
    with pytest.raises(UaError):
        uas.send(build_response(invite, 100), 0.0)
    with pytest.raises(UaError):
        uas.send(answer(invite, 200), 0.0)
    uas.send(answer(invite, 183, body=b"v=0\r\n"), 0.0)
    assert uas.may_send_final(486) and not uas.may_send_final(200)
    uas.final_sent(1.0)
    assert uas.next_timer() is None and uas.may_send_final(200)
    with pytest.raises(UaError):
        uas.send(answer(invite, 180), 2.0)
    with pytest.raises(UaError):
        ReliableProvisionals(invite, first_rseq=2**31)


# -- UAC: PRACK (RFC 3262 §4) -------------------------------------------------------------------------------------


def test_rfc3262_s4_uac_pracks_an_rseq_only_when_it_is_exactly_last_plus_one():
    """RFC 3262 §4: "if the UAC receives another reliable provisional response to the same request, and its RSeq
    value is not one higher than the value of the sequence number, that response MUST NOT be acknowledged with a
    PRACK, and MUST NOT be processed further by the UAC." and "The UAC SHOULD NOT retransmit the PRACK request when it
    receives a retransmission of the provisional response being acknowledged"."""
    invite = make_invite(supported="100rel")
    uac = InviteClient(invite, now=0.0)
    first = reliable(invite, 180, 776656)
    uac.receive_response(first, 0.5)
    (created,) = uac.events()
    assert isinstance(created, RequestCreated)
    prack = created.request
    assert prack.method == "PRACK" and prack.rack == (776656, 1, "INVITE")
    # RFC 3262 §7.2 / RFC 3261 §12.2.1.1: an in-dialog request with the next CSeq, to the remote target.
    assert prack.cseq == (2, "PRACK") and prack.uri_text == "sip:bob@192.0.2.4"
    assert prack.to is not None and prack.to.tag == "bob-tag"
    assert prack.transaction_branch != invite.transaction_branch

    uac.receive_response(first, 1.0)  # retransmission
    gap = reliable(invite, 183, 776658)
    uac.receive_response(gap, 1.1)
    assert uac.events() == [ProvisionalIgnored(first, "retransmission"), ProvisionalIgnored(gap, "out of order")]
    nxt = reliable(invite, 183, 776657)
    uac.receive_response(nxt, 1.2)
    (created,) = uac.events()
    assert isinstance(created, RequestCreated) and created.request.rack == (776657, 1, "INVITE")
    assert created.request.cseq == (3, "PRACK")


def test_rfc3262_s4_100_trying_is_never_pracked_and_each_fork_counts_its_own_rseq():
    """RFC 3262 §4: "If the response is a 100 (Trying) (as opposed to 101 to 199), this option tag MUST be ignored,
    and the procedures below MUST NOT be used." RSeq numbering is per fork (errata 4600)."""
    invite = make_invite(supported="100rel")
    uac = InviteClient(invite, now=0.0)
    trying = build_response(invite, 100, headers=[("Require", "100rel"), ("RSeq", "1")])
    uac.receive_response(trying, 0.1)
    assert uac.events() == []
    uac.receive_response(reliable(invite, 180, 10, "fork-a"), 0.2)
    uac.receive_response(reliable(invite, 180, 500, "fork-b"), 0.3)
    uac.receive_response(reliable(invite, 183, 11, "fork-a"), 0.4)
    racks = [e.request.rack for e in uac.events() if isinstance(e, RequestCreated)]
    assert racks == [(10, 1, "INVITE"), (500, 1, "INVITE"), (11, 1, "INVITE")]
    assert uac.last_rseq == {"fork-a": 11, "fork-b": 500}


# -- UAC: registration (§10.2) ------------------------------------------------------------------------------------


def registrar_client(**kwargs) -> RegistrationClient:
    defaults = dict(
        registrar="sip:registrar.biloxi.example.com",
        aor="sip:bob@biloxi.example.com",
        contact="sip:bob@192.0.2.4",
        via="SIP/2.0/UDP 192.0.2.4:5060;rport",
        expires=600,
        now=0.0,
        call_id="843817637684230@998sdasdh09",
        from_tag="456248",
    )
    defaults.update(kwargs)
    return RegistrationClient(**defaults)  # type: ignore[arg-type]


def test_s10_2_register_carries_expires_contact_and_aor():
    """§10.2: "Request-URI: The Request-URI names the domain of the location service for which the registration is
    meant", "To: The To header field contains the address of record", "Call-ID: All registrations from a UAC SHOULD
    use the same Call-ID header field value", "CSeq: ... A UA MUST increment the CSeq value by one for each REGISTER
    request with the same Call-ID." §10.2.1.1: an Expires header field suggests the expiration interval."""
    client = registrar_client()
    first = client.register(0.0)
    assert first is not None and client.events() == [RequestCreated(first)]
    assert first.uri_text == "sip:registrar.biloxi.example.com"
    assert first.to is not None and first.to.uri_text == "sip:bob@biloxi.example.com" and first.to.tag is None
    assert first.from_ is not None and first.from_.tag == "456248"
    assert [c.uri_text for c in first.contact] == ["sip:bob@192.0.2.4"]
    assert first.expires == 600 and first.cseq == (1, "REGISTER") and not first.defects
    client.receive_response(answer(first, 200), 0.1)
    second = client.register(1.0)
    assert second is not None and second.call_id == first.call_id and second.cseq == (2, "REGISTER")
    assert second.transaction_branch != first.transaction_branch
    with pytest.raises(UaError):
        registrar_client(registrar="sip:bob@biloxi.example.com")


def test_s10_2_4_refresh_before_the_granted_expiry():
    """§10.2.4: "The UA compares each contact address to see if it created the contact address ... If so, it updates
    the expiration time interval according to the expires parameter or, if absent, the Expires field value. The UA
    then issues a REGISTER request for each of its bindings before the expiration interval has elapsed." """
    client = registrar_client()
    first = client.register(10.0)
    assert first is not None
    ok = build_response(
        first, 200, headers=[("Contact", "<sip:bob@192.0.2.4>;expires=120"), ("Contact", "<sip:bob@other>;expires=9")]
    )
    client.receive_response(ok, 10.2)
    events = client.events()
    assert events[-1] == Registered(120, ("<sip:bob@192.0.2.4>;expires=120", "<sip:bob@other>;expires=9"))
    assert client.state is RegistrationState.REGISTERED and client.expires_at == 130.0
    assert client.next_timer() == 125.0  # 5 s before it lapses, counted from when the REGISTER left
    client.handle_timer(125.0)
    (refresh,) = client.events()
    assert isinstance(refresh, RequestCreated) and refresh.request.cseq == (2, "REGISTER")
    client.receive_response(build_response(refresh.request, 200, headers=[("Expires", "8")]), 125.1)
    assert client.granted == 8 and client.next_timer() == 129.0  # half of a short expiry


def test_s10_2_2_unregister_with_expires_zero_or_contact_star():
    """§10.2.2: "A UA requests the immediate removal of a binding by specifying an expiration interval of "0" for
    that contact address in a REGISTER request." "The REGISTER-specific Contact header field value of "*" applies to
    all registrations, but it MUST NOT be used unless the Expires header field is present with a value of "0"." """
    client = registrar_client()
    reg = client.register(0.0)
    assert reg is not None
    client.receive_response(answer(reg, 200), 0.1)
    bye = client.unregister(5.0)
    assert bye is not None and bye.expires == 0 and [c.uri_text for c in bye.contact] == ["sip:bob@192.0.2.4"]
    assert client.next_timer() is None
    ok = build_response(bye, 200)
    client.events()
    client.receive_response(ok, 5.1)
    assert client.events() == [Unregistered(ok)] and client.state is RegistrationState.UNREGISTERED
    star = client.unregister(6.0, all_bindings=True)
    assert star is not None and star.contact_star and star.expires == 0 and star.cseq == (3, "REGISTER")


def test_s10_2_8_423_is_retried_with_min_expires():
    """§10.2.8: "If a UA receives a 423 (Interval Too Brief) response, it MAY retry the registration after making
    the expiration interval of all contact addresses in the REGISTER request equal to or greater than the expiration
    interval within the Min-Expires header field of the 423 (Interval Too Brief) response." """
    client = registrar_client(expires=60)
    first = client.register(0.0)
    assert first is not None
    client.events()
    client.receive_response(build_response(first, 423, headers=[("Min-Expires", "3600")]), 0.1)
    (retry,) = client.events()
    assert isinstance(retry, RequestCreated) and retry.request.expires == 3600 and retry.request.cseq == (2, "REGISTER")
    client.receive_response(build_response(retry.request, 423, headers=[("Min-Expires", "7200")]), 0.2)
    assert client.state is RegistrationState.FAILED
    assert [type(e) for e in client.events()] == [RegistrationFailed]


def test_s10_2_one_register_in_flight_at_a_time_and_timeouts_fail():
    """§10.2: "UAs MUST NOT send a new registration (that is, containing new Contact header field values, as opposed
    to a retransmission) until they have received a final response from the registrar for the previous one or the
    previous REGISTER request has timed out." §10.2.7: "If the transaction layer returns a timeout error because the
    REGISTER yielded no response, the UAC SHOULD NOT immediately re-attempt a registration"."""
    client = registrar_client()
    first = client.register(0.0)
    assert client.unregister(0.5) is None  # waits for the final response to the first
    assert first is not None and [type(e) for e in client.events()] == [RequestCreated]
    client.receive_response(build_response(first, 100), 0.6)
    assert client.events() == []
    client.receive_response(answer(first, 200), 0.7)
    events = client.events()
    assert isinstance(events[0], Registered) and isinstance(events[1], RequestCreated)
    assert events[1].request.expires == 0
    client.transaction_failed(32.7)
    assert client.events() == [RegistrationFailed(None, None)] and client.state is RegistrationState.FAILED
    assert client.next_timer() is None


def test_fresh_via_replaces_or_adds_the_branch():
    """§8.1.1.7: the branch "MUST be unique across space and time for all requests sent by the UA" (except CANCEL and
    ACK for non-2xx)."""
    a = fresh_via(VIA, Random(1))
    b = fresh_via(VIA, Random(2))
    assert a != b and a.startswith("SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK") and a.endswith(";rport")
    assert fresh_via("SIP/2.0/TCP host").startswith("SIP/2.0/TCP host;branch=z9hG4bK")


# -- one call, end to end, in virtual time ------------------------------------------------------------------------


def test_s13_a_call_over_udp_between_two_tables_in_virtual_time():
    """§13.3.1.4 and §13.2.2.4 together: the UAS retransmits the 2xx until the ACK that the UAC core sends "every
    time a retransmission of the 2xx final response that triggered the ACK arrives"; the INVITE server transaction's
    100 Trying quenches Timer A (§17.2.1 "This provisional response is needed to quench request retransmissions
    rapidly"). Messages cross as bytes through the parser, with 30 ms one-way delay and the first ACK lost."""
    alice, bob = TransactionTable(), TransactionTable()
    invite = make_invite()
    uac_core = InviteClient(invite, now=0.0)
    wire: list[tuple[float, str, bytes]] = []  # (arrival, to whom, bytes)
    delay = 0.03
    lost_first_ack = [True]
    uas_core: AcceptedInvite | None = None
    log: list[str] = []
    sent: list[str] = []

    def transmit(now: float, to: str, msg: Request | Response) -> None:
        sent.append(f"{now:.2f} {msg.start_line.split(' SIP/')[0] if isinstance(msg, Request) else msg.status}")
        if isinstance(msg, Request) and msg.method == "ACK" and lost_first_ack[0]:
            lost_first_ack[0] = False
            log.append(f"{now:.2f} lost ACK")
            return
        wire.append((now + delay, to, bytes(msg)))

    def pump(now: float) -> None:
        nonlocal uas_core
        for _tx, event in alice.events():
            if isinstance(event, SendMessage):
                transmit(now, "bob", event.message)
            elif isinstance(event, ResponseReceived):
                uac_core.receive_response(event.response, now)
        for event in uac_core.events():
            if isinstance(event, SendMessage):
                transmit(now, "bob", event.message)
        for _tx, event in bob.events():
            if isinstance(event, SendMessage):
                transmit(now, "alice", event.message)
            elif isinstance(event, RequestReceived) and event.request.method == "INVITE":
                log.append(f"{now:.2f} bob rings")
            elif isinstance(event, StrayAck) and uas_core is not None:
                assert uas_core.receive_ack(event.ack, now)
                log.append(f"{now:.2f} bob got ACK")
        if uas_core is not None:
            for event in uas_core.events():
                if isinstance(event, SendMessage):
                    transmit(now, "alice", event.message)

    alice.send_request(invite, 0.0)
    pump(0.0)
    bob_invite_tx = None
    now = 0.0
    while now < 40.0:
        candidates = [t for t in (alice.next_timer(), bob.next_timer(), uac_core.next_timer()) if t is not None]
        if uas_core is not None and uas_core.next_timer() is not None:
            candidates.append(uas_core.next_timer())  # type: ignore[arg-type]
        candidates += [arrival for arrival, _, _ in wire]
        if bob_invite_tx is not None and uas_core is None:
            candidates.append(1.0)  # bob answers at t=1
        if not candidates:
            break
        now = min(candidates)
        for item in [w for w in wire if w[0] <= now]:
            wire.remove(item)
            msg = parse(item[2]).message
            assert msg is not None
            (alice if item[1] == "alice" else bob).receive(msg, now)
        alice.handle_timer(now)
        bob.handle_timer(now)
        uac_core.handle_timer(now)
        if uas_core is not None:
            uas_core.handle_timer(now)
        if bob_invite_tx is None:
            bob_invite_tx = next((tx for tx in bob if isinstance(tx, ServerInviteTransaction)), None)
        if bob_invite_tx is not None and uas_core is None and now >= 1.0:
            ok = answer(bob_invite_tx.request, 200, "bob-tag")
            bob_invite_tx.send_response(ok, now)
            uas_core = AcceptedInvite(ok, now=now)
        pump(now)

    assert log == ["0.03 bob rings", "1.03 lost ACK", "1.56 bob got ACK"]
    assert sent == [
        "0.00 INVITE sip:bob@biloxi.example.com",  # 100 Trying arrives at 0.26, before Timer A (0.5)
        "0.23 100",
        "1.00 200",
        "1.03 ACK sip:bob@192.0.2.4",  # lost
        "1.50 200",  # §13.3.1.4 retransmission after T1
        "1.53 ACK sip:bob@192.0.2.4",  # the same ACK again
    ]
    (dialog,) = list(uac_core.dialogs)
    assert dialog.confirmed and uas_core is not None and uas_core.acked
    assert len(alice) == 0 and len(bob) == 0  # Timers M and L have run out
