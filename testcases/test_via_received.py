"""Via processing at the server transport (RFC 3261 §18.2.1) and symmetric response routing (RFC 3581 §4)."""

from __future__ import annotations

import pytest

from conformance.peer import response
from testcases._support import target_uri

pytestmark = pytest.mark.sip_requires(role="uas")


@pytest.mark.sip_faults("no-received")
@pytest.mark.sip_purpose("TP-VIA-001", "A Via whose sent-by is not the source address gets received=", "RFC 3261 §18.2.1")
@pytest.mark.sip_requires(transports=("udp",))
def test_s18_2_1_received_added_when_sent_by_differs(sip_peer, sip_profile):
    """§18.2.1: "When the server transport receives a request over any transport, it MUST examine the value of the
    "sent-by" parameter in the top Via header field value. If the host portion of the "sent-by" parameter contains
    a domain name, or if it contains an IP address that differs from the packet source address, the server MUST add
    a "received" parameter to that Via header field value. This parameter MUST contain the source address from
    which the packet was received." The response then goes to that address at the sent-by port (§18.2.2)."""
    ep = sip_peer.endpoint()
    via = f"SIP/2.0/UDP sipcert.invalid:{ep.local[1]};branch=z9hG4bK{sip_peer.next_cseq():08d}via1"
    req = sip_peer.build_request("OPTIONS", target_uri(sip_profile))
    req = req.with_header("Via", via)
    sip_peer.send(req, sip_profile.target.address)
    got = sip_peer.expect(response().for_transaction(req), 5).message
    assert got is not None and got.via, "the response has no Via"
    top = got.via[0]
    assert top.received is not None, (
        f"the sent-by was the domain name sipcert.invalid, but the response's top Via {top.raw!r} has no received"
    )
    assert top.received.strip("[]") == ep.local[0], f"received={top.received}, the packet came from {ep.local[0]}"


@pytest.mark.sip_faults("no-rport", "no-received")
@pytest.mark.sip_purpose("TP-VIA-002", "A request asking for rport gets rport and received filled in", "RFC 3581 §4")
@pytest.mark.sip_requires(extensions=("rport",), transports=("udp",))
def test_rfc3581_s4_rport_filled_in(sip_peer, sip_profile):
    """RFC 3581 §4: "When a server compliant to this specification (which can be a proxy or UAS) receives a request,
    it examines the topmost Via header field value. If this Via header field value contains an "rport" parameter
    with no value, it MUST set the value of the parameter to the source port of the request. ... the server MUST
    insert a "received" parameter containing the source IP address that the request came from, even if it is
    identical to the value of the "sent-by" component." """
    ep = sip_peer.endpoint()
    req = sip_peer.build_request("OPTIONS", target_uri(sip_profile))
    req = req.with_header("Via", sip_peer.via(rport=True))
    sip_peer.send(req, sip_profile.target.address)
    got = sip_peer.expect(response().for_transaction(req), 5).message
    assert got is not None and got.via, "the response has no Via"
    top = got.via[0]
    assert top.rport == ep.local[1], f"the top Via {top.raw!r} should carry rport={ep.local[1]}"
    assert top.received is not None and top.received.strip("[]") == ep.local[0], (
        f"the top Via {top.raw!r} should carry received={ep.local[0]}"
    )
