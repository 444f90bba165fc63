"""Property tests (hypothesis): parse never raises on any bytes, built messages round-trip with zero defects, and
mutated valid messages never make the parser or a typed view raise."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conformance.sip import (
    BuildError,
    Message,
    Request,
    build_ack_for_non2xx,
    build_cancel,
    build_prack,
    build_request,
    build_response,
    name_addr,
    parse,
    via_value,
)

TORTURE = Path(__file__).parent / "data" / "torture"
SEEDS = [p.read_bytes() for p in sorted(TORTURE.glob("*/*.dat"))]

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VIEWS = (
    "via", "from_", "to", "contact", "contact_star", "route", "record_route", "reply_to", "cseq", "call_id",
    "max_forwards", "content_length", "content_type", "rseq", "rack", "require", "supported", "unsupported",
    "proxy_require", "allow", "expires", "min_expires", "warning", "transaction_branch", "start_line", "sdp",
)  # fmt: skip


def touch(msg: Message) -> None:
    """Read every typed view and every derived property; none may raise."""
    for name in VIEWS:
        getattr(msg, name)
    for v in msg.via:
        _ = (v.branch, v.received, v.rport, v.maddr, v.ttl, v.sent_by, v.params, v.has_cookie, str(v))
    for na in (msg.from_, msg.to, msg.reply_to, *msg.contact, *msg.route, *msg.record_route):
        if na is not None:
            _ = (na.uri, na.display_name, na.tag, na.expires, na.q, na.params, str(na))
    if msg.content_type is not None:
        _ = (msg.content_type.mime, msg.content_type.params)
    if isinstance(msg, Request):
        uri = msg.uri
        if uri is not None:
            str(uri)
    _ = (msg.summary(), repr(msg), msg.fatal_defects)


def check_parse(data: bytes, stream: bool = False) -> None:
    result = parse(data, stream=stream)
    defects = result.defects
    assert all(d.code != "parser-error" for d in defects), [str(d) for d in defects]
    assert all(0 <= d.offset <= len(data) for d in defects)
    _ = (result.ok, result.fatal, result.codes(), repr(result), [str(d) for d in defects])
    msg = result.message
    if msg is not None:
        assert bytes(msg) == data
        touch(msg)
        assert msg.defects == defects  # reading views after defects adds nothing
        views_first = parse(data, stream=stream).message
        assert views_first is not None
        touch(views_first)
        assert views_first.defects == defects  # lazy validation: the same list whatever is read first


# -- any bytes ---------------------------------------------------------------------------------------------------------

SIP_ALPHABET = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b",", b"<", b">", b'"', b"\\", b"@", b"[", b"]", b"=", b"%",
     b"/", b"?", b"\x00", b"\xff", b"\xc3\xa9", b"SIP/2.0", b"INVITE", b"sip:", b"tel:", b"Via", b"v", b"To", b"From",
     b"Call-ID", b"CSeq", b"Contact", b"m", b"l", b"Content-Length", b"Expires", b"RAck", b"RSeq", b"Require",
     b"branch", b"tag", b"q", b"0", b"1", b"9", b"65536", b"a", b"b.example.com", b"[::1]", b"*", b"\r\n "]
)  # fmt: skip


@FAST
@given(st.binary(max_size=600))
def test_any_bytes_never_raise(data: bytes) -> None:
    check_parse(data)


@FAST
@given(st.lists(SIP_ALPHABET, max_size=80).map(b"".join))
def test_sip_shaped_bytes_never_raise(data: bytes) -> None:
    check_parse(data)


@FAST
@given(st.sampled_from([b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n"]), st.lists(SIP_ALPHABET, max_size=60))
def test_start_line_then_noise_never_raises(start: bytes, parts: list[bytes]) -> None:
    check_parse(start + b"".join(parts))
    check_parse(start + b"".join(parts) + b"\r\n\r\n")


# -- built messages round-trip -----------------------------------------------------------------------------------------

_LETTER = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _LETTER + "0123456789"
label = st.builds(
    lambda first, mid, last: first + mid + last,
    st.sampled_from(_ALNUM),
    st.text(_ALNUM + "-", max_size=8),
    st.sampled_from(_ALNUM),
) | st.sampled_from(_ALNUM)
toplabel = st.builds(lambda first, rest: first + rest, st.sampled_from(_LETTER), st.text(_ALNUM, max_size=6))
hostname = st.builds(lambda labels, top: ".".join([*labels, top]), st.lists(label, max_size=3), toplabel)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
hosts = st.one_of(hostname, ipv4, ipv6)
ports = st.none() | st.integers(0, 65535)
TOKEN_CHARS = _ALNUM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=16)
# user = 1*( unreserved / escaped / user-unreserved )
users = st.lists(
    st.sampled_from(list(_ALNUM + "-_.!~*'()&=+$,;?/")) | st.integers(0, 255).map(lambda b: f"%{b:02X}"),
    min_size=1,
    max_size=12,
).map("".join)
# display names: any text a quoted-string can hold (no control characters), quotes and backslashes included
display_names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029\x85") | st.sampled_from('"\\'),
    max_size=20,
)
methods = tokens.filter(lambda m: m not in ("ACK", "CANCEL"))
bodies = st.binary(max_size=200)


def _hostport(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(methods)
    user, host, port = draw(users), draw(hosts), draw(ports)
    uri = f"sip:{user}@{_hostport(host, port)}"
    from_ = name_addr(f"sip:{draw(users)}@{draw(hosts)}", draw(display_names), tag=draw(tokens))
    to = name_addr(uri, draw(display_names))
    via_host = draw(hosts)
    via = via_value(
        draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"])), via_host, draw(ports), "z9hG4bK" + draw(tokens)
    )
    body = draw(bodies)
    return build_request(
        method,
        uri,
        from_=from_,
        to=to,
        via=via,
        call_id=draw(tokens) + "@" + draw(hostname),
        cseq=draw(st.integers(0, 2**31 - 1)),
        max_forwards=draw(st.integers(0, 255)),
        contact=name_addr(f"sip:{draw(users)}@{_hostport(draw(hosts), draw(ports))}"),
        headers=[("Subject", draw(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)).strip())],
        body=body,
        content_type="application/octet-stream" if body else None,
    )


def assert_round_trip(msg: Message) -> None:
    data = bytes(msg)
    result = parse(data)
    assert result.message is not None and bytes(result.message) == data
    assert result.defects == (), [str(d) for d in result.defects]


@SLOW
@given(requests())
def test_built_request_round_trips(req: Request) -> None:
    assert_round_trip(req)
    touch(req)
    assert req.cseq is not None and req.cseq.method == req.method


@SLOW
@given(requests(), st.integers(100, 699), st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
       tokens, bodies)  # fmt: skip
def test_built_response_round_trips(req: Request, status: int, reason: str, tag: str, body: bytes) -> None:
    resp = build_response(req, status, reason, to_tag=tag, body=body, content_type="text/plain" if body else None)
    assert_round_trip(resp)
    assert resp.status == status and resp.header("Call-ID") == req.header("Call-ID")
    assert resp.to is not None and resp.to.tag == tag  # the request's To has no tag: the given one is added


@SLOW
@given(requests(), tokens, st.integers(1, 2**32 - 1), st.integers(0, 2**31 - 1))
def test_built_dialog_requests_round_trip(req: Request, tag: str, rseq: int, cseq: int) -> None:
    invite = req.with_start_line(f"INVITE {req.uri_text} SIP/2.0").with_header("CSeq", f"{req.cseq.number} INVITE")  # type: ignore[union-attr]
    assert isinstance(invite, Request) and invite.defects == ()
    busy = build_response(invite, 486, to_tag=tag)
    assert_round_trip(build_ack_for_non2xx(invite, busy))
    assert_round_trip(build_cancel(invite))
    reliable = build_response(invite, 183, to_tag=tag, headers=[("RSeq", str(rseq)), ("Require", "100rel")])
    prack = build_prack(invite, reliable, cseq, invite.via[0].raw)
    assert_round_trip(prack)
    assert prack.rack is not None and prack.rack.rseq == rseq


@FAST
@given(display_names, hosts, ports, users)
def test_name_addr_display_round_trips(display: str, host: str, port: int | None, user: str) -> None:
    """A display name with quotes and backslashes is quoted so that it reads back unchanged (§25.1 quoted-pair)."""
    uri = f"sip:{user}@{_hostport(host, port)}"
    req = build_request(
        "OPTIONS", uri, from_=name_addr(uri, display, tag="1"), to=name_addr(uri), via=via_value("UDP", host, port)
    )
    assert req.from_ is not None
    assert req.from_.display_name == (display or None)
    parsed = req.from_.uri
    assert parsed is not None and parsed.host == host  # type: ignore[union-attr]
    if host.startswith("["):
        assert ipaddress.ip_address(host[1:-1])


@FAST
@given(st.text(max_size=20))
def test_builder_either_builds_clean_or_raises_build_error(display: str) -> None:
    try:
        req = build_request(
            "OPTIONS", "sip:b@example.com", from_=name_addr("sip:a@example.com", display, tag="1"),
            to=name_addr("sip:b@example.com"), via=via_value("UDP", "example.com", None),
        )  # fmt: skip
    except BuildError as exc:
        assert "the message would be invalid" in str(exc)
        return
    assert_round_trip(req)


# -- mutations of valid messages ---------------------------------------------------------------------------------------

VALID_SEEDS = [s for s in SEEDS if parse(s).ok]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "insert", "delete", "duplicate", "flip"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(SIP_ALPHABET | st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 30))]
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 60))]
        elif at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@SLOW
@given(mutated())
def test_mutated_valid_messages_never_raise(data: bytes) -> None:
    check_parse(data)


@SLOW
@given(st.sampled_from(VALID_SEEDS), st.data())
def test_every_prefix_never_raises(seed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(seed)))
    check_parse(seed[:cut])
    check_parse(seed[:cut], stream=True)
    assume(cut > 0)
    check_parse(seed[cut:])


def _quotes_balanced_by_hand(value: str) -> bool:
    """The reference reading of quoted-string balance: walk the text, a backslash inside quotes escapes one char."""
    in_quote = False
    i = 0
    while i < len(value):
        if in_quote and value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            in_quote = not in_quote
        i += 1
    return not in_quote


@given(st.text(alphabet='"\\a <>\n\t', max_size=40))
@settings(max_examples=2000)
def test_quotes_balanced_agrees_with_a_walk_over_the_text(value: str) -> None:
    from conformance.sip._abnf import quotes_balanced

    assert quotes_balanced(value) == _quotes_balanced_by_hand(value)
