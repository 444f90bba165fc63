"""The :class:`Endpoint` base: identity (Via sent-by, Contact URI), delivery of messages and background errors, flows."""

from __future__ import annotations

import abc
import asyncio
import itertools
import socket
from types import TracebackType
from typing import Any, Protocol

from ._types import (
    VIA_TRANSPORTS,
    Address,
    ErrorHandler,
    Flow,
    MessageHandler,
    Received,
    canonical_host,
    hostport,
    ip_literal,
)

__all__ = ["Endpoint", "FlowLike"]

#: ``;transport=`` of the Contact URI (RFC 3261 §19.1.1, RFC 4168 §5.2, RFC 7118 §5.2: "ws" for WS and WSS alike).
_URI_TRANSPORT: dict[str, str | None] = {
    "udp": "udp",
    "tcp": "tcp",
    "tls": None,  # sips: means TLS over TCP (RFC 3261 §19.1.2, §26.2.2; RFC 5630 §3.1.3 deprecates transport=tls)
    "ws": "ws",
    "wss": "ws",
    "sctp": "sctp",
}


class FlowLike(Protocol):
    """What the base class needs of a driver's connection object."""

    id: int
    remote: Address
    local: Address
    since: float
    outbound: bool

    def is_open(self) -> bool: ...

    async def write(self, data: bytes) -> None: ...

    async def aclose(self) -> None: ...


class Endpoint(abc.ABC):
    """One local SIP endpoint on one transport, made by :func:`open_endpoint`.

    Received messages and background errors go to the callbacks given to :func:`open_endpoint`; they run on the event
    loop and must not block. An exception raised by ``on_message`` is passed to ``on_error``.
    """

    transport: str
    local: Address
    via_transport: str

    def __init__(
        self,
        transport: str,
        *,
        on_message: MessageHandler,
        on_error: ErrorHandler | None,
        max_message: int,
    ) -> None:
        self.transport = transport
        self.via_transport = VIA_TRANSPORTS[transport]
        self.local = ("", 0)
        self.max_message = max_message
        self._on_message = on_message
        self._on_error = on_error
        self._loop = asyncio.get_running_loop()
        self._family = socket.AF_INET
        self._closed = False
        self._flow_ids = itertools.count(1)
        self._flows: dict[int, FlowLike] = {}

    # -- identity ------------------------------------------------------------------------------------------------

    @property
    def secure(self) -> bool:
        """TLS or WSS: the endpoint's URIs use the ``sips`` scheme."""
        return self.transport in ("tls", "wss")

    @property
    def closed(self) -> bool:
        return self._closed

    def sent_by(self) -> str:
        """The Via sent-by of this endpoint, ``host:port`` with an IPv6 address in brackets (RFC 3261 §18.1.1)."""
        return hostport(*self.local)

    def contact_uri(self, user: str | None = None) -> str:
        """A URI that reaches this endpoint: ``sip:user@host:port;transport=tcp``.

        ``sips:`` for TLS and WSS; ``;transport=ws`` for both WS and WSS (RFC 7118 §5.2); no transport parameter for
        TLS, which ``sips:`` already implies (RFC 3261 §26.2.2).
        """
        scheme = "sips" if self.secure else "sip"
        userinfo = f"{user}@" if user else ""
        param = _URI_TRANSPORT[self.transport]
        return f"{scheme}:{userinfo}{self.sent_by()}" + (f";transport={param}" if param else "")

    def flows(self) -> list[Flow]:
        """The open connections (none for UDP), oldest first."""
        return [Flow(f.id, f.remote, f.since, f.local, f.outbound) for f in self._flows.values() if f.is_open()]

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {self.via_transport} {self.sent_by()}{state}>"

    # -- I/O -----------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def send(self, data: bytes, remote: Address, *, flow: int | None = None) -> int:
        """Send one message's bytes to ``remote``; return the id of the flow used (0 for UDP).

        On a connection-oriented transport the message goes on ``flow`` if it is given and still open, else on an open
        connection with ``remote`` (whichever side opened it), else on a new connection. RFC 3261 §18.2.2: a response
        "MUST be sent using the existing connection to the source of the original request that created the
        transaction, if that connection is still open"; pass the request's :attr:`Received.flow`.
        """

    def send_now(self, data: bytes, remote: Address, *, flow: int | None = None) -> int | None:
        """Send at once when that needs no waiting (a datagram to an IP address); ``None`` means "use :meth:`send`".

        Same result and errors as :meth:`send`. The peer's hot path tries this first so that a message goes out
        without a task being made for it.
        """
        return None

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the listener and every flow and wait until they are closed. Idempotent."""

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- for the drivers -----------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")

    def _register(self, flow: FlowLike) -> int:
        fid = next(self._flow_ids)
        self._flows[fid] = flow
        return fid

    def _unregister(self, flow: FlowLike) -> None:
        if self._flows.get(flow.id) is flow:
            del self._flows[flow.id]

    def _find_flow(self, remote: Address, flow: int | None) -> FlowLike | None:
        """The flow to send on: ``flow`` when open, else the newest open flow with ``remote``."""
        if flow is not None:
            chosen = self._flows.get(flow)
            if chosen is not None and chosen.is_open():
                return chosen
        for candidate in reversed(self._flows.values()):
            if candidate.remote == remote and candidate.is_open():
                return candidate
        return None

    def _deliver(self, received: Received) -> None:
        try:
            self._on_message(received)
        except Exception as exc:  # a bug in the caller's handler must still fail the test that owns it
            exc.add_note(f"raised by on_message for a message from {hostport(*received.remote)} on {self!r}")
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        """Hand a background failure to ``on_error`` (or, without one, to the event loop's exception handler)."""
        if self._on_error is not None:
            try:
                self._on_error(exc)
                return
            except Exception as handler_exc:
                handler_exc.__context__ = exc
                exc = handler_exc
        context: dict[str, Any] = {"message": f"sipcert: background error on {self!r}", "exception": exc}
        self._loop.call_exception_handler(context)

    def _literal_target(self, remote: Address) -> Address | None:
        """``remote`` with its IP address in canonical form, or ``None`` when its host is a name to look up.
        ValueError when the address is of the other family than this endpoint's."""
        host, port = remote
        literal = ip_literal(host)
        if literal is None:
            return None
        compressed, is_v6 = literal
        if is_v6 != (self._family == socket.AF_INET6):
            raise ValueError(f"{self!r} cannot reach {hostport(compressed, port)}: the address families differ")
        return compressed, int(port)

    async def _resolve(self, remote: Address, socktype: int) -> Address:
        """``remote`` with its host as a canonical IP address of this endpoint's family (names are looked up)."""
        target = self._literal_target(remote)
        if target is not None:
            return target
        host, port = remote[0].strip("[]"), remote[1]
        infos = await self._loop.getaddrinfo(host, port, family=self._family, type=socktype)
        if not infos:
            raise OSError(f"{host!r} has no address of the family of {self!r}") from None
        sockaddr = infos[0][4]
        return canonical_host(str(sockaddr[0])), int(port)

    async def _bind_address(self, host: str, port: int, socktype: int) -> tuple[socket.AddressFamily, Any]:
        """Family and socket address to bind for ``host`` (a name is looked up; the first answer wins)."""
        infos = await self._loop.getaddrinfo(host, port, type=socktype, flags=socket.AI_PASSIVE)
        if not infos:
            raise OSError(f"cannot resolve {host!r}")
        family, _, _, _, sockaddr = infos[0]
        return family, sockaddr


def listening_socket(family: socket.AddressFamily, sockaddr: Any, proto: int = 0, backlog: int = 128) -> socket.socket:
    """A bound, listening, non-blocking stream socket (IPv6 sockets are IPv6-only)."""
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock

