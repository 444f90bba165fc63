"""Values and errors shared by every transport driver: addresses, received messages, flows, TLS contexts."""

from __future__ import annotations

import functools
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conformance.sip import Defect

__all__ = [
    "TRANSPORTS",
    "VIA_TRANSPORTS",
    "Address",
    "DatagramError",
    "Flow",
    "FramingFailed",
    "MessageHandler",
    "ErrorHandler",
    "Received",
    "TLSConfig",
    "TransportUnavailable",
    "canonical_host",
    "hostport",
    "sockaddr_address",
]

#: ``(host, port)``; IPv6 hosts are written without brackets.
Address = tuple[str, int]

#: The transports :func:`open_endpoint` knows, as spelled in ``;transport=`` (lower case).
TRANSPORTS: tuple[str, ...] = ("udp", "tcp", "tls", "ws", "wss", "sctp")

#: The Via ``transport`` token of each (RFC 3261 §18.1.1 and §20.42, RFC 4168 §5.1, RFC 7118 §5.2).
VIA_TRANSPORTS: dict[str, str] = {
    "udp": "UDP",
    "tcp": "TCP",
    "tls": "TLS",
    "ws": "WS",
    "wss": "WSS",
    "sctp": "SCTP",
}


@dataclass(frozen=True, slots=True)
class Received:
    """Exactly one SIP message's bytes as they came off the wire, and where they came from.

    ``data`` is a datagram (UDP), a message cut from a stream by Content-Length (TCP, TLS, SCTP) or one WebSocket
    message (WS, WSS). ``local`` is the address of the socket it arrived on (for a connection this endpoint opened,
    its ephemeral port). ``flow`` identifies the connection (0 for UDP). ``defects`` are framing defects such as
    ``missing-content-length``; the parser adds its own when the bytes are parsed.
    """

    data: bytes
    transport: str
    local: Address
    remote: Address
    flow: int
    defects: tuple[Defect, ...] = ()


@dataclass(frozen=True, slots=True)
class Flow:
    """An open connection of a stream endpoint: its id, peer, when it opened (event-loop time) and who opened it."""

    id: int
    remote: Address
    since: float
    local: Address
    outbound: bool


MessageHandler = Callable[[Received], None]
ErrorHandler = Callable[[BaseException], None]


class TransportUnavailable(RuntimeError):
    """The transport cannot be used on this machine (SCTP on a kernel without it). ``errno`` is the kernel's."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class FramingFailed(Exception):
    """A stream could not be framed any further, so its connection was closed (RFC 4475 §3.1.2.3).

    ``defect`` says why (``bad-content-length``, ``oversize``, a message cut short by the peer closing, ...);
    ``discarded`` holds the bytes that were buffered and thrown away.
    """

    def __init__(
        self,
        defect: Defect,
        flow: int,
        remote: Address,
        *,
        transport: str = "tcp",
        discarded: bytes = b"",
    ) -> None:
        self.defect = defect
        self.flow = flow
        self.remote = remote
        self.transport = transport
        self.discarded = discarded
        super().__init__(
            f"{VIA_TRANSPORTS.get(transport, transport)} flow {flow} from {hostport(*remote)}: {defect}; "
            "the connection was closed"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_framing_failed, (self.defect, self.flow, self.remote, self.transport, self.discarded))


def _framing_failed(defect: Defect, flow: int, remote: Address, transport: str, discarded: bytes) -> FramingFailed:
    return FramingFailed(defect, flow, remote, transport=transport, discarded=discarded)


class DatagramError(OSError):
    """An error reported for a datagram this endpoint sent: an ICMP error coming back, or a local send failure.

    ``remote`` is the destination of the datagram that caused it when the kernel says so (Linux, via IP_RECVERR),
    else ``None``; ``icmp_type`` and ``icmp_code`` are the ICMP (or ICMPv6) type and code when it came from ICMP.
    """

    def __init__(
        self,
        errno: int,
        message: str,
        *,
        local: Address,
        remote: Address | None = None,
        icmp_type: int | None = None,
        icmp_code: int | None = None,
    ) -> None:
        super().__init__(errno, message)
        self.local = local
        self.remote = remote
        self.icmp_type = icmp_type
        self.icmp_code = icmp_code

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.errno, self.strerror, self.local, self.remote, self.icmp_type, self.icmp_code)
        return (_datagram_error, fields)


def _datagram_error(
    errno: int, message: str, local: Address, remote: Address | None, icmp_type: int | None, icmp_code: int | None
) -> DatagramError:
    return DatagramError(errno, message, local=local, remote=remote, icmp_type=icmp_type, icmp_code=icmp_code)


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """SSL contexts for TLS and WSS: ``server`` for accepting (certificate and key loaded), ``client`` for connecting.

    A ``None`` client context means the system's default trust store. ``ca_pem`` is the PEM of the CA that signed
    the server certificate, when known (so that a device under test can be told to trust it).
    """

    server: ssl.SSLContext | None
    client: ssl.SSLContext | None
    ca_pem: bytes | None = None

    @classmethod
    def for_tests(cls, hostnames: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> TLSConfig:
        """Contexts from one throw-away trustme CA (made once per process and host list): a server certificate for
        ``hostnames`` and a client context that trusts only that CA."""
        return _test_tls(tuple(hostnames))


@functools.lru_cache(maxsize=8)
def _test_tls(hostnames: tuple[str, ...]) -> TLSConfig:
    import trustme  # imported here: only tests need it

    ca = trustme.CA()
    cert = ca.issue_cert(*hostnames)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return TLSConfig(server=server, client=client, ca_pem=ca.cert_pem.bytes())


@functools.lru_cache(maxsize=4096)
def ip_literal(host: str) -> tuple[str, bool] | None:
    """``(canonical text, is IPv6)`` for an IP address literal (brackets allowed), ``None`` for a host name.

    Cached: every datagram's source and destination address goes through here, and a test talks to a handful of
    hosts."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return ip.compressed, ip.version == 6


def canonical_host(host: str) -> str:
    """An IP address in its canonical text form (``0:0::1`` → ``::1``); a host name lower-cased; no brackets."""
    literal = ip_literal(host)
    return literal[0] if literal is not None else host.strip("[]").lower()


def hostport(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets (RFC 3261 §25.1 ``hostport``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def sockaddr_address(sockaddr: Any) -> Address:
    """``(host, port)`` from an IPv4 or IPv6 socket address (the IPv6 flowinfo and scope id dropped)."""
    return canonical_host(str(sockaddr[0])), int(sockaddr[1])
