"""Registrar (RFC 3261 §10.3): adding, refreshing, querying and removing bindings, expiry, ordering and rejection.

Run with ``--sip-role registrar``. Each test purpose registers a fresh address-of-record (``sipcert-<8 hex>`` at the
device's domain) and removes its bindings at the end, so the purposes run side by side against one registrar.
Expiry values are chosen well inside what registrars accept; where the registrar answers 423 (Interval Too Brief),
the request is repeated once at its Min-Expires (RFC 3261 §10.2.8) before the purpose is judged.
"""

from __future__ import annotations

import time

import pytest

from conformance.plugin import inconclusive, not_applicable
from conformance.sip import Response
from testcases._register import Registration, binding_for, bindings, new_registration, unregister_all

pytestmark = pytest.mark.sip_requires(role="registrar")

#: §10.3 step 7: "If and only if the requested expiration interval is greater than zero AND smaller than one hour
#: AND less than a registrar-configured minimum, the registrar MAY reject the registration with a response of 423".
ONE_HOUR = 3600
#: How long the purpose that waits for a binding to expire may wait for it (brief: beyond 30 s it is inconclusive).
MAX_EXPIRY_WAIT = 30


@pytest.fixture
def reg(sip_peer, sip_profile):
    """A fresh address-of-record for this test; its bindings are removed afterwards (``Contact: *``)."""
    r = new_registration(sip_peer, sip_profile)
    yield r
    unregister_all(r)


def _add(reg: Registration, contacts: list[str], expires: int, *, param: bool = True) -> tuple[Response, int]:
    """Register ``contacts`` asking for ``expires`` (as a Contact parameter, or the Expires header when ``param`` is
    false). A 423 is answered once by asking for its Min-Expires (§10.2.8). Returns the final response and the
    expiry finally asked for."""

    def send(value: int) -> Response:
        if param:
            return reg.register([f"<{c}>;expires={value}" for c in contacts])
        return reg.register([f"<{c}>" for c in contacts], expires=value)

    resp = send(expires)
    if resp.status == 423 and resp.min_expires is not None and resp.min_expires > expires:
        expires = resp.min_expires
        resp = send(expires)
    return resp, expires


def _expect_200(reg: Registration, resp: Response, what: str) -> None:
    assert resp.status == 200, f"{what} was answered {reg.describe(resp)}; §10.3 step 8: \"The registrar returns a 200 (OK) response\""


def _listed_once(reg: Registration, resp: Response, contact: str) -> None:
    found = binding_for(resp, contact)
    assert len(found) == 1, (
        f"the 200 should list <{contact}> once (§10.3 step 8: \"The response MUST contain Contact header field values "
        f"enumerating all current bindings\"); it was {reg.describe(resp)}"
    )


def _not_listed(reg: Registration, resp: Response, contact: str, why: str) -> None:
    assert not binding_for(resp, contact), f"<{contact}> is still listed after {why}: {reg.describe(resp)}"


# -- adding, refreshing, querying ----------------------------------------------------------------------------------


@pytest.mark.sip_faults("no-contact-expires", "bindings-not-listed", "register-record-route")
@pytest.mark.sip_purpose("TP-REG-001", "A REGISTER adds a binding; the 200 lists it with its expiry", "RFC 3261 §10.3",
                         "RFC 3261 §10.2.1")
def test_s10_3_add_binding_listed_with_expires(reg):
    """§10.3 step 8: "The registrar returns a 200 (OK) response.  The response MUST contain Contact header field
    values enumerating all current bindings.  Each Contact value MUST feature an "expires" parameter indicating its
    expiration interval chosen by the registrar." (rules 3261-10.3-bindings-listed, 3261-10.3-contact-expires)"""
    contact = reg.contact_uri("a")
    resp, _ = _add(reg, [contact], 600)
    _expect_200(reg, resp, "a REGISTER adding one binding")
    _listed_once(reg, resp, contact)
    b = binding_for(resp, contact)[0]
    raw = b.contact.param("expires")
    assert raw is not None and raw.isdigit(), (
        f"the binding <{contact}> is listed without an expires parameter ({b.contact.raw!r}); §10.3 step 8: \"Each "
        "Contact value MUST feature an \"expires\" parameter\" (rule 3261-10.3-contact-expires)")
    assert int(raw) > 0, f"the binding just added is listed with expires={raw}: it is not a current binding"


@pytest.mark.sip_purpose("TP-REG-002", "A refresh (same Call-ID, CSeq + 1) updates the binding, not a second one",
                         "RFC 3261 §10.2.4", "RFC 3261 §10.3")
def test_s10_3_refresh_updates_binding(reg):
    """§10.2.4: "The UA then issues a REGISTER request for each of its bindings before the expiration interval has
    elapsed." §10.3 step 7: "If the binding does exist, the registrar checks the Call-ID value. ... If they are the
    same, the registrar compares the CSeq value.  If the value is higher than that of the existing binding, it MUST
    update or remove the binding as above." The refresh is answered 200 and the contact is listed once."""
    contact = reg.contact_uri("a")
    first, asked = _add(reg, [contact], 600)
    _expect_200(reg, first, "the first REGISTER")
    refresh = reg.register([f"<{contact}>;expires={asked}"])
    _expect_200(reg, refresh, f"the refresh (same Call-ID, CSeq {reg.cseq - 1})")
    _listed_once(reg, refresh, contact)
    b = binding_for(refresh, contact)[0]
    assert b.expires is not None and 0 < b.expires <= asked, (
        f"the refreshed binding is listed with expires={b.expires} for {asked} s asked for: {reg.describe(refresh)}")


@pytest.mark.sip_faults("bindings-not-listed")
@pytest.mark.sip_purpose("TP-REG-003", "A REGISTER without Contact lists the current bindings and changes none",
                         "RFC 3261 §10.2.3", "RFC 3261 §10.3")
def test_s10_2_3_query_lists_bindings(reg):
    """§10.2.3: "A success response to any REGISTER request contains the complete list of existing bindings,
    regardless of whether the request contained a Contact header field.  If no Contact header field is present in a
    REGISTER request, the list of bindings is left unchanged." §10.3 step 6: "The registrar checks whether the
    request contains the Contact header field.  If not, it skips to the last step." """
    contact = reg.contact_uri("a")
    added, _ = _add(reg, [contact], 600)
    _expect_200(reg, added, "the REGISTER adding a binding")
    query = reg.query()
    _expect_200(reg, query, "a REGISTER without Contact (a query)")
    _listed_once(reg, query, contact)
    again = reg.query()
    _expect_200(reg, again, "a second query")
    _listed_once(reg, again, contact)


# -- removing ------------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-REG-004", "expires=0 on one contact removes that binding only", "RFC 3261 §10.2.2",
                         "RFC 3261 §10.3")
def test_s10_2_2_remove_one_binding(reg):
    """§10.2.2: "A UA requests the immediate removal of a binding by specifying an expiration interval of "0" for
    that contact address in a REGISTER request." §10.3 step 7: "the binding MUST be removed if the expiration time is
    zero"."""
    keep, drop = reg.contact_uri("keep"), reg.contact_uri("drop")
    added, _ = _add(reg, [keep, drop], 600)
    _expect_200(reg, added, "the REGISTER adding two bindings")
    removed = reg.register([f"<{drop}>;expires=0"])
    _expect_200(reg, removed, "a REGISTER with expires=0 on one contact")
    _not_listed(reg, removed, drop, "its removal with expires=0")
    _listed_once(reg, removed, keep)


@pytest.mark.sip_purpose("TP-REG-005", "Contact: * with Expires: 0 removes every binding of the AOR",
                         "RFC 3261 §10.2.2", "RFC 3261 §10.3")
def test_s10_2_2_remove_all_bindings(reg):
    """§10.2.2: "The REGISTER-specific Contact header field value of "*" applies to all registrations" and
    "Use of the "*" Contact header field value allows a registering UA to remove all bindings associated with an
    address-of-record without knowing their precise values." §10.3 step 6: the registrar removes each binding whose
    Call-ID agrees and whose CSeq is lower."""
    c1, c2 = reg.contact_uri("one"), reg.contact_uri("two")
    added, _ = _add(reg, [c1, c2], 600)
    _expect_200(reg, added, "the REGISTER adding two bindings")
    cleared = reg.register(["*"], expires=0)
    _expect_200(reg, cleared, "Contact: * with Expires: 0")
    assert not bindings(cleared), f"the 200 to Contact: * / Expires: 0 still lists {reg.describe(cleared)}"
    query = reg.query()
    _expect_200(reg, query, "a query after removing every binding")
    assert not bindings(query), f"a query after Contact: * / Expires: 0 still lists {reg.describe(query)}"


@pytest.mark.sip_faults("star-accepted")
@pytest.mark.sip_purpose("TP-REG-006", "Contact: * with a non-zero Expires is answered 400, bindings unchanged",
                         "RFC 3261 §10.3")
def test_s10_3_star_with_nonzero_expires_400(reg):
    """§10.3 step 6: "If the Contact header field is present, the registrar checks if there is one Contact field
    value that contains the special value "*" and an Expires field.  If the request has additional Contact fields or
    an expiration time other than zero, the request is invalid, and the server MUST return a 400 (Invalid Request)
    and skip the remaining steps." """
    contact = reg.contact_uri("a")
    added, _ = _add(reg, [contact], 600)
    _expect_200(reg, added, "the REGISTER adding a binding")
    bad = reg.register(["*"], expires=300)
    assert bad.status == 400, f"Contact: * with Expires: 300 was answered {reg.describe(bad)}, not 400 (§10.3 step 6)"
    query = reg.query()
    _expect_200(reg, query, "a query after the rejected Contact: *")
    _listed_once(reg, query, contact)


@pytest.mark.sip_faults("star-accepted")
@pytest.mark.sip_purpose("TP-REG-007", "Contact: * together with another Contact is answered 400", "RFC 3261 §10.3")
def test_s10_3_star_with_other_contact_400(reg):
    """§10.3 step 6: "If the request has additional Contact fields or an expiration time other than zero, the request
    is invalid, and the server MUST return a 400 (Invalid Request) and skip the remaining steps." """
    contact = reg.contact_uri("a")
    added, _ = _add(reg, [contact], 600)
    _expect_200(reg, added, "the REGISTER adding a binding")
    other = reg.contact_uri("b")
    bad = reg.register(["*", f"<{other}>"], expires=0)
    assert bad.status == 400, (
        f"Contact: * with another Contact value was answered {reg.describe(bad)}, not 400 (§10.3 step 6)")
    query = reg.query()
    _expect_200(reg, query, "a query after the rejected Contact: *")
    _listed_once(reg, query, contact)
    _not_listed(reg, query, other, "a request that had to be rejected as a whole")


# -- expiry --------------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-REG-008", "Without an expires parameter the Expires header is the requested expiry",
                         "RFC 3261 §10.3", "RFC 3261 §10.2.1.1")
def test_s10_3_expiry_from_expires_header(reg):
    """§10.3 step 7: "If there is no such parameter, but the request has an Expires header field, that value MUST
    be taken as the requested expiration." and "The registrar MAY choose an expiration less than the requested
    expiration interval." The binding is listed with an expiry from 1 to the requested 1200 s (a registrar that used
    its own default of one hour instead would list more)."""
    contact = reg.contact_uri("a")
    resp, asked = _add(reg, [contact], 1200, param=False)
    _expect_200(reg, resp, f"a REGISTER with Expires: {asked}")
    _listed_once(reg, resp, contact)
    b = binding_for(resp, contact)[0]
    assert b.expires is not None and 0 < b.expires <= asked, (
        f"Expires: {asked} without an expires parameter gave a binding with expires={b.expires}; the requested "
        f"expiration is the Expires header's (§10.3 step 7), which the registrar may only shorten: {reg.describe(resp)}")


@pytest.mark.sip_purpose("TP-REG-009", "The Contact expires parameter wins over the Expires header", "RFC 3261 §10.3",
                         "RFC 3261 §10.2.1.1")
def test_s10_3_expires_parameter_wins(reg):
    """§10.3 step 7: "If the field value has an "expires" parameter, that value MUST be taken as the requested
    expiration." §10.2.1.1: the Expires header "suggests an expiration interval for all Contact header field values
    that do not contain the "expires" parameter". With ``Expires: 2*N`` and ``;expires=N`` the binding lasts at most
    N."""
    contact = reg.contact_uri("a")
    param, header = 900, 1800
    resp = reg.register([f"<{contact}>;expires={param}"], expires=header)
    if resp.status == 423 and resp.min_expires is not None and resp.min_expires > param:
        param, header = resp.min_expires, max(2 * resp.min_expires, resp.min_expires + 60)
        resp = reg.register([f"<{contact}>;expires={param}"], expires=header)
    _expect_200(reg, resp, f"a REGISTER with Expires: {header} and ;expires={param}")
    _listed_once(reg, resp, contact)
    b = binding_for(resp, contact)[0]
    assert b.expires is not None and 0 < b.expires <= param, (
        f"with Expires: {header} and the contact parameter expires={param}, the binding is listed with "
        f"expires={b.expires}: the parameter is the requested expiration (§10.3 step 7): {reg.describe(resp)}")


@pytest.mark.sip_faults("no-min-expires-423", "register-6xx")
@pytest.mark.sip_purpose("TP-REG-010", "A too brief expiry is answered 423 with Min-Expires, and nothing is bound",
                         "RFC 3261 §10.3", "RFC 3261 §20.23")
def test_s10_3_interval_too_brief_423(reg):
    """§10.3 step 7: "The registrar MAY choose an expiration less than the requested expiration interval.  If and only
    if the requested expiration interval is greater than zero AND smaller than one hour AND less than a
    registrar-configured minimum, the registrar MAY reject the registration with a response of 423 (Interval Too
    Brief).  This response MUST contain a Min-Expires header field that states the minimum expiration interval the
    registrar is willing to honor.  It then skips the remaining steps." A 1 s registration is asked for. A registrar
    that accepts it instead is free to (MAY): the purpose is inconclusive. §10.2.1.1: "(As described in Section 10.3,
    the registrar selects the actual time interval based on its local policy.)" -- no sentence forbids granting more
    than the second asked for (raising it to the registrar's minimum, as Kamailio does), so the expiry it lists is
    noted, not judged."""
    contact = reg.contact_uri("a")
    resp = reg.register([f"<{contact}>;expires=1"])
    if resp.status == 200:
        chosen = [b.expires for b in binding_for(resp, contact)]
        if any(e is not None and e > 1 for e in chosen):
            reg.peer.trace.note(f"1 s was asked for and the registrar chose expires={chosen}: longer, which its local "
                                "policy may do (§10.2.1.1); 423 is the way to tell the UA its minimum (a MAY)")
        inconclusive(f"the registrar accepted a 1 s registration (binding listed with expires={chosen}), so the 423 "
                     "it MAY send for an interval below its minimum was not exercised")
    assert resp.status == 423, f"a REGISTER asking for 1 s was answered {reg.describe(resp)}, neither 200 nor 423"
    assert resp.min_expires is not None, (
        "the 423 has no Min-Expires; §10.3 step 7: \"This response MUST contain a Min-Expires header field\" "
        "(rule 3261-10.3-min-expires-in-423)")
    assert resp.min_expires > 1, (
        f"the 423 to a 1 s request says Min-Expires: {resp.min_expires}; 423 is only for an interval \"less than a "
        "registrar-configured minimum\" (§10.3 step 7)")
    query = reg.query()
    _expect_200(reg, query, "a query after the 423")
    _not_listed(reg, query, contact, "the 423 (\"It then skips the remaining steps\")")


@pytest.mark.sip_purpose("TP-REG-011", "No 423 for an expiry of one hour", "RFC 3261 §10.3")
def test_s10_3_no_423_at_one_hour(reg):
    """§10.3 step 7: "If and only if the requested expiration interval is greater than zero AND smaller than one
    hour AND less than a registrar-configured minimum, the registrar MAY reject the registration with a response of
    423 (Interval Too Brief)." A request for exactly 3600 s is not smaller than one hour: no 423, a 200."""
    contact = reg.contact_uri("a")
    resp = reg.register([f"<{contact}>;expires={ONE_HOUR}"])
    assert resp.status != 423, (
        f"a request for {ONE_HOUR} s was answered 423 (Min-Expires: {resp.min_expires}); §10.3 step 7 allows 423 "
        "only for an interval smaller than one hour")
    _expect_200(reg, resp, f"a REGISTER for {ONE_HOUR} s")
    _listed_once(reg, resp, contact)
    b = binding_for(resp, contact)[0]
    assert b.expires is not None and 0 < b.expires <= ONE_HOUR, (
        f"{ONE_HOUR} s was asked for and the registrar chose expires={b.expires}: {reg.describe(resp)}")


@pytest.mark.sip_purpose("TP-REG-012", "After a 423, a REGISTER asking for Min-Expires is accepted",
                         "RFC 3261 §10.2.8", "RFC 3261 §20.23")
def test_s10_2_8_retry_at_min_expires_accepted(reg):
    """§10.2.8: "If a UA receives a 423 (Interval Too Brief) response, it MAY retry the registration after making
    the expiration interval of all contact addresses in the REGISTER request equal to or greater than the expiration
    interval within the Min-Expires header field of the 423 (Interval Too Brief) response." §10.3 step 7: Min-Expires
    "states the minimum expiration interval the registrar is willing to honor" -- so the retry is honoured: 200, and
    a binding that lasts no longer than asked for."""
    contact = reg.contact_uri("a")
    first = reg.register([f"<{contact}>;expires=1"])
    if first.status != 423 or first.min_expires is None:
        inconclusive(f"the registrar answered a 1 s request {first.status} {first.reason}, not 423 with Min-Expires")
    minimum = first.min_expires
    retry = reg.register([f"<{contact}>;expires={minimum}"])
    assert retry.status == 200, (
        f"after 423 with Min-Expires: {minimum}, a REGISTER asking for exactly {minimum} s was answered "
        f"{reg.describe(retry)}; Min-Expires is the minimum \"the registrar is willing to honor\"")
    _listed_once(reg, retry, contact)
    b = binding_for(retry, contact)[0]
    assert b.expires is not None and 0 < b.expires <= minimum, (
        f"{minimum} s was asked for and the registrar chose expires={b.expires}: {reg.describe(retry)}")


@pytest.mark.sip_purpose("TP-REG-013", "A one-minute registration is granted; the expiry the registrar chose is listed",
                         "RFC 3261 §10.3", "RFC 3261 §10.2.1.1")
def test_s10_3_chosen_expiry_listed(reg):
    """§10.3 step 7: "The registrar MAY choose an expiration less than the requested expiration interval." §10.2.1.1:
    "When a client sends a REGISTER request, it MAY suggest an expiration interval that indicates how long the client
    would like the registration to be valid.  (As described in Section 10.3, the registrar selects the actual time
    interval based on its local policy.)" §10.3 step 8: "The registrar returns a 200 (OK) response.  The response MUST
    contain Contact header field values enumerating all current bindings.  Each Contact value MUST feature an
    "expires" parameter indicating its expiration interval chosen by the registrar."

    One minute is asked for (or Min-Expires after a 423): a 200 that lists the binding once, with a positive expiry.
    A shorter one is the MAY; a longer one is the registrar's local policy, which no sentence forbids: noted in the
    trace, not judged (an earlier version failed it, docs/independent-devices.md S7)."""
    contact = reg.contact_uri("a")
    resp, asked = _add(reg, [contact], 60)
    _expect_200(reg, resp, f"a REGISTER for {asked} s")
    _listed_once(reg, resp, contact)
    b = binding_for(resp, contact)[0]
    assert b.expires is not None and b.expires > 0, (
        f"{asked} s was asked for and the 200 lists the binding with expires={b.expires}: a binding just added is not "
        f"expired (§10.3 step 7): {reg.describe(resp)}")
    if b.expires > asked:
        reg.peer.trace.note(f"{asked} s was asked for and the registrar chose {b.expires} s: longer, by its local "
                            "policy (§10.2.1.1)")


@pytest.mark.sip_timer(35)
@pytest.mark.sip_purpose("TP-REG-014", "A binding expires when its interval has passed without refresh",
                         "RFC 3261 §10.2.2", "RFC 3261 §10.3")
def test_s10_2_2_binding_expires(reg):
    """§10.2.2: "Registrations are soft state and expire unless refreshed". §10.3 step 8: the 200 enumerates "all
    current bindings" -- an expired binding is not one. A short registration (5 s, or Min-Expires after a 423 when it
    is at most 30 s) is queried for after its chosen interval and a margin."""
    contact = reg.contact_uri("a")
    resp = reg.register([f"<{contact}>;expires=5"])
    if resp.status == 423 and resp.min_expires is not None:
        if resp.min_expires > MAX_EXPIRY_WAIT:
            inconclusive(f"the registrar's Min-Expires is {resp.min_expires} s: waiting for a binding to expire would "
                         f"take longer than {MAX_EXPIRY_WAIT} s")
        resp = reg.register([f"<{contact}>;expires={resp.min_expires}"])
    _expect_200(reg, resp, "a short REGISTER")
    _listed_once(reg, resp, contact)
    chosen = binding_for(resp, contact)[0].expires
    assert chosen is not None, f"no expiry for the binding: {reg.describe(resp)}"
    if chosen > MAX_EXPIRY_WAIT:
        inconclusive(f"the registrar chose {chosen} s for the binding: too long to wait for")
    started = time.monotonic()
    reg.peer.sleep(chosen + max(1.5, 0.1 * chosen))
    query = reg.query()
    _expect_200(reg, query, "a query after the binding's interval")
    _not_listed(reg, query, contact, f"its interval of {chosen} s ({time.monotonic() - started:.1f} s ago)")


# -- ordering and Call-ID ------------------------------------------------------------------------------------------


@pytest.mark.sip_faults("no-500-cseq")
@pytest.mark.sip_purpose("TP-REG-015", "A REGISTER with a lower CSeq for the same Call-ID fails with 500, bindings "
                         "unchanged", "RFC 3261 §10.3")
def test_s10_3_out_of_order_cseq_500(reg):
    """§10.3 step 7: "If they are the same, the registrar compares the CSeq value.  If the value is higher than that
    of the existing binding, it MUST update or remove the binding as above.  If not, the update MUST be aborted and
    the request fails." and "If any one of them fails ..., the request MUST fail with a 500 (Server Error) response
    and all tentative binding updates MUST be removed." A removal (expires=0) with a lower CSeq is sent."""
    contact = reg.contact_uri("a")
    reg.cseq = 20
    added, _ = _add(reg, [contact], 600)
    _expect_200(reg, added, "the REGISTER adding a binding")
    last = added.cseq.number if added.cseq else reg.cseq - 1
    stale = reg.register([f"<{contact}>;expires=0"], cseq=last - 5)
    assert stale.status == 500, (
        f"a removal with CSeq {last - 5} after CSeq {last} (same Call-ID) was answered {reg.describe(stale)}; "
        "§10.3 step 7: the update \"MUST be aborted and the request fails\" with 500")
    query = reg.query()
    _expect_200(reg, query, "a query after the out-of-order REGISTER")
    _listed_once(reg, query, contact)


@pytest.mark.sip_purpose("TP-REG-016", "A REGISTER with a new Call-ID updates the binding whatever its CSeq",
                         "RFC 3261 §10.3")
def test_s10_3_new_call_id_replaces_binding(reg, sip_peer):
    """§10.3 step 7: "If the Call-ID value in the existing binding differs from the Call-ID value in the request,
    the binding MUST be removed if the expiration time is zero and updated otherwise." The CSeq is compared only for
    the same Call-ID: a new Call-ID with a lower CSeq updates the binding (to a shorter expiry), then removes it."""
    from conformance.sip import new_call_id

    contact = reg.contact_uri("a")
    reg.cseq = 100
    added, asked = _add(reg, [contact], 1200)
    _expect_200(reg, added, "the REGISTER adding a binding")
    other_call = new_call_id(sip_peer.endpoint().local[0].replace(":", "-"))
    shorter = max(asked // 2, 1)
    updated = reg.register([f"<{contact}>;expires={shorter}"], call_id=other_call, cseq=1)
    if updated.status == 423 and updated.min_expires is not None:
        inconclusive(f"the registrar's minimum ({updated.min_expires} s) leaves no room for a shorter expiry")
    assert updated.status == 200, (
        f"a REGISTER with a new Call-ID and CSeq 1 for an existing binding (Call-ID {reg.call_id}, CSeq "
        f"{reg.cseq - 1}) was answered {reg.describe(updated)}; with a different Call-ID the binding \"MUST be ... "
        "updated\" (§10.3 step 7)")
    _listed_once(reg, updated, contact)
    b = binding_for(updated, contact)[0]
    assert b.expires is not None and 0 < b.expires <= shorter, (
        f"the binding was to be updated to {shorter} s, and is listed with expires={b.expires}: the update with the "
        f"new Call-ID was not applied: {reg.describe(updated)}")
    removed = reg.register([f"<{contact}>;expires=0"], call_id=other_call, cseq=2)
    _expect_200(reg, removed, "the removal with the new Call-ID")
    _not_listed(reg, removed, contact, "its removal under the new Call-ID")


# -- several contacts ----------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-REG-017", "Several contacts in one REGISTER are all bound and listed",
                         "RFC 3261 §10.2.1.2", "RFC 3261 §10.3")
def test_s10_3_several_contacts(reg):
    """§10.2.1.2: "If more than one Contact is sent in a REGISTER request, the registering UA intends to associate
    all of the URIs in these Contact header field values with the address-of-record present in the To field."
    §10.3 step 7: "The registrar now processes each contact address in the Contact header field in turn." """
    contacts = [reg.contact_uri(label) for label in ("one", "two", "three")]
    resp, _ = _add(reg, contacts, 600)
    _expect_200(reg, resp, "a REGISTER with three contacts")
    for c in contacts:
        _listed_once(reg, resp, c)


@pytest.mark.sip_purpose("TP-REG-018", "The q value of each contact is kept", "RFC 3261 §10.2.1.2", "RFC 3261 §20.10")
def test_s10_2_1_2_q_values_kept(reg, sip_should):
    """§10.2.1.2: "This list can be prioritized with the "q" parameter in the Contact header field.  The "q"
    parameter indicates a relative preference for the particular Contact header field value compared to other
    bindings for this address-of-record." The preference belongs to the binding: a q the 200 lists must be the one
    registered; a 200 that drops it hides the preference (warning)."""
    high, low = reg.contact_uri("high"), reg.contact_uri("low")
    resp = reg.register([f"<{high}>;q=0.7;expires=600", f"<{low}>;q=0.2;expires=600"])
    if resp.status == 423 and resp.min_expires is not None:
        m = resp.min_expires
        resp = reg.register([f"<{high}>;q=0.7;expires={m}", f"<{low}>;q=0.2;expires={m}"])
    _expect_200(reg, resp, "a REGISTER with q values")
    for uri, q in ((high, 0.7), (low, 0.2)):
        _listed_once(reg, resp, uri)
        b = binding_for(resp, uri)[0]
        if sip_should(b.q is not None, "3261-10.2.1.2-q-kept", "RFC 3261 §10.2.1.2",
                      f"the binding <{uri}> registered with q={q} is listed without q"):
            assert b.q is not None and abs(b.q - q) < 1e-9, (
                f"<{uri}> was registered with q={q} and is listed with q={b.q}: {reg.describe(resp)}")


# -- rejection -----------------------------------------------------------------------------------------------------


@pytest.mark.sip_purpose("TP-REG-019", "An address-of-record outside the registrar's domain is answered 404",
                         "RFC 3261 §10.3")
def test_s10_3_foreign_aor_404(reg, sip_profile):
    """§10.3 step 5: "The registrar extracts the address-of-record from the To header field of the request.  If the
    address-of-record is not valid for the domain in the Request-URI, the registrar MUST send a 404 (Not Found)
    response and skip the remaining steps." Step 4 comes first: "If the authenticated user is not authorized to
    modify bindings, the registrar MUST return a 403 (Forbidden)", so 403 is accepted as well. The Request-URI names
    the device's domain (from the profile's aor); To and From name ``<user>@sipcert.invalid`` (RFC 6761)."""
    if not sip_profile.aor:
        not_applicable("the profile names no aor, so the registrar's domain is not known")
    contact = reg.contact_uri("a")
    foreign = f"sip:{reg.user}@sipcert.invalid"
    req = reg.build([f"<{contact}>;expires=600"], to=f"<{foreign}>")
    req = req.with_header("From", f"<{foreign}>;tag={reg.from_tag}")  # type: ignore[assignment]
    resp = reg.send(req)  # type: ignore[arg-type]
    assert resp.status in (404, 403), (
        f"a REGISTER for {foreign} sent to the registrar of {sip_profile.aor.split('@')[-1]} was answered "
        f"{reg.describe(resp)}; §10.3 step 5: \"MUST send a 404 (Not Found)\" (or 403 from step 4)")
    assert not binding_for(resp, contact), f"the rejected REGISTER lists the contact: {reg.describe(resp)}"


@pytest.mark.sip_purpose("TP-REG-020", "A To that is not a SIP or SIPS URI is rejected: 400 (or 404), nothing bound",
                         "RFC 3261 §10.2", "RFC 3261 §10.3", "RFC 4475 §3.3.4")
def test_s10_2_to_not_sip_uri_rejected(reg, sip_peer):
    """§10.2, To: "This address-of-record MUST be a SIP URI or SIPS URI." RFC 4475 §3.3.4 (unksm2): "A registrar
    would reject this request with a 400 Bad Request response, since the To: header field is required to contain a
    SIP or SIPS URI as an AOR." RFC 3261 §10.3 step 5 reads the same request as an address-of-record "not valid for
    the domain in the Request-URI" and answers "404 (Not Found)"; RFC 4475 "is NOT NORMATIVE on any aspect of SIP"
    (its §1), so both are accepted (the trace notes which). Registering the binding is not."""
    contact = reg.contact_uri("a")
    req = reg.build([f"<{contact}>;expires=600"])
    req = req.with_header("To", "<isbn:2983792873>")  # type: ignore[assignment]
    resp = reg.send(req)  # type: ignore[arg-type]
    assert resp.status in (400, 404), (
        f"a REGISTER with To: <isbn:2983792873> was answered {reg.describe(resp)}, not 400 (RFC 4475 §3.3.4) or 404 "
        "(RFC 3261 §10.3 step 5)")
    sip_peer.trace.note(f"TP-REG-020: the non-SIP address-of-record was rejected with {resp.status} "
                        f"({'RFC 4475 §3.3.4' if resp.status == 400 else 'RFC 3261 §10.3 step 5'})")
    assert not binding_for(resp, contact), f"the rejected REGISTER lists the contact: {reg.describe(resp)}"


@pytest.mark.sip_purpose("TP-REG-021", "The 200 to REGISTER carries a Date", "RFC 3261 §10.3", "RFC 3261 §10.2.5")
def test_s10_3_200_carries_date(reg, sip_should):
    """§10.3 step 8: "The response SHOULD include a Date header field." (§10.2.5: the client "MAY use this header
    field to learn the current time".) A SHOULD: a missing Date is a warning; a Date that is present must be an
    RFC 1123 date in GMT (§20.17)."""
    contact = reg.contact_uri("a")
    resp, _ = _add(reg, [contact], 600)
    _expect_200(reg, resp, "a REGISTER adding a binding")
    if sip_should(resp.has_header("Date"), "3261-10.3-date", "RFC 3261 §10.3", "the 200 to REGISTER has no Date"):
        bad = [d for d in resp.defects if d.header == "Date"]
        assert not bad, f"the Date of the 200 is malformed ({resp.header('Date')!r}): {'; '.join(map(str, bad))}"
