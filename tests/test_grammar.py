"""Tests of the machine-readable SIP grammar (fuzz/grammar): load, validate, generate, mutate."""

from __future__ import annotations

import collections
import csv
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from fuzz.grammar import (
    COMPACT_FORMS,
    HEADER_RULES,
    MANDATORY_REQUEST_HEADERS,
    MANDATORY_RESPONSE_HEADERS,
    MUTATION_KINDS,
    Grammar,
    GrammarSyntaxError,
    Mutation,
    derive,
    from_rule,
    from_rule_bytes,
    header,
    header_rule,
    load_grammar,
    near_misses,
    rule_names,
    sip_request,
    sip_response,
    validate,
)

TORTURE = Path(__file__).parent / "data" / "torture"
FAST = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def split_message(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(start line, header fields with their folding kept, body) of a CRLF message."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields: list[bytes] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    return lines[0], fields, body


def field_name(field: bytes) -> str:
    return field.split(b":", 1)[0].decode("latin-1").rstrip(" \t")


def manifest_rows(predicate) -> list[dict[str, str]]:
    with (TORTURE / "MANIFEST.tsv").open(newline="") as f:
        return [row for row in csv.DictReader(f, delimiter="\t") if predicate(row)]


def well_formed_4475(row: dict[str, str]) -> bool:
    cls = row["valid_or_invalid"]
    return row["rfc"] == "RFC4475" and (cls.startswith("valid") or "well-formed" in cls or "(legal)" in cls)


# ---------------------------------------------------------------------------
# the grammar file
# ---------------------------------------------------------------------------
def test_grammar_loads_and_is_cached():
    g = load_grammar()
    assert isinstance(g, Grammar)
    assert load_grammar() is g
    assert len(g) > 400
    assert rule_names() == g.rule_names()


def test_every_referenced_rule_is_defined():
    assert load_grammar().undefined_references() == {}


def test_every_rule_cites_its_source():
    g = load_grammar()
    uncited = [n for n in g.rule_names() if not re.search(r"RFC \d{4}", g.source(n))]
    assert uncited == []


@pytest.mark.parametrize(
    "name, cites",
    [
        ("Via", "RFC 3261 section 25.1"),
        ("ALPHA", "RFC 5234"),
        ("IPv6address", "RFC 5954 section 4.1"),
        ("IPv4address", "RFC 5954 section 4.1"),
        ("display-name", "RFC 4475 section 3.1.1.6"),
        ("digest-uri-value", "RFC 2617"),
        ("RSeq", "RFC 3262 section 7.1"),
        ("RAck", "RFC 3262"),
        ("PRACKm", "RFC 3262 section 10"),
        ("media-field", "RFC 4566 section 9"),
        ("telephone-subscriber", "RFC 2806 section 2"),
    ],
)
def test_rule_citations(name, cites):
    assert cites in load_grammar().source(name)


def test_grammar_covers_rfc3261_headers_rfc3262_and_sdp_lines():
    g = load_grammar()
    wanted = [*HEADER_RULES.values(), "PRACKm", "SIP-message", "Request-Line", "Status-Line", "SIP-URI", "SIPS-URI"]
    wanted += ["proto-version", "origin-field", "session-name-field", "connection-field", "time-fields"]
    wanted += ["media-field", "attribute-fields", "session-description", "LWS", "SWS", "HCOLON", "OCTET"]
    assert [n for n in wanted if n not in g] == []
    # every header rule of RFC 3261 section 25.1 is an alternative of message-header
    assert set(g.references("message-header")) >= {*HEADER_RULES.values(), "extension-header"}
    # PRACK is a Method (RFC 3262 section 10)
    assert "PRACKm" in g.references("Method")


def test_rule_names_are_case_insensitive():
    assert validate("via", "Via: SIP/2.0/UDP a.example.com")
    assert validate("VIA", "Via: SIP/2.0/UDP a.example.com")
    with pytest.raises(KeyError, match="no rule"):
        validate("Not-A-Rule", "x")


def test_grammar_from_text_and_syntax_errors():
    g = Grammar.from_text('; RFC 5234 section 2.3\ngreeting = "hi" 1*SP name\nname = 1*%x61-7A\nSP = %x20\n')
    assert g.validate("greeting", "HI  bob")
    assert not g.validate("greeting", "hi Bob")  # %x ranges are case-sensitive
    assert g.source("name") == "RFC 5234 section 2.3"
    with pytest.raises(GrammarSyntaxError):
        Grammar.from_text("a = ( b\n")
    with pytest.raises(GrammarSyntaxError):
        Grammar.from_text("a = b\na = c\n")
    assert Grammar.from_text("a = b\n").undefined_references() == {"a": {"b"}}


# ---------------------------------------------------------------------------
# validation tables
# ---------------------------------------------------------------------------
GOOD: dict[str, list[str | bytes]] = {
    "SIP-URI": [
        "sip:alice@atlanta.com",
        "sip:alice:secretword@atlanta.com;transport=tcp",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:alice@192.0.2.4",
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        "sip:alice;day=tuesday@atlanta.com",
        "sip:[2001:db8::10]:5070",
        "sip:user;par=u%40example.net@example.com",  # RFC 4475 section 3.1.1.9
        "sip:null-%00-null@example.com",  # RFC 4475 section 3.1.1.4
        "SIP:ALICE@ATLANTA.COM",  # "sip:" is a case-insensitive literal
    ],
    "SIPS-URI": ["sips:alice@atlanta.com?subject=project%20x&priority=urgent", "sips:1212@gateway.com"],
    "Via": [
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8",
        "v: SIP/2.0/TCP [2001:db8::9:1]:5060;branch=z9hG4bK1;received=2001:db8::9:255",
        "Via: SIP/2.0/UDP host.example.com;received=[2001:db8::9:255]",  # RFC 5118 section 4.5
        "Via: SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;rport;branch=z9hG4bK7 , SIP/2.0/TCP p2.example.com",
        "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
        "Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw",  # RFC 4475 wsinv
    ],
    "CSeq": [
        "CSeq: 314159 INVITE",
        "cseq: 0009\r\n  INVITE",
        "CSeq: 1 PRACK",
        "CSeq:4711 !interesting-Method~",
        "CSeq: 4294967296 INVITE",  # too large (RFC 4475 scalar02) but grammatical
    ],
    "From": [
        'From: "Anonymous" <sip:c8oqz84zk7z@privacy.org>;tag=hyh8',
        "f: sip:+12125551212@phone2net.com;tag=887s",
        "From: caller<sip:caller@example.com>;tag=323",  # RFC 4475 section 3.1.1.6 correction
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8',
    ],
    "To": [
        "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf",
        "t: sip:bob@biloxi.com",
        'To: "Watson, Thomas" <sip:t.watson@example.org>',
        "To: <sip:+12125551212@server.phone2net.com>;tag=287447",
        "To: sip:user@[2001:db8::10]",
    ],
    "name-addr": [
        "Bob <sip:bob@biloxi.com>",
        "<sip:a@b.c>",
        '"" <sip:a@b.c>',
        "A. G. Bell <sip:agb@bell-telephone.com>",
    ],
    "Call-ID": [
        "Call-ID: a84b4c76e66710@pc33.atlanta.com",
        "i:f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com",
        "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",  # RFC 4475 intmeth
    ],
    "Content-Length": ["Content-Length: 0", "l: 150", "Content-Length   : 150", "CONTENT-LENGTH:\r\n 42"],
    "RSeq": ["RSeq: 988789", "RSeq:1"],
    "RAck": ["RAck: 776656 1 INVITE", "RAck: 1 314159\r\n INVITE", "rack: 2 2 PRACK"],
    "Request-Line": [
        "INVITE sip:bob@biloxi.com SIP/2.0\r\n",
        "PRACK sip:bob@192.0.2.4 SIP/2.0\r\n",
        "REGISTER sips:ss2.biloxi.example.com SIP/2.0\r\n",
        "OPTIONS sip:user@[2001:db8::10] SIP/2.0\r\n",
        "RE%47IST%45R sip:registrar.example.com SIP/2.0\r\n",  # RFC 4475 esc02
        "INVITE tel:+1-201-555-0123 SIP/2.0\r\n",
        "INVITE sip:a@b.c sip/2.0\r\n",  # "SIP" is a case-insensitive literal
    ],
    "Status-Line": [
        "SIP/2.0 200 OK\r\n",
        "SIP/2.0 100 \r\n",  # RFC 4475 noreason
        "SIP/2.0 183 Session Progress\r\n",
        "SIP/2.0 699 Custom\r\n",  # extension-code
        "SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e\r\n",  # UTF-8 reason (RFC 4475 unreason)
    ],
    "IPv6reference": [
        "[2001:db8::10]",
        "[::ffff:192.0.2.10]",  # RFC 5118 section 4.9
        "[2001:db8::9:1]",
        "[::1]",
        "[::]",
        "[2001:0db8:0000:0000:0000:0000:1428:57ab]",
        "[2001:db8::10:5070]",  # RFC 5118 section 4.3: an address, no port
    ],
    "IPv6reference-rfc3261": ["[2001:db8:::192.0.2.1]", "[2001:db8::10]"],
    "display-name": ["caller", "A. G. Bell ", '"Quoted string \\"\\""'],
    "media-field": ["m=audio 49217 RTP/AVP 0 12\r\n", "m=video 3227/2 RTP/AVP 31\r\n"],
    "connection-field": ["c=IN IP4 192.0.2.1\r\n", "c=IN IP6 2001:db8::1\r\n", "c=IN IP4 224.2.1.1/127/3\r\n"],
    "session-description": [
        "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n",
    ],
    "Authorization": [
        'Authorization: Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",'
        ' uri="sip:bob@biloxi.com", response="6629fae49393a05397450978507c4ef1", nc=00000001',
    ],
    "Date": ["Date: Sat, 13 Nov 2010 23:29:00 GMT"],
}

BAD: dict[str, list[str | bytes]] = {
    "SIP-URI": [
        "sip:",
        "sip:alice@",
        "alice@atlanta.com",
        "sip:alice@atlanta.com:port",
        "sip:alice@@atlanta.com",
        "sip:al ice@atlanta.com",
        "sip:alice@atlanta.com;%zz",
        "sip:2001:db8::10",  # RFC 5118 section 4.2: unbracketed IPv6
        "sip:[2001:db8::10",
        "sip:alice@256.0.0.1",  # RFC 5954 dec-octet
        "sip:user@[2001:db8:::192.0.2.1]",  # RFC 5118 section 4.10
        "<sip:alice@atlanta.com>",
    ],
    "Via": [
        "Via: SIP/2.0 pc33.atlanta.com",
        "Via: SIP/2.0/UDP",
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=",
        "Via: SIP/2.0/UDP pc33.atlanta.com:50a60",
        "Via: SIP/2.0/UDP 192.0.2.15;;,;,,",  # RFC 4475 badinv01
        "Via SIP/2.0/UDP a.example.com",
        "Via: SIP/2.0/UDP 2001:db8::1",
    ],
    "CSeq": ["CSeq: INVITE", "CSeq: 1", "CSeq: -1 INVITE", "CSeq: 1INVITE", "CSeq: 1 INV ITE", "CSeq: 0x1 INVITE"],
    "From": [
        "From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43",  # RFC 4475 baddn
        "From: <sip:alice@atlanta.com>;tag=",
        "From: Alice <>",
    ],
    "To": [
        'To: "Mr. J. User <sip:j.user@example.com>',  # RFC 4475 quotbal
        'To: "Watson, Thomas" < sip:t.watson@example.org >',  # RFC 4475 badaspec
        "To: <sip:bob@biloxi.com",
        "To: sip:user@[2001:db8:::192.0.2.1]",  # RFC 5118 section 4.10
    ],
    "name-addr": ["Bob sip:bob@biloxi.com", "Bob <sip:bob@biloxi.com", "Bob, Jr <sip:b@c.d>"],
    "Call-ID": ["Call-ID: ", "Call-ID: a@b@c", "Call-ID: with space", "Call-ID: a;b"],
    "Content-Length": [
        "Content-Length: -999",  # RFC 4475 ncl
        "Content-Length: ",
        "Content-Length: 1.5",
        "Content-Length: 0x10",
        "Content-Length: 10 ",
    ],
    "RSeq": ["RSeq: ", "RSeq: -1", "RSeq: 1 2", "RSeq: one"],
    "RAck": ["RAck: 776656 INVITE", "RAck: 776656 1", "RAck: 1,1 INVITE", "RAck: 1 1 INVITE,"],
    "Request-Line": [
        "INVITE sip:bob@biloxi.com SIP/2.0",
        "INVITE  sip:user@example.com  SIP/2.0\r\n",  # RFC 4475 lwsstart
        "INVITE sip:user@example.com; lr SIP/2.0\r\n",  # RFC 4475 lwsruri
        "INVITE <sip:user@example.com> SIP/2.0\r\n",  # RFC 4475 ltgtruri
        "OPTIONS sip:remote-target@example.com SIP/2.0  \r\n",  # RFC 4475 trws
        "INVITE sip:bob@biloxi.com SIP/2\r\n",
        "INVITE sip:bob@biloxi.com\r\n",
    ],
    "Status-Line": [
        "SIP/2.0 4294967301 better not break the receiver\r\n",  # RFC 4475 bigcode
        "SIP/2.0 20 OK\r\n",
        "SIP/2.0 200\r\n",
        "SIP/2.0 200 OK",
        "HTTP/1.1 200 OK\r\n",
        "SIP/2.0 200 OK\r\n\r\n",
    ],
    "IPv6reference": [
        "2001:db8::10",
        "[2001:db8:::192.0.2.1]",  # RFC 5118 section 4.10
        "[2001:db8::g]",
        "[2001:db8::12345]",
        "[1:2:3:4:5:6:7:8:9]",
        "[::ffff:256.1.1.1]",
        "[2001:db8::1",
        "[]",
        "[1::2::3]",
    ],
    "display-name-rfc3261": ["caller"],  # the RFC 3261 rule as published
    "media-field": ["m=audio RTP/AVP 0\r\n", "m=audio 49217 RTP/AVP\r\n", "M=audio 49217 RTP/AVP 0\r\n"],
    "connection-field": ["c=IN IP4\r\n", "c=IN  IP4 192.0.2.1\r\n"],
    "Date": ["Date: Fri, 01 Jan 2010 16:00:00 EST"],  # RFC 4475 baddate
}


@pytest.mark.parametrize("rule, value", [(r, v) for r, vs in GOOD.items() for v in vs])
def test_known_good(rule, value):
    assert validate(rule, value)


@pytest.mark.parametrize("rule, value", [(r, v) for r, vs in BAD.items() for v in vs])
def test_known_bad(rule, value):
    assert not validate(rule, value)


def test_bytes_and_str_agree_and_octets_are_exact():
    assert validate("Reason-Phrase", "caf\u00e9")
    assert validate("Reason-Phrase", "caf\u00e9".encode())
    assert not validate("Reason-Phrase", b"caf\xff")  # 0xFF is never UTF-8
    assert validate("quoted-string", b'"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"')  # RFC 4475 intmeth


def test_deep_nesting_is_rejected_not_crashed():
    assert validate("comment", "(" * 20 + "x" + ")" * 20)
    assert not validate("comment", "(" * 5000 + "x" + ")" * 5000)


# ---------------------------------------------------------------------------
# torture messages
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("row", manifest_rows(well_formed_4475), ids=lambda r: r["file"])
def test_rfc4475_well_formed_messages_validate_field_by_field(row):
    data = (TORTURE / row["file"]).read_bytes()
    start, fields, _ = split_message(data)
    start_rule = "Status-Line" if start.startswith(b"SIP/") else "Request-Line"
    assert validate(start_rule, start + b"\r\n"), start
    for field in fields:
        rule = header_rule(field_name(field))
        assert validate(rule, field), (rule, field)
        assert validate("message-header", field + b"\r\n")
    assert validate("SIP-message", data)


@pytest.mark.parametrize(
    "row",
    manifest_rows(lambda r: r["rfc"] == "RFC5118" and r["valid_or_invalid"].startswith("valid")),
    ids=lambda r: r["file"],
)
def test_rfc5118_ipv6_messages(row):
    data = (TORTURE / row["file"]).read_bytes()
    start, fields, _ = split_message(data)
    ok = validate("Request-Line", start + b"\r\n") and all(validate(header_rule(field_name(f)), f) for f in fields)
    if "3-colons" in row["file"]:
        # RFC 5118 section 4.10: not an IPv6 address; the corrected grammar
        # (RFC 5954) rejects it, the RFC 3261 rule as published accepts it.
        assert not ok
        assert validate("IPv6reference-rfc3261", "[2001:db8:::192.0.2.1]")
    else:
        assert ok


def test_rfc5118_unbracketed_request_uri_is_not_a_sip_uri():
    start, _, _ = split_message((TORTURE / "rfc5118" / "ipv6-bad.dat").read_bytes())
    uri = start.split(b" ")[1]
    assert not validate("SIP-URI", uri)


# ---------------------------------------------------------------------------
# derivations
# ---------------------------------------------------------------------------
def test_derive_names_the_parts():
    text = "Via: SIP/2.0/UDP pc33.atlanta.com:5060;branch=z9hG4bK776"
    root = derive("Via", text)
    assert root is not None and (root.rule, root.start, root.end) == ("Via", 0, len(text))
    parts = {sp.rule: text[sp.start : sp.end] for sp in root.walk()}
    assert parts["sent-by"] == "pc33.atlanta.com:5060"
    assert parts["port"] == "5060"
    assert parts["via-branch"] == "branch=z9hG4bK776"
    assert derive("Via", "Via: nonsense") is None


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------
GENERATED_RULES = [
    "SIP-URI",
    "SIPS-URI",
    "Via",
    "CSeq",
    "From",
    "To",
    "Contact",
    "Call-ID",
    "Content-Length",
    "RSeq",
    "RAck",
    "Request-Line",
    "Status-Line",
    "IPv6reference",
    "Authorization",
    "WWW-Authenticate",
    "Date",
    "comment",
    "session-description",
    "telephone-subscriber",
]


@pytest.mark.parametrize("rule", GENERATED_RULES)
def test_generated_values_validate(rule):
    @FAST
    @given(from_rule(rule))
    def check(value):
        assert validate(rule, value)

    check()


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_every_rule_generates_valid_values(data):
    rule = data.draw(st.sampled_from(rule_names()), label="rule")
    value = data.draw(from_rule(rule, max_repeat=2), label="value")
    assert validate(rule, value)


@FAST
@given(from_rule_bytes("Reason-Phrase"))
def test_bytes_strategy(value):
    assert isinstance(value, bytes)
    assert validate("Reason-Phrase", value)


@pytest.mark.parametrize("name", ["Via", "v", "to", "CSeq", "RAck", "X-Custom"])
def test_header_strategy(name):
    rule = header_rule(name)

    @FAST
    @given(header(name))
    def check(value):
        assert validate(rule, value)
        assert validate("message-header", value + "\r\n")

    check()


def test_header_rule_table():
    assert header_rule("v") == header_rule("VIA") == "Via"
    assert header_rule("i") == "Call-ID"
    assert header_rule("Rseq") == "RSeq"
    assert header_rule("X-Whatever") == "extension-header"
    assert set(COMPACT_FORMS.values()) <= set(HEADER_RULES.values())


def test_generation_shrinks_to_minimal_values():
    quick = settings(max_examples=10, database=None)
    assert find(from_rule("SIP-URI"), lambda v: True, settings=quick) == "sip:a"
    assert find(from_rule("SIP-URI"), lambda v: "@" in v, settings=quick) == "sip:a@a"
    smallest = find(sip_request(), lambda m: True, settings=quick)
    assert smallest.startswith(b"INVITE sip:a SIP/2.0\r\n")
    assert len(smallest) < 160


def _check_message(msg: bytes, mandatory: tuple[str, ...]) -> tuple[bytes, list[bytes]]:
    assert validate("SIP-message", msg)
    head, sep, body = msg.partition(b"\r\n\r\n")
    assert sep
    # CRLF line ends: no bare CR or LF in the start line and header fields
    assert head.count(b"\r") == head.count(b"\n") == head.count(b"\r\n")
    start, fields, _ = split_message(msg)
    names = [header_rule(field_name(f)) for f in fields]
    for name in mandatory:
        assert name in names, (name, names)
    lengths = [f for f in fields if header_rule(field_name(f)) == "Content-Length"]
    assert len(lengths) == 1
    assert int(lengths[0].split(b":", 1)[1]) == len(body)
    for f in fields:
        assert validate(header_rule(field_name(f)), f), f
    return start, fields


@FAST
@given(sip_request())
def test_generated_requests_are_whole_valid_messages(msg):
    start, fields = _check_message(msg, MANDATORY_REQUEST_HEADERS)
    assert validate("Request-Line", start + b"\r\n")
    method = start.split(b" ", 1)[0]
    cseq = next(f for f in fields if header_rule(field_name(f)) == "CSeq")
    assert cseq.split()[-1] == method  # RFC 3261 section 8.1.1.5
    assert int(cseq.split()[1]) < 2**31


@FAST
@given(sip_response())
def test_generated_responses_are_whole_valid_messages(msg):
    start, _ = _check_message(msg, MANDATORY_RESPONSE_HEADERS)
    assert validate("Status-Line", start + b"\r\n")


@FAST
@given(sip_request(methods=None, body=False))
def test_generated_requests_with_any_method(msg):
    _check_message(msg, MANDATORY_REQUEST_HEADERS)
    assert msg.endswith(b"\r\n\r\n")


# ---------------------------------------------------------------------------
# near misses
# ---------------------------------------------------------------------------
NEAR_MISS_SEEDS = {
    "SIP-URI": "sip:alice:secret@[2001:db8::10]:5060;transport=tcp;lr?subject=hi%20there",
    "Via": "Via: SIP/2.0/UDP pc33.atlanta.com:5060;branch=z9hG4bKnashds8;received=192.0.2.1",
    "CSeq": "CSeq: 314159 INVITE",
    "To": "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf",
    "Content-Length": "Content-Length: 142",
    "RSeq": "RSeq: 988789",
    "RAck": "RAck: 776656 1 INVITE",
    "IPv6reference": "[2001:db8::9:1]",
    "Request-Line": "INVITE sip:bob@biloxi.com SIP/2.0\r\n",
    "Status-Line": "SIP/2.0 180 Ringing\r\n",
}


@pytest.mark.parametrize("rule, value", list(NEAR_MISS_SEEDS.items()))
def test_near_misses_mostly_fail(rule, value):
    assert validate(rule, value)
    misses = near_misses(rule, value, random.Random(7))
    assert misses
    assert all(isinstance(m, Mutation) and m.rule == rule and m.kind in MUTATION_KINDS for m in misses)
    assert all(m.value != value for m in misses)
    failing = sum(not validate(rule, m.value) for m in misses)
    assert failing / len(misses) > 0.5, collections.Counter(m.kind for m in misses if validate(rule, m.value))


def test_near_misses_cover_every_kind_and_are_reproducible():
    kinds: collections.Counter[str] = collections.Counter()
    failing = total = 0
    for rule, value in NEAR_MISS_SEEDS.items():
        first = near_misses(rule, value, random.Random(1))
        assert first == near_misses(rule, value, random.Random(1))
        kinds.update(m.kind for m in first)
        failing += sum(not validate(rule, m.value) for m in first)
        total += len(first)
    assert set(kinds) == set(MUTATION_KINDS)
    assert failing / total >= 0.6


def test_near_miss_labels_name_the_mutated_part():
    misses = near_misses("Via", NEAR_MISS_SEEDS["Via"], random.Random(3))
    g = load_grammar()
    assert all(m.target == "" or m.target in g for m in misses)
    ints = [m for m in misses if m.kind == "int-boundary"]
    assert {"0", "-1", str(2**31 - 1), str(2**31), str(2**32)} <= {
        v for m in ints for v in re.findall(r"-?\d+", m.value)
    }
    ipv6 = [m for m in misses if m.kind == "ipv6-form"]
    assert ipv6 and all(m.target in ("host", "hostname", "IPv4address", "IPv6reference") for m in ipv6)
    assert any("[2001:db8:::" in m.value for m in ipv6)
    assert any(m.kind == "delimiter-missing" and m.target == "SEMI" for m in misses)


def test_near_misses_invalid_only_and_bytes():
    misses = near_misses("CSeq", b"CSeq: 1 INVITE", random.Random(0), invalid_only=True)
    assert misses and not any(validate("CSeq", m.data) for m in misses)
    assert all(isinstance(m.data, bytes) for m in misses)


def test_near_misses_of_a_value_that_does_not_match():
    misses = near_misses("CSeq", "not a cseq", random.Random(0))
    assert {m.kind for m in misses} >= {"empty", "truncated", "overlong", "bad-char", "whitespace"}


# ---------------------------------------------------------------------------
# cross-check against an independent ABNF implementation (optional)
# ---------------------------------------------------------------------------
def test_agrees_with_the_abnf_package():
    """The PyPI ``abnf`` package, fed the same sip.abnf, gives the same verdicts.

    ``abnf`` is a test-time oracle only (about 15 times slower, and it refuses
    to redefine the RFC 5234 core rules, which it supplies itself); the test
    is skipped where it is not installed.
    """
    abnf = pytest.importorskip("abnf")
    from fuzz.grammar import DEFAULT_GRAMMAR, to_octets

    class SipRules(abnf.Rule):
        pass

    text = DEFAULT_GRAMMAR.read_text(encoding="ascii")
    core_start = text.index("ALPHA          =")
    core_end = text.index("\n", text.index("WSP            =")) + 1
    SipRules.load_grammar(text[:core_start] + text[core_end:])

    def abnf_accepts(rule: str, value: str | bytes) -> bool:
        try:
            SipRules.get(rule).parse_all(to_octets(value))
        except abnf.ParseError:
            return False
        return True

    cases = [(r, v) for table in (GOOD, BAD) for r, vs in table.items() for v in vs]
    for row in manifest_rows(lambda r: r["rfc"] == "RFC4475"):
        _, fields, _ = split_message((TORTURE / row["file"]).read_bytes())
        cases += [(header_rule(field_name(f)), f) for f in fields if len(f) < 300]
    disagree = [(r, v) for r, v in cases if validate(r, v) != abnf_accepts(r, v)]
    assert disagree == []
