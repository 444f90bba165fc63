"""sipcert for boofuzz users: SIP message definitions, monitors and targets to put in a boofuzz ``Session``.

* :func:`sip_request` -- a boofuzz ``Request`` for INVITE, OPTIONS or REGISTER, built from sipcert's own builder (so
  the unfuzzed rendering is a valid RFC 3261 message), cut into primitives: method, Request-URI and each header value
  are boofuzz ``String`` primitives, delimiters ``Delim``, the Content-Length a ``Size`` of the body block, and the
  Via branch a :class:`FreshToken` (a new value at every rendering, so the device never takes a case for a
  retransmission). :func:`s_sip_request` registers one under a name, ``s_initialize``-style, for ``s_get``.
* :class:`SipLivenessMonitor` -- a ``BaseMonitor`` whose ``post_send`` is sipcert's OPTIONS liveness probe (one
  retry): a device that stops answering fails the test case.
* :class:`SipProcessMonitor` -- a ``BaseMonitor`` that starts the device from a command line (``--dut-cmd`` style,
  ``READY <port>``), reports its death by a signal or exit code, and restarts it.
* :func:`sip_target` -- a boofuzz ``Target`` with a UDP or TCP connection to the device and those monitors.

Example::

    from boofuzz import Session
    from fuzz.boofuzz_adapter import SipLivenessMonitor, sip_request, sip_target

    target = sip_target("127.0.0.1", 5070, monitors=[SipLivenessMonitor("127.0.0.1", 5070)])
    session = Session(target=target, web_port=26000)
    session.connect(sip_request("OPTIONS", "127.0.0.1", 5070))
    session.fuzz(max_depth=1)

SIP dialog state is not boofuzz's business: for stateful fuzzing use ``sipcert fuzz``.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from boofuzz import Block, Delim, Request, Size, Static, String, Target
from boofuzz.connections import TCPSocketConnection, UDPSocketConnection
from boofuzz.fuzzable import Fuzzable
from boofuzz.monitors import BaseMonitor

from conformance.sip import build_request

from .oracles import ProcessDevice

__all__ = [
    "SIP_METHODS",
    "FreshToken",
    "SipLivenessMonitor",
    "SipProcessMonitor",
    "s_sip_request",
    "sip_request",
    "sip_target",
]

SIP_METHODS = ("INVITE", "OPTIONS", "REGISTER")
_SDP = ("v=0\r\no=sipcert 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
_BRANCH = "z9hG4bKsipcertboofuzz"


class FreshToken(Fuzzable):  # type: ignore[misc]
    """A value that is new at every rendering (``prefix`` + a counter + the process id), never fuzzed: a Via branch,
    a Call-ID or a tag that must differ from case to case."""

    _counter = itertools.count(1)

    def __init__(self, name: str | None = None, prefix: str = "", **kwargs: Any) -> None:
        super().__init__(name=name, default_value=prefix, fuzzable=False, **kwargs)
        self.prefix = prefix

    def encode(self, value: Any, mutation_context: Any) -> bytes:
        return f"{self.prefix}{next(self._counter):x}x{os.getpid():x}".encode()


def _message(method: str, host: str, port: int, transport: str, local: tuple[str, int]) -> bytes:
    uri = f"sip:fuzz@{host}:{port}" + ("" if transport == "udp" else f";transport={transport}")
    lhost, lport = local
    body = _SDP.encode() if method == "INVITE" else b""
    req = build_request(
        method,
        uri,
        from_=f"<sip:sipcert@{lhost}:{lport}>;tag=boofuzz1",
        to=f"<{uri}>" if method != "REGISTER" else f"<sip:sipcert@{lhost}:{lport}>",
        via=f"SIP/2.0/{transport.upper()} {lhost}:{lport};branch={_BRANCH};rport",
        call_id=f"boofuzz@{lhost}",
        cseq=1,
        contact=f"<sip:sipcert@{lhost}:{lport}>",
        headers=[("Expires", "60")] if method == "REGISTER" else [("Accept", "application/sdp")],
        body=body,
        content_type="application/sdp" if body else None,
    )
    return bytes(req)


def sip_request(
    method: str,
    host: str,
    port: int,
    *,
    transport: str = "udp",
    local: tuple[str, int] = ("127.0.0.1", 5999),
    name: str | None = None,
    max_len: int = 2048,
) -> Request:
    """A boofuzz ``Request`` for ``method`` (INVITE, OPTIONS, REGISTER) to the device at ``host``:``port``.

    ``local`` is the address written in Via, From and Contact (boofuzz does not tell which source port it will
    use; a device that answers to the source address, RFC 3581 ``rport``, is not affected). ``max_len`` bounds
    boofuzz's long strings.
    """
    method = method.upper()
    if method not in SIP_METHODS:
        raise ValueError(f"unknown method {method!r}; valid choices: {', '.join(SIP_METHODS)}")
    if transport not in ("udp", "tcp"):
        raise ValueError(f"transport {transport!r}: boofuzz connections here are udp or tcp")
    data = _message(method, host, port, transport, local)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    start_method, uri, version = lines[0].split(" ")
    children: list[Any] = [
        String(name="method", default_value=start_method, max_len=64),
        Delim(name="sp1", default_value=" "),
        String(name="request-uri", default_value=uri, max_len=max_len),
        Delim(name="sp2", default_value=" "),
        Static(name="version", default_value=version + "\r\n"),
    ]
    for i, line in enumerate(lines[1:]):
        hname, _, value = line.partition(": ")
        key = f"h{i}-{hname.lower()}"
        children.append(Static(name=f"{key}-name", default_value=hname))
        children.append(Delim(name=f"{key}-colon", default_value=": "))
        if hname.lower() == "content-length":
            children.append(Size(name=f"{key}-value", block_name="body", length=len(value), output_format="ascii",
                                 fuzzable=False))
        elif hname.lower() == "via":
            before, _, after = value.partition(_BRANCH)
            children.append(String(name=f"{key}-value", default_value=before + "z9hG4bK", max_len=max_len))
            children.append(FreshToken(name=f"{key}-branch", prefix="bf"))
            children.append(Static(name=f"{key}-rest", default_value=after))
        else:
            children.append(String(name=f"{key}-value", default_value=value, max_len=max_len))
        children.append(Static(name=f"{key}-crlf", default_value="\r\n"))
    children.append(Static(name="end-of-headers", default_value="\r\n"))
    children.append(Block(name="body", children=[String(name="body-text", default_value=body.decode("latin-1"),
                                                          max_len=max_len, fuzzable=bool(body))]))
    return Request(name or f"SIP-{method}", children=children)


def s_sip_request(method: str, host: str, port: int, **kwargs: Any) -> Request:
    """``s_initialize``-style: define the request under the name ``SIP-<METHOD>`` (or ``name=``) so that
    ``s_get(name)`` returns it."""
    from boofuzz import blocks

    req = sip_request(method, host, port, **kwargs)
    blocks.REQUESTS[req.name] = req
    blocks.CURRENT = req
    return req


def sip_target(host: str, port: int, *, transport: str = "udp", monitors: list[BaseMonitor] | None = None,
               timeout: float = 0.5) -> Target:
    """A boofuzz ``Target`` for the device, over UDP or TCP, with ``monitors``."""
    if transport == "udp":
        conn = UDPSocketConnection(host, port, send_timeout=timeout, recv_timeout=timeout)
    elif transport == "tcp":
        conn = TCPSocketConnection(host, port, send_timeout=timeout, recv_timeout=timeout)
    else:
        raise ValueError(f"transport {transport!r}: valid choices are udp, tcp")
    return Target(connection=conn, monitors=list(monitors or []))


class SipLivenessMonitor(BaseMonitor):  # type: ignore[misc]
    """After each test case, sipcert's liveness probe: an OPTIONS, and one retry; no answer fails the case."""

    def __init__(self, host: str, port: int, *, transport: str = "udp", timeout: float = 0.5) -> None:
        super().__init__()
        self.host, self.port, self.transport, self.timeout = host, port, transport, timeout
        self.probes = 0
        self._last = ""

    def _probe(self) -> bool:
        from conformance.devices import probe_options

        self.probes += 1
        return probe_options(self.host, self.port, transport=self.transport, timeout=self.timeout) is not None

    def alive(self) -> bool:
        return True

    def post_send(self, target: Any = None, fuzz_data_logger: Any = None, session: Any = None) -> bool:
        if self._probe() or self._probe():
            return True
        self._last = (f"the device at {self.host}:{self.port} ({self.transport}) answered neither an OPTIONS probe "
                      f"nor its retry within {self.timeout:g} s each")
        if fuzz_data_logger is not None:
            fuzz_data_logger.log_fail(self._last)
        return False

    def get_crash_synopsis(self) -> str:
        return self._last


class SipProcessMonitor(BaseMonitor):  # type: ignore[misc]
    """Starts the device from ``command`` ({port} and {transport} filled in), fails a case when it died, restarts
    it. ``port`` is fixed (0: a free one, or the one its READY line gives)."""

    def __init__(self, command: str, *, host: str = "127.0.0.1", port: int = 0, transport: str = "udp") -> None:
        super().__init__()
        self.device = ProcessDevice(command, host=host, port=port, transport=transport)
        self._last = ""

    @property
    def address(self) -> tuple[str, int]:
        return self.device.address

    def alive(self) -> bool:
        return True

    def start_target(self) -> bool:
        self.device.start()
        return True

    def stop_target(self) -> bool:
        self.device.stop()
        return True

    def restart_target(self, target: Any = None, fuzz_data_logger: Any = None, session: Any = None) -> bool:
        self.device.restart()
        return True

    def post_send(self, target: Any = None, fuzz_data_logger: Any = None, session: Any = None) -> bool:
        status = self.device.wait_exit(0.05)
        if status is None:
            return True
        self._last = f"the device process ended: {status}\n{self.device.output()[-4000:]}"
        if fuzz_data_logger is not None:
            fuzz_data_logger.log_fail(f"the device process ended: {status}")
        return False

    def get_crash_synopsis(self) -> str:
        return self._last
