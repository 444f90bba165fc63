"""Reliable provisional response scenarios (RFC 3262): an INVITE that offers or requires 100rel, its provisional
responses read one by one, PRACKs in the early dialog, and the call ended whatever state it reached.

The helpers only drive the peer; each test states in its own body the requirement it checks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from conformance.peer import ExpectationFailed, Incoming, Peer
from conformance.profile import DeviceProfile
from conformance.sip import Request, Response, build_cancel, build_sdp
from conformance.sip.state import Dialog, DialogError
from testcases._support import Call, ack, bye, start_invite

__all__ = [
    "RelCall",
    "SUPPORTED",
    "REQUIRED",
    "answer_for",
    "describe",
    "finish",
    "invite",
    "is_reliable",
    "key",
    "next_response",
    "prack",
    "prack_request",
    "rseq_text",
    "wait_reliable",
]

#: §4: "If the UAC does not require usage of reliable provisional responses, but merely indicates that it supports
#: them if the UAS needs to send one, a Supported header MUST be included in the request with the option tag 100rel."
SUPPORTED: tuple[tuple[str, str], ...] = (("Supported", "100rel"),)
REQUIRED: tuple[tuple[str, str], ...] = (("Supported", "100rel"), ("Require", "100rel"))


def rseq_text(resp: Response) -> str | None:
    """The RSeq header as written (the typed view is ``None`` for a value out of range)."""
    return resp.header("RSeq")


def is_reliable(resp: Response) -> bool:
    """A 1xx the device meant to send reliably: it carries RSeq or Require: 100rel (either marks it)."""
    return rseq_text(resp) is not None or "100rel" in (t.lower() for t in resp.require)


def key(resp: Response) -> tuple[int, str | None]:
    """What tells one reliable provisional from another: status and RSeq (a retransmission repeats both)."""
    return resp.status, rseq_text(resp)


def describe(resp: Response) -> str:
    parts = [f"{resp.status} {resp.reason}"]
    if rseq_text(resp) is not None:
        parts.append(f"RSeq: {rseq_text(resp)}")
    if resp.require:
        parts.append(f"Require: {', '.join(resp.require)}")
    if resp.body:
        parts.append(f"{len(resp.body)}-octet body")
    return " / ".join(parts)


@dataclass
class RelCall:
    """An INVITE offering (or requiring) 100rel, what came back, and the early dialog PRACKs are sent in."""

    call: Call
    responses: list[Incoming] = field(default_factory=list)
    pracked: list[Response] = field(default_factory=list)
    dialog: Dialog | None = None
    ended: bool = False
    #: The answer to an offer in a reliable provisional went out in a PRACK (only the first offer is answered).
    answered: bool = False

    @property
    def invite(self) -> Request:
        return self.call.invite

    @property
    def final(self) -> Response | None:
        return self.call.final

    def provisionals(self) -> list[Response]:
        return [m for i in self.responses if isinstance(m := i.message, Response) and m.status < 200]

    def reliables(self) -> list[Incoming]:
        """Every reliable 101-199 that arrived, retransmissions included, in arrival order."""
        return [
            i
            for i in self.responses
            if isinstance(m := i.message, Response) and 101 <= m.status <= 199 and is_reliable(m)
        ]

    def distinct_reliables(self) -> list[Response]:
        """The reliable 101-199 responses, one per (status, RSeq), in the order they first arrived."""
        seen: dict[tuple[int, str | None], Response] = {}
        for inc in self.reliables():
            msg = inc.message
            assert isinstance(msg, Response)
            seen.setdefault(key(msg), msg)
        return list(seen.values())


def invite(
    peer: Peer,
    profile: DeviceProfile,
    *,
    headers: Iterable[tuple[str, str]] = REQUIRED,
    with_sdp: bool = True,
) -> RelCall:
    """An INVITE (with an SDP offer unless ``with_sdp`` is false) with the given 100rel headers."""
    return RelCall(start_invite(peer, profile, headers=list(headers), with_sdp=with_sdp))


def next_response(peer: Peer, rc: RelCall, timeout: float) -> Response | None:
    """The next response of the INVITE transaction within ``timeout`` s (``None`` when none came)."""
    tx = rc.call.tx
    try:
        msg = peer.transaction_response(tx, None, timeout)
    except ExpectationFailed:
        return None
    rc.responses.append(tx.responses[tx._taken - 1])
    if msg.status >= 200 and rc.call.final is None:
        rc.call.final = msg
    return msg


def wait_reliable(
    peer: Peer, rc: RelCall, timeout: float, *, new: bool = True
) -> Response | None:
    """Read responses until a reliable 101-199 arrives (one not seen before when ``new``), a final response arrives,
    or ``timeout`` s pass. Returns the reliable provisional, or ``None``."""
    seen = {key(m) for m in rc.distinct_reliables()} if new else set()
    end = time.monotonic() + timeout
    while True:
        remaining = end - time.monotonic()
        if remaining <= 0:
            return None
        msg = next_response(peer, rc, remaining)
        if msg is None:
            return None
        if 101 <= msg.status <= 199 and is_reliable(msg) and key(msg) not in seen:
            return msg
        if msg.status >= 200:
            return None


def answer_for(invite_req: Request, reliable: Response, peer: Peer) -> tuple[bytes, str | None]:
    """The PRACK body: an SDP answer when the reliable provisional carried the offer (the INVITE had none), else
    nothing. RFC 3261 §13.2.1: "If the initial offer is in the first reliable non-failure message from the UAS back
    to UAC, the answer MUST be in the acknowledgement for that message" -- with 100rel, the PRACK."""
    if invite_req.body or not reliable.body:
        return b"", None
    offer_sdp = reliable.sdp
    fmt = "0"
    if offer_sdp is not None and offer_sdp.media:
        formats = [f for f in offer_sdp.media[0].formats if f in ("0", "8")]
        fmt = formats[0] if formats else "0"
    host = peer.endpoint().local[0]
    return build_sdp(host, 40002, formats=(fmt,), ipv6=":" in host), "application/sdp"


def _dialog(rc: RelCall, resp: Response, profile: DeviceProfile) -> Dialog:
    if rc.dialog is None or rc.dialog.remote_tag != (resp.to.tag if resp.to else None):
        rc.dialog = Dialog.from_response(rc.invite, resp, secure_transport=profile.target.secure)
        rc.call.dialog = rc.dialog
    return rc.dialog


def prack_request(
    peer: Peer,
    profile: DeviceProfile,
    rc: RelCall,
    reliable: Response,
    *,
    rack: str | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> Request:
    """A PRACK in the early dialog ``reliable`` created (RFC 3262 §7.2: ``RAck: <RSeq> <CSeq-num> <method>``); ``rack``
    overrides the RAck value."""
    dialog = _dialog(rc, reliable, profile)
    cseq = reliable.cseq
    value = rack or f"{rseq_text(reliable)} {cseq.number if cseq else 0} {cseq.method if cseq else 'INVITE'}"
    if body is None:
        body, content_type = (b"", None) if rc.answered else answer_for(rc.invite, reliable, peer)
        rc.answered = rc.answered or bool(body)
    return dialog.create_request("PRACK", via=peer.via(), headers=[("RAck", value)], body=body,
                                 content_type=content_type)


def prack(
    peer: Peer,
    profile: DeviceProfile,
    rc: RelCall,
    reliable: Response,
    *,
    rack: str | None = None,
    timeout: float = 5.0,
) -> tuple[Request, Response]:
    """Send a PRACK for ``reliable`` in a client transaction; returns it and its final response."""
    req = prack_request(peer, profile, rc, reliable, rack=rack)
    tx = peer.request(req, profile.target.address)
    final = peer.final_response(tx, timeout)
    if rack is None and 200 <= final.status < 300:
        rc.pracked.append(reliable)
    return req, final


def _drain(peer: Peer, rc: RelCall) -> None:
    while next_response(peer, rc, 0.0) is not None:
        pass


def finish(peer: Peer, profile: DeviceProfile, rc: RelCall, timeout: float = 5.0) -> None:
    """End the call whatever state it is in, never failing the test: PRACK what is pending, CANCEL an INVITE still
    without final response (RFC 3261 §9.1), ACK and BYE a 2xx (§13.2.2.4, §15.1.1)."""
    if rc.ended:
        return
    rc.ended = True
    try:
        _drain(peer, rc)
        if rc.final is None:
            cancel_req = build_cancel(rc.invite)
            tx = peer.request(cancel_req, profile.target.address)
            try:
                peer.final_response(tx, timeout)
            except ExpectationFailed:
                pass
            end = time.monotonic() + timeout
            while rc.final is None and time.monotonic() < end:
                if next_response(peer, rc, end - time.monotonic()) is None:
                    break
        final = rc.final
        if final is not None and 200 <= final.status < 300:
            if rc.dialog is not None and rc.dialog.remote_tag == (final.to.tag if final.to else None):
                rc.dialog.receive_response(final, rc.invite)
            else:
                rc.call.dialog = None
            ack(peer, profile, rc.call, final)
            bye(peer, profile, rc.call, timeout)
    except (ExpectationFailed, TimeoutError, DialogError, RuntimeError, AssertionError):
        pass
