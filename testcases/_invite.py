"""Private helpers for the INVITE, CANCEL and dialog test purposes (test_uas_invite, test_uas_cancel, test_uas_dialog).

They set up the situation a test purpose needs (a call ringing, a call answered but not acknowledged, a rejected
INVITE outside any client transaction so that the test controls the ACK) and read the trace; the requirement itself
is asserted in the test. Timing is judged in tolerance bands: an interval passes when it is within
``max(0.1 s, 25 %)`` of the expected value, never by exact equality.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import pytest

from conformance.peer import ExpectationFailed, Incoming, Peer, request, response
from conformance.plugin import inconclusive
from conformance.profile import DeviceProfile
from conformance.sip import (
    Message,
    NameAddr,
    Request,
    Response,
    SipURI,
    build_ack_for_non2xx,
    build_cancel,
    build_response,
)
from conformance.sip.state import Dialog
from conformance.trace import MessageEntry
from testcases._support import Call, ack, offer, start_invite, target_uri, wait_final

__all__ = [
    "UNKNOWN_OPTION",
    "RELIABLE",
    "tolerance",
    "schedule",
    "judge_schedule",
    "observation_window",
    "received",
    "final_responses",
    "two_xx",
    "answered",
    "established",
    "ringing",
    "raw_invite",
    "rejected_raw",
    "ack_non2xx",
    "sdp_answer",
    "answer_bye",
    "hang_up",
    "give_up",
    "dialog_request",
    "describe",
    "sent_time",
    "wait_until",
    "route_key",
    "interval",
    "sleep_until",
    "Calls",
    "calls_fixture",
    "transact",
    "judge_no_dialog",
]

#: An option tag no device implements: ``Require`` with it makes any UAS reject the INVITE with 420 (RFC 3261
#: §8.2.2.3), a non-2xx final response obtained without relying on the device's call policy.
UNKNOWN_OPTION = "x-sipcert-unknown-option"

#: Transports on which the INVITE server transaction does not set Timer G (RFC 3261 §17.2.1).
RELIABLE = ("tcp", "tls", "sctp", "ws", "wss")


# -- timing --------------------------------------------------------------------------------------------------------


def tolerance(expected: float) -> float:
    """The tolerance band for an interval of ``expected`` seconds: ``max(0.1 s, 25 %)``."""
    return max(0.1, 0.25 * expected)


def schedule(t1: float, t2: float, until: float) -> list[float]:
    """Send times (from the first send) of a response retransmitted at T1, 2*T1, 4*T1 ... capped at T2, up to
    ``until``: RFC 3261 §13.3.1.4 for the 2xx to INVITE, Timer G of §17.2.1 for 300-699."""
    times = [0.0]
    k = 0
    while True:
        nxt = times[-1] + min(t1 * 2**k, t2)
        if nxt > until:
            return times
        times.append(nxt)
        k += 1


def interval(t1: float, t2: float, k: int) -> float:
    """The k-th retransmission interval (k = 0 is the gap between the first send and the first retransmission)."""
    return min(t1 * 2**k, t2)


def observation_window(t1: float, t2: float) -> tuple[float, int]:
    """How long to withhold the ACK to see the retransmission schedule: until two intervals capped at T2 have been
    seen, or, when 64*T1 comes first, the sends before 3/4 of 64*T1. Returns ``(ack_at, sends)``: when to send the
    ACK (half-way through the gap after the last send judged, so no retransmission is in flight) and how many sends
    (first copy included) are due before then."""
    limit = 0.75 * 64 * t1
    times = schedule(t1, t2, limit)
    capped = [i for i in range(1, len(times)) if interval(t1, t2, i - 1) >= t2]
    last = capped[1] if len(capped) >= 2 else len(times) - 1
    gap = interval(t1, t2, last)
    return times[last] + gap / 2, last + 1


def judge_schedule(times: list[float], t1: float, t2: float, stop: float, what: str) -> list[str]:
    """Compare send times (seconds, first send at ``times[0]``) with the T1-doubling-to-T2 schedule up to ``stop``
    (seconds after the first send). Returns what is wrong: an interval out of its band, or a retransmission missing
    although its time (plus tolerance) passed before ``stop``."""
    problems: list[str] = []
    if not times:
        return [f"no {what} at all"]
    rel = [t - times[0] for t in times]
    for k in range(len(rel) - 1):
        want = interval(t1, t2, k)
        got = rel[k + 1] - rel[k]
        if abs(got - want) > tolerance(want):
            problems.append(
                f"{what} retransmission #{k + 1} came {got:.3f} s after the previous one, expected {want:.3f} s "
                f"(± {tolerance(want):.3f} s); sends at {', '.join(f'{x:.3f}' for x in rel)} s"
            )
            return problems
    k = len(rel) - 1
    want = interval(t1, t2, k)
    if rel[-1] + want + tolerance(want) < stop:
        problems.append(
            f"{what} retransmission #{k + 1} missing: expected {want:.3f} s after the one at {rel[-1]:.3f} s; "
            f"sends at {', '.join(f'{x:.3f}' for x in rel)} s, observed until {stop:.3f} s"
        )
    return problems


# -- reading the trace ---------------------------------------------------------------------------------------------


def received(peer: Peer, keep: Callable[[Message], bool]) -> list[MessageEntry]:
    """Messages from the device, in arrival order, that ``keep`` accepts (read from the trace: messages a client
    transaction absorbed are included)."""
    out = []
    for e in peer.trace.messages("received"):
        if e.message is not None and keep(e.message):
            out.append(e)
    return out


def _same_transaction(req: Request) -> Callable[[Message], bool]:
    branch = req.via[0].branch if req.via else None
    method = req.cseq.method if req.cseq else req.method

    def keep(m: Message) -> bool:
        return (
            isinstance(m, Response)
            and m.call_id == req.call_id
            and m.cseq is not None
            and m.cseq.method == method
            and bool(m.via)
            and m.via[0].branch == branch
        )

    return keep


def final_responses(peer: Peer, req: Request, statuses: range = range(200, 700)) -> list[MessageEntry]:
    """Every copy of the final responses (in ``statuses``) the device sent for the transaction of ``req``."""
    same = _same_transaction(req)
    return received(peer, lambda m: same(m) and isinstance(m, Response) and m.status in statuses)


def two_xx(peer: Peer, invite: Request) -> list[MessageEntry]:
    """Every copy of the 2xx to ``invite``."""
    return final_responses(peer, invite, range(200, 300))


def describe(entries: Iterable[MessageEntry], origin: float = 0.0) -> str:
    """``#seq at t s: start line`` for each entry (times relative to ``origin``), for failure messages."""
    return "; ".join(f"#{e.seq} at {e.time - origin:.3f} s: {e.summary}" for e in entries) or "nothing"


# -- setting up calls ----------------------------------------------------------------------------------------------


def answered(peer: Peer, profile: DeviceProfile, *, timeout: float = 10.0, with_sdp: bool = True,
             headers: list[tuple[str, str]] | None = None) -> Call:
    """An INVITE answered 2xx and not yet acknowledged (the test decides about the ACK). A device that does not
    accept the call fails the test: every test purpose that needs a session starts from a successful INVITE."""
    call = start_invite(peer, profile, with_sdp=with_sdp, headers=headers)
    final = wait_final(peer, call, timeout)
    assert 200 <= final.status < 300, (
        f"the device answered the INVITE to {call.invite.uri_text} with {final.status} {final.reason}; these test "
        "purposes need a device that accepts a call (RFC 3261 §13.3.1.4)"
    )
    call.dialog = Dialog.from_response(call.invite, final, secure_transport=profile.target.secure)
    return call


def established(peer: Peer, profile: DeviceProfile, *, timeout: float = 10.0, with_sdp: bool = True,
                headers: list[tuple[str, str]] | None = None) -> Call:
    """A confirmed dialog: INVITE, 2xx, ACK (RFC 3261 §13.2.2.4)."""
    call = answered(peer, profile, timeout=timeout, with_sdp=with_sdp, headers=headers)
    body = b""
    if not with_sdp and call.final is not None and call.final.sdp is not None:
        body = sdp_answer(peer, call.final)
    assert call.dialog is not None
    ack_req = call.dialog.create_ack(call.invite, via=peer.via(), body=body,
                                     content_type="application/sdp" if body else None)
    peer.send(ack_req, profile.target.address)
    call.acked = ack_req
    return call


def _tagged_or_final(m: Message) -> bool:
    return isinstance(m, Response) and (m.status >= 200 or (m.to is not None and m.to.tag is not None))


def ringing(peer: Peer, profile: DeviceProfile, *, timeout: float = 5.0, in_transaction: bool = True,
            headers: list[tuple[str, str]] | None = None, hold_with_100rel: bool = True) -> Call:
    """An INVITE the device has answered with a 101-199 carrying a To tag (an early dialog) and no final response
    yet. When the profile lists 100rel the INVITE offers it (``Supported: 100rel``) and the peer never PRACKs, so
    that a device that sends its answer in a reliable provisional cannot send the 2xx (RFC 3262 §3: "it MUST NOT send
    a final response until those provisional responses are acknowledged"); ``hold_with_100rel=False`` leaves that out
    (the INVITE is then pending for the device's own ring time only). ``in_transaction=False`` sends the INVITE outside a client transaction (``call.tx`` is ``None``): the test
    then owns the ACK of a non-2xx final response. When the device answers finally first, or sends no such
    provisional, the test purpose cannot be exercised: the call is cleaned up and the test ends inconclusive."""
    headers = list(headers or [])
    if hold_with_100rel and profile.supports_extension("100rel") and not any(
            n.lower() in ("supported", "k") for n, _ in headers):
        # RFC 3262 §3: a reliable provisional with an SDP answer holds the 2xx until its PRACK, which never comes;
        # the INVITE stays pending (up to 64*T1) instead of for the device's ring time alone.
        headers.append(("Supported", "100rel"))
    if in_transaction:
        call = start_invite(peer, profile, headers=headers)
    else:
        call = Call(raw_invite(peer, profile, headers=headers), None)  # type: ignore[arg-type]
    want = response(range(101, 700)).for_transaction(call.invite).where(
        _tagged_or_final, "a final response, or a provisional response with To tag")
    try:
        if call.tx is not None:
            first = peer.transaction_response(call.tx, want, timeout)
        else:
            msg = peer.expect(want, timeout).message
            assert isinstance(msg, Response)
            first = msg
    except ExpectationFailed:
        give_up(peer, profile, call)
        inconclusive(f"the device sent no 101-199 response with To tag to the INVITE within {timeout:g} s, so there "
                     "is no pending INVITE to work with")
    if first.status >= 200:
        call.final = first
        if first.status < 300:
            hang_up(peer, profile, call)
        elif call.tx is None:
            peer.send(ack_non2xx(call.invite, first), profile.target.address)
        inconclusive(f"the device answered the INVITE at once with {first.status} {first.reason}: the INVITE is not "
                     "pending long enough to exercise this test purpose")
    call.provisionals = [first]
    call.dialog = Dialog.from_response(call.invite, first, secure_transport=profile.target.secure)
    return call


def raw_invite(peer: Peer, profile: DeviceProfile, *, headers: list[tuple[str, str]] | None = None,
               with_sdp: bool = True, user: str | None = None) -> Request:
    """An INVITE sent once, outside any client transaction: nothing acknowledges its final response unless the test
    does (the peer's INVITE client transaction would ACK a 300-699 by itself, RFC 3261 §17.1.1.3)."""
    body = offer(peer) if with_sdp else b""
    inv = peer.build_request("INVITE", target_uri(profile, user), headers=headers or [], body=body,
                             content_type="application/sdp" if body else None)
    peer.send(inv, profile.target.address)
    return inv


def rejected_raw(peer: Peer, profile: DeviceProfile, timeout: float = 5.0) -> tuple[Request, MessageEntry]:
    """An INVITE the device must reject (``Require`` with an option tag it cannot know: 420, RFC 3261 §8.2.2.3),
    sent outside a client transaction. Returns the INVITE and the first copy of its 300-699 final response; a device
    that accepts the INVITE anyway makes the test inconclusive (the ACK and BYE are sent to clean up)."""
    inv = raw_invite(peer, profile, headers=[("Require", UNKNOWN_OPTION)])
    inc = peer.expect(response(range(200, 700)).for_transaction(inv), timeout)
    msg = inc.message
    assert isinstance(msg, Response)
    if msg.status < 300:
        dialog = Dialog.from_response(inv, msg, secure_transport=profile.target.secure)
        peer.send(dialog.create_ack(inv, via=peer.via()), profile.target.address)
        tx = peer.request(dialog.create_request("BYE", via=peer.via()), profile.target.address)
        peer.final_response(tx, 5.0)
        inconclusive(f"the device accepted an INVITE with Require: {UNKNOWN_OPTION} ({msg.status} {msg.reason}) "
                     "instead of rejecting it, so no non-2xx final response could be provoked")
    return inv, inc.entry


def ack_non2xx(invite: Request, final: Response) -> Request:
    """The ACK for a 300-699 response (RFC 3261 §17.1.1.3)."""
    return build_ack_for_non2xx(invite, final)


def sdp_answer(peer: Peer, offer_msg: Message) -> bytes:
    """An SDP answer to the offer in ``offer_msg`` (RFC 3264 §6): one m= line per offered one, same formats, our
    address and fresh ports."""
    offered = offer_msg.sdp
    assert offered is not None, "the message carries no SDP offer"
    host = peer.endpoint().local[0]
    addrtype = "IP6" if ":" in host else "IP4"
    origin = offered.origin
    new_origin = dataclasses.replace(origin, username="sipcert", address=host, addrtype=addrtype) if origin else None
    conn = dataclasses.replace(offered.connection, addrtype=addrtype, address=host) if offered.connection else None
    media = tuple(
        dataclasses.replace(m, port=(41000 + 2 * i) if m.port else 0,
                            connection=dataclasses.replace(m.connection, addrtype=addrtype, address=host)
                            if m.connection else None)
        for i, m in enumerate(offered.media)
    )
    return dataclasses.replace(offered, origin=new_origin, connection=conn, media=media).to_bytes()


def answer_bye(peer: Peer, timeout: float, call_id: str) -> Incoming | None:
    """Wait for a BYE from the device on ``call_id`` and answer it 200; ``None`` when none came."""
    try:
        inc = peer.expect(request("BYE", call_id=call_id), timeout)
    except ExpectationFailed:
        return None
    bye = inc.message
    assert isinstance(bye, Request)
    peer.respond(inc, build_response(bye, 200))
    return inc


def wait_until(peer: Peer, done: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Let the peer run until ``done()`` (read from the trace) is true, at most ``timeout`` seconds."""
    deadline = peer.trace.now() + timeout
    while not done():
        if peer.trace.now() >= deadline:
            return False
        peer.sleep(step)
    return True


def route_key(na: NameAddr) -> tuple[object, ...]:
    """What §12.1.1 asks to be copied of a Record-Route value: the URI, its parameters and the header parameters
    (scheme and host compared case-insensitively, parameter names too; the display name does not count)."""
    uri = na.uri
    if isinstance(uri, SipURI):
        u: object = (uri.scheme.lower(), uri.user, uri.host.lower(), uri.port,
                     tuple(sorted((k.lower(), v) for k, v in uri.params)))
    else:
        u = na.uri_text
    return u, tuple(sorted((k.lower(), v) for k, v in na.params))


def hang_up(peer: Peer, profile: DeviceProfile, call: Call) -> None:
    """Best-effort clean-up of an answered call: ACK the 2xx if nobody did, then BYE. Never fails the test."""
    try:
        if call.final is not None and 200 <= call.final.status < 300:
            if call.dialog is None:
                call.dialog = Dialog.from_response(call.invite, call.final, secure_transport=profile.target.secure)
            if call.acked is None:
                ack(peer, profile, call, call.final)
            tx = peer.request(call.dialog.create_request("BYE", via=peer.via()), profile.target.address)
            peer.final_response(tx, 5.0)
    except Exception:  # clean-up only
        pass


def give_up(peer: Peer, profile: DeviceProfile, call: Call) -> None:
    """Best-effort clean-up of a pending INVITE: CANCEL it, ACK a 300-699 when the INVITE was sent raw, or hang up
    when it was answered meanwhile. Never fails the test."""
    try:
        tx = peer.request(build_cancel(call.invite), profile.target.address)
        peer.final_response(tx, 5.0)
        if call.tx is not None:
            final = peer.final_response(call.tx, 5.0)
        else:
            final_entry = peer.expect(response(range(200, 700)).for_transaction(call.invite), 5.0)
            final = final_entry.message  # type: ignore[assignment]
            assert isinstance(final, Response)
            if final.status >= 300:
                peer.send(ack_non2xx(call.invite, final), profile.target.address)
        call.final = final
        if 200 <= final.status < 300:
            hang_up(peer, profile, call)
    except Exception:  # clean-up only
        pass


def dialog_request(peer: Peer, call: Call, method: str, *, to_tag: str | None = None, from_tag: str | None = None,
                   call_id: str | None = None, cseq: int | None = None, body: bytes = b"",
                   content_type: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> Request:
    """A request in the call's dialog (RFC 3261 §12.2.1.1), optionally with one identifier changed so that it names
    another dialog: the To tag (the device's local tag), the From tag (its remote tag) or the Call-ID. A changed
    request does not advance the dialog's CSeq."""
    assert call.dialog is not None, "the call has no dialog"
    d = call.dialog
    if to_tag is None and from_tag is None and call_id is None:
        return d.create_request(method, via=peer.via(), cseq=cseq, body=body, content_type=content_type,
                                headers=headers)
    other = Dialog(
        id=dataclasses.replace(d.id, call_id=call_id or d.id.call_id, local_tag=from_tag or d.id.local_tag,
                               remote_tag=to_tag or d.id.remote_tag),
        role=d.role,
        state=d.state,
        local_party=d.local_party,
        remote_party=d.remote_party,
        remote_target=d.remote_target,
        route_set=d.route_set,
        local_cseq=d.local_cseq,
        remote_cseq=d.remote_cseq,
        secure=d.secure,
        local_contact=d.local_contact,
        invite_cseq=d.invite_cseq,
    )
    return other.create_request(method, via=peer.via(), cseq=cseq, body=body, content_type=content_type,
                                headers=headers)


def sent_time(peer: Peer, msg: Message) -> float:
    """When the peer last put ``msg`` on the wire (trace time)."""
    data = bytes(msg)
    for e in reversed(peer.trace.messages("sent")):
        if e.data == data:
            return e.time
    raise LookupError(f"{msg.start_line!r} was never sent")


def sleep_until(peer: Peer, when: float) -> None:
    """Let the peer run until trace time ``when``."""
    remaining = when - peer.trace.now()
    if remaining > 0:
        peer.sleep(remaining)


class Calls:
    """The calls a test purpose starts, hung up or cancelled at teardown when the test left them open, so that the
    device is not left with dangling sessions (the clean-up runs after the passive checks and never fails)."""

    def __init__(self, peer: Peer, profile: DeviceProfile) -> None:
        self.peer = peer
        self.profile = profile
        self._calls: list[Call] = []

    def track(self, call: Call) -> Call:
        self._calls.append(call)
        return call

    def invite(self, *, with_sdp: bool = True, headers: list[tuple[str, str]] | None = None) -> Call:
        return self.track(start_invite(self.peer, self.profile, with_sdp=with_sdp, headers=headers))

    def answered(self, **kwargs: object) -> Call:
        call = answered(self.peer, self.profile, **kwargs)  # type: ignore[arg-type]
        return self.track(call)

    def established(self, **kwargs: object) -> Call:
        call = established(self.peer, self.profile, **kwargs)  # type: ignore[arg-type]
        return self.track(call)

    def ringing(self, **kwargs: object) -> Call:
        call = ringing(self.peer, self.profile, **kwargs)  # type: ignore[arg-type]
        return self.track(call)

    def cleanup(self) -> None:
        for call in self._calls:
            try:
                self._close(call)
            except Exception:  # clean-up only
                pass

    def _close(self, call: Call) -> None:
        peer, inv = self.peer, call.invite
        finals = final_responses(peer, inv)
        bye_done = received(peer, lambda m: m.call_id == inv.call_id and (
            isinstance(m, Request) and m.method == "BYE"
            or isinstance(m, Response) and m.cseq is not None and m.cseq.method == "BYE" and m.status >= 200))
        if bye_done:
            return
        oks = [e.message for e in finals if isinstance(e.message, Response) and e.message.status < 300]
        if oks:
            call.final = oks[0]  # type: ignore[assignment]
            hang_up(peer, self.profile, call)
        elif not finals:
            give_up(peer, self.profile, call)
        elif call.tx is None and not any(
            isinstance(e.message, Request) and e.message.method == "ACK" and e.message.call_id == inv.call_id
            for e in peer.trace.messages("sent")
        ):
            final = finals[0].message
            assert isinstance(final, Response)
            peer.send(ack_non2xx(inv, final), self.profile.target.address)


@pytest.fixture(name="calls")
def calls_fixture(sip_peer: Peer, sip_profile: DeviceProfile) -> Iterator[Calls]:
    """The test's calls, cleaned up at teardown."""
    c = Calls(sip_peer, sip_profile)
    yield c
    c.cleanup()


def transact(peer: Peer, profile: DeviceProfile, req: Request, timeout: float = 5.0) -> Response:
    """Send ``req`` in a client transaction and return its final response; no final response within ``timeout``
    fails the test, saying so."""
    tx = peer.request(req, profile.target.address)
    try:
        return peer.final_response(tx, timeout)
    except ExpectationFailed as exc:
        raise AssertionError(f"no final response to {req.method} within {timeout:g} s: {exc}") from None


def judge_no_dialog(final: Response, should: Callable[[bool, str, str, str], bool], what: str, *,
                    to_tagged: bool, rule: str, citation: str) -> None:
    """A request for a dialog the device does not have. RFC 3261 §12.2.2: "Based on the To tag, the UAS MAY either
    accept or reject the request" and "If the UAS wishes to reject the request because it does not wish to recreate
    the dialog, it MUST respond to the request with a 481 (Call/Transaction Does Not Exist)". So: a rejection other
    than 481 fails (for a request with a To tag); acceptance is a warning under ``rule`` (the SHOULD that asks for
    481, or the method's own rule)."""
    if 200 <= final.status < 300:
        should(False, rule, citation,
               f"{what} was answered {final.status} {final.reason}: the device took it for a dialog it does not have")
        return
    if to_tagged:
        assert final.status == 481, (
            f"{what} was rejected with {final.status} {final.reason}; a request with a To tag for a dialog the UAS "
            "does not have is rejected with 481 (RFC 3261 §12.2.2: MUST)")
    else:
        should(final.status == 481, rule, citation, f"{what} was answered {final.status} {final.reason}, not 481")
