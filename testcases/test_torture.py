"""RFC 4475 torture messages sent to the device (a UAS): one test purpose per message, ``TP-TOR-<file stem>``.

Each message of ``tests/data/torture/rfc4475/`` is sent once over the target's transport, and the device's answer is
judged against what RFC 4475 §3 says an element does with it (the MANIFEST's ``expected_handling`` column, from the
RFC text quoted in each purpose's docstring). Whatever the message, the device must still answer an OPTIONS
afterwards, sent from a fresh endpoint (a stream the device closed after a framing error is not reused).

What is sent is the archive's bytes, with one change: in a request, the top Via's transport and sent-by are replaced
by the peer's (``SIP/2.0/UDP 192.0.2.2`` becomes ``SIP/2.0/UDP 127.0.0.1:<port>``), everything around them --
folding, whitespace, the protocol version, parameters, branch -- kept as it is. RFC 3261 §18.2.2 sends a response to
the sent-by (or ``received``) address and port, and the archive's hosts (192.0.2.x, example.com) are not the test's:
without the change the device's answer could not come back, and the purpose could not be judged. The Request-URI
depends on ``--sip-torture-uri`` (ini ``sip_torture_uri``): with ``device``, the default, a plain archive Request-URI
(``sip:user@example.com``, ``sip:t.watson@example.org``; URI parameters, URI headers, brackets and the spacing around
it kept) gets the user of the profile's address of record and the target's host and port, as every other purpose
addresses the device: a UAS that serves only its own user (RFC 3261 §8.2.2.1: 404 for others) then reaches the step
the message tortures instead of turning the request away first. A Request-URI whose user part is itself tortured
(escapes, ``;`` parameters, unusual characters), one without a user part (REGISTER) or of another scheme is never
changed, nor is any when the profile names no user. With ``archive`` the archive's Request-URI is sent as it is (the
purposes whose answer is then a 404 are inconclusive). A second change keeps runs apart: each Call-ID
value gets a token unique to the test in front (``Call-ID: 3f2a1b4c-wsinv.ndaksdj@192.0.2.1``; the rest of the value,
with its unusual characters, is kept). RFC 3261 §8.2.2.2 has a device answer 482 (Loop Detected) to a request whose
From tag, Call-ID and CSeq equal those of a transaction still alive that it does not match -- which the same message
from a run minutes earlier (non-INVITE transactions live 64*T1 on UDP) or from a concurrent run would be. Tags and
branches are kept: with a fresh Call-ID and the test's own sent-by they no longer collide.

On stream transports, the messages whose point is their framing on a datagram are skipped, saying why: ``clerr``,
``ncl``, ``mcl01``, ``dblreq`` and ``inv2543``. ``baddn`` ends without the empty line that closes the header section
(the archive's copy, see ``tests/data/torture/NOTE.md``): on a stream it is sent with that CRLF added, or it would never
be a complete message; on UDP it is sent as is.

A request that creates a call (a 2xx or a provisional to an INVITE) is ended afterwards (ACK and BYE, or CANCEL), a
non-2xx final response to an INVITE is acknowledged, so the device is left as it was found.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest

from conformance.peer import ExpectationFailed, Incoming, any_message
from conformance.plugin import inconclusive, torture_uri_mode
from conformance.sip import Request, Response, SipURI, parse
from conformance.sip.state import DialogError
from testcases._requests import end_call
from testcases._support import target_uri

TORTURE = Path(__file__).resolve().parent.parent / "tests" / "data" / "torture"
MANIFEST = {
    row["file"]: row
    for row in csv.DictReader((TORTURE / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")
    if row["file"].startswith("rfc4475/")
}
STREAMS = ("tcp", "tls", "sctp")

pytestmark = pytest.mark.sip_requires(role="uas")

ANY_REJECTION = frozenset(range(400, 700))


@dataclass(frozen=True)
class Torture:
    """What RFC 4475 says an element does with one message.

    ``expect`` are the answers the RFC names; ``None`` for a valid request, which may get any answer but 400.
    ``liberal``: the RFC also lets an element accept the message (any answer but 400 passes too). ``silence``: the RFC
    lets the element discard it without an answer. ``response``: the message is a response, never answered.
    ``preempted``: answers that mean an earlier step of RFC 3261 §8.2 (the Request-URI, §8.2.2.1) turned the request
    away before the step the message exercises, so the purpose is inconclusive. ``forbidden``: answers that are wrong
    even for a valid message. ``named``: for a valid request, the answer the RFC text names (a warning if another).
    ``on_stream``: why the message is skipped on a stream transport, if it is. ``compat``: accepting the message is
    backward compatibility the RFC leaves to the element ("should be accepted by RFC 3261 elements that want to
    maintain backwards compatibility"), so a 400 is a warning, not a failure. ``must``: the answer the RFC names rests
    on an RFC 3261 MUST (420, §8.2.2.3; 415, §8.2.3), so another answer fails; otherwise it is a SHOULD-level
    expectation (RFC 4475 "is NOT NORMATIVE on any aspect of SIP", §1; RFC 3261 defines 400, 416 and 505 and asks for
    them with SHOULD at most), and another answer warns, citing ``rfc3261`` too where that sentence is.
    """

    section: str
    title: str
    quote: str
    expect: frozenset[int] | None = None
    liberal: bool = False
    silence: bool = False
    response: bool = False
    preempted: frozenset[int] = frozenset()
    forbidden: frozenset[int] = frozenset()
    named: frozenset[int] = frozenset()
    on_stream: str | None = None
    compat: bool = False
    must: bool = False
    rfc3261: str = ""
    faults: tuple[str, ...] = ()
    extra: Callable[..., None] | None = field(default=None, compare=False)


def _r(*codes: int) -> frozenset[int]:
    return frozenset(codes)


_FRAMING = "its point is the framing of a datagram ({}); on a stream that framing cannot be reproduced"


def _contacts_of(resp: Response, user: str) -> list[SipURI]:
    return [u for c in resp.contact if isinstance(u := c.uri, SipURI) and u.user_unescaped == user]


def _cparam01(resp: Response, _peer: object) -> None:
    """§3.3.12: "The response must not include "unknownparam" as a url-parameter for this binding." """
    for uri in _contacts_of(resp, "+19725552222"):
        assert uri.param("unknownparam") is None, (
            f"the 200 lists the binding as <{uri}>: the contact-param unknownparam became a url-parameter (§3.3.12)")


def _cparam02(resp: Response, _peer: object) -> None:
    """§3.3.13: "a subsequent retrieval of the registration must include "unknownparam" as a url-parameter"."""
    listed = _contacts_of(resp, "+19725552222")
    assert any(u.param("unknownparam") is not None for u in listed), (
        f"the 200 lists {[str(u) for u in listed]}: the url-parameter unknownparam was lost (§3.3.13)")


def _regescrt(resp: Response, _peer: object) -> None:
    """§3.3.14: "a subsequent retrieval of the registration must include the escaped Route header in the contact URI
    for this binding"."""
    listed = _contacts_of(resp, "user")
    assert any(any(k.lower() == "route" for k, _ in u.headers) for u in listed), (
        f"the 200 lists {[str(u) for u in listed]}: the escaped Route header of the contact URI was lost (§3.3.14)")


def _bext01(resp: Response, _peer: object) -> None:
    """§3.3.5: 420 "containing an Unsupported header field listing these features from either the Require or
    Proxy-Require header field, depending on the role in which the element is responding" -- a UAS lists Require's."""
    if resp.status != 420:
        return
    listed = {t.lower() for t in resp.unsupported}
    missing = {"nothingsupportsthis", "nothingsupportsthiseither"} - listed
    assert not missing, f"the 420 has Unsupported: {', '.join(resp.unsupported) or '(none)'}; missing {missing}"


# fmt: off
TORTURES: dict[str, Torture] = {
    # -- §3.1.1 valid messages ---------------------------------------------------------------------------------------
    "wsinv": Torture("3.1.1.1", "A short tortuous INVITE is accepted as well formed",
        "All elements should treat this as a well-formed request."),
    "intmeth": Torture("3.1.1.2", "Unusual valid characters; an endpoint answers 501 to the unknown method",
        "If this unusual URI has been defined at a proxy, the proxy will forward this request normally.  Otherwise, a "
        "proxy will generate a 404.  Endpoints will generate a 501 listing the methods they understand in an Allow "
        "header field.", named=_r(501)),
    "esc01": Torture("3.1.1.3", "Valid % escaping is accepted as well formed",
        "A parser must accept this as a well-formed message."),
    "escnull": Torture("3.1.1.4", "Escaped nulls in URIs are accepted as well formed",
        "The message is well formed - parsers must accept this message."),
    "esc02": Torture("3.1.1.5", "% that is not an escape; an endpoint answers 501 to the unknown method",
        "A parser should accept this message as well formed.  A proxy would forward or reject the message depending "
        "on what the Request-URI meant to it.  An endpoint would reject this message with a 501.", named=_r(501)),
    "lwsdisp": Torture("3.1.1.6", "No LWS between display name and < is accepted",
        "Elements should accept this request as well formed."),
    "longreq": Torture("3.1.1.7", "Long header values are accepted as well formed",
        "This well-formed request contains header fields with many values and values that are very long."),
    "dblreq": Torture("3.1.1.8", "Trailing octets in a UDP datagram are ignored",
        "The extra octets happen to look like a SIP INVITE request, but (per section 18.3 of [RFC3261]) they are just "
        "spurious noise that must be ignored.",
        on_stream=_FRAMING.format("octets after Content-Length in one UDP datagram")),
    "semiuri": Torture("3.1.1.9", "Semicolon-separated parameters in the URI user part are accepted",
        "Receiving elements will accept this as a well-formed message."),
    "transports": Torture("3.1.1.10", "Varied and unknown Via transports are accepted",
        "Parsers must accept this message as well formed.  Elements receiving this message would process it exactly "
        "as if the 2nd and subsequent header field values specified UDP (or other transport)."),
    "mpart01": Torture("3.1.1.11", "A multipart MIME body with binary octets is framed and accepted",
        "Receivers must take care to frame the received message properly.  Parsers must accept this message as well "
        "formed, even if the application above the parser does not support multipart/signed."),
    "unreason": Torture("3.1.1.12", "A response with a UTF-8 reason phrase is not answered",
        "This response is well formed.  A parser must accept this message.", response=True),
    "noreason": Torture("3.1.1.13", "A response with an empty reason phrase is not answered",
        "This well-formed response contains no reason phrase.  A parser must accept this message.", response=True),
    # -- §3.1.2 invalid messages -------------------------------------------------------------------------------------
    "badinv01": Torture("3.1.2.1", "Extraneous header field separators are answered 400",
        "This message is syntactically invalid.  An element receiving this request should respond with a 400 Bad "
        "Request error.", expect=_r(400)),
    "clerr": Torture("3.1.2.2", "A Content-Length larger than the message is answered 400 (UDP)",
        "When sent over UDP (as this message ostensibly was), the receiving element should respond with a 400 Bad "
        "Request error.", expect=_r(400), rfc3261="§18.3",
        on_stream=_FRAMING.format("on a stream the receiver can only wait for the missing octets")),
    "ncl": Torture("3.1.2.3", "A negative Content-Length is answered with an error (UDP)",
        "An element receiving this message should respond with an error.  This request appeared over UDP, so the "
        "remainder of the datagram can simply be discarded.", expect=_r(400), silence=True,
        on_stream=_FRAMING.format("on a stream the framing error is not recoverable")),
    "scalar02": Torture("3.1.2.4", "Overlarge scalar values in a request are answered 400",
        "An element receiving this request should respond with a 400 Bad Request due to the CSeq error.",
        expect=_r(400)),
    "scalarlg": Torture("3.1.2.5", "A response with overlarge scalar values is discarded",
        "An element receiving this response will simply discard it.", response=True),
    "quotbal": Torture("3.1.2.6", "An unterminated quoted string is answered 400 (or inferred)",
        "An element receiving this request should return a 400 Bad Request error.  An element could attempt to infer "
        "a terminating quote and accept the message.", expect=_r(400), liberal=True),
    "ltgtruri": Torture("3.1.2.7", "A Request-URI enclosed in <> is answered 400 (or the brackets ignored)",
        "It is reasonable always to reject a request with this error with a 400 Bad Request.  Elements attempting to "
        "be liberal with what they accept may choose to ignore the brackets.", expect=_r(400), liberal=True),
    "lwsruri": Torture("3.1.2.8", "LWS embedded in the Request-URI is answered 400 (or ignored)",
        "An element receiving this request should respond with a 400 Bad Request.  An element could attempt to ignore "
        "the embedded LWS for those schemes (like SIP) where doing so would not introduce ambiguity.",
        expect=_r(400), liberal=True),
    "lwsstart": Torture("3.1.2.9", "Multiple SP in the Request-Line is rejected (or ignored)",
        "It is acceptable to reject this request as malformed.  An element that is liberal in what it accepts may "
        "ignore these extra SP characters when processing the request.", expect=_r(400), liberal=True),
    "trws": Torture("3.1.2.10", "SP at the end of the Request-Line is rejected (or ignored)",
        "It is acceptable to reject this request as malformed.  An element that is liberal in what it accepts may "
        "ignore these extra SP characters when processing the request.", expect=_r(400), liberal=True),
    "escruri": Torture("3.1.2.11", "Escaped headers in the Request-URI are answered 400 (or ignored)",
        "It is acceptable for an element to reject this request with a 400 Bad Request.  An element could choose to "
        "be liberal in what it accepts and ignore the escaped headers.", expect=_r(400), liberal=True),
    "baddate": Torture("3.1.2.12", "A non-GMT Date is rejected or ignored",
        "It is acceptable to reject this request as malformed (though an element shouldn't do that unless the "
        "contents of the Date header field were actually important to its processing).  An element wishing to be "
        "liberal in what it accepts could ignore this value altogether if it wasn't going to use the Date header field "
        "anyway.", expect=_r(400), liberal=True),
    "regbadct": Torture("3.1.2.13", "A Contact URI with headers outside <> is answered 400 (or inferred)",
        "It is reasonable for an element receiving this request to respond with a 400 Bad Request.  An element "
        "choosing to be liberal in what it accepts could infer the angle brackets since there is no ambiguity in this "
        "example.", expect=_r(400), liberal=True),
    "badaspec": Torture("3.1.2.14", "Spaces within an addr-spec are answered 400 (or ignored)",
        "Parsers receiving this request must not break.  It is reasonable to reject this request with a 400 Bad "
        "Request response.  Elements attempting to be liberal may ignore the spaces.", expect=_r(400), liberal=True),
    "baddn": Torture("3.1.2.15", "Non-token characters in an unquoted display name are answered 400 (or inferred)",
        "It is reasonable always to reject this kind of error with a 400 Bad Request response.  An element may attempt "
        "to be liberal in what it receives and infer the missing quotes.", expect=_r(400), liberal=True,
        silence=True),
    "badvers": Torture("3.1.2.16", "An unknown SIP version is answered 505",
        "To an element implementing [RFC3261], this request is malformed due to its high version number.  The element "
        "should respond to the request with a 505 Version Not Supported error.", expect=_r(505), rfc3261="§21.5.6",
        faults=("no-505",)),
    "mismatch01": Torture("3.1.2.17", "Start line and CSeq method mismatch is answered 400",
        "Any element receiving this request will respond with a 400 Bad Request.", expect=_r(400)),
    "mismatch02": Torture("3.1.2.18", "Unknown method with CSeq mismatch is answered 501 (or 400)",
        "Any element receiving this response should respond with a 501 Not Implemented.  A 400 Bad Request is also "
        "acceptable, but choosing a 501 (particularly at proxies) has better future-proof characteristics.",
        expect=_r(501, 400)),
    "bigcode": Torture("3.1.2.19", "A response code above 699 is dropped",
        "This response has a response code larger than 699.  An element receiving this response should simply drop "
        "it.", response=True),
    # -- §3.2 transaction layer ----------------------------------------------------------------------------------------
    "badbranch": Torture("3.2.1", "A branch that is only the magic cookie: 400 or RFC 2543 matching",
        "A parser must not break when receiving this message.  An element receiving this request could reject the "
        "request with a 400 Response (preferably statelessly, as other requests from the source are likely also to "
        "have a malformed branch parameter), or it could fall back to the RFC 2543-style transaction identifier.",
        expect=_r(400), liberal=True),
    # -- §3.3 application layer ----------------------------------------------------------------------------------------
    "insuf": Torture("3.3.1", "Missing Call-ID, From and To: 400, and the device does not break",
        "An element receiving this message must not break because of the missing information.  Ideally, it will "
        "respond with a 400 Bad Request error.", expect=_r(400)),
    "unkscm": Torture("3.3.2", "An unknown Request-URI scheme is answered 416",
        "A parser must accept this as a well-formed SIP request.  An element receiving this request will reject it "
        "with a 416 Unsupported URI Scheme response.", expect=_r(416), rfc3261="§8.2.2.1", faults=("no-416",)),
    "novelsc": Torture("3.3.3", "A known but atypical Request-URI scheme is answered 416 (or 404)",
        "If an element will never accept this scheme as meaningful in a Request-URI, it is appropriate to treat it as "
        "unknown and return a 416 Unsupported URI Scheme response.  If the element might accept some URIs with this "
        "scheme, then a 404 Not Found is appropriate for those URIs it doesn't accept.", expect=_r(416, 404),
        rfc3261="§8.2.2.1", faults=("no-416",)),
    "unksm2": Torture("3.3.4", "Non-SIP URI schemes in To, From and Contact: well formed, not registered",
        "The message is syntactically valid.  Parsers must not fail when receiving this message.  Proxies should "
        "treat this message as they would any other request for this URI.  A registrar would reject this request with "
        "a 400 Bad Request response, since the To: header field is required to contain a SIP or SIPS URI as an AOR.",
        expect=ANY_REJECTION, must=True),
    "bext01": Torture("3.3.5", "Unknown option tags in Require are answered 420 with Unsupported",
        "Any element receiving this request will respond with a 420 Bad Extension response, containing an Unsupported "
        "header field listing these features from either the Require or Proxy-Require header field, depending on the "
        "role in which the element is responding.", expect=_r(420), preempted=_r(404, 416), must=True,
        rfc3261="§8.2.2.3", faults=("no-420", "no-unsupported-420"), extra=_bext01),
    "invut": Torture("3.3.6", "An unknown Content-Type is answered 415",
        "It is syntactically valid.  A parser must not fail when receiving it.  A proxy receiving this request would "
        "process it just as it would any other INVITE.  An endpoint receiving this request would reject it with a 415 "
        "Unsupported Media Type error.", expect=_r(415), preempted=_r(404, 416), must=True, rfc3261="§8.2.3",
        faults=("no-accept-415",)),
    "regaut01": Torture("3.3.7", "An unknown Authorization scheme is accepted as well formed",
        "A registrar that does not care about challenge-response authentication will simply ignore the Authorization "
        "header field, processing this registration as if the field were not present.  A registrar that does care "
        "about challenge-response authentication will reject this request with a 401, issuing a new challenge with a "
        "scheme it understands.  Endpoints choosing not to act as registrars will simply reject the request.  A 405 "
        "Method Not Allowed is appropriate."),
    "multi01": Torture("3.3.8", "Multiple values in single-value header fields are answered 400",
        "An element receiving this request must not break.  An element receiving this request would respond with a "
        "400 Bad Request error.", expect=_r(400)),
    "mcl01": Torture("3.3.9", "Conflicting Content-Length values are answered with an error (UDP)",
        "An element receiving this message should respond with an error.  This request appeared over UDP, so the "
        "remainder of the datagram can simply be discarded.", expect=_r(400), silence=True,
        on_stream=_FRAMING.format("on a stream the framing error is not recoverable")),
    "bcast": Torture("3.3.10", "A 200 with a broadcast Via is discarded",
        "Per [RFC3261], an endpoint receiving this message should simply discard it.", response=True),
    "zeromf": Torture("3.3.11", "Max-Forwards: 0 at an endpoint is processed normally",
        "An endpoint should process the request as if the Max-Forwards field value were still positive.",
        forbidden=_r(483)),
    "cparam01": Torture("3.3.12", "A contact-param after an unbracketed Contact URI stays a contact-param",
        "This REGISTER should succeed.  The response must not include \"unknownparam\" as a url-parameter for this "
        "binding.", extra=_cparam01),
    "cparam02": Torture("3.3.13", "A url-parameter of a bracketed Contact URI is kept",
        "The register should succeed, and a subsequent retrieval of the registration must include \"unknownparam\" "
        "as a url-parameter.", extra=_cparam02),
    "regescrt": Torture("3.3.14", "An escaped header in a Contact URI is kept",
        "The register should succeed, and a subsequent retrieval of the registration must include the escaped Route "
        "header in the contact URI for this binding.", extra=_regescrt),
    "sdp01": Torture("3.3.15", "An Accept without application/sdp is answered 406 (or 400)",
        "The recipient of this request could respond with a 406 Not Acceptable, with a Warning/399 indicating that a "
        "response cannot be formulated in the formats offered in the Accept header field.  It is also appropriate to "
        "respond with a 400 Bad Request, since all SIP User-Agents (UAs) supporting INVITE are required to support "
        "application/sdp.", expect=_r(406, 400), preempted=_r(404, 416)),
    # -- §3.4 backward compatibility -----------------------------------------------------------------------------------
    "inv2543": Torture("3.4.1", "An RFC 2543 INVITE (no branch, no From tag, no Content-Length) is accepted",
        "This is a legal message per RFC 2543 (and several bis versions) that should be accepted by RFC 3261 elements "
        "that want to maintain backwards compatibility.", compat=True,
        on_stream=_FRAMING.format("no Content-Length: the body is the rest of the datagram")),
    # -- in the archive only -----------------------------------------------------------------------------------------
    "test": Torture("none", "A message with no SIP-Version, no Via and no CSeq is not accepted",
        "(test.dat is in the RFC 4475 archive but described by no section; it has no SIP-Version, To and From without a "
        "scheme, a header line without a colon, and no Via or CSeq.)", expect=ANY_REJECTION, silence=True,
        must=True),
}
# fmt: on

_CALL_ID_LINE = re.compile(rb"(?im)^((?:call-id|i)[ \t]*:[ \t]*(?:\r\n[ \t]+)?)")
_VIA_LINE = re.compile(rb"(?im)^(?:via|v)[ \t]*:")
_SENT = re.compile(rb"(SIP[ \t\r\n]*/[ \t\r\n]*[^/ \t\r\n]+[ \t\r\n]*/[ \t\r\n]*)([A-Za-z0-9.!%*_+`'~-]+)([ \t\r\n]+)([^;, \t\r\n]+)")


def rewrite_top_via(data: bytes, transport: str, sent_by: str) -> bytes:
    """``data`` with the top Via's transport and sent-by replaced (folding and everything else kept); unchanged
    when the header section has no Via."""
    end = data.find(b"\r\n\r\n")
    head_end = end if end >= 0 else len(data)
    m = _VIA_LINE.search(data, 0, head_end)
    if m is None:
        return data
    s = _SENT.search(data, m.end(), head_end)
    if s is None:
        return data
    return data[: s.start(2)] + transport.encode() + s.group(3) + sent_by.encode() + data[s.end(4) :]


_PLAIN_RURI = re.compile(
    rb"\A([^ \t\r\n]+[ \t]+<?)(sips?):([A-Za-z0-9._~-]+)@([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]+)?(?=[;?> \t\r\n])")


def address_to_device(data: bytes, profile) -> bytes:
    """``data`` with a plain Request-URI's user, host and port replaced by the profile's user and the target's host
    and port (everything else on the Request-Line kept); unchanged when the Request-URI is not plain or the profile
    names no user."""
    user = _profile_user(profile)
    if user is None:
        return data
    t = profile.target
    host = f"[{t.host}]" if ":" in t.host and not t.host.startswith("[") else t.host
    m = _PLAIN_RURI.match(data)
    if m is None:
        return data
    return data[: m.start(3)] + f"{user}@{host}:{t.port}".encode() + data[m.end() :]


def _profile_user(profile) -> str | None:
    aor = profile.aor or ""
    if ":" not in aor or "@" not in aor:
        return None
    user = aor.split(":", 1)[1].split("@", 1)[0]
    return user or None


def stamp_call_ids(data: bytes, token: str) -> bytes:
    """``data`` with ``token`` put in front of every Call-ID value (compact ``i`` too) of the header section."""
    end = data.find(b"\r\n\r\n")
    end = len(data) if end < 0 else end
    return _CALL_ID_LINE.sub(lambda m: m.group(1) + token.encode(), data[:end]) + data[end:]


def _responses(items: list[Incoming]) -> list[Response]:
    return [m for i in items if isinstance(m := i.message, Response)]


def _finish_call(peer, profile, sent: Request | None, answers: list[Response]) -> None:
    """Leave no call behind (:func:`testcases._requests.end_call`): ACK a non-2xx final response (§17.1.1.3, built
    on the raw path from the INVITE as sent: the strict builder refuses the Request-URIs some messages torture, and an
    unacknowledged 300-699 is retransmitted for 64*T1 into ports later purposes reuse), ACK and BYE a 2xx, CANCEL a
    ringing INVITE. An INVITE that got nothing but a 100 is left alone. What cannot be ended is noted in the trace."""
    if sent is None or sent.method != "INVITE":
        return
    finals = [r for r in answers if r.status >= 200]
    if not finals and not any(r.status > 100 for r in answers):
        return
    try:
        end_call(peer, profile, sent, finals[0] if finals else None, timeout=2.0)
    except (DialogError, ValueError, AttributeError, ExpectationFailed) as exc:
        peer.trace.note(f"clean-up of the INVITE left undone: {type(exc).__name__}: {exc}")


def _alive(peer, profile, stem: str) -> Response:
    """An OPTIONS from a fresh endpoint; the device must answer it."""
    ep = peer.open(profile.target.transport, host=peer.endpoint().local[0])
    req = peer.build_request("OPTIONS", target_uri(profile), endpoint=ep)
    tx = peer.request(req, profile.target.address, endpoint=ep)
    try:
        return peer.final_response(tx, max(5.0, 8 * profile.timers.t1))
    except ExpectationFailed:
        pytest.fail(f"after {stem}.dat the device did not answer an OPTIONS: it no longer processes requests")


def _run(stem: str, peer, profile, should, config=None) -> None:
    spec = TORTURES[stem]
    transport = profile.target.transport
    if transport in STREAMS and spec.on_stream:
        pytest.skip(f"not sent over {transport}: {spec.on_stream}")
    data = (TORTURE / "rfc4475" / f"{stem}.dat").read_bytes()
    if stem == "baddn" and transport in STREAMS and not data.endswith(b"\r\n\r\n"):
        data += b"\r\n"
    ep = peer.endpoint()
    if not spec.response:
        data = rewrite_top_via(data, ep.via_transport, ep.sent_by())
        data = stamp_call_ids(data, f"{uuid4().hex[:8]}-")
        if torture_uri_mode(config) == "device":
            data = address_to_device(data, profile)
    sent_msg = parse(data, stream=transport in STREAMS).message
    sent = sent_msg if isinstance(sent_msg, Request) else None
    peer.send(data, profile.target.address)

    wait = max(2.0, 6 * profile.timers.t1)
    if spec.response:
        got = peer.collect(any_message(), wait)
        assert not got, (
            f"the device answered the {spec.section} response {stem}.dat with {got[0].entry.summary}: RFC 4475 §"
            f"{spec.section}: \"{spec.quote}\" -- a response is never answered")
        _alive(peer, profile, stem)
        return

    # Read what the device sends back: the first final response, or whatever arrives until the wait is over.
    items: list[Incoming] = []
    try:
        first = peer.expect(any_message(), wait)
        items.append(first)
        while not any(r.status >= 200 for r in _responses(items)):
            items.append(peer.expect(any_message(), wait))
    except ExpectationFailed:
        pass
    answers = _responses(items)
    finals = [r for r in answers if r.status >= 200]
    final = finals[0] if finals else None
    ringing = [r for r in answers if 100 < r.status < 200]
    said = (f"{final.status} {final.reason}" if final else
            f"{ringing[0].status} {ringing[0].reason} and no final response" if ringing else
            "100 Trying and no final response" if answers else "nothing")
    if stem == "dblreq":
        # The trailing octets look like an INVITE (Call-ID dblreq.0ha0isnda977644900765@192.0.2.15): never processed.
        more = peer.collect(any_message(), 0.5)
        stray = [m for m in [*answers, *_responses(more)] if m.cseq is not None and m.cseq.method == "INVITE"]
        assert not stray, f"the device answered the octets after Content-Length as an INVITE: {stray[0].summary()}"
    try:
        _judge(stem, spec, final, answers, said, should, peer)
    finally:
        _finish_call(peer, profile, sent, answers)
    _alive(peer, profile, stem)
    if final is not None and final.status in spec.preempted:
        inconclusive(f"the device answered {said}: RFC 3261 §8.2.2.1 turned the Request-URI away before the step "
                     f"RFC 4475 §{spec.section} exercises")


def _cite(spec: Torture) -> str:
    return f"RFC 4475 §{spec.section}" if spec.section != "none" else "RFC 4475 Appendix A (archive only)"


def _judge(stem: str, spec: Torture, final: Response | None, answers: list[Response], said: str, should, peer) -> None:
    where = f"{_cite(spec)}: \"{spec.quote}\"" if spec.section != "none" else f"{_cite(spec)}: {spec.quote}"
    status = final.status if final is not None else None
    if spec.expect is None:
        # A valid message: must be answered, and not as malformed.
        assert answers, f"the well-formed {stem}.dat was not answered at all ({where})"
        if spec.compat:
            # Accepting it is for "elements that want to maintain backwards compatibility": a 400 is a warning.
            should(status != 400, f"4475-{spec.section}-{stem}", f"RFC 4475 §{spec.section}",
                   f"{stem}.dat was answered {said}: the device does not keep backward compatibility")
        else:
            assert status != 400, f"the well-formed {stem}.dat was answered {said}, rejected as malformed ({where})"
        assert status not in spec.forbidden, f"{stem}.dat was answered {said} ({where})"
        if spec.named and status is not None:
            should(status in spec.named, f"4475-{spec.section}-{stem}", f"RFC 4475 §{spec.section}",
                   f"{stem}.dat was answered {said}; the RFC names {'/'.join(map(str, sorted(spec.named)))}")
        if spec.extra is not None and final is not None and final.status == 200:
            spec.extra(final, peer)
        return
    note = peer.trace.note
    if status is not None and status in spec.expect:
        note(f"TP-TOR-{stem}: answered {said}, the handling {_cite(spec)} names")
        if spec.extra is not None and final is not None:
            spec.extra(final, peer)
        return
    if status is not None and status in spec.preempted:
        return  # judged inconclusive once the device is known to be alive
    if spec.liberal and answers and status != 400:
        note(f"TP-TOR-{stem}: answered {said}: the liberal alternative {_cite(spec)} allows (accepted)")
        return
    if spec.silence and final is None and not any(r.status > 100 for r in answers):
        note(f"TP-TOR-{stem}: not answered: the alternative {_cite(spec)} allows (discarded)")
        return
    wanted = "/".join(map(str, sorted(spec.expect))) if spec.expect != ANY_REJECTION else "a 4xx-6xx rejection"
    alternatives = [a for a, on in (("a liberal accept", spec.liberal), ("no answer", spec.silence)) if on]
    also = f" (or {' or '.join(alternatives)})" if alternatives else ""
    if spec.must:
        pytest.fail(f"{stem}.dat was answered with {said}; expected {wanted}{also} ({where}"
                    + (f"; RFC 3261 {spec.rfc3261}" if spec.rfc3261 else "") + ")")
    # RFC 4475 is not normative and RFC 3261 asks for 400/416/505 with SHOULD at most: a warning, not a failure.
    citation = _cite(spec) + (f", RFC 3261 {spec.rfc3261}" if spec.rfc3261 else "")
    should(False, f"4475-{spec.section}-{stem}", citation,
           f"{stem}.dat was answered with {said}; expected {wanted}{also}")


def _make(stem: str) -> Callable[..., None]:
    spec = TORTURES[stem]
    row = MANIFEST[f"rfc4475/{stem}.dat"]

    def test(sip_peer, sip_profile, sip_should, pytestconfig) -> None:
        _run(stem, sip_peer, sip_profile, sip_should, pytestconfig)

    section = _cite(spec)
    test.__name__ = f"test_rfc4475_{stem}"
    test.__qualname__ = test.__name__
    quoted = f"\"{spec.quote}\"" if spec.section != "none" else spec.quote
    test.__doc__ = (f"{section} ({stem}.dat, MANIFEST: {row['expected_handling']}): {quoted} Then the device must "
                    "still answer an OPTIONS.")
    test = pytest.mark.sip_purpose(f"TP-TOR-{stem}", spec.title, section, "RFC 3261 §8.2")(test)
    if spec.faults:
        test = pytest.mark.sip_faults(*spec.faults)(test)
    return test


for _stem in sorted(TORTURES):
    globals()[f"test_rfc4475_{_stem}"] = _make(_stem)
del _stem

assert sorted(f"rfc4475/{s}.dat" for s in TORTURES) == sorted(MANIFEST), "every RFC 4475 message has a purpose"
