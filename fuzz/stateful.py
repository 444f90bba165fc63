"""Stateful driving: run one case (a scenario with one mutated step) against the device with the real peer, and
replay a recorded message sequence.

The peer (:class:`conformance.peer.AsyncPeer`) runs the client transactions (retransmissions on UDP, ACK for a
non-2xx final response); the dialog is our own model (:class:`conformance.sip.state.Dialog`): Call-ID, tags, CSeq,
the remote target and the route set come from the device's real responses, and RSeq / RAck from its reliable
provisional responses (RFC 3262). The mutated step is sent on the raw path, once, and whatever the device answers
to it is collected for a bounded time; then the scenario goes on where it still can.

:func:`replay` sends a recorded sequence again (after a restart, for minimisation, for ``sipcert replay``): the values
the device chose the first time (its To tag, Contact, Record-Route, RSeq) are replaced by the ones it chooses now, and
our own local address by the new one, so an in-dialog request still reaches the dialog.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from conformance.peer import AsyncPeer, Matcher
from conformance.sip import Request, Response, build_ack_for_non2xx, build_cancel, build_prack, build_request
from conformance.sip import parse as sip_parse
from conformance.sip.state import Dialog, DialogError
from conformance.trace import MessageEntry
from conformance.transport import Endpoint, TLSConfig

from .cases import Case, Step
from .mutate import MessageMutation, mutate

__all__ = [
    "CaseDriver",
    "CaseResult",
    "Exchange",
    "Timeouts",
    "build_stateless",
    "client_tls",
    "replay",
    "target_uri",
    "fill",
    "ReplayResult",
]

_SDP_OFFER = (b"v=0\r\no=sipcert 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              b"m=audio 49170 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")
_INFO_BODY = b"Signal=1\r\nDuration=160\r\n"
#: Placeholders of the stateless templates: replaced by each case's own values after the mutation.
PH_BRANCH, PH_CALL, PH_TAG = "sipcertPHbranch", "sipcertPHcall", "sipcertPHtag"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Bounds, in seconds: ``step`` for the final response to an unmutated request, ``mutated`` for what the device
    answers to the mutated message (it may rightly answer nothing), ``connect`` for opening a connection."""

    step: float = 2.0
    mutated: float = 0.2
    connect: float = 3.0


@dataclass(frozen=True, slots=True)
class Exchange:
    """One message of a case on the wire: ``sent`` by sipcert or ``received`` from the device; ``mutated`` marks the
    one mutated message; ``step`` names the scenario step it belongs to."""

    direction: str
    data: bytes
    mutated: bool = False
    step: str = ""


@dataclass(slots=True)
class CaseResult:
    """What happened in one case."""

    case: Case
    transport: str
    mutation: MessageMutation | None = None
    mutated_data: bytes | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    #: The responses to the mutated message (raw bytes), in arrival order.
    replies: list[bytes] = field(default_factory=list)
    #: The request we would have sent unmutated, for the protocol oracle's context.
    original: Request | None = None
    steps_done: int = 0
    error: str | None = None
    #: Our local sent-by (``host:port``) in this case, so a replay can put its own in its place.
    local: str = ""

    def sent(self) -> list[bytes]:
        return [e.data for e in self.exchanges if e.direction == "sent"]


def client_tls() -> TLSConfig:
    """TLS contexts for fuzzing: our test server certificate, and a client that does not verify the device's
    certificate (a device under test usually has a self-signed one)."""
    base = TLSConfig.for_tests()
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return TLSConfig(server=base.server, client=ctx, ca_pem=base.ca_pem)


def build_stateless(step: Step, ep: Endpoint, target_uri: str, user: str = "sipcert") -> bytes:
    """The message of a one-step scenario (OPTIONS, REGISTER) with placeholder Call-ID, tag and branch, so that its
    mutations are computed once and shared by every case (see :func:`fill`)."""
    scheme = "sips" if ep.secure else "sip"
    local = f"{scheme}:{user}@{ep.sent_by()}"
    to = f"<{target_uri}>" if step.method != "REGISTER" else f"<{local}>"
    headers: list[tuple[str, str]] = []
    if step.method == "REGISTER":
        headers.append(("Expires", "60"))
    else:
        headers.append(("Accept", "application/sdp"))
    req = build_request(
        step.method,
        target_uri,
        from_=f"<{local}>;tag={PH_TAG}",
        to=to,
        via=f"SIP/2.0/{ep.via_transport} {ep.sent_by()};branch=z9hG4bK{PH_BRANCH};rport",
        call_id=f"{PH_CALL}@sipcert.invalid",
        cseq=1,
        contact=f"<{ep.contact_uri(user)}>",
        headers=headers,
    )
    return bytes(req)


def fill(data: bytes, number: int, rand: int) -> bytes:
    """Put case ``number``'s own values in place of the template placeholders."""
    return (data.replace(PH_BRANCH.encode(), b"fz-%d-%08x" % (number, rand))
            .replace(PH_CALL.encode(), b"fz%d-%08x" % (number, rand))
            .replace(PH_TAG.encode(), b"%08x" % rand))


def target_uri(target: tuple[str, int], transport: str, user: str = "fuzz") -> str:
    host = f"[{target[0]}]" if ":" in target[0] else target[0]
    scheme = "sips" if transport in ("tls", "wss") else "sip"
    param = "" if transport in ("udp", "tls") else f";transport={'ws' if transport == 'wss' else transport}"
    return f"{scheme}:{user}@{host}:{target[1]}{param}"


def _final(m: object) -> bool:
    return isinstance(m, Response) and m.status >= 200


def _new_matcher(before: set[int], pred: Callable[[Response], bool], text: str) -> Matcher:
    def match(m: object) -> bool:
        return isinstance(m, Response) and id(m) not in before and pred(m)

    return Matcher("response", predicate=match, predicate_text=text)  # type: ignore[arg-type]


@dataclass(slots=True)
class _State:
    invite: Request | None = None
    invite_handle: object = None
    dialog: Dialog | None = None
    reliable: Response | None = None
    invite_final: Response | None = None
    last: Request | None = None
    stop: bool = False
    steps: tuple[Step, ...] = ()
    pracked: set[int] = field(default_factory=set)
    #: The PRACK step was the mutated one: its reliable provisional response gets a proper PRACK when retransmitted.
    recover_prack: bool = False


class CaseDriver:
    """Runs cases against one device address on one transport; a fresh peer (and so a fresh connection) per case."""

    def __init__(
        self,
        target: tuple[str, int],
        transport: str = "udp",
        *,
        timeouts: Timeouts | None = None,
        tls: TLSConfig | None = None,
    ) -> None:
        self.target = target
        self.transport = transport
        self.timeouts = timeouts or Timeouts()
        self.tls = tls if tls is not None or transport not in ("tls", "wss") else client_tls()
        self._templates: dict[tuple[str, str], bytes] = {}

    @property
    def uri(self) -> str:
        """The Request-URI of the scenarios' first requests: the device's address."""
        return target_uri(self.target, self.transport)

    async def run(self, case: Case) -> CaseResult:
        result = CaseResult(case, self.transport)
        peer = AsyncPeer(name="sipcert-fuzz", tls=self.tls, rng=case.values_rng())
        try:
            ep = await asyncio.wait_for(peer.open(self.transport), self.timeouts.connect)
            result.local = ep.sent_by()
            await self._drive(peer, ep, case, result)
        except (OSError, TimeoutError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # the device's answers took the scenario somewhere it cannot go on from
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                await peer.close()
            result.exchanges = _exchanges(peer, case)
        return result

    # -- the scenario --------------------------------------------------------------------------------------------
    async def _drive(self, peer: AsyncPeer, ep: Endpoint, case: Case, result: CaseResult) -> None:
        st = _State(steps=case.scenario.steps)
        for i, step in enumerate(case.scenario.steps):
            if st.stop:
                break
            mutated = i == case.step
            if case.scenario.stateless:
                key = (step.name, ep.sent_by())
                template = self._templates.get(key)
                if template is None:
                    template = self._templates[key] = build_stateless(step, ep, self.uri)
                m = mutate(template, case.mutation_rng(), focus=step.focus)
                rand = case.values_rng().getrandbits(32)
                result.mutation, result.mutated_data = m.mutation, fill(m.data, case.number, rand)
                result.original = sip_parse(fill(template, case.number, rand)).message  # type: ignore[assignment]
                await self._send_mutated(peer, ep, step, result.mutated_data, result, st)
                result.steps_done = 1
                return
            req = self._build(peer, ep, step, st)
            if req is None:
                break
            st.last = req
            if mutated:
                m = mutate(bytes(req), case.mutation_rng(), focus=step.focus)
                result.mutation, result.mutated_data, result.original = m.mutation, m.data, req
                await self._send_mutated(peer, ep, step, m.data, result, st)
            else:
                await self._send_plain(peer, ep, step, req, st)
            result.steps_done = i + 1

    def _build(self, peer: AsyncPeer, ep: Endpoint, step: Step, st: _State) -> Request | None:
        name, method = step.name, step.method
        if name == "INVITE":
            headers: list[tuple[str, str]] = []
            if step.focus and "RAck" not in step.focus and "Require" in step.focus:
                headers += [("Require", "100rel"), ("Supported", "100rel")]
            return peer.build_request("INVITE", self.uri, endpoint=ep, headers=headers, body=_SDP_OFFER,
                                      content_type="application/sdp")
        if st.invite is None:
            return None
        via = peer.via(ep)
        if method == "CANCEL":
            return build_cancel(st.invite)
        if method == "PRACK":
            if st.reliable is None or st.reliable.cseq is None:
                return None
            if st.reliable.rseq is not None:
                st.pracked.add(st.reliable.rseq)
            cseq = st.dialog.next_cseq() if st.dialog is not None else peer.next_cseq()
            return build_prack(st.invite, st.reliable, cseq, via)
        if st.dialog is None:
            return None
        if method == "ACK":
            ack_of = st.invite if name == "ACK" else st.last
            if ack_of is None:
                return None
            return st.dialog.create_ack(ack_of, via=via)
        if not st.dialog.confirmed:
            return None
        if method == "INVITE":
            return st.dialog.create_request("INVITE", via=via, body=_SDP_OFFER.replace(b" 1 1 ", b" 1 2 "),
                                            content_type="application/sdp")
        if method == "UPDATE":
            return st.dialog.create_request("UPDATE", via=via, body=_SDP_OFFER.replace(b" 1 1 ", b" 1 3 "),
                                            content_type="application/sdp")
        if method == "INFO":
            return st.dialog.create_request("INFO", via=via, body=_INFO_BODY, content_type="text/plain")
        return st.dialog.create_request(method, via=via)

    def _wait_for(self, step: Step, case_steps: Sequence[Step]) -> Callable[[Response], bool]:
        names = [s.name for s in case_steps]
        if step.name == "INVITE" and "CANCEL" in names:
            return lambda r: r.status >= 180 or (r.status > 100 and r.to is not None and r.to.tag is not None)
        if step.name == "INVITE" and "PRACK" in names:
            return lambda r: r.status >= 200 or (r.rseq is not None and 100 < r.status < 200)
        return lambda r: r.status >= 200

    async def _learn(self, step: Step, req: Request, resp: Response, st: _State, ep: Endpoint) -> None:
        if req.method != "INVITE" or step.name != "INVITE":
            if st.dialog is not None and resp.cseq is not None:
                with contextlib.suppress(Exception):
                    st.dialog.receive_response(resp, req)
            return
        st.invite = req
        if resp.status >= 200:
            st.invite_final = resp
        if resp.rseq is not None and 100 < resp.status < 200 and st.reliable is None:
            st.reliable = resp
        to_tag = resp.to.tag if resp.to is not None else None
        if to_tag and 100 < resp.status < 300:
            if st.dialog is None:
                with contextlib.suppress(DialogError):
                    st.dialog = Dialog.from_response(req, resp, secure_transport=ep.secure)
            elif resp.status >= 200:
                st.dialog.receive_response(resp, req)

    async def _send_plain(self, peer: AsyncPeer, ep: Endpoint, step: Step, req: Request, st: _State) -> None:
        if req.method == "ACK":
            if step.name == "ACK" and st.invite_final is None and st.invite_handle is not None:
                # the 2xx to the INVITE may still be on its way (after a PRACK); every further reliable
                # provisional response is PRACKed on the way (RFC 3262 §4), as a real UAC would
                assert st.invite is not None
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self.timeouts.step
                while st.invite_final is None:
                    try:
                        resp = await peer.transaction_response(st.invite_handle, None,  # type: ignore[arg-type]
                                                               max(0.0, deadline - loop.time()))
                    except AssertionError:
                        st.stop = True
                        return
                    await self._learn(Step("INVITE", "INVITE"), st.invite, resp, st, ep)
                    recover = st.recover_prack and resp.rseq in st.pracked
                    if resp.rseq is not None and resp.status < 200 and (resp.rseq not in st.pracked or recover):
                        st.pracked.add(resp.rseq)
                        st.recover_prack = False
                        cseq = st.dialog.next_cseq() if st.dialog is not None else peer.next_cseq()
                        with contextlib.suppress(Exception):
                            await peer.request(build_prack(st.invite, resp, cseq, peer.via(ep)), self.target,
                                               endpoint=ep)
                if st.dialog is not None:
                    req = st.dialog.create_ack(st.invite, via=peer.via(ep))
            if st.invite_final is not None and st.invite_final.status >= 300:
                return  # the transaction ACKed the failure itself
            await peer.send(req, self.target, endpoint=ep)
            return
        handle = await peer.request(req, self.target, endpoint=ep)
        if step.name == "INVITE":
            st.invite, st.invite_handle = req, handle
        until = self._wait_for(step, st.steps)
        deadline = asyncio.get_running_loop().time() + self.timeouts.step
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                resp = await peer.transaction_response(handle, None, max(left, 0.0))
            except AssertionError:
                st.stop = step.name in ("INVITE", "PRACK", "re-INVITE")
                return
            await self._learn(step, req, resp, st, ep)
            if until(resp):
                break
        if step.name == "INVITE" and (st.invite_final is not None and st.invite_final.status >= 300):
            st.stop = True
        if step.name == "re-INVITE" and resp.status >= 300:
            st.stop = True

    async def _send_mutated(
        self, peer: AsyncPeer, ep: Endpoint, step: Step, data: bytes, result: CaseResult, st: _State
    ) -> None:
        before = {id(i.message) for i in peer.inbox}
        start = len(peer.inbox)
        st.recover_prack = step.method == "PRACK"
        await peer.send(data, self.target, endpoint=ep)
        wait = 0.02 if step.method == "ACK" else self.timeouts.mutated  # nobody answers an ACK
        with contextlib.suppress(AssertionError):
            await peer.expect(_new_matcher(before, lambda r: r.status >= 200, "a final response"), wait)
        new = [inc for inc in peer.inbox[start:] if isinstance(inc.message, Response) or inc.message is None]
        result.replies = [inc.entry.data for inc in new]
        req = st.last if st.last is not None else None
        if req is None:
            if step.name == "INVITE":
                st.stop = True
            return
        finals = [inc.message for inc in new if isinstance(inc.message, Response) and inc.message.status >= 200]
        for inc in new:
            msg = inc.message
            if isinstance(msg, Response):
                with contextlib.suppress(Exception):
                    await self._learn(step, req, msg, st, ep)
        if req.method == "INVITE" and finals:
            final = finals[0]
            assert isinstance(final, Response)
            if final.status >= 300:
                with contextlib.suppress(Exception):
                    await peer.send(build_ack_for_non2xx(req, final), self.target, endpoint=ep)
        if step.name == "INVITE" and (st.dialog is None or not finals or finals[0].status >= 300):  # type: ignore[union-attr]
            if not (st.reliable is not None and "PRACK" in [s.name for s in st.steps]):
                st.stop = True


def _exchanges(peer: AsyncPeer, case: Case) -> list[Exchange]:
    out = []
    for e in peer.trace.messages():
        if not isinstance(e, MessageEntry):
            continue
        mutated = e.direction == "sent" and e.note == "raw"
        out.append(Exchange(e.direction, e.data, mutated))
    return out


# -- replay ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ReplayResult:
    """What a replay sent and received, and whether the device answered the last message."""

    exchanges: list[Exchange] = field(default_factory=list)
    error: str | None = None


_TO_TAG = re.compile(rb"(?im)^(?:to|t)[ \t]*:[^\r\n]*?;[ \t]*tag=([^;, \t\r\n>]+)")
_CONTACT = re.compile(rb"(?im)^(?:contact|m)[ \t]*:[^\r\n]*?<([^>\r\n]+)>")
_RSEQ = re.compile(rb"(?im)^rseq[ \t]*:[ \t]*(\d+)")


def _device_values(data: bytes) -> list[tuple[str, bytes]]:
    out = []
    for kind, rx in (("tag", _TO_TAG), ("contact", _CONTACT), ("rseq", _RSEQ)):
        m = rx.search(data)
        if m:
            out.append((kind, m.group(1)))
    return out


async def replay(
    messages: Sequence[Exchange],
    target: tuple[str, int],
    transport: str,
    *,
    local: str = "",
    timeout: float = 0.5,
    tls: TLSConfig | None = None,
) -> ReplayResult:
    """Send the ``sent`` messages of a recorded sequence again, in order.

    Before each message, as many responses as arrived at that point the first time are awaited (bounded by
    ``timeout``); the device's values in them (To tag, Contact URI, RSeq) are paired with the recorded ones and
    substituted in the messages still to send, and our recorded sent-by ``local`` is replaced by the new one.
    """
    tls = tls if tls is not None or transport not in ("tls", "wss") else client_tls()
    peer = AsyncPeer(name="sipcert-replay", tls=tls)
    out = ReplayResult()
    subs: dict[bytes, bytes] = {}
    try:
        ep = await asyncio.wait_for(peer.open(transport), 5.0)
        if local:
            subs[local.encode()] = ep.sent_by().encode()
        expected_replies = 0
        got: list[bytes] = []
        recorded_replies: list[bytes] = []
        for e in messages:
            if e.direction == "received":
                recorded_replies.append(e.data)
                expected_replies += 1
                continue
            await _await_count(peer, expected_replies, timeout)
            got = [inc.entry.data for inc in peer.inbox if isinstance(inc.message, Response) or inc.message is None]
            for old, new in zip(recorded_replies, got, strict=False):
                olds, news = dict(_device_values(old)), dict(_device_values(new))
                for kind, value in olds.items():
                    if kind in news and value != news[kind] and len(value) > 2:
                        subs[value] = news[kind]
            data = e.data
            for old_v, new_v in subs.items():
                data = data.replace(old_v, new_v)
            await peer.send(data, target, endpoint=ep)
        await _await_count(peer, expected_replies, timeout)
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            await peer.close()
        flags = iter([e.mutated for e in messages if e.direction == "sent"])
        out.exchanges = [Exchange(e.direction, e.data, next(flags, False) if e.direction == "sent" else False)
                         for e in peer.trace.messages()]
    return out


async def _await_count(peer: AsyncPeer, count: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if sum(1 for i in peer.inbox if not isinstance(i.message, Request)) >= count:
            return
        await asyncio.sleep(0.005)
