"""Sans-I/O framing of SIP messages on a stream transport (TCP, TLS, WebSocket byte streams).

RFC 3261 §18.3: on a stream the header section ends at the first empty line and the body is exactly Content-Length
octets; a missing Content-Length means an empty body. RFC 5626 §3.5.1: between messages a double CRLF is a keep-alive
"ping" and a single CRLF is the "pong" that answers it. RFC 3261 §7.5: CRLFs before a start line are ignored.
RFC 4475 §3.1.2.3 / §3.3.9: a negative or conflicting Content-Length leaves no way to find the next message, so the
connection must be closed.

:class:`StreamFramer` takes bytes in any split, returns :data:`Frame` values, never raises on what the peer sent and
never buffers more than ``max_header_bytes + max_body_bytes``. Searching for the end of a header section resumes where
the last search stopped, so feeding a message byte by byte costs linear time.

Offsets: :attr:`FramedMessage.offset` is the stream offset of the message's first byte, and the defects attached to a
:class:`FramedMessage` have offsets *inside that message* (as the message parser reports them). The defect in a
:class:`FramingError` has a *stream* offset: the offending Content-Length line, or the start of the discarded message.

Keep-alive classification is eager, because a client waiting for a pong must see it as soon as its CRLF arrives: a run
of CRLFs is classified with the bytes available when it is read (pairs are pings, an odd one left over is a pong). A
ping whose two CRLFs arrive in separate reads is therefore reported as two pongs; messages are framed identically
however the stream is split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._defects import Defect

__all__ = ["Frame", "FramedMessage", "FramingError", "KeepAlive", "StreamFramer", "STREAM_TRANSPORTS"]

#: Transports whose messages arrive through a :class:`StreamFramer`, so ``parse(..., stream=True)`` applies (RFC 3261
#: §18.3: Content-Length is mandatory). WebSocket is not one: each WebSocket message is one SIP message (RFC 7118).
STREAM_TRANSPORTS = frozenset(("tcp", "tls", "sctp"))


@dataclass(frozen=True, slots=True)
class FramedMessage:
    """The exact bytes of one SIP message: header section, empty line and Content-Length octets of body."""

    data: bytes
    offset: int
    defects: tuple[Defect, ...] = ()


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """An RFC 5626 §3.5.1 keep-alive between messages: ``"ping"`` (CRLFCRLF) or ``"pong"`` (a single CRLF)."""

    kind: str


@dataclass(frozen=True, slots=True)
class FramingError:
    """The stream cannot be framed any further: close the connection. ``discarded`` is every byte that was buffered."""

    defect: Defect
    discarded: bytes


Frame = FramedMessage | KeepAlive | FramingError

_CR = 0x0D
_KEEPALIVE_RUN = re.compile(rb"(?:\r\n|\n)+")
_CONTENT_LENGTH_NAMES = frozenset({b"content-length", b"l"})
_DIGITS = re.compile(rb"[0-9]+")
_SIGNED = re.compile(rb"[+-][0-9]+")
_MAX_DIGITS = 18  # anything longer is certainly over any sane max_body_bytes; avoids int() on a megabyte of digits


def _logical_lines(header: bytes) -> list[tuple[int, bytes]]:
    """Split a header section into unfolded lines, each with the offset of its first byte (start line included)."""
    lines: list[tuple[int, bytes]] = []
    pos = 0
    end = len(header)
    while pos < end:
        nl = header.find(b"\n", pos)
        stop = end if nl < 0 else nl
        line = header[pos:stop]
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t") and lines:
            off, prev = lines[-1]
            lines[-1] = (off, prev + b" " + line.strip(b" \t"))
        elif line:
            lines.append((pos, line))
        pos = stop + 1
    return lines


def _content_length(header: bytes, base: int) -> tuple[int | None, int, Defect | None]:
    """Find the Content-Length of a header section.

    Returns ``(length, line_offset, fatal_defect)``: length ``None`` when absent; ``line_offset`` is the stream offset
    of the (first) Content-Length line; a fatal defect when the value is unusable for framing.
    """
    values: list[tuple[int, int, bytes]] = []
    for off, line in _logical_lines(header)[1:]:
        colon = line.find(b":")
        if colon < 0:
            continue
        if line[:colon].strip(b" \t").lower() not in _CONTENT_LENGTH_NAMES:
            continue
        raw = line[colon + 1 :].strip(b" \t")
        where = base + off
        if _DIGITS.fullmatch(raw) is None:
            why = "negative" if raw.startswith(b"-") and _SIGNED.fullmatch(raw) else "not a non-negative integer"
            return None, where, Defect("bad-content-length", "Content-Length", where, f"{why}: {raw[:40]!r}")
        digits = raw.lstrip(b"0") or b"0"
        number = int(digits) if len(digits) <= _MAX_DIGITS else -1  # -1 marks "too large to convert"
        values.append((number, where, raw))
    if not values:
        return None, -1, None
    first, where, raw = values[0]
    for other, other_where, other_raw in values[1:]:
        if other != first or (first == -1 and other_raw.lstrip(b"0") != raw.lstrip(b"0")):
            detail = f"conflicting values {raw[:40]!r} and {other_raw[:40]!r}"
            return None, other_where, Defect("bad-content-length", "Content-Length", other_where, detail)
    return first, where, None


class StreamFramer:
    """Cut a byte stream into SIP messages and keep-alives (RFC 3261 §18.3, RFC 5626 §3.5.1).

    Feed it the bytes read from the connection in whatever pieces they arrive; it returns the frames completed so far.
    After a :class:`FramingError` (or :meth:`close`) the framer is :attr:`broken` and returns nothing more.
    """

    __slots__ = (
        "max_header_bytes",
        "max_body_bytes",
        "_buf",
        "_pos",
        "_in_message",
        "_scan",
        "_need",
        "_defects",
        "_broken",
    )

    def __init__(self, max_header_bytes: int = 16384, max_body_bytes: int = 1 << 20) -> None:
        if max_header_bytes < 4 or max_body_bytes < 0:
            raise ValueError("max_header_bytes must be >= 4 and max_body_bytes >= 0")
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buf = bytearray()
        self._pos = 0  # stream offset of self._buf[0]
        self._in_message = False  # a non-CRLF byte has been seen since the last frame
        self._scan = 0  # the header-end search resumes here (index into _buf)
        self._need = -1  # total octets of the current message once its header is read, else -1
        self._defects: tuple[Defect, ...] = ()
        self._broken = False

    # -- public surface ------------------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned in a frame."""
        return len(self._buf)

    @property
    def offset(self) -> int:
        """Stream offset of the first buffered byte (= bytes consumed so far)."""
        return self._pos

    @property
    def broken(self) -> bool:
        """True after a :class:`FramingError` or :meth:`close`: the connection must be closed."""
        return self._broken

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes read from the stream; return the frames they complete, in stream order."""
        if self._broken:
            return []
        self._buf += data
        out: list[Frame] = []
        while self._step(out, final=False):
            pass
        return out

    def close(self) -> list[Frame]:
        """The peer closed the stream (EOF). Report a partial message left behind, then stay broken."""
        if self._broken:
            return []
        out: list[Frame] = []
        while self._step(out, final=True):
            pass
        if not self._broken and self._in_message:
            if self._need < 0:
                detail = f"stream closed after {len(self._buf)} octets without an empty line ending the header"
                self._fail(out, Defect("no-header-end", None, self._pos, detail))
            else:
                detail = f"stream closed with {len(self._buf)} of {self._need} octets of the message"
                self._fail(out, Defect("content-length-mismatch", "Content-Length", self._pos, detail))
        self._broken = True
        self._buf.clear()
        return out

    # -- machinery -----------------------------------------------------------------------------------------------

    def _fail(self, out: list[Frame], defect: Defect) -> None:
        out.append(FramingError(defect, bytes(self._buf)))
        self._pos += len(self._buf)
        self._buf.clear()
        self._broken = True

    def _consume(self, n: int) -> None:
        del self._buf[:n]  # O(1) at the front of a bytearray in CPython
        self._pos += n

    def _step(self, out: list[Frame], *, final: bool) -> bool:
        """Make one unit of progress; return whether another step may make more."""
        buf = self._buf
        if not buf:
            return False
        if not self._in_message:
            return self._keepalives(out, final=final)
        if self._need < 0:
            return self._header(out)
        if len(buf) < self._need:
            return False
        need = self._need
        out.append(FramedMessage(bytes(buf[:need]), self._pos, self._defects))
        self._consume(need)
        self._in_message = False
        self._scan = 0
        self._need = -1
        self._defects = ()
        return True

    def _keepalives(self, out: list[Frame], *, final: bool) -> bool:
        buf = self._buf
        m = _KEEPALIVE_RUN.match(buf)
        end = m.end() if m else 0
        dangling = end == len(buf) - 1 and buf[end] == _CR and not final  # a CR that may start one more CRLF
        if end:
            run = buf[:end]
            units = run.count(b"\n")
            if dangling and units % 2:
                end -= 2 if run.endswith(b"\r\n") else 1  # hold back the odd CRLF: it may pair with the next one
                units -= 1
            out.extend(KeepAlive("ping") for _ in range(units // 2))
            if units % 2:
                out.append(KeepAlive("pong"))
            self._consume(end)
        if dangling or not self._buf:
            return False
        if final and self._buf == b"\r":
            self._consume(1)  # a lone CR at EOF is neither a keep-alive nor a message
            return False
        self._in_message = True
        self._scan = 0
        return True

    def _header(self, out: list[Frame]) -> bool:
        buf = self._buf
        limit = min(len(buf), self.max_header_bytes)
        start = max(self._scan - 2, 0)
        lf_lf = buf.find(b"\n\n", start, limit)
        lf_crlf = buf.find(b"\n\r\n", start, limit)
        if lf_lf < 0 and lf_crlf < 0:
            self._scan = limit
            if len(buf) >= self.max_header_bytes:
                detail = f"no empty line within the first {self.max_header_bytes} octets of the header section"
                self._fail(out, Defect("oversize", None, self._pos, detail))
            return False
        if lf_crlf < 0 or 0 <= lf_lf < lf_crlf:
            blank, header_len = lf_lf + 1, lf_lf + 2
        else:
            blank, header_len = lf_crlf + 1, lf_crlf + 3
        length, where, fatal = _content_length(bytes(buf[:header_len]), self._pos)
        if fatal is not None:
            self._fail(out, fatal)
            return False
        if length is None:
            self._defects = (
                Defect("missing-content-length", "Content-Length", blank, "no Content-Length; body taken as empty"),
            )
            length = 0
        elif length < 0 or length > self.max_body_bytes:
            shown = "more than 10**18" if length < 0 else str(length)
            detail = f"Content-Length {shown} exceeds the limit of {self.max_body_bytes} octets"
            self._fail(out, Defect("oversize", "Content-Length", where, detail))
            return False
        self._need = header_len + length
        return True
