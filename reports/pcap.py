"""The trace as a classic libpcap file that Wireshark and tshark decode as SIP.

One Ethernet frame per message entry, with synthesized IPv4 or IPv6 and UDP or TCP headers: correct lengths and
checksums, TCP sequence and acknowledgement numbers that continue per connection, and the entry's time (trace start
plus offset) as the timestamp. What the trace cannot reproduce is written as plainly as possible and said so by
:func:`pcap_notes`:

* TLS, WS and WSS entries are written as TCP carrying the SIP text (the trace holds the SIP message, not the TLS
  records or WebSocket frames); SCTP entries likewise.
* A TCP message larger than one segment is split into several segments; a UDP datagram too large for IP is cut.
* Hosts that are not IP literals get a stable made-up address (198.18.0.0/15, the benchmarking range; or 2001:db8::).
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass, field
from pathlib import Path

from conformance.trace import Address, MessageEntry, Trace

from .ladder import format_address

__all__ = ["LINKTYPE_ETHERNET", "pcap_bytes", "write_pcap", "pcap_notes"]

LINKTYPE_ETHERNET = 1
_SNAPLEN = 262144
_MSS = 65000  # largest TCP payload per synthesized segment (well inside IPv4's 65535-byte limit)
_MAX_UDP_V4 = 65535 - 20 - 8
_MAX_UDP_V6 = 65535 - 8

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _made_up(host: str, v6: bool) -> _IP:
    n = int.from_bytes(hashlib.sha256(host.encode("utf-8", "surrogateescape")).digest()[:4], "big")
    if v6:
        return ipaddress.IPv6Address((0x20010DB8 << 96) | n)
    return ipaddress.IPv4Address((198 << 24) | (18 << 16) | (n & 0x1FFFF))


def _ip(host: str) -> _IP | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _pair(src: str, dst: str) -> tuple[_IP, _IP]:
    a, b = _ip(src), _ip(dst)
    v6 = isinstance(a, ipaddress.IPv6Address) or isinstance(b, ipaddress.IPv6Address)
    a = a if a is not None else _made_up(src, v6)
    b = b if b is not None else _made_up(dst, v6)
    if v6:  # one end IPv4, the other IPv6: write the IPv4 one as IPv4-mapped
        a = ipaddress.IPv6Address(f"::ffff:{a}") if isinstance(a, ipaddress.IPv4Address) else a
        b = ipaddress.IPv6Address(f"::ffff:{b}") if isinstance(b, ipaddress.IPv4Address) else b
    return a, b


def _mac(ip: _IP) -> bytes:
    # Locally administered, unicast, derived from the address so a host keeps its MAC across the file.
    return b"\x02" + hashlib.sha256(ip.packed).digest()[:5]


def _ip_packet(src: _IP, dst: _IP, proto: int, l4: bytes, ident: int) -> bytes:
    if isinstance(src, ipaddress.IPv4Address):
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0x4000, 64, proto, 0, src.packed, dst.packed
        )
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + l4
    return struct.pack("!IHBB", 6 << 28, len(l4), proto, 64) + src.packed + dst.packed + l4


def _pseudo(src: _IP, dst: _IP, proto: int, length: int) -> bytes:
    if isinstance(src, ipaddress.IPv4Address):
        return src.packed + dst.packed + struct.pack("!BBH", 0, proto, length)
    return src.packed + dst.packed + struct.pack("!IxxxB", length, proto)


def _udp(src: _IP, dst: _IP, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    csum = _checksum(_pseudo(src, dst, 17, length) + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def _tcp(src: _IP, dst: _IP, sport: int, dport: int, seq: int, ack: int, payload: bytes) -> bytes:
    flags = 0x18  # PSH, ACK
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    csum = _checksum(_pseudo(src, dst, 6, len(header) + len(payload)) + header + payload)
    return header[:16] + struct.pack("!H", csum) + header[18:] + payload


def _isn(src: Address, dst: Address) -> int:
    key = f"{format_address(src)}>{format_address(dst)}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")


@dataclass
class _Flows:
    """Next sequence number per direction of each TCP connection."""

    next_seq: dict[tuple[Address, Address], int] = field(default_factory=dict)

    def seq(self, src: Address, dst: Address) -> int:
        return self.next_seq.setdefault((src, dst), _isn(src, dst))

    def advance(self, src: Address, dst: Address, n: int) -> None:
        self.next_seq[(src, dst)] = (self.seq(src, dst) + n) & 0xFFFFFFFF


def _ports(addr: Address) -> int:
    return addr[1] & 0xFFFF


def _frames(trace: Trace) -> tuple[list[tuple[float, bytes]], list[str]]:
    frames: list[tuple[float, bytes]] = []
    notes: list[str] = []
    flows = _Flows()
    ident = 0
    for e in trace.entries:
        if not isinstance(e, MessageEntry):
            continue
        src, dst = (e.local, e.remote) if e.direction == "sent" else (e.remote, e.local)
        sip, dip = _pair(src[0], dst[0])
        ether = _mac(dip) + _mac(sip) + (b"\x08\x00" if isinstance(sip, ipaddress.IPv4Address) else b"\x86\xdd")
        stamp = trace.started_wall + e.time
        transport = e.transport.lower()
        for host in (src[0], dst[0]):
            if _ip(host) is None:
                notes.append(f"#{e.seq}: host {host!r} is not an IP address; written as a made-up address")
        if not 0 <= src[1] <= 65535 or not 0 <= dst[1] <= 65535:
            notes.append(f"#{e.seq}: port out of range, written modulo 65536")
        if transport == "udp":
            limit = _MAX_UDP_V4 if isinstance(sip, ipaddress.IPv4Address) else _MAX_UDP_V6
            payload = e.data
            if len(payload) > limit:
                notes.append(f"#{e.seq}: {len(payload)}-byte UDP datagram cut to {limit} bytes to fit in IP")
                payload = payload[:limit]
            ident += 1
            l4 = _udp(sip, dip, _ports(src), _ports(dst), payload)
            frames.append((stamp, ether + _ip_packet(sip, dip, 17, l4, ident)))
            continue
        if transport != "tcp":
            notes.append(
                f"#{e.seq}: {transport} written as plain TCP carrying the SIP text "
                "(no TLS records or WebSocket frames in the trace)"
            )
        chunks = [e.data[i : i + _MSS] for i in range(0, len(e.data), _MSS)] or [b""]
        if len(chunks) > 1:
            notes.append(f"#{e.seq}: {len(e.data)}-byte message written as {len(chunks)} TCP segments")
        for chunk in chunks:
            ident += 1
            seq, ack = flows.seq(src, dst), flows.seq(dst, src)
            l4 = _tcp(sip, dip, _ports(src), _ports(dst), seq, ack, chunk)
            frames.append((stamp, ether + _ip_packet(sip, dip, 6, l4, ident)))
            flows.advance(src, dst, len(chunk))
    return frames, notes


def pcap_bytes(trace: Trace) -> bytes:
    """The libpcap file (microsecond timestamps, Ethernet link type) as bytes."""
    frames, _ = _frames(trace)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, _SNAPLEN, LINKTYPE_ETHERNET)]
    for stamp, frame in frames:
        micros = max(0, round(stamp * 1_000_000))
        sec, usec = divmod(micros, 1_000_000)
        caplen = min(len(frame), _SNAPLEN)
        out.append(struct.pack("<IIII", sec & 0xFFFFFFFF, usec, caplen, len(frame)))
        out.append(frame[:caplen])
    return b"".join(out)


def pcap_notes(trace: Trace) -> list[str]:
    """Where the pcap differs from what was on the wire (TLS/WS written as TCP, segmentation, made-up hosts)."""
    return _frames(trace)[1]


def write_pcap(trace: Trace, path: str | Path) -> Path:
    """Write the trace to ``path`` as a libpcap file (parent directories created) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(pcap_bytes(trace))
    return p
