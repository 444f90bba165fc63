"""Rules that judge one message the device sent, with the request it answers when it is a response.

RFC 3261 unless the id says otherwise. Every sentence is quoted from the RFC text; where RFC-NOTES.md, the RFC's own
summary tables and its prose disagree, the rule's ``note`` says which one it follows and why.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from ..sip import DEFECT_CODES, Request, Response, SipURI, Via, parse_uri
from ._model import AppliesTo, Context, Issue, Level, MessageKind, Rule, message_rule
from ._util import norm_uri, option_tags, param_map, raw_cseq, same_name_addr, via_equal

MUST, SHOULD = Level.MUST, Level.SHOULD

UAC = frozenset({"uac"})
UAC_PROXY = frozenset({"uac", "proxy"})
UAS = frozenset({"uas"})
UAS_PROXY = frozenset({"uas", "proxy"})
UA = frozenset({"uac", "uas"})
REGISTRAR = frozenset({"registrar"})
REQ: MessageKind = "request"
RSP: MessageKind = "response"

_MANDATORY = ("To", "From", "CSeq", "Call-ID", "Max-Forwards", "Via")
_MANDATORY_RESPONSE = ("To", "From", "CSeq", "Call-ID", "Via")
#: Tables 2 and 3 of RFC 3261 §20, "where" R or blank, cells marked "-" for a request of that method.
_NOT_APPLICABLE_IN_REQUEST: dict[str, tuple[str, ...]] = {
    "ACK": (
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Call-Info", "Expires",
        "In-Reply-To", "Organization", "Priority", "Reply-To", "Subject", "Supported",
    ),
    "BYE": ("Alert-Info", "Call-Info", "Contact", "Expires", "In-Reply-To", "Organization", "Priority", "Reply-To",
            "Subject"),
    "CANCEL": (
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Call-Info", "Contact",
        "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Type", "Expires", "In-Reply-To",
        "MIME-Version", "Organization", "Priority", "Proxy-Authorization", "Proxy-Require", "Reply-To", "Require",
        "Subject",
    ),
    "OPTIONS": ("Alert-Info", "Expires", "In-Reply-To", "Priority", "Reply-To", "Subject"),
    "REGISTER": ("Alert-Info", "In-Reply-To", "Priority", "Record-Route", "Reply-To", "Subject"),
}


def _method(msg: Request | Response) -> str | None:
    if isinstance(msg, Request):
        return msg.method
    cseq = raw_cseq(msg)
    return cseq[1] if cseq else None


def _missing(msg: Request | Response, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not msg.has_header(n)]


def _uri_scheme(text: str) -> str:
    return text.split(":", 1)[0].lower() if ":" in text else ""


# ---------------------------------------------------------------------------------------------------------------------
# Requests the device originates (§8.1.1)
# ---------------------------------------------------------------------------------------------------------------------


@message_rule(
    "3261-8.1.1-mandatory-headers",
    MUST,
    """A valid SIP request formulated by a UAC MUST, at a minimum, contain the following header fields: To, From,
    CSeq, Call-ID, Max-Forwards, and Via; all of these header fields are mandatory in all SIP requests.""",
    "every request carries To, From, CSeq, Call-ID, Max-Forwards and Via",
    AppliesTo(kind=REQ, roles=UAC_PROXY),
)
def mandatory_request_headers(msg: Request, ctx: Context) -> Iterator[Issue]:
    missing = _missing(msg, _MANDATORY)
    if missing:
        yield Issue(f"{msg.method} request without {', '.join(missing)}")


@message_rule(
    "3261-8.1.1.3-from-tag",
    MUST,
    'The From field MUST contain a new "tag" parameter, chosen by the UAC.',
    "requests the device originates carry a From tag",
    AppliesTo(kind=REQ, roles=UAC),
    note="Also holds for in-dialog requests (the local tag) and for ACK/CANCEL, which copy the From of the request.",
)
def from_tag(msg: Request, ctx: Context) -> Iterator[Issue]:
    fr = msg.from_
    if fr is not None and not fr.tag:
        yield Issue(f"{msg.method} with From {fr.raw!r} has no tag parameter")


@message_rule(
    "3261-8.1.1.5-cseq-method",
    MUST,
    "The method MUST match that of the request.",
    "the CSeq method equals the request method",
    AppliesTo(kind=REQ, roles=UAC_PROXY),
)
def cseq_method(msg: Request, ctx: Context) -> Iterator[Issue]:
    cseq = raw_cseq(msg)
    if cseq is not None and cseq[1] != msg.method:
        yield Issue(f"CSeq method {cseq[1]!r} in the {msg.method} request (expected {msg.method!r}, case-sensitive)")


@message_rule(
    "3261-8.1.1.5-cseq-number",
    MUST,
    """The sequence number value MUST be expressible as a 32-bit unsigned integer and MUST be less than 2**31.""",
    "the CSeq number is below 2**31",
    AppliesTo(kind=REQ, roles=UAC_PROXY),
)
def cseq_number(msg: Request, ctx: Context) -> Iterator[Issue]:
    cseq = raw_cseq(msg)
    if cseq is not None and cseq[0] >= 2**31:
        yield Issue(f"CSeq number {cseq[0]} is not below 2**31 = {2**31}")


@message_rule(
    "3261-8.1.1.6-max-forwards-70",
    SHOULD,
    """A UAC MUST insert a Max-Forwards header field into each request it originates with a value that SHOULD be
    70.""",
    "originated requests start with Max-Forwards 70",
    AppliesTo(kind=REQ, roles=UAC),
    note="The presence (MUST) is checked by 3261-8.1.1-mandatory-headers; this rule checks the value (SHOULD).",
)
def max_forwards_70(msg: Request, ctx: Context) -> Iterator[Issue]:
    mf = msg.max_forwards
    if mf is not None and mf != 70:
        yield Issue(f"Max-Forwards is {mf}, expected 70")


@message_rule(
    "3261-8.1.1.7-via-branch",
    MUST,
    "The Via header field value MUST contain a branch parameter.",
    "the top Via of a request carries a branch",
    AppliesTo(kind=REQ, roles=UAC_PROXY),
)
def via_branch(msg: Request, ctx: Context) -> Iterator[Issue]:
    if msg.via and msg.via[0].branch is None:
        yield Issue(f"top Via {msg.via[0].raw!r} has no branch parameter")


@message_rule(
    "3261-8.1.1.7-branch-cookie",
    MUST,
    """The branch ID inserted by an element compliant with this specification MUST always begin with the characters
    "z9hG4bK".""",
    "the top Via branch starts with the magic cookie z9hG4bK",
    AppliesTo(kind=REQ, roles=UAC_PROXY),
    note="The cookie is case-sensitive: 'Z9HG4BK...' does not pass.",
)
def branch_cookie(msg: Request, ctx: Context) -> Iterator[Issue]:
    branch = msg.via[0].branch if msg.via else None
    if branch is not None and not branch.startswith("z9hG4bK"):
        yield Issue(f"branch {branch!r} does not begin with 'z9hG4bK'")


@message_rule(
    "3261-8.1.1.7-via-protocol",
    MUST,
    """The protocol name and protocol version in the header field MUST be SIP and 2.0, respectively.""",
    "the top Via says SIP/2.0",
    AppliesTo(kind=REQ, roles=UAC_PROXY),
)
def via_protocol(msg: Request, ctx: Context) -> Iterator[Issue]:
    if msg.via:
        v = msg.via[0]
        if v.protocol.upper() != "SIP" or v.version != "2.0":
            yield Issue(f"top Via sent-protocol is {v.protocol}/{v.version}, expected SIP/2.0")


@message_rule(
    "3261-8.1.1.8-contact-in-invite",
    MUST,
    """The Contact header field MUST be present and contain exactly one SIP or SIPS URI in any request that can result
    in the establishment of a dialog.""",
    "an INVITE carries Contact, with exactly one SIP or SIPS URI when it is outside a dialog",
    AppliesTo(kind=REQ, methods=frozenset({"INVITE"}), roles=UAC),
    note="Table 2 of §20 marks Contact mandatory (m) in every INVITE; the exactly-one-SIP-URI part is judged on "
    "INVITEs without a To tag (those that can establish a dialog).",
)
def contact_in_invite(msg: Request, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("Contact"):
        yield Issue("INVITE without a Contact header field")
        return
    to = msg.to
    if to is not None and to.tag:
        return
    if msg.contact_star:
        yield Issue("INVITE with Contact: * (a REGISTER-only value)")
        return
    contacts = msg.contact
    if len(contacts) != 1:
        yield Issue(f"INVITE Contact has {len(contacts)} values, expected exactly one")
    elif _uri_scheme(contacts[0].uri_text) not in ("sip", "sips"):
        yield Issue(f"INVITE Contact URI {contacts[0].uri_text!r} is not a SIP or SIPS URI")


@message_rule(
    "3261-8.1.1.8-contact-sips",
    MUST,
    """If the Request-URI or top Route header field value contains a SIPS URI, the Contact header field MUST contain
    a SIPS URI as well.""",
    "a SIPS Request-URI or top Route makes the INVITE's Contact SIPS",
    AppliesTo(kind=REQ, methods=frozenset({"INVITE"}), roles=UAC),
)
def contact_sips(msg: Request, ctx: Context) -> Iterator[Issue]:
    route = msg.route
    secure = _uri_scheme(msg.uri_text) == "sips" or (bool(route) and _uri_scheme(route[0].uri_text) == "sips")
    if secure and msg.contact and _uri_scheme(msg.contact[0].uri_text) != "sips":
        yield Issue(f"Request-URI or top Route is SIPS but Contact is {msg.contact[0].uri_text!r}")


@message_rule(
    "3261-9.1-cancel-no-require",
    MUST,
    "The CANCEL request MUST NOT contain any Require or Proxy-Require header fields.",
    "CANCEL carries neither Require nor Proxy-Require",
    AppliesTo(kind=REQ, methods=frozenset({"CANCEL"}), roles=UAC_PROXY),
)
def cancel_no_require(msg: Request, ctx: Context) -> Iterator[Issue]:
    present = [n for n in ("Require", "Proxy-Require") if msg.has_header(n)]
    if present:
        yield Issue(f"CANCEL carries {', '.join(present)}")


@message_rule(
    "3261-9.1-cancel-single-via",
    MUST,
    """A CANCEL constructed by a client MUST have only a single Via header field value matching the top Via value in
    the request being cancelled.""",
    "a CANCEL the device builds has exactly one Via",
    AppliesTo(kind=REQ, methods=frozenset({"CANCEL"}), roles=UAC),
    note="The match with the INVITE's top Via is checked by the trace rule 3261-9.1-cancel-matches-invite.",
)
def cancel_single_via(msg: Request, ctx: Context) -> Iterator[Issue]:
    if len(msg.via) != 1:
        yield Issue(f"CANCEL has {len(msg.via)} Via values, expected 1")


@message_rule(
    "3261-10.2-register-uri",
    MUST,
    """The "userinfo" and "@" components of the SIP URI MUST NOT be present.""",
    "the Request-URI of a REGISTER names a domain, without user part",
    AppliesTo(kind=REQ, methods=frozenset({"REGISTER"}), roles=UAC),
)
def register_uri(msg: Request, ctx: Context) -> Iterator[Issue]:
    uri = msg.uri
    if isinstance(uri, SipURI) and (uri.user is not None or "@" in msg.uri_text.split(";", 1)[0]):
        yield Issue(f"REGISTER Request-URI {msg.uri_text!r} has a userinfo part")


@message_rule(
    "3261-10.2-register-to-sip",
    MUST,
    "This address-of-record MUST be a SIP URI or SIPS URI.",
    "the To of a REGISTER is a SIP or SIPS URI",
    AppliesTo(kind=REQ, methods=frozenset({"REGISTER"}), roles=UAC),
)
def register_to_sip(msg: Request, ctx: Context) -> Iterator[Issue]:
    to = msg.to
    if to is not None and _uri_scheme(to.uri_text) not in ("sip", "sips"):
        yield Issue(f"REGISTER To URI {to.uri_text!r} is not a SIP or SIPS URI")


@message_rule(
    "3261-10.2.2-contact-star",
    MUST,
    """The REGISTER-specific Contact header field value of "*" applies to all registrations, but it MUST NOT be used
    unless the Expires header field is present with a value of "0".""",
    "Contact: * only with Expires: 0",
    AppliesTo(kind=REQ, methods=frozenset({"REGISTER"}), roles=UAC),
)
def contact_star(msg: Request, ctx: Context) -> Iterator[Issue]:
    if msg.contact_star:
        expires = msg.header("Expires")
        if expires is None or expires.strip() != "0":
            yield Issue(f"Contact: * with Expires {expires!r}, expected Expires: 0")


@message_rule(
    "3261-13.2.1-allow-in-invite",
    SHOULD,
    "An Allow header field (Section 20.5) SHOULD be present in the INVITE.",
    "an initial INVITE lists the methods the UA allows",
    AppliesTo(kind=REQ, methods=frozenset({"INVITE"}), roles=UAC),
    note="Judged on INVITEs without a To tag (§13.2.1 is about the initial INVITE).",
)
def allow_in_invite(msg: Request, ctx: Context) -> Iterator[Issue]:
    if (msg.to is None or not msg.to.tag) and not msg.has_header("Allow"):
        yield Issue("initial INVITE without Allow")


@message_rule(
    "3261-13.2.1-supported-in-invite",
    SHOULD,
    "A Supported header field (Section 20.37) SHOULD be present in the INVITE.",
    "an initial INVITE lists the extensions the UA supports",
    AppliesTo(kind=REQ, methods=frozenset({"INVITE"}), roles=UAC),
    note="Judged on INVITEs without a To tag (§13.2.1 is about the initial INVITE).",
)
def supported_in_invite(msg: Request, ctx: Context) -> Iterator[Issue]:
    if (msg.to is None or not msg.to.tag) and not msg.has_header("Supported"):
        yield Issue("initial INVITE without Supported")


@message_rule(
    "3261-11.1-accept-in-options",
    SHOULD,
    """An Accept header field SHOULD be included to indicate the type of message body the UAC wishes to receive in
    the response.""",
    "an OPTIONS request carries Accept",
    AppliesTo(kind=REQ, methods=frozenset({"OPTIONS"}), roles=UAC),
)
def accept_in_options(msg: Request, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("Accept"):
        yield Issue("OPTIONS without Accept")


@message_rule(
    "3261-15-bye-in-dialog",
    MUST,
    "A UA MUST NOT send a BYE outside of a dialog.",
    "a BYE carries the dialog's tags",
    AppliesTo(kind=REQ, methods=frozenset({"BYE"}), roles=UAC),
    note="A BYE without a To tag cannot belong to an RFC 3261 dialog (§12.2.1.1 puts the remote tag in To); an RFC "
    "2543 peer's null tag is the one exception, which this rule does not try to recognise.",
    heuristic=True,
)
def bye_in_dialog(msg: Request, ctx: Context) -> Iterator[Issue]:
    if msg.to is not None and not msg.to.tag:
        yield Issue(f"BYE with To {msg.to.raw!r} has no tag: it is outside any dialog")


@message_rule(
    "3261-20-not-applicable-in-request",
    MUST,
    """"Not applicable" means that the header field MUST NOT be present in a request.""",
    "no header field marked '-' for the method in Tables 2 and 3",
    AppliesTo(kind=REQ, methods=frozenset(_NOT_APPLICABLE_IN_REQUEST), roles=UAC),
    note="Require and Proxy-Require are not judged in ACK: the table marks them '-' but §8.2.2.3 allows them in an "
    "ACK for a 2xx ('MUST contain only those Require and Proxy-Require values that were present in the initial "
    "request'); the ACK for a non-2xx is checked by 3261-8.2.2.3-ack-no-require.",
)
def not_applicable_in_request(msg: Request, ctx: Context) -> Iterator[Issue]:
    present = [n for n in _NOT_APPLICABLE_IN_REQUEST.get(msg.method, ()) if msg.has_header(n)]
    if present:
        yield Issue(f"{msg.method} carries {', '.join(present)}, not applicable to {msg.method} (Tables 2 and 3)")


# ---------------------------------------------------------------------------------------------------------------------
# Any message: body, framing, syntax
# ---------------------------------------------------------------------------------------------------------------------


@message_rule(
    "3261-20.15-content-type-with-body",
    MUST,
    "The Content-Type header field MUST be present if the body is not empty.",
    "a non-empty body comes with Content-Type",
    AppliesTo(),
)
def content_type_with_body(msg: Request | Response, ctx: Context) -> Iterator[Issue]:
    if msg.body and not msg.has_header("Content-Type"):
        yield Issue(f"{len(msg.body)}-octet body without Content-Type")


@message_rule(
    "3261-18.3-content-length-on-stream",
    MUST,
    "The Content-Length header field MUST be used with stream oriented transports.",
    "every message over TCP or TLS carries Content-Length",
    AppliesTo(transports=frozenset({"stream"})),
)
def content_length_on_stream(msg: Request | Response, ctx: Context) -> Iterator[Issue]:
    if ctx.transport == "stream" and not msg.has_header("Content-Length"):
        yield Issue("no Content-Length on a stream transport")


@message_rule(
    "3261-20.14-content-length-present",
    SHOULD,
    """Applications SHOULD use this field to indicate the size of the message-body to be transferred, regardless of
    the media type of the entity.""",
    "messages over datagram transports carry Content-Length too",
    AppliesTo(transports=frozenset({"datagram"})),
    note="Tables 2 and 3 mark Content-Length 't': SHOULD, MUST over stream transports (3261-18.3-content-length-on-"
    "stream).",
)
def content_length_present(msg: Request | Response, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("Content-Length"):
        yield Issue("no Content-Length")


@message_rule(
    "3261-20.14-content-length-value",
    MUST,
    """The Content-Length header field indicates the size of the message-body, in decimal number of octets, sent to
    the recipient.""",
    "Content-Length equals the number of body octets sent",
    AppliesTo(),
    note="The sentence is a definition, not a 2119 statement; a wrong value makes the receiver cut or wait (§18.3), so "
    "the rule is MUST. On a stream the framer cuts at Content-Length, so only a datagram can show a mismatch. "
    "'If no body is present in a message, then the Content-Length header field value MUST be set to zero.'",
)
def content_length_value(msg: Request | Response, ctx: Context) -> Iterator[Issue]:
    declared = msg.content_length
    if declared is None:
        return
    sent = len(msg.body) + len(msg.trailing)
    if declared != sent:
        yield Issue(f"Content-Length says {declared} but {sent} body octets were sent")


_SYNTAX_SENTENCE = """All of the mechanisms specified in this document are described in both prose and an augmented
    Backus-Naur Form (BNF) defined in RFC 2234 [10]."""
#: Defect codes that have a rule of their own, so the syntax rules do not report them twice.
_OWN_RULE = frozenset({"missing-header", "missing-content-length", "content-length-mismatch", "cseq-method-mismatch"})


@message_rule(
    "3261-25-syntax",
    MUST,
    _SYNTAX_SENTENCE,
    "what the device sends parses without a fatal defect",
    AppliesTo(),
    note="Wraps the parser's defects that make a message unusable (DEFECT_CODES with fatal=True): a device must send "
    "syntactically valid SIP (§7, §25). The §25 sentence has no 2119 keyword; the grammar is normative. A message "
    "whose start line cannot be read at all is reported under this rule by the trace engine.",
)
def syntax(msg: Request | Response, ctx: Context) -> Iterator[Issue]:
    fatal = [d for d in msg.defects if d.fatal and d.code not in _OWN_RULE]
    if fatal:
        yield Issue("; ".join(str(d) for d in fatal))


@message_rule(
    "3261-25-syntax-minor",
    SHOULD,
    _SYNTAX_SENTENCE,
    "what the device sends has no tolerable grammar defect either",
    AppliesTo(),
    note="The parser's non-fatal defects (a malformed Date, a bare LF, a non-token option tag ...): still outside the "
    "§25 grammar, but a tolerant receiver copes, so reported as SHOULD.",
)
def syntax_minor(msg: Request | Response, ctx: Context) -> Iterator[Issue]:
    minor = [d for d in msg.defects if not d.fatal and d.code not in _OWN_RULE]
    if minor:
        yield Issue("; ".join(str(d) for d in minor))


# ---------------------------------------------------------------------------------------------------------------------
# Responses: what is copied from the request (§8.2.6.2)
# ---------------------------------------------------------------------------------------------------------------------

_COPY = """The From field of the response MUST equal the From header field of the request.  The Call-ID header field
    of the response MUST equal the Call-ID header field of the request.  The CSeq header field of the response MUST
    equal the CSeq field of the request.  The Via header field values in the response MUST equal the Via header
    field values in the request and MUST maintain the same ordering."""


@message_rule(
    "3261-20-response-mandatory-headers",
    MUST,
    """A mandatory response header field MUST be present in the response, and the header field MUST be understood by
    the UAC processing the response.""",
    "every response carries To, From, CSeq, Call-ID and Via",
    AppliesTo(kind=RSP, roles=UAS_PROXY),
)
def response_mandatory(msg: Response, ctx: Context) -> Iterator[Issue]:
    missing = _missing(msg, _MANDATORY_RESPONSE)
    if missing:
        yield Issue(f"{msg.status} response without {', '.join(missing)}")


@message_rule(
    "3261-8.2.6.2-from-copied",
    MUST,
    "The From field of the response MUST equal the From header field of the request.",
    "the response's From equals the request's",
    AppliesTo(kind=RSP, roles=UAS),
    note="Equality per §20.20: URI (scheme and host case-insensitive) and parameters; display name ignored.",
)
def from_copied(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or req.from_ is None or msg.from_ is None:
        return
    if not same_name_addr(req.from_, msg.from_):
        yield Issue(f"From is {msg.from_.raw!r}, the request had {req.from_.raw!r}")


@message_rule(
    "3261-8.2.6.2-call-id-copied",
    MUST,
    "The Call-ID header field of the response MUST equal the Call-ID header field of the request.",
    "the response's Call-ID equals the request's, byte for byte",
    AppliesTo(kind=RSP, roles=UAS),
)
def call_id_copied(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None:
        return
    if (req.header("Call-ID") or "") != (msg.header("Call-ID") or ""):
        yield Issue(f"Call-ID is {msg.header('Call-ID')!r}, the request had {req.header('Call-ID')!r}")


@message_rule(
    "3261-8.2.6.2-cseq-copied",
    MUST,
    "The CSeq header field of the response MUST equal the CSeq field of the request.",
    "the response's CSeq equals the request's (number and method)",
    AppliesTo(kind=RSP, roles=UAS),
)
def cseq_copied(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None:
        return
    a, b = raw_cseq(req), raw_cseq(msg)
    if a is not None and a != b:
        seen = f"{b[0]} {b[1]}" if b else repr(msg.header("CSeq"))
        yield Issue(f"CSeq is {seen}, the request had {a[0]} {a[1]}")


@message_rule(
    "3261-8.2.6.2-via-copied",
    MUST,
    "The Via header field values in the response MUST equal the Via header field values in the request and MUST "
    "maintain the same ordering.",
    "the response's Via values equal the request's, in order",
    AppliesTo(kind=RSP, roles=UAS),
    note="The received and rport parameters the server adds to the top Via (§18.2.1, RFC 3581 §4) are not compared.",
)
def via_copied(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None:
        return
    for i, (a, b) in enumerate(zip(req.via, msg.via, strict=False)):
        if not via_equal(a, b, top=i == 0):
            yield Issue(f"Via #{i + 1} is {b.raw!r}, the request had {a.raw!r}")
            return


@message_rule(
    "3261-8.2.6.2-via-count",
    MUST,
    "The Via header field values in the response MUST equal the Via header field values in the request and MUST "
    "maintain the same ordering.",
    "the response has as many Via values as the request",
    AppliesTo(kind=RSP, roles=UAS),
)
def via_count(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is not None and len(req.via) != len(msg.via):
        yield Issue(f"{len(msg.via)} Via values, the request had {len(req.via)}")


@message_rule(
    "3261-8.2.6.2-to-copied",
    MUST,
    "If a request contained a To tag in the request, the To header field in the response MUST equal that of the "
    "request.",
    "a request with a To tag gets its To back unchanged",
    AppliesTo(kind=RSP, roles=UAS),
)
def to_copied(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or req.to is None or not req.to.tag or msg.to is None:
        return
    if not same_name_addr(req.to, msg.to):
        yield Issue(f"To is {msg.to.raw!r}, the request had {req.to.raw!r}")


_TO_TAG = """However, if the To header field in the request did not contain a tag, the URI in the To header field in
    the response MUST equal the URI in the To header field; additionally, the UAS MUST add a tag to the To header
    field in the response (with the exception of the 100 (Trying) response, in which a tag MAY be present)."""


@message_rule(
    "3261-8.2.6.2-to-tag",
    MUST,
    _TO_TAG,
    "every response but 100 to a request without To tag adds one",
    AppliesTo(kind=RSP, statuses=((101, 699),), roles=UAS),
)
def to_tag_added(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or req.to is None or req.to.tag or msg.to is None:
        return
    if not msg.to.tag:
        yield Issue(f"{msg.status} response to a request without To tag has no To tag: {msg.to.raw!r}")


@message_rule(
    "3261-8.2.6.2-to-uri",
    MUST,
    _TO_TAG,
    "a request without To tag gets the same To URI back",
    AppliesTo(kind=RSP, roles=UAS),
)
def to_uri(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or req.to is None or req.to.tag or msg.to is None:
        return
    if norm_uri(req.to.uri_text) != norm_uri(msg.to.uri_text):
        yield Issue(f"To URI is {msg.to.uri_text!r}, the request had {req.to.uri_text!r}")


@message_rule(
    "3261-17.2.1-trying-no-to-tag",
    SHOULD,
    """The 100 (Trying) response is constructed according to the procedures in Section 8.2.6, except that the
    insertion of tags in the To header field of the response (when none was present in the request) is downgraded
    from MAY to SHOULD NOT.""",
    "a 100 Trying to an INVITE without To tag adds none",
    AppliesTo(kind=RSP, methods=frozenset({"INVITE"}), statuses=((100, 100),), roles=UAS),
    note="RFC-NOTES.md (§2) says the tag 'MAY' be present on a 100; that is §8.2.6.2 in general. For the INVITE server "
    "transaction §17.2.1 downgrades it to SHOULD NOT, and the RFC wins.",
)
def trying_no_to_tag(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is not None and req.to is not None and not req.to.tag and msg.to is not None and msg.to.tag:
        yield Issue(f"100 Trying adds To tag {msg.to.tag!r}")


@message_rule(
    "3261-8.2.6.1-timestamp-in-100",
    MUST,
    """When a 100 (Trying) response is generated, any Timestamp header field present in the request MUST be copied
    into this 100 (Trying) response.""",
    "a 100 Trying copies the request's Timestamp",
    AppliesTo(kind=RSP, statuses=((100, 100),), roles=UAS),
    note="A delay value may follow the copied timestamp (§8.2.6.1: 'the UAS SHOULD add a delay value').",
)
def timestamp_in_100(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    ts = req.header("Timestamp") if req is not None else None
    if ts is None:
        return
    got = msg.header("Timestamp")
    if got is None:
        yield Issue(f"the request had Timestamp: {ts}, the 100 has none")
    elif got.split()[:1] != ts.split()[:1]:
        yield Issue(f"Timestamp is {got!r}, the request had {ts!r}")


@message_rule(
    "3261-8.2.6.1-no-provisional-non-invite",
    SHOULD,
    """One largely non-method-specific guideline for the generation of responses is that UASs SHOULD NOT issue a
    provisional response for a non-INVITE request.""",
    "no 1xx to a non-INVITE request",
    AppliesTo(kind=RSP, statuses=((100, 199),), roles=UAS),
)
def no_provisional_non_invite(msg: Response, ctx: Context) -> Iterator[Issue]:
    method = _method(msg)
    if method is not None and method != "INVITE":
        yield Issue(f"{msg.status} provisional response to {method}")


@message_rule(
    "3261-17-no-response-to-ack",
    MUST,
    """The client transaction is also responsible for receiving responses and delivering them to the TU, filtering out
    any response retransmissions or disallowed responses (such as a response to ACK).""",
    "an ACK is never answered",
    AppliesTo(kind=RSP),
    note="The RFC calls a response to ACK 'disallowed' without a 2119 keyword; §17.1 adds 'There is no client "
    "transaction for ACK.'",
)
def no_response_to_ack(msg: Response, ctx: Context) -> Iterator[Issue]:
    if _method(msg) == "ACK":
        yield Issue(f"{msg.status} response to an ACK")


# ---------------------------------------------------------------------------------------------------------------------
# Responses: header fields some statuses must carry
# ---------------------------------------------------------------------------------------------------------------------


@message_rule(
    "3261-8.2.1-allow-in-405",
    MUST,
    "The UAS MUST also add an Allow header field to the 405 (Method Not Allowed) response.",
    "a 405 lists the allowed methods",
    AppliesTo(kind=RSP, statuses=((405, 405),), roles=UAS),
)
def allow_in_405(msg: Response, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("Allow"):
        yield Issue("405 without Allow")


@message_rule(
    "3261-8.2.2.3-unsupported-in-420",
    MUST,
    """The UAS MUST add an Unsupported header field, and list in it those options it does not understand amongst those
    in the Require header field of the request.""",
    "a 420 lists, in Unsupported, option tags taken from the request's Require",
    AppliesTo(kind=RSP, statuses=((420, 420),), roles=UAS),
)
def unsupported_in_420(msg: Response, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("Unsupported"):
        yield Issue("420 without Unsupported")
        return
    listed = option_tags(msg, "Unsupported")
    if not listed:
        yield Issue("420 with an empty Unsupported")
    elif ctx.request is not None:
        required = option_tags(ctx.request, "Require") | option_tags(ctx.request, "Proxy-Require")
        extra = sorted(listed - required)
        if extra:
            yield Issue(f"Unsupported lists {', '.join(extra)}, not in the request's Require ({sorted(required)})")


@message_rule(
    "3261-8.2.4-require-in-421",
    MUST,
    "The needed extension(s) MUST be included in a Require header field in the response.",
    "a 421 names the extension it needs in Require",
    AppliesTo(kind=RSP, statuses=((421, 421),), roles=UAS),
)
def require_in_421(msg: Response, ctx: Context) -> Iterator[Issue]:
    if not option_tags(msg, "Require"):
        yield Issue("421 without an option tag in Require")


@message_rule(
    "3261-8.2.4-extension-supported",
    MUST,
    """Of course, the server MUST NOT apply extensions not listed in the Supported header field in the request.""",
    "a response requires only extensions the request supported",
    AppliesTo(kind=RSP, roles=UAS),
    note="Tags the request listed in Require count as supported. A 421 is exempt: it names what the request lacks.",
)
def extension_supported(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or msg.status == 421:
        return
    applied = option_tags(msg, "Require")
    offered = option_tags(req, "Supported") | option_tags(req, "Require")
    extra = sorted(applied - offered)
    if extra:
        yield Issue(f"Require: {', '.join(extra)} in a {msg.status}, not in the request's Supported {sorted(offered)}")


@message_rule(
    "3261-8.2.3-accept-in-415",
    MUST,
    """The response MUST contain an Accept header field listing the types of all bodies it understands, in the event
    the request contained bodies of types not supported by the UAS.""",
    "a 415 to a request with a body lists the acceptable types",
    AppliesTo(kind=RSP, statuses=((415, 415),), roles=UAS),
    note="Judged when the request had a body and neither Content-Encoding nor Content-Language, so that the type is "
    "what the 415 can be about (an encoding calls for Accept-Encoding, a language for Accept-Language).",
)
def accept_in_415(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or not req.body or req.has_header("Content-Encoding") or req.has_header("Content-Language"):
        return
    if not msg.has_header("Accept"):
        yield Issue("415 to a request with a body, without Accept")


@message_rule(
    "3261-10.3-min-expires-in-423",
    MUST,
    """This response MUST contain a Min-Expires header field that states the minimum expiration interval the
    registrar is willing to honor.""",
    "a 423 to REGISTER carries Min-Expires",
    AppliesTo(kind=RSP, methods=frozenset({"REGISTER"}), statuses=((423, 423),), roles=UAS),
)
def min_expires_in_423(msg: Response, ctx: Context) -> Iterator[Issue]:
    if msg.min_expires is None:
        yield Issue("423 without a valid Min-Expires")


_MANDATORY_RESPONSE_SENTENCE = """A mandatory response header field MUST be present in the response, and the header
    field MUST be understood by the UAC processing the response."""
_CHALLENGED = frozenset({"BYE", "INVITE", "OPTIONS", "REGISTER"})


@message_rule(
    "3261-20-www-authenticate-in-401",
    MUST,
    _MANDATORY_RESPONSE_SENTENCE,
    "a 401 carries WWW-Authenticate (Table 3: m)",
    AppliesTo(kind=RSP, methods=_CHALLENGED, statuses=((401, 401),), roles=UAS),
)
def www_authenticate_in_401(msg: Response, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("WWW-Authenticate"):
        yield Issue("401 without WWW-Authenticate")


@message_rule(
    "3261-20-proxy-authenticate-in-407",
    MUST,
    _MANDATORY_RESPONSE_SENTENCE,
    "a 407 carries Proxy-Authenticate (Table 3: m)",
    AppliesTo(kind=RSP, methods=_CHALLENGED, statuses=((407, 407),), roles=UAS_PROXY),
)
def proxy_authenticate_in_407(msg: Response, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("Proxy-Authenticate"):
        yield Issue("407 without Proxy-Authenticate")


def _establishes_dialog(msg: Response) -> bool:
    """§12.1: "only 2xx and 101-199 responses with a To tag, where the request was INVITE, will establish a dialog"."""
    if _method(msg) != "INVITE":
        return False
    if 200 <= msg.status < 300:
        return True
    return 101 <= msg.status <= 199 and msg.to is not None and bool(msg.to.tag)


@message_rule(
    "3261-12.1.1-contact-in-2xx",
    MUST,
    "The UAS MUST add a Contact header field to the response.",
    "a 2xx to INVITE carries Contact",
    AppliesTo(kind=RSP, methods=frozenset({"INVITE"}), statuses=((200, 299),), roles=UAS),
)
def contact_in_2xx(msg: Response, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("Contact"):
        yield Issue(f"{msg.status} to INVITE without Contact")


@message_rule(
    "3261-13.3.1.1-contact-in-1xx",
    MUST,
    """These provisional responses establish early dialogs and therefore follow the procedures of Section 12.1.1 in
    addition to those of Section 8.2.6.""",
    "a 101-199 with To tag to INVITE (early dialog) carries Contact",
    AppliesTo(kind=RSP, methods=frozenset({"INVITE"}), statuses=((101, 199),), roles=UAS),
    note="Table 2 of §20 marks Contact optional (o) in 1xx; the prose of §13.3.1.1 applies §12.1.1 ('The UAS MUST add "
    "a Contact header field to the response') to early-dialog responses, and prose wins over the summary table.",
)
def contact_in_1xx(msg: Response, ctx: Context) -> Iterator[Issue]:
    if _establishes_dialog(msg) and not msg.has_header("Contact"):
        yield Issue(f"{msg.status} with To tag {msg.to.tag if msg.to else ''!r} to INVITE without Contact")


@message_rule(
    "3261-12.1.1-contact-sip-uri",
    MUST,
    "The URI provided in the Contact header field MUST be a SIP or SIPS URI.",
    "the Contact of a dialog-establishing response is one SIP or SIPS URI",
    AppliesTo(kind=RSP, methods=frozenset({"INVITE"}), statuses=((101, 299),), roles=UAS),
)
def contact_sip_uri(msg: Response, ctx: Context) -> Iterator[Issue]:
    if not _establishes_dialog(msg) or not msg.has_header("Contact"):
        return
    if msg.contact_star:
        yield Issue("Contact: * in a dialog-establishing response")
    for c in msg.contact:
        if _uri_scheme(c.uri_text) not in ("sip", "sips"):
            yield Issue(f"Contact URI {c.uri_text!r} is not a SIP or SIPS URI")


@message_rule(
    "3261-12.1.1-contact-sips",
    MUST,
    """If the request that initiated the dialog contained a SIPS URI in the Request-URI or in the top Record-Route
    header field value, if there was any, or the Contact header field if there was no Record-Route header field, the
    Contact header field in the response MUST be a SIPS URI.""",
    "a dialog on a SIPS request gets a SIPS Contact",
    AppliesTo(kind=RSP, methods=frozenset({"INVITE"}), statuses=((101, 299),), roles=UAS),
)
def contact_sips_response(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or not _establishes_dialog(msg) or not msg.contact:
        return
    rr = req.record_route
    secure = _uri_scheme(req.uri_text) == "sips"
    if rr:
        secure = secure or _uri_scheme(rr[0].uri_text) == "sips"
    elif req.contact:
        secure = secure or _uri_scheme(req.contact[0].uri_text) == "sips"
    if secure and _uri_scheme(msg.contact[0].uri_text) != "sips":
        yield Issue(f"the request was SIPS but the Contact is {msg.contact[0].uri_text!r}")


@message_rule(
    "3261-12.1.1-record-route-copied",
    MUST,
    """When a UAS responds to a request with a response that establishes a dialog (such as a 2xx to INVITE), the UAS
    MUST copy all Record-Route header field values from the request into the response (including the URIs, URI
    parameters, and any Record-Route header field parameters, whether they are known or unknown to the UAS) and MUST
    maintain the order of those values.""",
    "a dialog-establishing response copies Record-Route, in order",
    AppliesTo(kind=RSP, methods=frozenset({"INVITE"}), statuses=((101, 299),), roles=UAS),
)
def record_route_copied(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or not _establishes_dialog(msg):
        return
    want = [(norm_uri(r.uri_text), param_map(r.params)) for r in req.record_route]
    got = [(norm_uri(r.uri_text), param_map(r.params)) for r in msg.record_route]
    if want != got:
        yield Issue(
            f"Record-Route is {[r.raw for r in msg.record_route]}, the request had {[r.raw for r in req.record_route]}"
        )


@message_rule(
    "3261-13.3.1.4-allow-supported-in-2xx",
    SHOULD,
    """A 2xx response to an INVITE SHOULD contain the Allow header field and the Supported header field, and MAY
    contain the Accept header field.""",
    "a 2xx to INVITE carries Allow and Supported",
    AppliesTo(kind=RSP, methods=frozenset({"INVITE"}), statuses=((200, 299),), roles=UAS),
)
def allow_supported_in_2xx(msg: Response, ctx: Context) -> Iterator[Issue]:
    missing = _missing(msg, ("Allow", "Supported"))
    if missing:
        yield Issue(f"{msg.status} to INVITE without {', '.join(missing)}")


@message_rule(
    "3261-11.2-options-2xx-headers",
    SHOULD,
    """Allow, Accept, Accept-Encoding, Accept-Language, and Supported header fields SHOULD be present in a 200 (OK)
    response to an OPTIONS request.""",
    "a 2xx to OPTIONS describes the capabilities",
    AppliesTo(kind=RSP, methods=frozenset({"OPTIONS"}), statuses=((200, 299),), roles=UAS_PROXY),
    note="Table 2 marks all five m* in any 2xx to OPTIONS, the prose says 200; the rule follows the table. A proxy "
    "'SHOULD' omit Allow (§11.2), so Allow is not asked of role proxy.",
)
def options_2xx_headers(msg: Response, ctx: Context) -> Iterator[Issue]:
    names: tuple[str, ...] = ("Accept", "Accept-Encoding", "Accept-Language", "Supported")
    if ctx.role != "proxy":
        names = ("Allow", *names)
    missing = _missing(msg, names)
    if missing:
        yield Issue(f"{msg.status} to OPTIONS without {', '.join(missing)}")


@message_rule(
    "3261-20.5-allow-complete",
    MUST,
    """All methods, including ACK and CANCEL, understood by the UA MUST be included in the list of methods in the
    Allow header field, when present.""",
    "an Allow header lists every method the UA evidently understands",
    AppliesTo(roles=UA),
    note="What the UA understands is inferred: INVITE implies ACK, CANCEL and BYE (§13: 'A UA that supports INVITE "
    "MUST also support ACK, CANCEL and BYE'); every UA supports OPTIONS (§11: 'All UAs MUST support the OPTIONS "
    "method'); a method the UA answered with 2xx is understood.",
    heuristic=True,
)
def allow_complete(msg: Request | Response, ctx: Context) -> Iterator[Issue]:
    if not msg.has_header("Allow"):
        return
    allowed = {m.upper() for v in msg.header_values("Allow") for m in (p.strip() for p in v.split(",")) if m}
    needed = {"OPTIONS"}
    if "INVITE" in allowed:
        needed |= {"ACK", "CANCEL", "BYE"}
    if isinstance(msg, Response) and 200 <= msg.status < 300:
        method = _method(msg)
        if method and method not in ("ACK", "CANCEL"):
            needed.add(method.upper())
    missing = sorted(needed - allowed)
    if missing:
        yield Issue(f"Allow: {', '.join(sorted(allowed))} lacks {', '.join(missing)}")


# ---------------------------------------------------------------------------------------------------------------------
# Registrar (§10.3)
# ---------------------------------------------------------------------------------------------------------------------


@message_rule(
    "3261-10.3-contact-expires",
    MUST,
    """Each Contact value MUST feature an "expires" parameter indicating its expiration interval chosen by the
    registrar.""",
    "every Contact in a 2xx to REGISTER has an expires parameter",
    AppliesTo(kind=RSP, methods=frozenset({"REGISTER"}), statuses=((200, 299),), roles=REGISTRAR),
)
def register_contact_expires(msg: Response, ctx: Context) -> Iterator[Issue]:
    bare = [c.raw for c in msg.contact if c.param("expires") is None]
    if bare:
        yield Issue(f"Contact values without expires: {bare}")


@message_rule(
    "3261-10.3-bindings-listed",
    MUST,
    "The response MUST contain Contact header field values enumerating all current bindings.",
    "a 2xx to REGISTER lists the bindings the request just made",
    AppliesTo(kind=RSP, methods=frozenset({"REGISTER"}), statuses=((200, 299),), roles=REGISTRAR),
    note="Only the bindings of the request being answered are known to the rule: each Contact it registered with a "
    "non-zero expiration must be listed (URIs compared by scheme, user, host and port).",
)
def register_bindings(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or req.contact_star:
        return
    req_expires = req.expires
    listed = {_binding_key(c.uri_text) for c in msg.contact}
    for c in req.contact:
        expires = c.expires if c.param("expires") is not None else req_expires
        if expires == 0:
            continue
        if _binding_key(c.uri_text) not in listed:
            yield Issue(f"the request registered {c.uri_text!r}, the 2xx does not list it")


def _binding_key(uri_text: str) -> tuple[str, str | None, str, int | None] | str:
    uri, _ = parse_uri(uri_text)
    if isinstance(uri, SipURI):
        return uri.scheme.lower(), uri.user, uri.host.lower(), uri.port
    return norm_uri(uri_text)


@message_rule(
    "3261-10.3-no-record-route",
    MUST,
    "Registrars MUST NOT include a Record-Route header field in any response to a REGISTER request.",
    "no Record-Route in responses to REGISTER",
    AppliesTo(kind=RSP, methods=frozenset({"REGISTER"}), roles=REGISTRAR),
)
def register_no_record_route(msg: Response, ctx: Context) -> Iterator[Issue]:
    if msg.has_header("Record-Route"):
        yield Issue(f"{msg.status} to REGISTER carries Record-Route")


@message_rule(
    "3261-10.3-no-6xx",
    MUST,
    "A registrar MUST not generate 6xx responses.",
    "a registrar never answers 6xx",
    AppliesTo(kind=RSP, methods=frozenset({"REGISTER"}), statuses=((600, 699),), roles=REGISTRAR),
)
def register_no_6xx(msg: Response, ctx: Context) -> Iterator[Issue]:
    yield Issue(f"registrar answered REGISTER with {msg.status}")


# ---------------------------------------------------------------------------------------------------------------------
# received / rport (§18.2.1, RFC 3581)
# ---------------------------------------------------------------------------------------------------------------------


def _top_vias(msg: Response, ctx: Context) -> tuple[Via, Via, tuple[str, int]] | None:
    req, source = ctx.request, ctx.request_source
    if req is None or source is None or not req.via or not msg.via:
        return None
    return req.via[0], msg.via[0], source


@message_rule(
    "3261-18.2.1-received",
    MUST,
    """If the host portion of the "sent-by" parameter contains a domain name, or if it contains an IP address that
    differs from the packet source address, the server MUST add a "received" parameter to that Via header field
    value.""",
    "the top Via of the response says where the request came from, when sent-by does not",
    AppliesTo(kind=RSP, roles=UAS_PROXY),
    note="The response copies the request's Via as the server transport amended it, so the received parameter shows "
    "in the response's top Via. Needs the request's source address (the engine takes it from the trace).",
)
def received_added(msg: Response, ctx: Context) -> Iterator[Issue]:
    vias = _top_vias(msg, ctx)
    if vias is None:
        return
    req_via, rsp_via, (src_host, _) = vias
    host = req_via.host.strip("[]").lower()
    if host == src_host.lower():
        return
    received = rsp_via.received
    if received is None:
        yield Issue(f"request sent-by {req_via.host!r} differs from its source {src_host}, no received parameter")
    elif received.strip("[]").lower() != src_host.lower():
        yield Issue(f"received={received}, the request came from {src_host}")


@message_rule(
    "3581-4-rport",
    MUST,
    """If this Via header field value contains an "rport" parameter with no value, it MUST set the value of the
    parameter to the source port of the request.""",
    "an empty rport in the request comes back as the request's source port",
    AppliesTo(kind=RSP, roles=UAS_PROXY),
    note="RFC 3581 binds servers compliant to it; it fires only when the tester's request carries an empty rport, so a "
    "test that must not judge RFC 3581 support sends none. Needs the request's source address (from the trace).",
)
def rport_filled(msg: Response, ctx: Context) -> Iterator[Issue]:
    vias = _top_vias(msg, ctx)
    if vias is None:
        return
    req_via, rsp_via, (_, src_port) = vias
    if req_via.rport is not True:
        return
    got = rsp_via.rport
    if got is None or got is True:
        yield Issue(f"the request asked for rport, the response's top Via {rsp_via.raw!r} has no rport value")
    elif got != src_port:
        yield Issue(f"rport={got}, the request came from port {src_port}")


@message_rule(
    "3581-4-received",
    MUST,
    """In fact, the server MUST insert a "received" parameter containing the source IP address that the request came
    from, even if it is identical to the value of the "sent-by" component.""",
    "a request with rport gets received, even when sent-by is the source address",
    AppliesTo(kind=RSP, roles=UAS_PROXY),
    note="Like 3581-4-rport, judged only when the tester's request carries an empty rport.",
)
def rport_received(msg: Response, ctx: Context) -> Iterator[Issue]:
    vias = _top_vias(msg, ctx)
    if vias is None:
        return
    req_via, rsp_via, (src_host, _) = vias
    if req_via.rport is not True:
        return
    received = rsp_via.received
    if received is None:
        yield Issue(f"the request asked for rport, the response's top Via {rsp_via.raw!r} has no received parameter")
    elif received.strip("[]").lower() != src_host.lower():
        yield Issue(f"received={received}, the request came from {src_host}")


# ---------------------------------------------------------------------------------------------------------------------
# Tags (§19.3)
# ---------------------------------------------------------------------------------------------------------------------

_ALPHABETS = (("0123456789", 10), ("0123456789abcdef", 16), ("0123456789abcdefghijklmnopqrstuvwxyz", 36))


def tag_entropy_bits(tag: str) -> float:
    """An upper bound of the randomness a tag can hold, from its length and the smallest alphabet it fits.

    Decimal digits hold log2(10) bits a character, hex digits 4, case-insensitive alphanumerics log2(36), anything
    richer log2(72) (the token characters). A repeated single character holds nothing.
    """
    if len(set(tag)) <= 1:
        return 0.0
    low = tag.lower()
    size = 72
    for alphabet, n in _ALPHABETS:
        if all(c in alphabet for c in low):
            size = n
            break
    return len(tag) * math.log2(size)


def _fresh_tag(msg: Request | Response, ctx: Context) -> str | None:
    """The tag this message introduces: the From tag of a request outside a dialog, the To tag a response adds."""
    if isinstance(msg, Request):
        if msg.to is not None and msg.to.tag:
            return None
        return msg.from_.tag if msg.from_ is not None else None
    req = ctx.request
    if req is None or req.to is None or req.to.tag or msg.to is None:
        return None
    return msg.to.tag


@message_rule(
    "3261-19.3-tag-random",
    SHOULD,
    """When a tag is generated by a UA for insertion into a request or response, it MUST be globally unique and
    cryptographically random with at least 32 bits of randomness.""",
    "new tags look like 32 random bits or more (heuristic on length and alphabet)",
    AppliesTo(roles=UA),
    note="A heuristic: randomness cannot be seen in one value, only its capacity. A tag fails when its length times "
    "log2(alphabet size) is under 32 bits (fewer than 10 decimal digits, 8 hex digits or 7 alphanumerics) or it is "
    "one repeated character. Reported as SHOULD because passing proves nothing; the RFC requirement is MUST.",
    heuristic=True,
)
def tag_random(msg: Request | Response, ctx: Context) -> Iterator[Issue]:
    tag = _fresh_tag(msg, ctx)
    if tag is None:
        return
    bits = tag_entropy_bits(tag)
    if bits < 32:
        where = "From" if isinstance(msg, Request) else "To"
        yield Issue(f"{where} tag {tag!r} can hold at most {bits:.1f} bits of randomness, fewer than 32")


# ---------------------------------------------------------------------------------------------------------------------
# RFC 3262: reliable provisional responses, per message
# ---------------------------------------------------------------------------------------------------------------------


def is_reliable_provisional(msg: Response) -> bool:
    """RFC 3262 §4: a provisional response whose Require lists 100rel was sent reliably; an RSeq says the same."""
    return 100 <= msg.status <= 199 and ("100rel" in option_tags(msg, "Require") or msg.has_header("RSeq"))


@message_rule(
    "3262-3-reliable-headers",
    MUST,
    """In addition, it MUST contain a Require header field containing the option tag 100rel, and MUST include an RSeq
    header field.""",
    "a reliable 1xx carries both Require: 100rel and RSeq",
    AppliesTo(kind=RSP, statuses=((101, 199),), roles=UAS),
)
def reliable_headers(msg: Response, ctx: Context) -> Iterator[Issue]:
    has_tag = "100rel" in option_tags(msg, "Require")
    has_rseq = msg.has_header("RSeq")
    if has_tag and not has_rseq:
        yield Issue(f"{msg.status} with Require: 100rel has no RSeq")
    elif has_rseq and not has_tag:
        yield Issue(f"{msg.status} with RSeq: {msg.header('RSeq')} has no Require: 100rel")


@message_rule(
    "3262-3-no-reliable-100",
    MUST,
    """A UAS MUST NOT attempt to send a 100 (Trying) response reliably.""",
    "a 100 Trying carries neither Require: 100rel nor RSeq",
    AppliesTo(kind=RSP, statuses=((100, 100),), roles=UAS),
    note="RFC 3262 §3 continues: 'Only provisional responses numbered 101 to 199 may be sent reliably.' RFC-NOTES.md "
    "cites this as §4 (errata 4605 quote); the UAS requirement is in §3.",
)
def no_reliable_100(msg: Response, ctx: Context) -> Iterator[Issue]:
    if is_reliable_provisional(msg):
        yield Issue("100 Trying sent with Require: 100rel or RSeq")


@message_rule(
    "3262-3-reliable-needs-offer",
    MUST,
    """If the request did not include either a Supported or Require header field indicating this feature, the UAS
    MUST NOT send the provisional response reliably.""",
    "a 1xx is reliable only if the request offered 100rel",
    AppliesTo(kind=RSP, statuses=((101, 199),), roles=UAS),
)
def reliable_needs_offer(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or not is_reliable_provisional(msg):
        return
    if "100rel" not in option_tags(req, "Supported") | option_tags(req, "Require"):
        yield Issue(f"reliable {msg.status} to a request without 100rel in Supported or Require")


@message_rule(
    "3262-3-reliable-when-required",
    MUST,
    """The UAS MUST send any non-100 provisional response reliably if the initial request contained a Require header
    field with the option tag 100rel.""",
    "Require: 100rel in the INVITE makes every 101-199 reliable",
    AppliesTo(kind=RSP, methods=frozenset({"INVITE"}), statuses=((101, 199),), roles=UAS),
)
def reliable_when_required(msg: Response, ctx: Context) -> Iterator[Issue]:
    req = ctx.request
    if req is None or "100rel" not in option_tags(req, "Require"):
        return
    if not ("100rel" in option_tags(msg, "Require") and msg.has_header("RSeq")):
        yield Issue(f"unreliable {msg.status} to an INVITE with Require: 100rel")


RULES: tuple[Rule, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Rule))

assert all(code in DEFECT_CODES for code in _OWN_RULE)
