"""The tolerant parser: bytes in, a message and its defects out. It never raises.

``parse(data)`` reads one message with datagram semantics (RFC 3261 §18.3: Content-Length, when present, bounds the
body and octets after it are discarded; a Content-Length larger than what follows is an error). Stream transports
frame first (:mod:`._framing`) and call ``parse(frame, stream=True)``.

What the parser checks at once: the start line, header-line syntax, control characters, duplicates of single-valued
headers, the mandatory headers, CSeq (and its method against the request's) and Content-Length against the body.
Every other header's grammar is checked when its typed view is first read, or when ``defects`` is first read,
whichever comes first: the defect list is complete whenever anybody looks at it, and a caller that only wants the
top Via branch does not pay for reading the Accept-Language grammar.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from ._abnf import QUOTED_STRING, RE_CTL, RE_REQUEST_LINE, RE_SIP_URI_STRICT, RE_STATUS_LINE, RE_TOKEN
from ._defects import Defect
from ._headers import _BY_KEY, _CANON, HeaderField, display_name
from ._message import Message, Request, Response
from ._readers import READ_KEYS, SINGLE_KEYS, c_reader_specs, read_cseq, read_uint
from ._uri import SipURI, parse_uri

__all__ = ["parse", "ParseResult", "DEFAULT_MAX_SIZE", "SPEEDUPS"]

#: Largest message ``parse`` reads (bytes); beyond it the rest is cut and an ``oversize`` defect recorded.
DEFAULT_MAX_SIZE = 1 << 20

_MANDATORY_REQUEST = ("to", "from", "cseq", "call-id", "max-forwards", "via")
_MANDATORY_RESPONSE = ("to", "from", "cseq", "call-id", "via")
_RE_QUOTED = re.compile(QUOTED_STRING)
_RE_CTL_NO_CRLF = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_new = tuple.__new__
#: Headers checked while parsing; every other header with a reader is read lazily.
_EAGER_KEYS = frozenset(("cseq", "content-length"))


class ParseResult:
    """What :func:`parse` found: the message (``None`` when no start line could be read) and every defect."""

    __slots__ = ("message", "_defects")

    def __init__(self, message: Request | Response | None, defects: tuple[Defect, ...] = ()) -> None:
        self.message = message
        self._defects = defects

    @property
    def defects(self) -> tuple[Defect, ...]:
        return self.message.defects if self.message is not None else self._defects

    @property
    def ok(self) -> bool:
        """A message was read and no defect makes it unusable."""
        return self.message is not None and not any(d.fatal for d in self.defects)

    @property
    def fatal(self) -> tuple[Defect, ...]:
        return tuple(d for d in self.defects if d.fatal)

    def codes(self) -> set[str]:
        return {d.code for d in self.defects}

    def __repr__(self) -> str:
        return f"ParseResult({self.message!r}, {len(self.defects)} defects)"


def parse(data: bytes, *, stream: bool = False, max_size: int = DEFAULT_MAX_SIZE) -> ParseResult:
    """Read one SIP message from ``data``. Never raises: whatever is wrong is a defect.

    ``stream=True`` means the bytes were framed from a stream transport, where Content-Length is mandatory
    (RFC 3261 §18.3).
    """
    try:
        return _parse(bytes(data), stream, max_size)
    except Exception as exc:  # pragma: no cover - a sipcert bug, reported as a defect instead of crashing the caller
        return ParseResult(None, (Defect("parser-error", None, 0, f"{type(exc).__name__}: {exc}"),))


class _Offsets:
    """Turns a character offset in the decoded header section into a byte offset in the input."""

    __slots__ = ("text", "start", "ascii")

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.start = start
        self.ascii = text.isascii()

    def __call__(self, char_off: int) -> int:
        if self.ascii:
            return self.start + char_off
        return self.start + len(self.text[:char_off].encode("utf-8", "surrogateescape"))


def _parse_py(data: bytes, stream: bool, max_size: int) -> ParseResult:
    """The pure-Python parser: the reference implementation, and the fallback of the C accelerator."""
    defects: list[Defect] = []
    full = data
    if len(data) > max_size:
        defects.append(Defect("oversize", None, max_size, f"{len(data)} bytes, limit {max_size}"))
        data = data[:max_size]
    n = len(data)
    start = 0
    # RFC 3261 §7.5: CRLFs before the start line are ignored.
    while data.startswith(b"\r\n", start) or data.startswith(b"\n", start):
        start += 2 if data[start] == 0x0D else 1
    if start >= n:
        return ParseResult(None, (Defect("bad-start-line", None, start, "no start line"),))

    # The header section ends at the first empty line: CRLF CRLF, or tolerated with a bare LF on either side
    # (LF LF, CRLF LF, LF CRLF), as the stream framer accepts it.
    hend = data.find(b"\r\n\r\n", start)
    bound = hend + 4 if hend >= 0 else n
    lfend = data.find(b"\n\n", start, bound)
    lfcrlf = data.find(b"\n\r\n", start, bound)
    ends = [(e, e + k, bare) for e, k, bare in ((hend, 4, False), (lfend, 2, True), (lfcrlf, 3, True)) if e >= 0]
    bare_lf = False
    bare_end = False
    if ends:
        head_end, body_start, bare_end = min(ends)
        head = data[start:head_end]
        bare_lf = bare_end
    else:
        head = data[start:].rstrip(b"\r\n")
        body_start = n
        defects.append(Defect("no-header-end", None, n, "the header section is not closed by an empty line"))
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head.decode("utf-8", "surrogateescape")
        defects.append(Defect("bad-encoding", None, start + exc.start, "header section is not valid UTF-8"))
    at = _Offsets(text, start)

    if bare_lf or ("\n" in text and text.count("\n") != text.count("\r\n")):
        bare_lf = True
        raw_lines = text.split("\n")
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in raw_lines]
        offsets = list(accumulate((len(r) + 1 for r in raw_lines), initial=0))
        # Point at the first line that ends in a bare LF (the last line's end is in ``head`` when the empty line
        # that closes the section starts with a LF); failing that, at the bare LF of the empty line itself.
        ended = raw_lines if bare_end else raw_lines[:-1]
        first_bare = next((i for i, r in enumerate(ended) if not r.endswith("\r")), None)
        bare_at = at(offsets[first_bare]) if first_bare is not None else body_start - 1
        defects.append(Defect("bare-lf", None, bare_at, "lines end in LF without CR"))
    else:
        lines = text.split("\r\n")
        offsets = list(accumulate((len(r) + 2 for r in lines), initial=0))
    newline = "\n" if bare_lf else "\r\n"

    # -- start line ----------------------------------------------------------------------------------------------
    first = lines[0]
    msg_kind, fields, problems = _start_line(first)
    for code, detail in problems:
        defects.append(Defect(code, None, start, detail))
    if msg_kind is None:
        return ParseResult(None, tuple(defects))

    # -- header lines --------------------------------------------------------------------------------------------
    headers: list[HeaderField] = []
    index: dict[str, list[int]] = {}
    folded = bare_lf or "\n " in text or "\n\t" in text
    canon = _CANON
    named = 0
    for i in range(1, len(lines)):
        line = lines[i]
        if folded and line[:1] in (" ", "\t"):
            if headers:
                prev = headers[-1]
                part = line.strip(" \t")
                value = f"{prev.value} {part}" if prev.value and part else (prev.value or part)
                headers[-1] = _new(HeaderField, (prev.name, prev.key, value, f"{prev.raw}{newline}{line}", prev.offset))
            else:
                defects.append(Defect("leading-whitespace", None, at(offsets[i]), "continuation line before any header"))
            continue
        name, colon, value = line.partition(":")
        if not colon or not name:
            defects.append(Defect("bad-header-line", None, at(offsets[i]), f"no header name and colon: {line[:60]!r}"))
            headers.append(_new(HeaderField, (line, "", "", line, offsets[i])))
            continue
        if name[-1] in " \t":
            name = name.rstrip(" \t")
        low = name.lower()
        key = canon.get(low)
        if key is None:
            key = low
            if RE_TOKEN.fullmatch(name) is None:
                defects.append(Defect("bad-header-line", None, at(offsets[i]), f"header name is not a token: {name[:40]!r}"))
        named += 1
        if key in index:
            index[key].append(len(headers))
        else:
            index[key] = [len(headers)]
        headers.append(_new(HeaderField, (name, key, value.strip(" \t"), line, offsets[i])))

    # -- what is checked at once ---------------------------------------------------------------------------------
    if _RE_CTL_NO_CRLF.search(text) is not None or text.count("\r") != text.count("\r\n"):
        _control_chars(headers, defects, at)
    if named != len(index):
        _duplicates(headers, index, defects, at)
    mandatory = _MANDATORY_REQUEST if msg_kind == "request" else _MANDATORY_RESPONSE
    if any(key not in index for key in mandatory):
        _missing(msg_kind, index, defects, start)
    typed: dict[str, Any] = {}
    cseq_idx = index.get("cseq")
    if cseq_idx is not None:
        _cseq(headers[cseq_idx[0]], msg_kind, fields[0], typed, defects, at)

    # -- body ----------------------------------------------------------------------------------------------------
    body, trailing = _body(data, body_start, start, headers, index, typed, defects, at, stream)

    # CSeq and Content-Length were checked above; a malformed one must not be read (and reported) a second time.
    unread = {k for k in index if k in READ_KEYS and k not in typed and k not in _EAGER_KEYS}
    message: Message
    if msg_kind == "request":
        message = Request(fields[0], fields[1])
    else:
        message = Response(int(fields[0]), fields[1])
    message._init(full, fields[2], tuple(headers), body, trailing, defects, index, typed, unread, at)
    return ParseResult(message)  # type: ignore[arg-type]


# -- the steps below are shared by the pure-Python parser and the C accelerator (which calls them when it meets
# -- something out of its fast path), so both report exactly the same defects.


def _control_chars(headers: Sequence[HeaderField], defects: list[Defect], at: _Offsets) -> None:
    """``control-char`` for each header value holding a control character outside its quoted strings."""
    for h in headers:
        if RE_CTL.search(h.value) is not None and RE_CTL.search(_RE_QUOTED.sub("", h.value)) is not None:
            defects.append(Defect("control-char", display_name(h.key) if h.key else None, at(h.offset)))


def _duplicates(headers: Sequence[HeaderField], index: dict[str, list[int]], defects: list[Defect], at: _Offsets) -> None:
    """``duplicate-singleton`` for every header that may appear once and appears more often (RFC 3261 §7.3)."""
    for key, idx in index.items():
        if len(idx) > 1 and key in SINGLE_KEYS:
            hdef = _BY_KEY[key]
            values = {headers[i].value for i in idx}
            defects.append(
                Defect(
                    "duplicate-singleton",
                    hdef.name,
                    at(headers[idx[1]].offset),
                    f"{len(idx)} {hdef.name} headers" + ("" if len(values) == 1 else " with different values"),
                    fatal_override=hdef.fatal,
                )
            )


def _missing(msg_kind: str, index: dict[str, list[int]], defects: list[Defect], start: int) -> None:
    """``missing-header`` for each mandatory header that is absent (RFC 3261 §8.1.1)."""
    for key in _MANDATORY_REQUEST if msg_kind == "request" else _MANDATORY_RESPONSE:
        if key not in index:
            # RFC 3261 §16.3 step 3: a request without Max-Forwards passes a proxy's check; RFC 2543 peers omit it.
            defects.append(
                Defect("missing-header", _BY_KEY[key].name, start, fatal_override=False if key == "max-forwards" else None)
            )


def _cseq(h: HeaderField, msg_kind: str, method: str, typed: dict[str, Any], defects: list[Defect], at: _Offsets) -> None:
    """Read the (first) CSeq and check its method against the request's (RFC 3261 §8.1.1.5)."""
    cseq, problem = read_cseq(h.value)
    if problem is not None:
        defects.append(Defect(problem[0], "CSeq", at(h.offset), problem[1]))
    elif cseq is not None:
        typed["cseq"] = cseq
        if msg_kind == "request" and cseq.method != method:
            defects.append(
                Defect("cseq-method-mismatch", "CSeq", at(h.offset), f"CSeq method {cseq.method} in a {method} request")
            )


def _body(
    data: bytes,
    body_start: int,
    start: int,
    headers: Sequence[HeaderField],
    index: dict[str, list[int]],
    typed: dict[str, Any],
    defects: list[Defect],
    at: _Offsets,
    stream: bool,
) -> tuple[bytes, bytes]:
    """Content-Length against the octets after the header section (RFC 3261 §18.3): (body, trailing octets)."""
    cl_idx = index.get("content-length")
    clen = None
    cl_offset = start
    if cl_idx is not None:
        h = headers[cl_idx[0]]
        cl_offset = at(h.offset)
        clen, problem = read_uint(h.value, "bad-content-length", 0, None)
        if problem is not None:
            defects.append(Defect(problem[0], "Content-Length", at(h.offset), problem[1]))
        else:
            typed["content-length"] = clen
    available = len(data) - body_start
    trailing = b""
    if clen is None:
        body = data[body_start:]
        if stream and cl_idx is None:
            defects.append(Defect("missing-content-length", None, start, "Content-Length is mandatory on streams"))
    elif clen > available:
        body = data[body_start:]
        defects.append(
            Defect(
                "content-length-mismatch",
                "Content-Length",
                cl_offset,
                f"Content-Length {clen} but {available} octets follow the header section",
            )
        )
    else:
        body = data[body_start : body_start + clen]
        trailing = data[body_start + clen :]
    return body, trailing


def _start_line(line: str) -> tuple[str | None, tuple[str, str, str], list[tuple[str, str]]]:
    """Classify and split the start line. Returns (kind, (method|status, uri|reason, version), problems)."""
    problems: list[tuple[str, str]] = []
    if line.startswith("SIP/"):
        m = RE_STATUS_LINE.fullmatch(line)
        if m is None:
            parts = line.split(None, 2)
            if len(parts) >= 2 and parts[1].isdigit():
                problems.append(("bad-start-line", f"malformed Status-Line {line[:80]!r}"))
                version = parts[0][4:]
                code_text, reason = parts[1], (parts[2] if len(parts) > 2 else "")
            else:
                return None, ("", "", ""), [("bad-start-line", f"malformed Status-Line {line[:80]!r}")]
        else:
            version, code_text, reason = m.group(1), m.group(2), m.group(3)
        if version != "2.0":
            problems.append(("bad-version", f"SIP/{version}"))
        if len(code_text) != 3 or not 100 <= int(code_text) <= 699:
            problems.append(("bad-status-code", f"status code {code_text[:20]}"))
            if len(code_text) > 6:
                code_text = "0"
        if RE_CTL.search(reason) is not None:
            problems.append(("bad-reason-phrase", "control character in the Reason-Phrase"))
        return "response", (code_text, reason, version), problems

    m = RE_REQUEST_LINE.fullmatch(line)
    if m is not None:
        method, uri_text, version = m.group(1), m.group(2), m.group(3)
    else:
        if line[:1] in (" ", "\t"):
            problems.append(("leading-whitespace", "whitespace before the Request-Line"))
        parts = line.split()
        if not parts or RE_TOKEN.fullmatch(parts[0]) is None:
            if len(parts) != 3 or not parts[2].startswith("SIP/"):
                return None, ("", "", ""), [("bad-start-line", f"not a Request-Line or Status-Line: {line[:80]!r}")]
            # A Request-Line in shape whose method is not a token (RFC 3261 §25.1: Method = ... / extension-method,
            # extension-method = token).
            problems.append(("bad-method", f"the method {parts[0][:40]!r} is not a token"))
        method = parts[0]
        if len(parts) >= 3 and parts[-1].startswith("SIP/"):
            version = parts[-1][4:]
            uri_text = " ".join(parts[1:-1])
            if len(parts) == 3:
                if " ".join(parts) != line:
                    problems.append(("bad-start-line", "Request-Line elements must be separated by exactly one SP"))
            else:
                problems.append(("bad-request-uri", f"whitespace inside the Request-URI {uri_text[:60]!r}"))
        else:
            problems.append(("bad-start-line", f"Request-Line without SIP-Version: {line[:80]!r}"))
            version = ""
            uri_text = " ".join(parts[1:]) if len(parts) > 1 else ""
    if version and version != "2.0":
        problems.append(("bad-version", f"SIP/{version}"))
    if uri_text.startswith("<"):
        problems.append(("bad-request-uri", "the Request-URI is enclosed in angle brackets"))
    elif RE_SIP_URI_STRICT.fullmatch(uri_text) is not None:
        pass
    elif uri_text and " " not in uri_text:
        uri, problem = parse_uri(uri_text)
        if problem is not None:
            problems.append((problem.code if problem.code == "unknown-scheme" else "bad-request-uri", problem.detail))
        elif isinstance(uri, SipURI) and uri.headers:
            # RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI.
            problems.append(("bad-request-uri", "URI headers are not allowed in a Request-URI (RFC 3261 §19.1.1)"))
    return "request", (method, uri_text, version), problems


# -- the C accelerator ---------------------------------------------------------------------------------------------

_SLOTS = {
    Message: {"_raw", "headers", "body", "trailing", "_defects", "_defects_t", "_index", "_typed", "_unread",
              "_offset_of", "_sdp", "version"},
    Request: {"method", "uri_text", "_uri"},
    Response: {"status", "reason"},
    ParseResult: {"message", "_defects"},
}


def _load_speedups() -> Any:
    """``_speedups.parse`` configured with this module's classes and helpers, or ``None`` for the pure-Python parser
    (``SIPCERT_PURE_PYTHON`` set to anything but ``0``, the extension not built, or out of step with this module)."""
    if os.environ.get("SIPCERT_PURE_PYTHON", "").strip() not in ("", "0"):
        return None
    return _configure_speedups()


def _configure_speedups() -> Any:
    """``_speedups.parse``, configured, whatever the environment says (the differential tests call both parsers)."""
    try:
        speedups = importlib.import_module("._speedups", __package__)
    except ImportError:
        return None
    # The C side fills every value slot of the message itself: it must know them all (``__weakref__`` is no value).
    if any(set(cls.__slots__) - {"__weakref__"} != slots for cls, slots in _SLOTS.items()):  # type: ignore[attr-defined]
        return None
    from ._headers import ContentType, CSeq, NameAddr, Via

    try:
        speedups.configure(
            {
                "HeaderField": HeaderField,
                "Via": Via,
                "NameAddr": NameAddr,
                "CSeq": CSeq,
                "ContentType": ContentType,
                "Request": Request,
                "Response": Response,
                "ParseResult": ParseResult,
                "Defect": Defect,
                "Offsets": _Offsets,
                "offsets_zero": _Offsets("", 0),
                "canon": _CANON,
                "read_keys": READ_KEYS,
                "readers": c_reader_specs(),
                "parse_py": _parse_py,
                "start_line": _start_line,
                "control_chars": _control_chars,
                "duplicates": _duplicates,
                "missing": _missing,
                "cseq": _cseq,
                "body": _body,
            }
        )
    except Exception:  # pragma: no cover - an extension built from another version of this module
        return None
    return speedups.parse


_parse_c = _load_speedups()
#: The C accelerator is in use (``False``: the pure-Python parser, by choice or because the extension is missing).
SPEEDUPS: bool = _parse_c is not None
#: What :func:`parse` calls: the C accelerator when it is active (it falls back to ``_parse_py`` by itself).
_parse = _parse_c if _parse_c is not None else _parse_py
