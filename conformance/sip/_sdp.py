"""SDP (RFC 4566): a tolerant parser with structured defects, convenience views, and a strict offer builder.

:func:`parse_sdp` never raises on what a device sends. It reads every line it can and records each deviation from the
RFC 4566 §5 grammar as a ``bad-sdp`` :class:`~conformance.sip._defects.Defect` whose offset is the byte offset, inside
the body, of the line at fault (or the end of the body for something missing). Records may end in CRLF or, as §5 says
parsers SHOULD accept, a bare LF.

:func:`build_sdp` makes a valid offer (CRLF line ends) or raises :class:`ValueError`; what it builds parses with zero
defects. :meth:`SessionDescription.to_bytes` writes a description back in the §5 line order; for a defect-free body
with CRLF line ends it gives back the input exactly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from ._defects import Defect

__all__ = [
    "DIRECTIONS",
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Connection",
    "Media",
    "Origin",
    "SessionDescription",
    "build_sdp",
    "parse_sdp",
]

#: The RFC 4566 §6 / RFC 3264 §5.1 direction attributes.
DIRECTIONS: tuple[str, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")

#: RFC 3551 §6 Tables 4 and 5: static RTP/AVP payload types and their rtpmap encoding strings.
STATIC_PAYLOAD_TYPES: dict[str, str] = {
    "0": "PCMU/8000",
    "3": "GSM/8000",
    "4": "G723/8000",
    "5": "DVI4/8000",
    "6": "DVI4/16000",
    "7": "LPC/8000",
    "8": "PCMA/8000",
    "9": "G722/8000",
    "10": "L16/44100/2",
    "11": "L16/44100",
    "12": "QCELP/8000",
    "13": "CN/8000",
    "14": "MPA/90000",
    "15": "G728/8000",
    "16": "DVI4/11025",
    "17": "DVI4/22050",
    "18": "G729/8000",
    "25": "CelB/90000",
    "26": "JPEG/90000",
    "28": "nv/90000",
    "31": "H261/90000",
    "32": "MPV/90000",
    "33": "MP2T/90000",
    "34": "H263/90000",
}


@dataclass(frozen=True, slots=True)
class _LineRule:
    """Where a line type may appear (RFC 4566 §5 order) and how often."""

    rank: int
    repeatable: bool
    name: str


#: Session-level lines in RFC 4566 §5 order. ``t=`` and ``r=`` share a rank: ``t= r=* t= r=*`` is in order.
_SESSION_LINES: dict[str, _LineRule] = {
    "v": _LineRule(0, False, "protocol version"),
    "o": _LineRule(1, False, "origin"),
    "s": _LineRule(2, False, "session name"),
    "i": _LineRule(3, False, "session information"),
    "u": _LineRule(4, False, "URI"),
    "e": _LineRule(5, True, "email address"),
    "p": _LineRule(6, True, "phone number"),
    "c": _LineRule(7, False, "connection data"),
    "b": _LineRule(8, True, "bandwidth"),
    "t": _LineRule(9, True, "timing"),
    "r": _LineRule(9, True, "repeat times"),
    "z": _LineRule(10, False, "time zone adjustments"),
    "k": _LineRule(11, False, "encryption key"),
    "a": _LineRule(12, True, "attribute"),
}

#: Media-level lines in RFC 4566 §5 order (several ``c=`` lines are allowed for multicast, §5.7).
_MEDIA_LINES: dict[str, _LineRule] = {
    "i": _LineRule(1, False, "media title"),
    "c": _LineRule(2, True, "connection data"),
    "b": _LineRule(3, True, "bandwidth"),
    "k": _LineRule(4, False, "encryption key"),
    "a": _LineRule(5, True, "attribute"),
}

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_DIGITS = re.compile(r"[0-9]+")
_SPACES = re.compile(r"[ \t]+")
_NON_WS_STRING = re.compile(r"[^\x00-\x20\x7f]+")  # RFC 4566 §9 non-ws-string (VCHAR / %x80-FF)
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?\.?")
_IP4ISH = re.compile(r"[0-9.]+")
_RTPMAP = re.compile(r"[0-9]+ [^ /]+/[0-9]+(?:/[^ ]+)?")
_FMTP = re.compile(r"[^ ]+ .*")


# -- the model -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`` (RFC 4566 §5.2).

    The session id and version are kept as written (they are numeric strings that may exceed 64 bits).
    """

    username: str
    sess_id: str
    sess_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return " ".join((self.username, self.sess_id, self.sess_version, self.nettype, self.addrtype, self.address))


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (RFC 4566 §5.7); ``ttl`` and ``num_addresses`` only when written."""

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    num_addresses: int | None = None

    def __str__(self) -> str:
        address = self.address
        if self.ttl is not None:
            address += f"/{self.ttl}"
        if self.num_addresses is not None:
            address += f"/{self.num_addresses}"
        return f"{self.nettype} {self.addrtype} {address}"


@dataclass(frozen=True, slots=True)
class Attribute:
    """``a=<name>`` (a property attribute, value ``None``) or ``a=<name>:<value>`` (RFC 4566 §5.13)."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


def _first_value(attributes: tuple[Attribute, ...], name: str, default: str | None) -> str | None:
    for attribute in attributes:
        if attribute.name == name:
            return "" if attribute.value is None else attribute.value
    return default


def _direction_of(attributes: tuple[Attribute, ...]) -> str | None:
    for attribute in attributes:
        if attribute.name in DIRECTIONS:
            return attribute.name
    return None


def _pt_map(attributes: tuple[Attribute, ...], name: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for attribute in attributes:
        if attribute.name == name and attribute.value:
            pt, _, rest = attribute.value.partition(" ")
            result.setdefault(pt, rest.strip())
    return result


@dataclass(frozen=True, slots=True)
class Media:
    """One media description: ``m=<media> <port>[/<num>] <proto> <fmt> ...`` and its lines (RFC 4566 §5.14).

    ``port`` is ``None`` when it did not parse; ``num_ports`` is ``None`` when not written. ``connection`` is the first
    ``c=`` line of the section; further ones (multicast, §5.7) are in ``extra_connections``. ``session_direction`` is
    the session-level direction attribute, filled in by :class:`SessionDescription` so that :attr:`direction` can
    inherit it.
    """

    media: str
    port: int | None
    num_ports: int | None
    proto: str
    formats: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[tuple[str, int], ...] = ()
    attributes: tuple[Attribute, ...] = ()
    information: str | None = None
    key: str | None = None
    extra_connections: tuple[Connection, ...] = ()
    session_direction: str | None = field(default=None, repr=False)

    @property
    def rtpmap(self) -> dict[str, str]:
        """Payload type -> encoding string (``"PCMU/8000"``) from the ``a=rtpmap`` attributes (RFC 4566 §6)."""
        return _pt_map(self.attributes, "rtpmap")

    @property
    def fmtp(self) -> dict[str, str]:
        """Format -> format-specific parameters from the ``a=fmtp`` attributes (RFC 4566 §6)."""
        return _pt_map(self.attributes, "fmtp")

    @property
    def direction(self) -> str:
        """``sendrecv``, ``sendonly``, ``recvonly`` or ``inactive``: this section's, else the session's, else
        ``sendrecv`` (RFC 3264 §5.1)."""
        return _direction_of(self.attributes) or self.session_direction or "sendrecv"

    def attribute(self, name: str, default: str | None = None) -> str | None:
        """The value of the first ``a=<name>`` of this section; ``""`` for a property attribute; else ``default``."""
        return _first_value(self.attributes, name, default)

    def lines(self) -> list[str]:
        """The section's lines (without line ends) in RFC 4566 §5 order."""
        port = "0" if self.port is None else str(self.port)
        if self.num_ports is not None:
            port += f"/{self.num_ports}"
        out = [f"m={' '.join((self.media, port, self.proto, *self.formats))}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        for connection in (self.connection, *self.extra_connections):
            if connection is not None:
                out.append(f"c={connection}")
        out.extend(f"b={bwtype}:{value}" for bwtype, value in self.bandwidths)
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={attribute}" for attribute in self.attributes)
        return out


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A session description (RFC 4566 §5) and the defects found while parsing it.

    ``times`` holds one ``(start, stop)`` per ``t=`` line and ``repeats`` the ``r=`` values that follow each of them
    (same index; may be shorter than ``times``).
    """

    version: int | None = None
    origin: Origin | None = None
    session_name: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[tuple[str, int], ...] = ()
    times: tuple[tuple[int, int], ...] = ()
    attributes: tuple[Attribute, ...] = ()
    media: tuple[Media, ...] = ()
    defects: tuple[Defect, ...] = ()
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    repeats: tuple[tuple[str, ...], ...] = ()
    timezones: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        # Let each Media inherit the session-level direction (RFC 3264 §5.1). A normalisation of the value, done once.
        session_direction = _direction_of(self.attributes)
        if any(m.session_direction != session_direction for m in self.media):
            media = tuple(replace(m, session_direction=session_direction) for m in self.media)
            object.__setattr__(self, "media", media)

    @property
    def direction(self) -> str:
        """The session-level direction attribute, ``sendrecv`` when there is none."""
        return _direction_of(self.attributes) or "sendrecv"

    def attribute(self, name: str, default: str | None = None) -> str | None:
        """The value of the first session-level ``a=<name>``; ``""`` for a property attribute; else ``default``."""
        return _first_value(self.attributes, name, default)

    def media_connection(self, index: int) -> Connection | None:
        """The connection data that applies to media description ``index``: its own ``c=``, else the session's."""
        return self.media[index].connection or self.connection

    def lines(self) -> list[str]:
        """All lines (without line ends) in RFC 4566 §5 order."""
        out: list[str] = []
        if self.version is not None:
            out.append(f"v={self.version}")
        if self.origin is not None:
            out.append(f"o={self.origin}")
        if self.session_name is not None:
            out.append(f"s={self.session_name}")
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out.extend(f"e={email}" for email in self.emails)
        out.extend(f"p={phone}" for phone in self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={bwtype}:{value}" for bwtype, value in self.bandwidths)
        for index, (start, stop) in enumerate(self.times):
            out.append(f"t={start} {stop}")
            if index < len(self.repeats):
                out.extend(f"r={repeat}" for repeat in self.repeats[index])
        if self.timezones is not None:
            out.append(f"z={self.timezones}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={attribute}" for attribute in self.attributes)
        for media in self.media:
            out.extend(media.lines())
        return out

    def to_bytes(self) -> bytes:
        """Serialise with CRLF line ends. A port that did not parse is written as 0."""
        return _encode("".join(line + "\r\n" for line in self.lines()))


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


# -- the tolerant parser -------------------------------------------------------------------------------------------


class _MediaBuilder:
    __slots__ = ("fields", "connections", "bandwidths", "attributes", "information", "key", "offset", "rank", "seen")

    def __init__(self, fields: tuple[str, int | None, int | None, str, tuple[str, ...]], offset: int) -> None:
        self.fields = fields
        self.connections: list[Connection] = []
        self.bandwidths: list[tuple[str, int]] = []
        self.attributes: list[Attribute] = []
        self.information: str | None = None
        self.key: str | None = None
        self.offset = offset
        self.rank = 0
        self.seen: set[str] = set()

    def build(self) -> Media:
        media, port, num_ports, proto, formats = self.fields
        return Media(
            media,
            port,
            num_ports,
            proto,
            formats,
            self.connections[0] if self.connections else None,
            tuple(self.bandwidths),
            tuple(self.attributes),
            self.information,
            self.key,
            tuple(self.connections[1:]),
        )


class _Parser:
    """One pass over the lines of a body; mutable scratch state that ends as one frozen SessionDescription."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.defects: list[Defect] = []
        self.session: dict[str, object] = {}
        self.emails: list[str] = []
        self.phones: list[str] = []
        self.bandwidths: list[tuple[str, int]] = []
        self.times: list[tuple[int, int]] = []
        self.repeats: list[list[str]] = []
        self.attributes: list[Attribute] = []
        self.media: list[_MediaBuilder] = []
        self.rank = -1
        self.seen: set[str] = set()
        self.last_type = ""
        self.time_ok = False  # the last t= line parsed, so r= lines can be attached to it

    def defect(self, offset: int, detail: str) -> None:
        self.defects.append(Defect("bad-sdp", None, offset, detail))

    # -- driver

    def run(self) -> SessionDescription:
        data = self.data
        pos, end, first = 0, len(data), True
        if not data:
            self.defect(0, "empty session description: no v= line")
        while pos < end:
            nl = data.find(b"\n", pos)
            stop = end if nl < 0 else nl
            raw = data[pos:stop]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if nl < 0:
                self.defect(pos, "the last line has no line end (CRLF)")
            self.line(pos, raw, first)
            first = False
            pos = stop + 1
        self.finish(end)
        return self.result()

    def line(self, offset: int, raw: bytes, first: bool) -> None:
        if not raw:
            self.defect(offset, "empty line")
            return
        if b"\x00" in raw or b"\r" in raw:
            self.defect(offset, "NUL or bare CR inside a line")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.defect(offset + exc.start, "line is not valid UTF-8")
            text = raw.decode("utf-8", "surrogateescape")
        if len(text) < 2 or text[1] != "=":
            self.defect(offset, f"not a <type>=<value> line: {text[:20]!r}")
            return
        kind, value = text[0], text[2:]
        if first and kind != "v":
            self.defect(offset, "the first line is not v=")
        if self.media:
            self.media_line(offset, kind, value)
        else:
            self.session_line(offset, kind, value)
        self.last_type = kind

    def check_order(self, offset: int, kind: str, rule: _LineRule, rank: int, seen: set[str]) -> bool:
        """Record order and repetition defects; return whether the line is a repeat to be ignored."""
        if rule.rank < rank:
            self.defect(offset, f"{kind}= ({rule.name}) line out of the RFC 4566 §5 order")
        if kind == "r" and self.last_type not in ("t", "r"):
            self.defect(offset, "r= line does not follow a t= or r= line")
        if not rule.repeatable and kind in seen:
            self.defect(offset, f"more than one {kind}= ({rule.name}) line; the later one is ignored")
            return True
        seen.add(kind)
        return False

    # -- session level

    def session_line(self, offset: int, kind: str, value: str) -> None:
        if kind == "m":
            self.media_start(offset, value)
            return
        rule = _SESSION_LINES.get(kind)
        if rule is None:
            self.defect(offset, f"unknown line type {kind!r}")
            return
        if self.check_order(offset, kind, rule, self.rank, self.seen):
            return
        self.rank = max(self.rank, rule.rank)
        if kind == "v":
            self.version(offset, value)
        elif kind == "o":
            self.session["origin"] = self.origin(offset, value)
        elif kind == "s":
            if not value:
                self.defect(offset, "empty s= line (use a single space when there is no name)")
            self.session["session_name"] = value
        elif kind in ("i", "u", "z", "k"):
            self.session[{"i": "information", "u": "uri", "z": "timezones", "k": "key"}[kind]] = value
        elif kind == "e":
            self.emails.append(value)
        elif kind == "p":
            self.phones.append(value)
        elif kind == "c":
            self.session["connection"] = self.connection(offset, value)
        elif kind == "b":
            self.bandwidth(offset, value, self.bandwidths)
        elif kind == "t":
            self.timing(offset, value)
        elif kind == "r":
            if self.time_ok and value:
                self.repeats[-1].append(value)
            elif not value:
                self.defect(offset, "empty r= line")
        else:  # "a"
            self.attribute(offset, value, self.attributes)

    def version(self, offset: int, value: str) -> None:
        if _DIGITS.fullmatch(value) is None:
            self.defect(offset, f"v= value is not a number: {value[:20]!r}")
            return
        if len(value) > 9:
            self.defect(offset, "v= value is too long")
            return
        self.session["version"] = int(value)
        if int(value) != 0:
            self.defect(offset, f"unsupported SDP version {int(value)} (only 0 is defined)")

    def fields(self, offset: int, kind: str, value: str) -> list[str]:
        parts = [part for part in _SPACES.split(value) if part]
        if value.split(" ") != parts:
            self.defect(offset, f"{kind}= fields are not separated by single spaces")
        return parts

    def origin(self, offset: int, value: str) -> Origin | None:
        parts = self.fields(offset, "o", value)
        if len(parts) != 6:
            self.defect(offset, f"o= has {len(parts)} fields, expected 6")
            return None
        username, sess_id, sess_version, nettype, addrtype, address = parts
        for name, number in (("sess-id", sess_id), ("sess-version", sess_version)):
            if _DIGITS.fullmatch(number) is None:
                self.defect(offset, f"o= {name} is not a number: {number[:20]!r}")
        self.address(offset, "o", nettype, addrtype, address)
        return Origin(username, sess_id, sess_version, nettype, addrtype, address)

    def address(self, offset: int, kind: str, nettype: str, addrtype: str, address: str) -> None:
        if nettype != "IN":
            return  # other network types (RFC 4566 §8.2.6 registry) have their own address rules
        if addrtype not in ("IP4", "IP6"):
            self.defect(offset, f"{kind}= address type {addrtype[:20]!r} is neither IP4 nor IP6")
            return
        if ":" in address or _IP4ISH.fullmatch(address):
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                self.defect(offset, f"{kind}= address {address[:50]!r} is not a valid IP address")
                return
            if "%" in address or f"IP{parsed.version}" != addrtype:
                self.defect(offset, f"{kind}= address {address[:50]!r} does not match address type {addrtype}")
        elif _HOSTNAME.fullmatch(address) is None:
            self.defect(offset, f"{kind}= address {address[:50]!r} is neither an IP address nor a host name")

    def connection(self, offset: int, value: str) -> Connection | None:
        parts = self.fields(offset, "c", value)
        if len(parts) != 3:
            self.defect(offset, f"c= has {len(parts)} fields, expected 3")
            return None
        nettype, addrtype, spec = parts
        address, *extra = spec.split("/")
        numbers: list[int | None] = []
        for item in extra:
            if _DIGITS.fullmatch(item) is None or len(item) > 9:
                self.defect(offset, f"c= /{item[:20]} is not a number")
                numbers.append(None)
            else:
                numbers.append(int(item))
        ttl: int | None = None
        num: int | None = None
        if addrtype == "IP6":
            if len(numbers) > 1:
                self.defect(offset, "c= an IP6 address takes at most one /<number of addresses>")
            num = numbers[0] if numbers else None
        else:
            if len(numbers) > 2:
                self.defect(offset, "c= takes at most /<ttl>/<number of addresses>")
            ttl = numbers[0] if numbers else None
            num = numbers[1] if len(numbers) > 1 and ttl is not None else None  # /<num> alone would read as a TTL
            if ttl is not None and ttl > 255:
                self.defect(offset, f"c= TTL {ttl} is over 255")
        self.address(offset, "c", nettype, addrtype, address)
        if nettype == "IN" and addrtype == "IP4" and _IP4ISH.fullmatch(address):
            try:
                multicast = ipaddress.IPv4Address(address).is_multicast
            except ValueError:
                multicast = False
            if multicast and not extra:
                self.defect(offset, "c= an IP4 multicast address needs a /<ttl>")
            elif extra and not multicast:
                self.defect(offset, "c= /<ttl> or /<number> on a unicast address")
        return Connection(nettype, addrtype, address, ttl, num)

    def bandwidth(self, offset: int, value: str, into: list[tuple[str, int]]) -> None:
        bwtype, colon, number = value.partition(":")
        if not colon or _TOKEN.fullmatch(bwtype) is None:
            self.defect(offset, f"b= is not <bwtype>:<bandwidth>: {value[:30]!r}")
        elif _DIGITS.fullmatch(number) is None or len(number) > 18:
            self.defect(offset, f"b= bandwidth is not a number: {number[:20]!r}")
        else:
            into.append((bwtype, int(number)))

    def timing(self, offset: int, value: str) -> None:
        parts = self.fields(offset, "t", value)
        self.time_ok = False
        if len(parts) != 2:
            self.defect(offset, f"t= has {len(parts)} fields, expected 2")
            return
        if not all(_DIGITS.fullmatch(p) and len(p) <= 20 for p in parts):
            self.defect(offset, f"t= times are not decimal NTP times: {value[:40]!r}")
            return
        start, stop = int(parts[0]), int(parts[1])
        if stop and stop < start:
            self.defect(offset, "t= stop time is before the start time")
        self.times.append((start, stop))
        self.repeats.append([])
        self.time_ok = True

    def attribute(self, offset: int, value: str, into: list[Attribute]) -> None:
        name, colon, rest = value.partition(":")
        if _TOKEN.fullmatch(name) is None:
            self.defect(offset, f"a= attribute name is not a token: {name[:30]!r}")
            if not name:
                return
        attribute = Attribute(name, rest if colon else None)
        if name == "rtpmap" and (not colon or _RTPMAP.fullmatch(rest) is None):
            self.defect(offset, f"a=rtpmap is not <payload type> <encoding>/<clock rate>: {rest[:40]!r}")
        elif name == "fmtp" and (not colon or _FMTP.fullmatch(rest) is None):
            self.defect(offset, f"a=fmtp is not <format> <parameters>: {rest[:40]!r}")
        elif name in DIRECTIONS:
            if colon:
                self.defect(offset, f"a={name} takes no value")
            if _direction_of(tuple(into)) is not None:
                self.defect(offset, f"a={name}: more than one direction attribute at this level")
        into.append(attribute)

    # -- media level

    def media_start(self, offset: int, value: str) -> None:
        parts = self.fields(offset, "m", value)
        if len(parts) < 4:
            self.defect(offset, f"m= has {len(parts)} fields, expected <media> <port> <proto> <fmt> ...")
        parts += [""] * (3 - len(parts))
        media, port_spec, proto, *formats = parts
        if _TOKEN.fullmatch(media) is None:
            self.defect(offset, f"m= media type is not a token: {media[:20]!r}")
        port_text, slash, num_text = port_spec.partition("/")
        port: int | None = None
        num_ports: int | None = None
        if _DIGITS.fullmatch(port_text) and len(port_text) <= 5 and int(port_text) <= 65535:
            port = int(port_text)
        else:
            self.defect(offset, f"m= bad port {port_text[:20]!r}")
        if slash:
            if _DIGITS.fullmatch(num_text) and len(num_text) <= 9 and int(num_text) > 0:
                num_ports = int(num_text)
            else:
                self.defect(offset, f"m= bad number of ports {num_text[:20]!r}")
        if proto and not all(_TOKEN.fullmatch(p) for p in proto.split("/")):
            self.defect(offset, f"m= transport protocol is not token[/token]: {proto[:30]!r}")
        if "RTP/" in proto:
            for fmt in formats:
                if _DIGITS.fullmatch(fmt) is None or len(fmt) > 3 or int(fmt) > 127:
                    self.defect(offset, f"m= RTP payload type {fmt[:20]!r} is not a number from 0 to 127")
        self.media.append(_MediaBuilder((media, port, num_ports, proto, tuple(formats)), offset))

    def media_line(self, offset: int, kind: str, value: str) -> None:
        if kind == "m":
            self.media_start(offset, value)
            return
        current = self.media[-1]
        rule = _MEDIA_LINES.get(kind)
        if rule is None:
            if kind in _SESSION_LINES:
                self.defect(offset, f"{kind}= ({_SESSION_LINES[kind].name}) line inside a media description")
            else:
                self.defect(offset, f"unknown line type {kind!r}")
            return
        if self.check_order(offset, kind, rule, current.rank, current.seen):
            return
        current.rank = max(current.rank, rule.rank)
        if kind == "i":
            current.information = value
        elif kind == "k":
            current.key = value
        elif kind == "c":
            connection = self.connection(offset, value)
            if connection is not None:
                current.connections.append(connection)
        elif kind == "b":
            self.bandwidth(offset, value, current.bandwidths)
        else:  # "a"
            self.attribute(offset, value, current.attributes)

    # -- whole-description checks

    def finish(self, end: int) -> None:
        for kind, what in (("v", "protocol version"), ("o", "origin"), ("s", "session name"), ("t", "timing")):
            if kind not in self.seen:
                self.defect(0 if kind == "v" else end, f"missing {kind}= ({what}) line")
        session_connection = self.session.get("connection")
        for index, media in enumerate(self.media):
            if not media.connections and session_connection is None:
                self.defect(
                    media.offset, f"media description {index} has no c= line and there is none at session level"
                )
            _media, _port, _num, proto, formats = media.fields
            if "RTP/" in proto:
                mapped = {a.value.partition(" ")[0] for a in media.attributes if a.name == "rtpmap" and a.value}
                for fmt in formats:
                    if fmt.isdigit() and 96 <= int(fmt) <= 127 and fmt not in mapped:
                        self.defect(media.offset, f"dynamic payload type {fmt} has no a=rtpmap (RFC 4566 §5.14)")

    def result(self) -> SessionDescription:
        s = self.session
        repeats = [tuple(r) for r in self.repeats]
        while repeats and not repeats[-1]:
            repeats.pop()  # no r= lines after the last t= lines: nothing to record
        return SessionDescription(
            version=s.get("version"),  # type: ignore[arg-type]
            origin=s.get("origin"),  # type: ignore[arg-type]
            session_name=s.get("session_name"),  # type: ignore[arg-type]
            connection=s.get("connection"),  # type: ignore[arg-type]
            bandwidths=tuple(self.bandwidths),
            times=tuple(self.times),
            attributes=tuple(self.attributes),
            media=tuple(m.build() for m in self.media),
            defects=tuple(self.defects),
            information=s.get("information"),  # type: ignore[arg-type]
            uri=s.get("uri"),  # type: ignore[arg-type]
            emails=tuple(self.emails),
            phones=tuple(self.phones),
            repeats=tuple(repeats),
            timezones=s.get("timezones"),  # type: ignore[arg-type]
            key=s.get("key"),  # type: ignore[arg-type]
        )


def parse_sdp(body: bytes | bytearray | memoryview | str) -> SessionDescription:
    """Parse an SDP body tolerantly: never raises on any bytes; deviations are ``bad-sdp`` defects."""
    if isinstance(body, str):
        data = _encode(body)
    elif isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
    else:
        raise TypeError(f"parse_sdp() takes bytes or str, not {type(body).__name__}")
    return _Parser(data).run()


# -- the strict builder --------------------------------------------------------------------------------------------


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_token(what: str, value: str) -> None:
    if not isinstance(value, str) or _TOKEN.fullmatch(value) is None:
        raise ValueError(f"{what} must be a token, not {value!r}")


def build_sdp(
    address: str,
    port: int,
    *,
    session_id: int = 0,
    session_version: int = 0,
    formats: Iterable[str] = ("0",),
    rtpmap: Mapping[str, str] | None = None,
    direction: str = "sendrecv",
    ipv6: bool = False,
    media: str = "audio",
    proto: str = "RTP/AVP",
    username: str = "-",
    session_name: str = "-",
) -> bytes:
    """Build a valid single-stream SDP offer (RFC 4566, RFC 3264 §5) with CRLF line ends, or raise ValueError.

    ``address`` is an IP literal of the family ``ipv6`` selects, or a host name; it goes in both o= and c=.
    ``formats`` are the payload types in preference order. Every format gets an ``a=rtpmap``: from ``rtpmap`` if it
    names it, else from :data:`STATIC_PAYLOAD_TYPES`; a format in neither is an error. ``session_id`` and
    ``session_version`` must fit a 64-bit signed integer (RFC 3264 §5).
    """
    addrtype = "IP6" if ipv6 else "IP4"
    if not isinstance(address, str) or "%" in address:
        raise ValueError(f"address must be an IP address or host name without a zone, not {address!r}")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        if _HOSTNAME.fullmatch(address) is None or _IP4ISH.fullmatch(address):
            raise ValueError(f"address {address!r} is neither an IP address nor a host name") from None
    else:
        if parsed.version != (6 if ipv6 else 4):
            raise ValueError(f"address {address!r} is not an {addrtype} address (ipv6={ipv6})")
        if parsed.version == 4 and parsed.is_multicast:
            raise ValueError(f"address {address!r} is IPv4 multicast, which needs a TTL: not a unicast offer")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, not {port!r}")
    for what, number in (("session_id", session_id), ("session_version", session_version)):
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**63:
            raise ValueError(f"{what} must be an int from 0 to 2**63-1, not {number!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    _check_token("media", media)
    if not isinstance(proto, str) or not all(_TOKEN.fullmatch(p) for p in proto.split("/")):
        raise ValueError(f"proto must be token[/token], not {proto!r}")
    if not isinstance(username, str) or _NON_WS_STRING.fullmatch(username) is None or not _utf8(username):
        raise ValueError(f"username must be non-empty UTF-8 without spaces or controls, not {username!r}")
    if not isinstance(session_name, str) or not session_name or not _utf8(session_name):
        raise ValueError(f"session_name must be non-empty UTF-8, not {session_name!r}")
    if any(c in session_name for c in "\r\n\0"):
        raise ValueError(f"session_name must be one line without NUL, not {session_name!r}")
    if isinstance(formats, str):
        raise ValueError("formats must be an iterable of format strings, not one string")
    fmts = tuple(formats)
    if not fmts or len(set(fmts)) != len(fmts):
        raise ValueError(f"formats must be non-empty and distinct, not {fmts!r}")
    rtp = "RTP/" in proto
    mapping = dict(rtpmap or {})
    attributes: list[Attribute] = []
    for fmt in fmts:
        _check_token("format", fmt)
        if rtp and (not fmt.isdigit() or len(fmt) > 3 or int(fmt) > 127):
            raise ValueError(f"RTP payload type must be a number from 0 to 127, not {fmt!r}")
        encoding = mapping.pop(fmt, None) or (STATIC_PAYLOAD_TYPES.get(fmt) if rtp else None)
        if encoding is None:
            if rtp:
                raise ValueError(f"payload type {fmt} needs an rtpmap entry")
            continue
        if not isinstance(encoding, str) or _RTPMAP.fullmatch(f"{fmt} {encoding}") is None:
            raise ValueError(f"rtpmap for {fmt} must be <encoding>/<clock rate>[/<params>], not {encoding!r}")
        attributes.append(Attribute("rtpmap", f"{fmt} {encoding}"))
    if mapping:
        raise ValueError(f"rtpmap names payload types not in formats: {sorted(mapping)}")
    attributes.append(Attribute(direction))
    connection = Connection("IN", addrtype, address)
    description = SessionDescription(
        version=0,
        origin=Origin(username, str(session_id), str(session_version), "IN", addrtype, address),
        session_name=session_name,
        connection=connection,
        times=((0, 0),),
        media=(Media(media, port, None, proto, fmts, attributes=tuple(attributes)),),
    )
    return description.to_bytes()
