"""SIP over WebSocket, WS and WSS (RFC 7118), with the ``websockets`` library.

RFC 7118 §4: the ``sip`` subprotocol is negotiated in the handshake; a client that does not offer it is refused with
HTTP 400, and a server that does not select it is disconnected. §5: each WebSocket message (text or binary) carries
exactly one SIP message, so no Content-Length framing is needed (a Content-Length is still accepted as sent).
A message above ``max_message`` octets closes the connection with 1009 and is reported as :class:`FramingFailed`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.protocol import State
from websockets.typing import Subprotocol

from conformance.sip import Defect

from ._endpoint import Endpoint, listening_socket
from ._types import Address, ErrorHandler, FramingFailed, MessageHandler, Received, hostport, sockaddr_address

__all__ = ["SIP_SUBPROTOCOL", "WebSocketEndpoint", "WebSocketRefused"]

SIP_SUBPROTOCOL = Subprotocol("sip")
CLOSE_TIMEOUT = 2.0
CONNECT_TIMEOUT = 10.0
#: Close codes we send when the peer broke the WebSocket protocol: reported to ``on_error``.
_PEER_FAULT_CODES = {1002: "protocol error", 1007: "invalid frame payload data", 1009: "message too big"}


class WebSocketRefused(ConnectionError):
    """The WebSocket server did not negotiate the ``sip`` subprotocol (RFC 7118 §4)."""


class _WsFlow:
    """One WebSocket connection, either side; its receive loop delivers each message."""

    def __init__(self, endpoint: WebSocketEndpoint, ws: ServerConnection | ClientConnection, outbound: bool) -> None:
        self._endpoint = endpoint
        self.ws = ws
        self.outbound = outbound
        self.remote: Address = sockaddr_address(ws.remote_address)
        self.local: Address = sockaddr_address(ws.local_address)
        self.since = endpoint._loop.time()
        self.task: asyncio.Task[None] | None = None
        self.id = endpoint._register(self)

    def is_open(self) -> bool:
        return self.ws.state is State.OPEN

    async def write(self, data: bytes) -> None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            await self.ws.send(data)  # binary message
        else:
            await self.ws.send(data, text=True)  # RFC 7118 §5: UTF-8 SIP messages may go in text messages

    async def aclose(self) -> None:
        await self.ws.close()
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), CLOSE_TIMEOUT)
            except TimeoutError:
                self.ws.transport.abort()
                await self.task
        else:
            await self.ws.wait_closed()

    async def receive(self) -> None:
        ep = self._endpoint
        try:
            async for message in self.ws:
                data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
                ep._deliver(Received(data, ep.transport, self.local, self.remote, self.id, ()))
        except ConnectionClosedError as exc:
            self._closed_with_error(exc)
        except Exception as exc:
            exc.add_note(f"on {ep.via_transport} flow {self.id} with {hostport(*self.remote)}")
            ep._report(exc)
        finally:
            ep._unregister(self)

    def _closed_with_error(self, exc: ConnectionClosed) -> None:
        ep = self._endpoint
        sent = exc.sent
        if sent is None or sent.code not in _PEER_FAULT_CODES or ep.closed:
            return  # the peer went away or closed abnormally: not a failure of ours
        if sent.code == 1009:
            detail = f"WebSocket message larger than {ep.max_message} octets (closed with 1009)"
            defect = Defect("oversize", None, 0, detail)
            ep._report(FramingFailed(defect, self.id, self.remote, transport=ep.transport))
            return
        exc.add_note(
            f"{ep.via_transport} flow {self.id} with {hostport(*self.remote)} closed with {sent.code} "
            f"({_PEER_FAULT_CODES[sent.code]})"
        )
        ep._report(exc)


class WebSocketEndpoint(Endpoint):
    """A WS or WSS endpoint: a WebSocket server for the ``sip`` subprotocol plus client connections on demand."""

    def __init__(
        self,
        transport: str,
        *,
        on_message: MessageHandler,
        on_error: ErrorHandler | None,
        max_message: int,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        ws_path: str = "/",
    ) -> None:
        super().__init__(transport, on_message=on_message, on_error=on_error, max_message=max_message)
        self.ws_path = ws_path if ws_path.startswith("/") else "/" + ws_path
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._server: Server | None = None
        self._connect_locks: dict[Address, asyncio.Lock] = {}

    @property
    def url(self) -> str:
        """``ws://host:port/path`` (or ``wss://``) of this endpoint's server."""
        return f"{self.transport}://{self.sent_by()}{self.ws_path}"

    def _options(self) -> dict[str, Any]:
        return {
            "subprotocols": [SIP_SUBPROTOCOL],
            "compression": None,  # the wire stays what the trace shows
            "ping_interval": None,  # no traffic the test did not ask for
            "max_size": max(self.max_message, 1),
            "open_timeout": CONNECT_TIMEOUT,
            "close_timeout": CLOSE_TIMEOUT,
        }

    async def _start(self, host: str, port: int) -> None:
        family, sockaddr = await self._bind_address(host, port, socket.SOCK_STREAM)
        self._family = family
        sock = listening_socket(family, sockaddr)
        try:
            self.local = sockaddr_address(sock.getsockname())
            # With subprotocols=["sip"], websockets answers 400 to a client that does not offer "sip" (RFC 7118 §4).
            self._server = await serve(self._serve, sock=sock, ssl=self._server_ssl, **self._options())
        except BaseException:
            sock.close()
            raise

    async def _serve(self, ws: ServerConnection) -> None:
        if self._closed:
            return
        await _WsFlow(self, ws, outbound=False).receive()

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
            self._server.close()  # closes the server-side connections with 1001 (going away)
        await asyncio.gather(*(flow.aclose() for flow in list(self._flows.values()) if flow.outbound))
        if self._server is not None:
            await self._server.wait_closed()  # every handler has returned

    async def _connect(self, target: Address, name: str) -> _WsFlow:
        lock = self._connect_locks.setdefault(target, asyncio.Lock())
        async with lock:
            existing = self._find_flow(target, None)
            if isinstance(existing, _WsFlow):
                return existing
            self._check_open()
            uri = f"{self.transport}://{hostport(*target)}{self.ws_path}"
            kwargs: dict[str, Any] = {}
            if self._client_ssl is not None:
                kwargs = {"ssl": self._client_ssl, "server_hostname": name}
            if self.local[0] not in ("0.0.0.0", "::"):
                kwargs["local_addr"] = (self.local[0], 0)
            try:
                ws = await connect(uri, **kwargs, **self._options())
            except Exception as exc:
                exc.add_note(f"{self!r} connecting to {uri}")
                raise
            if ws.subprotocol != SIP_SUBPROTOCOL:
                await ws.close(1002, "the sip subprotocol was not negotiated")
                raise WebSocketRefused(
                    f"{uri} accepted the WebSocket handshake without selecting the 'sip' subprotocol "
                    f"(selected {ws.subprotocol!r}); RFC 7118 §4 requires it"
                )
            if self._closed:
                await ws.close()
                raise ConnectionError(f"{self!r} was closed while connecting to {uri}")
            flow = _WsFlow(self, ws, outbound=True)
            flow.task = self._loop.create_task(flow.receive(), name=f"sipcert {self.via_transport} flow {flow.id}")
            return flow
