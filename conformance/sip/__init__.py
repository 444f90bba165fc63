"""sipcert's sans-I/O SIP core: parse bytes into messages with defects, build valid messages, frame streams.

Nothing in this package opens a socket, starts a thread or reads a clock.
"""

from ._defects import DEFECT_CODES, Defect, DefectInfo
from ._headers import (
    HEADERS,
    ContentType,
    CSeq,
    HeaderDef,
    HeaderField,
    NameAddr,
    RAck,
    Via,
    canonical_key,
    header_def,
)
from ._message import Message, Request, Response
from ._parser import DEFAULT_MAX_SIZE, ParseResult, parse
from ._uri import URI, AbsoluteURI, SipURI, TelURI, parse_uri

__all__ = [
    "DEFECT_CODES",
    "DEFAULT_MAX_SIZE",
    "HEADERS",
    "URI",
    "AbsoluteURI",
    "CSeq",
    "ContentType",
    "Defect",
    "DefectInfo",
    "HeaderDef",
    "HeaderField",
    "Message",
    "NameAddr",
    "ParseResult",
    "RAck",
    "Request",
    "Response",
    "SipURI",
    "TelURI",
    "Via",
    "canonical_key",
    "header_def",
    "parse",
    "parse_uri",
]
