"""Transaction machines (RFC 3261 §17, RFC 6026), timers (Appendix A) and matching (§17.1.3, §17.2.3, §9.2).

Everything runs in virtual time: the tests pass ``now`` and step to ``next_timer()``; no socket, no sleep.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.sip import Request, Response, build_cancel, build_request, build_response, name_addr, via_value
from conformance.sip.state import (
    TIMER_TABLE,
    TRANSACTION_MACHINES,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Input,
    MessageAbsorbed,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    StrayAck,
    StrayResponse,
    Timer,
    TimerConfig,
    TimerWheel,
    TransactionError,
    TransactionState,
    TransactionTable,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    cancel_target_key,
    client_key,
    server_key,
    state_machines_markdown,
)

S = TransactionState
ROOT = Path(__file__).resolve().parent.parent


# -- helpers ------------------------------------------------------------------------------------------------------


def make_request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bKtx1",
    host: str = "client.example.com",
    port: int | None = 5060,
    uri: str = "sip:bob@biloxi.example.com",
    to_tag: str | None = None,
    from_tag: str = "alice1",
    cseq: int = 1,
    call_id: str = "call-1@client.example.com",
) -> Request:
    via = f"SIP/2.0/UDP {host}" + (f":{port}" if port else "") + (f";branch={branch}" if branch else "")
    return build_request(
        method,
        uri,
        from_=name_addr("sip:alice@atlanta.example.com", tag=from_tag),
        to=name_addr("sip:bob@biloxi.example.com", tag=to_tag),
        via=via,
        call_id=call_id,
        cseq=cseq,
        contact="<sip:alice@client.example.com>" if method == "INVITE" else None,
    )


def respond(request: Request, status: int, to_tag: str | None = "bob1") -> Response:
    return build_response(request, status, to_tag=to_tag if status != 100 else None)


def sends(events: list) -> list[SendMessage]:
    return [e for e in events if isinstance(e, SendMessage)]


def run(tx, until: float) -> list[tuple[float, object]]:
    """Step virtual time from deadline to deadline up to ``until``; (time, event) for each event."""
    log = [(tx.created_at, e) for e in tx.events()]
    while (deadline := tx.next_timer()) is not None and deadline <= until:
        tx.handle_timer(deadline)
        log += [(deadline, e) for e in tx.events()]
    return log


def send_times(log: list[tuple[float, object]]) -> list[float]:
    return [t for t, e in log if isinstance(e, SendMessage)]


# -- timers -------------------------------------------------------------------------------------------------------


def test_appendix_a_timer_values_with_default_t1_t2_t4():
    """RFC 3261 Table 4: "T1 500ms default", "T2 4s", "T4 5s", "Timer B 64*T1", "Timer D > 32s for UDP, 0s for
    TCP/SCTP", "Timer I T4 for UDP, 0s for TCP/SCTP", "Timer J 64*T1 for UDP, 0s for TCP/SCTP", "Timer K T4 for
    UDP, 0s for TCP/SCTP"; RFC 6026 §8.11: Timer L and Timer M "64*T1"."""
    c = TimerConfig()
    assert (c.t1, c.t2, c.t4) == (0.5, 4.0, 5.0)
    udp = {t: c.duration(t, reliable=False) for t in Timer}
    tcp = {t: c.duration(t, reliable=True) for t in Timer}
    assert udp == {
        Timer.A: 0.5, Timer.B: 32.0, Timer.D: 32.0, Timer.E: 0.5, Timer.F: 32.0, Timer.G: 0.5, Timer.H: 32.0,
        Timer.I: 5.0, Timer.J: 32.0, Timer.K: 5.0, Timer.L: 32.0, Timer.M: 32.0, Timer.TRYING: 0.2,
    }  # fmt: skip
    assert tcp == {
        Timer.A: None, Timer.B: 32.0, Timer.D: 0.0, Timer.E: None, Timer.F: 32.0, Timer.G: None, Timer.H: 32.0,
        Timer.I: 0.0, Timer.J: 0.0, Timer.K: 0.0, Timer.L: 32.0, Timer.M: 32.0, Timer.TRYING: 0.2,
    }  # fmt: skip
    assert (c.a(), c.b(), c.d(True), c.j(), c.k(True), c.l(), c.m()) == (0.5, 32.0, 0.0, 32.0, 0.0, 32.0, 32.0)
    assert set(TIMER_TABLE) == set(Timer)


def test_s17_1_1_1_changing_t1_scales_every_timer_but_d():
    """§17.1.1.1: "Nearly all of the transaction timers described here scale with T1, and changing T1 adjusts their
    values." §17.1.1.2 (Timer D): "the client transaction does not know the value of T1 in use by the server
    transaction, so an absolute minimum of 32s is used instead of basing Timer D on T1." """
    c = TimerConfig(t1=0.25, t2=2.0, t4=3.0)
    assert [c.duration(t, False) for t in (Timer.A, Timer.B, Timer.F, Timer.H, Timer.J, Timer.L, Timer.M)] == [
        0.25, 16.0, 16.0, 16.0, 16.0, 16.0, 16.0,
    ]  # fmt: skip
    assert (c.i(), c.k(), c.d()) == (3.0, 3.0, 32.0)
    assert c.transaction_timeout == 16.0
    with pytest.raises(ValueError):
        TimerConfig(t1=0)


def test_timer_wheel_orders_replaces_and_cancels_deadlines():
    """The deadline helper behind ``next_timer()`` / ``handle_timer(now)`` (aioquic's get_timer/handle_timer)."""
    w = TimerWheel()
    assert w.next_timer() is None
    w.start("B", 32.0)
    w.start("A", 0.5)
    w.start("E", 0.5)
    assert w.next_timer() == 0.5
    w.start("A", 1.5)  # re-arming replaces
    assert w.deadline("A") == 1.5 and len(w) == 3
    w.cancel("E")
    assert w.next_timer() == 1.5 and "E" not in w
    assert w.pop_due(1.0) == []
    assert w.pop_due(40.0) == [("A", 1.5), ("B", 32.0)]
    assert w.next_timer() is None and len(w) == 0


# -- INVITE client transaction ------------------------------------------------------------------------------------


def test_s17_1_1_2_timer_a_retransmits_invite_doubling_until_timer_b():
    """§17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request by passing it to the
    transport layer, and MUST reset the timer with a value of 2*T1." "If the client transaction is still in the
    "Calling" state when timer B fires, the client transaction SHOULD inform the TU that a timeout has occurred." """
    invite = make_request()
    tx = ClientInviteTransaction(invite, reliable=False, config=TimerConfig(), now=0.0)
    assert tx.state is S.INITIAL and tx.next_timer() is None
    tx.send_request(0.0)
    assert tx.state is S.CALLING
    log = run(tx, 100.0)
    assert send_times(log) == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(e.message is invite for _, e in log if isinstance(e, SendMessage))
    assert [e.retransmission for _, e in log if isinstance(e, SendMessage)] == [False] + [True] * 6
    assert [(t, e) for t, e in log if not isinstance(e, SendMessage)] == [
        (32.0, TransactionTimedOut(Timer.B)),
        (32.0, TransactionTerminated()),
    ]
    assert tx.state is S.TERMINATED and tx.next_timer() is None


def test_s17_1_1_2_no_timer_a_on_a_reliable_transport():
    """§17.1.1.2: "If a reliable transport is being used, the client transaction SHOULD NOT start timer A" and "For
    any transport, the client transaction MUST start timer B with a value of 64*T1 seconds"."""
    tx = ClientInviteTransaction(make_request(), reliable=True, now=10.0)
    tx.send_request(10.0)
    assert tx.timers() == [("B", 42.0)]
    log = run(tx, 100.0)
    assert send_times(log) == [10.0]
    assert (42.0, TransactionTimedOut(Timer.B)) in log


def test_s17_1_1_2_provisional_stops_retransmissions_and_goes_to_tu():
    """§17.1.1.2: "If the client transaction receives a provisional response while in the "Calling" state, it
    transitions to the "Proceeding" state. In the "Proceeding" state, the client transaction SHOULD NOT retransmit
    the request any longer. Furthermore, the provisional response MUST be passed to the TU." """
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    tx.send_request(0.0)
    tx.handle_timer(0.5)
    tx.events()
    ringing = respond(invite, 180)
    tx.receive_response(ringing, 1.0)
    assert tx.state is S.PROCEEDING
    assert tx.events() == [ResponseReceived(ringing)]
    assert tx.next_timer() is None  # Timer A stopped; Timer B only acts in Calling
    tx.receive_response(respond(invite, 183), 2.0)
    assert [type(e) for e in tx.events()] == [ResponseReceived]


def test_s17_1_1_3_non2xx_final_is_acked_by_the_transaction():
    """§17.1.1.2: "reception of a response with status code from 300-699 MUST cause the client transaction to
    transition to "Completed". The client transaction MUST pass the received response up to the TU, and the client
    transaction MUST generate an ACK request" — §17.1.1.3: "The To header field in the ACK MUST equal the To header
    field in the response being acknowledged ... The ACK MUST contain a single Via header field, and this MUST be
    equal to the top Via header field of the original request." """
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    tx.send_request(0.0)
    tx.events()
    busy = respond(invite, 486)
    tx.receive_response(busy, 0.3)
    events = tx.events()
    assert tx.state is S.COMPLETED
    assert events[0] == ResponseReceived(busy)
    (ack_send,) = sends(events)
    ack = ack_send.message
    assert isinstance(ack, Request) and ack is tx.ack
    assert ack.method == "ACK" and ack.uri_text == invite.uri_text
    assert [v.raw for v in ack.via] == [invite.via[0].raw]
    assert ack.header("To") == busy.header("To") and ack.to is not None and ack.to.tag == "bob1"
    assert ack.cseq is not None and (ack.cseq.number, ack.cseq.method) == (1, "ACK")
    assert ack.call_id == invite.call_id and ack.header("From") == invite.header("From")
    assert tx.timers() == [("D", 32.3)]


def test_s17_1_1_2_retransmitted_final_is_reacked_but_not_passed_up():
    """§17.1.1.2: "Any retransmissions of the final response that are received while in the "Completed" state MUST
    cause the ACK to be re-passed to the transport layer for retransmission, but the newly received response MUST
    NOT be passed up to the TU." """
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    tx.send_request(0.0)
    busy = respond(invite, 486)
    tx.receive_response(busy, 1.0)
    tx.events()
    tx.receive_response(busy, 1.5)
    events = tx.events()
    assert not any(isinstance(e, ResponseReceived) for e in events)
    assert MessageAbsorbed(busy, S.COMPLETED) in events
    assert sends(events) == [SendMessage(tx.ack, True)]  # type: ignore[arg-type]


def test_s17_1_1_2_timer_d_is_32s_on_udp():
    """§17.1.1.2: "The client transaction SHOULD start timer D when it enters the "Completed" state, with a value of
    at least 32 seconds for unreliable transports" and "If timer D fires while the client transaction is in the
    "Completed" state, the client transaction MUST move to the terminated state." """
    invite = make_request()
    tx = ClientInviteTransaction(invite, config=TimerConfig(t1=0.1))
    tx.send_request(0.0)
    tx.receive_response(respond(invite, 404), 2.0)
    tx.events()
    tx.handle_timer(33.9)
    assert tx.state is S.COMPLETED
    tx.handle_timer(34.0)
    assert tx.state is S.TERMINATED and tx.events() == [TransactionTerminated()]


def test_s17_1_1_2_timer_d_is_zero_on_tcp():
    """§17.1.1.2: Timer D has "a value of zero seconds for reliable transports" — and the ACK is still sent: "the
    client transaction MUST generate an ACK request, even if the transport is reliable"."""
    invite = make_request()
    tx = ClientInviteTransaction(invite, reliable=True)
    tx.send_request(0.0)
    tx.events()
    tx.receive_response(respond(invite, 603), 1.0)
    events = tx.events()
    assert tx.state is S.TERMINATED
    assert [type(e) for e in events] == [ResponseReceived, SendMessage, TransactionTerminated]


def test_rfc6026_client_accepted_passes_every_2xx_up_until_timer_m():
    """RFC 6026 §8.4: "When a 2xx response is received while in either the "Calling" or "Proceeding" states, the
    client transaction MUST transition to the "Accepted" state" and "Any 2xx responses that match this client
    transaction and that are received while in the "Accepted" state MUST be passed up to the TU. The client
    transaction MUST NOT generate an ACK to the 2xx response." Timer M = 64*T1 ends the state."""
    invite = make_request()
    tx = ClientInviteTransaction(invite)
    tx.send_request(0.0)
    tx.receive_response(respond(invite, 180), 0.2)
    ok = respond(invite, 200, to_tag="fork-a")
    tx.receive_response(ok, 1.0)
    assert tx.state is S.ACCEPTED and tx.timers() == [("M", 33.0)]
    fork = respond(invite, 200, to_tag="fork-b")
    tx.receive_response(ok, 1.5)  # retransmission
    tx.receive_response(fork, 2.0)  # another branch of a forked INVITE
    events = tx.events()
    assert [e for e in events if isinstance(e, ResponseReceived)][-3:] == [
        ResponseReceived(ok),
        ResponseReceived(ok),
        ResponseReceived(fork),
    ]
    assert sends(events) == [SendMessage(invite)]  # the INVITE only: no ACK from the transaction
    tx.handle_timer(32.9)
    assert tx.state is S.ACCEPTED
    tx.handle_timer(33.0)
    assert tx.state is S.TERMINATED


def test_s17_1_4_transport_error_informs_tu_and_terminates():
    """§17.1.4: "The client transaction SHOULD inform the TU that a transport failure has occurred, and the client
    transaction SHOULD transition directly to the "Terminated" state." """
    tx = ClientInviteTransaction(make_request())
    tx.send_request(0.0)
    tx.events()
    tx.transport_error(0.1)
    assert tx.state is S.TERMINATED
    assert tx.events() == [TransportFailed(S.CALLING), TransactionTerminated()]


def test_client_transaction_refuses_misuse():
    """§17.1: "There is no client transaction for ACK"; a response must match the transaction (§17.1.3)."""
    invite = make_request()
    with pytest.raises(TransactionError):
        ClientNonInviteTransaction(make_request("ACK"))
    with pytest.raises(TransactionError):
        ClientInviteTransaction(make_request("OPTIONS"))
    tx = ClientInviteTransaction(invite)
    with pytest.raises(TransactionError):
        tx.receive_response(respond(invite, 180), 0.0)  # not started
    tx.send_request(0.0)
    with pytest.raises(TransactionError):
        tx.receive_response(respond(make_request(branch="z9hG4bKother"), 180), 0.1)
    with pytest.raises(TransactionError):
        tx.send_request(0.2)


# -- non-INVITE client transaction --------------------------------------------------------------------------------


def test_s17_1_2_2_timer_e_doubles_up_to_t2_then_timer_f_times_out():
    """§17.1.2.2: "If timer E fires while still in this state, the timer is reset, but this time with a value of
    MIN(2*T1, T2). When the timer fires again, it is reset to a MIN(4*T1, T2). ... For the default values of T1 and
    T2, this results in intervals of 500 ms, 1 s, 2 s, 4 s, 4 s, 4 s, etc." and "If Timer F fires while the client
    transaction is still in the "Trying" state, the client transaction SHOULD inform the TU about the timeout"."""
    tx = ClientNonInviteTransaction(make_request("OPTIONS"))
    tx.send_request(0.0)
    assert tx.state is S.TRYING
    log = run(tx, 100.0)
    assert send_times(log) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert (32.0, TransactionTimedOut(Timer.F)) in log
    assert tx.state is S.TERMINATED


def test_s17_1_2_2_timer_e_is_t2_in_proceeding():
    """§17.1.2.2: "If Timer E fires while in the "Proceeding" state, the request MUST be passed to the transport layer
    for retransmission, and Timer E MUST be reset with a value of T2 seconds." """
    request = make_request("REGISTER")
    tx = ClientNonInviteTransaction(request)
    tx.send_request(0.0)
    tx.handle_timer(0.5)
    tx.receive_response(respond(request, 100), 0.7)
    assert tx.state is S.PROCEEDING
    assert len(sends(tx.events())) == 2  # sent at 0 and retransmitted at 0.5
    log = run(tx, 20.0)
    assert send_times(log) == [1.5, 5.5, 9.5, 13.5, 17.5]  # E was due at 1.5, then every T2


def test_s17_1_2_2_changing_t2_caps_timer_e():
    """§17.1.2.2: "retransmissions occur with an exponentially increasing interval that caps at T2"."""
    tx = ClientNonInviteTransaction(make_request("OPTIONS"), config=TimerConfig(t1=0.5, t2=2.0))
    tx.send_request(0.0)
    assert send_times(run(tx, 10.0)) == [0.0, 0.5, 1.5, 3.5, 5.5, 7.5, 9.5]


def test_s17_1_2_2_no_retransmission_on_reliable_transport_only_timer_f():
    """§17.1.2.2: "If an unreliable transport is in use, the client transaction MUST set timer E to fire in T1
    seconds." and "When entering this state, the client transaction SHOULD set timer F to fire in 64*T1 seconds." """
    tx = ClientNonInviteTransaction(make_request("BYE", to_tag="x"), reliable=True)
    tx.send_request(0.0)
    assert tx.timers() == [("F", 32.0)]


def test_s17_1_2_2_timer_k_absorbs_response_retransmissions_t4_on_udp():
    """§17.1.2.2: "Once the client transaction enters the "Completed" state, it MUST set Timer K to fire in T4
    seconds for unreliable transports, and zero seconds for reliable transports." The state buffers "any additional
    response retransmissions"."""
    request = make_request("OPTIONS")
    tx = ClientNonInviteTransaction(request)
    tx.send_request(0.0)
    ok = respond(request, 200)
    tx.receive_response(ok, 1.0)
    assert tx.state is S.COMPLETED and tx.timers() == [("K", 6.0)]
    tx.events()
    tx.receive_response(ok, 2.0)
    assert tx.events() == [MessageAbsorbed(ok, S.COMPLETED)]
    tx.handle_timer(6.0)
    assert tx.state is S.TERMINATED

    tcp = ClientNonInviteTransaction(request, reliable=True)
    tcp.send_request(0.0)
    tcp.receive_response(ok, 1.0)
    assert tcp.state is S.TERMINATED
    assert [type(e) for e in tcp.events()] == [SendMessage, ResponseReceived, TransactionTerminated]


def test_s17_1_2_2_timer_f_in_proceeding_informs_tu():
    """§17.1.2.2: "If timer F fires while in the "Proceeding" state, the TU MUST be informed of a timeout, and the
    client transaction MUST transition to the terminated state." """
    request = make_request("OPTIONS")
    tx = ClientNonInviteTransaction(request, reliable=True)
    tx.send_request(0.0)
    tx.receive_response(respond(request, 100), 0.1)
    tx.events()
    tx.handle_timer(32.0)
    assert tx.events() == [TransactionTimedOut(Timer.F), TransactionTerminated()]


# -- INVITE server transaction ------------------------------------------------------------------------------------


def test_s17_2_1_sends_100_trying_when_the_tu_is_silent_for_200ms():
    """§17.2.1: "The server transaction MUST generate a 100 (Trying) response unless it knows that the TU will
    generate a provisional or final response within 200 ms" and "the insertion of tags in the To header field of
    the response (when none was present in the request) is downgraded from MAY to SHOULD NOT. The request MUST be
    passed to the TU." """
    invite = make_request()
    tx = ServerInviteTransaction(invite, now=5.0)
    assert tx.state is S.PROCEEDING
    assert tx.events() == [RequestReceived(invite)]
    assert tx.next_timer() == pytest.approx(5.2)
    tx.handle_timer(5.2)
    (trying,) = sends(tx.events())
    assert isinstance(trying.message, Response) and trying.message.status == 100
    assert trying.message.to is not None and trying.message.to.tag is None


def test_s17_2_1_no_100_trying_when_the_tu_answers_in_time_or_disables_it():
    """§17.2.1: the 100 is mandatory "unless it knows that the TU will generate a provisional or final response
    within 200 ms, in which case it MAY generate a 100 (Trying) response"."""
    invite = make_request()
    tx = ServerInviteTransaction(invite)
    tx.send_response(respond(invite, 180), 0.1)
    assert tx.next_timer() is None
    assert [e.message.status for e in sends(tx.events())] == [180]  # type: ignore[union-attr]
    quiet = ServerInviteTransaction(invite, auto_trying=False)
    assert quiet.next_timer() is None
    later = ServerInviteTransaction(invite)
    later.disable_trying()
    assert later.next_timer() is None


def test_s17_2_1_invite_retransmission_resends_the_latest_provisional():
    """§17.2.1: "If a request retransmission is received while in the "Proceeding" state, the most recent
    provisional response that was received from the TU MUST be passed to the transport layer for retransmission." """
    invite = make_request()
    tx = ServerInviteTransaction(invite)
    tx.handle_timer(0.2)
    tx.receive_request(invite, 0.5)
    ringing = respond(invite, 180)
    tx.send_response(ringing, 0.6)
    tx.receive_request(invite, 1.5)
    out = sends(tx.events())
    assert [(e.message.status, e.retransmission) for e in out] == [(100, False), (100, True), (180, False), (180, True)]  # type: ignore[union-attr]


def test_s17_2_1_timer_g_doubles_to_t2_until_timer_h():
    """§17.2.1: "If timer G fires, the response is passed to the transport layer once more for retransmission, and
    timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when timer G fires, the response is passed to the
    transport again for transmission, and timer G is reset with a value that doubles, unless that value exceeds T2"
    and "If timer H fires while in the "Completed" state, it implies that the ACK was never received. In this case,
    the server transaction MUST transition to the "Terminated" state, and MUST indicate to the TU that a transaction
    failure has occurred." """
    invite = make_request()
    tx = ServerInviteTransaction(invite, auto_trying=False)
    tx.events()
    tx.send_response(respond(invite, 486), 0.0)
    assert tx.state is S.COMPLETED
    log = run(tx, 100.0)
    assert send_times(log) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, e) for t, e in log if not isinstance(e, SendMessage)] == [
        (32.0, TransactionTimedOut(Timer.H)),
        (32.0, TransactionTerminated()),
    ]


def test_s17_2_1_invite_retransmission_in_completed_resends_the_final_response():
    """§17.2.1: "while in the "Completed" state, if a request retransmission is received, the server SHOULD pass the
    response to the transport for retransmission." """
    invite = make_request()
    tx = ServerInviteTransaction(invite, reliable=True, auto_trying=False)
    busy = respond(invite, 486)
    tx.send_response(busy, 0.0)
    tx.events()
    tx.receive_request(invite, 0.7)
    assert tx.events() == [SendMessage(busy, True)]


def test_s17_2_1_ack_confirms_and_timer_i_absorbs_ack_retransmissions():
    """§17.2.1: "If an ACK is received while the server transaction is in the "Completed" state, the server
    transaction MUST transition to the "Confirmed" state. As Timer G is ignored in this state, any retransmissions
    of the response will cease." "When this state is entered, timer I is set to fire in T4 seconds for unreliable
    transports" and "Once timer I fires, the server MUST transition to the "Terminated" state." """
    invite = make_request()
    tx = ServerInviteTransaction(invite, auto_trying=False)
    busy = respond(invite, 486)
    tx.send_response(busy, 0.0)
    tx.handle_timer(0.5)
    ack = build_request(
        "ACK", invite.uri_text, from_=invite.header("From") or "", to=busy.header("To") or "",
        via=invite.via[0].raw, call_id=invite.call_id, cseq=1,
    )  # fmt: skip
    tx.events()
    tx.receive_request(ack, 1.0)
    assert tx.state is S.CONFIRMED and tx.timers() == [("I", 6.0)]
    assert tx.events() == [MessageAbsorbed(ack, S.COMPLETED)]
    tx.receive_request(ack, 2.0)
    tx.receive_request(invite, 2.5)
    assert sends(tx.events()) == []
    tx.handle_timer(6.0)
    assert tx.state is S.TERMINATED


def test_s17_2_1_reliable_transport_no_timer_g_and_timer_i_zero():
    """§17.2.1: "For unreliable transports, timer G is set to fire in T1 seconds, and is not set to fire for reliable
    transports." "timer I is set to fire in T4 seconds for unreliable transports, and zero seconds for reliable
    transports." Timer H "MUST be set to fire in 64*T1 seconds for all transports"."""
    invite = make_request()
    tx = ServerInviteTransaction(invite, reliable=True, auto_trying=False)
    busy = respond(invite, 500)
    tx.send_response(busy, 0.0)
    assert tx.timers() == [("H", 32.0)]
    ack = build_request(
        "ACK", invite.uri_text, from_=invite.header("From") or "", to=busy.header("To") or "",
        via=invite.via[0].raw, call_id=invite.call_id, cseq=1,
    )  # fmt: skip
    tx.receive_request(ack, 0.1)
    assert tx.state is S.TERMINATED


def test_rfc6026_server_accepted_absorbs_invite_retransmissions_until_timer_l():
    """RFC 6026 §8.7: "While in the "Accepted" state, any retransmissions of the INVITE received will match this
    transaction state machine and will be absorbed by the machine without changing its state. These retransmissions
    are not passed onto the TU." "The server transaction MUST NOT generate 2xx retransmissions on its own. Any
    retransmission of the 2xx response passed from the TU to the transaction while in the "Accepted" state MUST be
    passed to the transport layer for transmission." "When Timer L fires and the state machine is in the "Accepted"
    state, the machine MUST transition to the "Terminated" state." """
    invite = make_request()
    tx = ServerInviteTransaction(invite, auto_trying=False)
    tx.events()
    ok = respond(invite, 200)
    tx.send_response(ok, 1.0)
    assert tx.state is S.ACCEPTED
    assert tx.timers() == [("L", 33.0)]  # no Timer G: the transaction does not retransmit 2xx
    tx.receive_request(invite, 1.5)
    tx.send_response(ok, 1.5)  # the TU's own retransmission (§13.3.1.4)
    events = tx.events()
    assert events == [SendMessage(ok), MessageAbsorbed(invite, S.ACCEPTED), SendMessage(ok)]
    with pytest.raises(TransactionError):
        tx.send_response(respond(invite, 486), 2.0)
    tx.handle_timer(33.0)
    assert tx.state is S.TERMINATED


def test_rfc6026_ack_matching_an_accepted_invite_goes_to_the_tu():
    """RFC 6026 §8.7: "Any ACKs received from the network while in the "Accepted" state MUST be passed directly to
    the TU and not absorbed." """
    invite = make_request()
    tx = ServerInviteTransaction(invite, auto_trying=False)
    ok = respond(invite, 200)
    tx.send_response(ok, 0.0)
    ack = build_request(
        "ACK", invite.uri_text, from_=invite.header("From") or "", to=ok.header("To") or "",
        via=invite.via[0].raw, call_id=invite.call_id, cseq=1,
    )  # fmt: skip
    tx.events()
    tx.receive_request(ack, 0.1)
    assert tx.events() == [RequestReceived(ack)]
    assert tx.state is S.ACCEPTED


def test_s17_2_4_transport_error_in_proceeding_informs_tu():
    """§17.2.4: "the server transaction SHOULD inform the TU that a failure has occurred, and SHOULD transition to the
    terminated state." """
    invite = make_request()
    tx = ServerInviteTransaction(invite)
    tx.events()
    tx.transport_error(0.1)
    assert tx.events() == [TransportFailed(S.PROCEEDING), TransactionTerminated()]


def test_server_invite_transaction_refuses_responses_its_state_forbids():
    """§17.2.1: after a 300-699 the transaction is in Completed, where the TU has nothing more to send."""
    invite = make_request()
    tx = ServerInviteTransaction(invite)
    tx.send_response(respond(invite, 486), 0.0)
    with pytest.raises(TransactionError):
        tx.send_response(respond(invite, 180), 0.1)
    with pytest.raises(TransactionError):
        tx.send_response(respond(make_request(cseq=2), 200), 0.1)
    with pytest.raises(TransactionError):
        tx.receive_request(make_request(branch="z9hG4bKelse"), 0.1)


# -- non-INVITE server transaction --------------------------------------------------------------------------------


def test_s17_2_2_trying_discards_request_retransmissions():
    """§17.2.2: "This request is passed up to the TU. Once in the "Trying" state, any further request
    retransmissions are discarded." """
    request = make_request("OPTIONS")
    tx = ServerNonInviteTransaction(request)
    assert tx.state is S.TRYING and tx.events() == [RequestReceived(request)]
    tx.receive_request(request, 0.5)
    assert tx.events() == [MessageAbsorbed(request, S.TRYING)]
    assert tx.next_timer() is None


def test_s17_2_2_proceeding_resends_the_latest_provisional():
    """§17.2.2: "If a retransmission of the request is received while in the "Proceeding" state, the most recently
    sent provisional response MUST be passed to the transport layer for retransmission." """
    request = make_request("SUBSCRIBE")
    tx = ServerNonInviteTransaction(request)
    trying = respond(request, 100)
    tx.send_response(trying, 0.1)
    assert tx.state is S.PROCEEDING
    tx.events()
    tx.receive_request(request, 0.5)
    assert tx.events() == [SendMessage(trying, True)]


def test_s17_2_2_completed_resends_final_and_timer_j_is_64t1_on_udp_zero_on_tcp():
    """§17.2.2: "When the server transaction enters the "Completed" state, it MUST set Timer J to fire in 64*T1
    seconds for unreliable transports, and zero seconds for reliable transports. While in the "Completed" state, the
    server transaction MUST pass the final response to the transport layer for retransmission whenever a
    retransmission of the request is received." """
    request = make_request("BYE", to_tag="bob1")
    tx = ServerNonInviteTransaction(request)
    ok = respond(request, 200)
    tx.send_response(ok, 1.0)
    assert tx.state is S.COMPLETED and tx.timers() == [("J", 33.0)]
    tx.events()
    tx.receive_request(request, 2.0)
    assert tx.events() == [SendMessage(ok, True)]
    tx.handle_timer(33.0)
    assert tx.state is S.TERMINATED

    tcp = ServerNonInviteTransaction(request, reliable=True)
    tcp.send_response(ok, 1.0)
    assert tcp.state is S.TERMINATED


def test_s17_2_2_other_final_responses_are_discarded_in_completed():
    """§17.2.2: "Any other final responses passed by the TU to the server transaction MUST be discarded while in the
    "Completed" state." """
    request = make_request("OPTIONS")
    tx = ServerNonInviteTransaction(request)
    tx.send_response(respond(request, 200), 0.0)
    tx.events()
    late = respond(request, 500)
    tx.send_response(late, 0.1)
    assert tx.events() == [MessageAbsorbed(late, S.COMPLETED)]


# -- matching -----------------------------------------------------------------------------------------------------


def test_s17_1_3_response_matches_by_branch_and_cseq_method_so_cancel_is_separate():
    """§17.1.3: a response matches "If the response has the same value of the branch parameter in the top Via header
    field as the branch parameter in the top Via header field of the request that created the transaction" and "If
    the method parameter in the CSeq header field matches the method of the request that created the transaction.
    The method is needed since a CANCEL request constitutes a different transaction, but shares the same value of
    the branch parameter." """
    table = TransactionTable()
    invite = make_request()
    inv_tx = table.send_request(invite, 0.0)
    inv_tx.receive_response(respond(invite, 180), 0.1)
    cancel = build_cancel(invite)
    cancel_tx = table.send_request(cancel, 0.2)
    assert client_key(invite) != client_key(cancel)
    assert table.receive(respond(cancel, 200), 0.3) is cancel_tx
    assert table.receive(respond(invite, 487), 0.4) is inv_tx
    assert cancel_tx.state is S.COMPLETED and inv_tx.state is S.COMPLETED
    stray = respond(make_request(branch="z9hG4bKnobody"), 200)
    assert table.receive(stray, 0.5) is None
    assert (None, StrayResponse(stray)) in table.events()


def test_s17_2_3_request_matches_by_branch_sent_by_and_method():
    """§17.2.3: "the branch parameter in the request is equal to the one in the top Via header field of the request
    that created the transaction, and the sent-by value in the top Via of the request is equal to the one in the
    request that created the transaction, and the method of the request matches the one that created the
    transaction" — "there could be accidental or malicious duplication of branch parameters from different
    clients"."""
    table = TransactionTable()
    first = make_request("OPTIONS")
    tx = table.receive(first, 0.0)
    assert isinstance(tx, ServerNonInviteTransaction)
    assert table.receive(first, 0.5) is tx  # a retransmission
    other_client = make_request("OPTIONS", host="mallory.example.com")
    other_method = make_request("INFO")
    assert table.receive(other_client, 0.6) not in (None, tx)
    assert table.receive(other_method, 0.7) not in (None, tx)
    assert server_key(first) == ("3261", "z9hG4bKtx1", "client.example.com", 5060, "OPTIONS")
    assert len(table) == 3


def test_s17_2_3_ack_matches_the_invite_server_transaction():
    """§17.2.3: the method must match "except for ACK, where the method of the request that created the transaction
    is INVITE." """
    table = TransactionTable(auto_trying=False)
    invite = make_request()
    tx = table.receive(invite, 0.0)
    assert isinstance(tx, ServerInviteTransaction)
    busy = respond(invite, 486)
    tx.send_response(busy, 0.1)
    ack = build_request(
        "ACK", invite.uri_text, from_=invite.header("From") or "", to=busy.header("To") or "",
        via=invite.via[0].raw, call_id=invite.call_id, cseq=1,
    )  # fmt: skip
    assert server_key(ack) == server_key(invite)
    assert table.receive(ack, 0.2) is tx
    assert tx.state is S.CONFIRMED
    # The ACK for a 2xx has a new branch: it is no transaction's and goes to the core.
    ack2 = build_request(
        "ACK", invite.uri_text, from_=invite.header("From") or "", to=busy.header("To") or "",
        via=via_value("UDP", "client.example.com", 5060, "z9hG4bKnew"), call_id=invite.call_id, cseq=1,
    )  # fmt: skip
    assert table.receive(ack2, 0.3) is None
    assert (None, StrayAck(ack2)) in table.events()


def test_s17_2_3_rfc2543_invite_matches_on_uri_tags_call_id_cseq_and_top_via():
    """§17.2.3: "If the branch parameter in the top Via header field is not present, or does not contain the magic
    cookie, the following procedures are used." "The INVITE request matches a transaction if the Request-URI, To
    tag, From tag, Call-ID, CSeq, and top Via header field match those of the INVITE request which created the
    transaction." """
    table = TransactionTable(auto_trying=False)
    old = make_request(branch=None)
    tx = table.receive(old, 0.0)
    assert server_key(old) is not None and server_key(old)[0] == "2543"  # type: ignore[index]
    assert table.receive(make_request(branch=None), 0.5) is tx
    for variant in (
        make_request(branch=None, uri="sip:carol@biloxi.example.com"),
        make_request(branch=None, from_tag="other"),
        make_request(branch=None, call_id="call-2@client.example.com"),
        make_request(branch=None, cseq=2),
        make_request(branch=None, port=5070),
        make_request(branch="1234"),  # a branch without the cookie is RFC 2543 too
    ):
        assert table.receive(variant, 0.6) is not tx
    # Other methods: "the Request-URI, To tag, From tag, Call-ID, CSeq (including the method), and top Via".
    opts = make_request("OPTIONS", branch=None)
    assert server_key(opts) != server_key(old)


def test_s17_2_3_rfc2543_ack_matches_by_the_to_tag_of_the_response_sent():
    """§17.2.3: "The ACK request matches a transaction if the Request-URI, From tag, Call-ID, CSeq number (not the
    method), and top Via header field match those of the INVITE request which created the transaction, and the To
    tag of the ACK matches the To tag of the response sent by the server transaction." """
    table = TransactionTable(auto_trying=False)
    invite = make_request(branch=None)
    tx = table.receive(invite, 0.0)
    assert isinstance(tx, ServerInviteTransaction)
    tx.send_response(respond(invite, 404, to_tag="uas9"), 0.1)

    def ack(to_tag: str) -> Request:
        return build_request(
            "ACK", invite.uri_text, from_=invite.header("From") or "",
            to=name_addr("sip:bob@biloxi.example.com", tag=to_tag), via=invite.via[0].raw,
            call_id=invite.call_id, cseq=1,
        )  # fmt: skip

    wrong = ack("someone-else")
    assert table.receive(wrong, 0.2) is None
    assert (None, StrayAck(wrong)) in table.events()
    assert table.receive(ack("uas9"), 0.3) is tx
    assert tx.state is S.CONFIRMED


def test_s9_2_cancel_is_its_own_transaction_and_targets_the_invite():
    """§9.2: "The TU determines the transaction to be cancelled by taking the CANCEL request, and then assuming that
    the request method is anything but CANCEL or ACK and applying the transaction matching procedures of Section
    17.2.3." """
    table = TransactionTable(auto_trying=False)
    invite = make_request()
    inv_tx = table.receive(invite, 0.0)
    cancel = build_cancel(invite)
    cancel_tx = table.receive(cancel, 0.5)
    assert isinstance(cancel_tx, ServerNonInviteTransaction) and cancel_tx is not inv_tx
    assert cancel_target_key(cancel) == server_key(invite)
    assert table.cancel_target(cancel) is inv_tx
    assert table.cancel_target(build_cancel(make_request(branch="z9hG4bKunknown"))) is None
    old = make_request(branch=None, cseq=7)
    old_tx = table.receive(old, 1.0)
    assert table.cancel_target(build_cancel(old)) is old_tx
    with pytest.raises(ValueError):
        cancel_target_key(cancel, "ACK")


def test_table_runs_timers_and_forgets_terminated_transactions():
    """§17.2.2: "The server transaction MUST be destroyed the instant it enters the "Terminated" state." """
    table = TransactionTable()
    request = make_request("OPTIONS")
    invite = make_request(branch="z9hG4bKinv")
    server = table.receive(request, 0.0)
    client = table.send_request(invite, 0.0)
    assert server is not None and client is not None
    server.send_response(respond(request, 200), 0.1)
    assert table.next_timer() == 0.5  # Timer A of the INVITE
    table.handle_timer(0.5)
    events = table.events()
    assert (server, RequestReceived(request)) in events
    assert (client, SendMessage(invite, True)) in events
    table.handle_timer(40.0)  # J and B fire
    kinds = [type(e) for _, e in table.events()]
    assert kinds.count(TransactionTerminated) == 2
    assert len(table) == 0 and table.next_timer() is None
    assert isinstance(table.receive(request, 41.0), ServerNonInviteTransaction)  # a new transaction now


# -- the tables themselves ----------------------------------------------------------------------------------------


def test_transition_tables_are_consistent():
    """Tables over code: every timer input of a machine is started by some state of that machine, and every state a
    transition leads to is one the machine knows."""
    for machine in TRANSACTION_MACHINES:
        started = {t for st in machine.STATE_TIMERS for t in st.start}
        timer_inputs = {tr.input for tr in machine.TRANSITIONS if tr.input.value.startswith(("Timer", "200 ms"))}
        for inp in timer_inputs:
            name = Timer.TRYING if inp is Input.TIMER_TRYING else Timer(inp.value.split()[1])
            assert name in started, (machine.__name__, inp)
        states = {tr.state for tr in machine.TRANSITIONS} | {tr.next_state for tr in machine.TRANSITIONS}
        assert S.TERMINATED in states and machine.INITIAL in states
        assert all(tr.section.startswith(("RFC 3261 §", "RFC 6026 §")) for tr in machine.TRANSITIONS)


def test_docs_state_machines_md_is_generated_from_the_tables():
    """docs/state-machines.md is ``state_machines_markdown()``; regenerate it when a table changes."""
    doc = ROOT / "docs" / "state-machines.md"
    assert doc.read_text(encoding="utf-8") == state_machines_markdown()


# -- any order of inputs ------------------------------------------------------------------------------------------

_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["timer", "1xx", "2xx", "4xx", "request", "ack", "tu1xx", "tu2xx", "tu4xx", "error"]),
        st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(machine=st.sampled_from(TRANSACTION_MACHINES), reliable=st.booleans(), steps=_STEPS)
def test_any_sequence_of_inputs_keeps_the_machine_consistent(machine, reliable, steps):
    """§17.1.2.2 / §17.2.2: "Once the transaction is in the terminated state, it MUST be destroyed immediately" —
    whatever arrives in whatever order, a machine only refuses TU misuse, ends at most once, and runs no timer once
    terminated. The INVITE is sent at most 7 times (§17.1.1.2: "the amount of time required to send seven
    requests")."""
    method = "INVITE" if machine in (ClientInviteTransaction, ServerInviteTransaction) else "OPTIONS"
    request = make_request(method)
    ack = build_request(
        "ACK", request.uri_text, from_=request.header("From") or "", to=name_addr("sip:bob@biloxi.example.com",
        tag="bob1"), via=request.via[0].raw, call_id=request.call_id, cseq=1,
    )  # fmt: skip
    tx = machine(request, reliable, TimerConfig(), 0.0)
    if hasattr(tx, "send_request"):
        tx.send_request(0.0)
    now, events = 0.0, []
    for kind, dt in steps:
        now += dt
        try:
            if kind == "timer":
                tx.handle_timer(now)
            elif kind == "error":
                tx.transport_error(now)
            elif kind in ("1xx", "2xx", "4xx") and hasattr(tx, "receive_response"):
                tx.receive_response(respond(request, {"1xx": 180, "2xx": 200, "4xx": 486}[kind]), now)
            elif kind in ("request", "ack") and hasattr(tx, "receive_request"):
                tx.receive_request(request if kind == "request" or method != "INVITE" else ack, now)
            elif kind.startswith("tu") and hasattr(tx, "send_response"):
                tx.send_response(respond(request, {"tu1xx": 183, "tu2xx": 200, "tu4xx": 404}[kind]), now)
        except TransactionError:
            assert kind.startswith("tu")
        events += tx.events()
        deadline = tx.next_timer()
        assert deadline is None or deadline > now or kind != "timer"
    tx.handle_timer(now + 1000.0)
    events += tx.events()
    # Only a machine waiting for a final response without a timer may still be alive: a server transaction waiting
    # for its TU, or an INVITE client transaction in Proceeding ("Timer B" acts only in Calling, §17.1.1.2).
    waiting = {ServerInviteTransaction: {S.PROCEEDING}, ServerNonInviteTransaction: {S.TRYING, S.PROCEEDING},
               ClientInviteTransaction: {S.PROCEEDING}}.get(machine, set())  # fmt: skip
    assert tx.state is S.TERMINATED or tx.state in waiting
    assert events.count(TransactionTerminated()) == (1 if tx.terminated else 0)
    assert tx.next_timer() is None
    invites = [e for e in events if isinstance(e, SendMessage) and e.message is request]
    assert len(invites) <= (1 if reliable else 7)
