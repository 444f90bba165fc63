"""Which grammar rule describes which header field (RFC 3261 section 7.3.3, 20, 25.1)."""

from __future__ import annotations

__all__ = [
    "COMPACT_FORMS",
    "HEADER_RULES",
    "MANDATORY_REQUEST_HEADERS",
    "MANDATORY_RESPONSE_HEADERS",
    "header_rule",
]

# Header field name -> rule name.  Every header field of RFC 3261 section 25.1
# and RFC 3262 section 7 has a rule of the same name that includes the field
# name and HCOLON.
HEADER_RULES: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Expires",
        "From",
        "In-Reply-To",
        "Max-Forwards",
        "MIME-Version",
        "Min-Expires",
        "Organization",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Record-Route",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Subject",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
        "RSeq",
        "RAck",
    )
}

# RFC 3261 section 7.3.3 (compact forms defined by RFC 3261 itself).
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
}

# RFC 3261 section 8.1.1: To, From, CSeq, Call-ID, Max-Forwards and Via are
# mandatory in every request; Content-Length (section 20.14) is added to
# every generated message so the body is framed on any transport.
MANDATORY_REQUEST_HEADERS = ("Via", "Max-Forwards", "To", "From", "Call-ID", "CSeq", "Content-Length")
# RFC 3261 section 8.2.6.2: a response copies From, Call-ID, CSeq and Via and
# carries To; Max-Forwards is a request-only header field (section 20.22).
MANDATORY_RESPONSE_HEADERS = ("Via", "To", "From", "Call-ID", "CSeq", "Content-Length")


def header_rule(name: str) -> str:
    """The rule for a header field name (full or compact form, any case); ``extension-header`` if unknown."""
    low = name.strip().lower()
    if low in COMPACT_FORMS:
        return COMPACT_FORMS[low]
    return HEADER_RULES.get(low, "extension-header")
