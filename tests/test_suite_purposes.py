"""Regression tests of the conformance suite's own logic (``testcases/``), without an independent device.

Each test runs a test purpose, or the helper it relies on, in-process against the built-in reference device
(``conformance.dut``) or against a scripted stand-in: a second :class:`~conformance.peer.Peer` that answers the way
the independent device did when the problem was found (docs/independent-devices.md, "sipcert problems"). The
purpose's verdict is read as the plugin reads it: an ``inconclusive:``/``not-applicable:`` skip, an assertion (fail),
or a pass with the SHOULD warnings it recorded.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.peer import ExpectationFailed, Incoming, Peer, any_message
from conformance.plugin import INCONCLUSIVE, NOT_APPLICABLE
from conformance.profile import DeviceProfile, Timers, parse_target
from conformance.sip import Request, Response, build_response, parse, raw_message
from conformance.sip.state import TimerConfig
from conformance.trace import NoteEntry
from testcases._requests import edit, end_call, hop_request

T1 = 0.02
FAST = TimerConfig(t1=T1, t2=0.16, t4=0.2)


def profile_for(port: int, *, aor: str | None = "sip:dut@127.0.0.1", extensions: tuple[str, ...] = ("100rel",),
                roles: tuple[str, ...] = ("uas",)) -> DeviceProfile:
    return DeviceProfile(
        name="test device",
        target=parse_target(f"sip:127.0.0.1:{port};transport=udp"),
        roles=roles,
        aor=aor,
        extensions=extensions,
        timers=Timers(t1_ms=int(T1 * 1000), t2_ms=160, t4_ms=200),
    )


@dataclass
class Verdict:
    """What the plugin would report for one purpose run in-process."""

    verdict: str
    reason: str = ""
    warnings: list[tuple[str, str, str]] = field(default_factory=list)


def run_purpose(fn: Callable[..., None], **fixtures: Any) -> Verdict:
    """Run a test purpose's function with the given fixtures; ``sip_should`` is recorded when the purpose takes it."""
    warnings: list[tuple[str, str, str]] = []

    def should(condition: bool, rule_id: str, citation: str, message: str) -> bool:
        if not condition:
            warnings.append((rule_id, citation, message))
        return condition

    fixtures.setdefault("sip_should", should)
    names = fn.__code__.co_varnames[: fn.__code__.co_argcount]
    try:
        fn(**{n: fixtures[n] for n in names})
    except pytest.skip.Exception as exc:
        text = str(exc.msg)
        for prefix, verdict in ((INCONCLUSIVE, "inconclusive"), (NOT_APPLICABLE, "not_applicable")):
            if text.startswith(prefix):
                return Verdict(verdict, text[len(prefix):], warnings)
        return Verdict("inconclusive", text, warnings)
    except (AssertionError, pytest.fail.Exception, ExpectationFailed) as exc:
        return Verdict("fail", str(exc), warnings)
    return Verdict("pass", "", warnings)


@contextlib.contextmanager
def sipcert_peer() -> Iterator[Peer]:
    with Peer(name="sipcert", timers=FAST) as p:
        p.open("udp")
        yield p


class StandIn:
    """A scripted device: a peer on its own thread that hands every request it receives to ``answer``, which sends
    what it likes (with ``respond`` / ``send_raw``) or nothing. ``requests`` keeps what arrived, in order."""

    def __init__(self, answer: Callable[[StandIn, Incoming], None]) -> None:
        self.answer = answer
        self.peer = Peer(name="stand-in", user="dut", timers=FAST)
        self.endpoint = self.peer.open("udp")
        self.requests: list[Incoming] = []
        self._arrived = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.errors: list[BaseException] = []

    @property
    def port(self) -> int:
        return self.endpoint.local[1]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                inc = self.peer.expect(any_message(), 0.05)
            except ExpectationFailed:
                continue
            except BaseException as exc:  # noqa: BLE001 - reported at exit
                if not self._stop.is_set():
                    self.errors.append(exc)
                return
            if isinstance(inc.message, Response):
                continue
            with self._arrived:
                self.requests.append(inc)
                self._arrived.notify_all()
            try:
                self.answer(self, inc)
            except BaseException as exc:  # noqa: BLE001 - reported at exit
                self.errors.append(exc)

    def respond(self, inc: Incoming, status: int, **kwargs: Any) -> Response:
        assert isinstance(inc.message, Request)
        resp = build_response(inc.message, status, **kwargs)
        self.peer.respond(inc, resp)
        return resp

    def send_raw(self, inc: Incoming, data: bytes) -> None:
        self.peer.send(data, inc.remote, endpoint=inc.endpoint)

    def wait_for(self, method: str, timeout: float = 2.0) -> Request:
        """The first request with ``method`` the stand-in received, waiting up to ``timeout`` for it."""

        def found() -> Request | None:
            return next((i.message for i in self.requests
                         if isinstance(i.message, Request) and i.message.method == method), None)

        with self._arrived:
            self._arrived.wait_for(lambda: found() is not None, timeout)
        got = found()
        assert got is not None, f"no {method} reached the stand-in within {timeout:g} s (got {self.methods()})"
        return got

    def methods(self) -> list[str]:
        return [i.message.method for i in self.requests if isinstance(i.message, Request)]

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peer.close()
        assert not self.errors, self.errors


def silent(_dev: StandIn, _inc: Incoming) -> None:
    """Answers nothing."""


# ---------------------------------------------------------------------------------------------------------------------
# S3: the clean-up CANCEL of an RFC 2543 INVITE (no branch) goes on the raw path
# ---------------------------------------------------------------------------------------------------------------------


def test_s3_end_call_cancels_a_branchless_invite_on_the_raw_path() -> None:
    """TP-TXN-009 sends an RFC 2543 INVITE (no branch); a device that never answers it used to make the clean-up
    raise ``TransactionError`` (a CANCEL in a client transaction needs a branch), which masked the purpose's own
    verdict. The CANCEL now goes raw, with the INVITE's branch-less Via, and nothing is raised."""
    with StandIn(silent) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port)
        inv = p.build_request("INVITE", f"sip:dut@127.0.0.1:{dev.port}")
        ep = p.endpoint()
        data = edit(inv, replace={"Via": f"SIP/2.0/UDP {ep.sent_by()}", "From": f"<{p.local_uri()}>"})
        sent = parse(data).message
        assert isinstance(sent, Request) and sent.transaction_branch is None
        p.send(data, profile.target.address)
        end_call(p, profile, sent, None, timeout=0.2)
        cancel = dev.wait_for("CANCEL")
        assert cancel.header("Via") == f"SIP/2.0/UDP {ep.sent_by()}"
        assert cancel.uri_text == sent.uri_text and cancel.cseq.number == sent.cseq.number
        assert cancel.header("From") == sent.header("From") and cancel.call_id == sent.call_id


def test_s3_end_call_acks_the_487_to_a_branchless_invite() -> None:
    """The device answers the raw CANCEL 200 and the INVITE 487: the 487 is acknowledged (§17.1.1.3), also on the
    raw path, copying the INVITE's Via without branch."""

    def answer(dev: StandIn, inc: Incoming) -> None:
        msg = inc.message
        assert isinstance(msg, Request)
        if msg.method == "INVITE":
            dev.invite = inc  # type: ignore[attr-defined]
            dev.respond(inc, 180, to_tag="t180")
        elif msg.method == "CANCEL":
            dev.respond(inc, 200, to_tag="t180")
            dev.respond(dev.invite, 487, to_tag="t180")  # type: ignore[attr-defined]

    with StandIn(answer) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port)
        inv = p.build_request("INVITE", f"sip:dut@127.0.0.1:{dev.port}")
        data = edit(inv, replace={"Via": f"SIP/2.0/UDP {p.endpoint().sent_by()}"})
        sent = parse(data).message
        assert isinstance(sent, Request)
        p.send(data, profile.target.address)
        p.expect(any_message(), 2)  # the 180
        end_call(p, profile, sent, None, timeout=2)
        ack = dev.wait_for("ACK")
        assert ack.to is not None and ack.to.tag == "t180"
        assert dev.methods() == ["INVITE", "CANCEL", "ACK"]


# ---------------------------------------------------------------------------------------------------------------------
# S4: the ACK for a non-2xx final response copies the INVITE as sent, whatever its Request-URI
# ---------------------------------------------------------------------------------------------------------------------

ESCRURI = "sip:user@example.com?Route=%3Csip:example.com%3E"


def test_s4_hop_request_copies_a_request_uri_the_strict_builder_refuses() -> None:
    """escruri.dat's Request-URI carries URI headers; the strict ``build_ack_for_non2xx`` refuses it, and the
    torture purpose used to swallow that and leave the device's 404 unacknowledged. The raw ACK copies the
    Request-Line (method aside), the top Via only, From, Call-ID and Route as sent, the response's To, and the CSeq
    number with method ACK (§17.1.1.3)."""
    invite = raw_message(f"INVITE  {ESCRURI}  SIP/2.0", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKescruri"),
        ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKother"),
        ("To", "<sip:user@example.com>"),
        ("f", "<sip:caller@example.net>;tag=1"),
        ("i", "escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5@127.0.0.1"),
        ("CSeq", "1834 INVITE"),
        ("Route", "<sip:proxy.example.com;lr>"),
        ("Max-Forwards", "70"),
    ])
    sent = parse(invite).message
    assert isinstance(sent, Request)
    ack = parse(hop_request("ACK", sent, "<sip:user@example.com>;tag=dev404")).message
    assert isinstance(ack, Request)
    assert {d.code for d in ack.defects} <= {d.code for d in sent.defects}, "the ACK adds no defect of its own"
    assert bytes(ack).split(b"\r\n", 1)[0] == f"ACK  {ESCRURI}  SIP/2.0".encode()
    assert [v.raw for v in ack.via] == ["SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKescruri"]
    assert ack.header("To") == "<sip:user@example.com>;tag=dev404"
    assert ack.header("From") == "<sip:caller@example.net>;tag=1" and ack.call_id == sent.call_id
    assert ack.header("CSeq") == "1834 ACK" and ack.header_values("Route") == ["<sip:proxy.example.com;lr>"]


def test_s4_torture_purpose_acknowledges_the_404_to_escruri() -> None:
    """TP-TOR-escruri against a device that answers the INVITE 404: the 404 gets its ACK (so the device stops
    retransmitting it into ports later purposes use)."""
    from testcases import test_torture

    def answer(dev: StandIn, inc: Incoming) -> None:
        msg = inc.message
        assert isinstance(msg, Request)
        if msg.method in ("INVITE", "OPTIONS"):
            dev.respond(inc, 404 if msg.method == "INVITE" else 200, to_tag="t404")

    with StandIn(answer) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port, aor=None)
        result = run_purpose(test_torture.test_rfc4475_escruri, sip_peer=p, sip_profile=profile,
                             pytestconfig=None)
        ack = dev.wait_for("ACK")
        assert ack.uri_text == ESCRURI and ack.to is not None and ack.to.tag == "t404", result


# ---------------------------------------------------------------------------------------------------------------------
# S5, S6: a final response that came before the purpose's next request makes it inconclusive
# ---------------------------------------------------------------------------------------------------------------------


class AfterFinal:
    """The peer, except that any INVITE but the first waits until a final response to an INVITE has arrived: the
    race SIPp and baresip win on loopback (180 and 200 back to back, the purpose's next INVITE after both), made
    certain."""

    def __init__(self, peer: Peer, timeout: float = 2.0) -> None:
        self._peer = peer
        self._timeout = timeout
        self._invites = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._peer, name)

    def _hold(self, msg: object) -> None:
        if not isinstance(msg, Request) and isinstance(msg, bytes | bytearray):
            msg = parse(bytes(msg)).message
        if not isinstance(msg, Request) or msg.method != "INVITE":
            return
        self._invites += 1
        if self._invites == 1:
            return
        deadline = self._peer.trace.now() + self._timeout
        while not any(isinstance(m := e.message, Response) and m.status >= 200 and m.cseq is not None
                      and m.cseq.method == "INVITE" for e in self._peer.trace.messages("received")):
            assert self._peer.trace.now() < deadline, "the stand-in never answered the first INVITE"
            self._peer.sleep(0.002)

    def send(self, message: Any, to: Any, **kwargs: Any) -> Any:
        self._hold(message)
        return self._peer.send(message, to, **kwargs)

    def request(self, req: Request, to: Any, **kwargs: Any) -> Any:
        self._hold(req)
        return self._peer.request(req, to, **kwargs)


def rings_and_answers_at_once(dev: StandIn, inc: Incoming) -> None:
    """180 and 200 back to back to a new INVITE (SIPp's uas scenario, baresip's auto-answer); nothing to any other
    INVITE (a retransmission, or a second INVITE in the dialog); 200 to BYE; ACK absorbed."""
    msg = inc.message
    assert isinstance(msg, Request)
    contact = f"<sip:dut@{dev.endpoint.sent_by()}>"
    if msg.method == "INVITE":
        if msg.to is not None and msg.to.tag or any(
                isinstance(i.message, Request) and i.message.method == "INVITE" and i.message.call_id == msg.call_id
                for i in dev.requests[:-1]):
            return
        dev.respond(inc, 180, to_tag="ring", contact=contact)
        dev.respond(inc, 200, to_tag="ring", contact=contact, body=b"v=0\r\n", content_type="application/sdp")
    elif msg.method == "BYE":
        dev.respond(inc, 200)


def _with_calls(fn: Callable[..., None], peer: Any, profile: DeviceProfile) -> Verdict:
    from testcases._invite import Calls

    calls = Calls(peer, profile)
    try:
        return run_purpose(fn, sip_peer=peer, sip_profile=profile, calls=calls)
    finally:
        calls.cleanup()


def test_s5_tp_inv_020_inconclusive_when_the_final_response_preceded_the_retransmission() -> None:
    """TP-INV-020 resends the INVITE once the device rings. When the 200 had already arrived, the transaction was not
    in Proceeding any more: inconclusive, not a failure for a provisional that was no longer due."""
    from testcases.test_uas_invite import test_s17_2_1_invite_retransmission_in_proceeding_gets_provisional as tp

    with StandIn(rings_and_answers_at_once) as dev, sipcert_peer() as p:
        result = _with_calls(tp, AfterFinal(p), profile_for(dev.port, extensions=()))
    assert result.verdict == "inconclusive", result
    assert "before the INVITE retransmission left" in result.reason


def test_s5_tp_inv_020_still_fails_a_device_silent_in_proceeding() -> None:
    """The same purpose against a device that rings, ignores the retransmission and answers only later: a fail."""

    def rings_then_answers_late(dev: StandIn, inc: Incoming) -> None:
        msg = inc.message
        assert isinstance(msg, Request)
        if msg.method == "INVITE" and not any(isinstance(i.message, Request) and i.message.method == "INVITE"
                                              for i in dev.requests[:-1]):
            dev.respond(inc, 180, to_tag="ring", contact=f"<sip:dut@{dev.endpoint.sent_by()}>")
        elif msg.method == "BYE":
            dev.respond(inc, 200)

    from testcases.test_uas_invite import test_s17_2_1_invite_retransmission_in_proceeding_gets_provisional as tp

    with StandIn(rings_then_answers_late) as dev, sipcert_peer() as p:
        result = _with_calls(tp, p, profile_for(dev.port, extensions=()))
    assert result.verdict == "fail" and "no response to the INVITE retransmission" in result.reason, result


def test_s6_tp_dlg_013_race_checked_before_no_final_response() -> None:
    """TP-DLG-013 against a device that answered the first INVITE before the second left and never answers the
    second: §14.2's case never arose, so inconclusive (it used to fail for "no final response")."""
    from testcases.test_uas_dialog import test_s14_2_second_invite_while_first_pending as tp

    with StandIn(rings_and_answers_at_once) as dev, sipcert_peer() as p:
        result = _with_calls(tp, AfterFinal(p), profile_for(dev.port, extensions=()))
    assert result.verdict == "inconclusive", result
    assert "before the second one left" in result.reason


# ---------------------------------------------------------------------------------------------------------------------
# S7: a registrar that lengthens a too-short expiry breaks no RFC sentence
# ---------------------------------------------------------------------------------------------------------------------


def lengthens_to_60(dev: StandIn, inc: Incoming) -> None:
    """A registrar (Kamailio with min_expires 60) that grants every binding at least 60 s instead of answering 423."""
    msg = inc.message
    assert isinstance(msg, Request)
    contacts = [c for c in msg.header_values("Contact") if c.strip() != "*"]
    bound = [f"{c[:c.index('>') + 1]};expires=60" for c in contacts]
    dev.respond(inc, 200, headers=[("Contact", c) for c in bound])


def _registrar_purpose(fn: Callable[..., None], peer: Peer, profile: DeviceProfile) -> Verdict:
    from testcases._register import new_registration, unregister_all

    reg = new_registration(peer, profile)
    try:
        return run_purpose(fn, reg=reg, sip_peer=peer, sip_profile=profile)
    finally:
        unregister_all(reg)


def test_s7_lengthened_expiry_is_no_failure() -> None:
    """§10.3 step 7 lets a registrar choose less than asked, or answer 423; §10.2.1.1 leaves the actual interval to
    its local policy. No sentence forbids more: TP-REG-010 is inconclusive (the 423 MAY was not exercised) and
    TP-REG-013 passes, each noting the longer expiry in the trace."""
    from testcases.test_registrar import test_s10_3_chosen_expiry_listed, test_s10_3_interval_too_brief_423

    with StandIn(lengthens_to_60) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port, roles=("registrar",), aor="sip:sipcert@127.0.0.1")
        too_brief = _registrar_purpose(test_s10_3_interval_too_brief_423, p, profile)
        listed = _registrar_purpose(test_s10_3_chosen_expiry_listed, p, profile)
        notes = " ".join(e.text for e in p.trace.entries if isinstance(e, NoteEntry))
    assert too_brief.verdict == "inconclusive" and "expires=[60]" in too_brief.reason, too_brief
    assert listed.verdict == "pass" and not listed.warnings, listed
    assert "longer" in notes and "§10.2.1.1" in notes, notes


def test_s7_423_with_min_expires_still_passes() -> None:
    """The built-in registrar answers a 1 s registration 423 with Min-Expires: TP-REG-010 passes."""
    from conformance.dut import Device
    from testcases.test_registrar import test_s10_3_interval_too_brief_423

    with Device(role="registrar", min_expires=5, t1=T1, t2=0.16, t4=0.2) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port, roles=("registrar",), aor="sip:sipcert@127.0.0.1")
        result = _registrar_purpose(test_s10_3_interval_too_brief_423, p, profile)
    assert result.verdict == "pass", result


# ---------------------------------------------------------------------------------------------------------------------
# S10: a profile without option tags rules TP-REQ-022 out
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extensions", [(), ("rport",)])
def test_s10_tp_req_022_not_applicable_without_option_tags(extensions: tuple[str, ...]) -> None:
    """SIPp's profile lists no extension, baresip's could list only rport (not an option tag): Require cannot mix a
    known tag with unknown ones, which the profile rules out -- not_applicable, as sip_requires does elsewhere."""
    from testcases.test_uas_requests import test_s8_2_2_3_420_lists_only_unknown_tags as tp

    with StandIn(silent) as dev, sipcert_peer() as p:
        result = run_purpose(tp, sip_peer=p, sip_profile=profile_for(dev.port, extensions=extensions))
        assert not dev.requests, "nothing is sent"
    assert result.verdict == "not_applicable", result


# ---------------------------------------------------------------------------------------------------------------------
# S8: the answer to a malformed request is judged at SHOULD level; the MUST parts still fail
# ---------------------------------------------------------------------------------------------------------------------

_COPIED = ("via", "from", "to", "call-id", "cseq")


def answer_raw(dev: StandIn, inc: Incoming, status: int, reason: str, *, extra: tuple[tuple[str, str], ...] = ()) -> None:
    """A response on the raw path that copies whichever of Via, From, To, Call-ID and CSeq the request has (a To tag
    added), and nothing it lacks: what SIPp and baresip send to a malformed request they process."""
    msg = inc.message
    assert isinstance(msg, Request)
    fields = [(h.name, h.value + (";tag=dev" if h.key == "to" and "tag=" not in h.value else ""))
              for h in msg.headers if h.key in _COPIED]
    dev.send_raw(inc, raw_message(f"SIP/2.0 {status} {reason}", [*fields, *extra]))


def processes_everything(dev: StandIn, inc: Incoming) -> None:
    """200 to every request, malformed or not (SIPp's -aa, baresip)."""
    if isinstance(inc.message, Request) and inc.message.method != "ACK":
        answer_raw(dev, inc, 200, "OK")


def drops_malformed(dev: StandIn, inc: Incoming) -> None:
    """200 to a request with To and Call-ID; nothing to one without (SIPp on a missing To or Call-ID)."""
    msg = inc.message
    if isinstance(msg, Request) and msg.method != "ACK" and msg.has_header("To") and msg.has_header("Call-ID"):
        answer_raw(dev, inc, 200, "OK")


def test_s8_malformed_request_processed_is_a_warning() -> None:
    """TP-REQ-002: an OPTIONS without From answered 200 (no From invented) is a SHOULD warning, not a failure."""
    from testcases.test_uas_requests import MALFORMED_400
    from testcases.test_uas_requests import test_s8_1_1_missing_from_gets_400 as tp

    with StandIn(processes_everything) as dev, sipcert_peer() as p:
        result = run_purpose(tp, sip_peer=p, sip_profile=profile_for(dev.port))
    assert result.verdict == "pass", result
    assert [w[0] for w in result.warnings] == [MALFORMED_400] and "200 OK, not 400" in result.warnings[0][2]


def test_s8_missing_to_silence_warns_in_tp_req_001_as_in_tp_tor_insuf() -> None:
    """The same RFC 4475 §3.3.1 sentence ("must not break ... Ideally, it will respond with a 400"), judged alike:
    silence to a request without To (TP-REQ-001) or without Call-ID, From and To (TP-TOR-insuf) warns; neither
    fails, and neither passes silently."""
    from testcases import test_torture
    from testcases.test_uas_requests import test_s8_1_1_missing_to_gets_400 as tp

    with StandIn(drops_malformed) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port)
        req = run_purpose(tp, sip_peer=p, sip_profile=profile)
        tor = run_purpose(test_torture.test_rfc4475_insuf, sip_peer=p, sip_profile=profile, pytestconfig=None)
    assert (req.verdict, tor.verdict) == ("pass", "pass"), (req, tor)
    assert len(req.warnings) == 1 and len(tor.warnings) == 1, (req, tor)
    assert "§3.3.1" in req.warnings[0][1] and "§3.3.1" in tor.warnings[0][1]


def test_s8_unknown_scheme_and_version_warn_citing_the_rfc_3261_section() -> None:
    """TP-REQ-020 (416) and TP-REQ-026 (505), processed as if valid: warnings that cite RFC 3261 §8.2.2.1 and §21.5.6
    (the sections the no-416 and no-505 fault switches name, so the suite proof still links them)."""
    from testcases.test_uas_requests import (
        test_s8_2_2_1_unknown_uri_scheme_gets_416,
        test_s21_5_6_unknown_sip_version_gets_505,
    )

    with StandIn(processes_everything) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port)
        scheme = run_purpose(test_s8_2_2_1_unknown_uri_scheme_gets_416, sip_peer=p, sip_profile=profile)
        version = run_purpose(test_s21_5_6_unknown_sip_version_gets_505, sip_peer=p, sip_profile=profile)
    assert scheme.verdict == "pass" and "RFC 3261 §8.2.2.1" in scheme.warnings[0][1], scheme
    assert version.verdict == "pass" and "RFC 3261 §21.5.6" in version.warnings[0][1], version


def test_s8_must_parts_still_fail() -> None:
    """A response that invents a From the request did not have (§8.2.6.2 "MUST equal") fails TP-REQ-002, and so
    does a device that stops answering after the malformed request (TP-REQ-008); a torture purpose whose answer
    rests on a MUST (TP-TOR-bext01, 420 per §8.2.2.3) still fails on a 200."""
    from testcases import test_torture
    from testcases.test_uas_requests import test_s8_1_1_missing_from_gets_400, test_s20_16_non_numeric_cseq_gets_400

    def invents_from(dev: StandIn, inc: Incoming) -> None:
        msg = inc.message
        if isinstance(msg, Request) and msg.method != "ACK":
            extra = () if msg.has_header("From") else (("From", "<sip:invented@example.net>;tag=x"),)
            answer_raw(dev, inc, 400, "Bad Request", extra=extra)

    def dies_on_bad_cseq(dev: StandIn, inc: Incoming) -> None:
        msg = inc.message
        if isinstance(msg, Request) and msg.header("CSeq") == "abc OPTIONS":
            dev.dead = True  # type: ignore[attr-defined]
        if isinstance(msg, Request) and not getattr(dev, "dead", False):
            answer_raw(dev, inc, 200, "OK")

    with StandIn(invents_from) as dev, sipcert_peer() as p:
        invented = run_purpose(test_s8_1_1_missing_from_gets_400, sip_peer=p, sip_profile=profile_for(dev.port))
    assert invented.verdict == "fail" and "MUST equal" in invented.reason, invented

    with StandIn(dies_on_bad_cseq) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port, extensions=())
        dead = run_purpose(test_s20_16_non_numeric_cseq_gets_400, sip_peer=p,
                           sip_profile=profile.with_target(profile.target))
    assert dead.verdict == "fail" and "no longer answers" in dead.reason, dead

    with StandIn(processes_everything) as dev, sipcert_peer() as p:
        bext = run_purpose(test_torture.test_rfc4475_bext01, sip_peer=p, sip_profile=profile_for(dev.port, aor=None),
                           pytestconfig=None)
    assert bext.verdict == "fail" and "expected 420" in bext.reason, bext


# ---------------------------------------------------------------------------------------------------------------------
# S11: the RFC 4475 purposes address the profile's user (default) or send the archive's Request-URI
# ---------------------------------------------------------------------------------------------------------------------


def _request_line(data: bytes) -> bytes:
    return data.split(b"\r\n", 1)[0]


def test_s11_plain_archive_request_uris_get_the_profile_user_and_the_target() -> None:
    from testcases.test_torture import TORTURE, address_to_device

    profile = profile_for(5099, aor="sip:baresip@127.0.0.1")
    lines = {p.stem: _request_line(address_to_device(p.read_bytes(), profile))
             for p in sorted((TORTURE / "rfc4475").glob("*.dat"))}
    assert lines["invut"] == b"INVITE sip:baresip@127.0.0.1:5099 SIP/2.0"
    assert lines["baddn"] == b"OPTIONS sip:baresip@127.0.0.1:5099 SIP/2.0"
    assert lines["wsinv"] == b"INVITE sip:baresip@127.0.0.1:5099;unknownparam SIP/2.0"
    assert lines["escruri"] == b"INVITE sip:baresip@127.0.0.1:5099?Route=%3Csip:example.com%3E SIP/2.0"
    assert lines["ltgtruri"] == b"INVITE <sip:baresip@127.0.0.1:5099> SIP/2.0"
    assert lines["lwsruri"] == b"INVITE sip:baresip@127.0.0.1:5099; lr SIP/2.0"
    assert lines["lwsstart"] == b"INVITE  sip:baresip@127.0.0.1:5099  SIP/2.0"
    assert lines["badvers"] == b"OPTIONS sip:baresip@127.0.0.1:5099 SIP/7.0"
    # The tortured user parts, REGISTERs (no user), other schemes and responses are left as the archive has them.
    for stem in ("esc01", "semiuri", "intmeth", "unkscm", "novelsc", "escnull", "unksm2", "esc02", "bcast"):
        assert lines[stem] == _request_line((TORTURE / "rfc4475" / f"{stem}.dat").read_bytes()), stem


def test_s11_no_user_in_the_profile_leaves_the_archive_uri() -> None:
    from testcases.test_torture import TORTURE, address_to_device

    data = (TORTURE / "rfc4475" / "invut.dat").read_bytes()
    assert address_to_device(data, profile_for(5099, aor=None)) == data


class _Config:
    def __init__(self, option: str | None, ini: str | None) -> None:
        self.option, self.ini = option, ini

    def getoption(self, name: str, default: Any = None) -> Any:
        return self.option if name == "sip_torture_uri" else default

    def getini(self, name: str) -> Any:
        return self.ini if name == "sip_torture_uri" else None


def test_s11_torture_uri_option_defaults_to_device_and_checks_the_ini_value() -> None:
    from conformance.plugin import torture_uri_mode

    assert torture_uri_mode(None) == "device"
    assert torture_uri_mode(_Config(None, None)) == "device"  # type: ignore[arg-type]
    assert torture_uri_mode(_Config(None, "archive")) == "archive"  # type: ignore[arg-type]
    assert torture_uri_mode(_Config("device", "archive")) == "device"  # type: ignore[arg-type]
    with pytest.raises(pytest.UsageError, match="choose from device, archive"):
        torture_uri_mode(_Config(None, "user"))  # type: ignore[arg-type]


def test_s11_a_user_checking_uas_reaches_the_tortured_step() -> None:
    """A UAS that answers 404 to every user but its own (baresip): with the default the INVITE with an unknown
    Content-Type reaches the body check (TP-TOR-invut fails on the 200 it then gets, §8.2.3's MUST); with
    ``archive`` the 404 makes it inconclusive."""
    from testcases import test_torture

    def own_user_only(dev: StandIn, inc: Incoming) -> None:
        msg = inc.message
        if isinstance(msg, Request) and msg.method != "ACK":
            ours = msg.uri_text.startswith("sip:dut@")
            answer_raw(dev, inc, 200 if ours or msg.method == "OPTIONS" else 404, "OK" if ours else "Not Found",
                       extra=(("Contact", f"<sip:dut@{dev.endpoint.sent_by()}>"),))

    with StandIn(own_user_only) as dev, sipcert_peer() as p:
        profile = profile_for(dev.port)
        device = run_purpose(test_torture.test_rfc4475_invut, sip_peer=p, sip_profile=profile,
                             pytestconfig=_Config("device", None))
        archive = run_purpose(test_torture.test_rfc4475_invut, sip_peer=p, sip_profile=profile,
                              pytestconfig=_Config("archive", None))
    assert device.verdict == "fail" and "expected 415" in device.reason, device
    assert archive.verdict == "inconclusive" and "404" in archive.reason, archive


# ---------------------------------------------------------------------------------------------------------------------
# TP-DLG-014: RFC 6086 §4.2.2 lets a UAS answer INFO with another 4xx-6xx (a MAY); 469 and 481 stay failures
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "verdict", "said"), [
    (200, "pass", ""),
    (488, "inconclusive", "lets a UAS send other 4xx-6xx"),  # baresip's answer to an empty legacy INFO
    (603, "inconclusive", "lets a UAS send other 4xx-6xx"),
    (481, "fail", "the dialog, which exists"),
    (469, "fail", "keeps 469 for an INFO associated with an Info Package"),
])
def test_tp_dlg_014_info_answer(status: int, verdict: str, said: str) -> None:
    """RFC 6086 §4.2.2: "The UAS MAY send other error responses, such as Request Failure (4xx), Server Failure (5xx),
    and Global Failure (6xx) [...]. Otherwise, if the INFO request is syntactically correct and well structured, the
    UA MUST send a 200 (OK) response." A 4xx-6xx other than 469/481 breaks no sentence: inconclusive, not fail."""
    from testcases.test_uas_dialog import test_rfc6086_info_in_dialog as tp

    def answers_info(dev: StandIn, inc: Incoming) -> None:
        msg = inc.message
        if isinstance(msg, Request) and msg.method == "INFO":
            dev.respond(inc, status)
        else:
            rings_and_answers_at_once(dev, inc)

    with StandIn(answers_info) as dev, sipcert_peer() as p:
        result = _with_calls(tp, p, profile_for(dev.port, extensions=()))
        assert "INFO" in dev.methods() and dev.methods()[-1] == "BYE", dev.methods()
    assert result.verdict == verdict and said in result.reason, result
