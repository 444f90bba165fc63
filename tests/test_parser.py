"""The tolerant parser (RFC 3261 §7, §25): one targeted test per defect code, and the wire-level behaviour.

Every input is built here from lines, so each test shows the exact bytes it feeds. A defect's offset is checked to
point at the line it concerns (the start line for start-line, framing and missing-header defects).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

import conformance.sip._parser as parser_module
from conformance.sip import (
    DEFAULT_MAX_SIZE,
    DEFECT_CODES,
    HEADERS,
    AbsoluteURI,
    Defect,
    HeaderDef,
    Request,
    Response,
    SipURI,
    TelURI,
    canonical_key,
    header_def,
    parse,
)

START = "OPTIONS sip:bob@example.com SIP/2.0"
BASE: tuple[tuple[str, str], ...] = (
    ("Via", "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds"),
    ("Max-Forwards", "70"),
    ("To", "Bob <sip:bob@example.com>"),
    ("From", "Alice <sip:alice@example.com>;tag=1928301774"),
    ("Call-ID", "a84b4c76e66710@pc33.example.com"),
    ("CSeq", "314159 OPTIONS"),
)


def make(
    *extra: tuple[str, str],
    start: str = START,
    replace: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    body: bytes = b"",
    eol: str = "\r\n",
    length: bool = True,
) -> bytes:
    """A request (or, with a Status-Line ``start``, a response) from the base headers, modified as asked."""
    replace = replace or {}
    lines = [start]
    for name, value in BASE:
        if name in drop:
            continue
        lines.append(f"{name}: {replace.get(name, value)}")
    lines += [f"{name}: {value}" for name, value in extra]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return (eol.join(lines) + eol + eol).encode("utf-8", "surrogateescape") + body


def codes(data: bytes, **kw: object) -> list[str]:
    return [d.code for d in parse(data, **kw).defects]  # type: ignore[arg-type]


def test_base_message_is_clean() -> None:
    result = parse(make())
    assert result.defects == () and result.ok and result.fatal == () and result.codes() == set()
    assert isinstance(result.message, Request) and bytes(result.message) == make()


# -- one test per defect code -----------------------------------------------------------------------------------------


class Case(NamedTuple):
    code: str
    data: bytes
    header: str | None
    #: Where the offset must point: the first occurrence of these bytes in ``data``, or an absolute offset.
    at: bytes | int
    kwargs: dict[str, object] = {}


_RESPONSE = "SIP/2.0 200 OK"
CASES: list[Case] = [
    # RFC 3261 §7.1: "The start-line, each message-header line, and the empty line MUST be terminated by CRLF"; a
    # first line that is neither Request-Line nor Status-Line
    Case("bad-start-line", make(start="HELLO"), None, 0),
    # §7.1 "SIP-Version ... the SIP-Version string ... is "SIP/2.0""
    Case("bad-version", make(start="OPTIONS sip:bob@example.com SIP/3.0"), None, 0),
    # §25.1 extension-method = token
    Case("bad-method", make(start="OPT@ONS sip:bob@example.com SIP/2.0", replace={"CSeq": "1 OPT@ONS"}), None, 0),
    # §7.2 "The Status-Code is a 3-digit integer result code"
    Case("bad-status-code", make(start="SIP/2.0 99 Too Low"), None, 0),
    # §25.1 Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB): no CTL
    Case("bad-reason-phrase", make(start="SIP/2.0 200 O\x01K"), None, 0),
    # RFC 4475 §3.1.2.7: a Request-URI "enclosed within in "<>"" is invalid
    Case("bad-request-uri", make(start="OPTIONS <sip:bob@example.com> SIP/2.0"), None, 0),
    # §20.39 To carries a URI: an addr-spec with no scheme is none
    Case("bad-uri", make(replace={"To": "bob@example.com"}), "To", b"To:"),
    # §8.2.2.1 "If the Request-URI uses a scheme not supported by the UAS, it SHOULD reject the request with a 416"
    Case("unknown-scheme", make(("Contact", "<http://example.com/bob>")), "Contact", b"Contact:"),
    # §25.1 port = 1*DIGIT (and it must fit in 16 bits)
    Case("bad-port", make(("Contact", "<sip:bob@example.com:70000>")), "Contact", b"Contact:"),
    # §25.1 hostname = *( domainlabel "." ) toplabel; no "_"
    Case("bad-host", make(("Contact", "<sip:bob@exa_mple.com>")), "Contact", b"Contact:"),
    # §7.3 "header-name: header-value": a line without a colon
    Case("bad-header-line", make(("X", "1")).replace(b"X: 1", b"No colon here"), None, b"No colon"),
    # §20.26 Priority = "Priority" HCOLON priority-value; priority-value = token
    Case("bad-header-value", make(("Priority", "very urgent")), "Priority", b"Priority:"),
    # §8.1.1 "A valid SIP request formulated by a UAC MUST, at a minimum, contain ... Call-ID"
    Case("missing-header", make(drop=("Call-ID",)), "Call-ID", 0),
    # §7.3.1 only headers defined as a comma-separated list may appear more than once
    Case("duplicate-singleton", make(("Call-ID", "other@example.com")), "Call-ID", b"Call-ID: other"),
    # §8.1.1.5 "The sequence number MUST be expressible as a 32-bit unsigned integer and MUST be less than 2**31."
    Case("bad-cseq", make(replace={"CSeq": "2147483648 OPTIONS"}), "CSeq", b"CSeq:"),
    # §8.1.1.5 "The method MUST match that of the request."
    Case("cseq-method-mismatch", make(replace={"CSeq": "1 INVITE"}), "CSeq", b"CSeq:"),
    # §20.42 via-parm = sent-protocol LWS sent-by *( SEMI via-params )
    Case("bad-via", make(replace={"Via": "SIP/2.0/UDP"}), "Via", b"Via:"),
    # §20.10 name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
    Case("bad-name-addr", make(replace={"From": "Alice <sip:alice@example.com;tag=1"}), "From", b"From:"),
    # §20.8 callid = word [ "@" word ]
    Case("bad-call-id", make(replace={"Call-ID": "a b"}), "Call-ID", b"Call-ID:"),
    # §20.22 Max-Forwards = "Max-Forwards" HCOLON 1*DIGIT, "an integer in the range 0-255"
    Case("bad-max-forwards", make(replace={"Max-Forwards": "256"}), "Max-Forwards", b"Max-Forwards:"),
    # RFC 4475 §3.1.2.3: "messages that arrive without a numeric value in the Content-Length header field, such as
    # the following: Content-Length: five"
    Case("bad-content-length", make(("Content-Length", "five"), length=False), "Content-Length", b"Content-Length:"),
    # §18.3 "If the transport is UDP ... a Content-Length larger than the octets that follow is an error" (400)
    Case(
        "content-length-mismatch",
        make(("Content-Length", "10"), length=False) + b"ab",
        "Content-Length",
        b"Content-Length:",
    ),
    # §18.3 "In the case of stream-oriented transports such as TCP, the Content-Length header field indicates the
    # size of the body.  All SIP implementations MUST" use it
    Case("missing-content-length", make(length=False), None, 0, {"stream": True}),
    # §20.15 media-type = m-type SLASH m-subtype *(SEMI m-parameter)
    Case("bad-content-type", make(("Content-Type", "text")), "Content-Type", b"Content-Type:"),
    # §20.19 "between 0 and (2**32)-1"
    Case("bad-expires", make(("Expires", "soon")), "Expires", b"Expires:"),
    # RFC 3262 §7.1 "The value of the header field for the first reliable provisional response ... between 1 and
    # 2**31 - 1"
    Case("bad-rseq", make(("RSeq", "0"), start="SIP/2.0 183 Session Progress"), "RSeq", b"RSeq:"),
    # RFC 3262 §7.2 RAck = "RAck" HCOLON response-num LWS CSeq-num LWS Method
    Case("bad-rack", make(("RAck", "1 one INVITE")), "RAck", b"RAck:"),
    # §20.32 Require = "Require" HCOLON option-tag *(COMMA option-tag); option-tag = token
    Case("bad-option-tag", make(("Require", "100rel, fo o")), "Require", b"Require:"),
    # §20.17 "the only acceptable time zone designation as "GMT"" (RFC 4475 §3.1.2.12)
    Case("bad-date", make(("Date", "Fri, 01 Jan 2010 16:00:00 EST")), "Date", b"Date:"),
    # RFC 4475 §3.1.2.6: "an unterminated quote in the display name of the To field"
    Case("bad-quoting", make(replace={"To": '"Bob <sip:bob@example.com>'}), "To", b"To:"),
    # §25.1: no control character outside a quoted-pair
    Case("control-char", make(("Subject", "a\x01b")), "Subject", b"Subject:"),
    # §7: lines end in CRLF; a bare LF is tolerated with a defect pointing at the first such line
    Case("bare-lf", make().replace(b"\r\nMax-Forwards", b"\nMax-Forwards"), None, b"Via:"),
    # §7.3.1 a continuation line (leading whitespace) before any header has nothing to continue
    Case("leading-whitespace", make().replace(b"\r\nVia", b"\r\n folded\r\nVia"), None, b" folded"),
    # §7: "the empty line MUST be terminated by CRLF"; the header section is never closed
    Case("no-header-end", make()[:-2], None, len(make()) - 2),
    # §18.1.1 message size limits: beyond max_size the rest is cut
    Case("oversize", make(("Subject", "x" * 200)), None, 300, {"max_size": 300}),
    # §7.3.1 header values are UTF-8 text: a lone 0xFF is no UTF-8 at all
    Case("bad-encoding", make(("Subject", "caf\udcff")), None, b"\xff"),
]

#: Codes ``parse`` does not emit on well-behaved inputs: SDP is checked by the SDP parser, and parser-error only
#: reports a sipcert bug (see test_internal_error_becomes_parser_error_defect).
NOT_FROM_PARSE = {"bad-sdp", "parser-error"}


def test_every_defect_code_has_a_case() -> None:
    assert {c.code for c in CASES} | NOT_FROM_PARSE == set(DEFECT_CODES)


@pytest.mark.parametrize("case", CASES, ids=[c.code for c in CASES])
def test_defect(case: Case) -> None:
    result = parse(case.data, **case.kwargs)  # type: ignore[arg-type]
    found = [d for d in result.defects if d.code == case.code]
    assert len(found) == 1, [str(d) for d in result.defects]
    d = found[0]
    assert d.header == case.header
    expected = case.at if isinstance(case.at, int) else case.data.index(case.at)
    if case.code == "bad-encoding":
        # points at the offending byte, inside its header line
        assert d.offset == expected
    elif d.header is not None and case.code != "missing-header":
        line_start = case.data.rfind(b"\n", 0, d.offset) + 1
        assert d.offset == expected == line_start, str(d)
    else:
        assert d.offset == expected, str(d)
    assert d.section == DEFECT_CODES[case.code].section and d.info.code == case.code
    assert str(d).startswith(case.code)
    if result.message is not None:
        assert bytes(result.message) == case.data


def test_defect_fatality_follows_the_table() -> None:
    """Header fatality: a malformed Date is tolerated (RFC 4475 §3.1.2.12), a malformed To is not."""
    date = next(d for d in parse(make(("Date", "yesterday"))).defects if d.code == "bad-date")
    assert not date.fatal
    to = next(d for d in parse(make(replace={"To": '"Bob <sip:b@c>'})).defects if d.code == "bad-quoting")
    assert to.fatal
    # RFC 3261 §16.3 step 3 / RFC 4475 §3.4.1: a request without Max-Forwards is tolerated
    mf = next(d for d in parse(make(drop=("Max-Forwards",))).defects if d.code == "missing-header")
    assert mf.header == "Max-Forwards" and not mf.fatal
    # a malformed value is fatal only when both its code and its header say so (the header table's "fatal");
    # a duplicate is as fatal as its header; a control character is always fatal
    eager = {"missing-header", "control-char", "duplicate-singleton", "cseq-method-mismatch", "content-length-mismatch"}
    for case in CASES:
        for d in parse(case.data, **case.kwargs).defects:  # type: ignore[arg-type]
            hdef = header_def(d.header) if d.header else None
            if hdef is None:
                continue
            if d.code == "duplicate-singleton":
                assert d.fatal == hdef.fatal
            elif d.code == "control-char":
                assert d.fatal
            elif d.code not in eager:
                assert d.fatal == (DEFECT_CODES[d.code].fatal and hdef.fatal), str(d)
    assert not parse(make(("Subject", "one"), ("Subject", "two"))).fatal  # Subject may be dropped, not Call-ID
    assert parse(make(("Call-ID", "two"))).fatal
    # an unknown scheme is non-fatal even in a fatal header (RFC 4475 §3.3.4: "syntactically valid")
    assert parse(make(replace={"To": "<http://example.com/>"})).ok


def test_start_line_without_message() -> None:
    result = parse(b"\x01\x02\x03 not sip\r\n\r\n")
    assert result.message is None and [d.code for d in result.defects] == ["bad-start-line"]
    assert not result.ok
    assert parse(b"").message is None and parse(b"\r\n\r\n").message is None


def test_internal_error_becomes_parser_error_defect(monkeypatch: pytest.MonkeyPatch) -> None:
    """``parse`` never raises: a bug inside it is reported as a parser-error defect."""

    def boom(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(parser_module, "_parse", boom)
    result = parse(make())
    assert result.message is None
    assert [d.code for d in result.defects] == ["parser-error"] and "boom" in result.defects[0].detail


def test_malformed_cseq_and_content_length_reported_once() -> None:
    """They are checked while parsing; the lazy reader must not report them a second time."""
    assert codes(make(replace={"CSeq": "x OPTIONS"})) == ["bad-cseq"]
    assert codes(make(("Content-Length", "-1"), length=False)) == ["bad-content-length"]


def test_scalar_ranges() -> None:
    """RFC 4475 §3.1.2.4 lists scalar fields with overlarge values: Expires and Contact expires above 2**32-1
    (§20.19 "between 0 and (2**32)-1"), and names the Contact q value (§25.1 qvalue) as another such field."""
    assert codes(make(("Expires", str(2**32)))) == ["bad-expires"]
    assert codes(make(("Expires", str(2**32 - 1)))) == []
    assert codes(make(("Contact", "<sip:a@example.com>;expires=4294967296"))) == ["bad-expires"]
    assert codes(make(("Contact", "<sip:a@example.com>;expires=4294967295;q=1.000"))) == []
    for q in ("1.5", "0.1234", "abc", "-0"):
        assert codes(make(("Contact", f"<sip:a@example.com>;q={q}"))) == ["bad-header-value"], q
    # RFC 3261 §20.43 warn-code = 3DIGIT (RFC 4475 §3.1.2.5)
    assert codes(make(("Warning", '1812 overture "In Progress"'))) == ["bad-header-value"]
    assert codes(make(("Warning", '399 overture "In Progress"'))) == []
    # the range defects are not fatal: the element "could treat them as if they contained the default values"
    assert parse(make(("Expires", str(2**40)))).ok


def test_request_line_spacing() -> None:
    # RFC 4475 §3.1.2.9 / §3.1.2.10: multiple or trailing SP
    assert codes(make(start="OPTIONS  sip:bob@example.com SIP/2.0")) == ["bad-start-line"]
    assert codes(make(start="OPTIONS sip:bob@example.com SIP/2.0 ")) == ["bad-start-line"]
    # RFC 4475 §3.1.2.8: LWS inside the Request-URI
    assert codes(make(start="OPTIONS sip:bob@example.com; lr SIP/2.0")) == ["bad-request-uri"]
    # §19.1.1 headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11)
    assert codes(make(start="OPTIONS sip:bob@example.com?Subject=x SIP/2.0")) == ["bad-request-uri"]
    # a Request-Line without SIP-Version is still read as a request
    result = parse(make(start="OPTIONS sip:bob@example.com"))
    assert isinstance(result.message, Request) and result.message.uri_text == "sip:bob@example.com"
    assert [d.code for d in result.defects] == ["bad-start-line"]


def test_response_status_codes() -> None:
    assert codes(make(start="SIP/2.0 700 Too High")) == ["bad-status-code"]
    assert codes(make(start="SIP/2.0 2000 OK")) == ["bad-status-code"]
    big = parse(make(start="SIP/2.0 4294967301 better not break the receiver"))  # RFC 4475 §3.1.2.19
    assert isinstance(big.message, Response) and [d.code for d in big.defects] == ["bad-status-code"]
    # "SIP/2.0 200" without the SP before the (empty) reason: RFC 4475 §3.1.1.13 "The space character after the
    # reason code is required."
    assert "bad-start-line" in codes(make(start="SIP/2.0 200"))


# -- folding, compact forms, access ---------------------------------------------------------------------------------


def test_folding_unfolds_value_and_keeps_raw() -> None:
    """RFC 3261 §7.3.1: "Header fields can be extended over multiple lines by preceding each extra line with at least
    one SP or horizontal tab (HT)."."""
    data = make(("Subject", "I know you're there,\r\n      pick up the phone\r\n\tand talk to me!"))
    result = parse(data)
    assert result.defects == ()
    m = result.message
    assert m is not None and m.header("Subject") == "I know you're there, pick up the phone and talk to me!"
    (field,) = m.header_fields("Subject")
    assert field.raw == "Subject: I know you're there,\r\n      pick up the phone\r\n\tand talk to me!"
    assert bytes(m) == data


def test_folded_known_header_is_read() -> None:
    data = make(replace={"CSeq": "0009\r\n  OPTIONS", "Via": "SIP/2.0/UDP\r\n pc33.example.com\r\n ;branch=z9hG4bKx"})
    result = parse(data)
    assert result.defects == ()
    m = result.message
    assert m is not None and m.cseq is not None and (m.cseq.number, m.cseq.method) == (9, "OPTIONS")
    assert m.via[0].host == "pc33.example.com" and m.via[0].branch == "z9hG4bKx"


@pytest.mark.parametrize("hdef", [h for h in HEADERS if h.compact], ids=lambda h: f"{h.compact}={h.name}")
def test_compact_form_resolves(hdef: HeaderDef) -> None:
    """RFC 3261 §7.3.3: "SIP provides a mechanism to represent common header field names in an abbreviated form"."""
    assert hdef.compact is not None
    assert canonical_key(hdef.compact) == canonical_key(hdef.compact.upper()) == hdef.name.lower()
    assert header_def(hdef.compact) is hdef
    m = parse(make((hdef.compact, "value-1"), length=hdef.name != "Content-Length")).message
    assert m is not None
    assert m.has_header(hdef.name) and hdef.name in m and m.has_header(hdef.compact.upper())
    assert m.header_fields(hdef.name)[-1].name == hdef.compact  # written spelling kept
    assert m.header_values(hdef.name)[-1] == "value-1"


def test_compact_and_long_forms_merge_in_order() -> None:
    """RFC 4475 §3.1.1.1: "a mix of short and long form for the same header field name"."""
    data = make(("v", "SIP/2.0/TCP second.example.com;branch=z9hG4bK2"), ("VIA", "SIP/2.0/TLS third.example.com"))
    m = parse(data).message
    assert m is not None
    assert [v.host for v in m.via] == ["pc33.example.com", "second.example.com", "third.example.com"]
    assert m.header_count("via") == 3 and m.header_count("V") == 3


def test_case_insensitive_access() -> None:
    """RFC 3261 §7.3.1: "field names are always case-insensitive"."""
    data = make().replace(b"Call-ID:", b"cALL-iD:").replace(b"Max-Forwards:", b"MAX-FORWARDS:")
    m = parse(data).message
    assert m is not None
    for name in ("Call-ID", "call-id", "CALL-ID", "i", "I"):
        assert m.header(name) == "a84b4c76e66710@pc33.example.com"
    assert m.max_forwards == 70 and m.call_id == "a84b4c76e66710@pc33.example.com"
    assert m.header("No-Such-Header") is None and m.header_values("No-Such") == [] and "No-Such" not in m


def test_header_order_and_casing_kept() -> None:
    data = make(
        ("x-CUSTOM", "1"),
        ("Supported", "timer"),
        ("x-custom", "2"),
        start="INVITE sip:bob@example.com SIP/2.0",
        replace={"CSeq": "1 INVITE"},
    )
    m = parse(data).message
    assert m is not None and bytes(m) == data
    assert [h.name for h in m.headers] == [
        "Via",
        "Max-Forwards",
        "To",
        "From",
        "Call-ID",
        "CSeq",
        "x-CUSTOM",
        "Supported",
        "x-custom",
        "Content-Length",
    ]
    assert m.header_values("X-Custom") == ["1", "2"]
    # a name with SP before the colon (RFC 4475 wsinv "TO :") keeps its written spelling without the SP
    m2 = parse(make().replace(b"To:", b"TO  :")).message
    assert m2 is not None and m2.header_fields("to")[0].name == "TO"


def test_comma_separated_and_repeated_headers_merge_in_order() -> None:
    """RFC 3261 §7.3.1: multiple header lines of a list header are equivalent to one comma-separated line."""
    data = make(
        ("Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
        ("Route", "<sip:p3.example.com;lr>"),
        ("Supported", "100rel, timer"),
        ("k", "path"),
        ("Contact", '"Doe, John" <sip:john@a.example.com>, <sip:jd@b.example.com>'),
        ("m", "sip:third@c.example.com;expires=30"),
    ).replace(
        b"Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds",
        b"Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1, SIP/2.0/TCP p2.example.com;branch=z9hG4bK2",
    )
    result = parse(data)
    assert result.defects == ()
    m = result.message
    assert m is not None
    assert [r.uri_text for r in m.route] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr"]
    assert m.supported == ("100rel", "timer", "path")
    assert [c.display_name for c in m.contact] == ["Doe, John", None, None]
    assert m.contact[2].expires == 30
    assert [v.branch for v in m.via] == ["z9hG4bK1", "z9hG4bK2"]
    assert m.header_values("Route") == ["<sip:p1.example.com;lr>, <sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"]


def test_quoted_strings_with_escapes() -> None:
    """RFC 3261 §25.1: quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F); commas, semicolons and "<" inside quotes
    are text."""
    data = make(
        replace={"To": r'"A \"quoted\" \\ name; with, <odd> chars" <sip:bob@example.com>;tag=x'},
        body=b"",
    )
    result = parse(data)
    assert result.defects == ()
    m = result.message
    assert m is not None and m.to is not None
    assert m.to.display_name == 'A "quoted" \\ name; with, <odd> chars'
    assert m.to.display_raw == r'"A \"quoted\" \\ name; with, <odd> chars"'
    assert m.to.tag == "x" and m.to.uri_text == "sip:bob@example.com"
    # a quoted-pair may escape a control character (RFC 4475 §3.1.2 intmeth); an unescaped one is a defect
    assert codes(make(replace={"To": '"a\\\x07b" <sip:bob@example.com>'})) == []
    assert set(codes(make(replace={"To": '"a\x07b" <sip:bob@example.com>'}))) == {"control-char", "bad-name-addr"}


def test_ipv6_references() -> None:
    """RFC 3261 §25.1 IPv6reference = "[" IPv6address "]"; RFC 5118."""
    data = make(
        ("Contact", "<sip:alice@[2001:db8::1]:5070;transport=tcp>"),
        start="OPTIONS sips:[2001:db8::10] SIP/2.0",
        replace={"Via": "SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bK1;received=[2001:db8::9:255]"},
    )
    result = parse(data)
    assert result.defects == ()
    m = result.message
    assert isinstance(m, Request) and isinstance(m.uri, SipURI) and m.uri.host == "[2001:db8::10]" and m.uri.secure
    assert m.via[0].sent_by == ("[2001:db8::9:1]", 5060) and m.via[0].received == "[2001:db8::9:255]"
    c = m.contact[0].uri
    assert isinstance(c, SipURI) and (c.host_unbracketed, c.port, c.transport) == ("2001:db8::1", 5070, "tcp")
    assert codes(make(start="OPTIONS sip:[2001:db8::10 SIP/2.0")) == ["bad-request-uri"]
    assert codes(make(start="OPTIONS sip:2001:db8::10 SIP/2.0")) == ["bad-request-uri"]  # RFC 5118 §4.2
    assert "bad-via" in codes(make(replace={"Via": "SIP/2.0/UDP [zz::1];branch=z9hG4bK1"}))


def test_uri_schemes() -> None:
    """sip and sips (§19.1), tel (RFC 3966), and any other absoluteURI kept opaque with an unknown-scheme defect."""
    m = parse(make(start="OPTIONS sips:bob@example.com SIP/2.0")).message
    assert isinstance(m, Request) and isinstance(m.uri, SipURI) and m.uri.scheme == "sips"
    tel = parse(make(start="OPTIONS tel:+1-201-555-0123 SIP/2.0", replace={"To": "<tel:+1-201-555-0123>"}))
    assert tel.defects == ()
    assert isinstance(tel.message, Request) and isinstance(tel.message.uri, TelURI)
    assert tel.message.uri.number == "+1-201-555-0123" and tel.message.uri.is_global
    assert tel.message.to is not None and isinstance(tel.message.to.uri, TelURI)
    urn = parse(make(start="OPTIONS urn:service:sos SIP/2.0"))
    assert [d.code for d in urn.defects] == ["unknown-scheme"] and urn.ok
    assert isinstance(urn.message, Request) and isinstance(urn.message.uri, AbsoluteURI)
    assert (urn.message.uri.scheme, urn.message.uri.rest) == ("urn", "service:sos")
    # a scheme is case-insensitive (RFC 3261 §19.1.4)
    up = parse(make(start="OPTIONS SIP:bob@example.com SIP/2.0")).message
    assert isinstance(up, Request) and isinstance(up.uri, SipURI) and up.uri.scheme == "sip"


def test_bare_lf_tolerated() -> None:
    data = make(eol="\n")
    result = parse(data)
    assert [d.code for d in result.defects] == ["bare-lf"] and result.ok
    assert result.defects[0].offset == 0  # the start line is the first line ending in LF
    m = result.message
    assert m is not None and bytes(m) == data
    assert m.call_id == "a84b4c76e66710@pc33.example.com" and m.cseq is not None and m.cseq.number == 314159
    with_body = parse(make(eol="\n", body=b"hello"))
    assert with_body.message is not None and with_body.message.body == b"hello"
    # folding still works with bare LF
    folded = parse(make(("Subject", "a\n b"), eol="\n"))
    assert folded.message is not None and folded.message.header("Subject") == "a b"


@pytest.mark.parametrize("blank", [b"\n\n", b"\r\n\n", b"\n\r\n"], ids=["LF-LF", "CRLF-LF", "LF-CRLF"])
def test_header_section_ends_at_an_empty_line_with_bare_lf(blank: bytes) -> None:
    """RFC 3261 §7: the empty line ends the header section; a bare LF in it is tolerated (as the stream framer does)."""
    data = make(("Content-Length", "2"), length=False)[:-4] + blank + b"ab"
    result = parse(data)
    assert [d.code for d in result.defects] == ["bare-lf"] and result.ok
    assert result.message is not None and result.message.body == b"ab" and bytes(result.message) == data


def test_leading_crlfs_ignored() -> None:
    """RFC 3261 §7.5: "Implementations processing SIP messages over stream-oriented transports MUST ignore any CRLF
    appearing before the start-line"."""
    data = b"\r\n\r\n" + make()
    result = parse(data)
    assert result.defects == ()
    assert isinstance(result.message, Request) and result.message.method == "OPTIONS"
    assert bytes(result.message) == data
    for prefix in (b"\n", b"\n\r\n", b"\r\n\n\r\n"):  # bare LFs among them are tolerated as well
        assert parse(prefix + make()).defects == ()
    # offsets still count the ignored bytes
    bad = b"\r\n" + make(("Date", "now"))
    d = parse(bad).defects[0]
    assert bad[d.offset :].startswith(b"Date:")


def test_oversize_cuts_and_keeps_the_bytes() -> None:
    data = make(body=b"x" * 1000)
    result = parse(data, max_size=400)
    assert "oversize" in result.codes()
    assert next(d for d in result.defects if d.code == "oversize").offset == 400
    assert result.message is not None and bytes(result.message) == data
    assert len(result.message.body) < 1000
    assert DEFAULT_MAX_SIZE >= 65535 and parse(data).defects == ()


def test_non_utf8_round_trips() -> None:
    """A non-UTF-8 header section is a defect (RFC 3261 §7.3.1) but its bytes are kept."""
    data = make(("Subject", "caf\udce9 \udcff\udcfe"))
    assert b"caf\xe9 \xff\xfe" in data
    result = parse(data)
    assert result.codes() == {"bad-encoding"} and result.ok
    m = result.message
    assert m is not None and bytes(m) == data
    assert m.header("Subject") == "caf\udce9 \udcff\udcfe"
    assert m.call_id == "a84b4c76e66710@pc33.example.com"
    # offsets after a multi-byte character are byte offsets
    utf8 = make(("Subject", "naïve ☃"), ("Date", "later"))
    d = next(d for d in parse(utf8).defects if d.code == "bad-date")
    assert utf8[d.offset :].startswith(b"Date:")


def test_requests_and_responses() -> None:
    req = parse(make()).message
    assert isinstance(req, Request) and req.is_request and not req.is_response
    assert req.start_line == START and req.uri_text == "sip:bob@example.com" and req.version == "2.0"
    resp = parse(make(start="SIP/2.0 180 Ringing", drop=("Max-Forwards",)))
    assert resp.defects == ()  # Max-Forwards is not mandatory in a response
    r = resp.message
    assert isinstance(r, Response) and r.is_response and not r.is_request
    assert (r.status, r.reason, r.status_class) == (180, "Ringing", 1)
    assert r.is_provisional and not r.is_final and not r.is_success
    ok = parse(make(start=_RESPONSE)).message
    assert isinstance(ok, Response) and ok.is_final and ok.is_success and ok.start_line == _RESPONSE
    # a response may carry a CSeq of any method: no cseq-method-mismatch
    assert codes(make(start="SIP/2.0 200 OK", replace={"CSeq": "1 INVITE"})) == []


def test_body_framing() -> None:
    """RFC 3261 §18.3: Content-Length bounds the body; extra octets on a datagram are kept as ``trailing``."""
    m = parse(make(("Content-Length", "3"), length=False) + b"abcdef").message
    assert m is not None and m.body == b"abc" and m.trailing == b"def"
    m = parse(make(length=False) + b"all of it").message  # no Content-Length: the rest of the datagram
    assert m is not None and m.body == b"all of it" and m.content_length is None
    binary = bytes(range(256))
    r = parse(make(body=binary))
    assert r.defects == () and r.message is not None and r.message.body == binary


def test_lazy_validation_complete_and_order_independent() -> None:
    """Reading ``defects`` reads every header; reading a typed view first gives the same list."""
    data = make(("Expires", "soon"), ("Date", "today"), ("Require", "a b"), ("Contact", "<sip:x@exa_mple.com>"))
    first = parse(data)
    all_defects = first.defects
    assert [d.code for d in all_defects] == ["bad-expires", "bad-date", "bad-option-tag", "bad-host"]
    assert list(all_defects) == sorted(all_defects, key=lambda d: d.offset)
    second = parse(data)
    assert second.message is not None
    assert second.message.expires is None and second.message.require == ()
    assert second.message.contact == ()  # the malformed value is not offered as a typed view
    assert second.defects == all_defects
    third = parse(data)
    assert (
        third.message is not None
        and third.message.defects == all_defects
        and third.fatal == tuple(d for d in all_defects if d.fatal)
    )
    assert third.message.fatal_defects == third.fatal


def test_parse_result_api() -> None:
    result = parse(make(("Date", "x")))
    assert result.ok and result.codes() == {"bad-date"} and result.fatal == ()
    assert "1 defects" in repr(result)
    assert isinstance(result.defects[0], Defect)
    assert not parse(make(drop=("Via",))).ok
