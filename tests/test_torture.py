"""RFC 4475 and RFC 5118 torture messages: one test per file of MANIFEST.tsv, and typed views on the valid ones.

Every message the manifest calls valid parses with zero defects; every other one yields the defects its RFC section
describes (the EXPECTED table). Every message, valid or not, round-trips: ``bytes(result.message) == data``.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import pytest

from conformance.sip import Request, Response, SipURI, TelURI, canonical_key, parse

TORTURE = Path(__file__).parent / "data" / "torture"
MANIFEST = list(csv.DictReader((TORTURE / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))


class Expect(NamedTuple):
    """What parsing one file must give: the (code, header) of every defect, and whether the message is usable."""

    defects: tuple[tuple[str, str | None], ...] = ()
    #: No fatal defect: the RFC says a parser must (or may liberally) accept the message.
    ok: bool = True


def _reject(*defects: tuple[str, str | None]) -> Expect:
    return Expect(tuple(defects), ok=False)


def _accept(*defects: tuple[str, str | None]) -> Expect:
    return Expect(tuple(defects), ok=True)


VALID = Expect()

# fmt: off
EXPECTED: dict[str, Expect] = {
    # -- RFC 4475 §3.1.1: valid messages ---------------------------------------------------------------------------
    "rfc4475/wsinv.dat": VALID,          # §3.1.1.1 "All elements should treat this as a well-formed request."
    "rfc4475/intmeth.dat": VALID,        # §3.1.1.2 unusual but legal characters in method, URI, branch, display name
    "rfc4475/esc01.dat": VALID,          # §3.1.1.3 "A parser must accept this as a well-formed message."
    "rfc4475/escnull.dat": VALID,        # §3.1.1.4 "The message is well formed - parsers must accept this message."
    "rfc4475/esc02.dat": VALID,          # §3.1.1.5 "A parser should accept this message as well formed."
    # §3.1.1.6 no LWS between display name and "<": a grammar bug of RFC 3261; "Elements should accept this request"
    "rfc4475/lwsdisp.dat": VALID,
    "rfc4475/longreq.dat": VALID,        # §3.1.1.7 "This well-formed request contains header fields with many values"
    "rfc4475/dblreq.dat": VALID,         # §3.1.1.8 the extra octets "are just spurious noise that must be ignored"
    "rfc4475/semiuri.dat": VALID,        # §3.1.1.9 "Receiving elements will accept this as a well-formed message."
    "rfc4475/transports.dat": VALID,     # §3.1.1.10 "Parsers must accept this message as well formed."
    "rfc4475/mpart01.dat": VALID,        # §3.1.1.11 "Parsers must accept this message as well formed"
    "rfc4475/unreason.dat": VALID,       # §3.1.1.12 "This response is well formed.  A parser must accept this message."
    "rfc4475/noreason.dat": VALID,       # §3.1.1.13 "This well-formed response contains no reason phrase."
    # -- RFC 4475 §3.1.2: invalid messages -------------------------------------------------------------------------
    # §3.1.2.1 "The Via header field of this request contains additional semicolons and commas without parameters or
    # values.  The Contact header field contains additional semicolons without parameters."
    "rfc4475/badinv01.dat": _reject(("bad-via", "Via"), ("bad-name-addr", "Contact")),
    # §3.1.2.2 "a Content Length that is larger than the actual length of the body" (UDP: respond 400)
    "rfc4475/clerr.dat": _reject(("content-length-mismatch", "Content-Length")),
    # §3.1.2.3 "This request has a negative value for Content-Length."
    "rfc4475/ncl.dat": _reject(("bad-content-length", "Content-Length")),
    # §3.1.2.4 CSeq >2**32-1, Max-Forwards >255, Expires >2**32-1, Contact expires >2**32-1; 400 "due to the CSeq
    # error"; the expiry values alone could be treated as the default (so bad-expires is not fatal)
    "rfc4475/scalar02.dat": _reject(
        ("bad-cseq", "CSeq"), ("bad-max-forwards", "Max-Forwards"), ("bad-expires", "Expires"), ("bad-expires", "Contact")
    ),
    # §3.1.2.5 CSeq >2**32-1 and "The Warning field has a warning-value with more than 3 digits" (Retry-After has
    # no legal range in RFC 3261, so it is not a defect); "An element receiving this response will simply discard it."
    "rfc4475/scalarlg.dat": _reject(("bad-cseq", "CSeq"), ("bad-header-value", "Warning")),
    # §3.1.2.6 "an unterminated quote in the display name of the To field"
    "rfc4475/quotbal.dat": _reject(("bad-quoting", "To")),
    # §3.1.2.7 "the Request-URI has been enclosed within in "<>""
    "rfc4475/ltgtruri.dat": _reject(("bad-request-uri", None)),
    # §3.1.2.8 "This INVITE has illegal LWS within the Request-URI."
    "rfc4475/lwsruri.dat": _reject(("bad-request-uri", None)),
    # §3.1.2.9 "illegal multiple SP characters between elements of the start line"
    "rfc4475/lwsstart.dat": _reject(("bad-start-line", None)),
    # §3.1.2.10 "SP characters between the SIP-Version field and the CRLF terminating the Request-Line"
    "rfc4475/trws.dat": _reject(("bad-start-line", None)),
    # §3.1.2.11 "the SIP Request-URI contains escaped headers"
    "rfc4475/escruri.dat": _reject(("bad-request-uri", None)),
    # §3.1.2.12 "a non-GMT time zone in the SIP Date header field"; an element "could ignore this value altogether"
    "rfc4475/baddate.dat": _accept(("bad-date", "Date")),
    # §3.1.2.13 the Contact URI "has an escaped header, so the field must be in name-addr form"
    "rfc4475/regbadct.dat": _reject(("bad-name-addr", "Contact")),
    # §3.1.2.14 "the addr-spec in the To header field contains spaces"
    "rfc4475/badaspec.dat": _reject(("bad-name-addr", "To")),
    # §3.1.2.15 "the display names in the To and From header fields contain non-token characters but are unquoted";
    # the archive copy also ends without the empty line that closes the header section (see NOTE.md)
    "rfc4475/baddn.dat": _reject(("bad-name-addr", "From"), ("bad-name-addr", "To"), ("no-header-end", None)),
    # §3.1.2.16 "malformed due to its high version number" (respond 505); its Via says SIP/7.0 too
    "rfc4475/badvers.dat": _reject(("bad-version", None), ("bad-via", "Via")),
    # §3.1.2.17 "mismatching values for the method in the start line and the CSeq header field"
    "rfc4475/mismatch01.dat": _reject(("cseq-method-mismatch", "CSeq")),
    # §3.1.2.18 "an unknown method in the start line, and a CSeq method tag that does not match"
    "rfc4475/mismatch02.dat": _reject(("cseq-method-mismatch", "CSeq")),
    # §3.1.2.19 "a response code larger than 699.  An element receiving this response should simply drop it."
    "rfc4475/bigcode.dat": _reject(("bad-status-code", None)),
    # -- RFC 4475 §3.2 and §3.3: transaction and application semantics -------------------------------------------
    # §3.2.1 branch is just the cookie: "A parser must not break when receiving this message" (syntax is fine)
    "rfc4475/badbranch.dat": VALID,
    # §3.3.1 "This request contains no Call-ID, From, or To header fields." (nor Max-Forwards, which is not fatal)
    "rfc4475/insuf.dat": _reject(
        ("missing-header", "To"), ("missing-header", "From"), ("missing-header", "Call-ID"),
        ("missing-header", "Max-Forwards"),
    ),
    # §3.3.2 unknown Request-URI scheme: "A parser must accept this as a well-formed SIP request." (then 416)
    "rfc4475/unkscm.dat": _accept(("unknown-scheme", None)),
    # §3.3.3 atypical registered scheme: "A parser must accept this as a well-formed SIP request."
    "rfc4475/novelsc.dat": _accept(("unknown-scheme", None)),
    # §3.3.4 non-SIP schemes in To, From and Contact: "The message is syntactically valid."
    "rfc4475/unksm2.dat": _accept(("unknown-scheme", "To"), ("unknown-scheme", "From"), ("unknown-scheme", "Contact")),
    "rfc4475/bext01.dat": VALID,         # §3.3.5 unknown Require / Proxy-Require tags: well formed, answered 420
    "rfc4475/invut.dat": VALID,          # §3.3.6 unknown Content-Type: "It is syntactically valid."
    "rfc4475/regaut01.dat": VALID,       # §3.3.7 unknown Authorization scheme: "The request is well formed."
    # §3.3.8 "multiple Call-ID, To, From, Max-Forwards, and CSeq values" (respond 400)
    "rfc4475/multi01.dat": _reject(
        ("duplicate-singleton", "CSeq"), ("duplicate-singleton", "Call-ID"), ("duplicate-singleton", "To"),
        ("duplicate-singleton", "From"), ("duplicate-singleton", "Max-Forwards"),
    ),
    # §3.3.9 "Multiple conflicting Content-Length header field values" (a framing error)
    "rfc4475/mcl01.dat": _reject(("duplicate-singleton", "Content-Length")),
    "rfc4475/bcast.dat": VALID,          # §3.3.10 broadcast sent-by: "The message is well formed"
    "rfc4475/zeromf.dat": VALID,         # §3.3.11 "a legal SIP request with the Max-Forwards header field value set to zero"
    "rfc4475/cparam01.dat": VALID,       # §3.3.12 "unknownparam" is a contact-param: "This REGISTER should succeed."
    "rfc4475/cparam02.dat": VALID,       # §3.3.13 "unknownparam" is a url-parameter: "The register should succeed"
    "rfc4475/regescrt.dat": VALID,       # §3.3.14 escaped Route header in a bracketed Contact URI: should succeed
    "rfc4475/sdp01.dat": VALID,          # §3.3.15 Accept without application/sdp: well formed, answered 406 or 400
    # §3.4.1 "a legal message per RFC 2543": no branch, no From tag, no Content-Length; the missing Max-Forwards is the
    # one thing RFC 3261 §8.1.1 would require, and it is not fatal (§16.3 step 3)
    "rfc4475/inv2543.dat": _accept(("missing-header", "Max-Forwards")),
    # in the RFC's archive only, described by no section: no SIP-Version, To/From without a scheme, a header line
    # without a colon, and no Via or CSeq
    "rfc4475/test.dat": _reject(
        ("bad-start-line", None), ("missing-header", "CSeq"), ("missing-header", "Via"), ("bad-uri", "To"),
        ("bad-uri", "From"), ("bad-header-line", None),
    ),
    # -- RFC 5118 §4: IPv6 -------------------------------------------------------------------------------------------
    "rfc5118/ipv6-good.dat": VALID,      # §4.1 IPv6 references in R-URI, Via and Contact: well formed
    # §4.2 "The IPv6 reference in the R-URI does not contain the mandated delimiters" (respond 400)
    "rfc5118/ipv6-bad.dat": _reject(("bad-request-uri", None)),
    "rfc5118/port-ambiguous.dat": VALID,     # §4.3 [2001:db8::10:5070] is an address without a port
    "rfc5118/port-unambiguous.dat": VALID,   # §4.4 [2001:db8::10]:5070 is address 2001:db8::10, port 5070
    "rfc5118/via-received-param-with-delim.dat": VALID,  # §4.5 received=[IPv6] is to be accepted
    "rfc5118/via-received-param-no-delim.dat": VALID,    # §4.5 received=IPv6 (the RFC 3261 grammar's own form)
    # §4.6 is valid, but its printed Content-Length 268 exceeds the 251-octet body: a known inconsistency of
    # RFC 5118 kept as printed (torture README); on a datagram that is content-length-mismatch
    "rfc5118/ipv6-in-sdp.dat": _reject(("content-length-mismatch", "Content-Length")),
    "rfc5118/mult-ip-in-header.dat": VALID,  # §4.7 a Via list mixing IPv6 references and IPv4 addresses
    "rfc5118/mult-ip-in-sdp.dat": VALID,     # §4.8 IP4 and IP6 c= lines (Content-Length 181 < body: trailing octets)
    "rfc5118/ipv4-mapped-ipv6.dat": VALID,   # §4.9 ::ffff:192.0.2.10 forms
    "rfc5118/ipv6-bug-abnf-3-colons.dat": VALID,      # §4.10 the 3-colon form RFC 3261's ABNF admits: tolerated
    "rfc5118/ipv6-correct-abnf-2-colons.dat": VALID,  # §4.10 the correct 2-colon form
}
# fmt: on

#: Manifest rows called valid whose parse is not clean, each explained in EXPECTED.
KNOWN_VALID_EXCEPTIONS = {"rfc4475/inv2543.dat", "rfc5118/ipv6-in-sdp.dat"}


def _key(pair: tuple[str, str | None]) -> tuple[str, str]:
    return pair[0], pair[1] or ""


def _data(name: str) -> bytes:
    return (TORTURE / name).read_bytes()


def _msg(name: str) -> Request | Response:
    result = parse(_data(name))
    assert result.message is not None
    return result.message


def test_checksums() -> None:
    """The same check as ``sha256sum -c SHA256SUMS``: the files are the bytes that were copied, unchanged."""
    lines = (TORTURE / "SHA256SUMS").read_text(encoding="ascii").splitlines()
    assert len(lines) == len(MANIFEST) == 62
    for line in lines:
        digest, name = line.split(None, 1)
        assert hashlib.sha256((TORTURE / name.lstrip("*")).read_bytes()).hexdigest() == digest, name


def test_table_covers_the_manifest() -> None:
    assert sorted(EXPECTED) == sorted(row["file"] for row in MANIFEST)


@pytest.mark.parametrize("row", MANIFEST, ids=[row["file"] for row in MANIFEST])
def test_torture_message(row: dict[str, str]) -> None:
    name = row["file"]
    data = _data(name)
    expect = EXPECTED[name]
    result = parse(data)
    assert result.message is not None, [str(d) for d in result.defects]
    # RFC 3261 principle of the design: the wire is bytes; an unmodified message serialises to its input exactly.
    assert bytes(result.message) == data
    if row["valid_or_invalid"].startswith("valid") and name not in KNOWN_VALID_EXCEPTIONS:
        assert result.defects == (), [str(d) for d in result.defects]
    got = sorted(((d.code, d.header) for d in result.defects), key=_key)
    assert got == sorted(expect.defects, key=_key), [str(d) for d in result.defects]
    assert result.ok is expect.ok, [str(d) for d in result.defects]
    # A defect about a header points at a line of that header (a missing one points at the start line).
    for d in result.defects:
        if d.header is not None and d.code != "missing-header":
            name_at = data[d.offset :].split(b":", 1)[0].strip().decode("utf-8", "replace")
            assert canonical_key(name_at) == canonical_key(d.header), str(d)


@pytest.mark.parametrize("row", MANIFEST, ids=[row["file"] for row in MANIFEST])
def test_torture_lazy_defects_complete(row: dict[str, str]) -> None:
    """Reading the defects first, or after the typed views, or twice, gives the same list."""
    data = _data(row["file"])
    first = parse(data)
    second = parse(data)
    assert second.message is not None
    m = second.message
    _ = (m.via, m.to, m.from_, m.contact, m.cseq, m.expires, m.warning, m.content_type, m.call_id, m.max_forwards)
    assert first.defects == second.defects == second.defects


# -- typed views on valid messages ------------------------------------------------------------------------------------


def test_wsinv_views() -> None:
    """§3.1.1.1: folding, escaped quotes, mixed compact and long forms, odd casing, leading zeros."""
    m = _msg("rfc4475/wsinv.dat")
    assert isinstance(m, Request) and m.method == "INVITE"
    assert isinstance(m.uri, SipURI) and m.uri.param("unknownparam") == ""
    # "both comma separated and separately listed header field values" / "a mix of short and long form"
    assert [v.host for v in m.via] == ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    assert [v.transport for v in m.via] == ["UDP", "TCP", "UDP"]
    assert [v.branch for v in m.via] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert m.to is not None and m.to.tag == "1918181833n"
    assert m.to.uri_text == "sip:vivekg@chair-dnrc.example.com"
    # "escaped characters within quotes": "J Rosenberg \\\"" is J Rosenberg \"
    assert m.from_ is not None and m.from_.display_name == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    # "integer fields (Max-Forwards and CSeq) with leading zeros"
    assert m.max_forwards == 68
    assert m.cseq is not None and (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert len(m.contact) == 1 and m.contact[0].q == 0.33
    assert m.contact[0].display_name == 'Quoted string ""'
    assert m.contact[0].param("newparam") == "newvalue" and m.contact[0].param("secondparam") == ""
    assert m.header("Subject") == "" and m.header("s") == ""  # "an empty subject"
    assert m.header("NewFangledHeader") == "newfangled value continued newfangled value"
    # "it must parse it as a header value": the unknown header is kept as it was written
    assert m.header("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.route[0].uri is not None and m.route[0].uri.lr  # type: ignore[union-attr]
    assert m.content_length == 150 and len(m.body) == 150
    assert m.content_type is not None and m.content_type.mime == "application/sdp"
    # "unusual header field name character case" is kept on the wire side
    assert [h.name for h in m.headers][:4] == ["TO", "from", "MaX-fOrWaRdS", "Call-ID"]


def test_intmeth_views() -> None:
    """§3.1.1.2: "The Method contains non-alpha characters from token."; CSeq carries the same method."""
    m = _msg("rfc4475/intmeth.dat")
    assert isinstance(m, Request)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq is not None and m.cseq.method == m.method and m.cseq.number == 139122385
    assert m.via[0].branch == "z9hG4bK-.!%66*_+`'~"
    # "quoted-pair expansions, including a quoted NULL character"
    assert m.to is not None and m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_ is not None and m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert isinstance(m.uri, SipURI) and m.uri.host == "example.com"
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.header("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_esc01_views() -> None:
    """§3.1.1.3: "The application using the message must treat the % HEX HEX expansions as equivalent"."""
    m = _msg("rfc4475/esc01.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipURI)
    assert m.uri.user == "sips%3Auser%40example.com" and m.uri.user_unescaped == "sips:user@example.com"
    assert m.uri.host == "example.net"
    assert m.to is not None and m.to.uri is not None and m.to.uri.user_unescaped == "user"  # type: ignore[union-attr]
    assert m.from_ is not None and m.from_.uri.user_unescaped == "I have spaces"  # type: ignore[union-attr]
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact "i"
    assert m.content_type is not None and m.content_type.mime == "application/sdp"  # compact "C"
    contact = m.contact[0].uri
    assert isinstance(contact, SipURI) and contact.user_unescaped == "caller"
    assert contact.lr  # ;%6C%72 is ;lr
    # "the "name" uri-parameter has a value of "value%41", which is NOT equivalent to "valueA""
    assert contact.param("name") == "v%61lue%25%34%31" and unquote(contact.param("name") or "") == "value%41"


def test_escnull_views() -> None:
    """§3.1.1.4: "take special care when unescaping ... so as to not prematurely shorten the username"."""
    m = _msg("rfc4475/escnull.dat")
    assert m.to is not None and isinstance(m.to.uri, SipURI)
    assert m.to.uri.user == "null-%00-null" and m.to.uri.user_unescaped == "null-\x00-null"
    users = [c.uri.user_unescaped for c in m.contact if isinstance(c.uri, SipURI)]
    assert users == ["\x00", "\x00\x00"]  # "This request registers two distinct contact URIs."
    assert m.content_length == 0  # compact "L"


def test_esc02_views() -> None:
    """§3.1.1.5: % is not an escape in a method or a header name; two Contact values, not three."""
    m = _msg("rfc4475/esc02.dat")
    assert isinstance(m, Request) and m.method == "RE%47IST%45R" != "REGISTER"
    assert m.to is not None and m.to.display_name == "%Z%45"
    assert [c.uri_text for c in m.contact] == ["sip:alias1@host1.example.com", "sip:alias3@host3.example.com"]
    assert m.header("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_longreq_semiuri_views() -> None:
    m = _msg("rfc4475/lwsdisp.dat")
    assert m.from_ is not None and m.from_.display_name == "caller" and m.from_.uri_text == "sip:caller@example.com"
    m = _msg("rfc4475/longreq.dat")
    assert len(m.via) == 34 and m.via[-1].received == "192.0.2.5"
    assert m.from_ is not None and m.from_.tag == "12" + "982" * 50 + "424"
    # §3.1.1.9: "The Request-URI will parse so that the user part is "user;par=u@example.net"."
    m = _msg("rfc4475/semiuri.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipURI)
    assert m.uri.user_unescaped == "user;par=u@example.net" and m.uri.host == "example.com" and m.uri.params == ()


def test_dblreq_trailing_octets() -> None:
    """§3.1.1.8: the octets after Content-Length "are just spurious noise that must be ignored" (RFC 3261 §18.3)."""
    data = _data("rfc4475/dblreq.dat")
    m = _msg("rfc4475/dblreq.dat")
    assert isinstance(m, Request) and m.method == "REGISTER" and m.body == b""
    assert m.trailing.startswith(b"\r\nINVITE sip:joe@example.com SIP/2.0\r\n")
    assert data.endswith(m.trailing) and len(m.trailing) == len(data) - data.index(b"\r\n\r\n") - 4


def test_transports_unknown_kept() -> None:
    """§3.1.1.10: "exercises the transport extension mechanism"; the unknown transport is kept as written."""
    m = _msg("rfc4475/transports.dat")
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert all(v.has_cookie for v in m.via)


def test_mpart01_binary_body() -> None:
    """§3.1.1.11: "Receivers must take care to frame the received message properly." (553 octets with NULs)."""
    m = _msg("rfc4475/mpart01.dat")
    assert len(m.body) == m.content_length == 553 and b"\x00" in m.body
    assert m.content_type is not None and m.content_type.mime == "multipart/mixed"
    assert m.content_type.params == (("boundary", "7a9cbec02ceef655"),)
    assert m.via[0].sent_by == ("127.0.0.1", 5070) and m.via[0].rport is True


def test_unreason_and_noreason() -> None:
    """§3.1.1.12 UTF-8 reason phrase kept; §3.1.1.13 "The space character after the reason code is required."."""
    m = _msg("rfc4475/unreason.dat")
    assert isinstance(m, Response) and m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    m = _msg("rfc4475/noreason.dat")
    assert isinstance(m, Response) and m.status == 100 and m.reason == ""
    assert m.start_line == "SIP/2.0 100 "


def test_application_semantics_views() -> None:
    m = _msg("rfc4475/bext01.dat")
    assert m.require == ("nothingSupportsThis", "nothingSupportsThisEither")
    assert m.proxy_require == ("noProxiesSupportThis", "norDoAnyProxiesSupportThis")
    assert _msg("rfc4475/zeromf.dat").max_forwards == 0
    assert _msg("rfc4475/bcast.dat").via[1].sent_by == ("255.255.255.255", None)
    assert _msg("rfc4475/badbranch.dat").transaction_branch == "z9hG4bK"
    # §3.3.12: "unknownparam" "must be interpreted as a contact-param and not a url-param"
    c = _msg("rfc4475/cparam01.dat").contact[0]
    assert isinstance(c.uri, SipURI) and c.uri.params == () and c.param("unknownparam") == ""
    # §3.3.13: here it is a url-parameter
    c = _msg("rfc4475/cparam02.dat").contact[0]
    assert isinstance(c.uri, SipURI) and c.uri.params == (("unknownparam", None),) and c.params == ()
    # §3.3.14: "the escaped Route header in the contact URI"
    c = _msg("rfc4475/regescrt.dat").contact[0]
    assert isinstance(c.uri, SipURI) and c.uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)
    m = _msg("rfc4475/unksm2.dat")
    assert m.to is not None and m.to.uri is not None and m.to.uri.scheme == "isbn"
    assert m.contact[0].uri is not None and m.contact[0].uri.scheme == "name"


def test_inv2543_body_is_rest_of_datagram() -> None:
    """§3.4.1: "There is no explicit Content-Length.  (The body is assumed to be all octets in the datagram after the
    null-line.)", "no branch parameter" and "no From tag"."""
    data = _data("rfc4475/inv2543.dat")
    m = _msg("rfc4475/inv2543.dat")
    assert m.content_length is None and m.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert m.via[0].branch is None and m.from_ is not None and m.from_.tag is None
    assert m.max_forwards is None


def test_ipv6_good_and_bad() -> None:
    m = _msg("rfc5118/ipv6-good.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipURI) and m.uri.host == "[2001:db8::10]"
    assert m.via[0].host == "[2001:db8::9:1]"
    assert m.contact[0].uri.host_unbracketed == "2001:db8::1"  # type: ignore[union-attr]
    bad = parse(_data("rfc5118/ipv6-bad.dat"))
    assert [d.code for d in bad.fatal] == ["bad-request-uri"] and "2001:db8::10" in bad.fatal[0].detail


def test_port_ambiguous_vs_unambiguous() -> None:
    """RFC 5118 §4.3: in sip:[2001:db8::10:5070] "5070" is part of the address, not a port; §4.4: [..]:5070 is."""
    m = _msg("rfc5118/port-ambiguous.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipURI)
    assert (m.uri.host, m.uri.port) == ("[2001:db8::10:5070]", None)
    assert ipaddress.ip_address(m.uri.host_unbracketed) == ipaddress.ip_address("2001:db8::10:5070")
    m = _msg("rfc5118/port-unambiguous.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipURI)
    assert (m.uri.host, m.uri.port) == ("[2001:db8::10]", 5070)


def test_via_received_with_and_without_brackets() -> None:
    """RFC 5118 §4.5: received= may hold an IPv6 reference with or without delimiters; both are accepted."""
    with_delim = _msg("rfc5118/via-received-param-with-delim.dat").via[0]
    no_delim = _msg("rfc5118/via-received-param-no-delim.dat").via[0]
    assert with_delim.received == "[2001:db8::9:255]" and with_delim.branch == "z9hG4bKas3-111"
    assert no_delim.received == "2001:db8::9:255" and no_delim.branch == "z9hG4bKas3"
    assert ipaddress.ip_address(with_delim.received.strip("[]")) == ipaddress.ip_address(no_delim.received)


def test_mult_ip_in_header() -> None:
    """RFC 5118 §4.7: a Via list with IPv6 references and IPv4 addresses."""
    vias = _msg("rfc5118/mult-ip-in-header.dat").via
    assert [v.sent_by for v in vias] == [("[2001:db8::9:1]", 6050), ("192.0.2.1", None), ("[2001:db8::9:255]", None)]
    assert vias[2].received == "192.0.2.200" and vias[2].transport == "TCP"


def test_ipv4_mapped_and_abnf_colons() -> None:
    m = _msg("rfc5118/ipv4-mapped-ipv6.dat")
    assert m.via[0].sent_by == ("[::ffff:192.0.2.10]", 19823)
    assert ipaddress.ip_address(m.via[1].host.strip("[]")).ipv4_mapped == ipaddress.ip_address("192.0.2.2")
    # §4.10: the 3-colon form is not an RFC 4291 address, but RFC 3261's ABNF admits it and it is tolerated
    m = _msg("rfc5118/ipv6-bug-abnf-3-colons.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipURI) and m.uri.host == "[2001:db8:::192.0.2.1]"
    m = _msg("rfc5118/ipv6-correct-abnf-2-colons.dat")
    assert isinstance(m, Request) and isinstance(m.uri, SipURI) and m.uri.host == "[2001:db8::192.0.2.1]"


def test_sdp_content_length_inconsistencies() -> None:
    """RFC 5118 §4.6 and §4.8 print Content-Lengths that disagree with their bodies (torture README)."""
    data = _data("rfc5118/ipv6-in-sdp.dat")
    result = parse(data)
    assert result.message is not None and result.message.content_length == 268
    assert len(result.message.body) == 251 == len(data) - data.index(b"\r\n\r\n") - 4
    m = _msg("rfc5118/mult-ip-in-sdp.dat")
    assert m.content_length == len(m.body) == 181 and len(m.trailing) == 8


def test_tel_uri_in_torture_contact() -> None:
    # cparam01's Contact is a SIP URI with a telephone-number user part, not a tel URI (RFC 3261 §19.1.6)
    c = _msg("rfc4475/cparam01.dat").contact[0]
    assert isinstance(c.uri, SipURI) and not isinstance(c.uri, TelURI) and c.uri.user == "+19725552222"
