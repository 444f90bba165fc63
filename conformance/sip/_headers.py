"""The header table and the typed header views.

One table (:data:`HEADERS`) says, for every header field sipcert knows: its full name, its compact form, whether it
may appear once or holds a comma-separated list, how its value is read, and whether a malformed value makes the
message unusable. The parser, the builders, the docs and the fuzzer all read this table.

Typed views are NamedTuples: immutable, typed, and about three times cheaper to build than frozen dataclasses, which
matters on the parse path. Each keeps the text it was read from in ``raw``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import NamedTuple

from ._abnf import split_params, unquote
from ._uri import URI, parse_uri

__all__ = [
    "HeaderDef",
    "HEADERS",
    "canonical_key",
    "header_def",
    "display_name",
    "HeaderField",
    "Via",
    "NameAddr",
    "CSeq",
    "RAck",
    "ContentType",
]


@dataclass(frozen=True, slots=True)
class HeaderDef:
    """One row of the header table."""

    name: str
    compact: str | None
    #: ``"single"``: at most one value (a second is ``duplicate-singleton``); ``"list"``: comma-separated values,
    #: possibly over several header lines (RFC 3261 §7.3.1); ``"multi"``: may repeat but commas are not separators
    #: (authentication headers).
    arity: str
    #: How the value is read: a key of the parser's validator table.
    kind: str
    #: A malformed value makes the message unusable (the UAS answers 400, RFC 3261 §8.2 and §16.3).
    fatal: bool
    section: str


def _h(name: str, compact: str | None, arity: str, kind: str, fatal: bool, section: str) -> HeaderDef:
    return HeaderDef(name, compact, arity, kind, fatal, section)


#: Every header field sipcert knows, RFC 3261 §20 first, then the extensions the suite meets.
HEADERS: tuple[HeaderDef, ...] = (
    _h("Accept", None, "list", "text", False, "RFC 3261 §20.1"),
    _h("Accept-Encoding", None, "list", "text", False, "RFC 3261 §20.2"),
    _h("Accept-Language", None, "list", "text", False, "RFC 3261 §20.3"),
    _h("Alert-Info", None, "list", "text", False, "RFC 3261 §20.4"),
    _h("Allow", None, "list", "methods", False, "RFC 3261 §20.5"),
    _h("Authentication-Info", None, "single", "text", False, "RFC 3261 §20.6"),
    _h("Authorization", None, "multi", "text", False, "RFC 3261 §20.7"),
    _h("Call-ID", "i", "single", "call-id", True, "RFC 3261 §20.8"),
    _h("Call-Info", None, "list", "text", False, "RFC 3261 §20.9"),
    _h("Contact", "m", "list", "contact", True, "RFC 3261 §20.10"),
    _h("Content-Disposition", None, "single", "text", False, "RFC 3261 §20.11"),
    _h("Content-Encoding", "e", "list", "option-tags", False, "RFC 3261 §20.12"),
    _h("Content-Language", None, "list", "text", False, "RFC 3261 §20.13"),
    _h("Content-Length", "l", "single", "uint", True, "RFC 3261 §20.14"),
    _h("Content-Type", "c", "single", "media-type", False, "RFC 3261 §20.15"),
    _h("CSeq", None, "single", "cseq", True, "RFC 3261 §20.16"),
    _h("Date", None, "single", "date", False, "RFC 3261 §20.17"),
    _h("Error-Info", None, "list", "text", False, "RFC 3261 §20.18"),
    _h("Expires", None, "single", "uint", False, "RFC 3261 §20.19"),
    _h("From", "f", "single", "name-addr", True, "RFC 3261 §20.20"),
    _h("In-Reply-To", None, "list", "text", False, "RFC 3261 §20.21"),
    _h("Max-Forwards", None, "single", "max-forwards", True, "RFC 3261 §20.22"),
    _h("Min-Expires", None, "single", "uint", False, "RFC 3261 §20.23"),
    _h("MIME-Version", None, "single", "text", False, "RFC 3261 §20.24"),
    _h("Organization", None, "single", "text", False, "RFC 3261 §20.25"),
    _h("Priority", None, "single", "token", False, "RFC 3261 §20.26"),
    _h("Proxy-Authenticate", None, "multi", "text", False, "RFC 3261 §20.27"),
    _h("Proxy-Authorization", None, "multi", "text", False, "RFC 3261 §20.28"),
    _h("Proxy-Require", None, "list", "option-tags", True, "RFC 3261 §20.29"),
    _h("Record-Route", None, "list", "route", True, "RFC 3261 §20.30"),
    _h("Reply-To", None, "single", "name-addr", False, "RFC 3261 §20.31"),
    _h("Require", None, "list", "option-tags", True, "RFC 3261 §20.32"),
    _h("Retry-After", None, "single", "text", False, "RFC 3261 §20.33"),
    _h("Route", None, "list", "route", True, "RFC 3261 §20.34"),
    _h("Server", None, "single", "text", False, "RFC 3261 §20.35"),
    _h("Subject", "s", "single", "text", False, "RFC 3261 §20.36"),
    _h("Supported", "k", "list", "option-tags", False, "RFC 3261 §20.37"),
    _h("Timestamp", None, "single", "text", False, "RFC 3261 §20.38"),
    _h("To", "t", "single", "name-addr", True, "RFC 3261 §20.39"),
    _h("Unsupported", None, "list", "option-tags", False, "RFC 3261 §20.40"),
    _h("User-Agent", None, "single", "text", False, "RFC 3261 §20.41"),
    _h("Via", "v", "list", "via", True, "RFC 3261 §20.42"),
    _h("Warning", None, "list", "warning", False, "RFC 3261 §20.43"),
    _h("WWW-Authenticate", None, "multi", "text", False, "RFC 3261 §20.44"),
    _h("RSeq", None, "single", "rseq", True, "RFC 3262 §7.1"),
    _h("RAck", None, "single", "rack", True, "RFC 3262 §7.2"),
    _h("Event", "o", "single", "text", False, "RFC 6665 §8.2.1"),
    _h("Allow-Events", "u", "list", "option-tags", False, "RFC 6665 §8.2.2"),
    _h("Subscription-State", None, "single", "text", False, "RFC 6665 §8.2.3"),
    _h("Refer-To", "r", "single", "text", False, "RFC 3515 §2.1"),
    _h("Referred-By", "b", "single", "text", False, "RFC 3892 §3"),
    _h("Session-Expires", "x", "single", "text", False, "RFC 4028 §4"),
    _h("Min-SE", None, "single", "text", False, "RFC 4028 §5"),
    _h("Accept-Contact", "a", "list", "text", False, "RFC 3841 §9.2"),
    _h("Reject-Contact", "j", "list", "text", False, "RFC 3841 §9.2"),
    _h("Request-Disposition", "d", "list", "text", False, "RFC 3841 §9.1"),
    _h("Identity", "y", "single", "text", False, "RFC 8224 §4"),
    _h("Path", None, "list", "route", False, "RFC 3327 §4"),
    _h("Service-Route", None, "list", "route", False, "RFC 3608 §5"),
    _h("P-Asserted-Identity", None, "list", "text", False, "RFC 3325 §9.1"),
    _h("Privacy", None, "single", "text", False, "RFC 3323 §4.2"),
    _h("Reason", None, "list", "text", False, "RFC 3326 §2"),
)

_BY_KEY: dict[str, HeaderDef] = {}
_CANON: dict[str, str] = {}
for _d in HEADERS:
    _BY_KEY[_d.name.lower()] = _d
    _CANON[_d.name.lower()] = _d.name.lower()
    if _d.compact:
        _CANON[_d.compact] = _d.name.lower()
del _d


def canonical_key(name: str) -> str:
    """The lookup key of a header name: lower-case full name, compact forms expanded (``"i"`` → ``"call-id"``)."""
    low = name.lower()
    return _CANON.get(low, low)


def header_def(name: str) -> HeaderDef | None:
    """The table row of a header, by any spelling or compact form."""
    return _BY_KEY.get(canonical_key(name))


def display_name(key: str) -> str:
    """The canonical spelling of a header key (``"call-id"`` → ``"Call-ID"``); unknown keys are title-cased."""
    d = _BY_KEY.get(key)
    return d.name if d else "-".join(p.capitalize() for p in key.split("-"))


class HeaderField(NamedTuple):
    """One header line as it stood in the message (folded lines unfolded into ``value``)."""

    #: The name as written (``"v"``, ``"MaX-fOrWaRdS"``).
    name: str
    #: The lookup key (lower-case full name).
    key: str
    #: The value with line folding replaced by a space and surrounding whitespace removed.
    value: str
    #: The exact text of the line(s), folding included, without the final CRLF.
    raw: str
    #: Character offset of the line in the decoded header section.
    offset: int


_RE_BRANCH = re.compile(r";[ \t]*branch[ \t]*=[ \t]*([^; \t,]+)", re.I)
_RE_TAG = re.compile(r";[ \t]*tag[ \t]*=[ \t]*([^; \t,]+)", re.I)


def _param(params_text: str, name: str) -> str | None:
    lname = name.lower()
    for key, value in split_params(params_text):
        if key.lower() == lname:
            return "" if value is None else value
    return None


@functools.lru_cache(maxsize=1024)
def _branch(params_text: str) -> str | None:
    """The branch of a via-parm's parameters. Cached: transaction matching asks for the same Via's branch many
    times (a NamedTuple has no room to keep it), and the parameters of the Vias in flight are few."""
    if '"' in params_text:  # a quoted value may hold ";branch=": read the parameters properly
        return _param(params_text, "branch") or None
    m = _RE_BRANCH.search(params_text)
    return m.group(1) if m else None


class Via(NamedTuple):
    """One via-parm (RFC 3261 §20.42): ``SIP/2.0/UDP host:port;branch=...``."""

    protocol: str
    version: str
    transport: str
    host: str
    port: int | None
    params_text: str
    raw: str

    @property
    def params(self) -> tuple[tuple[str, str | None], ...]:
        return split_params(self.params_text)

    def param(self, name: str) -> str | None:
        """A via-param by case-insensitive name; ``""`` for a flag (``rport``), ``None`` when absent."""
        return _param(self.params_text, name)

    @property
    def branch(self) -> str | None:
        return _branch(self.params_text)

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> int | bool | None:
        """``None`` absent, ``True`` present without value (a request asking for it), else the port number."""
        value = self.param("rport")
        if value is None:
            return None
        if value == "":
            return True
        return int(value) if value.isdigit() else None

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def ttl(self) -> int | None:
        value = self.param("ttl")
        return int(value) if value and value.isdigit() else None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    @property
    def transport_upper(self) -> str:
        return self.transport.upper()

    @property
    def has_cookie(self) -> bool:
        """The branch starts with the RFC 3261 magic cookie ``z9hG4bK`` (§8.1.1.7)."""
        b = self.branch
        return b is not None and b.startswith("z9hG4bK")

    def __str__(self) -> str:
        return self.raw


class NameAddr(NamedTuple):
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route, Record-Route)."""

    #: Display name as written (quoted, or tokens), ``""`` when absent.
    display_raw: str
    uri_text: str
    params_text: str
    #: The URI was enclosed in angle brackets.
    bracketed: bool
    raw: str

    @property
    def uri(self) -> URI | None:
        return parse_uri(self.uri_text)[0]

    @property
    def display_name(self) -> str | None:
        d = self.display_raw
        if not d:
            return None
        return unquote(d) if d.startswith('"') else d

    @property
    def params(self) -> tuple[tuple[str, str | None], ...]:
        return split_params(self.params_text)

    def param(self, name: str) -> str | None:
        return _param(self.params_text, name)

    @property
    def tag(self) -> str | None:
        if '"' in self.params_text:  # a quoted value may hold ";tag=": read the parameters properly
            return self.param("tag") or None
        m = _RE_TAG.search(self.params_text)
        return m.group(1) if m else None

    @property
    def expires(self) -> int | None:
        value = self.param("expires")
        return int(value) if value and value.isdigit() else None

    @property
    def q(self) -> float | None:
        value = self.param("q")
        try:
            return float(value) if value else None
        except ValueError:
            return None

    def __str__(self) -> str:
        return self.raw


class CSeq(NamedTuple):
    """CSeq (RFC 3261 §20.16)."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


class RAck(NamedTuple):
    """RAck (RFC 3262 §7.2): the RSeq and CSeq of the reliable provisional a PRACK acknowledges."""

    rseq: int
    cseq: int
    method: str

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


class ContentType(NamedTuple):
    """A media-type (RFC 3261 §20.15)."""

    type: str
    subtype: str
    params_text: str

    @property
    def mime(self) -> str:
        """``type/subtype`` in lower case."""
        return f"{self.type}/{self.subtype}".lower()

    @property
    def params(self) -> tuple[tuple[str, str | None], ...]:
        return split_params(self.params_text)

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{self.params_text}"
