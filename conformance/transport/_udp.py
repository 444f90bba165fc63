"""UDP (RFC 3261 §18): each datagram is one message.

ICMP errors for datagrams this endpoint sent (port unreachable, ...) are reported to ``on_error`` as
:class:`DatagramError`. On Linux the socket asks for the extended error queue (``IP_RECVERR``), which also tells the
destination the failed datagram was sent to.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as errno_codes
import os
import socket
import struct
import sys
from typing import Any

from ._endpoint import Endpoint
from ._types import Address, DatagramError, ErrorHandler, MessageHandler, Received, hostport, sockaddr_address

__all__ = ["UdpEndpoint"]

# Linux <linux/in.h>, <linux/in6.h>, <linux/errqueue.h>; Python 3.11's socket module lacks some of them.
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
_SOCK_EXTENDED_ERR = struct.Struct("=IBBBBII")  # ee_errno, ee_origin, ee_type, ee_code, ee_pad, ee_info, ee_data
_ORIGIN_LOCAL, _ORIGIN_ICMP, _ORIGIN_ICMP6 = 1, 2, 3
_ICMP_NAMES = {
    (_ORIGIN_ICMP, 3): "ICMP destination unreachable",
    (_ORIGIN_ICMP, 11): "ICMP time exceeded",
    (_ORIGIN_ICMP6, 1): "ICMPv6 destination unreachable",
    (_ORIGIN_ICMP6, 2): "ICMPv6 packet too big",
    (_ORIGIN_ICMP6, 3): "ICMPv6 time exceeded",
}
_ICMP_UNREACH_CODES = {
    (_ORIGIN_ICMP, 0): "network unreachable",
    (_ORIGIN_ICMP, 1): "host unreachable",
    (_ORIGIN_ICMP, 3): "port unreachable",
    (_ORIGIN_ICMP, 4): "fragmentation needed",
    (_ORIGIN_ICMP6, 3): "address unreachable",
    (_ORIGIN_ICMP6, 4): "port unreachable",
}


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: UdpEndpoint) -> None:
        self._endpoint = endpoint
        #: while a send is in progress, errors raised synchronously by sendto() are collected here
        self.capture: list[Exception] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        ep = self._endpoint
        ep._deliver(Received(data, "udp", ep.local, sockaddr_address(addr), 0, ()))

    def error_received(self, exc: Exception) -> None:
        ep = self._endpoint
        queued = ep._drain_error_queue()
        if self.capture is not None:
            self.capture.append(exc)
            return
        if queued:
            for error in queued:
                ep._report(error)
            return
        code = exc.errno if isinstance(exc, OSError) and exc.errno is not None else 0
        ep._report(
            DatagramError(
                code,
                f"UDP {hostport(*ep.local)}: error reported for a datagram it sent (destination unknown): {exc}",
                local=ep.local,
            )
        )


class UdpEndpoint(Endpoint):
    """A UDP endpoint. :meth:`send` returns flow 0; :meth:`flows` is always empty."""

    def __init__(self, *, on_message: MessageHandler, on_error: ErrorHandler | None, max_message: int) -> None:
        super().__init__("udp", on_message=on_message, on_error=on_error, max_message=max_message)
        self._sock: socket.socket | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol = _UdpProtocol(self)

    async def _start(self, host: str, port: int) -> None:
        family, sockaddr = await self._bind_address(host, port, socket.SOCK_DGRAM)
        self._family = family
        sock = socket.socket(family, socket.SOCK_DGRAM)
        # Bursts of hundreds of datagrams (load tests, fuzz campaigns) overflow the default ~200 KB buffers and the
        # kernel drops datagrams silently; ask for 4 MB (the kernel caps it at net.core.[rw]mem_max).
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if sys.platform.startswith("linux"):
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
                else:
                    sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            sock.bind(sockaddr)
            sock.setblocking(False)
            self.local = sockaddr_address(sock.getsockname())
            transport, _ = await self._loop.create_datagram_endpoint(lambda: self._protocol, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._transport = transport

    async def send(self, data: bytes, remote: Address, *, flow: int | None = None) -> int:
        self._check_open()
        target = await self._resolve(remote, socket.SOCK_DGRAM)
        return self._sendto(data, target)

    def send_now(self, data: bytes, remote: Address, *, flow: int | None = None) -> int | None:
        target = self._literal_target(remote)
        if target is None:
            return None  # a host name: looked up by send()
        self._check_open()
        return self._sendto(data, target)

    def _sendto(self, data: bytes, target: Address) -> int:
        assert self._transport is not None
        self._protocol.capture = []
        try:
            self._transport.sendto(data, target)
            failures = self._protocol.capture
        finally:
            self._protocol.capture = None
        if failures:
            exc = failures[0]
            code = exc.errno if isinstance(exc, OSError) and exc.errno is not None else 0
            raise DatagramError(
                code,
                f"UDP {hostport(*self.local)} could not send {len(data)} octets to {hostport(*target)}: {exc}",
                local=self.local,
                remote=target,
            ) from exc
        return 0

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._transport is not None:
            self._transport.close()
            await asyncio.sleep(0)  # let the transport's connection_lost callback run

    def _drain_error_queue(self) -> list[DatagramError]:
        """Read the Linux error queue: one :class:`DatagramError` per queued error, with the failed destination."""
        sock = self._sock
        if sock is None or not sys.platform.startswith("linux"):
            return []
        errors: list[DatagramError] = []
        for _ in range(64):  # bounded: the queue is bounded by the socket's receive buffer anyway
            try:
                _, ancdata, _, addr = sock.recvmsg(1, socket.CMSG_SPACE(_SOCK_EXTENDED_ERR.size + 28), _MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            for level, kind, cdata in ancdata:
                if (level, kind) not in ((socket.IPPROTO_IP, _IP_RECVERR), (socket.IPPROTO_IPV6, _IPV6_RECVERR)):
                    continue
                if len(cdata) < _SOCK_EXTENDED_ERR.size:
                    continue
                code, origin, icmp_type, icmp_code, _, _, _ = _SOCK_EXTENDED_ERR.unpack_from(cdata)
                errors.append(self._describe(code, origin, icmp_type, icmp_code, addr))
        return errors

    def _describe(self, code: int, origin: int, icmp_type: int, icmp_code: int, addr: object) -> DatagramError:
        remote: Address | None = None
        if isinstance(addr, tuple) and len(addr) >= 2:
            remote = sockaddr_address(addr)
        where = f"to {hostport(*remote)}" if remote else "(destination unknown)"
        reason = f"[Errno {code}] {os.strerror(code)}" if code else "no errno"
        if origin in (_ORIGIN_ICMP, _ORIGIN_ICMP6):
            kind = _ICMP_NAMES.get(
                (origin, icmp_type), f"ICMP{'v6' if origin == _ORIGIN_ICMP6 else ''} type {icmp_type}"
            )
            detail = _ICMP_UNREACH_CODES.get((origin, icmp_code), f"code {icmp_code}")
            if "unreachable" not in kind:
                detail = f"code {icmp_code}"
            text = f"UDP {hostport(*self.local)}: {kind} ({detail}) for a datagram sent {where}: {reason}"
            return DatagramError(code, text, local=self.local, remote=remote, icmp_type=icmp_type, icmp_code=icmp_code)
        origin_text = "local error" if origin == _ORIGIN_LOCAL else f"error (origin {origin})"
        text = f"UDP {hostport(*self.local)}: {origin_text} for a datagram sent {where}: {reason}"
        return DatagramError(code or errno_codes.EIO, text, local=self.local, remote=remote)
