"""The rule catalogue: every rule fires on a message or trace that breaks it and stays silent on one that does not.

Each case builds its messages with the strict core builders and breaks them with ``with_header`` / ``without_header``
or the raw path, so a case fails for the one reason its rule is about.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checks import (
    DOCS_PATH,
    RULE_ID,
    AppliesTo,
    Context,
    Finding,
    Level,
    catalogue,
    check_message,
    check_trace,
    effective_role,
    get_rule,
    render_catalogue,
    split_by_level,
    tag_entropy_bits,
    transport_kind,
)
from conformance.sip import (
    Request,
    Response,
    build_ack_for_non2xx,
    build_cancel,
    build_prack,
    build_request,
    build_response,
    name_addr,
    parse,
    raw_message,
    via_value,
)
from conformance.trace import MessageEntry, Trace

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
TESTER = ("192.0.2.1", 5060)
DEVICE = ("192.0.2.2", 5060)
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK"
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def req(
    method: str = "INVITE",
    *,
    uri: str = "sip:bob@192.0.2.2",
    branch: str = "z9hG4bKinv0001",
    host: str = "192.0.2.1",
    cseq: int = 1,
    call_id: str = "call1@example.com",
    from_tag: str | None = "a5b6c7d8e9",
    to_tag: str | None = None,
    to: str = BOB,
    contact: str | None = "<sip:alice@192.0.2.1:5060>",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    rport: bool = False,
    route: tuple[str, ...] = (),
) -> Request:
    if headers is None:
        headers = [("Allow", ALLOW), ("Supported", "100rel")] if method == "INVITE" else []
    return build_request(
        method,
        uri,
        from_=name_addr(ALICE, "Alice", from_tag),
        to=name_addr(to, tag=to_tag),
        via=via_value("UDP", host, 5060, branch, rport=rport),
        call_id=call_id,
        cseq=cseq,
        contact=contact,
        headers=headers,
        body=body,
        content_type=content_type,
        route=route,
    )


def rsp(request: Request, status: int, **kw: Any) -> Response:
    if "contact" not in kw and request.method == "INVITE" and 101 <= status < 300:
        kw["contact"] = "<sip:bob@192.0.2.2:5060>"
    if "to_tag" not in kw and (request.to is None or not request.to.tag) and status != 100:
        kw["to_tag"] = "f00dcafe1234"
    return build_response(request, status, **kw)


def reliable(request: Request, status: int = 180, rseq: int = 5, **kw: Any) -> Response:
    headers = [("Require", "100rel"), ("RSeq", str(rseq)), *kw.pop("headers", [])]
    return rsp(request, status, headers=headers, **kw)


def raw(start: str, headers: list[tuple[str, str]], body: bytes = b"", **kw: Any) -> Request | Response:
    msg = parse(raw_message(start, headers, body, **kw)).message
    assert msg is not None
    return msg


def basic_headers(method: str = "OPTIONS", cseq: int = 1) -> list[tuple[str, str]]:
    return [
        ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKraw1"),
        ("Max-Forwards", "70"),
        ("To", f"<{BOB}>"),
        ("From", f"<{ALICE}>;tag=a5b6c7d8e9"),
        ("Call-ID", "raw1@example.com"),
        ("CSeq", f"{cseq} {method}"),
    ]


class Flow:
    """A hand-made trace: the tester sends (``direction="sent"``), the device answers (``"received"``)."""

    def __init__(self) -> None:
        self.entries: list[MessageEntry] = []
        self.t = 0.0

    def _add(self, direction: str, msg: Request | Response | bytes, t: float | None, transport: str) -> MessageEntry:
        self.t = self.t + 0.01 if t is None else t
        data = msg if isinstance(msg, bytes) else bytes(msg)
        parsed = parse(data).message if isinstance(msg, bytes) else msg
        local, remote = (TESTER, DEVICE)
        entry = MessageEntry(
            len(self.entries), self.t, direction, transport, local, remote, data, parsed,  # type: ignore[arg-type]
            parsed.defects if parsed is not None else parse(data).defects,
        )
        self.entries.append(entry)
        return entry

    def tester(self, msg: Request | Response, t: float | None = None, transport: str = "udp") -> Flow:
        self._add("sent", msg, t, transport)
        return self

    def device(self, msg: Request | Response | bytes, t: float | None = None, transport: str = "udp") -> Flow:
        self._add("received", msg, t, transport)
        return self

    def idle_until(self, t: float) -> Flow:
        """An unrelated message at ``t``, so that the trace visibly goes on."""
        self._add("sent", req("OPTIONS", branch="z9hG4bKidle", call_id="idle@example.com", from_tag="9f8e7d6c5b"),
                  t, "udp")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# The cases: one violating and one conformant input per rule
# ---------------------------------------------------------------------------------------------------------------------

Input = tuple[Request | Response, Context] | Flow


@dataclass(frozen=True)
class Case:
    rule: str
    bad: Callable[[], Input]
    good: Callable[[], Input]


def run(inp: Input) -> list[Finding]:
    if isinstance(inp, Flow):
        return check_trace(inp.entries)
    msg, ctx = inp
    return check_message(msg, ctx)


def answer(request: Request, status: int, **kw: Any) -> tuple[Response, Context]:
    return rsp(request, status, **kw), Context(request=request)


def alone(msg: Request | Response, **kw: Any) -> tuple[Request | Response, Context]:
    return msg, Context(**kw)


INV = req()
OPT = req("OPTIONS", branch="z9hG4bKopt0001", contact=None)
REG = req(
    "REGISTER", uri="sip:example.com", branch="z9hG4bKreg0001", to=ALICE, contact="<sip:alice@192.0.2.1>;expires=3600"
)
BYE = req("BYE", branch="z9hG4bKbye0001", to_tag="f00dcafe1234", cseq=2, contact=None)
REQ_100REL = req(headers=[("Allow", ALLOW), ("Require", "100rel")])
REQ_NO_100REL = req(headers=[("Allow", ALLOW)])


def _sips_invite() -> Request:
    return req(uri="sips:bob@example.com", contact="<sips:alice@192.0.2.1>")


def _domain_via() -> Request:
    return req(host="pc33.example.com")


def _rport_req() -> Request:
    return req(rport=True)


def _with_top_via(msg: Response, suffix: str) -> Response:
    out = msg.with_header("Via", msg.via[0].raw + suffix)
    assert isinstance(out, Response)
    return out


MESSAGE_CASES = [
    Case("3261-8.1.1-mandatory-headers", lambda: alone(INV.without_header("Max-Forwards")), lambda: alone(INV)),
    Case("3261-8.1.1.3-from-tag", lambda: alone(req(from_tag=None)), lambda: alone(INV)),
    Case("3261-8.1.1.5-cseq-method", lambda: alone(INV.with_header("CSeq", "1 BYE")), lambda: alone(INV)),
    Case(
        "3261-8.1.1.5-cseq-number",
        lambda: alone(INV.with_header("CSeq", f"{2**31} INVITE")),
        lambda: alone(INV.with_header("CSeq", f"{2**31 - 1} INVITE")),
    ),
    Case("3261-8.1.1.6-max-forwards-70", lambda: alone(INV.with_header("Max-Forwards", "10")), lambda: alone(INV)),
    Case(
        "3261-8.1.1.7-via-branch",
        lambda: alone(INV.with_header("Via", "SIP/2.0/UDP 192.0.2.1:5060")),
        lambda: alone(INV),
    ),
    Case(
        "3261-8.1.1.7-branch-cookie",
        lambda: alone(INV.with_header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=Z9HG4BK1234")),
        lambda: alone(INV),
    ),
    Case(
        "3261-8.1.1.7-via-protocol",
        lambda: alone(INV.with_header("Via", "SIP/3.0/UDP 192.0.2.1:5060;branch=z9hG4bK1234")),
        lambda: alone(INV),
    ),
    Case("3261-8.1.1.8-contact-in-invite", lambda: alone(req(contact=None)), lambda: alone(INV)),
    Case(
        "3261-8.1.1.8-contact-sips",
        lambda: alone(req(uri="sips:bob@example.com")),
        lambda: alone(_sips_invite()),
    ),
    Case(
        "3261-9.1-cancel-no-require",
        lambda: alone(build_cancel(INV).with_header("Require", "100rel")),
        lambda: alone(build_cancel(INV)),
    ),
    Case(
        "3261-9.1-cancel-single-via",
        lambda: alone(build_cancel(INV).with_header_added("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKzz")),
        lambda: alone(build_cancel(INV)),
    ),
    Case(
        "3261-10.2-register-uri",
        lambda: alone(req("REGISTER", uri="sip:alice@example.com", to=ALICE)),
        lambda: alone(REG),
    ),
    Case(
        "3261-10.2-register-to-sip",
        lambda: alone(REG.with_header("To", "<tel:+15551234567>")),
        lambda: alone(REG),
    ),
    Case(
        "3261-10.2.2-contact-star",
        lambda: alone(req("REGISTER", uri="sip:example.com", to=ALICE, contact="*", headers=[("Expires", "3600")])),
        lambda: alone(req("REGISTER", uri="sip:example.com", to=ALICE, contact="*", headers=[("Expires", "0")])),
    ),
    Case("3261-13.2.1-allow-in-invite", lambda: alone(INV.without_header("Allow")), lambda: alone(INV)),
    Case("3261-13.2.1-supported-in-invite", lambda: alone(INV.without_header("Supported")), lambda: alone(INV)),
    Case(
        "3261-11.1-accept-in-options",
        lambda: alone(OPT),
        lambda: alone(OPT.with_header("Accept", "application/sdp")),
    ),
    Case("3261-15-bye-in-dialog", lambda: alone(req("BYE", contact=None)), lambda: alone(BYE)),
    Case(
        "3261-20-not-applicable-in-request",
        lambda: alone(BYE.with_header("Contact", "<sip:alice@192.0.2.1>")),
        lambda: alone(BYE),
    ),
    Case(
        "3261-20.15-content-type-with-body",
        lambda: alone(raw("OPTIONS sip:bob@192.0.2.2 SIP/2.0", basic_headers(), b"hello")),
        lambda: alone(raw("OPTIONS sip:bob@192.0.2.2 SIP/2.0", [*basic_headers(), ("Content-Type", "text/plain")],
                          b"hello")),
    ),
    Case(
        "3261-18.3-content-length-on-stream",
        lambda: alone(raw("OPTIONS sip:bob@192.0.2.2 SIP/2.0", basic_headers(), content_length=None),
                      transport="stream"),
        lambda: alone(raw("OPTIONS sip:bob@192.0.2.2 SIP/2.0", basic_headers()), transport="stream"),
    ),
    Case(
        "3261-20.14-content-length-present",
        lambda: alone(raw("OPTIONS sip:bob@192.0.2.2 SIP/2.0", basic_headers(), content_length=None),
                      transport="datagram"),
        lambda: alone(raw("OPTIONS sip:bob@192.0.2.2 SIP/2.0", basic_headers()), transport="datagram"),
    ),
    Case(
        "3261-20.14-content-length-value",
        lambda: alone(raw("OPTIONS sip:bob@192.0.2.2 SIP/2.0", [*basic_headers(), ("Content-Type", "text/plain")],
                          b"hello", content_length=2)),
        lambda: alone(raw("OPTIONS sip:bob@192.0.2.2 SIP/2.0", [*basic_headers(), ("Content-Type", "text/plain")],
                          b"hello")),
    ),
    Case("3261-25-syntax", lambda: alone(INV.with_header("Max-Forwards", "seventy")), lambda: alone(INV)),
    Case(
        "3261-25-syntax-minor",
        lambda: alone(INV.with_header("Date", "yesterday at noon")),
        lambda: alone(INV.with_header("Date", "Sat, 13 Nov 2010 23:29:00 GMT")),
    ),
    Case(
        "3261-20-response-mandatory-headers",
        lambda: alone(rsp(INV, 486).without_header("Call-ID")),
        lambda: alone(rsp(INV, 486)),
    ),
    Case(
        "3261-8.2.6.2-from-copied",
        lambda: (rsp(INV, 486).with_header("From", f"<{ALICE}>;tag=0000ffff1111"), Context(request=INV)),
        lambda: (rsp(INV, 486).with_header("From", f'"Someone Else" <{ALICE}>;tag=a5b6c7d8e9'), Context(request=INV)),
    ),
    Case(
        "3261-8.2.6.2-call-id-copied",
        lambda: (rsp(INV, 486).with_header("Call-ID", "CALL1@example.com"), Context(request=INV)),
        lambda: answer(INV, 486),
    ),
    Case(
        "3261-8.2.6.2-cseq-copied",
        lambda: (rsp(INV, 486).with_header("CSeq", "2 INVITE"), Context(request=INV)),
        lambda: answer(INV, 486),
    ),
    Case(
        "3261-8.2.6.2-via-copied",
        lambda: (rsp(INV, 486).with_header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKother"),
                 Context(request=INV)),
        lambda: (_with_top_via(rsp(INV, 486), ";received=192.0.2.1"), Context(request=INV)),
    ),
    Case(
        "3261-8.2.6.2-via-count",
        lambda: (rsp(INV, 486).with_header_added("Via", "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKextra"),
                 Context(request=INV)),
        lambda: answer(INV, 486),
    ),
    Case(
        "3261-8.2.6.2-to-copied",
        lambda: (rsp(BYE, 200).with_header("To", f"<{BOB}>;tag=00000000aaaa"), Context(request=BYE)),
        lambda: answer(BYE, 200),
    ),
    Case(
        "3261-8.2.6.2-to-tag",
        lambda: (rsp(INV, 486).with_header("To", f"<{BOB}>"), Context(request=INV)),
        lambda: answer(INV, 486),
    ),
    Case(
        "3261-8.2.6.2-to-uri",
        lambda: (rsp(INV, 486).with_header("To", "<sip:carol@example.com>;tag=f00dcafe1234"), Context(request=INV)),
        lambda: answer(INV, 486),
    ),
    Case("3261-17.2.1-trying-no-to-tag", lambda: answer(INV, 100, to_tag="f00dcafe1234"), lambda: answer(INV, 100)),
    Case(
        "3261-8.2.6.1-timestamp-in-100",
        lambda: (rsp(req(headers=[("Timestamp", "54")]), 100).without_header("Timestamp"),
                 Context(request=req(headers=[("Timestamp", "54")]))),
        lambda: answer(req(headers=[("Timestamp", "54")]), 100),
    ),
    Case("3261-8.2.6.1-no-provisional-non-invite", lambda: answer(OPT, 100), lambda: answer(INV, 100)),
    Case(
        "3261-17-no-response-to-ack",
        lambda: answer(req("ACK", to_tag="f00dcafe1234", contact=None), 200),
        lambda: answer(BYE, 200),
    ),
    Case("3261-8.2.1-allow-in-405", lambda: answer(OPT, 405), lambda: answer(OPT, 405, headers=[("Allow", ALLOW)])),
    Case(
        "3261-8.2.2.3-unsupported-in-420",
        lambda: answer(req(headers=[("Require", "foo")]), 420, headers=[("Unsupported", "bar")]),
        lambda: answer(req(headers=[("Require", "foo")]), 420, headers=[("Unsupported", "foo")]),
    ),
    Case(
        "3261-8.2.4-require-in-421",
        lambda: answer(INV, 421),
        lambda: answer(INV, 421, headers=[("Require", "100rel")]),
    ),
    Case(
        "3261-8.2.4-extension-supported",
        lambda: answer(req(headers=[("Supported", "timer")]), 200, headers=[("Require", "100rel")]),
        lambda: answer(req(headers=[("Supported", "timer")]), 200, headers=[("Require", "timer")]),
    ),
    Case(
        "3261-8.2.3-accept-in-415",
        lambda: answer(req("MESSAGE", body=b"hi", content_type="text/x-odd", contact=None), 415),
        lambda: answer(req("MESSAGE", body=b"hi", content_type="text/x-odd", contact=None), 415,
                       headers=[("Accept", "text/plain")]),
    ),
    Case(
        "3261-10.3-min-expires-in-423",
        lambda: answer(REG, 423),
        lambda: answer(REG, 423, headers=[("Min-Expires", "3600")]),
    ),
    Case(
        "3261-20-www-authenticate-in-401",
        lambda: answer(REG, 401),
        lambda: answer(REG, 401, headers=[("WWW-Authenticate", 'Digest realm="example.com", nonce="abc"')]),
    ),
    Case(
        "3261-20-proxy-authenticate-in-407",
        lambda: answer(INV, 407),
        lambda: answer(INV, 407, headers=[("Proxy-Authenticate", 'Digest realm="example.com", nonce="abc"')]),
    ),
    Case("3261-12.1.1-contact-in-2xx", lambda: answer(INV, 200, contact=None), lambda: answer(INV, 200)),
    Case("3261-13.3.1.1-contact-in-1xx", lambda: answer(INV, 180, contact=None), lambda: answer(INV, 180)),
    Case(
        "3261-12.1.1-contact-sip-uri",
        lambda: answer(INV, 200, contact="<tel:+15551234567>"),
        lambda: answer(INV, 200),
    ),
    Case(
        "3261-12.1.1-contact-sips",
        lambda: answer(_sips_invite(), 200),
        lambda: answer(_sips_invite(), 200, contact="<sips:bob@192.0.2.2>"),
    ),
    Case(
        "3261-12.1.1-record-route-copied",
        lambda: answer(req(headers=[("Record-Route", "<sip:p1.example.com;lr>"),
                                    ("Record-Route", "<sip:p2.example.com;lr>")]), 200, record_route=False),
        lambda: answer(req(headers=[("Record-Route", "<sip:p1.example.com;lr>"),
                                    ("Record-Route", "<sip:p2.example.com;lr>")]), 200),
    ),
    Case(
        "3261-13.3.1.4-allow-supported-in-2xx",
        lambda: answer(INV, 200),
        lambda: answer(INV, 200, headers=[("Allow", ALLOW), ("Supported", "100rel")]),
    ),
    Case(
        "3261-11.2-options-2xx-headers",
        lambda: answer(OPT, 200, headers=[("Allow", ALLOW)]),
        lambda: answer(OPT, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp"),
                                          ("Accept-Encoding", "identity"), ("Accept-Language", "en"),
                                          ("Supported", "100rel")]),
    ),
    Case(
        "3261-20.5-allow-complete",
        lambda: answer(INV, 200, headers=[("Allow", "INVITE, BYE")]),
        lambda: answer(INV, 200, headers=[("Allow", ALLOW)]),
    ),
    Case(
        "3261-10.3-contact-expires",
        lambda: answer(REG, 200, contact="<sip:alice@192.0.2.1>"),
        lambda: answer(REG, 200, contact="<sip:alice@192.0.2.1>;expires=1800"),
    ),
    Case(
        "3261-10.3-bindings-listed",
        lambda: answer(REG, 200, contact="<sip:someone@192.0.2.9>;expires=1800"),
        lambda: answer(REG, 200, contact="<sip:alice@192.0.2.1>;expires=1800"),
    ),
    Case(
        "3261-10.3-no-record-route",
        lambda: answer(REG, 403, headers=[("Record-Route", "<sip:p1.example.com;lr>")]),
        lambda: answer(REG, 403),
    ),
    Case("3261-10.3-no-6xx", lambda: answer(REG, 603), lambda: answer(REG, 403)),
    Case(
        "3261-18.2.1-received",
        lambda: (rsp(_domain_via(), 486), Context(request=_domain_via(), request_source=TESTER)),
        lambda: (_with_top_via(rsp(_domain_via(), 486), ";received=192.0.2.1"),
                 Context(request=_domain_via(), request_source=TESTER)),
    ),
    Case(
        "3581-4-rport",
        lambda: (rsp(_rport_req(), 486), Context(request=_rport_req(), request_source=TESTER)),
        lambda: (rsp(_rport_req(), 486).with_header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv0001"
                                                    ";rport=5060;received=192.0.2.1"),
                 Context(request=_rport_req(), request_source=TESTER)),
    ),
    Case(
        "3581-4-received",
        lambda: (rsp(_rport_req(), 486).with_header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv0001"
                                                    ";rport=5060"),
                 Context(request=_rport_req(), request_source=TESTER)),
        lambda: (rsp(_rport_req(), 486).with_header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv0001"
                                                    ";rport=5060;received=192.0.2.1"),
                 Context(request=_rport_req(), request_source=TESTER)),
    ),
    Case("3261-19.3-tag-random", lambda: alone(req(from_tag="1234")), lambda: alone(INV)),
    Case(
        "3262-3-reliable-headers",
        lambda: answer(INV, 183, headers=[("Require", "100rel")]),
        lambda: (reliable(INV, 183), Context(request=INV)),
    ),
    Case(
        "3262-3-no-reliable-100",
        lambda: answer(INV, 100, headers=[("Require", "100rel"), ("RSeq", "1")]),
        lambda: answer(INV, 100),
    ),
    Case(
        "3262-3-reliable-needs-offer",
        lambda: (reliable(REQ_NO_100REL), Context(request=REQ_NO_100REL)),
        lambda: (reliable(INV), Context(request=INV)),
    ),
    Case(
        "3262-3-reliable-when-required",
        lambda: answer(REQ_100REL, 180),
        lambda: (reliable(REQ_100REL), Context(request=REQ_100REL)),
    ),
]


# -- trace cases ------------------------------------------------------------------------------------------------------

D_INV = req(branch="z9hG4bKdev0001", host="192.0.2.2", call_id="dcall@example.com", from_tag="d1e2f3a4b5c6")


def _answered(status: int, tag: str = "f00dcafe1234") -> Response:
    return rsp(D_INV, status, to_tag=tag)


def _dialog_request(method: str, cseq: int, branch: str, tag: str = "f00dcafe1234") -> Request:
    return req(method, branch=branch, host="192.0.2.2", call_id="dcall@example.com", from_tag="d1e2f3a4b5c6",
               to_tag=tag, cseq=cseq, contact=None)


def _ack_2xx(cseq: int = 1) -> Request:
    return _dialog_request("ACK", cseq, "z9hG4bKdevack01")


def _reg(cseq: int, branch: str, call_id: str = "reg@example.com") -> Request:
    return req("REGISTER", uri="sip:example.com", branch=branch, host="192.0.2.2", to=ALICE, cseq=cseq,
               call_id=call_id, contact="<sip:alice@192.0.2.2>")


def _prack(rel: Response, cseq: int = 2, rseq: int | None = None) -> Request:
    p = build_prack(INV, rel, cseq, via_value("UDP", "192.0.2.1", 5060, f"z9hG4bKprack{cseq}", rport=False))
    if rseq is not None:
        p = p.with_header("RAck", f"{rseq} 1 INVITE")
    assert isinstance(p, Request)
    return p


def _cancel_flow(cancel: Request, provisional: bool = True) -> Flow:
    f = Flow().device(D_INV)
    if provisional:
        f.tester(_answered(180))
    return f.device(cancel)


def _ack_flow(ack: Request | None, retransmit: bool = False) -> Flow:
    final = _answered(486)
    f = Flow().device(D_INV, 0.0).tester(final, 0.1)
    if ack is not None:
        f.device(ack, 0.11)
    if retransmit:
        f.tester(final, 0.6)
    return f.idle_until(4.0)


def _two_xx_flow(times: list[float], ack_at: float | None) -> Flow:
    ok = rsp(INV, 200)
    f = Flow().tester(INV, 0.0)
    for t in times:
        f.device(ok, t)
    if ack_at is not None:
        f.tester(req("ACK", branch="z9hG4bKack2xx1", to_tag="f00dcafe1234", contact=None), ack_at)
    return f.idle_until(max(times) + 5) if ack_at is None else f


def _retransmit_flow(times: list[float], response_at: float | None, method: str = "INVITE") -> Flow:
    r = D_INV if method == "INVITE" else req(method, branch="z9hG4bKdevopt01", host="192.0.2.2", contact=None)
    events: list[tuple[float, str, Request | Response]] = [(t, "device", r) for t in times]
    if response_at is not None:
        events.append((response_at, "tester", rsp(r, 100 if method == "INVITE" else 200)))
    f = Flow()
    for t, who, msg in sorted(events, key=lambda e: e[0]):
        (f.device if who == "device" else f.tester)(msg, t)
    return f.idle_until(max(times) + 6)


def _rel_flow(*steps: tuple[str, Any], prack_req: Request = INV) -> Flow:
    """INVITE from the tester, then ``("rel", (status, rseq, t))``, ``("prack", (rseq, t))``, ``("rsp", msg)``."""
    f = Flow().tester(prack_req, 0.0)
    cseq = 2
    sent: dict[int, Response] = {}
    for kind, arg in steps:
        if kind == "rel":
            status, rseq, t = arg
            sent.setdefault(rseq, reliable(prack_req, status, rseq=rseq))
            f.device(sent[rseq], t)
        elif kind == "prack":
            rseq, t = arg
            f.tester(_prack(sent[rseq], cseq), t)
            f.device(rsp(_prack(sent[rseq], cseq), 200), t + 0.01)
            cseq += 1
        elif kind == "msg":
            who, msg, t = arg
            (f.tester if who == "tester" else f.device)(msg, t)
    return f


TRACE_CASES = [
    Case(
        "3261-8.2.6.2-to-tag-stable",
        lambda: Flow().tester(INV).device(rsp(INV, 180, to_tag="aaaa1111bbbb")).device(rsp(INV, 486)),
        lambda: Flow().tester(INV).device(rsp(INV, 180)).device(rsp(INV, 486)),
    ),
    Case(
        "3261-9.2-cancel-to-tag",
        lambda: Flow().tester(INV).device(rsp(INV, 180)).tester(build_cancel(INV))
        .device(rsp(build_cancel(INV), 200, to_tag="0123456789ab")),
        lambda: Flow().tester(INV).device(rsp(INV, 180)).tester(build_cancel(INV))
        .device(rsp(build_cancel(INV), 200)),
    ),
    Case(
        "3261-8.1.1.2-no-to-tag-outside-dialog",
        lambda: Flow().device(_dialog_request("OPTIONS", 1, "z9hG4bKdevo1", tag="nobodygave1")),
        lambda: Flow().device(D_INV).tester(_answered(200)).device(_dialog_request("BYE", 2, "z9hG4bKdevbye1")),
    ),
    Case(
        "3261-19.3-tag-unique",
        lambda: Flow().device(D_INV).device(req(branch="z9hG4bKdev0002", host="192.0.2.2", call_id="other@example.com",
                                                from_tag="d1e2f3a4b5c6")),
        lambda: Flow().device(D_INV).device(req(branch="z9hG4bKdev0002", host="192.0.2.2", call_id="other@example.com",
                                                from_tag="0f1e2d3c4b5a")),
    ),
    Case(
        "3261-8.1.1.7-branch-unique",
        lambda: Flow().device(D_INV).device(req("OPTIONS", branch="z9hG4bKdev0001", host="192.0.2.2", cseq=2,
                                                contact=None)),
        lambda: Flow().device(D_INV).tester(_answered(180)).device(build_cancel(D_INV)),
    ),
    Case(
        "3261-12.2.1.1-cseq-increment",
        lambda: Flow().device(D_INV).tester(_answered(200)).device(_ack_2xx())
        .device(_dialog_request("BYE", 3, "z9hG4bKdevbye1")),
        lambda: Flow().device(D_INV).tester(_answered(200)).device(_ack_2xx())
        .device(_dialog_request("BYE", 2, "z9hG4bKdevbye1")),
    ),
    Case(
        "3261-10.2-register-cseq",
        lambda: Flow().device(_reg(1, "z9hG4bKr1")).device(_reg(3, "z9hG4bKr2")),
        lambda: Flow().device(_reg(1, "z9hG4bKr1")).device(_reg(1, "z9hG4bKr1")).device(_reg(2, "z9hG4bKr2")),
    ),
    Case(
        "3261-10.2-register-call-id",
        lambda: Flow().device(_reg(1, "z9hG4bKr1")).device(_reg(1, "z9hG4bKr2", call_id="reg2@example.com")),
        lambda: Flow().device(_reg(1, "z9hG4bKr1")).device(_reg(2, "z9hG4bKr2")),
    ),
    Case(
        "3261-9.1-cancel-matches-invite",
        lambda: _cancel_flow(build_cancel(D_INV).with_header("From", f"<{ALICE}>;tag=ffff0000eeee")),
        lambda: _cancel_flow(build_cancel(D_INV)),
    ),
    Case(
        "3261-9.1-cancel-after-provisional",
        lambda: _cancel_flow(build_cancel(D_INV), provisional=False),
        lambda: _cancel_flow(build_cancel(D_INV)),
    ),
    Case(
        "3261-17.1.1.3-ack-construction",
        lambda: _ack_flow(build_ack_for_non2xx(D_INV, _answered(486)).with_header("To", f"<{BOB}>")),
        lambda: _ack_flow(build_ack_for_non2xx(D_INV, _answered(486))),
    ),
    Case(
        "3261-8.2.2.3-ack-no-require",
        lambda: _ack_flow(build_ack_for_non2xx(D_INV, _answered(486)).with_header("Require", "100rel")),
        lambda: _ack_flow(build_ack_for_non2xx(D_INV, _answered(486))),
    ),
    Case(
        "3261-17.1.1.2-ack-non2xx",
        lambda: _ack_flow(build_ack_for_non2xx(D_INV, _answered(486)), retransmit=True),
        lambda: _ack_flow(build_ack_for_non2xx(D_INV, _answered(486))),
    ),
    Case(
        "3261-13.2.2.4-ack-2xx",
        lambda: Flow().device(D_INV, 0.0).tester(_answered(200), 0.1).idle_until(4.0),
        lambda: Flow().device(D_INV, 0.0).tester(_answered(200), 0.1).device(_ack_2xx(), 0.11).idle_until(4.0),
    ),
    Case(
        "3261-13.2.2.4-ack-2xx-cseq",
        lambda: Flow().device(D_INV).tester(_answered(200)).device(_ack_2xx(cseq=2)),
        lambda: Flow().device(D_INV).tester(_answered(200)).device(_ack_2xx()),
    ),
    Case(
        "3261-17.2.2-final-response-stable",
        lambda: Flow().tester(OPT).device(rsp(OPT, 200)).tester(OPT).device(rsp(OPT, 500)),
        lambda: Flow().tester(OPT).device(rsp(OPT, 200)).tester(OPT).device(rsp(OPT, 200)),
    ),
    Case(
        "3261-17.2.1-retransmit-provisional",
        lambda: Flow().tester(INV, 0.0).device(rsp(INV, 180), 0.1).tester(INV, 0.5).idle_until(3.0),
        lambda: Flow().tester(INV, 0.0).device(rsp(INV, 180), 0.1).tester(INV, 0.5).device(rsp(INV, 180), 0.51),
    ),
    Case(
        "3261-17.2.2-retransmit-response",
        lambda: Flow().tester(OPT, 0.0).device(rsp(OPT, 200), 0.1).tester(OPT, 0.5).idle_until(3.0),
        lambda: Flow().tester(OPT, 0.0).device(rsp(OPT, 200), 0.1).tester(OPT, 0.5).device(rsp(OPT, 200), 0.51),
    ),
    Case(
        "3261-13.3.1.4-2xx-retransmit",
        lambda: _two_xx_flow([1.0, 1.5, 1.7], ack_at=3.0),
        lambda: _two_xx_flow([1.0, 1.5, 2.5, 4.5, 8.5, 12.5], ack_at=13.0),
    ),
    Case(
        "3261-17.1.1.2-invite-retransmit",
        lambda: _retransmit_flow([0.0], response_at=None),
        lambda: _retransmit_flow([0.0, 0.5, 1.5, 3.5], response_at=4.0),
    ),
    Case(
        "3261-17.1.1.2-no-retransmit-after-response",
        lambda: _retransmit_flow([0.0, 0.5], response_at=0.1),
        lambda: _retransmit_flow([0.0], response_at=0.1),
    ),
    Case(
        "3261-17.1.1.2-no-retransmit-reliable",
        lambda: Flow().device(D_INV, 0.0, "tcp").device(D_INV, 0.5, "tcp"),
        lambda: Flow().device(D_INV, 0.0, "tcp").tester(_answered(100), 0.1, "tcp"),
    ),
    Case(
        "3261-17.1.2.2-non-invite-retransmit",
        lambda: _retransmit_flow([0.0, 0.5, 2.5], response_at=2.6, method="OPTIONS"),
        lambda: _retransmit_flow([0.0, 0.5, 1.5, 3.5, 7.5, 11.5], response_at=12.0, method="OPTIONS"),
    ),
    Case(
        "3262-3-rseq-first",
        lambda: _rel_flow(("rel", (180, 2**31, 0.1))),
        lambda: _rel_flow(("rel", (180, 2**31 - 1, 0.1))),
    ),
    Case(
        "3262-3-rseq-increment",
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("prack", (5, 0.2)), ("rel", (183, 7, 0.3))),
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("prack", (5, 0.2)), ("rel", (183, 6, 0.3))),
    ),
    Case(
        "3262-3-prack-before-second",
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("rel", (183, 6, 0.2))),
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("prack", (5, 0.15)), ("rel", (183, 6, 0.2))),
    ),
    Case(
        "3262-3-prack-before-next",
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("prack", (5, 0.15)), ("rel", (181, 6, 0.2)),
                          ("rel", (183, 7, 0.3))),
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("prack", (5, 0.15)), ("rel", (181, 6, 0.2)),
                          ("prack", (6, 0.25)), ("rel", (183, 7, 0.3))),
    ),
    Case(
        "3262-3-prack-481",
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("msg", ("tester", _prack(reliable(INV), rseq=9), 0.2)),
                          ("msg", ("device", rsp(_prack(reliable(INV), rseq=9), 200), 0.21))),
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("msg", ("tester", _prack(reliable(INV), rseq=9), 0.2)),
                          ("msg", ("device", rsp(_prack(reliable(INV), rseq=9), 481), 0.21))),
    ),
    Case(
        "3262-3-no-2xx-before-prack",
        lambda: _rel_flow(("msg", ("device", reliable(INV, 183, body=SDP, content_type="application/sdp"), 0.1)),
                          ("msg", ("device", rsp(INV, 200), 0.2))),
        lambda: _rel_flow(("msg", ("device", reliable(INV, 183, body=SDP, content_type="application/sdp"), 0.1)),
                          ("msg", ("tester", _prack(reliable(INV, 183)), 0.15)),
                          ("msg", ("device", rsp(INV, 200), 0.2))),
    ),
    Case(
        "3262-3-reliable-retransmit",
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("rel", (180, 5, 0.6)), ("rel", (180, 5, 1.1)),
                          ("prack", (5, 3.0))),
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("rel", (180, 5, 0.6)), ("rel", (180, 5, 1.6)),
                          ("rel", (180, 5, 3.6)), ("prack", (5, 4.0))),
    ),
    Case(
        "3262-3-stop-after-prack",
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("prack", (5, 0.2)), ("rel", (180, 5, 0.6))),
        lambda: _rel_flow(("rel", (180, 5, 0.1)), ("prack", (5, 0.2))),
    ),
]

CASES = MESSAGE_CASES + TRACE_CASES


def _ids(findings: list[Finding]) -> list[str]:
    return [f.rule_id for f in findings]


# ---------------------------------------------------------------------------------------------------------------------
# Every rule fails and passes
# ---------------------------------------------------------------------------------------------------------------------


def test_every_rule_has_a_case() -> None:
    assert sorted(c.rule for c in CASES) == sorted(r.id for r in catalogue())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires_on_violation(case: Case) -> None:
    rule = get_rule(case.rule)
    findings = run(case.bad())
    hits = [f for f in findings if f.rule_id == rule.id]
    assert hits, f"{rule.id} did not fire; findings: {[str(f) for f in findings]}"
    for f in hits:
        assert f.level is rule.level
        assert f.section == rule.section and f.rfc == rule.rfc
        assert f.citation == f"{rule.rfc} §{rule.section}"
        assert f.message and f.messages
    if isinstance(case.bad(), Flow):
        assert all(f.evidence for f in hits), "trace findings carry the seq numbers of their evidence"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent_when_conformant(case: Case) -> None:
    findings = run(case.good())
    assert case.rule not in _ids(findings), [str(f) for f in findings if f.rule_id == case.rule]


def test_rfc_notes_contradictions_are_encoded_as_the_rfc_says() -> None:
    # RFC 3261 §17.2.1 downgrades the To tag on an INVITE's 100 from MAY (§8.2.6.2, RFC-NOTES.md) to SHOULD NOT.
    assert get_rule("3261-17.2.1-trying-no-to-tag").level is Level.SHOULD
    # RFC 3262 §3: MUST NOT for the second reliable 1xx, only RECOMMENDED for later ones.
    assert get_rule("3262-3-prack-before-second").level is Level.MUST
    assert get_rule("3262-3-prack-before-next").level is Level.SHOULD
    assert "RFC-NOTES" in get_rule("3262-3-prack-before-next").note


# ---------------------------------------------------------------------------------------------------------------------
# The catalogue as data
# ---------------------------------------------------------------------------------------------------------------------


def test_ids_are_unique_sorted_and_well_formed() -> None:
    ids = [r.id for r in catalogue()]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    for r in catalogue():
        m = RULE_ID.fullmatch(r.id)
        assert m is not None, r.id
        assert r.rfc == f"RFC {m.group('rfc')}" and r.section == m.group("section")


def test_every_rule_has_sentence_summary_and_a_level() -> None:
    for r in catalogue():
        assert r.sentence and r.summary and r.section, r.id
        assert r.level in (Level.MUST, Level.SHOULD, Level.MAY)
        assert r.scope in ("message", "trace")
        assert any(word in r.sentence for word in ("MUST", "SHOULD", "RECOMMENDED", "MAY")) or r.note, (
            f"{r.id}: a sentence without a 2119 keyword needs a note saying why it is normative"
        )


def test_catalogue_size_and_levels() -> None:
    rules = catalogue()
    assert len(rules) >= 40
    assert {r.level for r in rules} >= {Level.MUST, Level.SHOULD}
    assert sum(r.scope == "trace" for r in rules) >= 10


def test_rule_is_frozen_data() -> None:
    rule = get_rule("3261-8.2.6.2-to-tag")
    with pytest.raises(AttributeError):
        rule.id = "x"  # type: ignore[misc]
    with pytest.raises(KeyError):
        get_rule("9999-1-nothing")


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_catalogue_renders(fmt: str) -> None:
    out = render_catalogue(fmt)  # type: ignore[arg-type]
    for r in catalogue():
        assert r.id in out
    if fmt == "json":
        data = json.loads(out)
        assert [d["id"] for d in data] == [r.id for r in catalogue()]
        assert {"level", "section", "sentence", "applies_to", "summary", "citation"} <= set(data[0])
    if fmt == "markdown":
        assert out.startswith("# sipcert rule catalogue")


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(ValueError):
        render_catalogue("yaml")  # type: ignore[arg-type]


def test_docs_rules_md_is_up_to_date() -> None:
    assert DOCS_PATH.exists(), "run: python -m conformance.checks --write-docs"
    assert DOCS_PATH.read_text(encoding="utf-8") == render_catalogue("markdown"), (
        "docs/rules.md is stale: run python -m conformance.checks --write-docs"
    )


# ---------------------------------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------------------------------


def test_conformant_call_produces_no_violation() -> None:
    ringing = rsp(INV, 180, headers=[("Allow", ALLOW), ("Supported", "100rel")])
    ok = rsp(INV, 200, headers=[("Allow", ALLOW), ("Supported", "100rel")], body=SDP, content_type="application/sdp")
    flow = (
        Flow()
        .tester(INV, 0.0)
        .device(rsp(INV, 100), 0.01)
        .device(ringing, 0.02)
        .device(ok, 0.5)
        .tester(req("ACK", branch="z9hG4bKack2xx1", to_tag="f00dcafe1234", contact=None), 0.51)
    )
    violations, warnings = split_by_level(check_trace(flow.entries))
    assert violations == [], [str(f) for f in violations]
    assert all(not f.is_violation for f in warnings)


def test_check_trace_pairs_responses_with_requests_and_records_evidence() -> None:
    flow = Flow().tester(INV).device(rsp(INV, 486).with_header("Call-ID", "wrong@example.com"))
    found = [f for f in check_trace(flow.entries) if f.rule_id == "3261-8.2.6.2-call-id-copied"]
    assert len(found) == 1
    assert found[0].evidence == (0, 1)
    assert "wrong@example.com" in found[0].message and "call1@example.com" in found[0].message


def test_check_trace_accepts_a_trace_and_records_verdicts() -> None:
    trace = Trace("t")
    trace.record_message("sent", "udp", TESTER, DEVICE, bytes(INV), INV)
    bad = rsp(INV, 486).without_header("To")
    trace.record_message("received", "udp", TESTER, DEVICE, bytes(bad), bad)
    findings = check_trace(trace)
    assert "3261-20-response-mandatory-headers" in _ids(findings)
    verdict = findings[0].record(trace)
    assert trace.verdicts() == [verdict]
    assert verdict.outcome == "violation" and verdict.rfc.startswith("RFC ")


def test_unparseable_bytes_from_the_device_are_a_syntax_violation() -> None:
    flow = Flow().device(b"\x00\x01garbage\r\n\r\n")
    found = [f for f in check_trace(flow.entries) if f.rule_id == "3261-25-syntax"]
    assert found and found[0].evidence == (0,)


def test_what_the_tester_sends_is_not_judged() -> None:
    flow = Flow().tester(INV.without_header("Max-Forwards"))
    assert check_trace(flow.entries) == []


def test_levels_filter_and_split() -> None:
    msg = req(from_tag="1234").with_header("Max-Forwards", "10").without_header("Call-ID")
    everything = check_message(msg)
    only_must = check_message(msg, levels=[Level.MUST])
    assert {f.level for f in everything} == {Level.MUST, Level.SHOULD}
    assert only_must and all(f.level is Level.MUST for f in only_must)
    violations, warnings = split_by_level(everything)
    assert len(violations) + len(warnings) == len(everything)


def test_rules_argument_restricts_the_run() -> None:
    rule = get_rule("3261-8.1.1.6-max-forwards-70")
    found = check_message(INV.with_header("Max-Forwards", "1").without_header("Via"), rules=[rule])
    assert _ids(found) == [rule.id]


def test_roles_filter_message_rules() -> None:
    bad = INV.with_header("Max-Forwards", "10")
    assert "3261-8.1.1.6-max-forwards-70" in _ids(check_message(bad))
    # a proxy forwards requests: the originating-UAC rules do not apply to it
    assert "3261-8.1.1.6-max-forwards-70" not in _ids(check_message(bad, Context(role="proxy")))


def test_effective_role_is_per_transaction() -> None:
    assert effective_role(INV, "uas") == "uac"
    assert effective_role(rsp(INV, 200), "uac") == "uas"
    assert effective_role(rsp(REG, 200), None) == "registrar"
    assert effective_role(rsp(INV, 200), "proxy") == "proxy"


def test_transport_kinds() -> None:
    assert transport_kind("TCP") == "stream" and transport_kind("tls") == "stream"
    assert transport_kind("udp") == "datagram" and transport_kind("ws") == "datagram"


def test_applies_to_matching_and_description() -> None:
    a = AppliesTo(kind="response", methods=frozenset({"INVITE"}), statuses=((200, 299),), roles=frozenset({"uas"}))
    assert a.matches(rsp(INV, 200), "uas", None)
    assert a.matches(rsp(INV, 200), "registrar", None)
    assert not a.matches(rsp(INV, 486), "uas", None)
    assert not a.matches(rsp(OPT, 200), "uas", None)
    assert not a.matches(INV, "uas", None)
    assert "INVITE" in a.describe() and "200-299" in a.describe()


def test_tag_entropy_heuristic() -> None:
    assert tag_entropy_bits("1928301774") >= 32  # the RFC's own example tag: ten digits
    assert tag_entropy_bits("a48s") < 32
    assert tag_entropy_bits("aaaaaaaaaaaaaaaa") == 0
    assert tag_entropy_bits("f00dcafe") == 32


def test_timing_tolerance_is_a_parameter() -> None:
    flow = _two_xx_flow([1.0, 1.5, 2.7], ack_at=3.0)  # 1.2 s instead of 1 s
    strict = check_trace(flow.entries, Context(tolerance=0.05, tolerance_ratio=0.05))
    loose = check_trace(flow.entries, Context(tolerance=0.3, tolerance_ratio=0.3))
    assert "3261-13.3.1.4-2xx-retransmit" in _ids(strict)
    assert "3261-13.3.1.4-2xx-retransmit" not in _ids(loose)


def test_2xx_retransmission_after_the_ack_fails() -> None:
    flow = _two_xx_flow([1.0, 1.5], ack_at=1.6)
    flow.device(rsp(INV, 200), 2.5)
    found = [f for f in check_trace(flow.entries) if f.rule_id == "3261-13.3.1.4-2xx-retransmit"]
    assert found and "after the ACK" in found[0].message


def test_missing_2xx_retransmission_fails_only_when_the_trace_goes_on() -> None:
    short = Flow().tester(INV, 0.0).device(rsp(INV, 200), 0.1)
    assert "3261-13.3.1.4-2xx-retransmit" not in _ids(check_trace(short.entries))
    long = _two_xx_flow([0.1], ack_at=None)
    assert "3261-13.3.1.4-2xx-retransmit" in _ids(check_trace(long.entries))


def test_finding_str_names_rule_section_and_evidence() -> None:
    flow = Flow().tester(INV).device(rsp(INV, 486).with_header("CSeq", "9 INVITE"))
    f = next(f for f in check_trace(flow.entries) if f.rule_id == "3261-8.2.6.2-cseq-copied")
    text = str(f)
    assert "MUST" in text and "RFC 3261 §8.2.6.2" in text and "entries 0, 1" in text and "9 INVITE" in text


def test_a_response_with_a_changed_cseq_method_is_still_judged_against_its_request() -> None:
    """§17.1.3 matches by branch and method, so a response whose CSeq method the device changed matches no
    transaction; it answers the request with its branch all the same, and §8.2.6.2 ("The CSeq header field of the
    response MUST equal the CSeq field of the request") must fire."""
    from conformance.checks import Context, check_trace
    from conformance.sip import build_request, build_response, name_addr, new_tag, via_value
    from conformance.trace import Trace

    trace = Trace()
    req = build_request(
        "OPTIONS",
        "sip:x@127.0.0.1:5070",
        from_=name_addr("sip:a@127.0.0.1", tag=new_tag()),
        to=name_addr("sip:x@127.0.0.1"),
        via=via_value("udp", "127.0.0.1", 5080, rport=False),
    )
    trace.record_message("sent", "udp", ("127.0.0.1", 5080), ("127.0.0.1", 5070), bytes(req), req)
    resp = build_response(req, 200).with_header("CSeq", f"{req.cseq.number} INVITE")
    trace.record_message("received", "udp", ("127.0.0.1", 5080), ("127.0.0.1", 5070), bytes(resp), resp)
    assert "3261-8.2.6.2-cseq-copied" in {f.rule_id for f in check_trace(trace, Context(role="uas"))}


def test_a_400_to_a_request_without_to_is_not_held_to_the_copy_rules() -> None:
    """A response to a request with fatal defects cannot copy a To the request lacks: only its own framing is
    judged (docs/deviations.md); its Content-Length still must be right."""
    from conformance.checks import Context, check_trace
    from conformance.sip import parse, raw_message
    from conformance.trace import Trace

    trace = Trace()
    bad = raw_message(
        "OPTIONS sip:x@127.0.0.1:5070 SIP/2.0",
        [("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKx1"), ("From", "<sip:a@127.0.0.1>;tag=1"),
         ("Call-ID", "c1"), ("CSeq", "1 OPTIONS"), ("Max-Forwards", "70")],
    )
    trace.record_message("sent", "udp", ("127.0.0.1", 5080), ("127.0.0.1", 5070), bad)
    reply = raw_message(
        "SIP/2.0 400 Missing To",
        [("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKx1"), ("From", "<sip:a@127.0.0.1>;tag=1"),
         ("Call-ID", "c1"), ("CSeq", "1 OPTIONS")],
    )
    trace.record_message("received", "udp", ("127.0.0.1", 5080), ("127.0.0.1", 5070), reply)
    assert check_trace(trace, Context(role="uas")) == []
    lying = parse(reply).message.with_header("Content-Length", "99")
    trace.record_message("received", "udp", ("127.0.0.1", 5080), ("127.0.0.1", 5070), bytes(lying))
    assert [f.rule_id for f in check_trace(trace, Context(role="uas"))] == ["3261-20.14-content-length-value"]


def test_same_branch_from_another_sent_by_is_another_transaction() -> None:
    """§17.2.3 matches a request to a server transaction by branch, sent-by and method: two OPTIONS with one branch
    from two sent-by values are two transactions, and their different To tags break no rule."""
    from conformance.checks import Context, check_trace
    from conformance.sip import build_request, build_response, name_addr, new_tag
    from conformance.trace import Trace

    trace = Trace()
    for host in ("127.0.0.1", "127.0.0.2"):
        req = build_request(
            "OPTIONS",
            "sip:x@127.0.0.1:5070",
            from_=name_addr("sip:a@127.0.0.1", tag=new_tag()),
            to=name_addr("sip:x@127.0.0.1"),
            via=f"SIP/2.0/UDP {host}:5080;branch=z9hG4bKsamebranch",
            call_id="same-call",
        )
        trace.record_message("sent", "udp", (host, 5080), ("127.0.0.1", 5070), bytes(req), req)
        resp = build_response(req, 200)
        trace.record_message("received", "udp", (host, 5080), ("127.0.0.1", 5070), bytes(resp), resp)
    rules = {f.rule_id for f in check_trace(trace, Context(role="uas"))}
    assert "3261-8.2.6.2-to-tag-stable" not in rules and "3261-17.2.2-final-response-stable" not in rules, rules


def test_a_reliable_1xx_echoed_for_an_invite_retransmission_is_not_a_scheduled_retransmission() -> None:
    """§17.2.1: a retransmitted INVITE in Proceeding gets the most recent provisional again. That copy is not one
    of RFC 3262 §3's T1-doubling retransmissions, and after the PRACK it is no late retransmission either."""
    from conformance.checks import check_trace

    flow = _rel_flow(
        ("rel", (180, 5, 0.1)),
        ("msg", ("tester", INV, 0.3)),  # the INVITE again
        ("rel", (180, 5, 0.31)),  # its echo
        ("rel", (180, 5, 0.6)),  # T1 after the first
        ("rel", (180, 5, 1.6)),  # 2*T1 later
        ("prack", (5, 2.0)),
        ("msg", ("tester", INV, 2.2)),
        ("rel", (180, 5, 2.21)),  # echo after the PRACK
    )
    rules = {f.rule_id for f in check_trace(flow.entries, Context(role="uas"))}
    assert "3262-3-reliable-retransmit" not in rules and "3262-3-stop-after-prack" not in rules, rules
