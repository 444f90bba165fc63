"""sipcert's transports: asyncio I/O only, one small driver per transport feeding the sans-I/O core.

:func:`open_endpoint` gives an :class:`Endpoint` on UDP, TCP, TLS, WS, WSS (RFC 7118) or SCTP (RFC 4168). Each
received message arrives whole as a :class:`Received`; stream framing is :class:`conformance.sip._framing.StreamFramer`.
"""

from ._endpoint import Endpoint
from ._open import open_endpoint
from ._sctp import sctp_available
from ._types import (
    TRANSPORTS,
    VIA_TRANSPORTS,
    Address,
    DatagramError,
    Flow,
    FramingFailed,
    Received,
    TLSConfig,
    TransportUnavailable,
)
from ._ws import SIP_SUBPROTOCOL, WebSocketRefused

__all__ = [
    "TRANSPORTS",
    "VIA_TRANSPORTS",
    "SIP_SUBPROTOCOL",
    "Address",
    "DatagramError",
    "Endpoint",
    "Flow",
    "FramingFailed",
    "Received",
    "TLSConfig",
    "TransportUnavailable",
    "WebSocketRefused",
    "open_endpoint",
    "sctp_available",
]
