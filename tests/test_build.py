"""Strict builders (RFC 3261 §8.1.1, §8.2.6, §17.1.1.3, §9.1, RFC 3262 §7.2), the raw path and the ``with_*`` copies.

Every built message parses with zero defects; an invalid request raises BuildError naming the defect.
"""

from __future__ import annotations

import random
import re

import pytest

from conformance.sip import (
    BRANCH_COOKIE,
    REASON_PHRASES,
    BuildError,
    Request,
    Response,
    build_ack_for_non2xx,
    build_cancel,
    build_prack,
    build_request,
    build_response,
    name_addr,
    new_branch,
    new_call_id,
    new_tag,
    parse,
    raw_message,
    via_value,
)

ALICE = "sip:alice@atlanta.example.com"
BOB = "sip:bob@biloxi.example.com"
TOP_VIA = "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK74bf9"


def clean(msg: Request | Response) -> Request | Response:
    """The message re-parses from its bytes with zero defects and the same bytes."""
    result = parse(bytes(msg))
    assert result.defects == (), [str(d) for d in result.defects]
    assert result.message is not None and bytes(result.message) == bytes(msg)
    return result.message


def invite(**kw: object) -> Request:
    args: dict[str, object] = dict(
        from_=name_addr(ALICE, "Alice", tag="9fxced76sl"),
        to=name_addr(BOB, "Bob"),
        via=[TOP_VIA, "SIP/2.0/TCP proxy.example.com;branch=z9hG4bK2"],
        call_id="3848276298220188511@atlanta.example.com",
        cseq=314159,
        contact="<sip:alice@pc33.atlanta.example.com>",
        route=["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"],
        headers=[("Record-Route", "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>"), ("Timestamp", "54.2")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    args.update(kw)
    return build_request("INVITE", BOB, **args)  # type: ignore[arg-type]


# -- build_request ---------------------------------------------------------------------------------------------------


def test_build_request_mandatory_headers() -> None:
    """§8.1.1: "A valid SIP request formulated by a UAC MUST, at a minimum, contain the following header fields: To,
    From, CSeq, Call-ID, Max-Forwards, and Via; all of these header fields are mandatory in all SIP requests."."""
    req = invite()
    clean(req)
    assert req.method == "INVITE" and req.uri_text == BOB
    assert [h.name for h in req.headers] == [
        "Via",
        "Via",
        "Max-Forwards",
        "To",
        "From",
        "Call-ID",
        "CSeq",
        "Route",
        "Route",
        "Contact",
        "Record-Route",
        "Timestamp",
        "Content-Type",
        "Content-Length",
    ]
    # §8.1.1.6: "The Max-Forwards header field ... SHOULD be 70"; §8.1.1.5 CSeq method = request method
    assert req.max_forwards == 70 and req.cseq is not None and (req.cseq.number, req.cseq.method) == (314159, "INVITE")
    assert req.to is not None and req.to.display_name == "Bob" and req.to.tag is None
    assert req.from_ is not None and req.from_.tag == "9fxced76sl"
    assert req.body == b"v=0\r\n" and req.content_length == 5
    assert req.content_type is not None and req.content_type.mime == "application/sdp"


def test_build_request_defaults() -> None:
    req = build_request("OPTIONS", BOB, from_=name_addr(ALICE, tag="1"), to=name_addr(BOB), via=TOP_VIA)
    clean(req)
    # §8.1.1.4: the Call-ID is made when not given; no Content-Type without a body (§20.15)
    assert req.call_id is not None and "@" in req.call_id
    assert not req.has_header("Content-Type") and req.content_length == 0 and not req.has_header("Contact")
    # a body without content_type gets no Content-Type: the caller asked for exactly that
    assert not build_request("OPTIONS", BOB, from_=name_addr(ALICE, tag="1"), to=name_addr(BOB), via=TOP_VIA,
                             body=b"x").has_header("Content-Type")  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"method": "INV@TE"}, "bad-method"),
        ({"method": "IN VITE"}, "bad-request-uri"),
        ({"uri": "<sip:bob@biloxi.example.com>"}, "bad-request-uri"),
        ({"to": "bob@biloxi.example.com"}, "bad-uri"),
        ({"from_": '"Alice <sip:alice@atlanta.example.com>'}, "bad-quoting"),
        ({"via": "SIP/2.0/UDP"}, "bad-via"),
        ({"via": "SIP/2.0/UDP host:99999;branch=z9hG4bK1"}, "bad-port"),
        ({"cseq": 2**31}, "bad-cseq"),
        ({"max_forwards": 256}, "bad-max-forwards"),
        ({"call_id": "a b"}, "bad-call-id"),
        ({"headers": [("Expires", "soon")]}, "bad-expires"),
        ({"headers": [("Subject", "line\r\nbreak")]}, "bad-header-line"),
    ],
)
def test_build_request_rejects_invalid_input(kwargs: dict[str, object], code: str) -> None:
    args: dict[str, object] = dict(
        method="OPTIONS", uri=BOB, from_=name_addr(ALICE, tag="1"), to=name_addr(BOB), via=TOP_VIA
    )
    args.update(kwargs)
    with pytest.raises(BuildError, match=re.escape(code)):
        build_request(**args)  # type: ignore[arg-type]


def test_build_error_is_a_value_error_naming_the_defect() -> None:
    with pytest.raises(ValueError) as info:
        build_request("OPTIONS", BOB, from_=name_addr(ALICE, tag="1"), to=name_addr(BOB), via=TOP_VIA, max_forwards=300)
    assert isinstance(info.value, BuildError)
    assert "bad-max-forwards in Max-Forwards" in str(info.value) and "RFC 3261 §20.22" in str(info.value)


# -- build_response (§8.2.6) ---------------------------------------------------------------------------------------


def test_build_response_copies_request_fields() -> None:
    """§8.2.6.2: "The From field of the response MUST equal the From header field of the request. The Call-ID header
    field of the response MUST equal the Call-ID header field of the request. The CSeq header field of the response
    MUST equal the CSeq field of the request. The Via header field values in the response MUST equal the Via header
    field values in the request and MUST maintain the same ordering."."""
    req = invite()
    resp = build_response(req, 486)
    clean(resp)
    assert isinstance(resp, Response) and (resp.status, resp.reason) == (486, "Busy Here")
    assert resp.header("From") == req.header("From")
    assert resp.header("Call-ID") == req.header("Call-ID")
    assert resp.header("CSeq") == req.header("CSeq")
    assert resp.header_values("Via") == req.header_values("Via")
    assert [v.branch for v in resp.via] == ["z9hG4bK74bf9", "z9hG4bK2"]


def test_build_response_to_tag_rules() -> None:
    """§8.2.6.2: "if the To header field in the request did not contain a tag, the URI in the To header field in the
    response MUST equal the URI in the To header field; additionally, the UAS MUST add a tag to the To header field in
    the response (with the exception of the 100 (Trying) response, in which a tag MAY be present)."."""
    req = invite()
    ringing = build_response(req, 180)
    assert ringing.to is not None and ringing.to.tag and ringing.to.uri_text == BOB
    assert ringing.to.display_name == "Bob"
    given = build_response(req, 200, to_tag="a6c85cf")
    assert given.to is not None and given.to.tag == "a6c85cf"
    # §8.2.6.1 / §8.2.6.2: 100 Trying without a tag
    trying = build_response(req, 100)
    clean(trying)
    assert trying.to is not None and trying.to.tag is None and trying.reason == "Trying"
    # "If a request contained a To tag in the request, the To header field in the response MUST equal that of the
    # request."
    in_dialog = invite(to=name_addr(BOB, "Bob", tag="existing"))
    resp = build_response(in_dialog, 200, to_tag="ignored")
    assert resp.header("To") == in_dialog.header("To") and resp.to is not None and resp.to.tag == "existing"
    # the same tag for every response when the caller passes it (as a UAS must)
    tag = new_tag(random.Random(3))
    assert {build_response(req, s, to_tag=tag).to.tag for s in (180, 183, 200)} == {tag}  # type: ignore[union-attr]


def test_build_response_record_route_copy() -> None:
    """§12.1.1: "the UAS MUST copy all Record-Route header field values from the request into the response ... and
    MUST maintain the order of those values" (for a response that establishes a dialog)."""
    req = invite()
    for status in (180, 200):
        resp = build_response(req, status, to_tag="x")
        assert resp.header_values("Record-Route") == req.header_values("Record-Route")
        assert [r.uri_text for r in resp.record_route] == [r.uri_text for r in req.record_route]
    # not by default on a final non-2xx response, nor for a non-INVITE; explicit when asked
    assert not build_response(req, 486, to_tag="x").has_header("Record-Route")
    assert not build_response(req, 100).has_header("Record-Route")
    assert build_response(req, 486, to_tag="x", record_route=True).has_header("Record-Route")
    assert not build_response(req, 200, to_tag="x", record_route=False).has_header("Record-Route")


def test_build_response_timestamp_copy() -> None:
    """§8.2.6.1: "any Timestamp header field present in the request MUST be copied into this 100 (Trying)
    response"."""
    req = invite()
    assert build_response(req, 100).header("Timestamp") == "54.2"
    assert not build_response(invite(headers=[]), 100).has_header("Timestamp")


def test_build_response_options() -> None:
    req = invite()
    resp = build_response(
        req,
        200,
        to_tag="t",
        contact="<sip:bob@192.0.2.4>",
        headers=[("Supported", "100rel")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    clean(resp)
    assert resp.contact[0].uri_text == "sip:bob@192.0.2.4" and resp.supported == ("100rel",)
    assert resp.body == b"v=0\r\n" and resp.content_type is not None and resp.content_type.mime == "application/sdp"
    assert build_response(req, 299, to_tag="t").reason == "Unknown"  # no phrase in the table
    assert build_response(req, 200, "Fine", to_tag="t").reason == "Fine"
    assert build_response(req, 183, to_tag="t").reason == REASON_PHRASES[183]
    for bad in (99, 700, 0):
        with pytest.raises(BuildError, match=str(bad)):
            build_response(req, bad)


def test_build_response_rejects_invalid_extra() -> None:
    with pytest.raises(BuildError, match="bad-rseq"):
        build_response(invite(), 183, to_tag="t", headers=[("RSeq", "0")])


# -- ACK for non-2xx (§17.1.1.3), CANCEL (§9.1), PRACK (RFC 3262 §7.2) ----------------------------------------------


def test_build_ack_for_non2xx() -> None:
    """§17.1.1.3: "The ACK request constructed by the client transaction MUST contain values for the Call-ID, From,
    and Request-URI that are equal to the values of those header fields in the request passed to the transport by the
    client transaction (call this the "original request"). The To header field in the ACK MUST equal the To header
    field in the response being acknowledged. The ACK MUST contain a single Via header field, and this MUST be equal
    to the top Via header field of the original request. The CSeq header field in the ACK MUST contain the same value
    for the sequence number as was present in the original request, but the method parameter MUST be equal to "ACK"."
    and "If the INVITE request whose response is being acknowledged had Route header fields, those header fields MUST
    appear in the ACK."."""
    req = invite()
    busy = build_response(req, 486, to_tag="busy1")
    ack = build_ack_for_non2xx(req, busy)
    clean(ack)
    assert ack.method == "ACK" and ack.uri_text == req.uri_text
    assert ack.header("Call-ID") == req.header("Call-ID") and ack.header("From") == req.header("From")
    assert ack.header("To") == busy.header("To") and ack.to is not None and ack.to.tag == "busy1"
    assert len(ack.via) == 1 and ack.via[0].raw == req.via[0].raw and ack.transaction_branch == req.transaction_branch
    assert ack.cseq is not None and (ack.cseq.number, ack.cseq.method) == (314159, "ACK")
    assert ack.header_values("Route") == req.header_values("Route")
    assert ack.body == b"" and not ack.has_header("Contact")


def test_build_cancel() -> None:
    """§9.1: "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the CANCEL request MUST
    be identical to those in the request being cancelled, including tags. A CANCEL constructed by a client MUST have
    only a single Via header field value matching the top Via value in the request being cancelled." and "If the
    request being cancelled contains a Route header field, the CANCEL request MUST include that Route header field's
    values." RFC-NOTES §5: no Require or Proxy-Require."""
    req = invite(headers=[("Require", "100rel"), ("Proxy-Require", "foo")])
    cancel = build_cancel(req)
    clean(cancel)
    assert cancel.method == "CANCEL" and cancel.uri_text == req.uri_text
    for name in ("Call-ID", "To", "From"):
        assert cancel.header(name) == req.header(name)
    assert cancel.cseq is not None and (cancel.cseq.number, cancel.cseq.method) == (314159, "CANCEL")
    assert len(cancel.via) == 1 and cancel.via[0].raw == req.via[0].raw
    assert cancel.header_values("Route") == req.header_values("Route")
    assert not cancel.has_header("Require") and not cancel.has_header("Proxy-Require") and cancel.body == b""


def test_build_prack() -> None:
    """RFC 3262 §7.2: "The first number is the value from the RSeq header in the provisional response that is being
    acknowledged. The next number, and the method, are copied from the CSeq in the response that is being
    acknowledged."; the PRACK is sent in the early dialog: remote target from the Contact, route set from the
    Record-Route in reverse order (RFC 3261 §12.1.2)."""
    req = invite()
    reliable = build_response(
        req, 183, to_tag="early", contact="<sip:bob@192.0.2.4>", headers=[("Require", "100rel"), ("RSeq", "988789")]
    )
    via = via_value("UDP", "pc33.atlanta.example.com", 5060, rng=random.Random(1))
    prack = build_prack(req, reliable, 314160, via, headers=[("Supported", "100rel")])
    clean(prack)
    assert prack.method == "PRACK" and prack.uri_text == "sip:bob@192.0.2.4"
    assert prack.rack is not None and (prack.rack.rseq, prack.rack.cseq, prack.rack.method) == (
        988789,
        314159,
        "INVITE",
    )
    assert prack.cseq is not None and (prack.cseq.number, prack.cseq.method) == (314160, "PRACK")
    assert prack.to is not None and prack.to.tag == "early" and prack.header("From") == req.header("From")
    assert prack.call_id == req.call_id
    assert [r.uri_text for r in prack.route] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert prack.via[0].raw == via and prack.supported == ("100rel",)
    with pytest.raises(BuildError, match="RSeq"):
        build_prack(req, build_response(req, 180, to_tag="early"), 314160, via)


def test_ack_and_cancel_need_cseq_and_via() -> None:
    broken = parse(raw_message(f"INVITE {BOB} SIP/2.0", [("To", f"<{BOB}>"), ("CSeq", "x INVITE")])).message
    assert isinstance(broken, Request)
    with pytest.raises(BuildError):
        build_cancel(broken)
    with pytest.raises(BuildError):
        build_ack_for_non2xx(broken, build_response(invite(), 486, to_tag="x"))


# -- raw path --------------------------------------------------------------------------------------------------------


def test_raw_message_makes_invalid_bytes() -> None:
    """The raw path checks nothing: the fuzzer and misbehaving tests send what they want."""
    data = raw_message("INVITE  <sip:x> SIP/7.0", [("CSeq", "1 BYE"), ("X", "\x00")], b"body", content_length=99)
    assert data == b"INVITE  <sip:x> SIP/7.0\r\nCSeq: 1 BYE\r\nX: \x00\r\nContent-Length: 99\r\n\r\nbody"
    codes = {d.code for d in parse(data).defects}
    assert {"bad-start-line", "bad-version", "content-length-mismatch", "control-char", "missing-header"} <= codes
    assert raw_message("SIP/2.0 200 OK", [], b"ab") == b"SIP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nab"
    assert raw_message("X", [("A", "1")], content_length=None, line_end="\n") == b"X\nA: 1\n\n"
    assert raw_message("X", [], content_length="five") == b"X\r\nContent-Length: five\r\n\r\n"
    assert raw_message("X", [("S", "\udcff")], content_length=None) == b"X\r\nS: \xff\r\n\r\n"


# -- with_* copies ---------------------------------------------------------------------------------------------------


def test_with_header_replaces_every_line_at_the_first_place() -> None:
    req = invite(headers=[("Supported", "timer"), ("Subject", "s"), ("Supported", "path")])
    new = req.with_header("Supported", "100rel")
    clean(new)
    assert new.header_values("Supported") == ["100rel"] and new.supported == ("100rel",)
    names = [h.name for h in new.headers]
    assert names.index("Supported") < names.index("Subject")
    added = req.with_header("X-New", "1")  # absent: added before Content-Length
    assert [h.name for h in added.headers][-2:] == ["X-New", "Content-Length"] and added.header("x-new") == "1"
    assert bytes(req) == bytes(invite(headers=[("Supported", "timer"), ("Subject", "s"), ("Supported", "path")]))


def test_with_header_keeps_compact_form() -> None:
    compact = parse(
        b"OPTIONS sip:b@example.com SIP/2.0\r\nv: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n"
        b"t: <sip:b@example.com>\r\nf: <sip:a@example.com>;tag=1\r\ni: x@h\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n"
    ).message
    assert compact is not None
    new = compact.with_header("To", "<sip:z@example.com>")
    assert new.header_fields("To")[0].name == "t" and new.to is not None and new.to.uri_text == "sip:z@example.com"
    assert new.defects == ()


def test_with_header_added() -> None:
    req = invite(headers=[("Supported", "timer")])
    after = req.with_header_added("Supported", "path")
    assert after.header_values("Supported") == ["timer", "path"] and after.supported == ("timer", "path")
    before = req.with_header_added("Supported", "first", first=True)
    assert before.header_values("Supported") == ["first", "timer"]
    via = req.with_header_added("Via", "SIP/2.0/UDP new.example.com;branch=z9hG4bKnew", first=True)
    clean(via)
    assert via.via[0].host == "new.example.com" and len(via.via) == 3
    new = req.with_header_added("Accept", "application/sdp")
    assert [h.name for h in new.headers][-2:] == ["Accept", "Content-Length"]


def test_without_header() -> None:
    req = invite()
    new = req.without_header("Route")
    clean(new)
    assert not new.has_header("Route") and new.route == () and len(new.headers) == len(req.headers) - 2
    missing = req.without_header("Call-ID")
    assert [d.code for d in missing.defects] == ["missing-header"]  # the copy is re-parsed, not checked
    assert req.without_header("No-Such").raw == req.raw


def test_with_body() -> None:
    req = invite()
    new = req.with_body(b"hello", "text/plain")
    clean(new)
    assert new.body == b"hello" and new.content_length == 5
    assert new.content_type is not None and new.content_type.mime == "text/plain"
    assert new.header_count("Content-Type") == 1
    empty = new.with_body(b"")
    assert empty.body == b"" and empty.content_length == 0
    no_length = parse(raw_message(f"OPTIONS {BOB} SIP/2.0", [], content_length=None)).message
    assert no_length is not None and no_length.with_body(b"ab").header("Content-Length") == "2"


def test_with_start_line_and_summary() -> None:
    req = invite()
    new = req.with_start_line(f"INVITE {ALICE} SIP/2.0")
    assert isinstance(new, Request) and new.uri_text == ALICE and new.header("Call-ID") == req.header("Call-ID")
    assert (
        req.summary() == f"INVITE {BOB} SIP/2.0 (Call-ID 3848276298220188511@atlanta.example.com, CSeq 314159 INVITE)"
    )
    assert req.copy_header_lines("Route") == ["Route: <sip:p1.example.com;lr>", "Route: <sip:p2.example.com;lr>"]
    assert req == parse(bytes(req)).message and hash(req) == hash(parse(bytes(req)).message)


# -- tags, branches, Call-IDs ----------------------------------------------------------------------------------------


def test_new_tag_randomness() -> None:
    """§19.3: "When a tag is generated by a UA for insertion into a request or response, it MUST be globally unique
    and cryptographically random with at least 32 bits of randomness."."""
    tags = {new_tag() for _ in range(2000)}
    assert len(tags) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in tags)  # 64 bits >= 32
    assert len({t[i] for t in tags for i in range(16)}) == 16  # every hex digit used: not a counter


def test_new_branch_cookie() -> None:
    """§8.1.1.7: "The branch ID inserted by an element compliant with this specification MUST always begin with the
    characters "z9hG4bK"." and be "unique across space and time"."""
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000 and all(b.startswith(BRANCH_COOKIE) and len(b) > len(BRANCH_COOKIE) for b in branches)
    assert BRANCH_COOKIE == "z9hG4bK"


def test_new_call_id() -> None:
    assert new_call_id().endswith("@sipcert.invalid")
    assert new_call_id("host.example.com", random.Random(5)) == new_call_id("host.example.com", random.Random(5))
    assert new_call_id() != new_call_id()


def test_seeded_rng_is_deterministic() -> None:
    def run(seed: int) -> tuple[str, str, bytes, bytes]:
        rng = random.Random(seed)
        tag, branch = new_tag(rng), new_branch(rng)
        req = build_request(
            "INVITE",
            BOB,
            from_=name_addr(ALICE, tag=tag),
            to=name_addr(BOB),
            via=via_value("UDP", "h.example.com", 5060, rng=rng),
            rng=rng,
        )
        resp = build_response(req, 180, rng=rng)
        return tag, branch, bytes(req), bytes(resp)

    assert run(42) == run(42)
    assert run(42) != run(43)
    assert new_tag(random.Random(1)) == new_tag(random.Random(1))


def test_helpers() -> None:
    assert via_value("udp", "2001:db8::1", 5060, "z9hG4bKx") == "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;rport"
    assert via_value("TCP", "h.example.com", None, "z9hG4bKx", rport=False, extra=";alias") == (
        "SIP/2.0/TCP h.example.com;branch=z9hG4bKx;alias"
    )
    assert name_addr(BOB) == f"<{BOB}>"
    # display names are quoted with backslash escapes (§25.1 quoted-pair)
    assert name_addr(BOB, 'Bob "the" \\ Builder', tag="t", params=";x=1") == (
        f'"Bob \\"the\\" \\\\ Builder" <{BOB}>;tag=t;x=1'
    )
    msg = build_request("OPTIONS", BOB, from_=name_addr(ALICE, 'A "q" \\', tag="1"), to=name_addr(BOB), via=TOP_VIA)
    assert msg.from_ is not None and msg.from_.display_name == 'A "q" \\'


def test_build_response_refuses_a_request_without_the_headers_it_must_copy() -> None:
    """§8.2.6.2 copies From, Call-ID, CSeq and Via into the response: for a request lacking one there is no valid
    response to build, and the builder must not invent one (it once wrote 'Call-ID: None')."""
    from conformance.sip import BuildError, parse, raw_message

    req = parse(
        raw_message(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0",
            [("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKa"), ("From", "<sip:a@127.0.0.1>;tag=1"),
             ("To", "<sip:x@127.0.0.1>"), ("CSeq", "1 OPTIONS"), ("Max-Forwards", "70")],
        )
    ).message
    with pytest.raises(BuildError, match="no Call-ID"):
        build_response(req, 400)
