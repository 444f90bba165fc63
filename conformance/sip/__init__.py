"""sipcert's sans-I/O SIP core: parse bytes into messages with defects, build valid messages, frame streams.

Nothing in this package opens a socket, starts a thread or reads a clock.
"""

from ._build import (
    BRANCH_COOKIE,
    REASON_PHRASES,
    BuildError,
    build_ack_for_non2xx,
    build_cancel,
    build_prack,
    build_request,
    build_response,
    name_addr,
    new_branch,
    new_call_id,
    new_tag,
    raw_message,
    via_value,
)
from ._defects import DEFECT_CODES, Defect, DefectInfo
from ._framing import STREAM_TRANSPORTS, Frame, FramedMessage, FramingError, KeepAlive, StreamFramer
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
from ._parser import DEFAULT_MAX_SIZE, SPEEDUPS, ParseResult, parse
from ._sdp import Attribute, Connection, Media, Origin, SessionDescription, build_sdp, parse_sdp
from ._uri import URI, AbsoluteURI, SipURI, TelURI, parse_uri

__all__ = [
    "Attribute",
    "Connection",
    "Frame",
    "FramedMessage",
    "FramingError",
    "KeepAlive",
    "Media",
    "Origin",
    "SessionDescription",
    "StreamFramer",
    "STREAM_TRANSPORTS",
    "build_sdp",
    "parse_sdp",
    "BRANCH_COOKIE",
    "REASON_PHRASES",
    "BuildError",
    "build_ack_for_non2xx",
    "build_cancel",
    "build_prack",
    "build_request",
    "build_response",
    "name_addr",
    "new_branch",
    "new_call_id",
    "new_tag",
    "raw_message",
    "via_value",
    "DEFECT_CODES",
    "DEFAULT_MAX_SIZE",
    "SPEEDUPS",
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
