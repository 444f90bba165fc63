"""Private helpers of the UAS request-handling and transaction test purposes (RFC 3261 §8.2, §12.2.2, §17.2).

- :func:`edit` turns a valid request from the peer's builder into raw bytes with headers dropped, replaced,
  duplicated or added, another start line, another body or a wrong Content-Length (the raw path, for requests the
  strict builders refuse to make).
- :func:`final_to` / :func:`responses_to` wait for what the device answered to bytes sent outside a client
  transaction, matched by Call-ID or branch (a malformed request may lack either).
- :func:`end_call` leaves no call behind: ACK and BYE for a 2xx, ACK for a 300-699, CANCEL for a pending INVITE.
- :func:`assert_alive` checks, after a request meant to break the device, that it still answers (RFC 4475: "must
  not break").

They do what many test purposes would otherwise repeat; each test still states, in its own body, the requirement
it checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from uuid import uuid4

from conformance.peer import ExpectationFailed, Incoming, Peer, response, with_wrong_branch
from conformance.profile import DeviceProfile
from conformance.sip import (
    NameAddr,
    Request,
    Response,
    build_ack_for_non2xx,
    build_cancel,
    canonical_key,
    raw_message,
)
from conformance.sip.state import Dialog
from testcases._support import offer, target_uri

__all__ = [
    "STANDARD_METHODS",
    "unique",
    "answer_wait",
    "quiet_time",
    "edit",
    "final_to",
    "responses_to",
    "end_call",
    "assert_alive",
    "baseline_options",
    "invite_request",
    "describe",
    "quoting",
    "same_name_addr",
]

#: Methods defined by standards-track RFCs that a UA may know (RFC 3261, 3262, 3265/6665, 3311, 3428, 3515, 3903,
#: 6086): the candidates for a 405 (Method Not Allowed).
STANDARD_METHODS: tuple[str, ...] = (
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO",
    "REFER", "MESSAGE", "UPDATE",
)


def unique(prefix: str) -> str:
    """A fresh token for Call-IDs, tags and users, so concurrent tests never share state on the device."""
    return f"{prefix}{uuid4().hex[:16]}"


def answer_wait(profile: DeviceProfile) -> float:
    """How long to wait for a final response to a request the device can answer at once: 5 s, or 10*T1 if longer
    (a UDP non-INVITE client gives up after 64*T1; a UAS "SHOULD generate a final response to a non-INVITE request
    as soon as possible", §8.2.6.1)."""
    return max(5.0, 10 * profile.timers.t1)


def quiet_time(profile: DeviceProfile) -> float:
    """How long to watch for a message that must not come: 2*T1, at least 1 s (enough for a UAS to have answered a
    request on loopback and for a first retransmission of its answer)."""
    return max(1.0, 2 * profile.timers.t1)


def edit(
    req: Request,
    *,
    drop: Iterable[str] = (),
    replace: Mapping[str, str | Sequence[str]] | None = None,
    add: Iterable[tuple[str, str]] = (),
    start_line: str | None = None,
    body: bytes | None = None,
    content_length: int | str | None = "auto",
) -> bytes:
    """``req`` as raw bytes with changes the strict builders refuse to make.

    ``drop`` removes every line of those headers (any spelling, compact forms included); ``replace`` puts the given
    value (or, for a sequence, one line per value: a duplicated header) where the first line of that header stood;
    ``add`` appends lines before Content-Length. ``content_length`` is ``"auto"`` (the body's length), a number or
    text written as given, or ``None`` for no Content-Length at all.
    """
    dropped = {canonical_key(n) for n in drop}
    replacing = {canonical_key(k): ([v] if isinstance(v, str) else list(v)) for k, v in (replace or {}).items()}
    placed: set[str] = set()
    headers: list[tuple[str, str]] = []
    for h in req.headers:
        if h.key == "content-length" or h.key in dropped:
            continue
        if h.key in replacing:
            if h.key not in placed:
                headers += [(h.name, v) for v in replacing[h.key]]
                placed.add(h.key)
            continue
        headers.append((h.name, h.value))
    for key, values in replacing.items():
        if key not in placed:
            headers += [(key.title(), v) for v in values]
    headers += list(add)
    return raw_message(
        start_line or req.start_line,
        headers,
        req.body if body is None else body,
        content_length=content_length,
    )


def _matcher(call_id: str | None, branch: str | None, method: str | None, status: object):
    if call_id is None and branch is None:
        raise ValueError("give a Call-ID or a branch to match the device's responses by")
    return response(status, call_id=call_id, branch=branch, method=method)  # type: ignore[arg-type]


def final_to(
    peer: Peer,
    *,
    call_id: str | None = None,
    branch: str | None = None,
    method: str | None = None,
    timeout: float = 5.0,
) -> Response | None:
    """The first final response (200-699) with this Call-ID and/or top-Via branch, or ``None`` when none came."""
    try:
        inc = peer.expect(_matcher(call_id, branch, method, range(200, 700)), timeout)
    except ExpectationFailed:
        return None
    assert isinstance(inc.message, Response)
    return inc.message


def responses_to(
    peer: Peer,
    duration: float,
    *,
    call_id: str | None = None,
    branch: str | None = None,
    method: str | None = None,
) -> list[Incoming]:
    """Every response with this Call-ID and/or branch that arrives within ``duration`` seconds (consumed)."""
    return peer.collect(_matcher(call_id, branch, method, None), duration)


def describe(msgs: Iterable[Response | Incoming]) -> str:
    """``100, 180, 200`` for failure messages."""
    out = []
    for m in msgs:
        msg = m.message if isinstance(m, Incoming) else m
        if isinstance(msg, Response):
            out.append(f"{msg.status} {msg.reason}")
    return ", ".join(out) or "nothing"


def invite_request(peer: Peer, profile: DeviceProfile, **kwargs: object) -> Request:
    """An INVITE with an SDP offer (not sent), for tests that send it themselves."""
    return peer.build_request(
        "INVITE",
        target_uri(profile),
        body=offer(peer),
        content_type="application/sdp",
        **kwargs,  # type: ignore[arg-type]
    )


def end_call(peer: Peer, profile: DeviceProfile, invite: Request, final: Response | None, timeout: float = 5.0) -> None:
    """Leave nothing behind on the device for ``invite``, which the test sent outside a client transaction.

    A 2xx gets its ACK (§13.2.2.4) and a BYE; a 300-699 its ACK (§17.1.1.3, the INVITE server transaction waits
    for it); no final response yet (the device is still ringing) a CANCEL (§9.1) and then the ACK for the final
    response that CANCEL brings."""
    addr = profile.target.address
    if final is None:
        if invite.via:
            tx = peer.request(build_cancel(invite), addr)
            try:
                peer.final_response(tx, timeout)
            except ExpectationFailed:
                pass
        final = final_to(peer, call_id=invite.call_id, branch=invite.transaction_branch, method="INVITE",
                         timeout=timeout)
        if final is None:
            return
    if final.status >= 300:
        peer.send(build_ack_for_non2xx(invite, final), addr)
        return
    if final.status >= 200 and final.to is not None and final.to.tag:
        dialog = Dialog.from_response(invite, final, secure_transport=profile.target.secure)
        peer.send(dialog.create_ack(invite, via=peer.via()), addr)
        bye = dialog.create_request("BYE", via=peer.via())
        try:
            peer.final_response(peer.request(bye, addr), timeout)
        except ExpectationFailed:
            pass


def merged_invites(peer: Peer, profile: DeviceProfile) -> tuple[Request, Response | None, float]:
    """An INVITE in a client transaction, then at once a copy that differs only in its top-Via branch (a merged
    request, RFC 3261 §8.2.2.2). Returns the copy, the final response on the copy's own branch (or ``None``) and the
    wait used; both calls are ended before returning, so the caller only judges."""
    first = invite_request(peer, profile)
    second = with_wrong_branch(first)
    assert isinstance(second, Request)
    tx = peer.request(first, profile.target.address)
    peer.send(bytes(second), profile.target.address)
    wait = answer_wait(profile)
    got = final_to(peer, call_id=second.call_id, branch=second.transaction_branch, timeout=wait)
    try:
        first_final = peer.final_response(tx, wait)
    except ExpectationFailed:
        first_final = None
    end_call(peer, profile, second, got)
    if first_final is not None and 200 <= first_final.status < 300:
        end_call(peer, profile, first, first_final)
    return second, got, wait


def baseline_options(peer: Peer, profile: DeviceProfile) -> Response:
    """A well-formed OPTIONS and its final response: what the device answers when nothing is wrong.

    Sent on the raw path and matched by Call-ID and branch only, so that a response the peer's client transaction
    would not match (a CSeq changed by the device) still counts as an answer; ``ExpectationFailed`` when none came."""
    req = peer.build_request("OPTIONS", target_uri(profile))
    peer.send(req, profile.target.address)
    wait = answer_wait(profile)
    final = final_to(peer, call_id=req.call_id, branch=req.transaction_branch, timeout=wait)
    if final is None:
        raise ExpectationFailed(f"no final response within {wait:g} s to a well-formed OPTIONS ({req.summary()})")
    return final


def assert_alive(peer: Peer, profile: DeviceProfile, after: str) -> None:
    """The device still answers a well-formed OPTIONS after ``after``: it neither crashed nor hung (RFC 4475 §3:
    a parser "must not break")."""
    started = time.monotonic()
    try:
        baseline_options(peer, profile)
    except ExpectationFailed as exc:
        raise AssertionError(
            f"after {after} the device no longer answers a well-formed OPTIONS "
            f"({time.monotonic() - started:.1f} s without a final response): it crashed or hangs. {exc}"
        ) from None


def quoting(*parts: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a test the docstring made of ``parts`` (RFC sentences several test purposes quote, and the test's own
    words), so each test's docstring still quotes the requirement it checks."""

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        fn.__doc__ = "\n\n    ".join(p.strip() for p in parts)
        return fn

    return decorate


def _uri_key(text: str) -> str:
    """A URI with scheme and host lower-cased (RFC 3261 §19.1.4 compares them case-insensitively); the rest as
    written (an approximation: escapes are not resolved, parameters keep their order)."""
    scheme, _, rest = text.partition(":")
    user, at, hostpart = rest.rpartition("@")
    host, sep, tail = hostpart.partition(";")
    return f"{scheme.lower()}:{user}{at}{host.lower()}{sep}{tail}"


def same_name_addr(a: NameAddr, b: NameAddr) -> bool:
    """RFC 3261 §20.20: "Two From header fields are equivalent if their URIs match, and their parameters match."
    Parameter names and values compare case-insensitively (§7.3.1); the display name does not count."""

    def params(na: NameAddr) -> dict[str, str]:
        return {k.lower(): (v or "").lower() for k, v in na.params}

    return _uri_key(a.uri_text) == _uri_key(b.uri_text) and params(a) == params(b)
