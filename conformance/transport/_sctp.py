"""SCTP (RFC 4168) through the kernel's one-to-one style sockets (RFC 6458 §4): ``socket(AF_INET, SOCK_STREAM,
IPPROTO_SCTP)`` behaves like a TCP socket, so the stream driver frames it the same way.

A kernel without SCTP (no ``sctp`` module) refuses the socket with EPROTONOSUPPORT (errno 93 on Linux):
:func:`sctp_available` says so, and :func:`open_endpoint` raises :class:`TransportUnavailable`.
"""

from __future__ import annotations

import errno as errno_codes
import os
import socket

from ._types import TransportUnavailable

__all__ = ["IPPROTO_SCTP", "sctp_available", "sctp_unavailable"]

IPPROTO_SCTP: int = getattr(socket, "IPPROTO_SCTP", 132)


def sctp_unavailable(exc: OSError) -> TransportUnavailable:
    """The error to raise when making an SCTP socket failed with ``exc``."""
    code = exc.errno if exc.errno is not None else errno_codes.EPROTONOSUPPORT
    message = (
        "SCTP is not available on this kernel: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) failed with "
        f"errno {code} ({os.strerror(code)}); load the kernel's sctp module (modprobe sctp) to use it"
    )
    return TransportUnavailable(message, code)


def sctp_available() -> tuple[bool, str]:
    """Whether this kernel gives SCTP sockets, and a sentence saying so (the reason to skip a test when it does not)."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
    except OSError as exc:
        return False, str(sctp_unavailable(exc))
    sock.close()
    return True, "SCTP is available on this kernel (one-to-one style sockets)"
