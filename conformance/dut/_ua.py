"""The device's UA core: a UAS that answers calls (RFC 3261 §13.3, RFC 3262) and a UAC that places them (§13.2).

Both share the dialog table: whoever created a dialog, requests inside it (BYE, re-INVITE, INFO, UPDATE, MESSAGE,
OPTIONS, PRACK) are answered here, and a request that matches no dialog gets 481 (§12.2.2).
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..sip import BRANCH_COOKIE, Request, Response, SessionDescription, build_request, build_sdp, name_addr
from ..sip._transaction import (
    ClientTransaction,
    ResponseReceived,
    SendMessage,
    ServerInviteTransaction,
    ServerTransaction,
    TransactionEvent,
    TransactionTimedOut,
    TransportFailed,
)
from ..sip.state import (
    TARGET_REFRESH_METHODS,
    AcceptedInvite,
    AckTimedOut,
    CancelTimedOut,
    Dialog,
    DialogId,
    InviteClient,
    PrackTimedOut,
    ReliableProvisionals,
    RequestCreated,
    ResponseCreated,
    answer_cancel,
    dialog_id_of,
)
from ._core import Source
from ._inspect import inspect_request
from ._msg import replace_top_via, strip_tag, uri_address

if TYPE_CHECKING:
    from ._core import DeviceCore

__all__ = ["UserAgent", "UA_ALLOW", "UA_SUPPORTED", "ACCEPT"]

log = logging.getLogger("sipcert.dut")

#: The methods the UA supports (its Allow header).
UA_ALLOW: tuple[str, ...] = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "PRACK", "INFO", "UPDATE", "MESSAGE")
UA_SUPPORTED: tuple[str, ...] = ("100rel",)
ACCEPT: tuple[str, ...] = ("application/sdp", "text/plain")
_SDP = "application/sdp"
_RE_ANGLE = re.compile(r"<([^>]*)>")
#: RSeq and SDP session ids when the device has no seeded RNG.
_RANDOM = random.SystemRandom()


def _capabilities() -> list[tuple[str, str]]:
    return [
        ("Allow", ", ".join(UA_ALLOW)),
        ("Accept", ", ".join(ACCEPT)),
        ("Accept-Encoding", "identity"),
        ("Accept-Language", "en"),
        ("Supported", ", ".join(UA_SUPPORTED)),
    ]


def _tags(msg: Request | Response, name: str) -> set[str]:
    return {t.lower() for t in (msg.supported if name == "Supported" else msg.require)}


@dataclass
class _Pending2xx:
    """A 2xx to an INVITE in a dialog, retransmitted until its ACK (§13.3.1.4)."""

    accepted: AcceptedInvite
    invite: Request
    dest: Source


@dataclass(eq=False)
class DialogUse:
    """A dialog the device is in, what created it, and the INVITE 2xx still waiting for its ACK."""

    dialog: Dialog
    uas: UasCall | None = None
    uac: UacCall | None = None
    pending: _Pending2xx | None = None
    session_id: int = 0
    version: int = 0
    ids: list[DialogId] = field(default_factory=list)


class UserAgent:
    """The UA core of the device (roles ``uas`` and ``uac``)."""

    def __init__(self, core: DeviceCore) -> None:
        self.core = core
        self.calls: dict[int, UasCall] = {}
        self.by_branch: dict[str | None, UasCall] = {}
        self.dialogs: dict[DialogId, DialogUse] = {}
        self.uac: UacCall | None = None
        self.answered = 0

    # -- requests ------------------------------------------------------------------------------------------------
    def request(self, tx: ServerTransaction, req: Request, now: float) -> None:
        core = self.core
        if inspect_request(core, tx, req, allow=UA_ALLOW, supported=UA_SUPPORTED, accept=ACCEPT):
            return
        method = req.method
        if method == "CANCEL":
            self.cancel(tx, req, now)
            return
        provisional = core.config.fault("provisional-non-invite") and method != "INVITE"
        if provisional:
            core.respond(tx, 100)
        if req.to is None or req.to.tag is None:
            if method == "INVITE":
                assert isinstance(tx, ServerInviteTransaction)
                call = UasCall(self, tx, req, now)
                self.calls[id(tx)] = call
                self.by_branch[req.transaction_branch] = call
                call.start(now)
            elif method == "OPTIONS":
                core.respond(tx, 200, headers=_capabilities())
            elif method == "MESSAGE":
                core.respond(tx, 200)
            else:
                self._no_dialog(tx)
            return
        use = self.find(req)
        if use is None:
            self._no_dialog(tx)
            return
        self.in_dialog(use, tx, req, now)

    def _no_dialog(self, tx: ServerTransaction) -> None:
        """§12.2.2 / RFC 3262 §3: a request for a dialog (or a PRACK for a provisional) we do not have."""
        self.core.respond(tx, 200 if self.core.config.fault("no-481") else 481)

    def find(self, req: Request) -> DialogUse | None:
        did = dialog_id_of(req)
        if did is None:
            return None
        use = self.dialogs.get(did)
        if use is None and self.core.config.fault("no-to-tag") and did.local_tag is None:
            for key, candidate in self.dialogs.items():
                if key.call_id == did.call_id and key.remote_tag == did.remote_tag:
                    return candidate
        return use

    def register(self, use: DialogUse, dialog: Dialog | None = None) -> None:
        d = dialog or use.dialog
        self.dialogs[d.id] = use
        use.ids.append(d.id)

    def forget(self, use: DialogUse) -> None:
        for did in use.ids:
            if self.dialogs.get(did) is use:
                del self.dialogs[did]
        if use.pending is not None:
            self.core.unwatch(use.pending.accepted)
            use.pending = None

    def in_dialog(self, use: DialogUse, tx: ServerTransaction, req: Request, now: float) -> None:
        core, fault = self.core, self.core.config.fault
        d = use.dialog
        cseq = req.cseq
        assert cseq is not None
        if d.remote_cseq is not None and cseq.number < d.remote_cseq and not fault("no-500-dialog-cseq"):
            core.respond(tx, 500, "Server Internal Error (CSeq out of order)")
            return
        d.remote_cseq = cseq.number
        method = req.method
        if method in TARGET_REFRESH_METHODS and req.contact:
            d.remote_target = req.contact[0].uri_text
        if method == "BYE":
            core.respond(tx, 200)
            d.terminate()
            if use.uas is not None:
                use.uas.ended_by_bye(now)
            if use.uac is not None:
                use.uac.state = "ended (BYE received)"
            self.forget(use)
        elif method == "INVITE":
            self.reinvite(use, tx, req, now)
        elif method == "PRACK":
            if use.uas is not None:
                use.uas.prack(tx, req, now)
            else:
                self._no_dialog(tx)
        elif method == "INFO":
            if fault("crash-info-in-dialog") and d.confirmed and b"\x00" in req.body:
                core.crash("crash-info-in-dialog: INFO body with a NUL octet")
                return
            core.respond(tx, 481 if fault("info-481") and d.confirmed else 200)
        elif method == "UPDATE":
            offer = req.sdp if req.body else None
            if offer is not None:
                use.version += 1
                core.respond(tx, 200, contact=core.contact(), body=self.sdp(use, offer), content_type=_SDP)
            else:
                core.respond(tx, 200, contact=core.contact())
        elif method == "OPTIONS":
            core.respond(tx, 200, headers=_capabilities())
        else:  # MESSAGE
            core.respond(tx, 200)

    def reinvite(self, use: DialogUse, tx: ServerTransaction, req: Request, now: float) -> None:
        """A target refresh (§14.2): 200 with an SDP answer; 500 with Retry-After while the dialog's first INVITE has
        no final response yet; 491 while an INVITE of this dialog awaits its ACK."""
        core = self.core
        offer = req.sdp if req.body else None
        if core.config.fault("crash-reinvite-sdp") and use.dialog.confirmed and offer is not None:
            if any(m.port == 0 for m in offer.media):
                core.crash("crash-reinvite-sdp: re-INVITE SDP with an m= port of 0")
                return
        if not use.dialog.confirmed:
            # §14.2: "A UAS that receives a second INVITE before it sends the final response to a first INVITE with
            # a lower CSeq sequence number on the same dialog MUST return a 500 (Server Internal Error) response to
            # the second INVITE and MUST include a Retry-After header field with a randomly chosen value of between
            # 0 and 10 seconds."
            core.respond(tx, 500, headers=[("Retry-After", str(core.randint(0, 10)))])
            return
        if use.pending is not None:
            core.respond(tx, 491)
            return
        use.version += 1
        body = self.sdp(use, offer)
        response = core.build(
            req, 200, contact=core.contact(), headers=[("Allow", ", ".join(UA_ALLOW)), ("Supported", "100rel")],
            body=body, content_type=_SDP,
        )
        core.send_response(tx, response)
        dest = core.dest_of(tx)
        assert dest is not None
        self.await_ack(use, response, req, dest, now)

    def await_ack(self, use: DialogUse, response: Response, invite: Request, dest: Source, now: float) -> None:
        accepted = AcceptedInvite(response, self.core.timers, now)
        use.pending = _Pending2xx(accepted, invite, dest)
        self.core.watch(accepted, lambda event, t: self._accepted_event(use, accepted, event, t))

    def _accepted_event(self, use: DialogUse, accepted: AcceptedInvite, event: object, now: float) -> None:
        core = self.core
        pending = use.pending
        if pending is None or pending.accepted is not accepted:
            return
        if isinstance(event, SendMessage):
            if core.config.fault("no-2xx-retransmit"):
                return
            assert isinstance(event.message, Response)
            data = core.wire_response(event.message, pending.invite, True)
            if data is not None:
                log.info("-> %s (2xx retransmission)", event.message.summary())
                core.transmit(data, pending.dest)
        elif isinstance(event, AckTimedOut):
            core.unwatch(accepted)
            use.pending = None
            log.warning("no ACK for %s within 64*T1", event.response.summary())
            if not core.config.fault("no-bye-after-ack-timeout"):
                self.send_bye(use, now)

    def ack(self, ack: Request, now: float) -> None:
        """An ACK for a 2xx (end to end, its own branch): stops that 2xx's retransmissions (§13.3.1.4)."""
        core = self.core
        use = self.find(ack)
        if use is not None and use.pending is not None:
            pending = use.pending
            invite_cseq = pending.invite.cseq.number if pending.invite.cseq else None
            if ack.cseq is not None and ack.cseq.number == invite_cseq:
                pending.accepted.receive_ack(ack, now)
                core.unwatch(pending.accepted)
                use.pending = None
                if use.uas is not None and use.uas.state == "answered":
                    use.uas.state = "confirmed"
        else:
            log.info("ACK %s matches no 2xx awaiting one", ack.summary())
        if core.config.fault("answer-ack") and core.current_source is not None:
            core.transmit(core.build(ack, 200), core.current_source)

    def cancel(self, tx: ServerTransaction, req: Request, now: float) -> None:
        """§9.2: 200 to the CANCEL and 487 to the INVITE while it is pending; no effect after a final; 481 without
        a matching transaction."""
        core, fault = self.core, self.core.config.fault
        target = core.table.cancel_target(req)
        if fault("cancel-481-always") or target is None:
            core.respond(tx, 481)
            return
        call = self.calls.get(id(target))
        answer = answer_cancel(req, target, to_tag=call.tag if call is not None else core.new_tag())
        if answer.invite_response is not None and not fault("cancel-no-487"):
            core.send_response(target, answer.invite_response)
            if call is not None:
                call.finish("cancelled")
        response = answer.cancel_response
        if fault("cancel-to-tag-differs"):
            response = core.build(req, 200, to_tag=core.new_tag())
        if not fault("cancel-no-200"):
            core.send_response(tx, response)

    # -- sending requests in a dialog ----------------------------------------------------------------------------
    def dialog_dest(self, dialog: Dialog) -> Source | None:
        uri, routes = dialog.request_uri_and_route()
        if routes:
            m = _RE_ANGLE.search(routes[0])
            uri = m.group(1) if m else routes[0]
        addr = uri_address(uri, self.core.transport)
        return None if addr is None else Source(self.core.transport, addr, None)

    def send_bye(self, use: DialogUse, now: float) -> bool:
        core, fault = self.core, self.core.config.fault
        d = use.dialog
        if d.terminated:
            return False
        dest = self.dialog_dest(d)
        if dest is None:
            log.warning("cannot route a BYE to %s", d.remote_target)
            return False
        branch = core.new_branch()
        if fault("branch-no-cookie"):
            branch = branch[len(BRANCH_COOKIE) :]
        cseq = None
        if fault("bye-cseq-skip"):
            cseq = (d.local_cseq or 0) + 2
        bye = d.create_request(
            "BYE", via=core.via(branch), cseq=cseq, contact=core.contact() if fault("bye-with-contact") else None
        )
        if fault("bye-no-to-tag"):
            stripped = bye.with_header("To", strip_tag(bye.header("To") or ""))
            assert isinstance(stripped, Request)
            bye = stripped
        d.terminate()

        def done(tx: ClientTransaction, event: TransactionEvent, t: float) -> None:
            if isinstance(event, ResponseReceived) and event.response.status >= 200 and use.uac is not None:
                use.uac.state = f"ended (BYE answered {event.response.status})"

        core.start_client(bye, dest, done)
        if use.uas is not None:
            use.uas.state = "ended"
        if use.uac is not None:
            use.uac.state = "ending"
        self.forget(use)
        return True

    # -- SDP -----------------------------------------------------------------------------------------------------
    def sdp(self, use: DialogUse | None, offer: SessionDescription | None, version: int = 0) -> bytes:
        """An SDP answer to ``offer`` (or an offer when there is none); RFC 3264 §8.2: a stream offered with port 0
        is answered with port 0."""
        core = self.core
        host = core.local[0]
        port = core.config.media_port
        formats: tuple[str, ...] = ("0",)
        if offer is not None and offer.media:
            first = offer.media[0]
            if first.port == 0:
                port = 0
            for pt in ("0", "8"):
                if pt in first.formats:
                    formats = (pt,)
                    break
        session = use.session_id if use is not None else 0
        ver = use.version if use is not None else version
        return build_sdp(host, port, session_id=session, session_version=ver, formats=formats, ipv6=":" in host,
                         username="sipcert-dut")

    # -- control -------------------------------------------------------------------------------------------------
    def command(self, verb: str, arg: str, now: float) -> str:
        if verb == "call":
            if not arg:
                return "ERROR usage: call <sip-uri>"
            if self.uac is not None and self.uac.active:
                return f"ERROR a call is in progress ({self.uac.state})"
            try:
                self.uac = UacCall(self, arg, now)
            except ValueError as exc:
                return f"ERROR {exc}"
            return f"OK calling {arg} Call-ID {self.uac.invite.call_id}"
        if verb == "bye":
            uses = [u for u in dict.fromkeys(self.dialogs.values()) if u.dialog.confirmed]
            uses.sort(key=lambda u: u.uac is None)
            if not uses:
                return "ERROR no confirmed dialog"
            self.send_bye(uses[0], now)
            return "OK BYE sent"
        if verb == "cancel":
            if self.uac is None or not self.uac.active:
                return "ERROR no call to cancel"
            return self.uac.cancel(now)
        return f"ERROR unknown command {verb!r}; valid: call <uri>, bye, cancel, status"

    def status(self) -> str:
        uac = self.uac.state if self.uac is not None else "idle"
        return f"uac={uac.replace(' ', '_')} answered={self.answered} dialogs={len(set(map(id, self.dialogs.values())))}"

    def transaction_over(self, tx: object) -> None:
        call = self.calls.pop(id(tx), None)
        if call is not None and self.by_branch.get(call.invite.transaction_branch) is call:
            del self.by_branch[call.invite.transaction_branch]

    def wire_rseq(self, invite: Request, internal: int) -> int:
        """The RSeq a reliable provisional goes out with (the rseq-* faults renumber it; PRACKs are mapped back)."""
        call = self.by_branch.get(invite.transaction_branch)
        if call is None or call.first_rseq is None:
            return internal
        return call.wire(internal)


class UasCall:
    """One INVITE the device answers: 100 (by the transaction), 180 (reliable when 100rel is in play, then a
    reliable 183), 200 with SDP after the ring time and the PRACKs, 2xx retransmission until the ACK."""

    def __init__(self, ua: UserAgent, tx: ServerInviteTransaction, invite: Request, now: float) -> None:
        self.ua = ua
        self.core = ua.core
        self.tx = tx
        self.invite = invite
        dest = self.core.dest_of(tx)
        assert dest is not None
        self.dest = dest
        self.tag = self.core.new_tag()
        self.state = "ringing"
        self.contact = self.core.contact()
        self.offer = invite.sdp if invite.body else None
        self.rel: ReliableProvisionals | None = None
        self.first_rseq: int | None = None
        self.plan: list[int] = []
        self.sdp_reliable = False
        self.ring_done = False
        self.early_183_due = False
        #: second-before-prack: the reliable 183 sent before the 180's PRACK, until its own PRACK
        self.early: Response | None = None
        self.use: DialogUse | None = None
        self.ring_timer = self.core.unique("ring")
        self.rtx_timer = self.core.unique("rtx-after-prack")
        self.early_timer = self.core.unique("early-183")
        self._wire: dict[int, int] = {}
        self._restart: int | None = None

    def start(self, now: float) -> None:
        core, fault, inv = self.core, self.core.config.fault, self.invite
        if len(inv.contact) != 1:
            core.respond(self.tx, 400, "Missing Contact header field" if not inv.contact else "Bad Request (Contact)")
            self.state = "rejected"
            return
        offered = "100rel" in _tags(inv, "Supported") | _tags(inv, "Require")
        if core.config.require_100rel and not offered:
            core.respond(self.tx, 421, headers=[("Require", "100rel")])
            self.state = "rejected"
            return
        reliable = (offered or fault("reliable-unasked")) and not fault("unreliable-when-required")
        dialog = Dialog.from_request(inv, self.tag, early=True, secure_transport=core.secure, local_contact=self.contact)
        self.use = DialogUse(dialog, uas=self, session_id=(core.rng or _RANDOM).randrange(1, 2**62))
        self.ua.register(self.use)
        if reliable:
            rng = core.rng or _RANDOM
            self.first_rseq = rng.randint(1, 2**31 - 1)
            self.rel = ReliableProvisionals(inv, core.timers, now, first_rseq=self.first_rseq, require_offer=False)
            core.watch(self.rel, self._rel_event)
            body = self.ua.sdp(self.use, self.offer)
            self.sdp_reliable = True
            self.rel.send(self._provisional(180, body), now)
            if fault("second-before-prack"):
                self.early_183_due = True
            else:
                self.plan = [183]
        else:
            core.send_response(self.tx, self._provisional(180))
        core.after(core.config.ring_time, self.ring_timer, self._ring)

    def _provisional(self, status: int, body: bytes = b"") -> Response:
        return self.core.build(
            self.invite, status, to_tag=self.tag, contact=self.contact, body=body,
            content_type=_SDP if body else None,
        )

    def wire(self, internal: int) -> int:
        first = self.first_rseq
        assert first is not None
        fault = self.core.config.fault
        k = internal - first
        if fault("rseq-zero"):
            wire = k
        elif fault("rseq-high"):
            wire = internal + 2**31
        elif fault("rseq-skip"):
            wire = first + 2 * k
        elif fault("rseq-restart"):
            if k == 0:
                wire = first
            else:
                if self._restart is None:
                    rng = self.core.rng or _RANDOM
                    self._restart = next(v for v in iter(lambda: rng.randint(1, 2**30), None) if abs(v - first) > 2)
                wire = self._restart + k - 1
        else:
            wire = internal
        self._wire[internal] = wire
        return wire

    def _rel_event(self, event: object, now: float) -> None:
        core = self.core
        if isinstance(event, ResponseCreated):
            core.send_response(self.tx, event.response)
            if event.response.status >= 300:
                self.finish(f"rejected {event.response.status} (no PRACK)")
            elif self.early_183_due and event.response.status == 180 and self.rel is not None:
                # second-before-prack: the next reliable provisional goes out now, stamped by hand, retransmitted
                # until its own PRACK like any reliable provisional
                self.early_183_due = False
                rseq = self.rel.next_rseq
                self.rel.next_rseq += 1
                stamped = self._provisional(183).with_header("Require", "100rel").with_header("RSeq", str(rseq))
                assert isinstance(stamped, Response)
                self.early = stamped
                core.send_response(self.tx, stamped)
                self._keep_retransmitting(stamped, core.timers.t1, self.early_timer)
        elif isinstance(event, SendMessage):
            if core.config.fault("prack-not-retransmitted"):
                return
            assert isinstance(event.message, Response)
            data = core.wire_response(event.message, self.invite, True)
            if data is not None:
                log.info("-> %s (reliable retransmission)", event.message.summary())
                core.transmit(data, self.dest)
        elif isinstance(event, PrackTimedOut):
            log.warning("no PRACK for %s within 64*T1", event.provisional.summary())

    def _ring(self, now: float) -> None:
        self.ring_done = True
        self.try_answer(now)

    def try_answer(self, now: float) -> None:
        if self.state != "ringing" or not self.ring_done:
            return
        rel = self.rel
        if rel is not None and not self.core.config.fault("200-before-prack"):
            if rel.pending is not None or rel.queue or self.plan or self.early is not None:
                return
        self.answer(now)

    def answer(self, now: float) -> None:
        core, fault = self.core, self.core.config.fault
        assert self.use is not None
        body = b"" if self.sdp_reliable else self.ua.sdp(self.use, self.offer)
        tag = self.tag
        if fault("unstable-to-tag"):
            tag = core.new_tag()
            old = self.use.dialog
            dialog = Dialog.from_request(self.invite, tag, secure_transport=core.secure, local_contact=self.contact)
            dialog.remote_cseq = old.remote_cseq
            self.use.dialog = dialog
            self.ua.register(self.use, dialog)
        response = core.build(
            self.invite, 200, to_tag=tag, contact=self.contact,
            headers=[("Allow", ", ".join(UA_ALLOW)), ("Supported", "100rel")], body=body,
            content_type=_SDP if body else None,
        )
        self._stop_provisionals(now)
        core.send_response(self.tx, response)
        self.state = "answered"
        self.ua.answered += 1
        self.use.dialog.confirm()
        self.ua.await_ack(self.use, response, self.invite, self.dest, now)

    def prack(self, tx: ServerTransaction, req: Request, now: float) -> None:
        """RFC 3262 §3: 200 to a PRACK that matches the pending reliable provisional, 481 to any other."""
        core, fault = self.core, self.core.config.fault
        rack = req.rack
        if fault("hang-prack-bad-rack") and rack is not None and rack.method != "INVITE":
            assert self.use is not None
            if self.use.dialog.early:
                core.hang(f"hang-prack-bad-rack: RAck method {rack.method}")
                return
        rel = self.rel
        if rel is None or self.state != "ringing":
            core.respond(tx, 200 if fault("prack-481-never") else 481)
            return
        early = self.early
        if early is not None and rack is not None and early.rseq is not None and (rack.rseq, rack.method) == (
            self._wire.get(early.rseq, early.rseq), "INVITE"
        ):
            self.early = None
            core.cancel_timer(self.early_timer)
            core.respond(tx, 200)
            self.try_answer(now)
            return
        prack = req
        pending = rel.pending
        if rack is not None and pending is not None and pending.rseq is not None:
            wire = self._wire.get(pending.rseq, pending.rseq)
            if rack.rseq == wire and wire != pending.rseq:
                mapped = req.with_header("RAck", f"{pending.rseq} {rack.cseq} {rack.method}")
                assert isinstance(mapped, Request)
                prack = mapped
        matched = rel.matches(prack)
        response = rel.receive_prack(prack, now)
        if not matched:
            core.respond(tx, 200 if fault("prack-481-never") else 481)
            return
        core.respond(tx, response.status)
        if fault("retransmit-after-prack") and pending is not None:
            self._keep_retransmitting(pending, core.timers.t1, self.rtx_timer)
        if self.plan:
            rel.send(self._provisional(self.plan.pop(0)), now)
        self.try_answer(now)

    def _keep_retransmitting(self, provisional: Response, interval: float, timer: str) -> None:
        """Re-send ``provisional`` at ``interval``, doubling, while the INVITE is pending (the early 183 of
        second-before-prack, and the PRACKed one of retransmit-after-prack)."""

        def again(now: float) -> None:
            if self.state != "ringing":
                return
            data = self.core.wire_response(provisional, self.invite, True)
            if data is not None and not self.core.config.fault("prack-not-retransmitted"):
                self.core.transmit(data, self.dest)
            self._keep_retransmitting(provisional, interval * 2, timer)

        self.core.after(interval, timer, again)

    def _stop_provisionals(self, now: float) -> None:
        if self.rel is not None:
            self.rel.final_sent(now)
            self.core.unwatch(self.rel)
        self.core.cancel_timer(self.ring_timer)
        self.core.cancel_timer(self.rtx_timer)
        self.core.cancel_timer(self.early_timer)

    def finish(self, state: str) -> None:
        """The INVITE got a final non-2xx response (487 after CANCEL, 500 after the PRACK wait)."""
        self._stop_provisionals(self.core.now)
        self.state = state
        if self.use is not None:
            self.use.dialog.terminate()
            self.ua.forget(self.use)

    def ended_by_bye(self, now: float) -> None:
        if self.state == "ringing":  # a BYE in the early dialog: the INVITE is terminated too
            self.core.send_response(self.tx, self.core.build(self.invite, 487, to_tag=self.tag))
        self._stop_provisionals(now)
        self.state = "ended"


class UacCall:
    """One call the device places (§13.2): INVITE with an SDP offer, PRACK, ACK for 2xx, CANCEL, BYE."""

    def __init__(self, ua: UserAgent, target: str, now: float) -> None:
        self.ua = ua
        core = self.core = ua.core
        cfg, fault = core.config, core.config.fault
        addr = uri_address(cfg.next_hop or target, core.transport)
        if addr is None:
            raise ValueError(f"cannot route to {target!r}: not a SIP URI")
        self.dest = Source(core.transport, addr, None)
        scheme = "sips" if core.secure else "sip"
        local = f"{scheme}:{cfg.user or 'dut'}@{core.hostport}"
        branch = core.new_branch()
        if fault("branch-no-cookie"):
            branch = branch[len(BRANCH_COOKIE) :]
        headers: list[tuple[str, str]] = []
        if not fault("uac-no-allow"):
            headers.append(("Allow", ", ".join(UA_ALLOW)))
        if not fault("uac-no-supported"):
            headers.append(("Supported", "100rel"))
        route = []
        if cfg.next_hop:
            hop = cfg.next_hop if ";lr" in cfg.next_hop.lower() else cfg.next_hop + ";lr"
            route.append(f"<{hop}>")
        self.use_session = (core.rng or _RANDOM).randrange(1, 2**62)
        body = build_sdp(core.local[0], cfg.media_port, session_id=self.use_session, ipv6=":" in core.local[0],
                         username="sipcert-dut")
        invite = build_request(
            "INVITE",
            target,
            from_=name_addr(local, tag=None if fault("uac-no-from-tag") else core.new_tag()),
            to=name_addr(target.split(";", 1)[0], tag=core.new_tag() if fault("uac-to-tag") else None),
            via=core.via(branch),
            cseq=(core.rng or _RANDOM).randrange(1, 10_000),
            max_forwards=10 if fault("uac-max-forwards-10") else 70,
            contact=None if fault("uac-no-contact") else core.contact(),
            route=route,
            headers=headers,
            body=body,
            content_type=_SDP,
        )
        if fault("uac-no-max-forwards"):
            stripped = invite.without_header("Max-Forwards")
            assert isinstance(stripped, Request)
            invite = stripped
        self.invite = invite
        self.state = "calling"
        self.client = InviteClient(invite, core.timers, now, via=core.via(), secure_transport=core.secure,
                                   rng=core.rng)
        core.watch(self.client, self._client_event)
        reliable: bool | None = None
        if fault("no-invite-retransmit") and core.transport == "udp":
            reliable = True
        if fault("retransmit-on-reliable") and core.transport != "udp":
            reliable = False
        core.start_client(invite, self.dest, self._tx_event, reliable=reliable)

    @property
    def active(self) -> bool:
        return self.state in ("calling", "early", "confirmed", "cancelling")

    def _tx_event(self, tx: ClientTransaction, event: TransactionEvent, now: float) -> None:
        if isinstance(event, ResponseReceived):
            response = event.response
            dialog = self.client.receive_response(response, now)
            if dialog is not None and dialog.id not in self.ua.dialogs and not dialog.terminated:
                use = DialogUse(dialog, uac=self, session_id=self.use_session)
                self.ua.register(use)
            status = response.status
            if 200 <= status < 300:
                if self.state in ("calling", "early", "cancelling"):
                    self.state = "confirmed"
            elif status >= 300:
                if self.state in ("calling", "early", "cancelling"):
                    self.state = "cancelled" if status == 487 else f"failed {status}"
                for d in self.client.dialogs:
                    if d.terminated:
                        ended = self.ua.dialogs.get(d.id)
                        if ended is not None:
                            self.ua.forget(ended)
            elif status > 100 and self.state == "calling":
                self.state = "early"
        elif isinstance(event, (TransactionTimedOut, TransportFailed)):
            self.client.transaction_failed(now)
            if self.state in ("calling", "early", "cancelling"):
                self.state = "failed timeout" if isinstance(event, TransactionTimedOut) else "failed transport"

    def _client_event(self, event: object, now: float) -> None:
        core, fault = self.core, self.core.config.fault
        if isinstance(event, SendMessage):
            ack = event.message
            assert isinstance(ack, Request)
            if fault("no-ack-2xx"):
                return
            if fault("ack-cseq-wrong") and ack.cseq is not None:
                changed = ack.with_header("CSeq", f"{ack.cseq.number + 1} ACK")
                assert isinstance(changed, Request)
                ack = changed
            if fault("ack-same-branch"):
                top = ack.via[0]
                changed = replace_top_via(ack, top.raw.replace(f"branch={top.branch}",
                                                                f"branch={self.invite.transaction_branch}", 1))
                assert isinstance(changed, Request)
                ack = changed
            dialog = next((d for d in self.client.dialogs if d.remote_tag == (ack.to.tag if ack.to else None)), None)
            dest = self.ua.dialog_dest(dialog) if dialog is not None else self.dest
            core.transmit(ack, dest or self.dest)
        elif isinstance(event, RequestCreated):
            req = event.request
            if req.method == "CANCEL":
                core.start_client(self._cancel_faults(req), self.dest, _ignore)
                self.state = "cancelling"
            else:  # PRACK
                dialog = next((d for d in self.client.dialogs if d.remote_tag == (req.to.tag if req.to else None)),
                              None)
                dest = self.ua.dialog_dest(dialog) if dialog is not None else None
                core.start_client(req, dest or self.dest, _ignore)
        elif isinstance(event, CancelTimedOut):
            self.state = "cancelled (no final response)"

    def _cancel_faults(self, cancel: Request) -> Request:
        fault = self.core.config.fault
        out: Request = cancel
        if fault("cancel-with-require"):
            out = out.with_header("Require", "100rel")  # type: ignore[assignment]
        if fault("cancel-two-vias"):
            out = out.with_header_added("Via", f"SIP/2.0/{self.core.via_transport} 192.0.2.1:5999;branch="
                                               f"{self.core.new_branch()}")  # type: ignore[assignment]
        if fault("cancel-wrong-branch"):
            top = out.via[0]
            out = replace_top_via(out, top.raw.replace(f"branch={top.branch}",
                                                       f"branch={self.core.new_branch()}", 1))  # type: ignore[assignment]
        return out

    def cancel(self, now: float) -> str:
        if self.core.config.fault("cancel-early"):
            self.client.provisional_received = True
        sent = self.client.cancel(now)
        if sent is None:
            if self.client.final_response is not None:
                return "ERROR the INVITE has a final response"
            return "OK CANCEL waits for a provisional response"
        return "OK CANCEL sent"


def _ignore(tx: ClientTransaction, event: TransactionEvent, now: float) -> None:
    if isinstance(event, ResponseReceived):
        log.info("response to %s: %s", tx.request.method, event.response.start_line)

