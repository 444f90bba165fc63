"""UA core pieces, sans-I/O: what sits above the transaction layer in a UAC or UAS.

- :class:`AcceptedInvite` — UAS: retransmit the 2xx to INVITE until the ACK (RFC 3261 §13.3.1.4).
- :class:`InviteClient` — UAC: dialogs per To tag, ACK for each 2xx (§13.2.2.4), PRACK for reliable provisionals
  (RFC 3262 §4), CANCEL rules (§9.1).
- :func:`answer_cancel` — UAS: 487 to the INVITE and 200 to the CANCEL, or 481 (§9.2).
- :class:`ReliableProvisionals` — UAS: RSeq, retransmission until PRACK, the one-at-a-time rule (RFC 3262 §3).
- :class:`RegistrationClient` — UAC: REGISTER, refresh, un-REGISTER (§10.2).

Each takes ``now`` at every entry point, exposes ``next_timer()`` / ``handle_timer(now)`` and queues events
(``next_event()`` / ``events()``). Requests they create (PRACK, CANCEL, REGISTER) come out as
:class:`RequestCreated`: the TU starts a client transaction for them. Responses for a server transaction come out
as :class:`ResponseCreated`. What goes straight to the transport (the ACK for a 2xx, retransmitted 2xx and reliable
1xx) comes out as :class:`SendMessage`.
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from random import Random
from typing import TypeAlias

from ._build import build_cancel, build_request, build_response, name_addr, new_branch, new_call_id, new_tag
from ._dialog import Dialog, DialogSet
from ._message import Request, Response
from ._timers import TimerConfig, TimerWheel
from ._transaction import SendMessage, ServerInviteTransaction, ServerNonInviteTransaction, TransactionState
from ._uri import SipURI, parse_uri

__all__ = [
    "UaError",
    "RequestCreated",
    "ResponseCreated",
    "AckTimedOut",
    "PrackTimedOut",
    "CancelTimedOut",
    "ProvisionalIgnored",
    "Registered",
    "Unregistered",
    "RegistrationFailed",
    "UaEvent",
    "fresh_via",
    "AcceptedInvite",
    "InviteClient",
    "CancelAnswer",
    "answer_cancel",
    "ReliableProvisionals",
    "RegistrationState",
    "RegistrationClient",
    "MAX_FIRST_RSEQ",
    "UaTimerDef",
    "UA_TIMERS",
]

#: RFC 3262 §3: "The value of the header field for the first reliable provisional response in a transaction MUST be
#: between 1 and 2**31 - 1."
MAX_FIRST_RSEQ = 2**31 - 1


class UaError(ValueError):
    """The TU asked a UA piece for something the RFC forbids."""


# -- events -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestCreated:
    """A request the core made (PRACK, CANCEL, REGISTER): the TU sends it in a new client transaction."""

    request: Request


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    """A response the core made (reliable 1xx, 5xx after a PRACK timeout): the TU passes it to the server
    transaction of its request."""

    response: Response


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """§13.3.1.4: "If the server retransmits the 2xx response for 64*T1 seconds without receiving an ACK, the dialog
    is confirmed, but the session SHOULD be terminated. This is accomplished with a BYE"."""

    response: Response
    advice: str = "BYE"


@dataclass(frozen=True, slots=True)
class PrackTimedOut:
    """RFC 3262 §3: "If a reliable provisional response is retransmitted for 64*T1 seconds without reception of a
    corresponding PRACK, the UAS SHOULD reject the original request with a 5xx response." (The 5xx follows as a
    :class:`ResponseCreated`.)"""

    provisional: Response


@dataclass(frozen=True, slots=True)
class CancelTimedOut:
    """§9.1: "If there is no final response for the original request in 64*T1 seconds ..., the client SHOULD then
    consider the original transaction cancelled and SHOULD destroy the client transaction handling the original
    request." """

    cancel: Request


@dataclass(frozen=True, slots=True)
class ProvisionalIgnored:
    """RFC 3262 §4: a reliable provisional whose RSeq is not one more than the last one: not PRACKed, not processed
    (``reason`` is ``"retransmission"`` or ``"out of order"``)."""

    response: Response
    reason: str


@dataclass(frozen=True, slots=True)
class Registered:
    """A 2xx to REGISTER: the registrar granted ``expires`` seconds; ``contacts`` are all its bindings (§10.2.4)."""

    expires: int
    contacts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unregistered:
    """A 2xx to a REGISTER with Expires: 0 (§10.2.2)."""

    response: Response


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    """A REGISTER failed: a final non-2xx response, or ``response`` is ``None`` after a timeout or transport error."""

    status: int | None
    response: Response | None


UaEvent: TypeAlias = (
    SendMessage
    | RequestCreated
    | ResponseCreated
    | AckTimedOut
    | PrackTimedOut
    | CancelTimedOut
    | ProvisionalIgnored
    | Registered
    | Unregistered
    | RegistrationFailed
)


# -- helpers ------------------------------------------------------------------------------------------------------

_RE_BRANCH = re.compile(r";[ \t]*branch[ \t]*=[ \t]*[^; \t,]*", re.I)


def fresh_via(via: str, rng: Random | None = None) -> str:
    """``via`` (a via-parm) with a new ``z9hG4bK`` branch, for a request that is a new transaction (§8.1.1.7)."""
    branch = f";branch={new_branch(rng)}"
    if _RE_BRANCH.search(via):
        return _RE_BRANCH.sub(lambda _m: branch, via, count=1)
    return via + branch


def _to_tag(message: Request | Response) -> str | None:
    return message.to.tag if message.to else None


def _from_tag(message: Request | Response) -> str | None:
    return message.from_.tag if message.from_ else None


class _Core:
    """Timers and the event queue shared by the UA pieces."""

    def __init__(self, config: TimerConfig | None) -> None:
        self.config = config or TimerConfig()
        self._timers = TimerWheel()
        self._events: deque[UaEvent] = deque()

    def next_event(self) -> UaEvent | None:
        return self._events.popleft() if self._events else None

    def events(self) -> list[UaEvent]:
        out = list(self._events)
        self._events.clear()
        return out

    def next_timer(self) -> float | None:
        return self._timers.next_timer()

    def timers(self) -> list[tuple[str, float]]:
        return list(self._timers)

    def handle_timer(self, now: float) -> None:
        while (item := self._timers.pop_next(now)) is not None:
            self._on_timer(item[0], now)

    def _on_timer(self, name: str, now: float) -> None:  # pragma: no cover - every piece overrides it
        raise NotImplementedError


# -- UAS: 2xx retransmission (§13.3.1.4) --------------------------------------------------------------------------


class AcceptedInvite(_Core):
    """The UAS core after it passed a 2xx for an INVITE to the server transaction (§13.3.1.4).

    "The 2xx response is passed to the transport with an interval that starts at T1 seconds and doubles for each
    retransmission until it reaches T2 seconds (T1 and T2 are defined in Section 17). Response retransmissions cease
    when an ACK request for the response is received. This is independent of whatever transport protocols are used
    to send the response." After 64*T1 without ACK it queues :class:`AckTimedOut` (end the session with BYE).
    """

    RETRANSMIT = "2xx retransmit"
    ACK_WAIT = "2xx ACK wait"

    def __init__(self, response: Response, config: TimerConfig | None = None, now: float = 0.0) -> None:
        super().__init__(config)
        cseq = response.cseq
        if not (200 <= response.status < 300) or cseq is None or cseq.method != "INVITE":
            raise UaError(f"{response.summary()} is not a 2xx to INVITE")
        self.response = response
        self.sent_at = now
        self.ack: Request | None = None
        self.timed_out = False
        self._interval = self.config.t1
        self._timers.start(self.RETRANSMIT, now + self._interval)
        self._timers.start(self.ACK_WAIT, now + self.config.transaction_timeout)

    @property
    def acked(self) -> bool:
        return self.ack is not None

    def matches_ack(self, ack: Request) -> bool:
        """The ACK acknowledges our 2xx: same Call-ID, CSeq number and tags (it is end-to-end, a new branch)."""
        r, a = self.response, ack
        return (
            a.method == "ACK"
            and a.call_id == r.call_id
            and a.cseq is not None
            and r.cseq is not None
            and a.cseq.number == r.cseq.number
            and _from_tag(a) == _from_tag(r)
            and _to_tag(a) == _to_tag(r)
        )

    def receive_ack(self, ack: Request, now: float) -> bool:
        """An ACK from the network (normally a :class:`StrayAck` of the transaction table); ``True`` if it is ours."""
        if not self.matches_ack(ack):
            return False
        if self.ack is None:
            self.ack = ack
            self._timers.cancel_all()
        return True

    def _on_timer(self, name: str, now: float) -> None:
        if name == self.RETRANSMIT:
            self._events.append(SendMessage(self.response, True))
            self._interval = min(2 * self._interval, self.config.t2)
            self._timers.start(self.RETRANSMIT, now + self._interval)
        elif name == self.ACK_WAIT:
            self._timers.cancel_all()
            self.timed_out = True
            self._events.append(AckTimedOut(self.response))


# -- UAC: INVITE core (§13.2.2, §9.1, RFC 3262 §4) ----------------------------------------------------------------


class InviteClient(_Core):
    """The UAC core's handling of one INVITE, fed with every response its INVITE client transaction passes up.

    - Dialogs: one per To tag (:class:`DialogSet`), early on a 1xx with tag, confirmed on a 2xx (§13.2.2).
    - ACK for 2xx: built once per dialog with a new branch and re-sent for every retransmission of that 2xx
      (§13.2.2.4: "The ACK MUST be passed to the client transport every time a retransmission of the 2xx final
      response that triggered the ACK arrives."). 64*T1 after the first 2xx, dialogs still early are terminated.
    - PRACK: a reliable provisional (RFC 3262 §4) is PRACKed when its RSeq is the first one of its dialog or exactly
      one more than the last; a retransmission or a gap is :class:`ProvisionalIgnored`.
    - CANCEL (§9.1): :meth:`cancel` sends it only once a provisional has arrived (it waits for one otherwise) and not
      after a final response; 64*T1 after it, without a final response, :class:`CancelTimedOut`.

    ``via`` is the Via (a via-parm) for the ACKs and PRACKs; each gets a fresh branch. By default the INVITE's.
    """

    CANCEL_WAIT = "CANCEL 64*T1"
    FORK_WAIT = "2xx 64*T1"

    def __init__(
        self,
        invite: Request,
        config: TimerConfig | None = None,
        now: float = 0.0,
        *,
        via: str | None = None,
        secure_transport: bool = False,
        rng: Random | None = None,
    ) -> None:
        super().__init__(config)
        if invite.method != "INVITE" or not invite.via or invite.cseq is None:
            raise UaError("an INVITE with Via and CSeq is needed")
        self.invite = invite
        self.via = via or invite.via[0].raw
        self.rng = rng
        self.created_at = now
        self.dialogs = DialogSet(invite, secure_transport=secure_transport)
        self.provisional_received = False
        #: The first final response (later 2xx from other forks still create dialogs and get ACKs).
        self.final_response: Response | None = None
        self.first_2xx_at: float | None = None
        self.cancel_request: Request | None = None
        self.cancel_pending = False
        self.cancelled = False
        #: The ACK sent for each 2xx, by To tag.
        self.acks: dict[str | None, Request] = {}
        #: RFC 3262 §4: the RSeq of the last in-order reliable provisional, per dialog (errata 4600: per fork).
        self.last_rseq: dict[str | None, int] = {}
        #: The PRACKs sent, in order.
        self.pracks: list[Request] = []

    def new_via(self) -> str:
        return fresh_via(self.via, self.rng)

    # -- responses -----------------------------------------------------------------------------------------------
    def receive_response(
        self,
        response: Response,
        now: float,
        *,
        ack_body: bytes = b"",
        ack_content_type: str | None = None,
        prack_body: bytes = b"",
        prack_content_type: str | None = None,
    ) -> Dialog | None:
        """One response to our INVITE (first or retransmission, any fork); returns its dialog, if any."""
        status = response.status
        if status < 200:
            return self._provisional(response, now, prack_body, prack_content_type)
        if self.final_response is None:
            self.final_response = response
        self.cancel_pending = False
        self._timers.cancel(self.CANCEL_WAIT)
        dialog = self.dialogs.receive_response(response)
        if 200 <= status < 300:
            if self.first_2xx_at is None:
                # §13.2.2.4: "The UAC core considers the INVITE transaction completed 64*T1 seconds after the
                # reception of the first 2xx response."
                self.first_2xx_at = now
                self._timers.start(self.FORK_WAIT, now + self.config.transaction_timeout)
            tag = _to_tag(response)
            ack = self.acks.get(tag)
            if ack is not None:
                self._events.append(SendMessage(ack, True))
            elif dialog is not None:
                ack = dialog.create_ack(self.invite, via=self.new_via(), body=ack_body, content_type=ack_content_type)
                self.acks[tag] = ack
                self._events.append(SendMessage(ack))
        return dialog

    def _provisional(self, response: Response, now: float, body: bytes, content_type: str | None) -> Dialog | None:
        status = response.status
        self.provisional_received = True
        if self.cancel_pending and self.final_response is None:
            self._send_cancel(now)
        if self.final_response is not None:
            return self.dialogs.get(_to_tag(response))
        dialog = self.dialogs.receive_response(response)
        # RFC 3262 §4: "If the response is a 100 (Trying) (as opposed to 101 to 199), this option tag MUST be
        # ignored, and the procedures below MUST NOT be used."
        rseq = response.rseq
        if status == 100 or "100rel" not in response.require or rseq is None or dialog is None:
            return dialog
        tag = _to_tag(response)
        last = self.last_rseq.get(tag)
        if last is not None and rseq != last + 1:
            # "if the UAC receives another reliable provisional response to the same request, and its RSeq value is
            # not one higher than the value of the sequence number, that response MUST NOT be acknowledged with a
            # PRACK, and MUST NOT be processed further by the UAC."
            self._events.append(ProvisionalIgnored(response, "retransmission" if rseq <= last else "out of order"))
            return dialog
        self.last_rseq[tag] = rseq
        cseq = response.cseq
        assert cseq is not None
        prack = dialog.create_request(
            "PRACK",
            via=self.new_via(),
            headers=[("RAck", f"{rseq} {cseq.number} {cseq.method}")],
            body=body,
            content_type=content_type,
        )
        self.pracks.append(prack)
        self._events.append(RequestCreated(prack))
        return dialog

    def transaction_failed(self, now: float) -> None:
        """The INVITE client transaction timed out or failed: treated as a 408 (§13.2.2), early dialogs end."""
        self.cancel_pending = False
        self._timers.cancel(self.CANCEL_WAIT)
        self.dialogs.terminate_early()

    # -- CANCEL --------------------------------------------------------------------------------------------------
    def cancel(self, now: float) -> Request | None:
        """Cancel the INVITE (§9.1); returns the CANCEL when it is sent now.

        "If no provisional response has been received, the CANCEL request MUST NOT be sent; rather, the client MUST
        wait for the arrival of a provisional response before sending the request. If the original request has
        generated a final response, the CANCEL SHOULD NOT be sent".
        """
        if self.final_response is not None:
            return None
        if self.cancel_request is not None:
            return self.cancel_request
        if not self.provisional_received:
            self.cancel_pending = True
            return None
        return self._send_cancel(now)

    def _send_cancel(self, now: float) -> Request:
        self.cancel_pending = False
        cancel = build_cancel(self.invite)
        self.cancel_request = cancel
        self._events.append(RequestCreated(cancel))
        self._timers.start(self.CANCEL_WAIT, now + self.config.transaction_timeout)
        return cancel

    def _on_timer(self, name: str, now: float) -> None:
        if name == self.CANCEL_WAIT and self.cancel_request is not None:
            self.cancelled = True
            self.dialogs.terminate_early()
            self._events.append(CancelTimedOut(self.cancel_request))
        elif name == self.FORK_WAIT:
            # §13.2.2.4: "At this point all the early dialogs that have not transitioned to established dialogs are
            # terminated."
            self.dialogs.terminate_early()


# -- UAS: CANCEL (§9.2) -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CancelAnswer:
    """What a UAS sends for a CANCEL: the CANCEL's own response and, when the INVITE was pending, its 487."""

    cancel_response: Response
    invite_response: Response | None


def answer_cancel(
    cancel: Request,
    target: ServerInviteTransaction | ServerNonInviteTransaction | None,
    *,
    to_tag: str | None = None,
) -> CancelAnswer:
    """The UAS answer to a CANCEL whose §9.2 target (see :meth:`TransactionTable.cancel_target`) is ``target``.

    "If the UAS did not find a matching transaction for the CANCEL according to the procedure above, it SHOULD
    respond to the CANCEL with a 481". Once a final response was sent "the CANCEL request has no effect". "If the
    original request was an INVITE, the UAS SHOULD immediately respond to the INVITE with a 487 (Request
    Terminated)." "Regardless of the method of the original request, as long as the CANCEL matched an existing
    transaction, the UAS answers the CANCEL request itself with a 200 (OK) response" and "the To tag of the response
    to the CANCEL and the To tag in the response to the original request SHOULD be the same".

    The To tag is the one the target's responses carried, else ``to_tag``, else a new one. The caller passes
    ``invite_response`` to the target and ``cancel_response`` to the CANCEL's server transaction.
    """
    if cancel.method != "CANCEL":
        raise UaError(f"{cancel.method} is not a CANCEL")
    if target is None or target.terminated:
        return CancelAnswer(build_response(cancel, 481), None)
    sent = target.last_response
    tag = (_to_tag(sent) if sent is not None else None) or to_tag or new_tag()
    pending = isinstance(target, ServerInviteTransaction) and target.state is TransactionState.PROCEEDING
    invite_response = build_response(target.request, 487, to_tag=tag) if pending else None
    return CancelAnswer(build_response(cancel, 200, to_tag=tag), invite_response)


# -- UAS: reliable provisionals (RFC 3262 §3) ---------------------------------------------------------------------


class ReliableProvisionals(_Core):
    """The UAS side of RFC 3262 for one INVITE: RSeq, retransmission until PRACK, one unacknowledged at a time.

    :meth:`send` stamps ``Require: 100rel`` and ``RSeq`` on a 101-199 response and queues it as
    :class:`ResponseCreated` (for the INVITE server transaction) when no earlier reliable provisional is waiting for
    its PRACK, or holds it until then ("The UAS MUST NOT send a second reliable provisional response until the first
    is acknowledged."). "The reliable provisional response is passed to the transaction layer periodically with an
    interval that starts at T1 seconds and doubles for each retransmission"; after 64*T1 without PRACK it queues
    :class:`PrackTimedOut` and a 500 for the INVITE.
    """

    RETRANSMIT = "1xx retransmit"
    PRACK_WAIT = "PRACK wait"

    def __init__(
        self,
        invite: Request,
        config: TimerConfig | None = None,
        now: float = 0.0,
        *,
        first_rseq: int | None = None,
        rng: Random | None = None,
        require_offer: bool = True,
    ) -> None:
        super().__init__(config)
        if invite.method != "INVITE" or invite.cseq is None:
            raise UaError("reliable provisionals answer an INVITE")
        if require_offer and "100rel" not in invite.supported and "100rel" not in invite.require:
            raise UaError("the INVITE has 100rel in neither Supported nor Require (RFC 3262 §3)")
        if first_rseq is None:
            first_rseq = rng.randint(1, MAX_FIRST_RSEQ) if rng is not None else secrets.randbelow(MAX_FIRST_RSEQ) + 1
        if not 1 <= first_rseq <= MAX_FIRST_RSEQ:
            raise UaError(f"the first RSeq must be in 1..2**31-1, not {first_rseq}")
        self.invite = invite
        self.next_rseq = first_rseq
        #: The reliable provisional sent and not yet PRACKed.
        self.pending: Response | None = None
        #: Reliable provisionals waiting for the pending one to be PRACKed.
        self.queue: deque[Response] = deque()
        #: Those PRACKed, in order.
        self.acknowledged: list[Response] = []
        self.stopped = False
        self._interval = self.config.t1

    def send(self, response: Response, now: float) -> Response:
        """Make ``response`` reliable (RSeq, Require: 100rel) and send it now or after the pending one's PRACK."""
        if self.stopped:
            raise UaError("a final response was sent or the PRACK wait timed out")
        if not 101 <= response.status <= 199:
            raise UaError(f"only 101-199 responses are sent reliably, not {response.status} (RFC 3262 §3)")
        rc, ic = response.cseq, self.invite.cseq
        if rc is None or ic is None or (rc.number, rc.method) != (ic.number, ic.method):
            raise UaError(f"{response.summary()} does not answer {self.invite.summary()}")
        if self.next_rseq > 2**32 - 1:
            raise UaError("RSeq numbers MUST NOT wrap around (RFC 3262 §3)")
        require = [t for t in response.require if t != "100rel"]
        stamped = response.with_header("Require", ", ".join([*require, "100rel"]))
        stamped = stamped.with_header("RSeq", str(self.next_rseq))
        assert isinstance(stamped, Response)
        self.next_rseq += 1
        if self.pending is None:
            self._transmit(stamped, now)
        else:
            self.queue.append(stamped)
        return stamped

    def _transmit(self, response: Response, now: float) -> None:
        self.pending = response
        self._events.append(ResponseCreated(response))
        self._interval = self.config.t1
        self._timers.start(self.RETRANSMIT, now + self._interval)
        self._timers.start(self.PRACK_WAIT, now + self.config.transaction_timeout)

    def matches(self, prack: Request) -> bool:
        """RFC 3262 §3: "A matching PRACK is defined as one within the same dialog as the response, and whose method,
        CSeq-num, and response-num in the RAck header field match, respectively, the method from the CSeq, the
        sequence number from the CSeq, and the sequence number from the RSeq of the reliable provisional response."
        """
        pending, rack = self.pending, prack.rack
        if pending is None or rack is None or pending.cseq is None:
            return False
        return (
            prack.method == "PRACK"
            and prack.call_id == pending.call_id
            and _from_tag(prack) == _from_tag(pending)
            and _to_tag(prack) == _to_tag(pending)
            and (rack.rseq, rack.cseq, rack.method) == (pending.rseq, pending.cseq.number, pending.cseq.method)
        )

    def receive_prack(self, prack: Request, now: float) -> Response:
        """The response for a PRACK: 200 when it matches the pending reliable provisional, else 481.

        "If a PRACK request is received by the UA core that does not match any unacknowledged reliable provisional
        response, the UAS MUST respond to the PRACK with a 481 response. If the PRACK does match an unacknowledged
        reliable provisional response, it MUST be responded to with a 2xx response."
        """
        if not self.matches(prack):
            return build_response(prack, 481)
        assert self.pending is not None
        self.acknowledged.append(self.pending)
        self.pending = None
        self._timers.cancel_all()
        if self.queue:
            self._transmit(self.queue.popleft(), now)
        return build_response(prack, 200)

    def may_send_final(self, status: int) -> bool:
        """RFC 3262 §3: a final response may precede the PRACKs "unless the final response is 2xx and any of the
        unacknowledged reliable provisional responses contained a session description"."""
        unacked = [r for r in (self.pending, *self.queue) if r is not None]
        return not (200 <= status < 300 and any(r.body for r in unacked))

    def final_sent(self, now: float) -> None:
        """The INVITE got its final response: stop retransmitting and drop what is queued."""
        self.stopped = True
        self.pending = None
        self.queue.clear()
        self._timers.cancel_all()

    def _on_timer(self, name: str, now: float) -> None:
        pending = self.pending
        if pending is None:
            return
        if name == self.RETRANSMIT:
            self._events.append(SendMessage(pending, True))
            self._interval *= 2
            self._timers.start(self.RETRANSMIT, now + self._interval)
        elif name == self.PRACK_WAIT:
            self.final_sent(now)
            self._events.append(PrackTimedOut(pending))
            self._events.append(ResponseCreated(build_response(self.invite, 500, to_tag=_to_tag(pending))))


# -- UAC: registration (§10.2) ------------------------------------------------------------------------------------


class RegistrationState(StrEnum):
    UNREGISTERED = "UNREGISTERED"
    REGISTERING = "REGISTERING"
    REGISTERED = "REGISTERED"
    UNREGISTERING = "UNREGISTERING"
    FAILED = "FAILED"


def _same_uri(a: str, b: str) -> bool:
    """A loose §19.1.4 comparison: scheme, user, host (case-insensitive) and port for SIP URIs."""
    ua, ub = parse_uri(a)[0], parse_uri(b)[0]
    if isinstance(ua, SipURI) and isinstance(ub, SipURI):
        return (ua.scheme.lower(), ua.user, ua.host.lower(), ua.port) == (
            ub.scheme.lower(),
            ub.user,
            ub.host.lower(),
            ub.port,
        )
    return a == b


class RegistrationClient(_Core):
    """A UA registering one Contact for an address-of-record (RFC 3261 §10.2).

    Every REGISTER has the same Call-ID and a CSeq one higher ("A UA MUST increment the CSeq value by one for each
    REGISTER request with the same Call-ID"), a fresh branch, ``Expires`` and the Contact. After a 2xx the binding's
    granted expiry (the Contact's ``expires`` in the response, else its Expires) schedules a refresh
    ``refresh_before`` seconds before it lapses (at the half for short expiries), counted from when the REGISTER was
    sent. A 423 is retried once with Min-Expires (§10.2.8). Only one REGISTER is in flight: "UAs MUST NOT send a new
    registration ... until they have received a final response from the registrar for the previous one or the
    previous REGISTER request has timed out"; a request made meanwhile is sent after that.
    """

    REFRESH = "refresh"

    def __init__(
        self,
        *,
        registrar: str,
        aor: str,
        contact: str,
        via: str,
        expires: int = 3600,
        config: TimerConfig | None = None,
        now: float = 0.0,
        call_id: str | None = None,
        from_tag: str | None = None,
        first_cseq: int = 1,
        refresh_before: float = 5.0,
        headers: Iterable[tuple[str, str]] = (),
        rng: Random | None = None,
    ) -> None:
        super().__init__(config)
        if "@" in registrar.split(":", 1)[-1].split(";", 1)[0]:
            raise UaError('§10.2: "The "userinfo" and "@" components of the SIP URI MUST NOT be present."')
        self.registrar = registrar
        self.aor = aor
        self.contact = contact
        self.via = via
        self.expires = expires
        self.call_id = call_id or new_call_id(rng=rng)
        self.from_tag = from_tag or new_tag(rng)
        self.cseq = first_cseq - 1
        self.refresh_before = refresh_before
        self.headers = tuple(headers)
        self.rng = rng
        self.state = RegistrationState.UNREGISTERED
        #: Seconds granted by the last 2xx, and when the binding lapses.
        self.granted: int | None = None
        self.expires_at: float | None = None
        self.in_flight: Request | None = None
        self._sent_at = now
        self._next: tuple[str, bool] | None = None
        self._retried_423 = False

    # -- requests ------------------------------------------------------------------------------------------------
    def _build(self, expires: int, all_bindings: bool) -> Request:
        self.cseq += 1
        return build_request(
            "REGISTER",
            self.registrar,
            from_=name_addr(self.aor, tag=self.from_tag),
            to=name_addr(self.aor),
            via=fresh_via(self.via, self.rng),
            call_id=self.call_id,
            cseq=self.cseq,
            contact="*" if all_bindings else f"<{self.contact}>",
            headers=[("Expires", str(expires)), *self.headers],
        )

    def _send(self, kind: str, now: float, all_bindings: bool = False) -> Request | None:
        if self.in_flight is not None:
            self._next = (kind, all_bindings)
            return None
        if kind == "register":
            request = self._build(self.expires, False)
            self.state = RegistrationState.REGISTERING
        else:
            request = self._build(0, all_bindings)
            self.state = RegistrationState.UNREGISTERING
            self._timers.cancel(self.REFRESH)
        self.in_flight = request
        self._sent_at = now
        self._events.append(RequestCreated(request))
        return request

    def register(self, now: float) -> Request | None:
        """Send a REGISTER (or a refresh); ``None`` when it waits for the one in flight."""
        self._retried_423 = False
        return self._send("register", now)

    def unregister(self, now: float, *, all_bindings: bool = False) -> Request | None:
        """§10.2.2: Expires: 0 for our Contact, or ``Contact: *`` for every binding of the AOR."""
        return self._send("unregister", now, all_bindings)

    # -- responses -----------------------------------------------------------------------------------------------
    def receive_response(self, response: Response, now: float) -> None:
        """A response from the REGISTER's client transaction."""
        request = self.in_flight
        if request is None or response.cseq is None or request.cseq is None:
            return
        if response.cseq.number != request.cseq.number or response.status < 200:
            return
        self.in_flight = None
        unregistering = self.state is RegistrationState.UNREGISTERING
        if 200 <= response.status < 300:
            if unregistering:
                self._unregistered()
                self._events.append(Unregistered(response))
            else:
                self._registered(response)
        elif response.status == 423 and not unregistering and not self._retried_423:
            minimum = response.min_expires
            if minimum is not None and minimum > self.expires:
                self.expires = minimum
                self._retried_423 = True
                self._send("register", now)
                return
            self._failed(response)
        else:
            self._failed(response)
        self._continue(now)

    def transaction_failed(self, now: float) -> None:
        """The REGISTER timed out or hit a transport error (§10.2.7: do not retry at once)."""
        if self.in_flight is None:
            return
        self.in_flight = None
        self.state = RegistrationState.FAILED
        self._timers.cancel(self.REFRESH)
        self._events.append(RegistrationFailed(None, None))
        self._continue(now)

    def _registered(self, response: Response) -> None:
        granted: int | None = None
        for na in response.contact:
            if _same_uri(na.uri_text, self.contact):
                granted = na.expires
                if granted is None:
                    granted = response.expires
                break
        if granted is None:
            granted = response.expires if response.expires is not None else self.expires
        contacts = tuple(na.raw for na in response.contact)
        if granted == 0:
            self._unregistered()
            self._events.append(Unregistered(response))
            return
        self.state = RegistrationState.REGISTERED
        self.granted = granted
        self.expires_at = self._sent_at + granted
        refresh = self._sent_at + max(granted / 2, granted - self.refresh_before)
        self._timers.start(self.REFRESH, refresh)
        self._events.append(Registered(granted, contacts))

    def _unregistered(self) -> None:
        self.state = RegistrationState.UNREGISTERED
        self.granted = None
        self.expires_at = None
        self._timers.cancel(self.REFRESH)

    def _failed(self, response: Response) -> None:
        self.state = RegistrationState.FAILED
        self._timers.cancel(self.REFRESH)
        self._events.append(RegistrationFailed(response.status, response))

    def _continue(self, now: float) -> None:
        if self._next is not None and self.in_flight is None:
            kind, all_bindings = self._next
            self._next = None
            self._send(kind, now, all_bindings)

    def _on_timer(self, name: str, now: float) -> None:
        if name == self.REFRESH:
            self.register(now)


# -- the UA timers as data (for the docs) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UaTimerDef:
    """One timer of a UA piece: its name in ``timers()``, schedule, what happens when it fires, and where from."""

    piece: str
    timer: str
    schedule: str
    on_expiry: str
    section: str


UA_TIMERS: tuple[UaTimerDef, ...] = (
    UaTimerDef(
        "AcceptedInvite", AcceptedInvite.RETRANSMIT, "T1, doubling up to T2", "retransmit the 2xx", "RFC 3261 §13.3.1.4"
    ),
    UaTimerDef(
        "AcceptedInvite",
        AcceptedInvite.ACK_WAIT,
        "64*T1 after the 2xx",
        "AckTimedOut: end the session with BYE",
        "RFC 3261 §13.3.1.4",
    ),
    UaTimerDef(
        "InviteClient",
        InviteClient.FORK_WAIT,
        "64*T1 after the first 2xx",
        "terminate the dialogs still early",
        "RFC 3261 §13.2.2.4",
    ),
    UaTimerDef(
        "InviteClient",
        InviteClient.CANCEL_WAIT,
        "64*T1 after the CANCEL",
        "CancelTimedOut: consider the INVITE cancelled",
        "RFC 3261 §9.1",
    ),
    UaTimerDef(
        "ReliableProvisionals",
        ReliableProvisionals.RETRANSMIT,
        "T1, doubling (no cap)",
        "retransmit the reliable provisional",
        "RFC 3262 §3",
    ),
    UaTimerDef(
        "ReliableProvisionals",
        ReliableProvisionals.PRACK_WAIT,
        "64*T1 after the reliable provisional",
        "PrackTimedOut, and a 500 for the INVITE",
        "RFC 3262 §3",
    ),
    UaTimerDef(
        "RegistrationClient",
        RegistrationClient.REFRESH,
        "granted expiry minus refresh_before (at least half of it), from the REGISTER's sending",
        "send a refreshing REGISTER",
        "RFC 3261 §10.2.4",
    ),
)
