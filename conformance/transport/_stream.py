"""Stream transports: TCP and TLS (RFC 3261 §18.3), and SCTP one-to-one sockets (RFC 4168).

One asyncio protocol per connection feeds the sans-I/O :class:`~conformance.sip._framing.StreamFramer`: framed messages
go to ``on_message``; a keep-alive ping (CRLFCRLF) is answered with a pong (CRLF) (RFC 5626 §3.5.1); a framing error
goes to ``on_error`` as :class:`FramingFailed` and the connection is closed (RFC 4475 §3.1.2.3).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any, cast

from conformance.sip._framing import Frame, FramedMessage, FramingError, KeepAlive, StreamFramer

from ._endpoint import Endpoint, listening_socket
from ._types import Address, ErrorHandler, FramingFailed, MessageHandler, Received, hostport, sockaddr_address

__all__ = ["StreamEndpoint"]

#: How long :meth:`StreamEndpoint.close` waits for a graceful close (TLS close_notify, FIN) before aborting.
CLOSE_TIMEOUT = 2.0
CONNECT_TIMEOUT = 10.0

#: Errors that only mean "the peer went away"; a device may reset a connection, that is not a failure of ours.
_PEER_GONE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class _StreamFlow(asyncio.Protocol):
    """One connection: its framer, its flow id, and back-pressure for writers."""

    def __init__(self, endpoint: StreamEndpoint, outbound: bool) -> None:
        self._endpoint = endpoint
        self.outbound = outbound
        self.id = 0
        self.remote: Address = ("", 0)
        self.local: Address = ("", 0)
        self.since = 0.0
        size = max(endpoint.max_message, 4)
        self._framer = StreamFramer(max_header_bytes=size, max_body_bytes=size)
        self._transport: asyncio.Transport | None = None
        self._closing = False  # closed by us: what the peer does next is not reported
        self._drained: asyncio.Future[None] | None = None
        self.done: asyncio.Future[None] = endpoint._loop.create_future()

    # -- asyncio.Protocol ----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.remote = sockaddr_address(transport.get_extra_info("peername"))
        self.local = sockaddr_address(transport.get_extra_info("sockname"))
        self.since = self._endpoint._loop.time()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM \
                and self._endpoint._proto in (0, socket.IPPROTO_TCP):
            # asyncio sets TCP_NODELAY only on sockets made with proto=IPPROTO_TCP; these were made with proto 0, so
            # without this Nagle holds a second small message until the first is ACKed (40 ms of delayed ACK)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._endpoint.closed:
            self._closing = True
            self._transport.abort()
            return
        self.id = self._endpoint._register(self)

    def data_received(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            self._handle(frame)

    def eof_received(self) -> bool:
        for frame in self._framer.close():  # a message cut short by the peer's close is a framing error
            self._handle(frame)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        ep = self._endpoint
        if exc is not None and not self._closing and not ep.closed and not isinstance(exc, _PEER_GONE):
            exc.add_note(f"on {ep.via_transport} flow {self.id} with {hostport(*self.remote)}")
            ep._report(exc)
        ep._unregister(self)
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionError(f"{self._describe()} was closed"))
            self._drained.exception()  # retrieved: nobody may be waiting
        if not self.done.done():
            self.done.set_result(None)

    def pause_writing(self) -> None:
        if self._drained is None or self._drained.done():
            self._drained = self._endpoint._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- flow ----------------------------------------------------------------------------------------------------

    def is_open(self) -> bool:
        return self.id != 0 and self._transport is not None and not self._transport.is_closing()

    async def write(self, data: bytes) -> None:
        if self._transport is None or not self.is_open():
            raise ConnectionError(f"{self._describe()} is closed")
        self._transport.write(data)
        if self._drained is not None and not self._drained.done():
            await self._drained

    async def aclose(self) -> None:
        transport = self._transport
        if transport is None:
            return
        self._closing = True
        if not transport.is_closing():
            transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.done), CLOSE_TIMEOUT)
        except TimeoutError:
            transport.abort()
            await self.done

    def _handle(self, frame: Frame) -> None:
        ep = self._endpoint
        if isinstance(frame, FramedMessage):
            ep._deliver(Received(frame.data, ep.transport, self.local, self.remote, self.id, frame.defects))
        elif isinstance(frame, KeepAlive):
            if frame.kind == "ping" and self._transport is not None and self.is_open():
                self._transport.write(b"\r\n")  # RFC 5626 §3.5.1: a pong answers each ping
        elif isinstance(frame, FramingError):
            self._closing = True
            ep._report(
                FramingFailed(frame.defect, self.id, self.remote, transport=ep.transport, discarded=frame.discarded)
            )
            if self._transport is not None:
                self._transport.close()

    def _describe(self) -> str:
        return f"{self._endpoint.via_transport} flow {self.id} with {hostport(*self.remote)}"


class StreamEndpoint(Endpoint):
    """A TCP, TLS or SCTP endpoint: a listener plus connections opened on demand, all tracked as flows."""

    def __init__(
        self,
        transport: str,
        *,
        on_message: MessageHandler,
        on_error: ErrorHandler | None,
        max_message: int,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        proto: int = 0,
    ) -> None:
        super().__init__(transport, on_message=on_message, on_error=on_error, max_message=max_message)
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._proto = proto
        self._server: asyncio.Server | None = None
        self._connect_locks: dict[Address, asyncio.Lock] = {}

    async def _start(self, host: str, port: int) -> None:
        family, sockaddr = await self._bind_address(host, port, socket.SOCK_STREAM)
        self._family = family
        sock = listening_socket(family, sockaddr, self._proto)
        try:
            self.local = sockaddr_address(sock.getsockname())
            self._server = await self._loop.create_server(
                lambda: _StreamFlow(self, outbound=False), sock=sock, ssl=self._server_ssl
            )
        except BaseException:
            sock.close()
            raise

    async def send(self, data: bytes, remote: Address, *, flow: int | None = None) -> int:
        self._check_open()
        target = await self._resolve(remote, socket.SOCK_STREAM)
        chosen = self._find_flow(target, flow)
        if chosen is None:
            chosen = await self._connect(target, remote[0].strip("[]"))
        await chosen.write(data)
        return chosen.id

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(flow.aclose() for flow in list(self._flows.values())))
        if self._server is not None:
            await self._server.wait_closed()

    async def _connect(self, target: Address, name: str) -> _StreamFlow:
        lock = self._connect_locks.setdefault(target, asyncio.Lock())
        async with lock:
            existing = self._find_flow(target, None)
            if isinstance(existing, _StreamFlow):
                return existing
            self._check_open()
            sock = socket.socket(self._family, socket.SOCK_STREAM, self._proto)
            try:
                sock.setblocking(False)
                if self.local[0] not in ("0.0.0.0", "::"):
                    sock.bind((self.local[0], 0))
                await asyncio.wait_for(self._loop.sock_connect(sock, target), CONNECT_TIMEOUT)
                kwargs: dict[str, Any] = {}
                if self._client_ssl is not None:
                    kwargs = {
                        "ssl": self._client_ssl,
                        "server_hostname": name,
                        "ssl_handshake_timeout": CONNECT_TIMEOUT,
                    }
                _, protocol = await self._loop.create_connection(
                    lambda: _StreamFlow(self, outbound=True), sock=sock, **kwargs
                )
            except BaseException as exc:
                sock.close()
                if isinstance(exc, Exception):
                    exc.add_note(f"{self!r} connecting to {hostport(*target)}")
                raise
            if not protocol.is_open():
                raise ConnectionError(f"{self!r} was closed while connecting to {hostport(*target)}")
            return protocol
