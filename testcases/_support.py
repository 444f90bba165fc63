"""Scenario helpers for test purposes: a call set up, acknowledged and torn down with the peer, and raw sends.

They only do what every test purpose would otherwise repeat; each test still states, in its own body, the
requirement it checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.peer import ClientTransactionHandle, Incoming, Peer, request, response
from conformance.profile import DeviceProfile
from conformance.sip import Request, Response, build_cancel, build_sdp
from conformance.sip.state import Dialog

__all__ = ["Call", "target_uri", "options", "start_invite", "establish", "ack", "bye", "send_raw", "offer", "ENDPOINT_USER"]

ENDPOINT_USER = "sipcert"


def target_uri(profile: DeviceProfile, user: str | None = None) -> str:
    """The Request-URI for the device: its address of record's user at the target's host and port."""
    t = profile.target
    if user is None and profile.aor:
        user = profile.aor.split(":", 1)[1].split("@", 1)[0] if "@" in profile.aor else None
    scheme = "sips" if t.secure else "sip"
    host = t.host
    userpart = f"{user}@" if user else ""
    transport = "" if t.transport in ("udp", "tls") else f";transport={'ws' if t.transport in ('ws', 'wss') else t.transport}"
    return f"{scheme}:{userpart}{host}:{t.port}{transport}"


def offer(peer: Peer) -> bytes:
    """An SDP offer from the peer's address (RFC 4566), audio PCMU."""
    host = peer.endpoint().local[0]
    return build_sdp(host, 40000, ipv6=":" in host)


def options(peer: Peer, profile: DeviceProfile, timeout: float = 5.0, **kwargs: Any) -> Response:
    """Send an OPTIONS in a client transaction and return the final response."""
    req = peer.build_request("OPTIONS", target_uri(profile), **kwargs)
    tx = peer.request(req, profile.target.address)
    return peer.final_response(tx, timeout)


@dataclass
class Call:
    """One INVITE and what came of it."""

    invite: Request
    tx: ClientTransactionHandle
    provisionals: list[Response] = field(default_factory=list)
    final: Response | None = None
    dialog: Dialog | None = None
    acked: Request | None = None


def start_invite(
    peer: Peer,
    profile: DeviceProfile,
    *,
    headers: list[tuple[str, str]] | None = None,
    with_sdp: bool = True,
    user: str | None = None,
) -> Call:
    """Send an INVITE (with an SDP offer) in a client transaction."""
    body = offer(peer) if with_sdp else b""
    inv = peer.build_request(
        "INVITE",
        target_uri(profile, user),
        headers=headers or [],
        body=body,
        content_type="application/sdp" if body else None,
    )
    tx = peer.request(inv, profile.target.address)
    return Call(inv, tx)


def wait_final(peer: Peer, call: Call, timeout: float = 5.0) -> Response:
    final = peer.final_response(call.tx, timeout)
    call.final = final
    call.provisionals = call.tx.provisionals
    return final


def establish(peer: Peer, profile: DeviceProfile, *, timeout: float = 5.0, **kwargs: Any) -> Call:
    """INVITE → final response; for a 2xx the dialog is made and the ACK sent (§13.2.2.4)."""
    call = start_invite(peer, profile, **kwargs)
    final = wait_final(peer, call, timeout)
    if 200 <= final.status < 300:
        ack(peer, profile, call)
    return call


def ack(peer: Peer, profile: DeviceProfile, call: Call, response_2xx: Response | None = None) -> Request:
    """The ACK for the 2xx: a new transaction, built like an in-dialog request (§13.2.2.4); sent, not transacted."""
    final = response_2xx or call.final
    assert final is not None and 200 <= final.status < 300, "ack() needs a 2xx"
    if call.dialog is None:
        call.dialog = Dialog.from_response(call.invite, final, secure_transport=profile.target.secure)
    ack_req = call.dialog.create_ack(call.invite, via=peer.via())
    peer.send(ack_req, profile.target.address)
    call.acked = ack_req
    return ack_req


def in_dialog(peer: Peer, call: Call, method: str, **kwargs: Any) -> Request:
    assert call.dialog is not None, "the call has no dialog"
    return call.dialog.create_request(method, via=peer.via(), **kwargs)


def bye(peer: Peer, profile: DeviceProfile, call: Call, timeout: float = 5.0) -> Response:
    """BYE in the dialog (§15.1.1) and its final response."""
    req = in_dialog(peer, call, "BYE")
    tx = peer.request(req, profile.target.address)
    return peer.final_response(tx, timeout)


def cancel(peer: Peer, profile: DeviceProfile, call: Call, timeout: float = 5.0) -> Response:
    """CANCEL for the pending INVITE (§9.1) and its final response."""
    c = build_cancel(call.invite)
    tx = peer.request(c, profile.target.address)
    return peer.final_response(tx, timeout)


def send_raw(peer: Peer, profile: DeviceProfile, data: bytes) -> None:
    peer.send(data, profile.target.address)


def expect_response_to(peer: Peer, req: Request, timeout: float = 5.0, status: Any = None) -> Incoming:
    """Wait for a response to ``req`` sent outside a transaction (matched by branch and CSeq method)."""
    return peer.expect(response(status).for_transaction(req), timeout)


def expect_request(peer: Peer, method: str, timeout: float = 5.0, **kwargs: Any) -> Incoming:
    return peer.expect(request(method, **kwargs), timeout)
