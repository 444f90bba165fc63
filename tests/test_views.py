"""Typed views of a parsed message: Via, name-addr, CSeq, RAck, RSeq, option tags, Allow, Expires, Contact ``*``,
Content-Type, and the URI types. Each rule the view encodes has its RFC sentence quoted beside the assertion."""

from __future__ import annotations

import pytest

from conformance.sip import (
    AbsoluteURI,
    ContentType,
    CSeq,
    NameAddr,
    RAck,
    Request,
    Response,
    SipURI,
    TelURI,
    Via,
    parse,
    parse_uri,
)


def message(*headers: str, start: str = "SIP/2.0 200 OK", body: bytes = b"") -> Request | Response:
    """A message with the mandatory headers and ``headers`` (``"Name: value"`` lines) after them; the CSeq method is
    the request's method (INVITE for a response)."""
    method = "INVITE" if start.startswith("SIP/") else start.split()[0]
    lines = [
        start,
        "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds",
        "Max-Forwards: 70",
        "To: <sip:bob@example.com>;tag=a6c85cf",
        "From: <sip:alice@example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710@pc33.example.com",
        f"CSeq: 314159 {method}",
        *headers,
        f"Content-Length: {len(body)}",
    ]
    result = parse(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert result.message is not None
    assert result.defects == (), [str(d) for d in result.defects]
    return result.message


def sip_uri(text: str) -> SipURI:
    uri, problem = parse_uri(text)
    assert problem is None, problem
    assert isinstance(uri, SipURI)
    return uri


# -- Via (RFC 3261 §20.42, §18.2.1, RFC 3581) -------------------------------------------------------------------------


def test_via_params() -> None:
    m = message(
        "Via: SIP/2.0/udp proxy.example.com:5070;branch=z9hG4bKnashds8;received=192.0.2.1;rport=5071"
        ";maddr=239.255.255.1;ttl=16;Hidden",
    )
    v = m.via[1]
    assert isinstance(v, Via)
    assert (v.protocol, v.version, v.transport, v.host, v.port) == ("SIP", "2.0", "udp", "proxy.example.com", 5070)
    assert v.transport_upper == "UDP"
    # sent-by = host [ COLON port ]
    assert v.sent_by == ("proxy.example.com", 5070)
    assert v.params == (
        ("branch", "z9hG4bKnashds8"),
        ("received", "192.0.2.1"),
        ("rport", "5071"),
        ("maddr", "239.255.255.1"),
        ("ttl", "16"),
        ("Hidden", None),
    )
    assert v.branch == "z9hG4bKnashds8"
    # §18.2.1: "the server MUST add a "received" parameter to that Via header field value"
    assert v.received == "192.0.2.1"
    # RFC 3581 §4: the server "MUST set the value of the "rport" parameter to the source port of the request"
    assert v.rport == 5071
    # §18.1.1 / §20.42: via-maddr = "maddr" EQUAL host; via-ttl = "ttl" EQUAL ttl
    assert v.maddr == "239.255.255.1" and v.ttl == 16
    # via-extension = generic-param: a flag has the value "", an absent param None; names are case-insensitive
    assert v.param("hidden") == "" and v.param("HIDDEN") == "" and v.param("nope") is None
    assert str(v) == v.raw and v.raw.startswith("SIP/2.0/udp proxy.example.com:5070;")


def test_via_branch_cookie_and_defaults() -> None:
    m = message("Via: SIP/2.0/TCP [2001:db8::1];branch=1234;rport", "Via: SIP/2.0/TLS client.example.com")
    top, mid, last = m.via
    # §8.1.1.7: "The branch ID inserted by an element compliant with this specification MUST always begin with the
    # characters "z9hG4bK"."
    assert top.has_cookie and not mid.has_cookie and not last.has_cookie
    assert m.transaction_branch == top.branch == "z9hG4bK776asdhds"
    # RFC 3581 §3: "the client MUST include the rport parameter with no value"
    assert mid.rport is True and top.rport is None
    assert mid.sent_by == ("[2001:db8::1]", None) and mid.port is None
    assert last.branch is None and last.received is None and last.maddr is None and last.ttl is None


def test_via_with_lws() -> None:
    """§7.3.1 / §25.1: SLASH = SWS "/" SWS, SEMI = SWS ";" SWS, EQUAL = SWS "=" SWS (RFC 4475 wsinv)."""
    m = message(
        "v:  SIP  / 2.0  / TCP     spindle.example.com : 5061  ;\r\n  branch  =   z9hG4bK9ikj8  ;  received = 10.0.0.1"
    )
    v = m.via[1]
    assert (v.transport, v.host, v.port, v.branch, v.received) == (
        "TCP",
        "spindle.example.com",
        5061,
        "z9hG4bK9ikj8",
        "10.0.0.1",
    )


# -- name-addr: From, To, Contact, Route, Record-Route, Reply-To (RFC 3261 §20.10, §20.20, §20.39) -----------------


def test_name_addr_display_names() -> None:
    m = message(
        'Contact: "Mr. \\"Watson\\"" <sip:watson@worcester.bell-telephone.com>;q=0.7;expires=3600',
        "Contact: Watson Thomas <sip:tw@example.com>",
        "Contact: sip:plain@example.com;q=1",
        start="REGISTER sip:registrar.example.com SIP/2.0",
    )
    quoted, tokens, bare = m.contact
    assert all(isinstance(c, NameAddr) for c in m.contact)
    # display-name = *(token LWS)/ quoted-string; a quoted one is unquoted, quoted-pairs resolved
    assert quoted.display_raw == '"Mr. \\"Watson\\""' and quoted.display_name == 'Mr. "Watson"'
    assert tokens.display_name == "Watson Thomas"
    assert bare.display_name is None and bare.display_raw == ""
    # §20.10: "the URI including all URI parameters is enclosed in "<" and ">"" in name-addr form
    assert quoted.bracketed and tokens.bracketed and not bare.bracketed
    # c-p-q = "q" EQUAL qvalue; c-p-expires = "expires" EQUAL delta-seconds
    assert quoted.q == 0.7 and quoted.expires == 3600
    assert bare.q == 1.0 and bare.expires is None and tokens.q is None
    assert quoted.params == (("q", "0.7"), ("expires", "3600"))
    assert quoted.param("Q") == "0.7"
    assert isinstance(quoted.uri, SipURI) and quoted.uri.host == "worcester.bell-telephone.com"
    assert str(quoted) == quoted.raw


def test_addr_spec_parameters_belong_to_the_header() -> None:
    """§20.10: "If the URI is not enclosed in angle brackets, any semicolon-delimited parameters are header-parameters,
    not URI parameters."."""
    m = message("Contact: sip:bob@example.com;transport=tcp;expires=60", start="REGISTER sip:example.com SIP/2.0")
    c = m.contact[0]
    assert c.uri_text == "sip:bob@example.com"
    assert isinstance(c.uri, SipURI) and c.uri.params == () and c.uri.transport is None
    assert c.param("transport") == "tcp" and c.expires == 60
    m = message("Contact: <sip:bob@example.com;transport=tcp>;expires=60", start="REGISTER sip:example.com SIP/2.0")
    c = m.contact[0]
    assert isinstance(c.uri, SipURI) and c.uri.transport == "tcp" and c.param("transport") is None


def test_from_to_tags() -> None:
    """§19.3: "The "tag" parameter is used in the To and From header fields of SIP messages."."""
    m = message("Reply-To: Bob <sip:bob@example.com>")
    assert m.to is not None and m.to.tag == "a6c85cf"
    assert m.from_ is not None and m.from_.tag == "1928301774"
    assert m.reply_to is not None and m.reply_to.display_name == "Bob" and m.reply_to.tag is None
    # LWS around the "=" (RFC 4475 wsinv "tag    = 1918181833n")
    m = message(start="OPTIONS sip:b@example.com SIP/2.0").with_header("To", "sip:b@example.com ;  tag = x1")
    assert m.to is not None and m.to.tag == "x1" and m.to.uri_text == "sip:b@example.com"


def test_tag_and_branch_not_read_from_quoted_values() -> None:
    """§25.1 gen-value = token / host / quoted-string: a ";tag=" inside a quoted value is text, not a parameter."""
    m = message(
        'Via: SIP/2.0/UDP h.example.com;x="a;branch=z9hG4bKevil";branch=z9hG4bKreal',
        start="OPTIONS sip:bob@example.com SIP/2.0",
    ).with_header("From", '<sip:alice@example.com>;x="y;tag=evil";tag=real')
    assert m.defects == ()
    assert m.from_ is not None and m.from_.tag == "real" and m.from_.param("x") == '"y;tag=evil"'
    assert m.via[1].branch == "z9hG4bKreal"


def test_route_and_record_route() -> None:
    m = message(
        "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Record-Route: <sip:p3.example.com;lr>",
        "Route: <sip:edge.example.com;lr>",
    )
    assert [r.uri_text for r in m.record_route] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
        "sip:p3.example.com;lr",
    ]
    assert [r.uri_text for r in m.route] == ["sip:edge.example.com;lr"]
    # §19.1.1: "The lr parameter, when present, indicates that the element responsible for this resource implements
    # the routing mechanisms specified in this document."
    assert all(isinstance(r.uri, SipURI) and r.uri.lr for r in m.record_route)


# -- CSeq, RAck, RSeq ------------------------------------------------------------------------------------------------


def test_cseq() -> None:
    """§20.16: "the CSeq header field ... contains a single decimal sequence number and the request method"."""
    m = message()
    assert m.cseq == CSeq(314159, "INVITE") and str(m.cseq) == "314159 INVITE"
    m = message(start="OPTIONS sip:bob@example.com SIP/2.0").with_header("CSeq", "0 OPTIONS")
    assert m.cseq is not None and m.cseq.number == 0 and m.defects == ()
    # §8.1.1.5: "MUST be less than 2**31"
    top = message(start="OPTIONS sip:bob@example.com SIP/2.0").with_header("CSeq", f"{2**31 - 1} OPTIONS")
    assert top.cseq is not None and top.cseq.number == 2**31 - 1 and top.defects == ()


def test_rseq_and_rack() -> None:
    """RFC 3262 §7.1 RSeq = "RSeq" HCOLON response-num; §7.2 RAck = "RAck" HCOLON response-num LWS CSeq-num LWS
    Method."""
    provisional = message("RSeq: 988789", "Require: 100rel", start="SIP/2.0 183 Session Progress")
    assert provisional.rseq == 988789 and provisional.require == ("100rel",)
    prack = message("RAck: 776656 1 INVITE", start="PRACK sip:bob@example.com SIP/2.0")
    assert prack.rack == RAck(776656, 1, "INVITE") and str(prack.rack) == "776656 1 INVITE"
    assert prack.defects == ()
    assert message().rseq is None and message().rack is None


# -- option tags, Allow, Expires, Min-Expires ------------------------------------------------------------------------


def test_option_tag_lists() -> None:
    """§19.2: "Option tags are unique identifiers used to designate new options (extensions) in SIP." They appear
    in Require (§20.32), Proxy-Require (§20.29), Supported (§20.37) and Unsupported (§20.40)."""
    m = message(
        "Require: 100rel",
        "Proxy-Require: foo, bar",
        "Supported: timer, 100rel",
        "k: path",
        "Unsupported: baz",
        "Supported:",
    )
    assert m.require == ("100rel",)
    assert m.proxy_require == ("foo", "bar")
    # list headers over several lines are one list (§7.3.1); an empty Supported adds nothing
    assert m.supported == ("timer", "100rel", "path")
    assert m.unsupported == ("baz",)
    bare = message()
    assert bare.require == bare.supported == bare.unsupported == bare.proxy_require == ()


def test_allow() -> None:
    """§20.5: "The Allow header field lists the set of methods supported by the UA generating the message."."""
    m = message("Allow: INVITE, ACK, OPTIONS, CANCEL, BYE", "Allow: PRACK")
    assert m.allow == ("INVITE", "ACK", "OPTIONS", "CANCEL", "BYE", "PRACK")
    assert message().allow == ()


def test_expires_and_min_expires() -> None:
    """§20.19: "The value of this field is an integral number of seconds (in decimal) between 0 and (2**32)-1"."""
    m = message("Expires: 7200", "Min-Expires: 60", start="SIP/2.0 423 Interval Too Brief")
    assert m.expires == 7200 and m.min_expires == 60
    assert message(f"Expires: {2**32 - 1}").expires == 2**32 - 1
    assert message("Expires: 0").expires == 0
    assert message().expires is None and message().min_expires is None


def test_contact_star() -> None:
    """§10.2.2: "a UA requests the removal of all registrations ... by specifying the Contact header field value
    "*"" (with Expires: 0)."""
    m = message("Contact: *", "Expires: 0", start="REGISTER sip:example.com SIP/2.0")
    assert m.contact_star and m.contact == ()
    normal = message("Contact: <sip:a@example.com>", start="REGISTER sip:example.com SIP/2.0")
    assert not normal.contact_star and len(normal.contact) == 1
    assert not message().contact_star


# -- Content-Type and other single values ----------------------------------------------------------------------------


def test_content_type() -> None:
    """§20.15 media-type = m-type SLASH m-subtype *(SEMI m-parameter); RFC 2045: type and subtype are
    case-insensitive."""
    m = message("Content-Type: Application/SDP ; charset=UTF-8", body=b"v=0\r\n")
    ct = m.content_type
    assert isinstance(ct, ContentType)
    assert (ct.type, ct.subtype) == ("Application", "SDP") and ct.mime == "application/sdp"
    assert ct.params == (("charset", "UTF-8"),)
    assert str(ct) == "Application/SDP ; charset=UTF-8"
    assert message("c: multipart/mixed;boundary=7a9cbec02ceef655").content_type == ContentType(
        "multipart", "mixed", ";boundary=7a9cbec02ceef655"
    )
    assert message().content_type is None


def test_scalar_views() -> None:
    m = message(start="OPTIONS sip:bob@example.com SIP/2.0")
    assert m.call_id == "a84b4c76e66710@pc33.example.com" and m.max_forwards == 70 and m.content_length == 0
    assert m.sdp is None  # no body
    w = message('Warning: 301 isi.edu "Incompatible network address type \'E.164\'", 399 [::1]:5060 "x"')
    # §20.43: warning-value = warn-code SP warn-agent SP warn-text
    assert w.warning == ((301, "isi.edu", "\"Incompatible network address type 'E.164'\""), (399, "[::1]:5060", '"x"'))


# -- URIs (RFC 3261 §19.1, RFC 3966) ---------------------------------------------------------------------------------


def test_sip_uri_components() -> None:
    """§19.1.1: sip:user:password@host:port;uri-parameters?headers."""
    u = sip_uri(
        "sip:alice:secretword@atlanta.com:5061;transport=TCP;lr;maddr=239.255.255.1?subject=project&priority=urgent"
    )
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sip", "alice", "secretword", "atlanta.com", 5061)
    assert u.params == (("transport", "TCP"), ("lr", None), ("maddr", "239.255.255.1"))
    assert u.headers == (("subject", "project"), ("priority", "urgent"))
    # §19.1.1: "The transport parameter determines the transport mechanism to be used for sending SIP messages";
    # values are compared case-insensitively (§19.1.4)
    assert u.transport == "tcp"
    assert u.lr and u.has_param("LR") and u.param("maddr") == "239.255.255.1"
    assert u.param("ttl") is None and u.param("ttl", "1") == "1"
    assert u.hostport == "atlanta.com:5061" and not u.secure
    assert str(u) == u.raw


def test_sip_uri_forms() -> None:
    # §19.1.1 examples
    u = sip_uri("sips:alice@atlanta.com")
    assert u.secure and u.user == "alice" and u.port is None and u.hostport == "atlanta.com" and u.password is None
    u = sip_uri("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com")
    assert u.user is None and u.param("method") == "REGISTER" and u.headers == (("to", "alice%40atlanta.com"),)
    u = sip_uri("sip:+1-212-555-1212:1234@gateway.com;user=phone")
    assert (u.user, u.password, u.param("user")) == ("+1-212-555-1212", "1234", "phone")
    u = sip_uri("sip:alice@192.0.2.4")
    assert u.host == "192.0.2.4"
    u = sip_uri("sip:[2001:db8::1]:5060")
    assert u.host == "[2001:db8::1]" and u.host_unbracketed == "2001:db8::1" and u.port == 5060
    # §19.1.4: "characters other than those in the "reserved" set ... are equivalent to their "%" HEX HEX encoding"
    u = sip_uri("sip:%61lice@atlanta.com;%74ransport=tcp")
    assert u.user == "%61lice" and u.user_unescaped == "alice" and u.transport == "tcp"
    assert sip_uri("sip:atlanta.com").user_unescaped is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("sip:alice@atlanta.com:65536", "bad-port"),
        ("sip:alice@atl_anta.com", "bad-host"),
        ("sip:alice@256.1.1.1", "bad-host"),
        ("sip:alice@[2001:db8::1", "bad-host"),
        ("sip:al ice@atlanta.com", "bad-uri"),
        ("sip:alice@atlanta.com;=x", "bad-uri"),
        ("sip:alice@atlanta.com?subject", "bad-uri"),
        ("sip:alice@atlanta.com?", "bad-uri"),
        ("alice@atlanta.com", "bad-uri"),
        ("http://a b", "bad-uri"),
        ("http://example.com/", "unknown-scheme"),
    ],
)
def test_uri_problems(text: str, code: str) -> None:
    _, problem = parse_uri(text)
    assert problem is not None and problem.code == code


def test_tel_uri() -> None:
    """RFC 3966 §3: telephone-subscriber = global-number / local-number; a local number needs a phone-context."""
    uri, problem = parse_uri("tel:+1-201-555-0123;ext=1234")
    assert problem is None and isinstance(uri, TelURI)
    assert uri.number == "+1-201-555-0123" and uri.is_global and uri.params == (("ext", "1234"),)
    assert uri.scheme == "tel" and str(uri) == "tel:+1-201-555-0123;ext=1234"
    local, problem = parse_uri("tel:7042;phone-context=example.com")
    assert problem is None and isinstance(local, TelURI) and not local.is_global
    assert local.params == (("phone-context", "example.com"),)
    _, problem = parse_uri("tel:not a number")
    assert problem is not None and problem.code == "bad-uri"


def test_absolute_uri() -> None:
    """§19.1: other schemes are absoluteURI; RFC 4475 §3.3.2: "A parser must accept this as a well-formed SIP
    request" (the UAS then answers 416)."""
    uri, problem = parse_uri("nobodyKnowsThisScheme:totallyopaquecontent")
    assert isinstance(uri, AbsoluteURI) and problem is not None and problem.code == "unknown-scheme"
    assert (uri.scheme, uri.rest, str(uri)) == (
        "nobodyknowsthisscheme",
        "totallyopaquecontent",
        "nobodyKnowsThisScheme:totallyopaquecontent",
    )
    uri, _ = parse_uri("urn:service:sos")
    assert isinstance(uri, AbsoluteURI) and uri.rest == "service:sos"


def test_request_uri_view() -> None:
    m = message(start="INVITE sip:bob@biloxi.com;transport=udp SIP/2.0")
    assert isinstance(m, Request) and isinstance(m.uri, SipURI) and m.uri.transport == "udp"
    assert m.uri is m.uri  # parsed once
    resp = message()
    assert isinstance(resp, Response) and not hasattr(resp, "uri")
