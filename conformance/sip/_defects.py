"""Structured parse defects.

A defect is something the tolerant parser noticed while reading bytes a device sent: it never raises, it records.
Every defect has a stable code from :data:`DEFECT_CODES`, the header it concerns (canonical name, or ``None`` for the
start line, framing or body), the byte offset in the input where it was found, and the RFC section it violates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DEFECT_CODES", "Defect", "DefectInfo"]


@dataclass(frozen=True, slots=True)
class DefectInfo:
    """What a defect code means: the section it violates and whether it makes a message unusable."""

    code: str
    section: str
    summary: str
    fatal: bool


def _t(code: str, section: str, summary: str, fatal: bool = False) -> tuple[str, DefectInfo]:
    return code, DefectInfo(code, section, summary, fatal)


#: The defect table. ``fatal`` means a UAS cannot process the message (RFC 3261 §8.2 / §16.3: reject with 4xx, or drop
#: a response); a non-fatal defect is a deviation a tolerant implementation may accept.
DEFECT_CODES: dict[str, DefectInfo] = dict(
    [
        _t("bad-start-line", "RFC 3261 §7.1", "the start line is neither a Request-Line nor a Status-Line", True),
        _t("bad-version", "RFC 3261 §7.1", "the SIP-Version is not SIP/2.0", True),
        _t("bad-method", "RFC 3261 §25.1", "the method is not a token", True),
        _t("bad-status-code", "RFC 3261 §7.2", "the Status-Code is not three digits from 100 to 699", True),
        _t("bad-reason-phrase", "RFC 3261 §25.1", "the Reason-Phrase contains characters it may not", False),
        _t("bad-request-uri", "RFC 3261 §7.1", "the Request-URI is malformed (embedded LWS, angle brackets, ...)", True),
        _t("bad-uri", "RFC 3261 §19.1", "a SIP, SIPS or tel URI is malformed", True),
        _t("unknown-scheme", "RFC 3261 §8.2.2.1", "the URI scheme is not sip, sips or tel", False),
        _t("bad-port", "RFC 3261 §25.1", "a port is not a number from 0 to 65535", True),
        _t("bad-host", "RFC 3261 §25.1", "a host is not a hostname, IPv4 address or bracketed IPv6 reference", True),
        _t("bad-header-line", "RFC 3261 §7.3", "a header line has no colon or no valid field name", True),
        _t("bad-header-value", "RFC 3261 §25.1", "a header value does not match its grammar", False),
        _t("missing-header", "RFC 3261 §8.1.1", "a mandatory header field is missing", True),
        _t("duplicate-singleton", "RFC 3261 §7.3", "a header field that may appear once appears more than once", True),
        _t("bad-cseq", "RFC 3261 §8.1.1.5", "CSeq is not a 32-bit number below 2**31 followed by a method", True),
        _t("cseq-method-mismatch", "RFC 3261 §8.1.1.5", "the CSeq method differs from the request method", True),
        _t("bad-via", "RFC 3261 §20.42", "a Via value does not match its grammar", True),
        _t("bad-name-addr", "RFC 3261 §20.10", "a name-addr / addr-spec (From, To, Contact, Route) is malformed", True),
        _t("bad-call-id", "RFC 3261 §20.8", "Call-ID is empty or not word [@ word]", True),
        _t("bad-max-forwards", "RFC 3261 §20.22", "Max-Forwards is not a number from 0 to 255", True),
        _t("bad-content-length", "RFC 3261 §20.14", "Content-Length is not a non-negative integer", True),
        _t("content-length-mismatch", "RFC 3261 §18.3", "Content-Length exceeds the octets that follow the header", True),
        _t("missing-content-length", "RFC 3261 §18.3", "no Content-Length on a stream transport", False),
        _t("bad-content-type", "RFC 3261 §20.15", "Content-Type is not type/subtype *(;param)", False),
        _t("bad-expires", "RFC 3261 §20.19", "Expires or expires= is not delta-seconds", False),
        _t("bad-rseq", "RFC 3262 §7.1", "RSeq is not a number from 1 to 2**32-1", True),
        _t("bad-rack", "RFC 3262 §7.2", "RAck is not response-num CSeq-num Method", True),
        _t("bad-option-tag", "RFC 3261 §25.1", "an option-tag list (Require, Supported, ...) has a non-token", False),
        _t("bad-date", "RFC 3261 §20.17", "Date is not an RFC 1123 date in GMT", False),
        _t("bad-quoting", "RFC 3261 §25.1", "a quoted string is not closed or holds an invalid escape", True),
        _t("control-char", "RFC 3261 §25.1", "a control character appears where the grammar allows none", True),
        _t("bare-lf", "RFC 3261 §7", "a line ends in LF without CR", False),
        _t("leading-whitespace", "RFC 3261 §25.1", "whitespace before the start line", True),
        _t("no-header-end", "RFC 3261 §7", "the header section is not closed by an empty line", True),
        _t("oversize", "RFC 3261 §18.1.1", "the message, a header or a body exceeds the configured limit", True),
        _t("bad-sdp", "RFC 4566 §5", "the SDP body does not match its grammar", False),
        _t("parser-error", "-", "sipcert's parser failed on this input: a sipcert bug, please report it", True),
        _t("bad-encoding", "RFC 3261 §7.3.1", "the header section is not valid UTF-8", False),
    ]
)


class Defect(NamedTuple):
    """One thing wrong with a message, located and tied to an RFC section.

    A NamedTuple (immutable, compared by value): the parser makes one for every malformed header it reads, and a
    tuple is made several times faster than a frozen dataclass."""

    code: str
    header: str | None
    offset: int
    detail: str = ""
    #: Overrides the code's default fatality where the header decides it (a malformed Date is not fatal, a
    #: malformed Via is; a missing Max-Forwards is tolerated by RFC 3261 §16.3 step 3).
    fatal_override: bool | None = None

    @property
    def info(self) -> DefectInfo:
        return DEFECT_CODES[self.code]

    @property
    def section(self) -> str:
        return DEFECT_CODES[self.code].section

    @property
    def fatal(self) -> bool:
        if self.fatal_override is not None:
            return self.fatal_override
        return DEFECT_CODES[self.code].fatal

    def __str__(self) -> str:
        where = f" in {self.header}" if self.header else ""
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.code}{where} at byte {self.offset} ({self.section}){extra}"
