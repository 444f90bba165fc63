"""OPTIONS (RFC 3261 §11): capabilities, and the response rules every answer follows."""

from __future__ import annotations

import pytest

from testcases._support import options

pytestmark = pytest.mark.sip_requires(role="uas")


@pytest.mark.sip_faults("content-length-wrong", "cseq-number-wrong", "syntax-error", "syntax-minor", "provisional-non-invite", "no-content-length")
@pytest.mark.sip_purpose("TP-OPT-001", "OPTIONS is answered 200 with the request's identifiers", "RFC 3261 §11.2",
                         "RFC 3261 §8.2.6.2")
def test_s11_2_options_answered_200(sip_peer, sip_profile):
    """§11.2: "The response to an OPTIONS is constructed using the standard rules for a SIP response as discussed in
    Section 8.2.6. The response code chosen MUST be the same that would have been chosen had the request been an
    INVITE." A device that accepts calls answers 200."""
    final = options(sip_peer, sip_profile)
    assert final.status == 200, f"OPTIONS was answered {final.status} {final.reason}"


@pytest.mark.sip_faults("options-no-capabilities")
@pytest.mark.sip_purpose("TP-OPT-002", "200 to OPTIONS lists the device's methods in Allow", "RFC 3261 §11.2",
                         "RFC 3261 §20.5")
def test_s11_2_options_200_lists_allow(sip_peer, sip_profile, sip_should):
    """§11.2: "Allow, Accept, Accept-Encoding, Accept-Language, and Supported header fields SHOULD be present in a
    200 (OK) response to an OPTIONS request." A SHOULD: missing Allow is a warning; an Allow that omits a method
    the device implements misstates its capabilities (§20.5: "The Allow header field lists the set of methods
    supported by the UA generating the message")."""
    final = options(sip_peer, sip_profile)
    assert final.status == 200, f"OPTIONS was answered {final.status} {final.reason}"
    if sip_should(bool(final.allow), "3261-11.2-options-2xx-headers", "RFC 3261 §11.2", "no Allow in the 200 to OPTIONS"):
        missing = [m for m in sip_profile.methods if m not in final.allow and m != "REGISTER"]
        assert not missing, f"Allow: {', '.join(final.allow)} lacks {', '.join(missing)}, which the profile lists"
