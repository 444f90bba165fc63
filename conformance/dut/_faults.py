"""The fault switches of the reference device, as data.

Each :class:`FaultDef` names one thing the device does wrong when ``--fault NAME`` is given, the rule ids of the
catalogue (``conformance/checks``) it violates, the roles it affects and, for faults no catalogue rule judges yet,
the section and the RFC sentence it breaks. ``docs/reference-device.md`` and ``sipcert dut --list-faults`` are
generated from :data:`FAULT_TABLE`; the device code asks ``config.fault("name")``.

Robustness faults (``kind`` ``crash`` or ``hang``) are for the fuzzer: on one class of input the device dies by
SIGABRT (``os.abort()``) or stops answering everything, and on nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FaultDef", "FAULT_TABLE", "FAULTS", "FaultKind", "fault_names", "faults_for_role", "UnknownFault"]

FaultKind = Literal["conformance", "crash", "hang"]


@dataclass(frozen=True, slots=True)
class FaultDef:
    """One fault switch: what breaks, which catalogue rules it violates, where."""

    name: str
    #: Rule ids of ``conformance.checks`` the fault makes the device violate (empty: no rule judges it yet).
    rules: tuple[str, ...]
    summary: str
    #: Roles of the device in which the fault has an effect.
    roles: tuple[str, ...] = ("uas",)
    kind: FaultKind = "conformance"
    #: For a fault without rules (and every robustness fault): the section and the RFC sentence it breaks.
    section: str = ""
    sentence: str = ""

    @property
    def robustness(self) -> bool:
        return self.kind != "conformance"


class UnknownFault(ValueError):
    """A fault name that is not in the table; the message lists the valid names."""


_UAS = ("uas",)
_UAS_REG = ("uas", "registrar")
_REG = ("registrar",)
_UAC = ("uac",)
_PROXY = ("proxy",)
_ANY = ("uas", "uac", "registrar", "proxy")


def _f(
    name: str,
    rules: tuple[str, ...],
    summary: str,
    roles: tuple[str, ...] = _UAS,
    *,
    kind: FaultKind = "conformance",
    section: str = "",
    sentence: str = "",
) -> FaultDef:
    return FaultDef(name, rules, summary, roles, kind, section, " ".join(sentence.split()))


_S_8_2 = """Note that request processing is atomic.  If a request is accepted, all state changes associated with it
MUST be performed.  If it is rejected, all state changes MUST NOT be performed."""
_S_400 = """The request could not be understood due to malformed syntax.  The Reason-Phrase SHOULD identify the syntax
problem in more detail, for example, "Missing Call-ID header field"."""

#: Every fault switch, grouped by what it breaks.
FAULT_TABLE: tuple[FaultDef, ...] = (
    # -- responses: what is copied from the request (RFC 3261 §8.2.6.2) ------------------------------------------
    _f("no-to-tag", ("3261-8.2.6.2-to-tag",), "responses other than 100 to a request without To tag get no To tag",
       _UAS_REG),
    _f("unstable-to-tag", ("3261-8.2.6.2-to-tag-stable",), "the 2xx to INVITE has another To tag than the 180",
       _UAS),
    _f("trying-to-tag", ("3261-17.2.1-trying-no-to-tag",), "100 Trying to INVITE adds a To tag", _UAS),
    _f("to-uri-changed", ("3261-8.2.6.2-to-uri",), "the To URI of responses differs from the request's (user part "
       "changed)", _UAS_REG),
    _f("to-changed", ("3261-8.2.6.2-to-copied",), "responses to in-dialog requests carry an extra To parameter",
       _UAS),
    _f("from-changed", ("3261-8.2.6.2-from-copied",), "responses carry an extra From parameter", _UAS_REG),
    _f("call-id-changed", ("3261-8.2.6.2-call-id-copied",), "responses carry another Call-ID", _UAS_REG),
    _f("cseq-method-wrong", ("3261-8.2.6.2-cseq-copied",), "responses to non-INVITE requests carry the CSeq method "
       "in lower case", _UAS_REG),
    _f("cseq-number-wrong", ("3261-8.2.6.2-cseq-copied",), "responses to non-INVITE requests carry the CSeq number "
       "+ 1", _UAS_REG),
    _f("wrong-via", ("3261-8.2.6.2-via-copied",), "the top Via of responses gets an extra parameter (not copied)",
       _UAS_REG),
    _f("via-count", ("3261-8.2.6.2-via-count",), "responses carry one Via value more than the request", _UAS_REG),
    _f("no-received", ("3581-4-received", "3261-18.2.1-received"), "no received parameter is added to the top Via",
       _UAS_REG),
    _f("no-rport", ("3581-4-rport",), "an empty rport in the top Via is not filled in", _UAS_REG),
    # -- response contents per status ------------------------------------------------------------------------------
    _f("no-allow-405", ("3261-8.2.1-allow-in-405",), "405 without Allow", _UAS_REG),
    _f("no-unsupported-420", ("3261-8.2.2.3-unsupported-in-420",), "420 without Unsupported", _UAS_REG),
    _f("no-accept-415", ("3261-8.2.3-accept-in-415",), "415 without Accept", _UAS_REG),
    _f("no-require-421", ("3261-8.2.4-require-in-421",), "421 (with --require-100rel) without Require", _UAS),
    _f("require-unsupported", ("3261-8.2.4-extension-supported",), "the 2xx to INVITE requires the extension "
       "'timer' the request did not support", _UAS),
    _f("no-contact-2xx", ("3261-12.1.1-contact-in-2xx",), "2xx to INVITE without Contact", _UAS),
    _f("no-contact-1xx", ("3261-13.3.1.1-contact-in-1xx",), "18x to INVITE without Contact", _UAS),
    _f("contact-not-sip", ("3261-12.1.1-contact-sip-uri",), "the Contact of 18x and 2xx to INVITE is a tel URI",
       _UAS),
    _f("contact-not-sips", ("3261-12.1.1-contact-sips",), "over TLS, the Contact of 18x and 2xx to INVITE is a sip "
       "(not sips) URI", _UAS),
    _f("record-route-not-copied", ("3261-12.1.1-record-route-copied",), "18x and 2xx to INVITE do not copy "
       "Record-Route", _UAS),
    _f("no-allow-supported-2xx", ("3261-13.3.1.4-allow-supported-in-2xx",), "2xx to INVITE without Allow and "
       "Supported", _UAS),
    _f("options-no-capabilities", ("3261-11.2-options-2xx-headers",), "200 to OPTIONS without Allow, Accept, "
       "Accept-Encoding, Accept-Language, Supported", _UAS_REG),
    _f("allow-incomplete", ("3261-20.5-allow-complete",), "Allow lists INVITE but not BYE", _UAS),
    _f("provisional-non-invite", ("3261-8.2.6.1-no-provisional-non-invite",), "non-INVITE requests get a 100 "
       "Trying before their final response", _UAS_REG),
    _f("no-timestamp-100", ("3261-8.2.6.1-timestamp-in-100",), "100 Trying does not copy Timestamp", _UAS),
    # -- framing and syntax of what the device sends ----------------------------------------------------------------
    _f("content-length-wrong", ("3261-20.14-content-length-value",), "Content-Length of responses is 10 more than "
       "the body", _UAS_REG),
    _f("no-content-length", ("3261-18.3-content-length-on-stream", "3261-20.14-content-length-present"),
       "responses without a body carry no Content-Length", _UAS_REG),
    _f("no-content-type", ("3261-20.15-content-type-with-body",), "SDP bodies are sent without Content-Type", _UAS),
    _f("syntax-error", ("3261-25-syntax",), "responses carry a Server header with a control character", _UAS_REG),
    _f("syntax-minor", ("3261-25-syntax-minor",), "responses carry a malformed Date", _UAS_REG),
    _f("weak-tags", ("3261-19.3-tag-random",), "To tags are a small decimal counter", _UAS_REG),
    _f("fixed-tag", ("3261-19.3-tag-unique",), "every response gets the same To tag, call after call", _UAS_REG),
    # -- transactions (RFC 3261 §17.2) -------------------------------------------------------------------------------
    _f("no-provisional-retransmit", ("3261-17.2.1-retransmit-provisional",), "an INVITE retransmission does not get "
       "the last provisional again", _UAS),
    _f("no-response-retransmit", ("3261-17.2.2-retransmit-response",), "a non-INVITE retransmission gets no "
       "response", _UAS_REG),
    _f("final-response-unstable", ("3261-17.2.2-final-response-stable", "3261-17.2.2-retransmit-response"),
       "a non-INVITE retransmission gets 500 after the first final response", _UAS_REG),
    _f("answer-ack", ("3261-17-no-response-to-ack",), "an ACK for a 2xx is answered with 200", _UAS),
    # -- the INVITE dialog (RFC 3261 §13, §12, §9) -------------------------------------------------------------------
    _f("no-2xx-retransmit", ("3261-13.3.1.4-2xx-retransmit",), "the 2xx to INVITE is sent once, not until the ACK",
       _UAS),
    _f("no-bye-after-ack-timeout", (), "no BYE when the 2xx was never ACKed", _UAS, section="RFC 3261 §13.3.1.4",
       sentence="""If the server retransmits the 2xx response for 64*T1 seconds without receiving an ACK, the dialog
       is confirmed, but the session SHOULD be terminated.  This is accomplished with a BYE, as described in Section
       15."""),
    _f("cancel-no-487", (), "CANCEL of a pending INVITE is answered 200 but the INVITE is not ended with 487 (it "
       "is answered 200 at the end of the ring time)", _UAS, section="RFC 3261 §9.2",
       sentence="""If the original request was an INVITE, the UAS SHOULD immediately respond to the INVITE with a 487
       (Request Terminated)."""),
    _f("cancel-no-200", (), "CANCEL of a pending INVITE ends it with 487 but the CANCEL itself gets no response",
       _UAS, section="RFC 3261 §9.2",
       sentence="""Regardless of the method of the original request, as long as the CANCEL matched an existing
       transaction, the UAS answers the CANCEL request itself with a 200 (OK) response."""),
    _f("cancel-481-always", (), "every CANCEL is answered 481 and has no effect", _UAS, section="RFC 3261 §9.2",
       sentence="""Regardless of the method of the original request, as long as the CANCEL matched an existing
       transaction, the UAS answers the CANCEL request itself with a 200 (OK) response."""),
    _f("cancel-to-tag-differs", ("3261-9.2-cancel-to-tag",), "the 200 to CANCEL has another To tag than the "
       "INVITE's responses", _UAS),
    _f("no-481", (), "requests with an unknown To tag, and BYE/PRACK/INFO/UPDATE outside a dialog, get 200 instead "
       "of 481", _UAS, section="RFC 3261 §12.2.2",
       sentence="""If the UAS wishes to reject the request because it does not wish to recreate the dialog, it MUST
       respond to the request with a 481 (Call/Transaction Does Not Exist) status code and pass that to the server
       transaction."""),
    _f("info-481", (), "INFO in a confirmed dialog is answered 481 as if the dialog did not exist", _UAS,
       section="RFC 3261 §12.2.2",
       sentence="""If there is a match, this is a mid-dialog request.  In that case, the UAS first applies the same
       processing rules for requests outside of a dialog, discussed in Section 8.2."""),
    _f("no-482", (), "a merged request (same From tag, Call-ID and CSeq as a live transaction, another branch) is "
       "processed instead of answered 482", _UAS, section="RFC 3261 §8.2.2.2",
       sentence="""If the From tag, Call-ID, and CSeq exactly match those associated with an ongoing transaction, but
       the request does not match that transaction (based on the matching rules in Section 17.2.3), the UAS core
       SHOULD generate a 482 (Loop Detected) response and pass it to the server transaction."""),
    _f("no-416", (), "a Request-URI with a scheme other than sip or sips is processed instead of answered 416",
       _UAS_REG, section="RFC 3261 §8.2.2.1",
       sentence="""If the Request-URI uses a scheme not supported by the UAS, it SHOULD reject the request with a 416
       (Unsupported URI Scheme) response."""),
    _f("no-505", (), "a request with a SIP-Version other than SIP/2.0 is processed instead of answered 505",
       _UAS_REG, section="RFC 3261 §21.5.6",
       sentence="""The server does not support, or refuses to support, the SIP protocol version that was used in the
       request."""),
    _f("malformed-silent", (), "requests whose defects make them unusable (no To, a CSeq that is not a number, a "
       "duplicated Call-ID, ...) are dropped without an answer instead of answered 400", _UAS_REG,
       section="RFC 3261 §21.4.1", sentence=_S_400),
    _f("no-420", (), "unknown option tags in Require are ignored instead of answered 420", _UAS_REG,
       section="RFC 3261 §8.2.2.3",
       sentence="""If a UAS does not understand an option-tag listed in a Require header field, it MUST respond by
       generating a response with status code 420 (Bad Extension)."""),
    _f("no-500-dialog-cseq", (), "an in-dialog request with a CSeq lower than the last one is processed instead of "
       "answered 500", _UAS, section="RFC 3261 §12.2.2",
       sentence="""If the remote sequence number was not empty, but the sequence number of the request is lower than
       the remote sequence number, the request is out of order and MUST be rejected with a 500 (Server Internal
       Error) response."""),
    # -- reliable provisionals (RFC 3262 §3) -------------------------------------------------------------------------
    _f("prack-no-rseq", ("3262-3-reliable-headers",), "reliable provisionals carry Require: 100rel but no RSeq",
       _UAS),
    _f("prack-no-require", ("3262-3-reliable-headers",), "reliable provisionals carry RSeq but no Require: 100rel",
       _UAS),
    _f("rseq-skip", ("3262-3-rseq-increment",), "the second reliable provisional's RSeq is the first's + 2", _UAS),
    _f("rseq-restart", ("3262-3-rseq-increment",), "the RSeq numbering restarts at a new random value for the "
       "second reliable provisional", _UAS),
    _f("rseq-zero", ("3262-3-rseq-first", "3261-25-syntax"), "the first RSeq is 0", _UAS),
    _f("rseq-high", ("3262-3-rseq-first",), "the first RSeq is above 2**31-1", _UAS),
    _f("prack-not-retransmitted", ("3262-3-reliable-retransmit",), "reliable provisionals are sent once, not until "
       "the PRACK", _UAS),
    _f("retransmit-after-prack", ("3262-3-stop-after-prack",), "a PRACKed provisional is still retransmitted", _UAS),
    _f("prack-481-never", ("3262-3-prack-481",), "a PRACK that matches nothing pending gets 200, not 481", _UAS),
    _f("200-before-prack", ("3262-3-no-2xx-before-prack",), "the 2xx to INVITE goes out at the end of the ring time "
       "even though the reliable 180 with SDP is not PRACKed", _UAS),
    _f("second-before-prack", ("3262-3-prack-before-second",), "the reliable 183 follows the reliable 180 before "
       "its PRACK", _UAS),
    _f("reliable-100", ("3262-3-no-reliable-100",), "100 Trying carries Require: 100rel and RSeq", _UAS),
    _f("reliable-unasked", ("3262-3-reliable-needs-offer", "3261-8.2.4-extension-supported"), "the 180 is reliable "
       "although the INVITE offered no 100rel", _UAS),
    _f("unreliable-when-required", ("3262-3-reliable-when-required",), "the 180 is not reliable although the INVITE "
       "had Require: 100rel", _UAS),
    # -- registrar (RFC 3261 §10.3) ----------------------------------------------------------------------------------
    _f("no-min-expires-423", ("3261-10.3-min-expires-in-423",), "423 without Min-Expires", _REG),
    _f("no-423", (), "an expiry shorter than --min-expires is granted instead of answered 423", _REG,
       section="RFC 3261 §10.3",
       sentence="""If and only if the requested expiration interval is greater than zero AND smaller than one hour
       AND less than a registrar-configured minimum, the registrar MAY reject the registration with a response of 423
       (Interval Too Brief)."""),
    _f("star-accepted", (), "Contact: * with an Expires other than 0 (or with other Contacts) is accepted instead "
       "of answered 400", _REG, section="RFC 3261 §10.3",
       sentence="""If the request has additional Contact fields or an expiration time other than zero, the request is
       invalid, and the server MUST return a 400 (Invalid Request) and skip the remaining steps."""),
    _f("no-500-cseq", (), "a REGISTER whose CSeq is not above the binding's for the same Call-ID updates it instead "
       "of failing with 500", _REG, section="RFC 3261 §10.3",
       sentence="""If the value is higher than that of the existing binding, it MUST update or remove the binding as
       above.  If not, the update MUST be aborted and the request fails."""),
    _f("register-6xx", ("3261-10.3-no-6xx",), "a too short expiry is answered 606 instead of 423", _REG),
    _f("register-record-route", ("3261-10.3-no-record-route",), "responses to REGISTER carry Record-Route", _REG),
    _f("no-contact-expires", ("3261-10.3-contact-expires",), "Contact values in the 200 to REGISTER lack expires",
       _REG),
    _f("bindings-not-listed", ("3261-10.3-bindings-listed",), "the 200 to REGISTER lists no Contact", _REG),
    # -- the device as UAC -------------------------------------------------------------------------------------------
    _f("branch-no-cookie", ("3261-8.1.1.7-branch-cookie",), "the INVITE and BYE the UAC starts have branches "
       "without z9hG4bK", _UAC),
    _f("uac-no-max-forwards", ("3261-8.1.1-mandatory-headers",), "the INVITE has no Max-Forwards", _UAC),
    _f("uac-max-forwards-10", ("3261-8.1.1.6-max-forwards-70",), "the INVITE starts with Max-Forwards 10", _UAC),
    _f("uac-no-from-tag", ("3261-8.1.1.3-from-tag",), "the INVITE's From has no tag", _UAC),
    _f("uac-to-tag", ("3261-8.1.1.2-no-to-tag-outside-dialog",), "the initial INVITE carries a To tag", _UAC),
    _f("uac-no-contact", ("3261-8.1.1.8-contact-in-invite",), "the INVITE has no Contact", _UAC),
    _f("uac-no-allow", ("3261-13.2.1-allow-in-invite",), "the INVITE has no Allow", _UAC),
    _f("uac-no-supported", ("3261-13.2.1-supported-in-invite",), "the INVITE has no Supported", _UAC),
    _f("no-invite-retransmit", ("3261-17.1.1.2-invite-retransmit",), "over UDP the INVITE is sent once", _UAC),
    _f("retransmit-on-reliable", ("3261-17.1.1.2-no-retransmit-reliable",), "over TCP/TLS the INVITE is "
       "retransmitted as if on UDP", _UAC),
    _f("no-ack-2xx", ("3261-13.2.2.4-ack-2xx",), "a 2xx to the INVITE is never acknowledged", _UAC),
    _f("ack-cseq-wrong", ("3261-13.2.2.4-ack-2xx-cseq",), "the ACK for a 2xx carries the INVITE's CSeq + 1", _UAC),
    _f("ack-same-branch", ("3261-8.1.1.7-branch-unique", "3261-13.2.2.4-ack-2xx"), "the ACK for a 2xx reuses the "
       "INVITE's branch (so it is no ACK of a 2xx, which is a transaction of its own)", _UAC),
    _f("no-ack-non2xx", ("3261-17.1.1.2-ack-non2xx",), "a 300-699 to the INVITE is never acknowledged", _UAC),
    _f("ack-non2xx-wrong-to", ("3261-17.1.1.3-ack-construction",), "the ACK for a 300-699 carries the INVITE's To "
       "(without the response's tag)", _UAC),
    _f("bye-cseq-skip", ("3261-12.2.1.1-cseq-increment",), "the BYE's CSeq is the previous one + 2", _UAC),
    _f("bye-no-to-tag", ("3261-15-bye-in-dialog",), "the BYE carries no To tag", _UAC),
    _f("bye-with-contact", ("3261-20-not-applicable-in-request",), "the BYE carries a Contact", _UAC),
    _f("cancel-early", ("3261-9.1-cancel-after-provisional",), "'cancel' sends the CANCEL before any provisional "
       "response", _UAC),
    _f("cancel-with-require", ("3261-9.1-cancel-no-require", "3261-20-not-applicable-in-request"), "the CANCEL "
       "carries Require: 100rel", _UAC),
    _f("cancel-two-vias", ("3261-9.1-cancel-single-via",), "the CANCEL carries a second Via", _UAC),
    _f("cancel-wrong-branch", ("3261-9.1-cancel-matches-invite",), "the CANCEL's top Via has a new branch", _UAC),
    # -- proxy (RFC 3261 §16) ----------------------------------------------------------------------------------------
    _f("max-forwards-not-decremented", (), "requests are forwarded with Max-Forwards unchanged", _PROXY,
       section="RFC 3261 §16.6",
       sentence="""If the copy contains a Max-Forwards header field, the proxy MUST decrement its value by one
       (1)."""),
    _f("no-483", (), "a request with Max-Forwards: 0 is forwarded instead of answered 483", _PROXY,
       section="RFC 3261 §16.3",
       sentence="""If the request contains a Max-Forwards header field with a field value of zero (0), the element
       MUST NOT forward the request."""),
    _f("no-record-route", (), "the proxy adds no Record-Route to the requests it forwards", _PROXY,
       section="RFC 3261 §16.6",
       sentence="""If this proxy wishes to remain on the path of future requests in a dialog created by this request
       (assuming the request creates a dialog), it MUST insert a Record-Route header field value into the copy before
       any existing Record-Route header field values, even if a Route header field is already present."""),
    _f("no-loop-detection", (), "a request that looped back is forwarded again instead of answered 482", _PROXY,
       section="RFC 3261 §16.3",
       sentence="""If the parameters match, the request has looped.  If they differ, the request is spiraling, and
       processing continues.  If a loop is detected, the element MAY return a 482 (Loop Detected) response."""),
    _f("proxy-keeps-via", (), "responses are forwarded upstream with the proxy's own Via still on top", _PROXY,
       section="RFC 3261 §16.7",
       sentence="""The proxy removes the topmost Via header field value from the response."""),
    _f("proxy-no-cancel-forward", (), "a CANCEL is answered 200 but not forwarded downstream", _PROXY,
       section="RFC 3261 §16.10",
       sentence="""A proxy MUST cancel any pending client transactions associated with a response context when it
       receives a matching CANCEL request."""),
    # -- robustness (for the fuzzer) ---------------------------------------------------------------------------------
    _f("crash-long-user", (), "crash on a Request-URI whose user part is longer than 256 octets", _ANY,
       kind="crash", section="RFC 3261 §8.2", sentence=_S_8_2),
    _f("crash-many-via", (), "crash on a request with more than 40 Via values", _ANY, kind="crash",
       section="RFC 3261 §8.2", sentence=_S_8_2),
    _f("hang-bad-content-type", (), "hang on a request whose Content-Type has an empty subtype ('application/')",
       _ANY, kind="hang", section="RFC 3261 §21.4.1", sentence=_S_400),
    _f("hang-long-header", (), "hang on a request with a header value longer than 2048 octets", _ANY, kind="hang",
       section="RFC 3261 §8.2", sentence=_S_8_2),
    _f("crash-info-in-dialog", (), "crash on an INFO in a confirmed dialog whose body contains a NUL octet",
       ("uas", "uac"), kind="crash", section="RFC 3261 §8.2", sentence=_S_8_2),
    _f("hang-prack-bad-rack", (), "hang on a PRACK in an early dialog whose RAck method is not INVITE", _UAS,
       kind="hang", section="RFC 3262 §3",
       sentence="""If a PRACK request is received by the UA core that does not match any unacknowledged reliable
       provisional response, the UAS MUST respond to the PRACK with a 481 response."""),
    _f("crash-reinvite-sdp", (), "crash on a re-INVITE in a confirmed dialog whose SDP has an m= line with port 0",
       ("uas", "uac"), kind="crash", section="RFC 3264 §8.2",
       sentence="""A stream that is offered with a port of zero MUST be marked with port zero in the answer."""),
)

#: The table by name.
FAULTS: dict[str, FaultDef] = {f.name: f for f in FAULT_TABLE}
assert len(FAULTS) == len(FAULT_TABLE), "duplicate fault names"


def fault_names() -> list[str]:
    """Every fault name, in table order."""
    return [f.name for f in FAULT_TABLE]


def faults_for_role(role: str) -> list[FaultDef]:
    return [f for f in FAULT_TABLE if role in f.roles]


def check_faults(names: object) -> frozenset[str]:
    """The names as a frozenset, or :class:`UnknownFault` naming the bad one and listing the valid names."""
    if isinstance(names, str):
        names = (names,)
    out = frozenset(str(n) for n in names)  # type: ignore[attr-defined]
    unknown = sorted(out - FAULTS.keys())
    if unknown:
        raise UnknownFault(f"unknown fault {unknown[0]!r}; valid choices: {', '.join(fault_names())}")
    return out
