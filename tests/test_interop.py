"""Interop with independent implementations from Debian (issue: transactions, dialogs, transports, peer, device).

- our peer completes calls against SIPp's built-in ``uas`` scenario, over UDP and TCP;
- SIPp's built-in ``uac`` scenario completes calls against the built-in reference device (our UAS), UDP and TCP;
- a call set up by our peer passes through Kamailio, a record-routing stateful proxy (config kept in
  ``conformance/devices/configs/kamailio.cfg``), to our UAS, and is torn down through it.

Each needs its program installed (``sh .ci/install-debian.sh``); without it the test is skipped and says why.
"""

from __future__ import annotations

import asyncio

import pytest

from conformance.devices import Kamailio, SippUac, SippUas, requires
from conformance.peer import AsyncPeer, place_call, run_calls
from conformance.trace import MessageEntry

pytestmark = pytest.mark.interop


async def _calls_against(port: int, transport: str, calls: int) -> tuple[list, AsyncPeer]:
    peer = AsyncPeer(name="interop")
    await peer.open(transport)
    results, _ = await run_calls(peer, f"sip:service@127.0.0.1:{port}", ("127.0.0.1", port), calls=calls, concurrency=10)
    await peer.close()
    return results, peer


@requires("sipp")
@pytest.mark.parametrize(("transport", "sipp_transport"), [("udp", "u1"), ("tcp", "t1")])
def test_peer_completes_calls_against_sipp_uas(transport: str, sipp_transport: str) -> None:
    with SippUas(transport=sipp_transport) as uas:
        results, peer = asyncio.run(_calls_against(uas.port, transport, 50))
    failed = [r.error for r in results if not r.ok]
    assert not failed, f"{len(failed)} of 50 calls failed against SIPp uas: {failed[:3]}"
    assert all(r.statuses == [180, 200, 200] for r in results), {tuple(r.statuses) for r in results}
    # Every call is in the trace: INVITE, 180, 200, ACK, BYE, 200, and SIPp's messages parse without fatal defects.
    received = [e for e in peer.trace.messages("received") if isinstance(e, MessageEntry)]
    assert len(received) >= 150
    assert not [e for e in received if e.message is None or any(d.fatal for d in e.defects)]


def _builtin_uas(transport: str):  # noqa: ANN202 - the device's context manager
    from conformance.dut import Device

    return Device(role="uas", transport=transport)


@requires("sipp")
@pytest.mark.parametrize(("transport", "sipp_transport"), [("udp", "u1"), ("tcp", "t1")])
def test_sipp_uac_completes_calls_against_our_uas(transport: str, sipp_transport: str) -> None:
    with _builtin_uas(transport) as dev:
        result = SippUac(f"sip:127.0.0.1:{dev.port}", transport=sipp_transport, calls=50, rate=50.0, timeout=60).run()
    assert result.ok, result.summary()
    assert result.successful == 50


@requires("kamailio")
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_call_through_kamailio_record_routing_proxy_to_our_uas(transport: str) -> None:
    """Kamailio (registrar + record-routing stateful proxy) forwards our INVITE to the built-in UAS, which has been
    registered there; the 200 carries Kamailio's Record-Route, the ACK and BYE follow the route set through it."""
    with Kamailio(transports=("udp", "tcp")) as kam, _builtin_uas(transport) as dev:
        contact = f"sip:dut@127.0.0.1:{dev.port}" + (";transport=tcp" if transport == "tcp" else "")
        assert kam.register("dut", contact) == 200

        async def call() -> tuple[object, AsyncPeer]:
            peer = AsyncPeer(name="via-kamailio")
            await peer.open(transport)
            uri = f"sip:dut@127.0.0.1:{kam.port}" + (";transport=tcp" if transport == "tcp" else "")
            result = await place_call(peer, uri, ("127.0.0.1", kam.port), timeout=10)
            await peer.close()
            return result, peer

        result, peer = asyncio.run(call())
    assert result.ok, result.error  # type: ignore[attr-defined]
    msgs = [e.message for e in peer.trace.messages() if e.message is not None]
    ok_invite = next(m for m in msgs if m.is_response and m.status == 200 and m.cseq.method == "INVITE")
    assert ok_invite.record_route, "the 200 to the INVITE came back without Kamailio's Record-Route"
    assert any(f":{kam.port}" in rr.uri_text for rr in ok_invite.record_route)
    bye = next(m for m in msgs if m.is_request and m.method == "BYE")
    assert bye.route, "the BYE did not carry the route set learned from Record-Route (RFC 3261 §12.2.1.1)"
    sent_to = {e.remote for e in peer.trace.messages("sent")}
    assert sent_to == {("127.0.0.1", kam.port)}, f"requests went around the proxy: {sent_to}"
