"""Strict builders: every message they make parses with zero defects, or they raise :class:`BuildError`.

The raw path, :func:`raw_message`, makes whatever bytes it is asked for (wrong Content-Length, missing headers, any
start line) for the fuzzer and for tests that misbehave on purpose.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Sequence

from ._abnf import quote
from ._message import Request, Response
from ._parser import parse

__all__ = [
    "BuildError",
    "REASON_PHRASES",
    "new_branch",
    "new_tag",
    "new_call_id",
    "via_value",
    "name_addr",
    "build_request",
    "build_response",
    "build_ack_for_non2xx",
    "build_cancel",
    "build_prack",
    "raw_message",
    "BRANCH_COOKIE",
]

#: RFC 3261 §8.1.1.7: "The branch ID inserted by an element compliant with this specification MUST always begin with
#: the characters "z9hG4bK"."
BRANCH_COOKIE = "z9hG4bK"

#: Reason phrases of RFC 3261 §21, RFC 3262, RFC 4028 and RFC 6665 (the ones the suite sends or expects).
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


class BuildError(ValueError):
    """A builder was asked for a message that would not be valid; the message says which defects it would have."""


def _hex(bits: int, rng: random.Random | None) -> str:
    if rng is None:
        return secrets.token_hex(bits // 8)
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def new_branch(rng: random.Random | None = None) -> str:
    """A fresh branch: the magic cookie and 64 random bits (RFC 3261 §8.1.1.7: unique across space and time)."""
    return BRANCH_COOKIE + _hex(64, rng)


def new_tag(rng: random.Random | None = None) -> str:
    """A fresh tag with 64 random bits (RFC 3261 §19.3: at least 32 bits of randomness)."""
    return _hex(64, rng)


def new_call_id(host: str = "sipcert.invalid", rng: random.Random | None = None) -> str:
    """A fresh Call-ID, ``random@host`` (RFC 3261 §8.1.1.4)."""
    return f"{_hex(96, rng)}@{host}"


def _hostport(host: str, port: int | None) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def via_value(
    transport: str,
    host: str,
    port: int | None,
    branch: str | None = None,
    *,
    rport: bool = True,
    extra: str = "",
    rng: random.Random | None = None,
) -> str:
    """``SIP/2.0/UDP host:port;branch=...;rport`` (RFC 3261 §8.1.1.7, rport from RFC 3581).

    A missing ``branch`` is made with :func:`new_branch` from ``rng`` (seed it for reproducible output).
    """
    value = f"SIP/2.0/{transport.upper()} {_hostport(host, port)};branch={branch or new_branch(rng)}"
    if rport:
        value += ";rport"
    return value + extra


def name_addr(uri: str, display: str | None = None, tag: str | None = None, params: str = "") -> str:
    """A name-addr: ``"Display" <uri>;tag=...`` (angle brackets always, RFC 3261 §20.10)."""
    value = f"<{uri}>"
    if display:
        value = f"{quote(display)} {value}"
    if tag:
        value += f";tag={tag}"
    return value + params


def _finish(head: list[str], body: bytes, content_type: str | None) -> bytes:
    if body and content_type:
        head.append(f"Content-Type: {content_type}")
    head.append(f"Content-Length: {len(body)}")
    try:
        return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
    except UnicodeEncodeError as exc:
        raise BuildError(f"a header value cannot be encoded: {exc.reason} at {exc.start}") from None


def _strict(data: bytes) -> Request | Response:
    result = parse(data)
    msg = result.message
    if msg is None or result.defects:
        problems = "; ".join(str(d) for d in result.defects) or "no message"
        raise BuildError(f"the message would be invalid: {problems}")
    return msg


def build_request(
    method: str,
    uri: str,
    *,
    from_: str,
    to: str,
    via: str | Sequence[str],
    call_id: str | None = None,
    cseq: int = 1,
    max_forwards: int = 70,
    contact: str | None = None,
    route: Iterable[str] = (),
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    rng: random.Random | None = None,
) -> Request:
    """A request with the headers RFC 3261 §8.1.1 makes mandatory, in the order the RFC lists them.

    ``from_``, ``to``, ``contact`` and ``route`` are header values (see :func:`name_addr`); ``via`` a value or a list
    (see :func:`via_value`). ``headers`` are added as given, before Content-Type and Content-Length. A missing
    ``call_id`` is made from ``rng``.
    """
    vias = [via] if isinstance(via, str) else list(via)
    head = [f"{method} {uri} SIP/2.0"]
    head += [f"Via: {v}" for v in vias]
    head += [
        f"Max-Forwards: {max_forwards}",
        f"To: {to}",
        f"From: {from_}",
        f"Call-ID: {call_id or new_call_id(rng=rng)}",
        f"CSeq: {cseq} {method}",
    ]
    head += [f"Route: {r}" for r in route]
    if contact:
        head.append(f"Contact: {contact}")
    head += [f"{name}: {value}" for name, value in headers]
    msg = _strict(_finish(head, body, content_type))
    assert isinstance(msg, Request)
    return msg


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    record_route: bool | None = None,
    rng: random.Random | None = None,
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6.

    §8.2.6.2: "The From field of the response MUST equal the From header field of the request. The Call-ID header
    field of the response MUST equal the Call-ID header field of the request. The CSeq header field of the response
    MUST equal the CSeq field of the request. The Via header field values in the response MUST equal the Via header
    field values in the request and MUST maintain the same ordering." and "If a request contained a To tag in the
    request, the To header field in the response MUST equal that of the request. However, if the To header field in
    the request did not contain a tag, the URI in the To header field in the response MUST equal the URI in the To
    header field; additionally, the UAS MUST add a tag to the To header field in the response (with the exception of
    the 100 (Trying) response, in which a tag MAY be present)."

    ``to_tag`` is added when the request's To has none (a fresh one is made from ``rng`` for non-100 responses when not
    given).
    ``record_route`` copies Record-Route (RFC 3261 §12.1.1); by default for 101-299 responses to INVITE.
    """
    if not 100 <= status <= 699:
        raise BuildError(f"status {status} is not from 100 to 699")
    missing = [name for name in ("Via", "From", "To", "Call-ID", "CSeq") if request.header(name) is None]
    if missing:
        # §8.2.6.2 copies them from the request: a request without them has no valid response (see raw_message).
        raise BuildError(f"the request has no {', '.join(missing)} to copy into a response (RFC 3261 §8.2.6.2)")
    head = [f"SIP/2.0 {status} {reason if reason is not None else REASON_PHRASES.get(status, 'Unknown')}"]
    head += [f"{h.name}: {h.value}" for h in request.header_fields("Via")]
    if record_route is None:
        record_route = request.method == "INVITE" and 100 < status < 300
    if record_route:
        head += [f"{h.name}: {h.value}" for h in request.header_fields("Record-Route")]
    to_field = request.header("To") or ""
    to = request.to
    if to is not None and to.tag is None and status != 100 and to_tag is None:
        to_tag = new_tag(rng)
    if to is not None and to.tag is None and to_tag:
        to_field = f"{to_field};tag={to_tag}"
    head += [
        f"From: {request.header('From')}",
        f"To: {to_field}",
        f"Call-ID: {request.header('Call-ID')}",
        f"CSeq: {request.header('CSeq')}",
    ]
    # §8.2.6.1: a Timestamp in the request is copied into the response.
    ts = request.header("Timestamp")
    if ts is not None:
        head.append(f"Timestamp: {ts}")
    if contact:
        head.append(f"Contact: {contact}")
    head += [f"{name}: {value}" for name, value in headers]
    msg = _strict(_finish(head, body, content_type))
    assert isinstance(msg, Response)
    return msg


def build_ack_for_non2xx(invite: Request, response: Response) -> Request:
    """The ACK an INVITE client transaction sends for a 300-699 response (RFC 3261 §17.1.1.3).

    "The ACK request constructed by the client transaction MUST contain values for the Call-ID, From, and
    Request-URI that are equal to the values of those header fields in the request passed to the transport by the
    client transaction (call this the "original request"). The To header field in the ACK MUST equal the To header
    field in the response being acknowledged. The ACK MUST contain a single Via header field, and this MUST be equal
    to the top Via header field of the original request. The CSeq header field in the ACK MUST contain the same
    value for the sequence number as was present in the original request, but the method parameter MUST be equal to
    "ACK"." and "If the INVITE request whose response is being acknowledged had Route header fields, those header
    fields MUST appear in the ACK."
    """
    return _hop_request("ACK", invite, response.header("To") or "")


def build_cancel(invite: Request) -> Request:
    """A CANCEL for ``invite`` (RFC 3261 §9.1).

    "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the CANCEL request MUST be
    identical to those in the request being cancelled, including tags. A CANCEL constructed by a client MUST have
    only a single Via header field value matching the top Via value in the request being cancelled." and "If the
    request being cancelled contains a Route header field, the CANCEL request MUST include that Route header
    field's values." It carries no Require or Proxy-Require.
    """
    return _hop_request("CANCEL", invite, invite.header("To") or "")


def _hop_request(method: str, invite: Request, to: str) -> Request:
    """ACK for a non-2xx and CANCEL share their construction: the original request's Request-URI, Call-ID, From,
    CSeq number, Route and its top Via only, with ``to`` as To and ``method`` in CSeq."""
    cseq = invite.cseq
    if cseq is None or not invite.via:
        raise BuildError("the request has no valid CSeq or Via")
    head = [
        f"{method} {invite.uri_text} SIP/2.0",
        f"Via: {invite.via[0].raw}",
        f"Max-Forwards: {invite.max_forwards if invite.max_forwards is not None else 70}",
        f"To: {to}",
        f"From: {invite.header('From')}",
        f"Call-ID: {invite.header('Call-ID')}",
        f"CSeq: {cseq.number} {method}",
    ]
    head += [f"Route: {r}" for r in invite.header_values("Route")]
    msg = _strict(_finish(head, b"", None))
    assert isinstance(msg, Request)
    return msg


def build_prack(
    invite: Request,
    reliable: Response,
    cseq: int,
    via: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """The PRACK for a reliable provisional response (RFC 3262 §7.2), sent in the early dialog it created.

    "The RAck header is sent in a PRACK request to support reliability of provisional responses. It contains two
    numbers and a method tag. The first number is the value from the RSeq header in the provisional response that
    is being acknowledged. The next number, and the method, are copied from the CSeq in the response that is being
    acknowledged." The Request-URI is the remote target (the response's Contact) and the route set is the response's
    Record-Route in reverse order (RFC 3261 §12.1.2); ``cseq`` is the next local CSeq of the dialog.
    """
    rseq, rcseq = reliable.rseq, reliable.cseq
    if rseq is None or rcseq is None:
        raise BuildError("the provisional response has no RSeq or CSeq: it is not reliable")
    target = reliable.contact[0].uri_text if reliable.contact else invite.uri_text
    routes = [na.raw for na in reversed(reliable.record_route)]
    return build_request(
        "PRACK",
        target,
        from_=invite.header("From") or "",
        to=reliable.header("To") or "",
        via=via,
        call_id=invite.call_id,
        cseq=cseq,
        route=routes,
        headers=[("RAck", f"{rseq} {rcseq.number} {rcseq.method}"), *headers],
        body=body,
        content_type=content_type,
    )


def raw_message(
    start_line: str,
    headers: Iterable[tuple[str, str]],
    body: bytes = b"",
    *,
    content_length: int | None | str = "auto",
    line_end: str = "\r\n",
) -> bytes:
    """Any message, valid or not: the raw path for the fuzzer and for misbehaving tests.

    ``content_length="auto"`` appends a correct Content-Length; an int writes that (possibly wrong) value; ``None``
    writes none. Nothing is checked.
    """
    lines = [start_line] + [f"{n}: {v}" for n, v in headers]
    if content_length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return (line_end.join(lines) + line_end + line_end).encode("utf-8", "surrogateescape") + body
