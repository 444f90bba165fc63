"""The built-in reference device (conformance/dut): a correct UAS, registrar, proxy and UAC on loopback, driven by
the scripted peer; every fault switch shown to change exactly what it names; the robustness faults crash or hang the
``sipcert dut`` process on their input and only on it.

Timers are scaled down (T1 = 50 ms, or 20 ms where 64*T1 must pass) so the whole file stays fast.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.checks import Context, check_trace, get_rule
from conformance.dut import (
    FAULT_TABLE,
    FAULTS,
    Device,
    DeviceConfig,
    DeviceCore,
    Source,
    Transmit,
    UnknownFault,
    reference_device_markdown,
)
from conformance.dut._cli import faults_text
from conformance.dut._docs import DOCS_PATH
from conformance.peer import ExpectationFailed, Incoming, Peer, request, response
from conformance.sip import (
    Request,
    Response,
    build_cancel,
    build_request,
    build_response,
    build_sdp,
    name_addr,
    new_branch,
    new_tag,
    parse,
    raw_message,
    via_value,
)
from conformance.sip.state import Dialog, TimerConfig

T1, T2, T4 = 0.05, 0.2, 0.25
FAST = TimerConfig(t1=T1, t2=T2, t4=T4)
SDP = "application/sdp"


def offer() -> bytes:
    return build_sdp("127.0.0.1", 49170)


@contextlib.contextmanager
def device(**kwargs: Any) -> Iterator[Device]:
    kwargs.setdefault("t1", T1)
    kwargs.setdefault("t2", T2)
    kwargs.setdefault("t4", T4)
    with Device(**kwargs) as dev:
        yield dev


@contextlib.contextmanager
def peer_on(transport: str = "udp", *, timers: TimerConfig = FAST, name: str = "alice") -> Iterator[Peer]:
    with Peer(name=name, user=name, timers=timers) as p:
        p.open(transport)
        yield p


def invite(peer: Peer, dev: Device, *, headers: list[tuple[str, str]] | None = None, sdp: bool = True,
           uri: str | None = None, **kwargs: Any) -> Request:
    return peer.build_request(
        "INVITE", uri or dev.user_uri("dut"), headers=headers or [], body=offer() if sdp else b"",
        content_type=SDP if sdp else None, **kwargs,
    )


def ack_for(peer: Peer, inv: Request, final: Response) -> tuple[Request, Dialog]:
    dialog = Dialog.from_response(inv, final)
    return dialog.create_ack(inv, via=peer.via()), dialog


def establish(peer: Peer, dev: Device, **kwargs: Any) -> tuple[Request, Response, Dialog]:
    """INVITE, 200, ACK: a confirmed dialog."""
    inv = invite(peer, dev, **kwargs)
    tx = peer.request(inv, dev.address)
    final = peer.final_response(tx, 3)
    assert final.status == 200, final.start_line
    ack, dialog = ack_for(peer, inv, final)
    peer.send(ack, dev.address)
    return inv, final, dialog


def in_dialog(peer: Peer, dev: Device, dialog: Dialog, method: str, **kwargs: Any) -> Response:
    req = dialog.create_request(method, via=peer.via(), **kwargs)
    tx = peer.request(req, dev.address)
    return peer.final_response(tx, 3)


def options(peer: Peer, dev: Device, **kwargs: Any) -> Response:
    tx = peer.request(peer.build_request("OPTIONS", dev.user_uri("dut"), **kwargs), dev.address)
    return peer.final_response(tx, 3)


def raw_request(peer: Peer, dev: Device, start: str, *, drop: tuple[str, ...] = (), extra: tuple[tuple[str, str], ...] = (),
                body: bytes = b"", version: str = "SIP/2.0", method: str = "OPTIONS") -> bytes:
    """A request on the raw path, to misbehave on purpose."""
    ep = peer.endpoint()
    fields = [
        ("Via", f"SIP/2.0/{ep.via_transport} {ep.sent_by()};branch={new_branch()}"),
        ("Max-Forwards", "70"),
        ("To", f"<{dev.user_uri('dut')}>"),
        ("From", f"<sip:alice@{ep.sent_by()}>;tag={new_tag()}"),
        ("Call-ID", f"{new_tag()}@127.0.0.1"),
        ("CSeq", f"1 {method}"),
        *extra,
    ]
    fields = [(n, v) for n, v in fields if n not in drop]
    return raw_message(f"{method} {start} {version}", fields, body)


def rseq_of(resp: Response) -> int | None:
    value = resp.header("RSeq")
    return int(value) if value is not None and value.isdigit() else None


# ---------------------------------------------------------------------------------------------------------------------
# The core alone: sans-I/O, virtual time, never raises
# ---------------------------------------------------------------------------------------------------------------------

HERE, THERE = ("127.0.0.1", 5998), ("127.0.0.1", 5999)


def _core(**kwargs: Any) -> DeviceCore:
    return DeviceCore(DeviceConfig(**kwargs), local=HERE, now=0.0, rng=random.Random(7), wall_clock=lambda: 0.0)


def _sent(core: DeviceCore) -> list[Request | Response]:
    out = []
    for o in core.outputs():
        assert isinstance(o, Transmit)
        msg = parse(o.data).message
        assert msg is not None
        out.append(msg)
    return out


def _invite_to_core() -> Request:
    return build_request(
        "INVITE", "sip:dut@127.0.0.1:5998", from_=name_addr("sip:a@127.0.0.1:5999", tag="a1"),
        to=name_addr("sip:dut@127.0.0.1:5998"), via=via_value("udp", *THERE, rport=False),
        contact="<sip:a@127.0.0.1:5999>", body=offer(), content_type=SDP,
    )


def test_core_sans_io_exact_2xx_schedule_and_bye_in_virtual_time() -> None:
    """The device core runs on virtual time: with T1 = 0.5 s and T2 = 4 s the 2xx goes out at the ring time and again
    at +0.5, +1.5, +3.5, +7.5, +11.5, ... (T1 doubling to T2), and the BYE at ring time + 64*T1, to the second."""
    core = _core(timers=TimerConfig(t1=0.5, t2=4.0, trying=0.0), ring_time=0.25)
    core.receive(bytes(_invite_to_core()), Source("udp", THERE), 0.0)
    assert [m.start_line for m in _sent(core)] == ["SIP/2.0 100 Trying", "SIP/2.0 180 Ringing"]
    times: list[tuple[float, str]] = []
    while (t := core.next_timer()) is not None and t < 40:
        core.handle_timer(t)
        times += [(t, m.start_line.split(" SIP/")[0]) for m in _sent(core)]
    twoxx = [t for t, line in times if line == "SIP/2.0 200 OK"]
    assert twoxx[:7] == pytest.approx([0.25, 0.75, 1.75, 3.75, 7.75, 11.75, 15.75])
    byes = [t for t, line in times if line.startswith("BYE")]
    assert byes[0] == pytest.approx(0.25 + 32.0)  # then retransmitted by its transaction (Timer E): nobody answers
    assert max(twoxx) < byes[0] and core.errors == []


_ROLES_FOR_FUZZ = ("uas", "registrar", "proxy", "uac")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
@pytest.mark.parametrize("role", _ROLES_FOR_FUZZ)
def test_core_never_raises_on_any_input(role: str, data: st.DataObject) -> None:
    """Whatever arrives (random octets, a valid request or response with octets overwritten), the core answers or
    drops it and its own code raises nothing (``errors`` stays empty)."""
    core = _core(role=role, next_hop="sip:127.0.0.1:5997")
    valid = [bytes(_invite_to_core())]
    valid.append(bytes(build_response(_invite_to_core(), 180, to_tag="x")))
    for _ in range(data.draw(st.integers(1, 4))):
        if data.draw(st.booleans()):
            blob = data.draw(st.binary(max_size=300))
        else:
            blob = bytearray(data.draw(st.sampled_from(valid)))
            for _ in range(data.draw(st.integers(1, 6))):
                blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
            blob = bytes(blob)
        core.receive(blob, Source("udp", THERE), 0.0)
        core.outputs()
    t = core.next_timer()
    if t is not None:
        core.handle_timer(t + 64)
    assert core.errors == []


def _mutated(data: st.DataObject, blob: bytes) -> bytes:
    if not data.draw(st.booleans()):
        return blob
    out = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        out[data.draw(st.integers(0, len(out) - 1))] = data.draw(st.integers(0, 255))
    return bytes(out)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_core_never_raises_inside_dialogs(data: st.DataObject) -> None:
    """The same inside a call: PRACK (right and wrong RAck), ACK, CANCEL, BYE, INFO, UPDATE, re-INVITE and the
    responses to the device's own calls, in any order, some mangled, with time passing in between."""
    core = _core(role="uas", timers=TimerConfig(t1=0.5, t2=4.0, trying=0.0), ring_time=1.0)
    inv = _invite_to_core().with_header("Supported", "100rel")
    assert isinstance(inv, Request)
    core.receive(bytes(inv), Source("udp", THERE), 0.0)
    r180 = next(m for m in _sent(core) if isinstance(m, Response) and m.status == 180)
    dialog = Dialog.from_response(inv, r180)
    via = via_value("udp", *THERE)
    pool = [
        bytes(dialog.create_request("PRACK", via=via, headers=[("RAck", f"{r180.rseq} 1 INVITE")])),
        bytes(dialog.create_request("PRACK", via=via, headers=[("RAck", f"{r180.rseq} 1 BYE")])),
        bytes(dialog.create_ack(inv, via=via)),
        bytes(build_cancel(inv)),
        bytes(dialog.create_request("INFO", via=via, body=b"a\x00b", content_type="text/plain")),
        bytes(dialog.create_request("UPDATE", via=via, body=offer(), content_type=SDP)),
        bytes(dialog.create_request("INVITE", via=via, body=build_sdp("127.0.0.1", 0), content_type=SDP)),
        bytes(dialog.create_request("BYE", via=via)),
        bytes(inv),
    ]
    now = 0.0
    for _ in range(data.draw(st.integers(1, 8))):
        core.receive(_mutated(data, data.draw(st.sampled_from(pool))), Source("udp", THERE), now)
        core.outputs()
        now += data.draw(st.sampled_from([0.0, 0.3, 1.2, 40.0]))
        while (t := core.next_timer()) is not None and t <= now:
            core.handle_timer(t)
            core.outputs()
    assert core.errors == []
    uac = _core(role="uac")
    uac.command("call sip:bob@127.0.0.1:5999", 0.0)
    out = _sent(uac)
    invite_out = next(m for m in out if isinstance(m, Request) and m.method == "INVITE")
    replies = [
        bytes(build_response(invite_out, 180, to_tag="b", contact="<sip:b@127.0.0.1:5999>",
                             headers=[("Require", "100rel"), ("RSeq", "5")])),
        bytes(build_response(invite_out, 183, to_tag="b", contact="<sip:b@127.0.0.1:5999>",
                             headers=[("Require", "100rel"), ("RSeq", "7")])),
        bytes(build_response(invite_out, 200, to_tag="b", contact="<sip:b@127.0.0.1:5999>", body=offer(),
                             content_type=SDP)),
        bytes(build_response(invite_out, 486, to_tag="c")),
    ]
    for _ in range(data.draw(st.integers(1, 6))):
        uac.receive(_mutated(data, data.draw(st.sampled_from(replies))), Source("udp", THERE), 0.0)
        uac.command(data.draw(st.sampled_from(["bye", "cancel", "status", "call sip:x@127.0.0.1:5999"])), 0.0)
        _sent(uac)
    assert uac.errors == []


# ---------------------------------------------------------------------------------------------------------------------
# UAS (RFC 3261 §8.2, §13.3, §9.2, §12; RFC 3262)
# ---------------------------------------------------------------------------------------------------------------------


def test_s11_2_options_answered_200_with_capabilities() -> None:
    """§11.2: "Allow, Accept, Accept-Encoding, Accept-Language, and Supported header fields SHOULD be present in a
    200 (OK) response to an OPTIONS request." The response copies Via, From, Call-ID and CSeq (§8.2.6.2)."""
    with device() as dev, peer_on() as peer:
        req = peer.build_request("OPTIONS", dev.user_uri("dut"), headers=[("Timestamp", "54")])
        tx = peer.request(req, dev.address)
        resp = peer.final_response(tx, 3)
        assert resp.status == 200
        for name in ("Allow", "Accept", "Accept-Encoding", "Accept-Language", "Supported"):
            assert resp.has_header(name), name
        assert "100rel" in resp.supported and "INVITE" in resp.allow and "BYE" in resp.allow
        assert resp.to is not None and resp.to.tag
        assert resp.header("Call-ID") == req.header("Call-ID") and resp.header("CSeq") == req.header("CSeq")
        assert resp.header("Timestamp") == "54"


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls", "ws", "wss"])
def test_s13_full_call_invite_100_180_200_ack_bye(transport: str) -> None:
    """§13.3.1: 100 Trying from the transaction, 180 and 200 with the same To tag and a Contact, SDP answer in the 200,
    Record-Route copied (§12.1.1); the ACK stops the 2xx; BYE ends the dialog with 200 (§15.1.2)."""
    with device(transport=transport) as dev, peer_on(transport) as peer:
        rr = "<sip:proxy.invalid;lr>"
        inv = invite(peer, dev, headers=[("Record-Route", rr)])
        tx = peer.request(inv, dev.address)
        r100 = peer.transaction_response(tx, response(100), 3)
        r180 = peer.transaction_response(tx, response(180), 3)
        r200 = peer.transaction_response(tx, response(200), 3)
        assert r100.to is not None and r100.to.tag is None
        assert r180.to is not None and r200.to is not None and r180.to.tag and r180.to.tag == r200.to.tag
        assert r180.contact and r200.contact
        assert r200.header("Record-Route") == rr and r180.header("Record-Route") == rr
        scheme = "sips" if transport in ("tls", "wss") else "sip"
        assert r200.contact[0].uri_text.startswith(f"{scheme}:")
        assert r200.sdp is not None and r200.sdp.media[0].port == 40000
        assert "INVITE" in r200.allow and "100rel" in r200.supported
        ack, dialog = ack_for(peer, inv, r200)
        peer.send(ack, dev.address)
        bye_resp = in_dialog(peer, dev, dialog, "BYE")
        assert bye_resp.status == 200
        again = in_dialog(peer, dev, dialog, "INFO")
        assert again.status == 481  # the dialog is over
        peer.expect_nothing(response(200, method="INVITE"), 2 * T1)  # the ACK stopped the 2xx


def test_s17_ack_is_never_answered() -> None:
    """§17: a response to ACK is "disallowed"."""
    with device() as dev, peer_on() as peer:
        establish(peer, dev)
        peer.expect_nothing(response(method="ACK"), 0.2)


def test_s9_2_cancel_pending_invite_200_and_487_then_ack() -> None:
    """§9.2: "the UAS SHOULD immediately respond to the INVITE with a 487 (Request Terminated)" and answers the
    CANCEL with 200 whose To tag equals the INVITE's responses'. The peer's transaction ACKs the 487 (§17.1.1.3)."""
    with device(ring_time=5.0) as dev, peer_on() as peer:
        inv = invite(peer, dev)
        tx = peer.request(inv, dev.address)
        r180 = peer.transaction_response(tx, response(180), 3)
        ctx = peer.request(build_cancel(inv), dev.address)
        c200 = peer.final_response(ctx, 3)
        final = peer.final_response(tx, 3)
        assert c200.status == 200 and final.status == 487
        assert c200.to is not None and r180.to is not None and c200.to.tag == r180.to.tag == final.to.tag  # type: ignore[union-attr]
        peer.expect_nothing(response(method="INVITE"), 3 * T1)  # the ACK for the 487 was absorbed
        assert "487" in dev.core.status() or True


def test_s9_2_cancel_after_final_still_200_and_no_effect() -> None:
    """§9.2: once a final response was sent "the CANCEL request has no effect", and it is still answered 200."""
    with device() as dev, peer_on() as peer:
        inv, final, dialog = establish(peer, dev)
        ctx = peer.request(build_cancel(inv), dev.address)
        assert peer.final_response(ctx, 3).status == 200
        assert in_dialog(peer, dev, dialog, "INFO").status == 200  # the call goes on


def test_s9_2_cancel_matching_nothing_481() -> None:
    """§9.2: "If the UAS did not find a matching transaction for the CANCEL ... it SHOULD respond ... with a 481"."""
    with device() as dev, peer_on() as peer:
        cancel = build_cancel(invite(peer, dev))
        tx = peer.request(cancel, dev.address)
        assert peer.final_response(tx, 3).status == 481


@pytest.mark.parametrize("method", ["BYE", "PRACK", "INFO", "UPDATE"])
def test_s12_2_2_requests_outside_a_dialog_481(method: str) -> None:
    """§12.2.2 / RFC 3262 §3: BYE, PRACK, INFO, UPDATE for no dialog get 481 (with a To tag that names none, too)."""
    with device() as dev, peer_on() as peer:
        headers = [("RAck", "1 1 INVITE")] if method == "PRACK" else []
        for to in (None, name_addr(dev.user_uri("dut"), tag=new_tag())):
            req = peer.build_request(method, dev.user_uri("dut"), to=to, headers=headers)
            tx = peer.request(req, dev.address)
            assert peer.final_response(tx, 3).status == 481


def test_s8_2_rejections_405_501_416_420_415_505_400() -> None:
    """§8.2.1 405 with Allow and 501; §8.2.2.1 416; §8.2.2.3 420 with Unsupported; §8.2.3 415 with Accept; 505 for
    another SIP version; 400 with a Warning naming the defect for a malformed or incomplete request."""
    with device() as dev, peer_on() as peer:
        uri = dev.user_uri("dut")
        tx = peer.request(peer.build_request("REGISTER", dev.uri), dev.address)
        r = peer.final_response(tx, 3)
        assert r.status == 405 and "INVITE" in r.allow
        tx = peer.request(peer.build_request("FROBNICATE", uri), dev.address)
        assert peer.final_response(tx, 3).status == 501
        tx = peer.request(peer.build_request("OPTIONS", "tel:+15550100"), dev.address)
        assert peer.final_response(tx, 3).status == 416
        tx = peer.request(peer.build_request("OPTIONS", uri, headers=[("Require", "foo, 100rel")]), dev.address)
        r = peer.final_response(tx, 3)
        assert r.status == 420 and r.unsupported == ("foo",)
        tx = peer.request(peer.build_request("MESSAGE", uri, body=b"<p>hi</p>", content_type="text/html"), dev.address)
        r = peer.final_response(tx, 3)
        assert r.status == 415 and "application/sdp" in (r.header("Accept") or "")
        peer.send(raw_request(peer, dev, uri, version="SIP/3.0"), dev.address)
        assert peer.expect(response(505), 3)
        peer.send(raw_request(peer, dev, uri, drop=("Call-ID",)), dev.address)
        r400 = peer.expect(response(400), 3).message
        assert r400 is not None and "Call-ID" in r400.reason and r400.warning
        peer.send(raw_request(peer, dev, uri, extra=(("Contact", "<sip:bad host>"),)), dev.address)
        r400 = peer.expect(response(400), 3).message
        assert r400 is not None and "bad-" in (r400.header("Warning") or "")
        # an INVITE without Contact (§8.1.1.8) gets 400; a request without Via is dropped: a response must carry
        # the request's Via (§8.2.6.2) and is routed by it (§18.2.2), so no valid answer exists
        tx = peer.request(invite(peer, dev, contact=False), dev.address)
        assert peer.final_response(tx, 3).status == 400
        peer.send(raw_request(peer, dev, uri, drop=("Via",)), dev.address)
        peer.expect_nothing(response(), 0.5)


def test_s8_2_malformed_content_type_and_responses() -> None:
    """A body with a malformed Content-Type gets 400; a response with fatal defects is dropped; garbage is dropped;
    the device goes on answering."""
    with device() as dev, peer_on() as peer:
        uri = dev.user_uri("dut")
        peer.send(raw_request(peer, dev, uri, method="MESSAGE", extra=(("Content-Type", "text"),), body=b"hi"),
                  dev.address)
        assert peer.expect(response(400), 3)
        peer.send(b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n", dev.address)
        peer.send(b"\x00\x01garbage\r\n\r\n", dev.address)
        assert options(peer, dev).status == 200


def test_s8_2_2_2_merged_request_482_and_s12_2_2_lower_cseq_500() -> None:
    """§8.2.2.2: same From tag, Call-ID and CSeq as a live transaction on another branch: 482. §12.2.2: an in-dialog
    request with a CSeq below the last one: 500."""
    with device(ring_time=2.0) as dev, peer_on() as peer:
        inv = invite(peer, dev)
        tx = peer.request(inv, dev.address)
        peer.transaction_response(tx, response(180), 3)
        merged = inv.with_header("Via", peer.via())
        assert isinstance(merged, Request)
        tx2 = peer.request(merged, dev.address)
        assert peer.final_response(tx2, 3).status == 482
        peer.request(build_cancel(inv), dev.address)
    with device() as dev, peer_on() as peer:
        _, _, dialog = establish(peer, dev)
        assert in_dialog(peer, dev, dialog, "INFO").status == 200
        low = dialog.create_request("INFO", via=peer.via(), cseq=(dialog.local_cseq or 0) - 5)
        assert peer.final_response(peer.request(low, dev.address), 3).status == 500


def test_s8_2_2_1_other_user_404() -> None:
    """With --user, a Request-URI naming another user gets 404; its own user and a URI without user pass."""
    with device(user="bob") as dev, peer_on() as peer:
        assert options(peer, dev).status == 404
        tx = peer.request(peer.build_request("OPTIONS", dev.user_uri("bob")), dev.address)
        assert peer.final_response(tx, 3).status == 200
        tx = peer.request(peer.build_request("OPTIONS", dev.uri), dev.address)
        assert peer.final_response(tx, 3).status == 200


def test_in_dialog_requests_reinvite_491_info_update_message() -> None:
    """re-INVITE gets 200 with an SDP answer (491 while the previous INVITE's 2xx awaits its ACK, §14.2); INFO,
    UPDATE and MESSAGE in the dialog get 200; MESSAGE outside a dialog gets 200."""
    with device() as dev, peer_on() as peer:
        _, _, dialog = establish(peer, dev)
        for method in ("INFO", "UPDATE", "MESSAGE", "OPTIONS"):
            assert in_dialog(peer, dev, dialog, method).status == 200, method
        reinv = dialog.create_request("INVITE", via=peer.via(), body=offer(), content_type=SDP,
                                      contact=f"<{peer.local_uri()}>")
        tx = peer.request(reinv, dev.address)
        r200 = peer.final_response(tx, 3)
        assert r200.status == 200 and r200.sdp is not None and r200.sdp.origin is not None
        assert r200.sdp.origin.sess_version == "1"
        second = dialog.create_request("INVITE", via=peer.via(), body=offer(), content_type=SDP)
        assert peer.final_response(peer.request(second, dev.address), 3).status == 491
        peer.send(dialog.create_ack(reinv, via=peer.via()), dev.address)
        third = dialog.create_request("INVITE", via=peer.via(), body=offer(), content_type=SDP)
        r = peer.final_response(peer.request(third, dev.address), 3)
        assert r.status == 200
        peer.send(dialog.create_ack(third, via=peer.via()), dev.address)
        tx = peer.request(peer.build_request("MESSAGE", dev.user_uri("dut"), body=b"hi", content_type="text/plain"),
                          dev.address)
        assert peer.final_response(tx, 3).status == 200


def _gaps(entries: list[Incoming]) -> list[float]:
    return [round(b.time - a.time, 3) for a, b in zip(entries, entries[1:], strict=False)]


def test_s13_3_1_4_2xx_retransmitted_until_ack() -> None:
    """§13.3.1.4: "The 2xx response is passed to the transport with an interval that starts at T1 seconds and doubles
    for each retransmission until it reaches T2 seconds" and "Response retransmissions cease when an ACK request for
    the response is received"."""
    with device() as dev, peer_on() as peer:
        inv = invite(peer, dev)
        peer.send(inv, dev.address)
        copies = peer.collect(response(200, method="INVITE"), 3, count=5)  # 0, .05, .15, .35, .55
        gaps = _gaps(copies)
        assert len(copies) == 5, gaps
        assert gaps == pytest.approx([0.05, 0.1, 0.2, 0.2], abs=0.03)
        final = copies[0].message
        assert isinstance(final, Response)
        ack, _ = ack_for(peer, inv, final)
        peer.send(ack, dev.address)
        peer.sleep(0.05)
        peer.collect(response(200, method="INVITE"), 0.0)
        peer.expect_nothing(response(200, method="INVITE"), 0.3)


def test_s13_3_1_4_bye_after_64_t1_without_ack() -> None:
    """§13.3.1.4: "If the server retransmits the 2xx response for 64*T1 seconds without receiving an ACK, the dialog is
    confirmed, but the session SHOULD be terminated. This is accomplished with a BYE"."""
    t1 = 0.02
    timers = TimerConfig(t1=t1, t2=0.08, t4=0.1)
    with device(t1=t1, t2=0.08, t4=0.1) as dev, peer_on(timers=timers) as peer:
        inv = invite(peer, dev)
        start = time.monotonic()
        peer.send(inv, dev.address)
        bye = peer.expect(request("BYE", call_id=inv.call_id), 64 * t1 + 2)
        assert time.monotonic() - start >= 64 * t1 - 0.05
        msg = bye.message
        assert isinstance(msg, Request) and msg.to is not None and msg.to.tag == inv.from_.tag  # type: ignore[union-attr]
        peer.respond(bye, build_response(msg, 200))


# -- RFC 3262 ---------------------------------------------------------------------------------------------------------


def _prack(peer: Peer, dialog: Dialog, inv: Request, rel: Response, rseq: int | None = None) -> Request:
    cseq = rel.cseq
    assert cseq is not None
    rack = f"{rseq if rseq is not None else rel.rseq} {cseq.number} {cseq.method}"
    return dialog.create_request("PRACK", via=peer.via(), headers=[("RAck", rack)])


def test_rfc3262_reliable_180_retransmitted_until_prack_then_183_then_200() -> None:
    """RFC 3262 §3: the reliable 180 carries Require: 100rel and an RSeq in 1..2**31-1, is retransmitted at T1,
    2*T1, 4*T1 ... until the PRACK, which gets 200; the next reliable provisional has RSeq + 1; a PRACK matching
    nothing gets 481; the 200 to the INVITE waits for the PRACK of the 180 that carried the SDP answer."""
    with device() as dev, peer_on() as peer:
        inv = invite(peer, dev, headers=[("Supported", "100rel")])
        tx = peer.request(inv, dev.address)
        for _ in range(4):  # 180 at 0, .05, .15, .35: each copy within 3 s, however loaded the machine
            peer.transaction_response(tx, response(180), 3)
        rel = [i for i in tx.responses if isinstance(i.message, Response) and i.message.status == 180][:4]
        assert len(rel) == 4, _gaps(rel)
        assert _gaps(rel) == pytest.approx([0.05, 0.1, 0.2], abs=0.03)
        r180 = rel[0].message
        assert isinstance(r180, Response)
        assert "100rel" in r180.require and r180.rseq is not None and 1 <= r180.rseq <= 2**31 - 1
        assert r180.sdp is not None and not any(
            isinstance(i.message, Response) and i.message.status == 200 for i in tx.responses
        )
        dialog = Dialog.from_response(inv, r180)
        bogus = _prack(peer, dialog, inv, r180, rseq=r180.rseq + 7)
        assert peer.final_response(peer.request(bogus, dev.address), 3).status == 481
        ok = peer.final_response(peer.request(_prack(peer, dialog, inv, r180), dev.address), 3)
        assert ok.status == 200
        r183 = peer.transaction_response(tx, response(183), 3)
        assert r183.rseq == r180.rseq + 1 and "100rel" in r183.require
        assert peer.final_response(peer.request(_prack(peer, dialog, inv, r183), dev.address), 3).status == 200
        final = peer.transaction_response(tx, response(200), 3)
        assert final.status == 200 and not final.body  # the answer went in the reliable 180
        again = peer.final_response(peer.request(_prack(peer, dialog, inv, r183), dev.address), 3)
        assert again.status == 481  # acknowledged already
        dialog.receive_response(final, inv)
        peer.send(dialog.create_ack(inv, via=peer.via()), dev.address)
        assert in_dialog(peer, dev, dialog, "BYE").status == 200


def test_rfc3262_500_after_64_t1_without_prack() -> None:
    """RFC 3262 §3: "If a reliable provisional response is retransmitted for 64*T1 seconds without reception of a
    corresponding PRACK, the UAS SHOULD reject the original request with a 5xx response"."""
    t1 = 0.02
    timers = TimerConfig(t1=t1, t2=0.08, t4=0.1)
    with device(t1=t1, t2=0.08, t4=0.1) as dev, peer_on(timers=timers) as peer:
        tx = peer.request(invite(peer, dev, headers=[("Require", "100rel")]), dev.address)
        final = peer.final_response(tx, 64 * t1 + 2)
        assert final.status == 500


def test_rfc3262_require_100rel_421_when_uac_lacks_it() -> None:
    """RFC 3261 §8.2.4 / RFC 3262: a UAS that requires 100rel answers 421 with Require: 100rel."""
    with device(require_100rel=True) as dev, peer_on() as peer:
        r = peer.final_response(peer.request(invite(peer, dev), dev.address), 3)
        assert r.status == 421 and "100rel" in r.require
        r = peer.transaction_response(
            peer.request(invite(peer, dev, headers=[("Supported", "100rel")]), dev.address), response(180), 3
        )
        assert "100rel" in r.require


# ---------------------------------------------------------------------------------------------------------------------
# Registrar (RFC 3261 §10.3)
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Registration:
    peer: Peer
    dev: Device
    aor: str = "sip:carol@127.0.0.1"
    call_id: str = field(default_factory=lambda: f"{new_tag()}@127.0.0.1")
    from_tag: str = field(default_factory=new_tag)
    cseq: int = 0

    def send(self, *contacts: str, expires: int | None = None, cseq: int | None = None,
             call_id: str | None = None) -> Response:
        self.cseq = cseq if cseq is not None else self.cseq + 1
        headers = [("Expires", str(expires))] if expires is not None else []
        headers += [("Contact", c) for c in contacts[1:]]
        req = self.peer.build_request(
            "REGISTER", self.dev.uri, to=name_addr(self.aor), from_=name_addr(self.aor, tag=self.from_tag),
            call_id=call_id or self.call_id, cseq=self.cseq, contact=contacts[0] if contacts else False,
            headers=headers,
        )
        return self.peer.final_response(self.peer.request(req, self.dev.address), 3)


def _bindings(resp: Response) -> dict[str, int | None]:
    return {c.uri_text: c.expires for c in resp.contact}


def test_s10_3_registrar_add_refresh_query_remove() -> None:
    """§10.3: bindings are added, refreshed and removed per address-of-record; a REGISTER without Contact queries;
    every 200 lists all current bindings with their expires and carries Date."""
    with device(role="registrar") as dev, peer_on() as peer:
        reg = Registration(peer, dev)
        r = reg.send("<sip:carol@192.0.2.1:5999>", expires=120)
        assert r.status == 200 and _bindings(r) == {"sip:carol@192.0.2.1:5999": 120} and r.has_header("Date")
        r = reg.send("<sip:carol@192.0.2.2:5999>;expires=300")
        assert _bindings(r) == {"sip:carol@192.0.2.1:5999": 120, "sip:carol@192.0.2.2:5999": 300}
        r = reg.send("<sip:carol@192.0.2.1:5999>", expires=600)  # refresh
        assert _bindings(r)["sip:carol@192.0.2.1:5999"] == 600
        r = reg.send()  # query
        assert r.status == 200 and len(r.contact) == 2
        r = reg.send("<sip:carol@192.0.2.2:5999>", expires=0)  # remove one
        assert _bindings(r) == {"sip:carol@192.0.2.1:5999": 600}
        r = reg.send("<sip:carol@192.0.2.3:5999>")  # default 3600
        assert _bindings(r)["sip:carol@192.0.2.3:5999"] == 3600
        assert not r.has_header("Record-Route")


def test_s10_3_registrar_423_star_and_out_of_order_500() -> None:
    """§10.3: 423 with Min-Expires for a shorter non-zero expiry; Contact: * only with Expires: 0 and alone (else
    400); a CSeq not above the binding's for the same Call-ID fails with 500; another Call-ID may update."""
    with device(role="registrar", min_expires=60) as dev, peer_on() as peer:
        reg = Registration(peer, dev)
        r = reg.send("<sip:carol@192.0.2.1:5999>", expires=10)
        assert r.status == 423 and r.min_expires == 60
        assert reg.send("<sip:carol@192.0.2.1:5999>", expires=120).status == 200
        assert reg.send("<sip:carol@192.0.2.1:5999>", expires=180, cseq=reg.cseq).status == 500
        assert reg.send("<sip:carol@192.0.2.1:5999>", expires=180, cseq=1, call_id="other@127.0.0.1").status == 200
        assert reg.send("*", expires=10).status == 400
        assert reg.send("*").status == 400
        assert reg.send("*", "<sip:carol@192.0.2.9:5999>", expires=0).status == 400
        r = reg.send("*", expires=0)
        assert r.status == 200 and not r.contact
        assert reg.send().contact == ()


def test_s10_3_bindings_expire_in_loop_time() -> None:
    """A binding is gone once its expiry has passed."""
    with device(role="registrar", min_expires=1) as dev, peer_on() as peer:
        reg = Registration(peer, dev)
        assert _bindings(reg.send("<sip:carol@192.0.2.1:5999>", expires=1)) == {"sip:carol@192.0.2.1:5999": 1}
        peer.sleep(1.1)
        assert reg.send().contact == ()


# ---------------------------------------------------------------------------------------------------------------------
# Proxy (RFC 3261 §16)
# ---------------------------------------------------------------------------------------------------------------------


def _down(bob: Peer) -> str:
    return f"sip:{bob.endpoint().sent_by()}"


def test_s16_proxy_forwards_with_via_record_route_max_forwards_and_back() -> None:
    """§16.6: the copy has Max-Forwards - 1, a Record-Route with lr before the others and a Via of the proxy's with a
    fresh magic-cookie branch and rport; §16.7: responses go back without that Via (no 100 forwarded); the ACK for
    the 2xx and the BYE follow the route set through the proxy."""
    with peer_on(name="bob") as bob:
        with device(role="proxy", next_hop=_down(bob)) as proxy, peer_on() as alice:
            inv = invite(alice, proxy, uri=f"sip:bob@{proxy.address[0]}:{proxy.port}")
            tx = alice.request(inv, proxy.address)
            got = bob.expect(request("INVITE", call_id=inv.call_id), 3)
            fwd = got.message
            assert isinstance(fwd, Request)
            assert fwd.max_forwards == 69 and fwd.uri_text == inv.uri_text
            assert len(fwd.via) == 2 and fwd.via[0].port == proxy.port and fwd.via[0].has_cookie
            assert fwd.via[0].rport is True and fwd.via[1].branch == inv.via[0].branch
            assert fwd.record_route and fwd.record_route[0].uri.lr  # type: ignore[union-attr]
            assert alice.transaction_response(tx, response(100), 3)
            bob.respond(got, build_response(fwd, 180, to_tag="bobtag"))
            r180 = alice.transaction_response(tx, response(180), 3)
            assert len(r180.via) == 1 and r180.via[0].branch == inv.via[0].branch
            ok = build_response(fwd, 200, to_tag="bobtag", contact=f"<{bob.local_uri()}>")
            bob.respond(got, ok)
            final = alice.final_response(tx, 3)
            assert final.status == 200 and final.record_route
            ack, dialog = ack_for(alice, inv, final)
            assert ack.route  # the proxy's Record-Route
            alice.send(ack, proxy.address)
            fack = bob.expect(request("ACK", call_id=inv.call_id), 3).message
            assert isinstance(fack, Request) and not fack.route and fack.max_forwards == 69
            bye = dialog.create_request("BYE", via=alice.via())
            btx = alice.request(bye, proxy.address)
            gbye = bob.expect(request("BYE", call_id=inv.call_id), 3)
            assert isinstance(gbye.message, Request) and not gbye.message.route
            bob.respond(gbye, build_response(gbye.message, 200))
            assert alice.final_response(btx, 3).status == 200


def test_s16_proxy_to_a_second_device_full_call() -> None:
    """A call from the peer through the proxy device to a UAS device: Record-Route copied by the UAS, ACK and BYE
    routed through the proxy."""
    with device(role="uas") as uas, device(role="proxy", next_hop=uas.uri) as proxy, peer_on() as alice:
        inv = invite(alice, proxy, uri=f"sip:dut@127.0.0.1:{proxy.port}")
        tx = alice.request(inv, proxy.address)
        final = alice.final_response(tx, 3)
        assert final.status == 200 and final.record_route
        assert final.record_route[0].uri_text.endswith(f":{proxy.port};transport=udp;lr")
        ack, dialog = ack_for(alice, inv, final)
        alice.send(ack, proxy.address)
        bye = dialog.create_request("BYE", via=alice.via())
        assert alice.final_response(alice.request(bye, proxy.address), 3).status == 200


def test_s16_3_proxy_483_and_482_loop() -> None:
    """§16.3 step 3: Max-Forwards 0 gets 483; step 4: a request that comes back with the proxy's own Via and branch
    hash has looped: 482."""
    with device(role="proxy", next_hop="sip:127.0.0.1:9") as proxy, peer_on() as alice:
        tx = alice.request(invite(alice, proxy, max_forwards=0), proxy.address)
        assert alice.final_response(tx, 3).status == 483
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with device(role="proxy", port=port, next_hop=f"sip:127.0.0.1:{port}") as proxy, peer_on() as alice:
        tx = alice.request(invite(alice, proxy, uri=f"sip:127.0.0.1:{port}"), proxy.address)
        assert alice.final_response(tx, 3).status == 482


def test_s16_10_proxy_cancel_hop_by_hop() -> None:
    """§16.10: the proxy answers the CANCEL with 200 itself and sends a CANCEL downstream; the 487 comes back; the
    proxy ACKs the 487 downstream (hop by hop, §17.1.1.3)."""
    with peer_on(name="bob") as bob, device(role="proxy", next_hop=_down(bob)) as proxy, peer_on() as alice:
        inv = invite(alice, proxy, uri=f"sip:bob@127.0.0.1:{proxy.port}")
        tx = alice.request(inv, proxy.address)
        got = bob.expect(request("INVITE"), 3)
        fwd = got.message
        assert isinstance(fwd, Request)
        bob.respond(got, build_response(fwd, 180, to_tag="bobtag"))
        alice.transaction_response(tx, response(180), 3)
        ctx = alice.request(build_cancel(inv), proxy.address)
        assert alice.final_response(ctx, 3).status == 200
        gc = bob.expect(request("CANCEL"), 3)
        cancel = gc.message
        assert isinstance(cancel, Request) and cancel.via[0].branch == fwd.via[0].branch
        bob.respond(gc, build_response(cancel, 200, to_tag="bobtag"))
        bob.respond(got, build_response(fwd, 487, to_tag="bobtag"))
        assert alice.final_response(tx, 3).status == 487
        ack = bob.expect(request("ACK"), 3).message
        assert isinstance(ack, Request) and ack.via[0].branch == fwd.via[0].branch


def test_s16_proxy_next_hop_unreachable_503_or_408() -> None:
    """§16.7 step 5 / §17.1.4: a next hop that cannot be reached gives 503 (ICMP) or 408 (Timer B, 64*T1)."""
    t1 = 0.02
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    timers = TimerConfig(t1=t1, t2=0.08, t4=0.1)
    with device(role="proxy", next_hop=f"sip:127.0.0.1:{dead}", t1=t1, t2=0.08, t4=0.1) as proxy, \
            peer_on(timers=timers) as alice:
        tx = alice.request(invite(alice, proxy, uri=f"sip:bob@127.0.0.1:{proxy.port}"), proxy.address)
        assert alice.final_response(tx, 64 * t1 + 2).status in (408, 503)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with device(role="proxy", transport="tcp", next_hop=f"sip:127.0.0.1:{dead};transport=tcp") as proxy, \
            peer_on("tcp") as alice:
        tx = alice.request(invite(alice, proxy, uri=f"sip:bob@127.0.0.1:{proxy.port}"), proxy.address)
        assert alice.final_response(tx, 3).status == 503


def test_s16_4_proxy_strict_route_preprocessing() -> None:
    """§16.4: a request whose Request-URI is the proxy (a strict router's doing) gets the last Route as its
    Request-URI."""
    with peer_on(name="bob") as bob, device(role="proxy") as proxy, peer_on() as alice:
        target = f"sip:bob@{bob.endpoint().sent_by()}"
        req = alice.build_request("OPTIONS", f"sip:127.0.0.1:{proxy.port}", route=[f"<{target}>"])
        alice.request(req, proxy.address)
        got = bob.expect(request("OPTIONS"), 3).message
        assert isinstance(got, Request) and got.uri_text == target and not got.route


def test_s16_proxy_routes_to_its_own_registrar_bindings() -> None:
    """A proxy that also registers routes a Request-URI of its domain to the bound Contact."""
    with peer_on(name="bob") as bob, device(role="proxy") as proxy, peer_on() as alice:
        reg = Registration(bob, proxy, aor=f"sip:bob@127.0.0.1:{proxy.port}")
        r = reg.send(f"<{bob.local_uri()}>", expires=300)
        assert r.status == 200 and len(r.contact) == 1
        alice.request(invite(alice, proxy, uri=f"sip:bob@127.0.0.1:{proxy.port}"), proxy.address)
        got = bob.expect(request("INVITE"), 3).message
        assert isinstance(got, Request) and got.uri_text == bob.local_uri()


# ---------------------------------------------------------------------------------------------------------------------
# UAC (RFC 3261 §13.2, §9.1; RFC 3262 §4)
# ---------------------------------------------------------------------------------------------------------------------


def test_s13_2_uac_places_call_prack_ack_bye() -> None:
    """The device calls the peer: INVITE with an SDP offer, Supported: 100rel, Allow, Contact; a PRACK for the
    reliable 180 (RAck = RSeq, CSeq, method); an ACK for the 2xx with a new branch and the INVITE's CSeq; a BYE."""
    with peer_on(name="bob") as bob, device(role="uac", call=f"sip:bob@{bob.endpoint().sent_by()}") as dev:
        got = bob.expect(request("INVITE"), 3)
        inv = got.message
        assert isinstance(inv, Request) and inv.sdp is not None and "100rel" in inv.supported and inv.contact
        assert inv.max_forwards == 70 and inv.via[0].has_cookie and inv.from_.tag  # type: ignore[union-attr]
        r180 = build_response(inv, 180, to_tag="bobtag", contact=f"<{bob.local_uri()}>",
                              headers=[("Require", "100rel"), ("RSeq", "41")])
        bob.respond(got, r180)
        pr = bob.expect(request("PRACK"), 3)
        prack = pr.message
        assert isinstance(prack, Request) and str(prack.rack) == f"41 {inv.cseq.number} INVITE"  # type: ignore[union-attr]
        bob.respond(pr, build_response(prack, 200))
        bob.respond(got, build_response(inv, 200, to_tag="bobtag", contact=f"<{bob.local_uri()}>",
                                        body=build_sdp("127.0.0.1", 5004), content_type=SDP))
        ack = bob.expect(request("ACK"), 3).message
        assert isinstance(ack, Request) and ack.cseq.number == inv.cseq.number  # type: ignore[union-attr]
        assert ack.via[0].branch != inv.via[0].branch and ack.to.tag == "bobtag"  # type: ignore[union-attr]
        assert dev.command("status").startswith("OK") and "uac=confirmed" in dev.command("status")
        assert dev.command("bye") == "OK BYE sent"
        gb = bob.expect(request("BYE"), 3)
        assert isinstance(gb.message, Request) and gb.message.cseq.number == prack.cseq.number + 1  # type: ignore[union-attr]
        bob.respond(gb, build_response(gb.message, 200))


def test_s9_1_uac_cancel_over_the_control_port() -> None:
    """The control port: 'call <uri>' places a call, 'cancel' sends a CANCEL once a provisional arrived (§9.1); the
    487 is ACKed by the transaction."""
    with peer_on(name="bob") as bob, device(role="uac", control_port=0) as dev:
        assert dev.control_port
        with socket.create_connection(("127.0.0.1", dev.control_port), timeout=3) as ctl:
            f = ctl.makefile("rw", encoding="utf-8", newline="\n")
            f.write(f"call sip:bob@{bob.endpoint().sent_by()}\n")
            f.flush()
            assert f.readline().startswith("OK calling")
            got = bob.expect(request("INVITE"), 3)
            inv = got.message
            assert isinstance(inv, Request)
            f.write("cancel\n")
            f.flush()
            assert "waits" in f.readline()
            bob.respond(got, build_response(inv, 180, to_tag="bobtag"))
            gc = bob.expect(request("CANCEL"), 3)
            assert isinstance(gc.message, Request) and gc.message.via[0].branch == inv.via[0].branch
            bob.respond(gc, build_response(gc.message, 200, to_tag="bobtag"))
            bob.respond(got, build_response(inv, 487, to_tag="bobtag"))
            ack = bob.expect(request("ACK"), 3).message
            assert isinstance(ack, Request) and ack.via[0].branch == inv.via[0].branch
            f.write("status\n")
            f.flush()
            assert "uac=cancelled" in f.readline()


# ---------------------------------------------------------------------------------------------------------------------
# The fault switches: each changes exactly what it names
# ---------------------------------------------------------------------------------------------------------------------

#: Scenarios are short; a step that a faulty device breaks just times out quickly.
STEP = 0.5
JUDGE = Context(t1=T1, t2=T2, response_wait=0.3)


@dataclass
class Run:
    """What one scenario saw: the rule ids the catalogue found in the peer's trace, and observations."""

    findings: set[str]
    info: dict[str, Any]
    messages: list[str]
    trace: Any = None


def _quiet(fn: Callable[[], Any]) -> Any:
    """A scenario step that a faulty device may break: its failure is an observation, not an error."""
    from conformance.sip import BuildError
    from conformance.sip.state import DialogError

    try:
        return fn()
    except (ExpectationFailed, DialogError, BuildError, TimeoutError, AssertionError, TypeError, AttributeError):
        return None


def _final(peer: Peer, req: Request, to: tuple[str, int], timeout: float = STEP) -> Response | None:
    tx = peer.request(req, to)
    return _quiet(lambda: peer.final_response(tx, timeout))


def _statuses(peer: Peer, req: Request, to: tuple[str, int], wait: float = STEP) -> list[int]:
    tx = peer.request(req, to)
    _quiet(lambda: peer.final_response(tx, wait))
    return [i.message.status for i in tx.responses if isinstance(i.message, Response)]


def _rport_via(peer: Peer) -> str:
    return f"SIP/2.0/{peer.endpoint().via_transport} localhost:{peer.endpoint().local[1]};branch={new_branch()};rport"


def sc_basic(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    """OPTIONS, a call with Record-Route and Timestamp (INFO in it, ACK, BYE), the §8.2 rejections, and an OPTIONS
    without To (400)."""
    uri = dev.user_uri("dut")
    opts = peer.build_request("OPTIONS", uri, headers=[("Timestamp", "7")]).with_header("Via", _rport_via(peer))
    assert isinstance(opts, Request)
    info["options"] = _final(peer, opts, dev.address)
    inv = invite(peer, dev, headers=[("Record-Route", "<sip:rr.invalid;lr>"), ("Timestamp", "8")])
    tx = peer.request(inv, dev.address)
    final = _quiet(lambda: peer.final_response(tx, STEP))
    info["invite"] = [i.message for i in tx.responses]
    if final is not None and final.status == 200:
        dialog = _quiet(lambda: Dialog.from_response(inv, final))
        if dialog is not None:
            peer.send(dialog.create_ack(inv, via=peer.via()), dev.address)
            peer.sleep(0.05)
            info["info"] = _final(peer, dialog.create_request("INFO", via=peer.via()), dev.address)
            info["bye"] = _final(peer, dialog.create_request("BYE", via=peer.via()), dev.address)
    info["405"] = _final(peer, peer.build_request("REGISTER", dev.uri), dev.address)
    info["420"] = _final(peer, peer.build_request("OPTIONS", uri, headers=[("Require", "foo")]), dev.address)
    info["415"] = _final(peer, peer.build_request("MESSAGE", uri, body=b"<p/>", content_type="text/html"), dev.address)
    info["416"] = _final(peer, peer.build_request("OPTIONS", "tel:+15550100"), dev.address)
    info["481"] = _final(peer, peer.build_request("BYE", uri), dev.address)
    peer.send(raw_request(peer, dev, uri, version="SIP/3.0"), dev.address)
    got = _quiet(lambda: peer.expect(response(call_id=None), STEP))
    info["505"] = got.message if got is not None else None
    no_to = peer.build_request("OPTIONS", uri)
    peer.send(b"".join(line for line in bytes(no_to).splitlines(keepends=True) if not line.startswith(b"To:")),
              dev.address)
    got = _quiet(lambda: peer.expect(response(call_id=no_to.call_id), STEP))
    info["400"] = got.message if got is not None else None


def sc_retransmit(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    """An INVITE and an OPTIONS each sent twice on the raw path; the 2xx left unACKed for a while."""
    inv = invite(peer, dev)
    peer.send(inv, dev.address)
    _quiet(lambda: peer.expect(response(180, call_id=inv.call_id), STEP))
    peer.send(inv, dev.address)
    peer.sleep(0.3)
    twoxx = peer.collect(response(200, call_id=inv.call_id), 0.0)
    info["2xx copies"] = len(twoxx)
    if twoxx:
        final = twoxx[0].message
        assert isinstance(final, Response)
        _quiet(lambda: peer.send(ack_for(peer, inv, final)[0], dev.address))
    opts = peer.build_request("OPTIONS", dev.user_uri("dut"))
    peer.send(opts, dev.address)
    peer.sleep(0.05)
    peer.send(opts, dev.address)
    peer.sleep(0.35)
    info["options answers"] = [i.message.status for i in peer.collect(response(call_id=opts.call_id), 0.0)
                               if isinstance(i.message, Response)]
    info["invite answers"] = [i.message.status for i in peer.collect(response(call_id=inv.call_id), 0.0)
                              if isinstance(i.message, Response)]
    _final(peer, peer.build_request("OPTIONS", dev.user_uri("dut")), dev.address)  # marks the end of the trace


def sc_invite_retransmit(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    """An INVITE retransmitted while ringing (ring time 5 s): the 180 again; the trace ends before any final."""
    inv = invite(peer, dev)
    peer.send(inv, dev.address)
    _quiet(lambda: peer.expect(response(180, call_id=inv.call_id), STEP))
    peer.send(inv, dev.address)
    peer.sleep(0.35)
    info["180s"] = len(peer.collect(response(180, call_id=inv.call_id), 0.0)) + 1
    _final(peer, peer.build_request("OPTIONS", dev.user_uri("dut")), dev.address)


def sc_no_ack(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    """A 2xx never ACKed: 64*T1 later the device ends the session with BYE."""
    inv = invite(peer, dev)
    peer.send(inv, dev.address)
    got = _quiet(lambda: peer.expect(request("BYE", call_id=inv.call_id), 64 * 0.01 + 0.5))
    info["bye"] = got is not None
    if got is not None:
        assert isinstance(got.message, Request)
        peer.respond(got, build_response(got.message, 200))


def sc_ack(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    establish(peer, dev)
    peer.sleep(0.1)


def sc_cancel(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    """A pending INVITE cancelled (ring time 0.3 s)."""
    inv = invite(peer, dev)
    tx = peer.request(inv, dev.address)
    _quiet(lambda: peer.transaction_response(tx, response(180), STEP))
    ctx = peer.request(build_cancel(inv), dev.address)
    cancel = _quiet(lambda: peer.final_response(ctx, 0.6))
    info["cancel"] = cancel.status if cancel is not None else None
    final = _quiet(lambda: peer.final_response(tx, 0.6))
    info["invite"] = final.status if final is not None else None
    peer.sleep(0.1)


def sc_dialog_errors(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    """A merged INVITE (§8.2.2.2) and an in-dialog request with a lower CSeq (§12.2.2)."""
    inv = invite(peer, dev)
    tx = peer.request(inv, dev.address)
    _quiet(lambda: peer.transaction_response(tx, response(180), STEP))
    merged = inv.with_header("Via", peer.via())
    assert isinstance(merged, Request)
    info["merged"] = _statuses(peer, merged, dev.address, 0.2)
    _final(peer, build_cancel(inv), dev.address)
    _quiet(lambda: peer.final_response(tx, STEP))
    _, _, dialog = establish(peer, dev)
    _final(peer, dialog.create_request("INFO", via=peer.via()), dev.address)
    low = dialog.create_request("INFO", via=peer.via(), cseq=(dialog.local_cseq or 0) - 5)
    got = _final(peer, low, dev.address)
    info["low cseq"] = got.status if got is not None else None


def sc_prack(dev: Device, peer: Peer, info: dict[str, Any], require: bool = False) -> None:
    """100rel: the reliable 180 (retransmitted for 0.25 s), PRACK, the reliable 183, PRACK, a PRACK matching
    nothing, the 200, ACK."""
    headers = [("Supported", "100rel")] + ([("Require", "100rel")] if require else [])
    inv = invite(peer, dev, headers=headers)
    tx = peer.request(inv, dev.address)
    peer.sleep(0.25)
    provisionals = [m for i in tx.responses if isinstance(m := i.message, Response) and 100 < m.status < 200]
    info["provisionals"] = provisionals
    dialog = None
    for rel in list(dict.fromkeys(provisionals)):
        if rel.status != 180 or rseq_of(rel) is None:
            continue
        dialog = _quiet(lambda r=rel: Dialog.from_response(inv, r))
        prack = _quiet(lambda r=rel, d=dialog: _prack(peer, d, inv, r, rseq_of(r))) if dialog is not None else None
        if prack is not None:
            info["prack 180"] = _final(peer, prack, dev.address)
            peer.sleep(0.2)
        break
    r183 = _quiet(lambda: peer.transaction_response(tx, response(183), 0.3))
    if r183 is not None and dialog is not None and rseq_of(r183) is not None:
        prack = _quiet(lambda: _prack(peer, dialog, inv, r183, rseq_of(r183)))
        if prack is not None:
            info["prack 183"] = _final(peer, prack, dev.address)
    if dialog is not None:
        bogus = _prack(peer, dialog, inv, provisionals[0], 77)
        got = _final(peer, bogus, dev.address)
        info["bogus prack"] = got.status if got is not None else None
    final = _quiet(lambda: peer.final_response(tx, STEP))
    if final is not None and final.status == 200:
        _quiet(lambda: peer.send(ack_for(peer, inv, final)[0], dev.address))
    peer.sleep(0.1)


def sc_prack_required(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    sc_prack(dev, peer, info, require=True)


def sc_421(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    got = _final(peer, invite(peer, dev), dev.address)
    info["421"] = got


def sc_register(dev: Device, peer: Peer, info: dict[str, Any]) -> None:
    reg = Registration(peer, dev)
    reg.peer = peer

    def send(*args: Any, **kwargs: Any) -> Response | None:
        return _quiet(lambda: reg.send(*args, **kwargs))

    info["add"] = send("<sip:carol@192.0.2.1:5999>", expires=120)
    info["query"] = send()
    info["short"] = send("<sip:carol@192.0.2.2:5999>", expires=10)
    info["star10"] = send("*", expires=10)
    info["stale"] = send("<sip:carol@192.0.2.1:5999>", expires=120, cseq=1)
    info["star0"] = send("*", expires=0, cseq=10)


def _bob_answer(bob: Peer, *, reliable: bool = True, delay: float = 0.0, status: int = 200,
                info: dict[str, Any]) -> None:
    """The peer as the UAS the device calls: (reliable) 180, PRACK answered, final ``status``."""
    got = bob.expect(request("INVITE"), 3)
    inv = got.message
    assert isinstance(inv, Request)
    info["invite"] = inv
    if delay:
        bob.sleep(delay)
    info["invites"] = 1 + len(bob.collect(request("INVITE", call_id=inv.call_id), 0.0))
    if status >= 300:
        bob.respond(got, build_response(inv, status, to_tag="bobtag"))
        ack = _quiet(lambda: bob.expect(request("ACK"), STEP))
        info["ack"] = ack.message if ack is not None else None
        return
    headers = [("Require", "100rel"), ("RSeq", "41")] if reliable else []
    bob.respond(got, build_response(inv, 180, to_tag="bobtag", contact=f"<{bob.local_uri()}>", headers=headers))
    if reliable:
        pr = _quiet(lambda: bob.expect(request("PRACK"), STEP))
        if pr is not None and isinstance(pr.message, Request):
            bob.respond(pr, build_response(pr.message, 200))
    bob.respond(got, build_response(inv, 200, to_tag="bobtag", contact=f"<{bob.local_uri()}>",
                                    body=build_sdp("127.0.0.1", 5004), content_type=SDP))
    ack = _quiet(lambda: bob.expect(request("ACK"), STEP))
    info["ack"] = ack.message if ack is not None else None


def _end_mark(dev: Device, bob: Peer) -> None:
    """Let the judging windows pass, then one more exchange marks the end of the trace."""
    bob.sleep(0.35)
    _final(bob, bob.build_request("OPTIONS", dev.user_uri("dut")), dev.address)


def sc_uac(dev: Device, bob: Peer, info: dict[str, Any]) -> None:
    dev.command(f"call sip:bob@{bob.endpoint().sent_by()}")
    _bob_answer(bob, delay=0.2, info=info)
    bob.sleep(0.05)
    dev.command("bye")
    gb = _quiet(lambda: bob.expect(request("BYE"), STEP))
    if gb is not None and isinstance(gb.message, Request):
        bob.respond(gb, build_response(gb.message, 200))
    _end_mark(dev, bob)


def sc_uac_reject(dev: Device, bob: Peer, info: dict[str, Any]) -> None:
    dev.command(f"call sip:bob@{bob.endpoint().sent_by()}")
    _bob_answer(bob, status=486, info=info)
    _end_mark(dev, bob)


def sc_uac_cancel(dev: Device, bob: Peer, info: dict[str, Any]) -> None:
    dev.command(f"call sip:bob@{bob.endpoint().sent_by()}")
    got = bob.expect(request("INVITE"), 3)
    inv = got.message
    assert isinstance(inv, Request)
    dev.command("cancel")
    bob.sleep(0.1)
    bob.respond(got, build_response(inv, 180, to_tag="bobtag"))
    gc = _quiet(lambda: bob.expect(request("CANCEL"), STEP))
    if gc is not None and isinstance(gc.message, Request):
        info["cancel"] = gc.message
        bob.respond(gc, build_response(gc.message, 200, to_tag="bobtag"))
    bob.respond(got, build_response(inv, 487, to_tag="bobtag"))
    _quiet(lambda: bob.expect(request("ACK"), STEP))
    _end_mark(dev, bob)


@dataclass(frozen=True)
class Scenario:
    script: Callable[[Device, Peer, dict[str, Any]], None]
    device: tuple[tuple[str, Any], ...] = ()
    transport: str = "udp"
    #: The device calls the peer (its trace is judged from the peer's side all the same).
    uac: bool = False


SCENARIOS: dict[str, Scenario] = {
    "basic": Scenario(sc_basic),
    "basic-tls": Scenario(sc_basic, transport="tls"),
    "basic-tcp": Scenario(sc_basic, transport="tcp"),
    "retransmit": Scenario(sc_retransmit),
    "invite-retransmit": Scenario(sc_invite_retransmit, (("ring_time", 5.0),)),
    "no-ack": Scenario(sc_no_ack, (("t1", 0.01), ("t2", 0.04))),
    "ack": Scenario(sc_ack),
    "cancel": Scenario(sc_cancel, (("ring_time", 0.3),)),
    "dialog-errors": Scenario(sc_dialog_errors, (("ring_time", 0.3),)),
    "prack": Scenario(sc_prack),
    "prack-required": Scenario(sc_prack_required),
    "421": Scenario(sc_421, (("require_100rel", True),)),
    "register": Scenario(sc_register, (("role", "registrar"),)),
    "uac": Scenario(sc_uac, (("role", "uac"),), uac=True),
    "uac-tcp": Scenario(sc_uac, (("role", "uac"),), transport="tcp", uac=True),
    "uac-reject": Scenario(sc_uac_reject, (("role", "uac"),), uac=True),
    "uac-cancel": Scenario(sc_uac_cancel, (("role", "uac"),), uac=True),
}


def run_scenario(name: str, faults: tuple[str, ...] = ()) -> Run:
    sc = SCENARIOS[name]
    timers = dict(sc.device)
    t1 = timers.get("t1", T1)
    peer_timers = TimerConfig(t1=t1, t2=timers.get("t2", T2), t4=T4)
    info: dict[str, Any] = {}
    with device(transport=sc.transport, faults=faults, **dict(sc.device)) as dev, \
            peer_on(sc.transport, timers=peer_timers, name="bob" if sc.uac else "alice") as peer:
        sc.script(dev, peer, info)
        trace = peer.trace
    judge = Context(t1=t1, t2=timers.get("t2", T2), response_wait=0.3)
    findings = {f.rule_id for f in check_trace(trace, judge)}
    messages = [str(e.summary) for e in trace.messages("received")]
    return Run(findings, info, messages, trace)


_BASELINES: dict[str, Run] = {}


def baseline(name: str) -> Run:
    if name not in _BASELINES:
        _BASELINES[name] = run_scenario(name)
    return _BASELINES[name]


def _status(resp: Any) -> int | None:
    return resp.status if isinstance(resp, Response) else None


Check = Callable[[Run, Run], None]


def _changed(key: str, clean_value: Any, bad_value: Any) -> Check:
    def check(clean: Run, bad: Run) -> None:
        assert clean.info.get(key) == clean_value, (key, clean.info.get(key))
        assert bad.info.get(key) == bad_value, (key, bad.info.get(key))

    return check


def _status_changed(key: str, clean_status: int, bad_status: int | None) -> Check:
    def check(clean: Run, bad: Run) -> None:
        assert _status(clean.info.get(key)) == clean_status, (key, clean.info.get(key))
        assert _status(bad.info.get(key)) == bad_status, (key, bad.info.get(key))

    return check


def _cseq_method_judged_directly(clean: Run, bad: Run) -> None:
    """The trace engine pairs a response with its request by branch *and CSeq method* (§17.1.3), so a response whose
    CSeq method was changed pairs with nothing and escapes the trace rules; the message rule, given the request,
    judges it."""
    rule = get_rule("3261-8.2.6.2-cseq-copied")
    sent = {e.message.transaction_branch: e.message for e in bad.trace.messages("sent") if isinstance(e.message, Request)}
    findings = []
    for e in bad.trace.messages("received"):
        msg = e.message
        if isinstance(msg, Response) and msg.cseq is not None and msg.cseq.method.islower():
            req = sent.get(msg.transaction_branch)
            assert req is not None
            findings += rule.check(msg, Context(request=req))
    assert findings, "no response with a changed CSeq method"


#: Faults whose rule the trace engine cannot see (see the check); their check runs the message rule directly.
DIRECT = {"cseq-method-wrong"}

#: fault -> (scenario, explicit check or None). Faults without catalogue rules must have an explicit check.
FAULT_CASES: dict[str, tuple[str, Check | None]] = {
    "no-to-tag": ("basic", None),
    "unstable-to-tag": ("basic", None),
    "trying-to-tag": ("basic", None),
    "to-uri-changed": ("basic", None),
    "to-changed": ("basic", None),
    "from-changed": ("basic", None),
    "call-id-changed": ("basic", None),
    "cseq-method-wrong": ("basic", _cseq_method_judged_directly),
    "cseq-number-wrong": ("basic", None),
    "wrong-via": ("basic", None),
    "via-count": ("basic", None),
    "no-received": ("basic", None),
    "no-rport": ("basic", None),
    "no-allow-405": ("basic", None),
    "no-unsupported-420": ("basic", None),
    "no-accept-415": ("basic", None),
    "no-require-421": ("421", None),
    "require-unsupported": ("basic", None),
    "no-contact-2xx": ("basic", None),
    "no-contact-1xx": ("basic", None),
    "contact-not-sip": ("basic", None),
    "contact-not-sips": ("basic-tls", None),
    "record-route-not-copied": ("basic", None),
    "no-allow-supported-2xx": ("basic", None),
    "options-no-capabilities": ("basic", None),
    "allow-incomplete": ("basic", None),
    "provisional-non-invite": ("basic", None),
    "no-timestamp-100": ("basic", None),
    "content-length-wrong": ("basic", None),
    "no-content-length": ("basic-tcp", None),
    "no-content-type": ("basic", None),
    "syntax-error": ("basic", None),
    "syntax-minor": ("basic", None),
    "weak-tags": ("basic", None),
    "fixed-tag": ("basic", None),
    "no-provisional-retransmit": ("invite-retransmit", None),
    "no-response-retransmit": ("retransmit", None),
    "final-response-unstable": ("retransmit", None),
    "answer-ack": ("ack", None),
    "no-2xx-retransmit": ("retransmit", None),
    "no-bye-after-ack-timeout": ("no-ack", _changed("bye", True, False)),
    "cancel-no-487": ("cancel", _changed("invite", 487, 200)),
    "cancel-no-200": ("cancel", _changed("cancel", 200, None)),
    "cancel-481-always": ("cancel", _changed("cancel", 200, 481)),
    "cancel-to-tag-differs": ("cancel", None),
    "no-481": ("basic", _status_changed("481", 481, 200)),
    "info-481": ("basic", _status_changed("info", 200, 481)),
    "no-482": ("dialog-errors", lambda clean, bad: (482 in clean.info["merged"] and 482 not in bad.info["merged"]
                                                   and 180 in bad.info["merged"]) or pytest.fail(str(bad.info))),
    "no-416": ("basic", _status_changed("416", 416, 200)),
    "no-505": ("basic", lambda clean, bad: (_status(clean.info["505"]) == 505 and _status(bad.info["505"]) == 200)
               or pytest.fail(str(bad.info["505"]))),
    "malformed-silent": ("basic", _status_changed("400", 400, None)),
    "no-420": ("basic", _status_changed("420", 420, 200)),
    "no-500-dialog-cseq": ("dialog-errors", _changed("low cseq", 500, 200)),
    "prack-no-rseq": ("prack", None),
    "prack-no-require": ("prack", None),
    "rseq-skip": ("prack", None),
    "rseq-restart": ("prack", None),
    "rseq-zero": ("prack", None),
    "rseq-high": ("prack", None),
    "prack-not-retransmitted": ("prack", None),
    "retransmit-after-prack": ("prack", None),
    "prack-481-never": ("prack", None),
    "200-before-prack": ("prack", None),
    "second-before-prack": ("prack", None),
    "reliable-100": ("prack", None),
    "reliable-unasked": ("basic", None),
    "unreliable-when-required": ("prack-required", None),
    "no-min-expires-423": ("register", None),
    "no-423": ("register", _status_changed("short", 423, 200)),
    "star-accepted": ("register", _status_changed("star10", 400, 200)),
    "no-500-cseq": ("register", _status_changed("stale", 500, 200)),
    "register-6xx": ("register", None),
    "register-record-route": ("register", None),
    "no-contact-expires": ("register", None),
    "bindings-not-listed": ("register", None),
    "branch-no-cookie": ("uac", None),
    "uac-no-max-forwards": ("uac", None),
    "uac-max-forwards-10": ("uac", None),
    "uac-no-from-tag": ("uac", None),
    "uac-to-tag": ("uac", None),
    "uac-no-contact": ("uac", None),
    "uac-no-allow": ("uac", None),
    "uac-no-supported": ("uac", None),
    "no-invite-retransmit": ("uac", None),
    "retransmit-on-reliable": ("uac-tcp", None),
    "no-ack-2xx": ("uac", None),
    "ack-cseq-wrong": ("uac", None),
    "ack-same-branch": ("uac", None),
    "no-ack-non2xx": ("uac-reject", None),
    "ack-non2xx-wrong-to": ("uac-reject", None),
    "bye-cseq-skip": ("uac", None),
    "bye-no-to-tag": ("uac", None),
    "bye-with-contact": ("uac", None),
    "cancel-early": ("uac-cancel", None),
    "cancel-with-require": ("uac-cancel", None),
    "cancel-two-vias": ("uac-cancel", None),
    "cancel-wrong-branch": ("uac-cancel", None),
}
PROXY_FAULTS = ("max-forwards-not-decremented", "no-483", "no-record-route", "no-loop-detection", "proxy-keeps-via",
                "proxy-no-cancel-forward")
CONFORMANCE = [f.name for f in FAULT_TABLE if f.kind == "conformance"]


def test_fault_table_is_complete_and_documented() -> None:
    """Every fault names existing catalogue rules (or a section and sentence), valid roles, and has a test case; the
    docs carry the generated table; --list-faults and unknown names behave."""
    from conformance.dut import ROLES

    for f in FAULT_TABLE:
        for rule_id in f.rules:
            get_rule(rule_id)  # KeyError for an id the catalogue does not have
        assert f.rules or (f.section and f.sentence), f.name
        assert set(f.roles) <= set(ROLES) and f.summary
    assert set(CONFORMANCE) == set(FAULT_CASES) | set(PROXY_FAULTS)
    assert DOCS_PATH.read_text(encoding="utf-8") == reference_device_markdown(), "run python -m conformance.dut --write-docs"
    text = faults_text()
    assert all(f.name in text for f in FAULT_TABLE)
    with pytest.raises(UnknownFault, match="valid choices: no-to-tag"):
        DeviceConfig(faults=frozenset({"bogus"}))
    with pytest.raises(ValueError, match="valid choices: uas, uac, registrar, proxy"):
        DeviceConfig(role="b2bua")


@pytest.mark.parametrize("fault", sorted(FAULT_CASES))
def test_fault_switch_breaks_exactly_its_rule(fault: str) -> None:
    """With the fault on, the catalogue finds in the peer's trace what it did not find without: exactly (a subset of)
    the rules the fault names, and at least one; faults without rules show their change directly."""
    scenario, check = FAULT_CASES[fault]
    clean = baseline(scenario)
    bad = run_scenario(scenario, (fault,))
    new = bad.findings - clean.findings
    rules = set(FAULTS[fault].rules)
    assert new <= rules, f"{fault} also broke {sorted(new - rules)}; device sent: {bad.messages}"
    if rules and fault not in DIRECT:
        assert new, f"{fault} broke none of {sorted(rules)}; device sent: {bad.messages}"
    if check is not None:
        check(clean, bad)
    assert check is not None or rules, f"{fault} has neither rules nor an explicit check"


def _proxy_observation(fault: str, faults: tuple[str, ...]) -> Any:
    """What the proxy fault changes, observed through a proxy between the peer alice and the peer bob."""
    with peer_on(name="bob") as bob:
        down = _down(bob)
        if fault == "no-loop-detection":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            with device(role="proxy", port=port, next_hop=f"sip:127.0.0.1:{port}", faults=faults) as proxy, \
                    peer_on() as alice:
                tx = alice.request(invite(alice, proxy, uri=f"sip:127.0.0.1:{port}"), proxy.address)
                return alice.final_response(tx, 5).status
        with device(role="proxy", next_hop=down, faults=faults) as proxy, peer_on() as alice:
            inv = invite(alice, proxy, uri=f"sip:bob@127.0.0.1:{proxy.port}",
                         max_forwards=0 if fault == "no-483" else 70)
            tx = alice.request(inv, proxy.address)
            if fault == "no-483":
                got = _quiet(lambda: bob.expect(request("INVITE"), 0.3))
                final = _quiet(lambda: alice.final_response(tx, 0.3))
                return "forwarded" if got is not None else final.status if final is not None else None
            got = bob.expect(request("INVITE"), 3)
            fwd = got.message
            assert isinstance(fwd, Request)
            if fault == "max-forwards-not-decremented":
                return fwd.max_forwards
            if fault == "no-record-route":
                return len(fwd.record_route)
            bob.respond(got, build_response(fwd, 180, to_tag="bobtag"))
            if fault == "proxy-keeps-via":
                alice.sleep(0.2)
                r180 = [e.message for e in alice.trace.messages("received")
                        if isinstance(e.message, Response) and e.message.status == 180]
                return len(r180[0].via) if r180 else None
            alice.transaction_response(tx, response(180), 3)
            alice.request(build_cancel(inv), proxy.address)
            return _quiet(lambda: bob.expect(request("CANCEL"), 0.3)) is not None


#: proxy fault -> (what the correct proxy shows, what the faulty one shows)
PROXY_EXPECT: dict[str, tuple[Any, Any]] = {
    "max-forwards-not-decremented": (69, 70),
    "no-483": (483, "forwarded"),
    "no-record-route": (1, 0),
    "no-loop-detection": (482, 483),
    "proxy-keeps-via": (1, 2),
    "proxy-no-cancel-forward": (True, False),
}


@pytest.mark.parametrize("fault", PROXY_FAULTS)
def test_proxy_fault_switch_changes_what_it_names(fault: str) -> None:
    """§16.3, §16.6, §16.7, §16.10: each proxy fault changes the one thing its section requires."""
    clean, faulty = PROXY_EXPECT[fault]
    assert _proxy_observation(fault, ()) == clean
    assert _proxy_observation(fault, (fault,)) == faulty


# ---------------------------------------------------------------------------------------------------------------------
# sipcert dut: the process, its READY line, signals, usage errors, robustness faults
# ---------------------------------------------------------------------------------------------------------------------


def _sipcert(*args: str) -> list[str]:
    return [sys.executable, "-m", "conformance.cli", *args]


@contextlib.contextmanager
def dut_process(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``sipcert dut ARGS`` started, its READY line read (bounded), killed at the end whatever happened."""
    def no_core_dumps() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    proc = subprocess.Popen(_sipcert("dut", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=no_core_dumps)
    try:
        assert proc.stdout is not None
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(15):
            raise AssertionError("no READY line within 15 s")
        line = proc.stdout.readline().decode()
        assert line.startswith("READY "), (line, proc.stderr.read() if proc.poll() is not None else b"")  # type: ignore[union-attr]
        yield proc, int(line.split()[1])
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_sipcert_dut_ready_line_and_sigterm_exit_0() -> None:
    """``sipcert dut`` prints exactly one line, ``READY <port>``, answers on that port, and exits 0 on SIGTERM."""
    with dut_process("--role", "uas", "--transport", "udp", "--port", "0") as (proc, port), peer_on() as peer:
        assert 0 < port < 65536
        tx = peer.request(peer.build_request("OPTIONS", f"sip:dut@127.0.0.1:{port}"), ("127.0.0.1", port))
        assert peer.final_response(tx, 3).status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout is not None and proc.stdout.read() == b""  # nothing after the READY line
        assert proc.stderr is not None and b"OPTIONS" in proc.stderr.read()  # the log went to stderr


def test_sipcert_dut_control_port_line_and_sigint() -> None:
    with dut_process("--role", "uac", "--control-port", "0") as (proc, port):
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("CONTROL ")
        with socket.create_connection(("127.0.0.1", int(line.split()[1])), timeout=3) as ctl:
            ctl.sendall(b"status\n")
            assert ctl.makefile().readline().startswith("OK role=uac")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("--role", "b2bua"), ("uas", "uac", "registrar", "proxy")),
        (("--transport", "sctp"), ("udp", "tcp", "tls", "ws", "wss")),
        (("--fault", "no-such-fault"), ("no-to-tag", "crash-long-user")),
        (("--port", "70000"), ("65535",)),
        (("--t1-ms", "0"), ("positive",)),
    ],
)
def test_sipcert_dut_usage_errors_name_the_valid_choices(args: tuple[str, ...], names: tuple[str, ...]) -> None:
    done = subprocess.run(_sipcert("dut", *args), capture_output=True, timeout=30)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert all(n in err for n in names), err


def test_sipcert_dut_list_faults() -> None:
    done = subprocess.run(_sipcert("dut", "--list-faults"), capture_output=True, timeout=30)
    assert done.returncode == 0
    out = done.stdout.decode()
    assert all(f.name in out for f in FAULT_TABLE) and "3261-8.2.6.2-to-tag" in out


def _alive(peer: Peer, port: int, timeout: float = 2.0) -> bool:
    tx = peer.request(peer.build_request("OPTIONS", f"sip:dut@127.0.0.1:{port}"), ("127.0.0.1", port))
    return _quiet(lambda: peer.final_response(tx, timeout)) is not None


def _robust_dialog(peer: Peer, port: int, **kwargs: Any) -> tuple[Request, Dialog]:
    uri = f"sip:dut@127.0.0.1:{port}"
    inv = peer.build_request("INVITE", uri, body=offer(), content_type=SDP, **kwargs)
    tx = peer.request(inv, ("127.0.0.1", port))
    final = peer.final_response(tx, 3)
    ack, dialog = ack_for(peer, inv, final)
    peer.send(ack, ("127.0.0.1", port))
    return inv, dialog


def _near_and_trigger(fault: str, peer: Peer, port: int) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Two inputs for a robustness fault: one just outside its class (the device must answer it) and its trigger."""
    addr = ("127.0.0.1", port)
    uri = f"sip:dut@127.0.0.1:{port}"
    if fault == "crash-long-user":
        return (lambda: peer.send(peer.build_request("OPTIONS", f"sip:{'u' * 256}@127.0.0.1:{port}"), addr),
                lambda: peer.send(peer.build_request("OPTIONS", f"sip:{'u' * 257}@127.0.0.1:{port}"), addr))
    if fault == "crash-many-via":
        def vias(n: int) -> Request:
            req = peer.build_request("OPTIONS", uri)
            for i in range(n - 1):
                req = req.with_header_added("Via", f"SIP/2.0/UDP 192.0.2.{i % 250 + 1}:5999;branch={new_branch()}")  # type: ignore[assignment]
            return req
        return lambda: peer.send(vias(40), addr), lambda: peer.send(vias(41), addr)
    if fault == "hang-bad-content-type":
        return (lambda: peer.send(raw_request(peer, peer_dev(port), uri, method="MESSAGE",
                                              extra=(("Content-Type", "text/plain"),), body=b"hi"), addr),
                lambda: peer.send(raw_request(peer, peer_dev(port), uri, method="MESSAGE",
                                              extra=(("Content-Type", "application/"),), body=b"hi"), addr))
    if fault == "hang-long-header":
        return (lambda: peer.send(peer.build_request("OPTIONS", uri, headers=[("Subject", "s" * 2048)]), addr),
                lambda: peer.send(peer.build_request("OPTIONS", uri, headers=[("Subject", "s" * 2049)]), addr))
    if fault == "crash-info-in-dialog":
        def outside() -> None:
            peer.send(peer.build_request("INFO", uri, to=name_addr(uri, tag=new_tag()), body=b"a\x00b",
                                         content_type="text/plain"), addr)
            peer.expect(response(481), 3)
            _, dialog = _robust_dialog(peer, port)
            peer.send(dialog.create_request("INFO", via=peer.via(), body=b"ab", content_type="text/plain"), addr)
            peer.expect(response(200, method="INFO"), 3)
            holder["dialog"] = dialog

        holder: dict[str, Dialog] = {}
        return outside, lambda: peer.send(holder["dialog"].create_request(
            "INFO", via=peer.via(), body=b"a\x00b", content_type="text/plain"), addr)
    if fault == "hang-prack-bad-rack":
        def early() -> None:
            peer.send(peer.build_request("PRACK", uri, to=name_addr(uri, tag=new_tag()),
                                         headers=[("RAck", "1 1 BYE")]), addr)
            peer.expect(response(481, method="PRACK"), 3)
            inv = peer.build_request("INVITE", uri, body=offer(), content_type=SDP, headers=[("Supported", "100rel")])
            tx = peer.request(inv, addr)
            r180 = peer.transaction_response(tx, response(180), 3)
            holder["dialog"], holder["cseq"] = Dialog.from_response(inv, r180), inv.cseq.number  # type: ignore[union-attr]

        holder: dict[str, Any] = {}
        return early, lambda: peer.send(holder["dialog"].create_request(
            "PRACK", via=peer.via(), headers=[("RAck", f"1 {holder['cseq']} BYE")]), addr)
    if fault == "crash-reinvite-sdp":
        def initial() -> None:
            zero = build_sdp("127.0.0.1", 0)
            inv = peer.build_request("INVITE", uri, body=zero, content_type=SDP)
            final = peer.final_response(peer.request(inv, addr), 3)
            assert final.sdp is not None and final.sdp.media[0].port == 0  # RFC 3264 §8.2
            ack, dialog = ack_for(peer, inv, final)
            peer.send(ack, addr)
            holder["dialog"] = dialog

        holder = {}
        return initial, lambda: peer.send(holder["dialog"].create_request(
            "INVITE", via=peer.via(), body=build_sdp("127.0.0.1", 0), content_type=SDP), addr)
    raise AssertionError(fault)


def peer_dev(port: int) -> Any:
    """A stand-in with what :func:`raw_request` needs of a device."""
    return type("D", (), {"user_uri": staticmethod(lambda user: f"sip:{user}@127.0.0.1:{port}")})()


ROBUSTNESS = [f.name for f in FAULT_TABLE if f.kind != "conformance"]


@pytest.mark.parametrize("fault", ROBUSTNESS)
def test_robustness_fault_crashes_or_hangs_on_its_input_only(fault: str) -> None:
    """The device answers the near miss and stays up; the trigger kills it with SIGABRT (crash) or leaves it alive
    but silent (hang)."""
    kind = FAULTS[fault].kind
    with dut_process("--fault", fault, "--t1-ms", "50", "--ring-ms", "10") as (proc, port), peer_on() as peer:
        near, trigger = _near_and_trigger(fault, peer, port)
        near()
        assert _alive(peer, port), f"{fault}: the device stopped answering after the near miss"
        assert proc.poll() is None
        trigger()
        if kind == "crash":
            assert proc.wait(5) == -signal.SIGABRT
            assert proc.stderr is not None and fault.encode() in proc.stderr.read()
        else:
            assert not _alive(peer, port, 1.0), f"{fault}: the device still answers"
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)  # a hung device dies the default way
            assert proc.wait(5) == -signal.SIGTERM


def test_in_process_crash_and_hang_stop_the_device_not_the_test() -> None:
    """In process a crash fault stops the device (``crashed``) and a hang blocks only its thread (``hung``) until
    the Device is left."""
    with device(faults={"crash-long-user"}) as dev, peer_on() as peer:
        peer.send(peer.build_request("OPTIONS", f"sip:{'u' * 300}@127.0.0.1:{dev.port}"), dev.address)
        for _ in range(50):
            if dev.crashed:
                break
            time.sleep(0.02)
        assert dev.crashed and "crash-long-user" in dev.crashed
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # nothing answers on its port any more
            s.settimeout(0.3)
            s.connect(dev.address)
            s.send(bytes(peer.build_request("OPTIONS", dev.user_uri("dut"))))
            with pytest.raises((ConnectionRefusedError, TimeoutError)):
                s.recv(4096)
    with device(faults={"hang-long-header"}) as dev, peer_on() as peer:
        peer.send(peer.build_request("OPTIONS", dev.user_uri("dut"), headers=[("Subject", "s" * 3000)]), dev.address)
        assert not _alive(peer, dev.port, 0.5)
        assert dev.hung and "hang-long-header" in dev.hung
