"""Message surgery the device needs beyond the builders: Via amendment, Via removal, header replacement, addresses.

Every function returns a new message re-parsed from its bytes (messages are immutable) or plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..sip import Message, Request, Response, SipURI, Via, parse, parse_uri
from ..transport import Address

__all__ = [
    "rebuild",
    "amend_top_via",
    "replace_top_via",
    "strip_top_via",
    "with_lines",
    "uri_address",
    "via_address",
    "quote_text",
    "strip_tag",
    "set_tag",
    "default_port",
]

_RE_TAG = re.compile(r";[ \t]*tag[ \t]*=[ \t]*[^; \t,]*", re.I)


def default_port(transport: str) -> int:
    """RFC 3261 §19.1.2: 5061 for TLS (and WSS here), 5060 otherwise. Only used when a URI names no port."""
    return 5061 if transport in ("tls", "wss") else 5060


def rebuild(msg: Message, lines: Iterable[str], body: bytes | None = None) -> Message:
    """``msg`` with its header lines replaced by ``lines`` (raw ``Name: value`` text, in order)."""
    head = msg.start_line + "\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n"
    data = head.encode("utf-8", "surrogateescape") + (msg.body if body is None else body)
    out = parse(data).message
    assert out is not None, "a rebuilt message lost its start line"
    return out


def with_lines(msg: Message) -> list[str]:
    """The raw header lines of a message, for editing and :func:`rebuild`."""
    return [h.raw for h in msg.headers]


def _first_via_index(msg: Message) -> int | None:
    for i, h in enumerate(msg.headers):
        if h.key == "via":
            return i
    return None


def replace_top_via(msg: Message, new_top: str) -> Message:
    """``msg`` with the first via-parm of its first Via line replaced by ``new_top``."""
    idx = _first_via_index(msg)
    if idx is None or not msg.via:
        return msg
    field = msg.headers[idx]
    top = msg.via[0].raw
    value = field.value
    pos = value.find(top)
    if pos < 0:
        return msg
    new_value = value[:pos] + new_top + value[pos + len(top) :]
    lines = with_lines(msg)
    lines[idx] = f"{field.name}: {new_value}"
    return rebuild(msg, lines)


def amend_top_via(request: Request, source: Address, *, received: bool = True, rport: bool = True) -> Request:
    """The request as the server transport amends it (RFC 3261 §18.2.1, RFC 3581 §4).

    §18.2.1: "If the host portion of the "sent-by" parameter contains a domain name, or if it contains an IP address
    that differs from the packet source address, the server MUST add a "received" parameter". RFC 3581 §4: with an
    empty ``rport`` "the server MUST insert a "received" parameter containing the source IP address that the request
    came from, even if it is identical to the value of the "sent-by" component" and "MUST set the value of the
    parameter to the source port of the request". ``received=False`` / ``rport=False`` are the device's faults.
    """
    if not request.via:
        return request
    top = request.via[0]
    src_host, src_port = source
    wants_rport = top.rport is True
    host = top.host.strip("[]").lower()
    add_received = received and (wants_rport or host != src_host.lower())
    fill_rport = rport and wants_rport
    if not add_received and not fill_rport:
        return request
    params: list[str] = []
    for name, value in top.params:
        low = name.lower()
        if low == "received" and add_received:
            continue
        if low == "rport" and fill_rport:
            params.append(f";rport={src_port}")
            continue
        params.append(f";{name}" if value is None else f";{name}={value}")
    if add_received:
        shown = f"[{src_host}]" if ":" in src_host else src_host
        params.append(f";received={shown}")
    sent_by = top.host if top.port is None else f"{top.host}:{top.port}"
    new_top = f"{top.protocol}/{top.version}/{top.transport} {sent_by}{''.join(params)}"
    out = replace_top_via(request, new_top)
    assert isinstance(out, Request)
    return out


def strip_top_via(response: Response) -> Response | None:
    """The response without its topmost Via value (RFC 3261 §16.7 step 3); ``None`` when none would be left."""
    if len(response.via) < 2:
        return None
    idx = _first_via_index(response)
    assert idx is not None
    field = response.headers[idx]
    top = response.via[0].raw
    value = field.value
    pos = value.find(top)
    lines = with_lines(response)
    rest = value[pos + len(top) :].lstrip(" \t")
    if rest.startswith(","):
        remaining = rest[1:].lstrip(" \t")
        lines[idx] = f"{field.name}: {remaining}"
    else:
        del lines[idx]
    out = rebuild(response, lines)
    assert isinstance(out, Response)
    return out


def uri_address(uri_text: str, transport: str) -> Address | None:
    """Where a SIP URI sends a request: its maddr or host, and its port (RFC 3263 without DNS: loopback only)."""
    uri = parse_uri(uri_text)[0]
    if not isinstance(uri, SipURI):
        return None
    host = uri.param("maddr") or uri.host_unbracketed
    return host.strip("[]"), uri.port if uri.port is not None else default_port(transport)


def via_address(via: Via, transport: str) -> Address:
    """Where a response goes back to (RFC 3261 §18.2.2, RFC 3581 §4): received (else sent-by host), rport (else port)."""
    host = (via.received or via.host).strip("[]")
    rport = via.rport
    if isinstance(rport, int) and not isinstance(rport, bool):
        return host, rport
    return host, via.port if via.port is not None else default_port(transport)


def quote_text(text: str, limit: int = 200) -> str:
    """A quoted-string for a Warning text: quotes, backslashes and control characters replaced."""
    clean = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "?" for c in text[:limit])
    return f'"{clean}"'


def strip_tag(value: str) -> str:
    """A From/To value without its tag parameter."""
    return _RE_TAG.sub("", value)


def set_tag(value: str, tag: str) -> str:
    """A From/To value with its tag parameter set to ``tag``."""
    return strip_tag(value) + f";tag={tag}"
