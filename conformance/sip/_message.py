"""The message model: a parsed SIP request or response that keeps its bytes.

A message read from the wire keeps the exact input (``bytes(msg) == data``), its header order, name casing and compact
forms. Canonical, typed access sits beside the raw view: ``msg.via[0].branch``, ``msg.from_.tag``, ``msg.cseq.number``.
Messages are immutable; the ``with_*`` methods return a new message, re-serialised and re-parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._defects import Defect
from ._headers import ContentType, CSeq, HeaderField, NameAddr, RAck, Via, canonical_key, display_name
from ._readers import read_header
from ._uri import URI, parse_uri

if TYPE_CHECKING:
    from ._sdp import SessionDescription

__all__ = ["Message", "Request", "Response"]


class Message:
    """Common part of :class:`Request` and :class:`Response`. Made by :func:`parse`, never directly."""

    __slots__ = (
        "_raw",
        "headers",
        "body",
        "trailing",
        "_defects",
        "_defects_t",
        "_index",
        "_typed",
        "_unread",
        "_offset_of",
        "_sdp",
        "version",
        "__weakref__",
    )

    version: str
    #: Every header line in order, as written.
    headers: tuple[HeaderField, ...]
    body: bytes
    #: Octets after Content-Length on a datagram (RFC 3261 §18.3: discarded, kept here for the record).
    trailing: bytes

    def _init(
        self,
        raw: bytes,
        version: str,
        headers: tuple[HeaderField, ...],
        body: bytes,
        trailing: bytes,
        defects: list[Defect],
        index: dict[str, list[int]],
        typed: dict[str, Any],
        unread: set[str],
        offset_of: Callable[[int], int],
    ) -> None:
        self._raw = raw
        self.version = version
        self.headers = headers
        self.body = body
        self.trailing = trailing
        self._defects = defects
        self._defects_t: tuple[Defect, ...] | None = None
        self._index = index
        self._typed = typed
        self._unread = unread
        self._offset_of = offset_of
        self._sdp: Any = None

    def _get(self, key: str, default: Any = None) -> Any:
        typed = self._typed
        if key in typed:
            return typed[key]
        if key in self._unread:
            self._read(key)
            return typed.get(key, default)
        return default

    def _read(self, key: str) -> None:
        self._unread.discard(key)
        read_header(key, self._index[key], self.headers, self._typed, self._defects, self._offset_of)
        self._defects_t = None

    @property
    def defects(self) -> tuple[Defect, ...]:
        """Every defect of this message, in the order of their byte offsets (each header is read if it was not)."""
        if self._unread:
            for key in list(self._unread):
                self._read(key)
        if self._defects_t is None:
            self._defects_t = tuple(sorted(self._defects, key=_by_offset))
        return self._defects_t

    # -- raw view ------------------------------------------------------------------------------------------------
    def __bytes__(self) -> bytes:
        return self._raw

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def is_request(self) -> bool:
        return False

    @property
    def is_response(self) -> bool:
        return False

    @property
    def start_line(self) -> str:
        raise NotImplementedError

    @property
    def fatal_defects(self) -> tuple[Defect, ...]:
        return tuple(d for d in self.defects if d.fatal)

    # -- header access -------------------------------------------------------------------------------------------
    def header(self, name: str) -> str | None:
        """The value of the first header with this name (any case, compact form accepted), or ``None``."""
        idx = self._index.get(canonical_key(name))
        return self.headers[idx[0]].value if idx else None

    def header_values(self, name: str) -> list[str]:
        """The values of every header line with this name, in order (not split on commas)."""
        idx = self._index.get(canonical_key(name))
        return [self.headers[i].value for i in idx] if idx else []

    def header_fields(self, name: str) -> list[HeaderField]:
        idx = self._index.get(canonical_key(name))
        return [self.headers[i] for i in idx] if idx else []

    def has_header(self, name: str) -> bool:
        return canonical_key(name) in self._index

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.has_header(name)

    def header_count(self, name: str) -> int:
        return len(self._index.get(canonical_key(name), ()))

    # -- typed views ---------------------------------------------------------------------------------------------
    @property
    def via(self) -> tuple[Via, ...]:
        return self._get("via", ())

    @property
    def from_(self) -> NameAddr | None:
        return self._get("from")

    @property
    def to(self) -> NameAddr | None:
        return self._get("to")

    @property
    def contact(self) -> tuple[NameAddr, ...]:
        """Contact values; empty for ``Contact: *`` (see :attr:`contact_star`)."""
        return self._get("contact", ())

    @property
    def contact_star(self) -> bool:
        """The message carries ``Contact: *`` (RFC 3261 §10.2.2, remove all bindings)."""
        self._get("contact")
        return bool(self._typed.get("contact*"))

    @property
    def route(self) -> tuple[NameAddr, ...]:
        return self._get("route", ())

    @property
    def record_route(self) -> tuple[NameAddr, ...]:
        return self._get("record-route", ())

    @property
    def reply_to(self) -> NameAddr | None:
        return self._get("reply-to")

    @property
    def cseq(self) -> CSeq | None:
        return self._get("cseq")

    @property
    def call_id(self) -> str | None:
        return self._get("call-id")

    @property
    def max_forwards(self) -> int | None:
        return self._get("max-forwards")

    @property
    def content_length(self) -> int | None:
        return self._get("content-length")

    @property
    def content_type(self) -> ContentType | None:
        return self._get("content-type")

    @property
    def rseq(self) -> int | None:
        return self._get("rseq")

    @property
    def rack(self) -> RAck | None:
        return self._get("rack")

    @property
    def require(self) -> tuple[str, ...]:
        return self._get("require", ())

    @property
    def supported(self) -> tuple[str, ...]:
        return self._get("supported", ())

    @property
    def unsupported(self) -> tuple[str, ...]:
        return self._get("unsupported", ())

    @property
    def proxy_require(self) -> tuple[str, ...]:
        return self._get("proxy-require", ())

    @property
    def allow(self) -> tuple[str, ...]:
        return self._get("allow", ())

    @property
    def expires(self) -> int | None:
        return self._get("expires")

    @property
    def min_expires(self) -> int | None:
        return self._get("min-expires")

    @property
    def warning(self) -> tuple[tuple[int, str, str], ...]:
        """Warning values as (warn-code, warn-agent, warn-text as written, quotes included) (RFC 3261 §20.43)."""
        return self._get("warning", ())

    @property
    def sdp(self) -> SessionDescription | None:
        """The body read as SDP when Content-Type is application/sdp (RFC 4566), else ``None``."""
        if self._sdp is None:
            ct = self.content_type
            if ct is None or ct.mime != "application/sdp" or not self.body:
                return None
            from ._sdp import parse_sdp

            self._sdp = parse_sdp(self.body)
        return self._sdp

    @property
    def transaction_branch(self) -> str | None:
        """The branch of the top Via, the key of RFC 3261 §17 transaction matching."""
        via = self.via
        return via[0].branch if via else None

    # -- building new messages from this one ---------------------------------------------------------------------
    def _rebuild(self, start_line: str, fields: list[str], body: bytes) -> Message:
        from ._parser import parse

        head = start_line + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n"
        msg = parse(head.encode("utf-8", "surrogateescape") + body).message
        assert msg is not None
        return msg

    def _fields(self) -> list[str]:
        return [h.raw for h in self.headers]

    def with_header(self, name: str, value: str) -> Message:
        """A copy where every ``name`` header is replaced by one ``name: value`` line at the first one's place."""
        key = canonical_key(name)
        fields: list[str] = []
        placed = False
        for h in self.headers:
            if h.key == key:
                if not placed:
                    fields.append(f"{_spelling(h.name, name)}: {value}")
                    placed = True
            else:
                fields.append(h.raw)
        if not placed:
            _insert_before_length(fields, f"{name}: {value}")
        return self._rebuild(self.start_line, fields, self.body)

    def with_header_added(self, name: str, value: str, *, first: bool = False) -> Message:
        """A copy with one more header line (before the others of that name when ``first``)."""
        key = canonical_key(name)
        fields = self._fields()
        line = f"{name}: {value}"
        idx = [i for i, h in enumerate(self.headers) if h.key == key]
        if first and idx:
            fields.insert(idx[0], line)
        elif idx:
            fields.insert(idx[-1] + 1, line)
        else:
            _insert_before_length(fields, line)
        return self._rebuild(self.start_line, fields, self.body)

    def without_header(self, name: str) -> Message:
        key = canonical_key(name)
        return self._rebuild(self.start_line, [h.raw for h in self.headers if h.key != key], self.body)

    def with_body(self, body: bytes, content_type: str | None = None) -> Message:
        """A copy with a new body; Content-Length is set to its length (and Content-Type when given)."""
        msg: Message = self
        if content_type is not None:
            msg = msg.with_header("Content-Type", content_type)
        fields = []
        placed = False
        for h in msg.headers:
            if h.key == "content-length":
                if not placed:
                    fields.append(f"{h.name}: {len(body)}")
                    placed = True
            else:
                fields.append(h.raw)
        if not placed:
            fields.append(f"Content-Length: {len(body)}")
        return self._rebuild(msg.start_line, fields, body)

    def with_start_line(self, start_line: str) -> Message:
        return self._rebuild(start_line, self._fields(), self.body)

    def copy_header_lines(self, name: str) -> list[str]:
        """The raw lines of a header, for copying them verbatim into another message."""
        return [h.raw for h in self.header_fields(name)]

    def summary(self) -> str:
        """One line: start line, Call-ID and CSeq, for logs and failure messages."""
        return f"{self.start_line} (Call-ID {self.call_id}, CSeq {self.cseq})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.start_line!r} {len(self.headers)} headers, {len(self.body)} body bytes>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)


def _spelling(written: str, requested: str) -> str:
    """Keep the compact form when the original used it and the caller named the header generically."""
    return written if len(written) == 1 and canonical_key(written) == canonical_key(requested) else requested


def _insert_before_length(fields: list[str], line: str) -> None:
    for i, f in enumerate(fields):
        if canonical_key(f.split(":", 1)[0].strip()) == "content-length":
            fields.insert(i, line)
            return
    fields.append(line)


def _by_offset(d: Defect) -> int:
    return d.offset


class Request(Message):
    """A SIP request."""

    __slots__ = ("method", "uri_text", "_uri")

    def __init__(self, method: str, uri_text: str) -> None:
        self.method = method
        self.uri_text = uri_text
        self._uri: URI | None | bool = False

    @property
    def is_request(self) -> bool:
        return True

    @property
    def uri(self) -> URI | None:
        """The Request-URI, parsed (``None`` when it could not be)."""
        if self._uri is False:
            self._uri = parse_uri(self.uri_text)[0]
        return self._uri  # type: ignore[return-value]

    @property
    def start_line(self) -> str:
        return f"{self.method} {self.uri_text} SIP/{self.version}" if self.version else f"{self.method} {self.uri_text}"


class Response(Message):
    """A SIP response."""

    __slots__ = ("status", "reason")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason

    @property
    def is_response(self) -> bool:
        return True

    @property
    def start_line(self) -> str:
        return f"SIP/{self.version} {self.status} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        return 100 <= self.status < 200

    @property
    def is_final(self) -> bool:
        return self.status >= 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def status_class(self) -> int:
        return self.status // 100


def header_line(name: str, value: str) -> str:
    """``Name: value`` with the canonical spelling of a known header."""
    return f"{display_name(canonical_key(name))}: {value}"
