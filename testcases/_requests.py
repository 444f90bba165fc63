"""Private helpers of the UAS request-handling and transaction test purposes (RFC 3261 §8.2, §12.2.2, §17.2).

- :func:`edit` turns a valid request from the peer's builder into raw bytes with headers dropped, replaced,
  duplicated or added, another start line, another body or a wrong Content-Length (the raw path, for requests the
  strict builders refuse to make).
- :func:`final_to` / :func:`responses_to` wait for what the device answered to bytes sent outside a client
  transaction, matched by Call-ID or branch (a malformed request may lack either).
- :func:`end_call` leaves no call behind: ACK and BYE for a 2xx, ACK for a 300-699, CANCEL for a pending INVITE.
- :func:`hop_request` builds the ACK for a 300-699 (§17.1.1.3) or the CANCEL (§9.1) of an INVITE the test sent on the
  raw path, copying the INVITE's Request-URI, top Via, From, Call-ID and Route as sent: the strict builders refuse an
  INVITE they would not have made (URI headers in the Request-URI, no branch), and a branch-less request cannot be
  sent in an RFC 3261 client transaction.
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
    "hop_request",
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


def hop_request(method: str, invite: Request, to: str) -> bytes:
    """The ACK for a 300-699 response (``to`` is the response's To) or the CANCEL (``to`` is the INVITE's To) of
    ``invite``, on the raw path.

    §17.1.1.3: "The ACK request constructed by the client transaction MUST contain values for the Call-ID, From, and
    Request-URI that are equal to the values of those header fields in the request passed to the transport by the
    client transaction (call this the "original request").  The To header field in the ACK MUST equal the To header
    field in the response being acknowledged.  The ACK MUST contain a single Via header field, and this MUST be equal
    to the top Via header field of the original request.  The CSeq header field in the ACK MUST contain the same value
    for the sequence number as was present in the original request, but the method parameter MUST be equal to "ACK"."
    §9.1: "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the CANCEL request MUST be
    identical to those in the request being cancelled, including tags.  A CANCEL constructed by a client MUST have
    only a single Via header field value matching the top Via value in the request being cancelled."

    The Request-Line is the INVITE's as it went out, with only the method replaced (a Request-URI with URI headers,
    unusual spacing or an RFC 2543 style request stays as the device saw it); From, Call-ID and Route lines are copied
    with their spelling. ``ValueError`` when the INVITE has no Via or no CSeq number to copy."""
    cseq = invite.cseq
    if cseq is None or not invite.via:
        raise ValueError(f"{invite.start_line!r} has no Via or no CSeq number: no {method} can match it")
    line = bytes(invite).split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("utf-8", "surrogateescape")
    start = method + line[len(line.split(None, 1)[0]):] if line.split() else line
    fields: list[tuple[str, str]] = [("Via", invite.via[0].raw), ("Max-Forwards", "70"), ("To", to)]
    for key in ("from", "call-id"):
        first = next((h for h in invite.headers if h.key == key), None)
        if first is not None:
            fields.append((first.name, first.value))
    fields.append(("CSeq", f"{cseq.number} {method}"))
    fields += [(h.name, h.value) for h in invite.headers if h.key == "route"]
    return raw_message(start, fields, b"")


def end_call(peer: Peer, profile: DeviceProfile, invite: Request, final: Response | None, timeout: float = 5.0) -> None:
    """Leave nothing behind on the device for ``invite``, which the test sent outside a client transaction.

    A 2xx gets its ACK (§13.2.2.4) and a BYE; a 300-699 its ACK (§17.1.1.3, the INVITE server transaction waits
    for it; built by :func:`hop_request`, so that it copies the INVITE as sent); no final response yet (the device
    is still ringing) a CANCEL (§9.1) and then the ACK for the final response that CANCEL brings. The CANCEL of an
    INVITE without an RFC 3261 branch (RFC 2543 style) goes on the raw path: it cannot be a client transaction, which
    is identified by its branch (§17.1.3), and the device matches it by the RFC 2543 rules (§9.2, §17.2.3)."""
    addr = profile.target.address
    if final is None:
        if invite.via:
            branch = invite.transaction_branch or ""
            if branch.startswith("z9hG4bK"):
                tx = peer.request(build_cancel(invite), addr)
                try:
                    peer.final_response(tx, timeout)
                except ExpectationFailed:
                    pass
            else:
                peer.send(hop_request("CANCEL", invite, invite.header("To") or ""), addr)
                final_to(peer, call_id=invite.call_id, method="CANCEL", timeout=timeout)
        final = final_to(peer, call_id=invite.call_id, branch=invite.transaction_branch, method="INVITE",
                         timeout=timeout)
        if final is None:
            return
    if final.status >= 300:
        peer.send(hop_request("ACK", invite, final.header("To") or ""), addr)
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
