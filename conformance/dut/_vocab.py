"""The device's vocabulary, importable without the rest of it (the ``sipcert`` parser needs only this)."""

from __future__ import annotations

__all__ = ["ROLES", "DEVICE_TRANSPORTS"]

#: What the device can be.
ROLES: tuple[str, ...] = ("uas", "uac", "registrar", "proxy")
#: The transports it listens on (SCTP is left to the peer: few kernels here have it).
DEVICE_TRANSPORTS: tuple[str, ...] = ("udp", "tcp", "tls", "ws", "wss")
