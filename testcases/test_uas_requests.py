"""How a UAS handles the requests it receives (RFC 3261 §8.2, §12.2.2, §9.2; RFC 3262 §3; RFC 4475).

Malformed requests are sent as raw bytes (the strict builders refuse to make them); where RFC 4475 allows another
handling than 400, the test says which and accepts it. Every test that sends something meant to break the device
checks afterwards that it still answers.

The answer a malformed request gets is judged at SHOULD level: RFC 3261 defines 400 (§21.4.1), 416 (§21.4.14) and 505
(§21.5.6) and asks for them with SHOULD where it asks at all (§18.3, §8.2.2.1), and RFC 4475 "is NOT NORMATIVE on any
aspect of SIP" (§1). Another answer, or none, is a warning naming the sentence (``sip_should``). What stays a failure
is a MUST: a device that stops answering afterwards, or a response that carries a From, To, Call-ID or CSeq the
request did not have (§8.2.6.2: the response's value "MUST equal" the request's).
"""

from __future__ import annotations

import pytest

from conformance.peer import ExpectationFailed
from conformance.plugin import inconclusive, not_applicable
from conformance.sip import Request, Response, build_cancel, name_addr
from conformance.sip.state import Dialog
from testcases._requests import (
    STANDARD_METHODS,
    answer_wait,
    assert_alive,
    baseline_options,
    describe,
    edit,
    end_call,
    final_to,
    invite_request,
    merged_invites,
    quiet_time,
    quoting,
    same_name_addr,
    unique,
)
from testcases._support import ack, bye, offer, start_invite, target_uri, wait_final

#: Profile "extensions" that are capabilities but not option tags (they never appear in Require or Supported).
NOT_OPTION_TAGS = frozenset({"rport"})

pytestmark = pytest.mark.sip_requires(role="uas")


def _options(peer, profile, **kwargs) -> Request:
    return peer.build_request("OPTIONS", target_uri(profile), **kwargs)


def _send(peer, profile, data: bytes) -> int | None:
    return peer.send(data, profile.target.address)


#: The SHOULD-level rule a malformed request's answer is judged by (see the module docstring).
MALFORMED_400 = "3261-21.4.1-400-malformed"


def _expect_400(
    peer, profile, should, req: Request, data: bytes, what: str, citation: str, *, by: str = "both",
    lacking: str | None = None,
) -> Response | None:
    """Send ``data`` (``req`` edited) and judge the answer, matched by Call-ID and/or branch: 400 passes; another
    answer, or none within the wait, is a SHOULD warning (``MALFORMED_400``, citing ``citation``).

    ``lacking``: a header the request did not have. §8.2.6.2 makes the response's From, Call-ID and CSeq (and To URI)
    equal the request's; with nothing to copy, no response may carry a value of its own invention (a failure)."""
    _send(peer, profile, data)
    wait = answer_wait(profile)
    final = final_to(
        peer,
        call_id=req.call_id if by in ("both", "call-id") else None,
        branch=req.transaction_branch if by in ("both", "branch") else None,
        timeout=wait,
    )
    if final is not None and lacking is not None:
        assert not final.has_header(lacking), (
            f"the {final.status} to {what} carries {lacking}: {final.header(lacking)!r}, a value the request did not "
            f"have: the response's {lacking} MUST equal the request's (RFC 3261 §8.2.6.2), and there was none to copy"
        )
    got = f"no final response within {wait:g} s" if final is None else f"{final.status} {final.reason}"
    if "§21.4.1" not in citation:
        citation = f"RFC 3261 §21.4.1; {citation}"
    should(final is not None and final.status == 400, MALFORMED_400, citation,
           f"{what} was answered {got}, not 400 Bad Request")
    return final


# ---------------------------------------------------------------------------------------------------------------------
# 400 Bad Request: a mandatory header field is missing (§8.1.1, §20)
# ---------------------------------------------------------------------------------------------------------------------

_MANDATORY = """§8.1.1: "A valid SIP request formulated by a UAC MUST, at a minimum, contain the following header
    fields: To, From, CSeq, Call-ID, Max-Forwards, and Via; all of these header fields are mandatory in all SIP
    requests." §21.4.1 (400): "The request could not be understood due to malformed syntax.  The Reason-Phrase SHOULD
    identify the syntax problem in more detail, for example, "Missing Call-ID header field"." RFC 4475 §3.3.1 (insuf):
    "An element receiving this message must not break because of the missing information.  Ideally, it will respond
    with a 400 Bad Request error." §8.2.6.2: "The From field of the response MUST equal the From header field of the
    request.  The Call-ID header field of the response MUST equal the Call-ID header field of the request.  The CSeq
    header field of the response MUST equal the CSeq field of the request." With nothing to copy, a response carries
    no such header of its own invention (a failure); and the device must go on answering (a failure). The 400 itself
    is a SHOULD-level expectation: another answer, or silence, warns (as TP-TOR-insuf does for the same RFC 4475
    §3.3.1 sentence)."""


@quoting(_MANDATORY)
@pytest.mark.sip_faults("malformed-silent")
@pytest.mark.sip_purpose("TP-REQ-001", "A request without To is answered 400", "RFC 3261 §8.1.1", "RFC 3261 §21.4.1",
                         "RFC 4475 §3.3.1")
def test_s8_1_1_missing_to_gets_400(sip_peer, sip_profile, sip_should):
    req = _options(sip_peer, sip_profile)
    _expect_400(sip_peer, sip_profile, sip_should, req, edit(req, drop=["To"]), "an OPTIONS without To",
                "RFC 3261 §8.1.1, RFC 4475 §3.3.1", lacking="To")
    assert_alive(sip_peer, sip_profile, "an OPTIONS without To")


@quoting(_MANDATORY)
@pytest.mark.sip_purpose("TP-REQ-002", "A request without From is answered 400", "RFC 3261 §8.1.1",
                         "RFC 3261 §21.4.1", "RFC 4475 §3.3.1")
def test_s8_1_1_missing_from_gets_400(sip_peer, sip_profile, sip_should):
    req = _options(sip_peer, sip_profile)
    _expect_400(sip_peer, sip_profile, sip_should, req, edit(req, drop=["From"]), "an OPTIONS without From",
                "RFC 3261 §8.1.1, RFC 4475 §3.3.1", lacking="From")
    assert_alive(sip_peer, sip_profile, "an OPTIONS without From")


@quoting(_MANDATORY)
@pytest.mark.sip_purpose("TP-REQ-003", "A request without CSeq is answered 400", "RFC 3261 §8.1.1",
                         "RFC 3261 §21.4.1")
def test_s8_1_1_missing_cseq_gets_400(sip_peer, sip_profile, sip_should):
    req = _options(sip_peer, sip_profile)
    _expect_400(sip_peer, sip_profile, sip_should, req, edit(req, drop=["CSeq"]), "an OPTIONS without CSeq", "RFC 3261 §8.1.1",
                lacking="CSeq")
    assert_alive(sip_peer, sip_profile, "an OPTIONS without CSeq")


@quoting(_MANDATORY)
@pytest.mark.sip_purpose("TP-REQ-004", "A request without Call-ID is answered 400", "RFC 3261 §8.1.1",
                         "RFC 3261 §21.4.1", "RFC 4475 §3.3.1")
def test_s8_1_1_missing_call_id_gets_400(sip_peer, sip_profile, sip_should):
    req = _options(sip_peer, sip_profile)
    _expect_400(sip_peer, sip_profile, sip_should, req, edit(req, drop=["Call-ID"]), "an OPTIONS without Call-ID",
                "RFC 3261 §8.1.1, RFC 4475 §3.3.1", by="branch", lacking="Call-ID")
    assert_alive(sip_peer, sip_profile, "an OPTIONS without Call-ID")


@pytest.mark.sip_purpose("TP-REQ-005", "A request without Via is answered 400 or dropped, never processed",
                         "RFC 3261 §8.1.1", "RFC 3261 §18.2.2", "RFC 3261 §21.4.1")
def test_s8_1_1_missing_via_gets_400_or_nothing(sip_peer, sip_profile, sip_should):
    """§8.1.1: "A valid SIP request formulated by a UAC MUST, at a minimum, contain the following header fields: To,
    From, CSeq, Call-ID, Max-Forwards, and Via; all of these header fields are mandatory in all SIP requests."

    §18.2.2: "The server transport uses the value of the top Via header field in order to determine where to send a
    response." Without a Via the RFC gives the device no place to send a response, so silence is accepted (the RFC 4475
    §3.3.1 alternative: "must not break"); a response, if one comes, is expected to be 400 (another one is a SHOULD
    warning: no MUST forbids it), and the device must go on answering."""
    req = _options(sip_peer, sip_profile)
    _send(sip_peer, sip_profile, edit(req, drop=["Via"]))
    final = final_to(sip_peer, call_id=req.call_id, timeout=quiet_time(sip_profile))
    if final is not None:
        sip_should(final.status == 400, MALFORMED_400, "RFC 3261 §8.1.1, §21.4.1",
                   f"an OPTIONS without Via was answered {final.status} {final.reason}: processed although a mandatory "
                   "header field is missing (400 or no response expected)")
    else:
        sip_peer.trace.note("no response to the OPTIONS without Via (accepted: no Via to route a response by)")
    assert_alive(sip_peer, sip_profile, "an OPTIONS without Via")


@pytest.mark.sip_purpose("TP-REQ-006", "A UAS processes a request without Max-Forwards or answers 400",
                         "RFC 3261 §8.1.1", "RFC 3261 §8.2", "RFC 3261 §16.3", "RFC 4475 §3.1.2.4")
def test_s8_2_missing_max_forwards_processed_or_400(sip_peer, sip_profile):
    """§8.1.1 makes Max-Forwards mandatory in requests, but the checks of a UAS (§8.2.1 to §8.2.4) do not include it:
    only an element that forwards looks at it (§16.3 step 3: "If the request does not contain a Max-Forwards header
    field, this check is passed."). RFC 4475 §3.1.2.4: "If only the Max-Forwards field were in error, the element could
    choose to process the request as if the field were absent."

    So a UAS may process the request (answer as it answers a well-formed OPTIONS) or reject the invalid request with
    400; any other answer (483 Too Many Hops in particular, which is for a Max-Forwards of zero, §21.4.21) is wrong.
    """
    normal = baseline_options(sip_peer, sip_profile)
    req = _options(sip_peer, sip_profile)
    _send(sip_peer, sip_profile, edit(req, drop=["Max-Forwards"]))
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=req.call_id, timeout=wait)
    assert final is not None, f"no final response within {wait:g} s to an OPTIONS without Max-Forwards"
    assert final.status in (normal.status, 400), (
        f"an OPTIONS without Max-Forwards was answered {final.status} {final.reason}; a UAS either processes it (as "
        f"a well-formed OPTIONS: {normal.status}) or answers 400 (RFC 3261 §8.2, §16.3 step 3)"
    )


@pytest.mark.sip_purpose("TP-REQ-007", "A UAS processes a request with Max-Forwards 0 (no 483)", "RFC 3261 §8.1.1.6",
                         "RFC 3261 §16.3", "RFC 4475 §3.3.11")
def test_s8_1_1_6_max_forwards_zero_processed(sip_peer, sip_profile):
    """§8.1.1.6: "If the Max-Forwards value reaches 0 before the request reaches its destination, it will be rejected
    with a 483(Too Many Hops) error response." The UAS is the destination. RFC 4475 §3.3.11 (zeromf): "A proxy should
    not forward the request and should respond 483 (Too Many Hops).  An endpoint should process the request as if the
    Max-Forwards field value were still positive." The device must answer as it answers a well-formed OPTIONS."""
    normal = baseline_options(sip_peer, sip_profile)
    req = _options(sip_peer, sip_profile, max_forwards=0)
    tx = sip_peer.request(req, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    assert final.status != 483, "an OPTIONS with Max-Forwards: 0 was answered 483: a UAS is the destination, it does "\
                                "not forward (RFC 3261 §8.1.1.6, RFC 4475 §3.3.11)"
    assert final.status == normal.status, (
        f"an OPTIONS with Max-Forwards: 0 was answered {final.status} {final.reason}, a well-formed one "
        f"{normal.status}: an endpoint processes it as if Max-Forwards were positive (RFC 4475 §3.3.11)"
    )


# ---------------------------------------------------------------------------------------------------------------------
# 400 Bad Request: malformed mandatory header fields
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.sip_faults("malformed-silent")
@pytest.mark.sip_purpose("TP-REQ-008", "A CSeq whose number is not a number is answered 400", "RFC 3261 §20.16",
                         "RFC 3261 §25.1", "RFC 3261 §21.4.1")
def test_s20_16_non_numeric_cseq_gets_400(sip_peer, sip_profile, sip_should):
    """§25.1: "CSeq  =  "CSeq" HCOLON 1*DIGIT LWS Method". §20: "A "mandatory" header field MUST be present in a
    request, and MUST be understood by the UAS receiving the request." A CSeq of ``abc OPTIONS`` cannot be
    understood: §21.4.1, 400: "The request could not be understood due to malformed syntax." """
    req = _options(sip_peer, sip_profile)
    data = edit(req, replace={"CSeq": "abc OPTIONS"})
    _expect_400(sip_peer, sip_profile, sip_should, req, data, "an OPTIONS with CSeq: abc OPTIONS", "RFC 3261 §25.1, §21.4.1")
    assert_alive(sip_peer, sip_profile, "a non-numeric CSeq")


@pytest.mark.sip_purpose("TP-REQ-009", "A CSeq number of 2**31 is answered 400", "RFC 3261 §8.1.1.5",
                         "RFC 3261 §21.4.1")
def test_s8_1_1_5_cseq_2_31_gets_400(sip_peer, sip_profile, sip_should):
    """§8.1.1.5: "The sequence number value MUST be expressible as a 32-bit unsigned integer and MUST be less than
    2**31." A CSeq of 2147483648 breaks that limit: the request is invalid and is answered 400 (§21.4.1)."""
    req = _options(sip_peer, sip_profile)
    data = edit(req, replace={"CSeq": f"{2**31} OPTIONS"})
    _expect_400(sip_peer, sip_profile, sip_should, req, data, f"an OPTIONS with CSeq {2**31}", "RFC 3261 §8.1.1.5")
    assert_alive(sip_peer, sip_profile, f"a CSeq of {2**31}")


@pytest.mark.sip_purpose("TP-REQ-010", "A CSeq number beyond 32 bits is answered 400", "RFC 3261 §8.1.1.5",
                         "RFC 4475 §3.1.2.4")
def test_s8_1_1_5_cseq_beyond_32_bits_gets_400(sip_peer, sip_profile, sip_should):
    """§8.1.1.5: "The sequence number value MUST be expressible as a 32-bit unsigned integer and MUST be less than
    2**31." RFC 4475 §3.1.2.4 (scalar02, CSeq 36893488147419103232): "An element receiving this request should respond
    with a 400 Bad Request due to the CSeq error." """
    req = _options(sip_peer, sip_profile)
    data = edit(req, replace={"CSeq": "36893488147419103232 OPTIONS"})
    _expect_400(sip_peer, sip_profile, sip_should, req, data, "an OPTIONS with CSeq 36893488147419103232",
                "RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.4")
    assert_alive(sip_peer, sip_profile, "a CSeq number beyond 2**64")


@pytest.mark.sip_purpose("TP-REQ-011", "A CSeq method that differs from the request method is answered 400",
                         "RFC 3261 §8.1.1.5", "RFC 4475 §3.1.2.17")
def test_s8_1_1_5_cseq_method_mismatch_gets_400(sip_peer, sip_profile, sip_should):
    """§8.1.1.5: "It consists of a sequence number and a method.  The method MUST match that of the request."
    RFC 4475 §3.1.2.17 (mismatch01, an OPTIONS with CSeq: 8 INVITE): "Any element receiving this request will respond
    with a 400 Bad Request." """
    req = _options(sip_peer, sip_profile)
    data = edit(req, replace={"CSeq": f"{req.cseq.number} INVITE"})
    _expect_400(sip_peer, sip_profile, sip_should, req, data, "an OPTIONS with CSeq method INVITE",
                "RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.17")


@pytest.mark.sip_purpose("TP-REQ-012", "An unknown method with a mismatching CSeq method is answered 501 or 400",
                         "RFC 3261 §8.1.1.5", "RFC 3261 §21.5.2", "RFC 4475 §3.1.2.18")
def test_s21_5_2_unknown_method_cseq_mismatch_gets_501_or_400(sip_peer, sip_profile, sip_should):
    """RFC 4475 §3.1.2.18 (mismatch02, NEWMETHOD with CSeq: 8 INVITE): "Any element receiving this response should
    respond with a 501 Not Implemented.  A 400 Bad Request is also acceptable, but choosing a 501 (particularly at
    proxies) has better future-proof characteristics." Both are accepted; another answer, or none, is a SHOULD warning
    (RFC 3261 §21.5.2 defines 501; no MUST asks for it)."""
    req = sip_peer.build_request("NEWMETHOD", target_uri(sip_profile))
    data = edit(req, replace={"CSeq": f"{req.cseq.number} INVITE"}, body=offer(sip_peer),
                add=[("Content-Type", "application/sdp")])
    _send(sip_peer, sip_profile, data)
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=req.call_id, branch=req.transaction_branch, timeout=wait)
    got = f"no final response within {wait:g} s" if final is None else f"{final.status} {final.reason}"
    sip_should(final is not None and final.status in (501, 400), MALFORMED_400, "RFC 3261 §21.5.2, RFC 4475 §3.1.2.18",
               f"NEWMETHOD with CSeq method INVITE was answered {got}, not 501 Not Implemented (400 acceptable)")


@pytest.mark.sip_faults("malformed-silent")
@pytest.mark.sip_purpose("TP-REQ-013", "A malformed Via is answered 400", "RFC 3261 §20.42", "RFC 3261 §25.1",
                         "RFC 4475 §3.1.2.1")
def test_s20_42_malformed_via_gets_400(sip_peer, sip_profile, sip_should):
    """RFC 4475 §3.1.2.1 (badinv01: "Via: SIP/2.0/UDP 192.0.2.15;;,;,,"): "The Via header field of this request
    contains additional semicolons and commas without parameters or values. [...] This message is syntactically
    invalid.  An element receiving this request should respond with a 400 Bad Request error." The top Via keeps the
    peer's sent-by and branch before the stray separators, so a response can be routed."""
    req = _options(sip_peer, sip_profile)
    data = edit(req, replace={"Via": req.via[0].raw + ";;,;,,"})
    _expect_400(sip_peer, sip_profile, sip_should, req, data, "an OPTIONS whose Via ends in ';;,;,,'", "RFC 4475 §3.1.2.1",
                by="call-id")
    assert_alive(sip_peer, sip_profile, "a malformed Via")


@pytest.mark.sip_purpose("TP-REQ-014", "A malformed From is answered 400", "RFC 3261 §20.20", "RFC 3261 §25.1",
                         "RFC 3261 §21.4.1")
def test_s20_20_malformed_from_gets_400(sip_peer, sip_profile, sip_should):
    """§25.1: "From = ( "From" / "f" ) HCOLON from-spec" with "name-addr = [ display-name ] LAQUOT addr-spec RAQUOT".
    A From whose '<' is never closed is not a from-spec; §20: a mandatory header field "MUST be understood by the UAS
    receiving the request", and what cannot be understood is answered 400 (§21.4.1: "The request could not be
    understood due to malformed syntax.")."""
    req = _options(sip_peer, sip_profile)
    data = edit(req, replace={"From": f"<{sip_peer.local_uri()};tag={unique('f')}"})
    _expect_400(sip_peer, sip_profile, sip_should, req, data, "an OPTIONS whose From lacks the closing '>'",
                "RFC 3261 §25.1, §21.4.1")
    assert_alive(sip_peer, sip_profile, "a malformed From")


@pytest.mark.sip_purpose("TP-REQ-015", "A malformed To is answered 400", "RFC 3261 §20.39", "RFC 3261 §25.1",
                         "RFC 3261 §21.4.1")
def test_s20_39_malformed_to_gets_400(sip_peer, sip_profile, sip_should):
    """§25.1: "To = ( "To" / "t" ) HCOLON ( name-addr / addr-spec ) *( SEMI to-param )". A To whose '<' is never
    closed matches neither; §20: a mandatory header field "MUST be understood by the UAS receiving the request";
    §21.4.1, 400: "The request could not be understood due to malformed syntax." """
    req = _options(sip_peer, sip_profile)
    data = edit(req, replace={"To": f"<{target_uri(sip_profile)}"})
    _expect_400(sip_peer, sip_profile, sip_should, req, data, "an OPTIONS whose To lacks the closing '>'",
                "RFC 3261 §25.1, §21.4.1")
    assert_alive(sip_peer, sip_profile, "a malformed To")


@pytest.mark.sip_purpose("TP-REQ-016", "A datagram shorter than its Content-Length is not processed (400)",
                         "RFC 3261 §18.3", "RFC 4475 §3.1.2.2")
@pytest.mark.sip_requires(transports=("udp",))
def test_s18_3_content_length_beyond_datagram_not_processed(sip_peer, sip_profile, sip_should):
    """§18.3: "If the transport packet ends before the end of the message body, this is considered an error.  If the
    message is a response, it MUST be discarded.  If the message is a request, the element SHOULD generate a 400 (Bad
    Request) response." RFC 4475 §3.1.2.2 (clerr, Content-Length: 9999): "When sent over UDP (as this message
    ostensibly was), the receiving element should respond with a 400 Bad Request error."

    The 400 is the SHOULD: another answer (processing it included: §18.3 calls the request an error but has no MUST
    about it), or none, warns."""
    req = _options(sip_peer, sip_profile)
    data = edit(req, body=offer(sip_peer), add=[("Content-Type", "application/sdp")], content_length=9999)
    _send(sip_peer, sip_profile, data)
    final = final_to(sip_peer, call_id=req.call_id, timeout=answer_wait(sip_profile))
    sip_should(final is not None and final.status == 400, "3261-18.3-400", "RFC 3261 §18.3",
               f"a datagram that ends before its Content-Length was answered "
               f"{'nothing' if final is None else f'{final.status} {final.reason}'}, not 400")
    assert_alive(sip_peer, sip_profile, "a datagram shorter than its Content-Length")


@pytest.mark.sip_purpose("TP-REQ-017", "A negative Content-Length is answered 400 (or the stream is closed)",
                         "RFC 3261 §20.14", "RFC 3261 §25.1", "RFC 4475 §3.1.2.3")
def test_s20_14_negative_content_length_rejected(sip_peer, sip_profile, sip_should):
    """§25.1: "Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT": -999 is not a Content-Length.
    RFC 4475 §3.1.2.3 (ncl): "An element receiving this message should respond with an error.  This request appeared
    over UDP, so the remainder of the datagram can simply be discarded.  If a request like this arrives over TCP, the
    framing error is not recoverable, and the connection should be closed."

    Datagram: 400 expected. Stream: 400, or the device closes the connection (the RFC 4475 alternative). Anything
    else is a SHOULD warning: RFC 3261 §21.4.1 defines 400 and RFC 4475 is not normative."""
    req = _options(sip_peer, sip_profile)
    data = edit(req, body=offer(sip_peer), add=[("Content-Type", "application/sdp")], content_length=-999)
    flow = _send(sip_peer, sip_profile, data)
    wait = answer_wait(sip_profile) if sip_profile.target.transport == "udp" else quiet_time(sip_profile)
    final = final_to(sip_peer, call_id=req.call_id, timeout=wait)
    got = f"no response within {wait:g} s" if final is None else f"{final.status} {final.reason}"
    if sip_profile.target.transport == "udp":
        sip_should(final is not None and final.status == 400, MALFORMED_400, "RFC 3261 §21.4.1, RFC 4475 §3.1.2.3",
                   f"an OPTIONS with Content-Length: -999 was answered {got}, not 400 Bad Request")
    else:
        closed = flow is not None and all(f.id != flow for f in sip_peer.endpoint().flows())
        sip_should(final.status == 400 if final is not None else closed, MALFORMED_400,
                   "RFC 3261 §21.4.1, RFC 4475 §3.1.2.3",
                   f"an OPTIONS with Content-Length: -999 was answered {got}"
                   + ("" if final is not None else " and the connection stayed open") + ", not 400 Bad Request")
    assert_alive(sip_peer, sip_profile, "a negative Content-Length")


@pytest.mark.sip_faults("malformed-silent")
@pytest.mark.sip_purpose("TP-REQ-018", "Duplicated single-value header fields are answered 400", "RFC 3261 §7.3.1",
                         "RFC 4475 §3.3.8")
def test_s7_3_1_duplicate_single_value_headers_gets_400(sip_peer, sip_profile, sip_should):
    """§7.3.1: "Multiple header field rows with the same field-name MAY be present in a message if and only if the
    entire field-value for that header field is defined as a comma-separated list (that is, if follows the grammar
    defined in Section 7.3)." Call-ID, CSeq, To, From and Max-Forwards are not lists. RFC 4475 §3.3.8 (multi01):
    "An element receiving this request must not break.  An element receiving this request would respond with a 400
    Bad Request error." """
    req = _options(sip_peer, sip_profile)
    n = req.cseq.number
    data = edit(req, replace={
        "Call-ID": [req.call_id, f"{req.call_id}.second"],
        "CSeq": [f"{n} OPTIONS", f"{n + 54} OPTIONS"],
        "To": [req.header("To"), "<sip:other@example.net>"],
        "From": [req.header("From"), "<sip:caller@example.net>;tag=2923420123"],
        "Max-Forwards": ["70", "5"],
    })
    _expect_400(sip_peer, sip_profile, sip_should, req, data, "an OPTIONS with two Call-ID, CSeq, To, From and Max-Forwards",
                "RFC 3261 §7.3.1, RFC 4475 §3.3.8", by="branch")
    assert_alive(sip_peer, sip_profile, "duplicated single-value header fields")


@pytest.mark.sip_purpose("TP-REQ-019", "An unterminated quoted string is answered 400 (or the quote inferred)",
                         "RFC 3261 §25.1", "RFC 4475 §3.1.2.6")
def test_s25_unterminated_quoted_string_gets_400_or_inferred(sip_peer, sip_profile):
    """RFC 4475 §3.1.2.6 (quotbal, To: "Mr. J. User <sip:j.user@example.com>): "An element receiving this request
    should return a 400 Bad Request error.  An element could attempt to infer a terminating quote and accept the
    message." Accepted: 400, or the answer the device gives a well-formed OPTIONS (the inferred quote)."""
    normal = baseline_options(sip_peer, sip_profile)
    req = _options(sip_peer, sip_profile)
    data = edit(req, replace={"To": f'"Mr. J. User <{target_uri(sip_profile)}>'})
    _send(sip_peer, sip_profile, data)
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=req.call_id, timeout=wait)
    assert final is not None, f"no final response within {wait:g} s to an OPTIONS with an unterminated quoted string"
    assert final.status in (400, normal.status), (
        f"an OPTIONS whose To display name has no closing quote was answered {final.status} {final.reason}; RFC 4475 "
        f"§3.1.2.6 allows 400, or inferring the quote and answering as to a well-formed OPTIONS ({normal.status})"
    )
    assert_alive(sip_peer, sip_profile, "an unterminated quoted string")


# ---------------------------------------------------------------------------------------------------------------------
# §8.2.1 - §8.2.3: method, URI scheme, Require, body
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-REQ-020", "A Request-URI with an unknown scheme is answered 416", "RFC 3261 §8.2.2.1",
                         "RFC 3261 §21.4.14", "RFC 4475 §3.3.2")
@pytest.mark.sip_faults("no-416")
def test_s8_2_2_1_unknown_uri_scheme_gets_416(sip_peer, sip_profile, sip_should):
    """§8.2.2.1: "However, the Request-URI identifies the UAS that is to process the request.  If the Request-URI uses
    a scheme not supported by the UAS, it SHOULD reject the request with a 416 (Unsupported URI Scheme) response."
    RFC 4475 §3.3.2 (unkscm): "A parser must accept this as a well-formed SIP request.  An element receiving this
    request will reject it with a 416 Unsupported URI Scheme response."

    Any answer but 416, processing it (2xx) included, or none, is a SHOULD warning: no MUST applies."""
    req = _options(sip_peer, sip_profile)
    data = edit(req, start_line="OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0")
    _send(sip_peer, sip_profile, data)
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=req.call_id, timeout=wait)
    got = f"no final response within {wait:g} s" if final is None else f"{final.status} {final.reason}"
    sip_should(final is not None and final.status == 416, "3261-8.2.2.1-416", "RFC 3261 §8.2.2.1",
               f"a Request-URI with an unknown scheme was answered {got}, not 416"
               + (": the device processed it" if final is not None and 200 <= final.status < 300 else ""))


_REQUIRE = """§8.2.2.3: "If a UAS does not understand an option-tag listed in a Require header field, it MUST respond
    by generating a response with status code 420 (Bad Extension).  The UAS MUST add an Unsupported header field, and
    list in it those options it does not understand amongst those in the Require header field of the request." """


def _tags(value_lines: list[str]) -> set[str]:
    return {t.strip().lower() for line in value_lines for t in line.split(",") if t.strip()}


@quoting(_REQUIRE, """
    RFC 4475 §3.3.5 (bext01): "Any element receiving this request will respond with a 420 Bad Extension response,
    containing an Unsupported header field listing these features from either the Require or Proxy-Require header
    field, depending on the role in which the element is responding." """)
@pytest.mark.sip_purpose("TP-REQ-021", "Unknown option tags in Require are answered 420 listing them",
                         "RFC 3261 §8.2.2.3", "RFC 3261 §21.4.15", "RFC 4475 §3.3.5")
@pytest.mark.sip_faults("no-420", "no-unsupported-420")
def test_s8_2_2_3_unknown_require_gets_420(sip_peer, sip_profile):
    req = _options(sip_peer, sip_profile, headers=[("Require", "nothingSupportsThis, nothingSupportsThisEither")])
    tx = sip_peer.request(req, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    assert final.status == 420, (
        f"an OPTIONS with Require: nothingSupportsThis, nothingSupportsThisEither was answered {final.status} "
        f"{final.reason}, not 420 Bad Extension (RFC 3261 §8.2.2.3)"
    )
    assert final.has_header("Unsupported"), "the 420 has no Unsupported header field (3261-8.2.2.3-unsupported-in-420)"
    listed = _tags(final.header_values("Unsupported"))
    wanted = {"nothingsupportsthis", "nothingsupportsthiseither"}
    assert listed == wanted, (
        f"Unsupported lists {sorted(listed)}; it must list exactly the tags of Require the device does not "
        f"understand, {sorted(wanted)} (RFC 3261 §8.2.2.3, 3261-8.2.2.3-unsupported-in-420)"
    )


@quoting(_REQUIRE, """    Require lists the extensions of the device's profile and two unknown tags: Unsupported names the two unknown ones
    and none of the supported ones. A profile that lists no option tag rules the purpose out (not applicable, as
    ``sip_requires`` does for a missing extension).""")
@pytest.mark.sip_purpose("TP-REQ-022", "A 420 lists only the unknown tags when Require mixes known and unknown ones",
                         "RFC 3261 §8.2.2.3")
@pytest.mark.sip_faults("no-420", "no-unsupported-420")
def test_s8_2_2_3_420_lists_only_unknown_tags(sip_peer, sip_profile):
    # Only option tags go in Require; "rport" (RFC 3581) is a Via parameter the profile lists as a capability.
    known = [e for e in sip_profile.extensions if e and e.lower() not in NOT_OPTION_TAGS]
    if not known:
        not_applicable("the profile lists no option tag the device supports, so Require cannot mix a known tag "
                       "with unknown ones")
    unknown = ["x-sipcert-unknown-a", "x-sipcert-unknown-b"]
    require = ", ".join([known[0], unknown[0], *known[1:], unknown[1]])
    call = start_invite(sip_peer, sip_profile, headers=[("Require", require), ("Supported", ", ".join(known))])
    wait = answer_wait(sip_profile)
    try:
        final = wait_final(sip_peer, call, wait)
    except ExpectationFailed:
        got = describe(call.tx.provisionals)
        try:
            sip_peer.final_response(sip_peer.request(build_cancel(call.invite), sip_profile.target.address), wait)
            sip_peer.final_response(call.tx, wait)
        except ExpectationFailed:
            pass
        raise AssertionError(
            f"an INVITE with Require: {require} got {got} and no final response within {wait:g} s: it was "
            "processed, not answered 420 Bad Extension (RFC 3261 §8.2.2.3)"
        ) from None
    if 200 <= final.status < 300:
        ack(sip_peer, sip_profile, call)
        bye(sip_peer, sip_profile, call)
    assert final.status == 420, (
        f"an INVITE with Require: {require} was answered {final.status} {final.reason}, not 420 Bad Extension "
        "(RFC 3261 §8.2.2.3)"
    )
    listed = _tags(final.header_values("Unsupported"))
    assert listed == set(unknown), (
        f"Unsupported lists {sorted(listed)}; of Require: {require} the device supports {known} (its profile), so it "
        f"must list exactly {unknown} (RFC 3261 §8.2.2.3: those options it does not understand)"
    )


@pytest.mark.sip_purpose("TP-REQ-023", "Require in a CANCEL is ignored (no 420)", "RFC 3261 §8.2.2.3",
                         "RFC 3261 §9.1")
def test_s8_2_2_3_require_in_cancel_ignored(sip_peer, sip_profile):
    """§8.2.2.3: "Note that Require and Proxy-Require MUST NOT be used in a SIP CANCEL request, or in an ACK request
    sent for a non-2xx response.  These header fields MUST be ignored if they are present in these requests." A CANCEL
    carrying Require: nothingSupportsThis must be handled as if the header were absent: whatever the answer, not
    420."""
    cancel = build_cancel(invite_request(sip_peer, sip_profile)).with_header("Require", "nothingSupportsThis")
    tx = sip_peer.request(cancel, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    assert final.status != 420, (
        "a CANCEL with Require: nothingSupportsThis was answered 420: Require in a CANCEL MUST be ignored "
        "(RFC 3261 §8.2.2.3)"
    )


def _probe(peer, profile, method: str) -> Request:
    uri = target_uri(profile)
    extra: list[tuple[str, str]] = []
    kwargs: dict[str, object] = {}
    if method in ("SUBSCRIBE", "PUBLISH", "NOTIFY"):
        extra.append(("Event", "presence"))
    if method in ("SUBSCRIBE", "PUBLISH"):
        extra.append(("Expires", "60"))
    if method == "NOTIFY":
        extra.append(("Subscription-State", "terminated;reason=noresource"))
    if method == "REFER":
        extra.append(("Refer-To", "<sip:nobody@invalid>"))
    if method in ("BYE", "NOTIFY", "INFO", "PRACK", "UPDATE"):
        kwargs["to"] = name_addr(uri.split(";", 1)[0], None, unique("t"))
    if method == "PRACK":
        extra.append(("RAck", "1 1 INVITE"))
    if method == "REGISTER":  # §10.2: the Request-URI names the domain, without user part
        t = profile.target
        uri = f"{'sips' if t.secure else 'sip'}:{t.host}:{t.port}"
    return peer.build_request(method, uri, headers=extra, contact=method in ("SUBSCRIBE", "REFER", "NOTIFY",
                                                                            "REGISTER", "UPDATE"), **kwargs)


@pytest.mark.sip_purpose("TP-REQ-024", "A known but not allowed method is answered 405 with Allow", "RFC 3261 §8.2.1",
                         "RFC 3261 §21.4.6", "RFC 3261 §20.5")
@pytest.mark.sip_faults("no-allow-405")
def test_s8_2_1_known_method_not_allowed_gets_405_with_allow(sip_peer, sip_profile):
    """§8.2.1: "If the UAS recognizes but does not support the method of a request, it MUST generate a 405 (Method Not
    Allowed) response. [...] The UAS MUST also add an Allow header field to the 405 (Method Not Allowed) response.  The
    Allow header field MUST list the set of methods supported by the UAS generating the message."

    The standard methods the profile does not list are tried one by one until one gets 405 (501 means the device does
    not recognize that one). None getting 405 is inconclusive. The Allow of the 405 must be there, must not list the
    method it refuses, and must list the methods the profile says the device supports."""
    candidates = [m for m in ("PUBLISH", "NOTIFY", "SUBSCRIBE", "REFER", "MESSAGE", "UPDATE", "INFO", "PRACK",
                              "REGISTER") if m in STANDARD_METHODS and m not in sip_profile.methods]
    seen: list[str] = []
    for method in candidates:
        req = _probe(sip_peer, sip_profile, method)
        tx = sip_peer.request(req, sip_profile.target.address)
        try:
            final = sip_peer.final_response(tx, answer_wait(sip_profile))
        except ExpectationFailed:
            seen.append(f"{method}: no answer")
            continue
        seen.append(f"{method}: {final.status}")
        if final.status != 405:
            continue
        assert final.has_header("Allow"), f"the 405 to {method} has no Allow (RFC 3261 §8.2.1, 3261-8.2.1-allow-in-405)"
        allow = {m.upper() for m in final.allow}
        assert method not in allow, f"the 405 to {method} lists {method} in Allow: {', '.join(final.allow)}"
        missing = [m for m in sip_profile.methods if m != "REGISTER" and m.upper() not in allow]
        assert not missing, (
            f"the Allow of the 405 to {method} ({', '.join(final.allow)}) lacks {', '.join(missing)}, which the "
            "device supports (its profile): Allow MUST list the methods supported (RFC 3261 §8.2.1)"
        )
        return
    tried = "; ".join(seen) or "no standard method is missing from the profile"
    inconclusive(f"no method the device knows but does not allow was found ({tried})")


@pytest.mark.sip_purpose("TP-REQ-025", "An unknown method is answered 501", "RFC 3261 §21.5.2", "RFC 3261 §8.2.1",
                         "RFC 4475 §3.1.1.2")
def test_s21_5_2_unknown_method_gets_501(sip_peer, sip_profile):
    """§21.5.2 (501 Not Implemented): "This is the appropriate response when a UAS does not recognize the request
    method and is not capable of supporting it for any user." and "Note that a 405 (Method Not Allowed) is sent when
    the server recognizes the request method, but that method is not allowed or supported." RFC 4475 §3.1.1.2
    (intmeth, the method !interesting-Method0123456789_*+`.%indeed'~): "Endpoints will generate a 501 listing the
    methods they understand in an Allow header field." """
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    req = sip_peer.build_request(method, target_uri(sip_profile), contact=False)
    tx = sip_peer.request(req, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    assert final.status == 501, (
        f"a request with the unknown method {method} was answered {final.status} {final.reason}, not 501 Not "
        "Implemented (RFC 3261 §21.5.2, RFC 4475 §3.1.1.2)"
    )
    if not final.has_header("Allow"):
        sip_peer.trace.note("the 501 has no Allow (RFC 4475 §3.1.1.2 expects one; RFC 3261 does not require it)")


@pytest.mark.sip_purpose("TP-REQ-026", "A request with SIP-Version SIP/7.0 is answered 505", "RFC 3261 §21.5.6",
                         "RFC 3261 §7.1", "RFC 4475 §3.1.2.16")
@pytest.mark.sip_faults("no-505")
def test_s21_5_6_unknown_sip_version_gets_505(sip_peer, sip_profile, sip_should):
    """§21.5.6 (505 Version Not Supported): "The server does not support, or refuses to support, the SIP protocol
    version that was used in the request." RFC 4475 §3.1.2.16 (badvers, OPTIONS ... SIP/7.0): "To an element
    implementing [RFC3261], this request is malformed due to its high version number.  The element should respond to
    the request with a 505 Version Not Supported error." Only the Request-Line says SIP/7.0 here: the Via stays
    SIP/2.0 so the response can be routed by it (§18.2.2). No MUST asks for the 505: another answer, or none, is a
    SHOULD warning."""
    req = _options(sip_peer, sip_profile)
    data = edit(req, start_line=f"OPTIONS {req.uri_text} SIP/7.0")
    _send(sip_peer, sip_profile, data)
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=req.call_id, timeout=wait)
    got = f"no final response within {wait:g} s" if final is None else f"{final.status} {final.reason}"
    sip_should(final is not None and final.status == 505, "3261-21.5.6-505", "RFC 3261 §21.5.6, RFC 4475 §3.1.2.16",
               f"an OPTIONS with SIP-Version SIP/7.0 was answered {got}, not 505 Version Not Supported")


@pytest.mark.sip_purpose("TP-REQ-027", "An INVITE with a body of unknown type is answered 415 with Accept",
                         "RFC 3261 §8.2.3", "RFC 3261 §21.4.13", "RFC 4475 §3.3.6")
@pytest.mark.sip_faults("no-accept-415")
def test_s8_2_3_unsupported_body_gets_415_with_accept(sip_peer, sip_profile):
    """§8.2.3: "If there are any bodies whose type (indicated by the Content-Type), language (indicated by the
    Content-Language) or encoding (indicated by the Content-Encoding) are not understood, and that body part is not
    optional (as indicated by the Content-Disposition header field), the UAS MUST reject the request with a 415
    (Unsupported Media Type) response.  The response MUST contain an Accept header field listing the types of all
    bodies it understands, in the event the request contained bodies of types not supported by the UAS."
    RFC 4475 §3.3.6 (invut): "An endpoint receiving this request would reject it with a 415 Unsupported Media Type
    error." §13.2.1: SDP "MUST be supported by all user agents", so Accept lists application/sdp."""
    body = b'<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n'
    inv = sip_peer.build_request("INVITE", target_uri(sip_profile), body=body,
                                 content_type="application/unknownformat")
    tx = sip_peer.request(inv, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    if 200 <= final.status < 300:
        end_call(sip_peer, sip_profile, inv, final)
    assert final.status == 415, (
        f"an INVITE with a body of type application/unknownformat was answered {final.status} {final.reason}, not "
        "415 Unsupported Media Type (RFC 3261 §8.2.3)"
    )
    assert final.has_header("Accept"), "the 415 has no Accept (RFC 3261 §8.2.3, 3261-8.2.3-accept-in-415)"
    types = {t.split(";", 1)[0].strip().lower() for v in final.header_values("Accept") for t in v.split(",")}
    assert "application/sdp" in types, f"the 415's Accept ({', '.join(sorted(types))}) does not list application/sdp"
    assert "application/unknownformat" not in types, "the 415's Accept lists the type it refused"


# ---------------------------------------------------------------------------------------------------------------------
# 481: requests for dialogs and transactions that do not exist
# ---------------------------------------------------------------------------------------------------------------------

_S12_2_2 = """§12.2.2: "If the request has a tag in the To header field, but the dialog identifier does not match any
    existing dialogs, [...] Based on the To tag, the UAS MAY either accept or reject the request. [...] If the UAS
    wishes to reject the request because it does not wish to recreate the dialog, it MUST respond to the request with
    a 481 (Call/Transaction Does Not Exist) status code and pass that to the server transaction." """


def _unknown_dialog_request(peer, profile, method: str, **kwargs) -> Request:
    uri = target_uri(profile)
    return peer.build_request(method, uri, to=name_addr(uri.split(";", 1)[0], None, unique("t")), **kwargs)


@quoting("""§15.1.2: "If the BYE does not match an existing dialog, the UAS
    core SHOULD generate a 481 (Call/Transaction Does Not Exist) response and pass that to the server transaction."
    """, _S12_2_2, """    A BYE with a fresh Call-ID and an unknown To tag: a rejection other than 481 fails (§12.2.2 MUST); accepting it is
    a SHOULD warning (§15.1.2).""")
@pytest.mark.sip_purpose("TP-REQ-028", "A BYE for no dialog is answered 481", "RFC 3261 §15.1.2", "RFC 3261 §12.2.2")
def test_s15_1_2_bye_outside_dialog_gets_481(sip_peer, sip_profile, sip_should):
    bye_req = _unknown_dialog_request(sip_peer, sip_profile, "BYE", contact=False)
    tx = sip_peer.request(bye_req, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    if 200 <= final.status < 300:
        sip_should(False, "3261-15.1.2-bye-481", "RFC 3261 §15.1.2",
                   f"a BYE for a dialog that does not exist was answered {final.status} {final.reason}, not 481")
        return
    assert final.status == 481, (
        f"a BYE with an unknown To tag was rejected with {final.status} {final.reason}; a UAS that rejects a request "
        "for a dialog it does not have MUST answer 481 (RFC 3261 §12.2.2)"
    )


@pytest.mark.sip_purpose("TP-REQ-029", "A CANCEL matching no transaction is answered 481, never 487",
                         "RFC 3261 §9.2", "RFC 3261 §21.4.25")
def test_s9_2_cancel_without_transaction_gets_481(sip_peer, sip_profile, sip_should):
    """§9.2: "If the UAS did not find a matching transaction for the CANCEL according to the procedure above, it SHOULD
    respond to the CANCEL with a 481 (Call Leg/Transaction Does Not Exist)." §21.4.25 (487 Request Terminated): "This
    response is never returned for a CANCEL request itself."

    The CANCEL is built for an INVITE that was never sent. It must be answered (a final response), never 487; 481 is
    the SHOULD."""
    cancel = build_cancel(invite_request(sip_peer, sip_profile))
    tx = sip_peer.request(cancel, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    assert final.status != 487, "a CANCEL was answered 487, which is never returned for a CANCEL (RFC 3261 §21.4.25)"
    sip_should(final.status == 481, "3261-9.2-cancel-481", "RFC 3261 §9.2",
               f"a CANCEL matching no transaction was answered {final.status} {final.reason}, not 481")


@pytest.mark.sip_purpose("TP-REQ-030", "A PRACK for no dialog is answered 481", "RFC 3262 §3", "RFC 3261 §12.2.2")
@pytest.mark.sip_requires(methods=("PRACK",), extensions=("100rel",))
@pytest.mark.sip_faults("no-481")
def test_rfc3262_s3_prack_outside_dialog_gets_481(sip_peer, sip_profile):
    """RFC 3262 §3: "If a PRACK request is received by the UA core that does not match any unacknowledged reliable
    provisional response, the UAS MUST respond to the PRACK with a 481 response." A PRACK with a fresh Call-ID, an
    unknown To tag and RAck: 1 1 INVITE matches nothing."""
    prack = _unknown_dialog_request(sip_peer, sip_profile, "PRACK", contact=False, headers=[("RAck", "1 1 INVITE")])
    tx = sip_peer.request(prack, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    assert final.status == 481, (
        f"a PRACK matching no reliable provisional response was answered {final.status} {final.reason}, not 481 "
        "(RFC 3262 §3, 3262-3-prack-481)"
    )


@quoting(_S12_2_2, """    RFC 6086 §4.2.1 sends INFO "within an existing invite dialog usage". An INFO with a fresh Call-ID and an unknown To
    tag: a rejection other than 481 fails; acceptance (the MAY) is inconclusive.""")
@pytest.mark.sip_purpose("TP-REQ-031", "An INFO for no dialog is answered 481", "RFC 3261 §12.2.2", "RFC 6086 §4.2.1")
@pytest.mark.sip_requires(methods=("INFO",))
def test_s12_2_2_info_outside_dialog_gets_481(sip_peer, sip_profile):
    info = _unknown_dialog_request(sip_peer, sip_profile, "INFO", contact=False)
    tx = sip_peer.request(info, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    if 200 <= final.status < 300:
        inconclusive(f"the device accepted an INFO for an unknown dialog ({final.status}), which "
                    "§12.2.2 allows (MAY accept); the 481 could not be exercised")
    assert final.status == 481, (
        f"an INFO with an unknown To tag was rejected with {final.status} {final.reason}; a UAS that rejects a "
        "request for a dialog it does not have MUST answer 481 (RFC 3261 §12.2.2)"
    )


# ---------------------------------------------------------------------------------------------------------------------
# 482 merged requests, 500 out-of-order requests
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-REQ-032", "A merged request is answered 482", "RFC 3261 §8.2.2.2", "RFC 3261 §21.4.20")
@pytest.mark.sip_faults("no-482")
def test_s8_2_2_2_merged_request_gets_482(sip_peer, sip_profile, sip_should):
    """§8.2.2.2: "If the request has no tag in the To header field, the UAS core MUST check the request against ongoing
    transactions.  If the From tag, Call-ID, and CSeq exactly match those associated with an ongoing transaction, but
    the request does not match that transaction (based on the matching rules in Section 17.2.3), the UAS core SHOULD
    generate a 482 (Loop Detected) response and pass it to the server transaction." and "The UAS processes the first
    such request received and responds with a 482 (Loop Detected) to the rest of them."

    Two INVITEs, identical but for the top Via branch, back to back. The second must not be processed (no 2xx: the
    device did not check it against the ongoing transaction); 482 is the SHOULD."""
    second, merged, wait = merged_invites(sip_peer, sip_profile)
    assert merged is not None, (
        f"no final response within {wait:g} s to the second INVITE (same From tag, Call-ID and CSeq, another branch)"
    )
    assert not 200 <= merged.status < 300, (
        f"the merged INVITE (same From tag, Call-ID, CSeq as a live INVITE, another branch) was answered "
        f"{merged.status} {merged.reason}: the device processed it instead of detecting the merge (RFC 3261 §8.2.2.2)"
    )
    sip_should(merged.status == 482, "3261-8.2.2.2-482", "RFC 3261 §8.2.2.2",
               f"a merged request was answered {merged.status} {merged.reason}, not 482 Loop Detected")


@pytest.mark.sip_purpose("TP-REQ-033", "An in-dialog request with a lower CSeq is answered 500", "RFC 3261 §12.2.2")
@pytest.mark.sip_faults("no-500-dialog-cseq")
def test_s12_2_2_lower_cseq_in_dialog_gets_500(sip_peer, sip_profile):
    """§12.2.2: "If the remote sequence number was not empty, but the sequence number of the request is lower than the
    remote sequence number, the request is out of order and MUST be rejected with a 500 (Server Internal Error)
    response." After an INVITE with CSeq 5000 establishes the dialog, a BYE with CSeq 4999 is out of order; the
    session then ends with a BYE with CSeq 5001."""
    inv = invite_request(sip_peer, sip_profile, cseq=5000)
    tx = sip_peer.request(inv, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    if not 200 <= final.status < 300:
        end_call(sip_peer, sip_profile, inv, final)
        inconclusive(f"the INVITE was answered {final.status} {final.reason}, no dialog to test in")
    dialog = Dialog.from_response(inv, final, secure_transport=sip_profile.target.secure)
    sip_peer.send(dialog.create_ack(inv, via=sip_peer.via()), sip_profile.target.address)
    old = dialog.create_request("BYE", via=sip_peer.via(), cseq=4999)
    old_final = sip_peer.final_response(sip_peer.request(old, sip_profile.target.address), answer_wait(sip_profile))
    done = dialog.create_request("BYE", via=sip_peer.via(), cseq=5001)
    try:
        sip_peer.final_response(sip_peer.request(done, sip_profile.target.address), answer_wait(sip_profile))
    except ExpectationFailed:
        pass
    assert old_final.status == 500, (
        f"a BYE with CSeq 4999 in a dialog whose INVITE had CSeq 5000 was answered {old_final.status} "
        f"{old_final.reason}, not 500 (RFC 3261 §12.2.2: out of order requests MUST be rejected with 500)"
    )


# ---------------------------------------------------------------------------------------------------------------------
# §8.2.6: building the response
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-REQ-034", "Responses copy every Via value, in order", "RFC 3261 §8.2.6.2")
@pytest.mark.sip_faults("wrong-via", "via-count")
def test_s8_2_6_2_via_values_copied_in_order(sip_peer, sip_profile):
    """§8.2.6.2: "The Via header field values in the response MUST equal the Via header field values in the request and
    MUST maintain the same ordering." The OPTIONS carries three Via values (two as if from proxies, one with an
    unknown parameter); the response has the same three, in order. The top one may gain received and rport
    (§18.2.1, RFC 3581), nothing else."""
    req = _options(sip_peer, sip_profile)
    second = f"SIP/2.0/UDP proxy1.example.com:5060;branch=z9hG4bK{unique('')};received=192.0.2.1"
    third = f"SIP/2.0/TCP 192.0.2.2:5070;branch=z9hG4bK{unique('')};x-sipcert=Keep"
    req = req.with_header_added("Via", second).with_header_added("Via", third)
    assert isinstance(req, Request) and len(req.via) == 3
    tx = sip_peer.request(req, sip_profile.target.address)
    final = sip_peer.final_response(tx, answer_wait(sip_profile))
    got = final.via
    assert len(got) == 3, (
        f"the {final.status} has {len(got)} Via values, the request had 3 (RFC 3261 §8.2.6.2, 3261-8.2.6.2-via-count): "
        + " | ".join(v.raw for v in got)
    )
    for i, (sent, back) in enumerate(zip(req.via, got, strict=True)):
        same = (sent.protocol.upper(), sent.version, sent.transport.upper(), sent.host.lower(), sent.port) == (
            back.protocol.upper(), back.version, back.transport.upper(), back.host.lower(), back.port)
        skip = {"received", "rport"} if i == 0 else set()
        p_sent = {k.lower(): (v or "").lower() for k, v in sent.params if k.lower() not in skip}
        p_back = {k.lower(): (v or "").lower() for k, v in back.params if k.lower() not in skip}
        assert same and p_sent == p_back, (
            f"Via #{i + 1} of the response is {back.raw!r}, the request had {sent.raw!r} (RFC 3261 §8.2.6.2: equal "
            "values in the same order, 3261-8.2.6.2-via-copied)"
        )


@pytest.mark.sip_purpose("TP-REQ-035", "Responses copy From, Call-ID and CSeq", "RFC 3261 §8.2.6.2",
                         "RFC 3261 §8.1.1.4", "RFC 3261 §20.20")
@pytest.mark.sip_faults("from-changed", "call-id-changed", "cseq-method-wrong")
def test_s8_2_6_2_from_call_id_cseq_copied(sip_peer, sip_profile):
    """§8.2.6.2: "The From field of the response MUST equal the From header field of the request.  The Call-ID header
    field of the response MUST equal the Call-ID header field of the request.  The CSeq header field of the response
    MUST equal the CSeq field of the request." §8.1.1.4: "Call-IDs are case-sensitive and are simply compared
    byte-by-byte." §20.20: "Two From header fields are equivalent if their URIs match, and their parameters match."

    The From carries a display name, a URI parameter, the tag and an extension parameter; the Call-ID mixes case."""
    uri = sip_peer.local_uri()
    from_ = f'"Sip Cert" <{uri};x-uri=Param>;tag={unique("Tg")};x-from=Keep'
    call_id = f"{unique('CaseSensitive-')}@Host.Example"
    req = _options(sip_peer, sip_profile, from_=from_, call_id=call_id, cseq=4711)
    _send(sip_peer, sip_profile, bytes(req))  # raw: a response whose CSeq differs must still reach the test
    wait = answer_wait(sip_profile)
    final = final_to(sip_peer, call_id=call_id, branch=req.transaction_branch, timeout=wait) or final_to(
        sip_peer, branch=req.transaction_branch, timeout=0.1)
    assert final is not None, f"no final response within {wait:g} s to an OPTIONS"
    assert final.header("Call-ID") == call_id, (
        f"Call-ID is {final.header('Call-ID')!r}, the request had {call_id!r} (byte for byte, RFC 3261 §8.2.6.2, "
        "3261-8.2.6.2-call-id-copied)"
    )
    assert final.cseq is not None and (final.cseq.number, final.cseq.method) == (4711, "OPTIONS"), (
        f"CSeq is {final.header('CSeq')!r}, the request had '4711 OPTIONS' (RFC 3261 §8.2.6.2, 3261-8.2.6.2-cseq-copied)"
    )
    assert final.from_ is not None and req.from_ is not None and same_name_addr(req.from_, final.from_), (
        f"From is {final.header('From')!r}, the request had {from_!r} (RFC 3261 §8.2.6.2, §20.20, "
        "3261-8.2.6.2-from-copied)"
    )
    if final.header("From") != from_:
        sip_peer.trace.note(f"From is equivalent but not byte-equal: {final.header('From')!r}")


@pytest.mark.sip_purpose("TP-REQ-036", "Responses but 100 add a To tag and keep the To URI", "RFC 3261 §8.2.6.2")
@pytest.mark.sip_faults("no-to-tag", "to-uri-changed")
def test_s8_2_6_2_to_tag_added_and_to_uri_kept(sip_peer, sip_profile):
    """§8.2.6.2: "However, if the To header field in the request did not contain a tag, the URI in the To header field
    in the response MUST equal the URI in the To header field; additionally, the UAS MUST add a tag to the To header
    field in the response (with the exception of the 100 (Trying) response, in which a tag MAY be present)."

    Checked on the 200 to an OPTIONS and on every response to an INVITE."""
    req = _options(sip_peer, sip_profile)
    tx = sip_peer.request(req, sip_profile.target.address)
    responses = [sip_peer.final_response(tx, answer_wait(sip_profile))]
    call = start_invite(sip_peer, sip_profile)
    final = wait_final(sip_peer, call, answer_wait(sip_profile))
    if 200 <= final.status < 300:
        ack(sip_peer, sip_profile, call)
        bye(sip_peer, sip_profile, call)
    responses += [*call.provisionals, final]
    for r, sent in [(responses[0], req)] + [(r, call.invite) for r in responses[1:]]:
        assert r.to is not None and sent.to is not None
        assert _norm_uri(r.to.uri_text) == _norm_uri(sent.to.uri_text), (
            f"the {r.status} to {sent.method} has To URI {r.to.uri_text!r}, the request had {sent.to.uri_text!r} "
            "(RFC 3261 §8.2.6.2, 3261-8.2.6.2-to-uri)"
        )
        if r.status != 100:
            assert r.to.tag, (
                f"the {r.status} {r.reason} to {sent.method} has no To tag: {r.header('To')!r} (RFC 3261 §8.2.6.2, "
                "3261-8.2.6.2-to-tag)"
            )


def _norm_uri(text: str) -> str:
    scheme, _, rest = text.partition(":")
    user, at, host = rest.rpartition("@")
    hostpart, sep, params = host.partition(";")
    return f"{scheme.lower()}:{user}{at}{hostpart.lower()}{sep}{params}"


@pytest.mark.sip_purpose("TP-REQ-037", "Every response of a transaction but 100 has the same To tag",
                         "RFC 3261 §8.2.6.2")
@pytest.mark.sip_faults("unstable-to-tag")
def test_s8_2_6_2_same_to_tag_on_all_responses(sip_peer, sip_profile):
    """§8.2.6.2: "The same tag MUST be used for all responses to that request, both final and provisional (again
    excepting the 100 (Trying))." Every 101-699 response to an INVITE, retransmissions included, carries one To
    tag. A device that answers with a final response only cannot show this: inconclusive."""
    call = start_invite(sip_peer, sip_profile)
    final = wait_final(sip_peer, call, answer_wait(sip_profile))
    if 200 <= final.status < 300:
        ack(sip_peer, sip_profile, call)
        bye(sip_peer, sip_profile, call)
    tagged = [r for r in [*call.provisionals, final] if r.status != 100]
    tags = {r.to.tag if r.to else None for r in tagged}
    if len(tagged) < 2:
        inconclusive(f"the INVITE got only {describe([*call.provisionals, final])}: no two responses "
                    "besides 100 to compare")
    assert len(tags) == 1, (
        "the responses to one INVITE carry different To tags: "
        + ", ".join(f"{r.status} tag={r.to.tag if r.to else None}" for r in tagged)
        + " (RFC 3261 §8.2.6.2, 3261-8.2.6.2-to-tag-stable)"
    )


@pytest.mark.sip_purpose("TP-REQ-038", "A 100 Trying copies the request's Timestamp", "RFC 3261 §8.2.6.1")
@pytest.mark.sip_faults("no-timestamp-100")
def test_s8_2_6_1_timestamp_copied_into_100(sip_peer, sip_profile):
    """§8.2.6.1: "When a 100 (Trying) response is generated, any Timestamp header field present in the request MUST be
    copied into this 100 (Trying) response.  If there is a delay in generating the response, the UAS SHOULD add a
    delay value into the Timestamp value in the response." Sending a 100 is not always required (§17.2.1): without
    one the copy cannot be checked (inconclusive). The delay value is observed, not judged."""
    call = start_invite(sip_peer, sip_profile, headers=[("Timestamp", "54")])
    final = wait_final(sip_peer, call, answer_wait(sip_profile))
    if 200 <= final.status < 300:
        ack(sip_peer, sip_profile, call)
        bye(sip_peer, sip_profile, call)
    trying = [r for r in call.provisionals if r.status == 100]
    if not trying:
        inconclusive(f"the INVITE got no 100 Trying ({describe([*call.provisionals, final])})")
    for r in trying:
        ts = r.header("Timestamp")
        assert ts is not None, "the 100 Trying has no Timestamp; the INVITE had Timestamp: 54 (RFC 3261 §8.2.6.1, " \
                               "3261-8.2.6.1-timestamp-in-100)"
        assert ts.split()[0] == "54", f"the 100 Trying has Timestamp: {ts}, the INVITE had 54 (RFC 3261 §8.2.6.1)"
        if len(ts.split()) > 1:
            sip_peer.trace.note(f"the 100 Trying adds the delay value {ts.split()[1]}")


