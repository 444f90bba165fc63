"""The scripted peer on loopback: endpoints on every transport, expectations and their failure text, client
transactions (retransmission, ACK for non-2xx, timeouts), deliberate faults, the trace, background failures."""

from __future__ import annotations

import socket

import pytest

from conformance.peer import (
    DROP,
    DUPLICATE,
    ExpectationFailed,
    Fault,
    Peer,
    PeerError,
    request,
    response,
    with_cseq,
    with_rack,
    with_wrong_branch,
    with_wrong_tag,
)
from conformance.sip import build_response
from conformance.sip._timers import TimerConfig
from conformance.trace import MessageEntry

FAST = TimerConfig(t1=0.05, t2=0.2, t4=0.25)


@pytest.fixture
def pair():
    with Peer(name="alice", timers=FAST) as a, Peer(name="bob", user="bob", timers=FAST) as b:
        yield a, b


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls", "ws", "wss"])
def test_request_and_response_on_every_transport(transport: str) -> None:
    with Peer(name="alice") as a, Peer(name="bob", user="bob") as b:
        a.open(transport)
        eb = b.open(transport)
        opts = a.build_request("OPTIONS", f"sip:bob@{eb.sent_by()}")
        tx = a.request(opts, eb.local)
        got = b.expect(request("OPTIONS", call_id=opts.call_id), 5)
        assert got.message is not None and got.message.via[0].transport == a.endpoint().via_transport
        b.respond(got, build_response(got.message, 200))
        final = a.final_response(tx, 5)
        assert final.status == 200 and final.call_id == opts.call_id
        sent = [e for e in a.trace.messages("sent")]
        received = [e for e in a.trace.messages("received")]
        assert sent[0].data == bytes(opts) and sent[0].transport == transport
        assert received[0].message is not None and received[0].message.status == 200


def test_expectation_failure_says_what_arrived_instead(pair) -> None:
    a, b = pair
    a.open("udp")
    eb = b.open("udp")
    inv = a.build_request("INVITE", f"sip:bob@{eb.sent_by()}")
    a.send(inv, eb.local)
    got = b.expect(request("INVITE"), 2)
    b.respond(got, build_response(got.message, 486))
    with pytest.raises(ExpectationFailed) as info:
        a.expect(response(180), 0.5)
    text = str(info.value)
    assert "expected 180 response within 0.5 s" in text
    assert "SIP/2.0 486 Busy Here" in text and "status is 486 Busy Here, expected 180" in text


def test_client_invite_transaction_acks_non_2xx_and_retransmits_on_udp(pair) -> None:
    """RFC 3261 §17.1.1.2: "If an unreliable transport is being used, the client transaction MUST start timer A
    with a value of T1." and §17.1.1.3: the ACK for a non-2xx final response is sent by the transaction."""
    a, b = pair
    a.open("udp")
    eb = b.open("udp")
    inv = a.build_request("INVITE", f"sip:bob@{eb.sent_by()}")
    tx = a.request(inv, eb.local)
    copies = b.collect(request("INVITE"), 3, count=4)  # T1 = 50 ms: sent at 0, .05, .15, .35
    assert len(copies) == 4
    gaps = [round(y.time - x.time, 2) for x, y in zip(copies, copies[1:], strict=False)]
    assert gaps == pytest.approx([0.05, 0.1, 0.2], abs=0.03)
    b.respond(copies[0], build_response(copies[0].message, 603))
    assert a.final_response(tx, 2).status == 603
    ack = b.expect(request("ACK"), 2).message
    assert ack is not None and ack.via[0].branch == inv.via[0].branch and ack.cseq.number == inv.cseq.number


def test_client_transaction_times_out_with_timer_f(pair) -> None:
    """§17.1.2.2: "If Timer F fires while the client transaction is still in the "Trying" state, the client
    transaction SHOULD inform the TU about the timeout"."""
    a, b = pair
    a.open("udp")
    eb = b.open("udp")
    tx = a.request(a.build_request("OPTIONS", f"sip:bob@{eb.sent_by()}"), eb.local)
    with pytest.raises(ExpectationFailed, match="timed out \\(Timer F\\)"):
        a.final_response(tx, 10)
    assert tx.timed_out == "F"


def test_faults_drop_duplicate_delay_corrupt(pair) -> None:
    a, b = pair
    a.open("udp")
    eb = b.open("udp")
    uri = f"sip:bob@{eb.sent_by()}"
    dropped = a.build_request("OPTIONS", uri)
    assert a.send(dropped, eb.local, fault=DROP) is None
    b.expect_nothing(request("OPTIONS", call_id=dropped.call_id), 0.2)
    dup = a.build_request("OPTIONS", uri)
    a.send(dup, eb.local, fault=DUPLICATE)
    assert len(b.collect(request("OPTIONS", call_id=dup.call_id), 0.2)) == 2
    late = a.build_request("OPTIONS", uri)
    a.send(late, eb.local, fault=Fault(delay=0.2))
    got = b.expect(request("OPTIONS", call_id=late.call_id), 2)
    first_sent = [e for e in a.trace.messages("sent") if e.message is not None and e.message.call_id == late.call_id]
    assert first_sent and first_sent[0].note == "fault:delay=0.2s"
    assert got.time >= 0.2
    bad = a.build_request("OPTIONS", uri)
    a.send(bad, eb.local, fault=Fault(corrupt=lambda d: d.replace(b"SIP/2.0\r\n", b"SIP/9.9\r\n", 1)))
    entry = b.expect(request("OPTIONS", call_id=bad.call_id), 2).entry
    assert "bad-version" in {d.code for d in entry.defects}


def test_message_mutations_break_one_thing_each(pair) -> None:
    a, _ = pair
    ep = a.open("udp")
    inv = a.build_request("INVITE", f"sip:bob@{ep.sent_by()}")
    assert with_wrong_branch(inv).via[0].branch != inv.via[0].branch
    assert with_wrong_branch(inv).via[0].branch.startswith("z9hG4bK")
    assert with_wrong_tag(inv, "From").from_.tag != inv.from_.tag
    assert with_wrong_tag(inv, "To").to.tag is not None
    assert with_cseq(inv, 7).cseq == (7, "INVITE")
    prack = with_rack(inv, 5, 1)
    assert prack.rack == (5, 1, "INVITE")
    for m in (with_wrong_branch(inv), with_wrong_tag(inv), with_cseq(inv, 9), prack):
        assert m.defects == ()


def test_garbage_from_the_device_is_recorded_not_an_error(pair) -> None:
    """Bad input from the network never stops the peer: it lands in the trace as defects."""
    a, _ = pair
    ep = a.open("udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x00\xffgarbage\r\n\r\n", ep.local)
        s.sendto(b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n", ep.local)
    a.sleep(0.2)
    received = a.trace.messages("received")
    assert len(received) == 2
    assert received[0].message is None and received[0].defects
    assert received[1].message is not None and "bad-via" in {d.code for d in received[1].defects}
    a.raise_errors()  # nothing to raise


def test_framing_error_on_a_stream_is_a_recorded_finding(pair) -> None:
    a, _ = pair
    ep = a.open("tcp")
    with socket.create_connection(ep.local, timeout=2) as s:
        s.sendall(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: -5\r\n\r\n")
        a.sleep(0.3)
    notes = [e for e in a.trace.messages("received") if e.note == "framing-failed"]
    assert notes and notes[0].defects[0].code == "bad-content-length"


def test_a_background_failure_fails_the_owner_at_close() -> None:
    """DESIGN principle 6: an exception in the peer's loop is re-raised in the test that owns it."""
    peer = Peer(name="broken")
    peer.open("udp")

    def explode(received):  # noqa: ANN001 - test double
        raise RuntimeError("boom in the background")

    peer.core._on_message = explode  # type: ignore[method-assign]
    ep = peer.endpoint()
    # the endpoint calls the handler it was opened with; swap it through the endpoint's callback
    ep._on_message = explode  # type: ignore[attr-defined]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"OPTIONS sip:x SIP/2.0\r\n\r\n", ep.local)
    peer.sleep(0.2)
    with pytest.raises(PeerError, match="boom in the background"):
        peer.close()


def test_trace_records_both_directions_with_addresses(pair) -> None:
    a, b = pair
    ea = a.open("tcp")
    eb = b.open("tcp")
    opts = a.build_request("OPTIONS", f"sip:bob@{eb.sent_by()}")
    a.send(opts, eb.local)
    got = b.expect(request("OPTIONS"), 2)
    b.respond(got, build_response(got.message, 200))
    a.expect(response(200), 2)
    entries = [e for e in a.trace if isinstance(e, MessageEntry)]
    assert [e.direction for e in entries] == ["sent", "received"]
    assert entries[0].remote == eb.local and entries[1].remote == eb.local
    assert entries[0].local[0] == ea.local[0]
    assert entries[0].time <= entries[1].time
