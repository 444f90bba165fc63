"""``open_endpoint``: one function to get an :class:`Endpoint` on any transport."""

from __future__ import annotations

import errno as errno_codes
import ssl

from conformance.sip import STREAM_TRANSPORTS

from ._endpoint import Endpoint
from ._sctp import IPPROTO_SCTP, sctp_unavailable
from ._stream import StreamEndpoint
from ._types import TRANSPORTS, ErrorHandler, MessageHandler, TLSConfig
from ._udp import UdpEndpoint
from ._ws import WebSocketEndpoint

__all__ = ["open_endpoint"]

_NO_PROTOCOL = {errno_codes.EPROTONOSUPPORT, errno_codes.ESOCKTNOSUPPORT, errno_codes.EAFNOSUPPORT}


def _contexts(transport: str, tls: TLSConfig | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    if tls is None or tls.server is None:
        raise ValueError(
            f"transport {transport!r} needs a TLSConfig with a server context (TLSConfig.for_tests() for loopback)"
        )
    client = tls.client if tls.client is not None else ssl.create_default_context()
    return tls.server, client


async def open_endpoint(
    transport: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_message: MessageHandler,
    on_error: ErrorHandler | None = None,
    tls: TLSConfig | None = None,
    ws_path: str = "/",
    max_message: int = 65535,
) -> Endpoint:
    """Open a SIP endpoint listening on ``host``:``port`` (port 0: any free port; see :attr:`Endpoint.local`).

    ``transport`` is one of ``udp tcp tls ws wss sctp``. Every received message is passed to ``on_message``; every
    failure in the background (a :class:`FramingFailed` stream, an ICMP error as :class:`DatagramError`, an exception
    raised by ``on_message``) to ``on_error``, or to the event loop's exception handler when it is ``None``.
    ``tls`` is required for ``tls`` and ``wss``. ``max_message`` bounds what a stream or WebSocket connection buffers
    (a header section or a body above it is an ``oversize`` framing error); UDP datagrams are delivered whatever their
    size, for the parser to judge.
    """
    name = transport.lower() if isinstance(transport, str) else transport
    if name not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; valid choices: {', '.join(TRANSPORTS)}")
    if max_message < 1:
        raise ValueError(f"max_message must be positive, not {max_message}")
    endpoint: UdpEndpoint | StreamEndpoint | WebSocketEndpoint
    if name == "udp":
        endpoint = UdpEndpoint(on_message=on_message, on_error=on_error, max_message=max_message)
    elif name in STREAM_TRANSPORTS:
        server, client = _contexts(name, tls) if name == "tls" else (None, None)
        endpoint = StreamEndpoint(
            name,
            on_message=on_message,
            on_error=on_error,
            max_message=max_message,
            server_ssl=server,
            client_ssl=client,
            proto=IPPROTO_SCTP if name == "sctp" else 0,
        )
    else:
        server, client = _contexts(name, tls) if name == "wss" else (None, None)
        endpoint = WebSocketEndpoint(
            name,
            on_message=on_message,
            on_error=on_error,
            max_message=max_message,
            server_ssl=server,
            client_ssl=client,
            ws_path=ws_path,
        )
    try:
        await endpoint._start(host, port)
    except OSError as exc:
        if name == "sctp" and exc.errno in _NO_PROTOCOL:
            raise sctp_unavailable(exc) from exc
        raise
    return endpoint
