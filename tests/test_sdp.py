"""SDP (RFC 4566): tolerant parsing with defects, convenience views, the strict offer builder, round trips."""

from __future__ import annotations

import ipaddress
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.sip._defects import DEFECT_CODES
from conformance.sip._sdp import (
    DIRECTIONS,
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Connection,
    Media,
    Origin,
    SessionDescription,
    build_sdp,
    parse_sdp,
)

TORTURE = Path(__file__).parent / "data" / "torture"


def crlf(text: str) -> bytes:
    """Lines written one per line in the test source, joined with CRLF and ended with CRLF."""
    return "".join(line.strip() + "\r\n" for line in text.strip().splitlines()).encode()


def details(sd: SessionDescription) -> list[str]:
    return [d.detail for d in sd.defects]


def has_defect(sd: SessionDescription, fragment: str) -> bool:
    return any(fragment in d.detail for d in sd.defects)


def sip_body(path: Path) -> bytes:
    data = path.read_bytes()
    return data[data.index(b"\r\n\r\n") + 4 :]


# RFC 4566 §5, the example session description.
RFC4566_EXAMPLE = crlf("""
    v=0
    o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
    s=SDP Seminar
    i=A Seminar on the session description protocol
    u=http://www.example.com/seminars/sdp.pdf
    e=j.doe@example.com (Jane Doe)
    c=IN IP4 224.2.17.12/127
    t=2873397496 2873404696
    a=recvonly
    m=audio 49170 RTP/AVP 0
    m=video 51372 RTP/AVP 99
    a=rtpmap:99 h263-1998/90000
""")

# RFC 3264 §10.1, Alice's offer and Bob's answer (their "s=" is empty, which RFC 4566 §5.3 later forbade).
RFC3264_OFFER = crlf("""
    v=0
    o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
    s=
    c=IN IP4 host.atlanta.example.com
    t=0 0
    m=audio 49170 RTP/AVP 0 8 97
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:97 iLBC/8000
    m=video 51372 RTP/AVP 31 32
    a=rtpmap:31 H261/90000
    a=rtpmap:32 MPV/90000
""")

RFC3264_ANSWER = crlf("""
    v=0
    o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com
    s=
    c=IN IP4 host.biloxi.example.com
    t=0 0
    m=audio 49174 RTP/AVP 0
    a=rtpmap:0 PCMU/8000
    m=video 49170 RTP/AVP 32
    a=rtpmap:32 MPV/90000
""")

# Every optional session and media line, in RFC 4566 §5 order (values from §5.8, §5.10, §5.11, §5.12, §5.14).
EVERY_LINE = crlf("""
    v=0
    o=- 20518 0 IN IP6 2001:db8::5
    s=Every line
    i=Session information
    u=http://www.example.com/seminars/sdp.pdf
    e=j.doe@example.com (Jane Doe)
    e=Jane Doe <j.doe@example.com>
    p=+1 617 555-6011
    c=IN IP6 FF15::101/3
    b=CT:128
    b=AS:64
    t=3034423619 3042462419
    r=604800 3600 0 90000
    r=7d 1h 0 25h
    t=0 0
    z=2882844526 -1h 2898848070 0
    k=prompt
    a=tool:sipcert
    a=sendonly
    m=video 49170/2 RTP/AVP 31 96
    i=Main video
    c=IN IP6 2001:db8::6
    b=AS:512
    k=clear:secret
    a=rtpmap:96 H264/90000
    a=fmtp:96 profile-level-id=42e01f
    a=recvonly
    m=application 9 TCP/BFCP *
    c=IN IP4 224.2.1.1/127/3
    c=IN IP4 224.2.1.4/127
    a=setup:actpass
""")


# -- every field --------------------------------------------------------------------------------------------------


def test_s5_rfc4566_example_every_field() -> None:
    """RFC 4566 §5: "An example SDP description is: ..." parses with every field in place and no defects."""
    sd = parse_sdp(RFC4566_EXAMPLE)
    assert sd.defects == ()
    assert sd.version == 0
    assert sd.origin == Origin("jdoe", "2890844526", "2890842807", "IN", "IP4", "10.47.16.5")
    assert sd.session_name == "SDP Seminar"
    assert sd.information == "A Seminar on the session description protocol"
    assert sd.uri == "http://www.example.com/seminars/sdp.pdf"
    assert sd.emails == ("j.doe@example.com (Jane Doe)",)
    assert sd.connection == Connection("IN", "IP4", "224.2.17.12", ttl=127)
    assert sd.times == ((2873397496, 2873404696),)
    assert sd.attributes == (Attribute("recvonly"),)
    assert [m.media for m in sd.media] == ["audio", "video"]
    audio, video = sd.media
    assert (audio.port, audio.num_ports, audio.proto, audio.formats) == (49170, None, "RTP/AVP", ("0",))
    assert (video.port, video.proto, video.formats) == (51372, "RTP/AVP", ("99",))
    assert video.attributes == (Attribute("rtpmap", "99 h263-1998/90000"),)
    assert video.rtpmap == {"99": "h263-1998/90000"}
    assert audio.direction == video.direction == "recvonly"  # inherited from the session level
    assert sd.media_connection(0) == sd.media_connection(1) == sd.connection


def test_s5_every_optional_line() -> None:
    """RFC 4566 §5: i= u= e=* p=* c= b=* (t= r=*)+ z= k= a=* and per media i= c=* b=* k= a=*."""
    sd = parse_sdp(EVERY_LINE)
    assert sd.defects == ()
    assert sd.origin == Origin("-", "20518", "0", "IN", "IP6", "2001:db8::5")
    assert sd.phones == ("+1 617 555-6011",)
    assert sd.emails == ("j.doe@example.com (Jane Doe)", "Jane Doe <j.doe@example.com>")
    assert sd.connection == Connection("IN", "IP6", "FF15::101", ttl=None, num_addresses=3)
    assert sd.bandwidths == (("CT", 128), ("AS", 64))
    assert sd.times == ((3034423619, 3042462419), (0, 0))
    assert sd.repeats == (("604800 3600 0 90000", "7d 1h 0 25h"),)
    assert sd.timezones == "2882844526 -1h 2898848070 0"
    assert sd.key == "prompt"
    assert sd.attribute("tool") == "sipcert"
    assert sd.direction == "sendonly"
    video, app = sd.media
    assert (video.port, video.num_ports, video.formats) == (49170, 2, ("31", "96"))
    assert video.information == "Main video"
    assert video.connection == Connection("IN", "IP6", "2001:db8::6")
    assert video.bandwidths == (("AS", 512),)
    assert video.key == "clear:secret"
    assert video.rtpmap == {"96": "H264/90000"}
    assert video.fmtp == {"96": "profile-level-id=42e01f"}
    assert video.direction == "recvonly"  # its own attribute wins over the session's sendonly
    assert (app.proto, app.formats) == ("TCP/BFCP", ("*",))
    assert app.connection == Connection("IN", "IP4", "224.2.1.1", ttl=127, num_addresses=3)
    assert app.extra_connections == (Connection("IN", "IP4", "224.2.1.4", ttl=127),)
    assert app.direction == "sendonly"  # inherited
    assert sd.media_connection(1) == app.connection


@pytest.mark.parametrize("body", [RFC4566_EXAMPLE, EVERY_LINE, RFC3264_OFFER, RFC3264_ANSWER], ids=lambda b: b[:30])
def test_to_bytes_gives_back_canonical_input(body: bytes) -> None:
    """Serialising an unmodified description written in §5 order with CRLF gives back the bytes."""
    assert parse_sdp(body).to_bytes() == body


def test_rfc3264_offer_and_answer() -> None:
    """RFC 3264 §10.1: the offer and answer parse; the only defect is the empty s= RFC 4566 §5.3 forbids."""
    offer, answer = parse_sdp(RFC3264_OFFER), parse_sdp(RFC3264_ANSWER)
    for sd in (offer, answer):
        assert details(sd) == ["empty s= line (use a single space when there is no name)"]
        assert all(d.code == "bad-sdp" and d.header is None and not d.fatal for d in sd.defects)
        assert sd.defects[0].offset == sd.to_bytes().index(b"s=\r\n")
    assert offer.session_name == ""
    assert offer.connection == Connection("IN", "IP4", "host.atlanta.example.com")
    assert offer.media[0].formats == ("0", "8", "97")
    assert offer.media[0].rtpmap == {"0": "PCMU/8000", "8": "PCMA/8000", "97": "iLBC/8000"}
    assert offer.media[1].rtpmap == {"31": "H261/90000", "32": "MPV/90000"}
    assert [m.port for m in answer.media] == [49174, 49170]
    assert answer.media[1].formats == ("32",)
    assert all(m.direction == "sendrecv" for m in offer.media + answer.media)  # RFC 3264 §5.1 default


def test_s5_bare_lf_line_ends_are_accepted() -> None:
    """RFC 4566 §5: "parsers SHOULD be tolerant and also accept records terminated with a single newline"."""
    lf = RFC4566_EXAMPLE.replace(b"\r\n", b"\n")
    sd = parse_sdp(lf)
    assert sd.defects == ()
    assert sd == parse_sdp(RFC4566_EXAMPLE)
    assert sd.to_bytes() == RFC4566_EXAMPLE
    mixed = RFC4566_EXAMPLE.replace(b"\r\nm=", b"\nm=")
    assert parse_sdp(mixed) == sd


def test_str_and_bytes_input_agree() -> None:
    assert parse_sdp(RFC4566_EXAMPLE.decode()) == parse_sdp(RFC4566_EXAMPLE)
    assert parse_sdp(bytearray(RFC4566_EXAMPLE)) == parse_sdp(memoryview(RFC4566_EXAMPLE))


def test_values_are_frozen() -> None:
    sd = parse_sdp(RFC4566_EXAMPLE)
    with pytest.raises(FrozenInstanceError):
        sd.version = 1  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        sd.media[0].port = 1  # type: ignore[misc]
    assert hash(sd) == hash(parse_sdp(RFC4566_EXAMPLE))


# -- connection data and IPv6 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("c=IN IP6 2001:db8::1", Connection("IN", "IP6", "2001:db8::1")),
        ("c=IN IP6 ::ffff:192.0.2.1", Connection("IN", "IP6", "::ffff:192.0.2.1")),
        ("c=IN IP6 FF15::101/3", Connection("IN", "IP6", "FF15::101", None, 3)),
        ("c=IN IP4 192.0.2.1", Connection("IN", "IP4", "192.0.2.1")),
        ("c=IN IP4 0.0.0.0", Connection("IN", "IP4", "0.0.0.0")),
        ("c=IN IP4 224.2.1.1/127", Connection("IN", "IP4", "224.2.1.1", 127)),
        ("c=IN IP4 224.2.1.1/127/3", Connection("IN", "IP4", "224.2.1.1", 127, 3)),
        ("c=IN IP4 host.example.com", Connection("IN", "IP4", "host.example.com")),
        ("c=TN RFC2543 +1-555-0100", Connection("TN", "RFC2543", "+1-555-0100")),  # other nettypes: not judged
    ],
)
def test_s5_7_connection_data(line: str, expected: Connection) -> None:
    """RFC 4566 §5.7: c=<nettype> <addrtype> <connection-address>, with /<ttl> and /<number of addresses>."""
    body = crlf(f"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\n{line}\nt=0 0\nm=audio 9 RTP/AVP 0")
    sd = parse_sdp(body)
    assert sd.defects == ()
    assert sd.connection == expected
    assert sd.to_bytes() == body


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("c=IN IP4", "c= has 2 fields, expected 3"),
        ("c=IN IP4 192.0.2.1 extra", "c= has 4 fields, expected 3"),
        ("c=IN IP4 999.0.2.1", "is not a valid IP address"),
        ("c=IN IP6 2001:db8::zz", "is not a valid IP address"),
        ("c=IN IP4 2001:db8::1", "does not match address type IP4"),
        ("c=IN IP6 192.0.2.1", "does not match address type IP6"),
        ("c=IN IP6 fe80::1%eth0", "does not match address type IP6"),
        ("c=IN IP5 192.0.2.1", "is neither IP4 nor IP6"),
        ("c=IN IP4 host_with_underscore!", "neither an IP address nor a host name"),
        ("c=IN IP4 224.2.1.1", "multicast address needs a /<ttl>"),
        ("c=IN IP4 192.0.2.1/127", "on a unicast address"),
        ("c=IN IP4 224.2.1.1/300", "TTL 300 is over 255"),
        ("c=IN IP4 224.2.1.1/x", "is not a number"),
        ("c=IN IP4 224.2.1.1/1/2/3", "at most /<ttl>/<number of addresses>"),
        ("c=IN IP6 FF15::101/3/4", "at most one /<number of addresses>"),
    ],
)
def test_s5_7_bad_connection_data_is_a_defect(line: str, fragment: str) -> None:
    body = crlf(f"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\n{line}\nt=0 0\nm=audio 9 RTP/AVP 0")
    sd = parse_sdp(body)
    assert has_defect(sd, fragment), details(sd)
    assert all(d.offset == body.index(line.encode()) for d in sd.defects if d.detail.startswith("c="))


def test_rfc5118_ipv6_in_sdp_torture_body() -> None:
    """RFC 5118 §4.6: an IPv6 address in the SDP c= and o= lines is parsed like an IPv4 one."""
    sd = parse_sdp(sip_body(TORTURE / "rfc5118" / "ipv6-in-sdp.dat"))
    assert sd.defects == ()
    assert sd.origin == Origin("assistant", "971731711378798081", "0", "IN", "IP6", "2001:db8::20")
    assert sd.session_name == "Live video feed for today's meeting"
    assert sd.connection == Connection("IN", "IP6", "2001:db8::20")
    assert sd.times == ((3338481189, 3370017201),)
    assert [(m.media, m.port, m.formats) for m in sd.media] == [("audio", 6000, ("2",)), ("video", 6024, ("107",))]
    assert sd.media[0].rtpmap == {"2": "G726-32/8000"}
    assert sd.media[1].rtpmap == {"107": "H263-1998/90000"}
    assert ipaddress.ip_address(sd.media_connection(1).address).version == 6  # type: ignore[union-attr]


def test_rfc5118_mult_ip_in_sdp_torture_body() -> None:
    """RFC 5118 §4.7: one media stream on IPv4, the other on IPv6; each media c= line applies to its own stream."""
    sd = parse_sdp(sip_body(TORTURE / "rfc5118" / "mult-ip-in-sdp.dat"))
    assert details(sd) == ["empty s= line (use a single space when there is no name)"]
    assert sd.connection is None
    assert sd.media_connection(0) == Connection("IN", "IP4", "192.0.2.1")
    assert sd.media_connection(1) == Connection("IN", "IP6", "2001:db8::1")
    assert sd.media[1].rtpmap == {"107": "H263-1998/90000"}


@pytest.mark.parametrize("name", ["sdp01", "wsinv", "esc01", "lwsstart", "unreason"])
def test_rfc4475_sdp_bodies(name: str) -> None:
    """The RFC 4475 messages with a body carry a small SDP; only the clock-rate-less "a=rtpmap:31 LPC" is a defect."""
    sd = parse_sdp(sip_body(TORTURE / "rfc4475" / f"{name}.dat"))
    assert sd.version == 0 and sd.origin is not None and sd.times == ((0, 0),)
    assert [m.media for m in sd.media] == ["audio", "video"]
    assert [d.detail for d in sd.defects if "rtpmap" not in d.detail] == []


def test_rfc4475_dblreq_trailing_sdp_keeps_parsing_after_garbage() -> None:
    """RFC 4475 §3.1.1.8's trailing INVITE carries "m =video": the bad line is a defect and parsing goes on."""
    data = (TORTURE / "rfc4475" / "dblreq.dat").read_bytes()
    body = data[data.rindex(b"\r\n\r\nv=0") + 4 :]
    sd = parse_sdp(body)
    bad = [d for d in sd.defects if "not a <type>=<value>" in d.detail]
    assert len(bad) == 1 and body[bad[0].offset :].startswith(b"m =video")
    assert [m.media for m in sd.media] == ["audio"]
    assert sd.media[0].attributes == (Attribute("rtpmap", "31 LPC"),)  # attached to the last good m= section


# -- convenience views ----------------------------------------------------------------------------------------------


def _with(session_attrs: str, *media_attrs: str) -> SessionDescription:
    """A description with the given session-level and per-media a= lines (each string: lines separated by |)."""
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        *filter(None, session_attrs.split("|")),
    ]
    for attrs in media_attrs:
        lines += ["m=audio 9 RTP/AVP 0 97", "a=rtpmap:97 telephone-event/8000", *filter(None, attrs.split("|"))]
    return parse_sdp(crlf("\n".join(lines)))


@pytest.mark.parametrize(
    ("session", "media", "expected"),
    [
        ("", "", "sendrecv"),
        ("a=sendonly", "", "sendonly"),
        ("a=inactive", "a=recvonly", "recvonly"),
        ("", "a=inactive", "inactive"),
        ("a=recvonly", "a=sendrecv", "sendrecv"),
    ],
)
def test_rfc3264_s5_1_direction_inherits_session_level(session: str, media: str, expected: str) -> None:
    """RFC 3264 §5.1: a direction attribute at session level applies to every stream without its own;
    "If none of the attributes ... is present, sendrecv SHOULD be assumed"."""
    sd = _with(session, media)
    assert sd.defects == ()
    assert sd.media[0].direction == expected


def test_direction_follows_replace_of_session_attributes() -> None:
    sd = _with("", "", "a=sendonly")
    held = replace(sd, attributes=(Attribute("inactive"),))
    assert [m.direction for m in held.media] == ["inactive", "sendonly"]
    assert held.direction == "inactive" and sd.direction == "sendrecv"


def test_attribute_lookup() -> None:
    sd = _with("a=tool:one|a=tool:two|a=recvonly|a=cat:", "a=ptime:20|a=rtpmap:0 PCMU/8000")
    assert sd.attribute("tool") == "one"  # first value
    assert sd.attribute("recvonly") == ""  # property attribute: present, no value
    assert sd.attribute("cat") == ""
    assert sd.attribute("absent") is None
    assert sd.attribute("absent", "x") == "x"
    assert sd.media[0].attribute("ptime") == "20"
    assert Attribute("cat", "").__str__() == "cat:" and str(Attribute("recvonly")) == "recvonly"


def test_rtpmap_first_mapping_wins() -> None:
    sd = _with("", "a=rtpmap:0 PCMU/8000|a=rtpmap:0 G711/8000|a=fmtp:97 0-15")
    assert sd.media[0].rtpmap == {"97": "telephone-event/8000", "0": "PCMU/8000"}
    assert sd.media[0].fmtp == {"97": "0-15"}


def test_media_connection_falls_back_to_session() -> None:
    sd = parse_sdp(RFC3264_OFFER)
    assert sd.media_connection(0) is sd.connection
    with pytest.raises(IndexError):
        sd.media_connection(2)


# -- defects, never exceptions --------------------------------------------------------------------------------------

GOOD = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "m=audio 9 RTP/AVP 0"]


def _edit(index: int, line: str | None, *, insert: bool = False) -> bytes:
    """GOOD with one line replaced, deleted (``None``) or inserted before ``index``; CRLF line ends."""
    lines = list(GOOD)
    if insert:
        lines.insert(index, line or "")
    elif line is None:
        del lines[index]
    else:
        lines[index] = line
    return "".join(x + "\r\n" for x in lines).encode()


DEFECT_CASES: list[tuple[str, bytes, str, bytes | None]] = [
    # (id, body, fragment of the defect detail, bytes the defect offset points at)
    ("missing-v", _edit(0, None), "missing v= (protocol version) line", None),
    ("first-not-v", _edit(0, None), "the first line is not v=", b"o="),
    ("v-not-0", _edit(0, "v=1"), "unsupported SDP version 1", b"v=1"),
    ("v-not-number", _edit(0, "v=zero"), "v= value is not a number", b"v=zero"),
    ("missing-o", _edit(1, None), "missing o= (origin) line", None),
    ("o-5-fields", _edit(1, "o=- 1 1 IN IP4"), "o= has 5 fields, expected 6", b"o=-"),
    ("o-7-fields", _edit(1, "o=- 1 1 IN IP4 192.0.2.1 x"), "o= has 7 fields, expected 6", b"o=-"),
    ("o-sess-id", _edit(1, "o=- abc 1 IN IP4 192.0.2.1"), "o= sess-id is not a number", b"o=-"),
    ("o-sess-version", _edit(1, "o=- 1 v2 IN IP4 192.0.2.1"), "o= sess-version is not a number", b"o=-"),
    ("o-double-space", _edit(1, "o=-  1 1 IN IP4 192.0.2.1"), "not separated by single spaces", b"o=-"),
    ("o-bad-address", _edit(1, "o=- 1 1 IN IP4 300.1.1.1"), "not a valid IP address", b"o=-"),
    ("missing-s", _edit(2, None), "missing s= (session name) line", None),
    ("empty-s", _edit(2, "s="), "empty s= line", b"s=\r\n"),
    ("missing-t", _edit(4, None), "missing t= (timing) line", None),
    ("t-one-field", _edit(4, "t=0"), "t= has 1 fields, expected 2", b"t=0"),
    ("t-not-number", _edit(4, "t=now later"), "t= times are not decimal NTP times", b"t=now"),
    ("t-stop-before-start", _edit(4, "t=3034423619 3034423618"), "stop time is before the start time", b"t=3"),
    ("r-without-t", _edit(4, "r=7d 1h 0 25h", insert=True), "r= line does not follow a t= or r= line", b"r="),
    ("empty-r", _edit(5, "r=", insert=True), "empty r= line", b"r=\r\n"),
    ("port-too-big", _edit(5, "m=audio 70000 RTP/AVP 0"), "m= bad port '70000'", b"m=audio 70000"),
    ("port-not-number", _edit(5, "m=audio abc RTP/AVP 0"), "m= bad port 'abc'", b"m=audio abc"),
    ("port-negative", _edit(5, "m=audio -1 RTP/AVP 0"), "m= bad port '-1'", b"m=audio -1"),
    ("num-ports-zero", _edit(5, "m=audio 9/0 RTP/AVP 0"), "m= bad number of ports '0'", b"m=audio 9/0"),
    ("m-3-fields", _edit(5, "m=audio 9 RTP/AVP"), "m= has 3 fields", b"m=audio"),
    ("m-1-field", _edit(5, "m=audio"), "m= has 1 fields", b"m=audio"),
    ("m-bad-pt", _edit(5, "m=audio 9 RTP/AVP 200"), "RTP payload type '200'", b"m=audio"),
    ("m-bad-proto", _edit(5, "m=audio 9 RTP/(AVP) 0"), "transport protocol is not token", b"m=audio"),
    ("m-space-before-eq", _edit(5, "m =audio 9 RTP/AVP 0"), "not a <type>=<value> line", b"m =audio"),
    ("dynamic-pt-no-rtpmap", _edit(5, "m=audio 9 RTP/AVP 0 101"), "dynamic payload type 101 has no a=rtpmap", b"m="),
    (
        "c-before-s",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n",
        "s= (session name) line out of",
        b"s=-",
    ),
    ("a-before-t", _edit(4, "a=sendrecv", insert=True), "t= (timing) line out of", b"t=0 0"),
    ("duplicate-o", _edit(2, "o=- 2 2 IN IP4 192.0.2.2", insert=True), "more than one o= (origin) line", b"o=- 2"),
    ("duplicate-s", _edit(3, "s=again", insert=True), "more than one s=", b"s=again"),
    ("duplicate-media-i", _edit(6, "i=x\r\ni=y", insert=True), "more than one i= (media title) line", b"i=y"),
    ("unknown-type", _edit(5, "x=extension", insert=True), "unknown line type 'x'", b"x=ext"),
    ("unknown-type-in-media", _edit(6, "Q=1", insert=True), "unknown line type 'Q'", b"Q=1"),
    ("upper-case-type", _edit(0, "V=0"), "unknown line type 'V'", b"V=0"),
    (
        "session-line-in-media",
        _edit(6, "t=0 0", insert=True),
        "t= (timing) line inside a media description",
        b"t=0 0\r\n",
    ),
    ("garbage-line", _edit(3, "hello world", insert=True), "not a <type>=<value> line", b"hello"),
    ("one-char-line", _edit(3, "v", insert=True), "not a <type>=<value> line", b"v\r\n"),
    ("empty-line", _edit(3, "", insert=True), "empty line", b"\r\nc="),
    ("b-no-colon", _edit(4, "b=AS64", insert=True), "b= is not <bwtype>:<bandwidth>", b"b=AS64"),
    ("b-not-number", _edit(4, "b=AS:lots", insert=True), "b= bandwidth is not a number", b"b=AS:lots"),
    ("a-empty-name", _edit(5, "a=:value", insert=True), "a= attribute name is not a token", b"a=:"),
    ("a-bad-name", _edit(5, "a=x y:1", insert=True), "a= attribute name is not a token", b"a=x y"),
    ("rtpmap-no-rate", _edit(6, "a=rtpmap:0 PCMU", insert=True), "a=rtpmap is not", b"a=rtpmap"),
    ("rtpmap-no-value", _edit(6, "a=rtpmap", insert=True), "a=rtpmap is not", b"a=rtpmap"),
    ("fmtp-no-params", _edit(6, "a=fmtp:96", insert=True), "a=fmtp is not", b"a=fmtp"),
    ("two-directions", _edit(6, "a=sendonly\r\na=recvonly", insert=True), "more than one direction", b"a=recvonly"),
    ("direction-value", _edit(6, "a=sendonly:yes", insert=True), "a=sendonly takes no value", b"a=sendonly"),
    ("media-no-c", _edit(3, None), "media description 0 has no c= line", b"m=audio"),
    ("nul", _edit(2, "s=a\x00b"), "NUL or bare CR", b"s=a"),
    ("bare-cr", _edit(2, "s=a\rb"), "NUL or bare CR", b"s=a"),
    ("no-final-line-end", crlf("\n".join(GOOD))[:-2], "the last line has no line end", b"m=audio"),
    ("empty-body", b"", "empty session description", None),
]


@pytest.mark.parametrize(("body", "fragment", "at"), [c[1:] for c in DEFECT_CASES], ids=[c[0] for c in DEFECT_CASES])
def test_s5_grammar_violations_are_defects(body: bytes, fragment: str, at: bytes | None) -> None:
    """RFC 4566 §5: each deviation from the grammar is a located bad-sdp defect, never an exception."""
    sd = parse_sdp(body)
    matching = [d for d in sd.defects if fragment in d.detail]
    assert matching, details(sd)
    for d in sd.defects:
        assert d.code == "bad-sdp" and d.header is None and 0 <= d.offset <= len(body)
        assert d.section == DEFECT_CODES["bad-sdp"].section
    if at is not None:
        assert any(body[d.offset :].startswith(at) for d in matching), [(d.offset, d.detail) for d in matching]
    else:
        assert all(d.offset in (0, len(body)) for d in matching)


def test_invalid_utf8_defect_points_at_the_byte() -> None:
    body = _edit(2, "s=caf").replace(b"s=caf", b"s=caf\xe9!")
    sd = parse_sdp(body)
    (defect,) = [d for d in sd.defects if "UTF-8" in d.detail]
    assert body[defect.offset] == 0xE9
    assert sd.to_bytes() == body  # the undecodable byte survives a round trip


def test_good_lines_after_bad_ones_are_still_read() -> None:
    body = crlf("""
        v=0
        o=- 1 1 IN IP4 192.0.2.1
        garbage
        s=-
        c=IN IP4 192.0.2.1
        x=unknown
        t=0 0
        m=audio 99999 RTP/AVP 0
        a=rtpmap:0 PCMU/8000
        m=video 5004 RTP/AVP 31
    """)
    sd = parse_sdp(body)
    assert len(sd.defects) == 3
    assert sd.session_name == "-" and sd.times == ((0, 0),)
    assert sd.media[0].port is None and sd.media[0].rtpmap == {"0": "PCMU/8000"}
    assert sd.media[1].port == 5004
    assert b"m=audio 0 RTP/AVP 0" in sd.to_bytes()  # a port that did not parse is written as 0


def test_duplicate_session_line_keeps_the_first() -> None:
    sd = parse_sdp(_edit(2, "o=- 2 2 IN IP4 192.0.2.2", insert=True))
    assert sd.origin is not None and sd.origin.sess_id == "1"


def test_not_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_sdp(42)  # type: ignore[arg-type]


# -- the strict builder ---------------------------------------------------------------------------------------------


def test_build_sdp_default_offer() -> None:
    body = build_sdp("192.0.2.1", 49170)
    assert body == crlf("""
        v=0
        o=- 0 0 IN IP4 192.0.2.1
        s=-
        c=IN IP4 192.0.2.1
        t=0 0
        m=audio 49170 RTP/AVP 0
        a=rtpmap:0 PCMU/8000
        a=sendrecv
    """)
    sd = parse_sdp(body)
    assert sd.defects == ()
    assert sd.to_bytes() == body


def test_build_sdp_ipv6_with_dynamic_payload_and_direction() -> None:
    body = build_sdp(
        "2001:db8::1",
        5004,
        session_id=2890844526,
        session_version=7,
        formats=("96", "8", "101"),
        rtpmap={"96": "opus/48000/2", "101": "telephone-event/8000"},
        direction="sendonly",
        ipv6=True,
    )
    sd = parse_sdp(body)
    assert sd.defects == ()
    assert b"c=IN IP6 2001:db8::1\r\n" in body
    assert sd.origin == Origin("-", "2890844526", "7", "IN", "IP6", "2001:db8::1")
    assert sd.media[0].formats == ("96", "8", "101")
    assert sd.media[0].rtpmap == {"96": "opus/48000/2", "8": "PCMA/8000", "101": "telephone-event/8000"}
    assert sd.media[0].direction == "sendonly"
    assert sd.media_connection(0) == Connection("IN", "IP6", "2001:db8::1")


def test_build_sdp_non_rtp_and_hostname() -> None:
    body = build_sdp("host.example.com", 9, media="application", proto="TCP/BFCP", formats=("*",))
    sd = parse_sdp(body)
    assert sd.defects == ()
    assert sd.media[0].rtpmap == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"address": "192.0.2.300"},
        {"address": "2001:db8::1"},  # IPv6 literal with ipv6=False
        {"address": "192.0.2.1", "ipv6": True},
        {"address": "fe80::1%eth0", "ipv6": True},
        {"address": "not a host"},
        {"address": "224.2.1.1"},  # IPv4 multicast needs a TTL: not a unicast offer
        {"port": 65536},
        {"port": -1},
        {"port": True},
        {"formats": ()},
        {"formats": ("0", "0")},
        {"formats": "0"},
        {"formats": ("128",)},
        {"formats": ("PCMU",)},
        {"formats": ("96",)},  # dynamic without rtpmap
        {"formats": ("0",), "rtpmap": {"96": "opus/48000"}},  # rtpmap for a format not offered
        {"formats": ("96",), "rtpmap": {"96": "opus"}},  # no clock rate
        {"direction": "both"},
        {"session_id": -1},
        {"session_version": 2**63},
        {"username": "two words"},
        {"username": ""},
        {"session_name": ""},
        {"session_name": "a\r\nb"},
        {"session_name": "\udcff"},
        {"media": "au dio"},
        {"proto": "RTP AVP"},
    ],
)
def test_build_sdp_rejects_what_it_cannot_build_validly(kwargs: dict[str, object]) -> None:
    """Build strictly: a builder either makes a valid offer or raises ValueError."""
    args = {"address": "192.0.2.1", "port": 5004, **kwargs}
    with pytest.raises(ValueError):
        build_sdp(**args)  # type: ignore[arg-type]


def test_static_payload_table_is_rfc3551() -> None:
    assert STATIC_PAYLOAD_TYPES["0"] == "PCMU/8000" and STATIC_PAYLOAD_TYPES["8"] == "PCMA/8000"
    assert all(int(pt) < 96 for pt in STATIC_PAYLOAD_TYPES)


def test_model_built_by_hand_serialises() -> None:
    sd = SessionDescription(
        version=0,
        origin=Origin("-", "1", "1", "IN", "IP4", "192.0.2.1"),
        session_name=" ",
        connection=Connection("IN", "IP4", "192.0.2.1"),
        times=((0, 0),),
        media=(Media("audio", 0, None, "RTP/AVP", ("0",)),),
    )
    assert parse_sdp(sd.to_bytes()) == sd


# -- properties -------------------------------------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_property_any_bytes_never_raise(body: bytes) -> None:
    sd = parse_sdp(body)
    assert isinstance(sd, SessionDescription)
    assert all(d.code == "bad-sdp" and 0 <= d.offset <= len(body) for d in sd.defects)
    sd.to_bytes()


@given(st.text(max_size=500))
def test_property_any_text_never_raises(body: str) -> None:
    parse_sdp(body).to_bytes()


_LINE_TYPES = "vosiuepcbtrzkamx"
_VALUE_PARTS = st.sampled_from(
    ["0", "1", "IN", "IP4", "IP6", "192.0.2.1", "2001:db8::1", "224.2.1.1/127/3", "RTP/AVP", "audio", "96",
     "rtpmap:96 opus/48000/2", "sendonly", "AS:64", "-", " ", "/", ":", "=", "\t", "\x00", "\xe9", "65536"]
)  # fmt: skip
_SDPISH_LINE = st.builds(
    lambda kind, parts: f"{kind}={' '.join(parts)}", st.sampled_from(_LINE_TYPES), st.lists(_VALUE_PARTS, max_size=7)
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_SDPISH_LINE, st.sampled_from(GOOD)), max_size=20), st.sampled_from(["\r\n", "\n"]))
def test_property_sdp_like_lines_never_raise(lines: list[str], end: str) -> None:
    """Near-miss lines (right letters, shuffled fields) exercise every line handler; none raises, offsets stay inside."""
    body = "".join(line + end for line in lines).encode()
    sd = parse_sdp(body)
    assert all(d.code == "bad-sdp" and 0 <= d.offset <= len(body) for d in sd.defects)
    parse_sdp(sd.to_bytes())


_TEXT = st.text(st.characters(exclude_characters="\r\n\x00", exclude_categories=("Cs",)), max_size=12)
_CONNECTIONS = st.sampled_from(
    ["IN IP4 192.0.2.1", "IN IP4 0.0.0.0", "IN IP4 host.example.com", "IN IP4 224.2.1.1/127", "IN IP4 224.2.1.1/0127/3",
     "IN IP6 2001:db8::1", "IN IP6 FF15::101/3", "IN IP6 ::ffff:192.0.2.1", "TN RFC2543 +1-555-0100"]
)  # fmt: skip
_BANDWIDTHS = st.builds("{}:{}".format, st.sampled_from(["AS", "CT", "TIAS", "X-YZ"]), st.integers(0, 10**9))
_SESSION_ATTRS = st.sampled_from(["tool:x", "recvonly", "group:BUNDLE a v", "ice-lite", "cat:", "charset:UTF-8"])
_MEDIA_ATTRS = st.sampled_from(["ptime:20", "maxptime:0150", "mid:a", "rtcp-mux", "fmtp:0 x=1", "setup:actpass"])


@st.composite
def descriptions(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Valid RFC 4566 bodies: every line type in §5 order, optional ones at random, LF or CRLF, and unless
    ``canonical`` numbers with leading zeros (which a round trip normalises)."""
    canonical = draw(st.booleans())
    numbers = st.integers(0, 10**12).map(str) | st.sampled_from(["7"] if canonical else ["0007", "00"])
    lines = ["v=0" if canonical else "v=00"]
    user = draw(st.sampled_from(["-", "jdoe", "u\xe9"]))
    lines.append(f"o={user} {draw(numbers)} {draw(numbers)} IN IP4 192.0.2.9")
    lines.append("s=" + draw(_TEXT.filter(bool)))
    lines += [f"{kind}={draw(_TEXT)}" for kind in "iu" if draw(st.booleans())]
    lines += [f"{kind}={draw(_TEXT)}" for kind in "eepp" if draw(st.booleans())]
    session_c = draw(st.booleans())
    connections = _CONNECTIONS.filter(lambda c: not canonical or "/0" not in c)
    if session_c:
        lines.append("c=" + draw(connections))
    lines += ["b=" + b for b in draw(st.lists(_BANDWIDTHS, max_size=2))]
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.sampled_from([0, 2873397496, 3034423619]))
        lines.append(f"t={start} {draw(st.sampled_from([0, start + 3600]))}")
        lines += ["r=" + r for r in draw(st.lists(st.sampled_from(["604800 3600 0 90000", "7d 1h 0 25h"]), max_size=2))]
    lines += [f"{kind}={draw(_TEXT)}" for kind in "zk" if draw(st.booleans())]
    lines += ["a=" + a for a in draw(st.lists(_SESSION_ATTRS, max_size=3, unique=True))]
    for _ in range(draw(st.integers(0 if session_c else 1, 3))):
        pts = draw(st.lists(st.sampled_from(["0", "8", "18", "96", "101", "127"]), min_size=1, max_size=4, unique=True))
        port = draw(st.integers(0, 65535).map(str) | st.just("80" if canonical else "00080"))
        if draw(st.booleans()):
            port += f"/{draw(st.integers(1, 4))}"
        proto, fmts = draw(st.sampled_from([("RTP/AVP", pts), ("RTP/SAVPF", pts), ("TCP/BFCP", ["*"]), ("udp", ["x"])]))
        lines.append(f"m={draw(st.sampled_from(['audio', 'video', 'application']))} {port} {proto} {' '.join(fmts)}")
        if draw(st.booleans()):
            lines.append("i=" + draw(_TEXT))
        if not session_c or draw(st.booleans()):
            lines += ["c=" + c for c in draw(st.lists(connections, min_size=1, max_size=2))]
        lines += ["b=" + b for b in draw(st.lists(_BANDWIDTHS, max_size=2))]
        if draw(st.booleans()):
            lines.append("k=" + draw(_TEXT))
        lines += [f"a=rtpmap:{pt} X{pt}/8000" for pt in fmts if pt.isdigit() and int(pt) >= 96 and "RTP" in proto]
        lines += ["a=" + a for a in draw(st.lists(_MEDIA_ATTRS, max_size=3, unique=True))]
        if draw(st.booleans()):
            lines.append("a=" + draw(st.sampled_from(DIRECTIONS)))
    end = draw(st.sampled_from(["\r\n", "\n"]))
    return "".join(line + end for line in lines).encode(), canonical and end == "\r\n"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(descriptions())
def test_property_valid_descriptions_have_no_defects_and_survive_serialisation(case: tuple[bytes, bool]) -> None:
    """Every body the RFC 4566 §5 grammar allows parses with zero defects; serialised and parsed again it is the same
    description; written canonically (CRLF, no leading zeros) it serialises back byte for byte."""
    body, canonical = case
    sd = parse_sdp(body)
    assert sd.defects == (), details(sd)
    again = parse_sdp(sd.to_bytes())
    assert again == sd
    assert again.to_bytes() == sd.to_bytes()
    if canonical:
        assert sd.to_bytes() == body


@st.composite
def offers(draw: st.DrawFn) -> dict[str, object]:
    ipv6 = draw(st.booleans())
    address = str(draw(st.ip_addresses(v=6 if ipv6 else 4).filter(lambda a: a.version == 6 or not a.is_multicast)))
    static = draw(st.lists(st.sampled_from(sorted(STATIC_PAYLOAD_TYPES)), max_size=4, unique=True))
    dynamic = draw(st.lists(st.integers(96, 127).map(str), max_size=3, unique=True))
    formats = draw(st.permutations(static + dynamic)) or ["0"]
    encodings = st.sampled_from(["opus/48000/2", "telephone-event/8000", "H264/90000", "AMR-WB/16000/1"])
    rtpmap = {pt: draw(encodings) for pt in dynamic}
    return {
        "address": address,
        "port": draw(st.integers(0, 65535)),
        "session_id": draw(st.integers(0, 2**63 - 1)),
        "session_version": draw(st.integers(0, 2**63 - 1)),
        "formats": tuple(formats),
        "rtpmap": rtpmap,
        "direction": draw(st.sampled_from(DIRECTIONS)),
        "ipv6": ipv6,
        "username": draw(st.from_regex(r"[!-~\u00e9\u4e2d]{1,12}", fullmatch=True)),
        "session_name": draw(
            st.text(st.characters(exclude_characters="\r\n\x00", exclude_categories=("Cs",)), min_size=1, max_size=20)
        ),
    }


@settings(max_examples=300)
@given(offers())
def test_property_built_sdp_round_trips_with_zero_defects(kwargs: dict[str, object]) -> None:
    """Build strictly: every built offer parses with zero defects and serialises back to the same bytes."""
    body = build_sdp(**kwargs)  # type: ignore[arg-type]
    assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    sd = parse_sdp(body)
    assert sd.defects == ()
    assert sd.to_bytes() == body
    assert sd.origin is not None and sd.origin.sess_id == str(kwargs["session_id"])
    assert sd.connection is not None and sd.connection.address == kwargs["address"]
    assert sd.media[0].port == kwargs["port"]
    assert sd.media[0].formats == kwargs["formats"]
    assert sd.media[0].direction == kwargs["direction"]
    assert set(sd.media[0].rtpmap) == set(kwargs["formats"])  # type: ignore[arg-type]
