"""The four transaction state machines of RFC 3261 §17, with RFC 6026's "Accepted" state, as transition tables.

Each machine is a table of :class:`Transition` rows (state, input → actions, next state, section) and a table of
:class:`StateTimers` (which timers a state starts on entry and which it keeps); the classes only interpret the
actions. The docs (``docs/state-machines.md``) are generated from the same tables by :func:`state_machines_markdown`.

Sans-I/O: every entry point takes ``now``; nothing reads a clock or touches a socket. Outputs are events queued on
the transaction and drained with :meth:`next_event` or :meth:`events`; timers are deadlines exposed by
:meth:`next_timer` and run by :meth:`handle_timer`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias, TypeVar

from ._build import BRANCH_COOKIE, build_ack_for_non2xx, build_response
from ._headers import Via
from ._message import Message, Request, Response
from ._timers import TIMER_TABLE, Timer, TimerConfig, TimerWheel

__all__ = [
    "TransactionState",
    "Input",
    "Action",
    "Transition",
    "StateTimers",
    "TransactionError",
    "SendMessage",
    "ResponseReceived",
    "RequestReceived",
    "MessageAbsorbed",
    "TransactionTimedOut",
    "TransportFailed",
    "TransactionTerminated",
    "StrayResponse",
    "StrayAck",
    "UnmatchableMessage",
    "TransactionEvent",
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
    "ClientTransaction",
    "ServerTransaction",
    "Transaction",
    "TransactionKey",
    "client_key",
    "server_key",
    "cancel_target_key",
    "ack_key_for_response",
    "TransactionTable",
    "TRANSACTION_MACHINES",
    "state_machines_markdown",
]


class TransactionState(StrEnum):
    """The states of RFC 3261 Figures 5 to 8 and RFC 6026 Figures 5 and 7.

    ``INITIAL`` is a client transaction created but not yet started with ``send_request`` (pjsip's NULL state);
    the RFC's machines begin in Calling or Trying.
    """

    INITIAL = "INITIAL"
    CALLING = "CALLING"
    TRYING = "TRYING"
    PROCEEDING = "PROCEEDING"
    COMPLETED = "COMPLETED"
    CONFIRMED = "CONFIRMED"
    ACCEPTED = "ACCEPTED"
    TERMINATED = "TERMINATED"


class Input(StrEnum):
    """What a transaction reacts to, in the words of the RFC's figures."""

    REQUEST_FROM_TU = "request from TU"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_300_699 = "300-699 received"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    TU_1XX = "1xx from TU"
    TU_2XX = "2xx from TU"
    TU_300_699 = "300-699 from TU"
    TIMER_A = "Timer A fires"
    TIMER_B = "Timer B fires"
    TIMER_D = "Timer D fires"
    TIMER_E = "Timer E fires"
    TIMER_F = "Timer F fires"
    TIMER_G = "Timer G fires"
    TIMER_H = "Timer H fires"
    TIMER_I = "Timer I fires"
    TIMER_J = "Timer J fires"
    TIMER_K = "Timer K fires"
    TIMER_L = "Timer L fires"
    TIMER_M = "Timer M fires"
    TIMER_TRYING = "200 ms without TU response"
    TRANSPORT_ERROR = "transport error"


_TIMER_INPUT: dict[Timer, Input] = {t: Input(f"Timer {t.value} fires") for t in Timer if t is not Timer.TRYING}
_TIMER_INPUT[Timer.TRYING] = Input.TIMER_TRYING


class Action(StrEnum):
    """What a transaction does on a transition; timer actions name the timer they act on."""

    SEND_REQUEST = "send request"
    RETRANSMIT_REQUEST = "retransmit request"
    SEND_ACK = "send ACK"
    RETRANSMIT_ACK = "retransmit ACK"
    RESPONSE_TO_TU = "response to TU"
    REQUEST_TO_TU = "request to TU"
    SEND_RESPONSE = "send response"
    RETRANSMIT_RESPONSE = "retransmit last response"
    SEND_TRYING = "send 100 Trying"
    INFORM_TIMEOUT = "inform TU of timeout"
    INFORM_TRANSPORT_ERROR = "inform TU of transport error"
    ABSORB = "absorb"
    DISCARD = "discard"
    DOUBLE_A = "reset A to twice its interval"
    DOUBLE_E = "reset E to MIN(2*interval, T2)"
    E_TO_T2 = "reset E to T2"
    DOUBLE_G = "reset G to MIN(2*interval, T2)"
    STOP_TRYING = "stop the 100 Trying timer"


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of a transition table."""

    state: TransactionState
    input: Input
    actions: tuple[Action, ...]
    next_state: TransactionState
    section: str


@dataclass(frozen=True, slots=True)
class StateTimers:
    """Timers a state starts when entered, and timers it keeps running from the state before."""

    state: TransactionState
    start: tuple[Timer, ...] = ()
    keep: tuple[Timer, ...] = ()


class TransactionError(ValueError):
    """The TU asked a transaction for something its state machine does not allow (h11's LocalProtocolError)."""


# -- events -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Put this message on the wire (to the transaction's destination)."""

    message: Request | Response
    retransmission: bool = False

    @property
    def data(self) -> bytes:
        return bytes(self.message)


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response passed up to the TU."""

    response: Response


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request passed up to the TU (the request that created a server transaction, or an ACK in Accepted)."""

    request: Request


@dataclass(frozen=True, slots=True)
class MessageAbsorbed:
    """A message the transaction took without passing it up: a retransmission, an ACK for a non-2xx, a late
    response from the TU. ``state`` is the state it arrived in."""

    message: Request | Response
    state: TransactionState


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B, F or H fired: the TU is informed of a timeout (§17.1.1.2, §17.1.2.2, §17.2.1)."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The transport reported a failure; the TU is informed (§17.1.4, §17.2.4)."""

    state: TransactionState


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction entered Terminated and "MUST be destroyed immediately"."""


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response matching no client transaction (RFC 6026 §7.2: passed to the core, which drops or logs it)."""

    response: Response


@dataclass(frozen=True, slots=True)
class StrayAck:
    """An ACK matching no INVITE server transaction: normally the ACK for a 2xx, for the UAS core (§13.3.1.4)."""

    ack: Request


@dataclass(frozen=True, slots=True)
class UnmatchableMessage:
    """A message without the Via branch / CSeq that transaction matching needs."""

    message: Request | Response
    reason: str


TransactionEvent: TypeAlias = (
    SendMessage
    | ResponseReceived
    | RequestReceived
    | MessageAbsorbed
    | TransactionTimedOut
    | TransportFailed
    | TransactionTerminated
    | StrayResponse
    | StrayAck
    | UnmatchableMessage
)


# -- the machines -------------------------------------------------------------------------------------------------

S = TransactionState
I = Input  # noqa: E741 - short names keep the tables readable
A = Action


def _t(state: S, inp: I, actions: tuple[A, ...], nxt: S, section: str) -> Transition:
    return Transition(state, inp, actions, nxt, section)


class _Machine:
    """What the four machines share: the table interpreter, timers and the event queue."""

    NAME: ClassVar[str]
    FIGURE: ClassVar[str]
    INITIAL: ClassVar[TransactionState]
    TRANSITIONS: ClassVar[tuple[Transition, ...]]
    STATE_TIMERS: ClassVar[tuple[StateTimers, ...]]
    _table: ClassVar[dict[tuple[TransactionState, Input], Transition]]
    _state_timers: ClassVar[dict[TransactionState, StateTimers]]
    #: per state, the names of the timers it keeps running from the state before
    _keep_names: ClassVar[dict[TransactionState, frozenset[str]]]
    #: Inputs coming from the TU: when the table has no row for them the TU made a mistake (TransactionError).
    _TU_INPUTS: ClassVar[frozenset[Input]] = frozenset({I.REQUEST_FROM_TU, I.TU_1XX, I.TU_2XX, I.TU_300_699})

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "TRANSITIONS" not in cls.__dict__:
            return  # an intermediate base class
        cls._table = {}
        for row in cls.TRANSITIONS:
            key = (row.state, row.input)
            if key in cls._table:
                raise TypeError(f"{cls.__name__}: two transitions for {key}")
            cls._table[key] = row
        cls._state_timers = {st.state: st for st in cls.STATE_TIMERS}
        cls._keep_names = {st: frozenset(t.value for t in cls._state_timers[st].keep) if st in cls._state_timers
                           else frozenset() for st in TransactionState}

    def __init__(self, request: Request, reliable: bool, config: TimerConfig, now: float) -> None:
        self.request = request
        self.reliable = reliable
        self.config = config
        self.created_at = now
        self.state: TransactionState = self.INITIAL
        self.last_response: Response | None = None
        self._timers = TimerWheel()
        self._intervals: dict[Timer, float] = {}
        self._immediate: deque[Timer] = deque()
        self._events: _EventQueue = _EventQueue()

    # -- public surface --------------------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return self.request.method

    @property
    def branch(self) -> str | None:
        return self.request.transaction_branch

    @property
    def terminated(self) -> bool:
        return self.state is S.TERMINATED

    def next_event(self) -> TransactionEvent | None:
        return self._events.popleft() if self._events else None

    def events(self) -> list[TransactionEvent]:
        """Drain every queued event."""
        out = list(self._events)
        self._events.clear()
        return out

    def next_timer(self) -> float | None:
        """The earliest deadline of the running timers, or ``None``."""
        return self._timers.next_timer()

    def timers(self) -> list[tuple[str, float]]:
        """The running timers and their deadlines, earliest first (for traces and tests)."""
        return list(self._timers)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, earliest first."""
        while (item := self._timers.pop_next(now)) is not None:
            self._apply(_TIMER_INPUT[Timer(item[0])], now, None)

    def transport_error(self, now: float) -> None:
        """The transport could not send the last message (§17.1.4, §17.2.4)."""
        self._apply(I.TRANSPORT_ERROR, now, None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.branch} {self.state.value}>"

    # -- the interpreter -------------------------------------------------------------------------------------------
    def _apply(self, inp: Input, now: float, message: Request | Response | None) -> bool:
        row = self._table.get((self.state, inp))
        if row is None:
            if inp in self._TU_INPUTS:
                raise TransactionError(f"{self.NAME} in state {self.state.value} has no transition for {inp.value!r}")
            if message is not None:
                self._events.append(MessageAbsorbed(message, self.state))
            return False
        for action in row.actions:
            self._do(action, message, now)
        if row.next_state is not self.state:
            self._enter(row.next_state, now)
        self._run_immediate(now)
        return True

    def _run_immediate(self, now: float) -> None:
        """Fire the zero-second timers started by the last transition (D, I, J, K on reliable transports)."""
        while self._immediate and not self.terminated:
            self._apply(_TIMER_INPUT[self._immediate.popleft()], now, None)

    def _enter(self, state: TransactionState, now: float) -> None:
        self.state = state
        self._immediate.clear()
        spec = self._state_timers.get(state) or StateTimers(state)
        keep = self._keep_names[state]
        for name in self._timers.names():
            if name not in keep:
                self._timers.cancel(name)
        for timer in spec.start:
            self._start(timer, now)
        if state is S.TERMINATED:
            self._timers.cancel_all()
            self._events.append(TransactionTerminated())

    def _timer_enabled(self, timer: Timer) -> bool:
        return True

    def _start(self, timer: Timer, now: float, interval: float | None = None) -> None:
        if not self._timer_enabled(timer):
            return
        if interval is None:
            interval = self.config.duration(timer, self.reliable)
            if interval is None:
                return
        self._intervals[timer] = interval
        if interval <= 0:
            self._immediate.append(timer)
        else:
            self._timers.start(timer.value, now + interval)

    def _emit_send(self, message: Request | Response, retransmission: bool = False) -> None:
        self._events.append(SendMessage(message, retransmission))

    def _do(self, action: Action, message: Request | Response | None, now: float) -> None:
        cfg = self.config
        if action is A.SEND_REQUEST:
            self._emit_send(self.request)
        elif action is A.RETRANSMIT_REQUEST:
            self._emit_send(self.request, True)
        elif action is A.RESPONSE_TO_TU:
            assert isinstance(message, Response)
            self._events.append(ResponseReceived(message))
        elif action is A.REQUEST_TO_TU:
            assert isinstance(message, Request)
            self._events.append(RequestReceived(message))
        elif action is A.SEND_RESPONSE:
            assert isinstance(message, Response)
            self.last_response = message
            self._emit_send(message)
        elif action is A.RETRANSMIT_RESPONSE:
            if self.last_response is not None:
                self._emit_send(self.last_response, True)
            elif message is not None:
                self._events.append(MessageAbsorbed(message, self.state))
        elif action is A.INFORM_TIMEOUT:
            raise AssertionError("handled by the subclass")  # pragma: no cover
        elif action is A.INFORM_TRANSPORT_ERROR:
            self._events.append(TransportFailed(self.state))
        elif action in (A.ABSORB, A.DISCARD):
            if message is not None:
                self._events.append(MessageAbsorbed(message, self.state))
        elif action is A.DOUBLE_A:
            self._start(Timer.A, now, 2 * self._intervals[Timer.A])
        elif action is A.DOUBLE_E:
            self._start(Timer.E, now, min(2 * self._intervals[Timer.E], cfg.t2))
        elif action is A.E_TO_T2:
            self._start(Timer.E, now, cfg.t2)
        elif action is A.DOUBLE_G:
            self._start(Timer.G, now, min(2 * self._intervals[Timer.G], cfg.t2))
        elif action is A.STOP_TRYING:
            self._timers.cancel(Timer.TRYING.value)
        else:  # pragma: no cover - every action is handled above or by a subclass
            raise AssertionError(action)


def _status_input(status: int, *, from_tu: bool) -> Input:
    if 100 <= status < 200:
        return I.TU_1XX if from_tu else I.RECV_1XX
    if 200 <= status < 300:
        return I.TU_2XX if from_tu else I.RECV_2XX
    return I.TU_300_699 if from_tu else I.RECV_300_699


class _ClientMachine(_Machine):
    def send_request(self, now: float) -> None:
        """Start the transaction: pass the request to the transport and start the timers."""
        self._apply(I.REQUEST_FROM_TU, now, None)

    def matches(self, response: Response) -> bool:
        """§17.1.3: same top-Via branch and same CSeq method as the request."""
        return client_key(response) == client_key(self.request)

    def receive_response(self, response: Response, now: float) -> None:
        """A response from the network that matched this transaction (§17.1.3)."""
        if self.state is S.INITIAL:
            raise TransactionError(f"{self.NAME}: response received before send_request")
        if not self.matches(response):
            raise TransactionError(f"{self.NAME}: {response.summary()} does not match {self.request.summary()}")
        if response.status < 100:
            self._events.append(MessageAbsorbed(response, self.state))
            return
        self._apply(_status_input(response.status, from_tu=False), now, response)


class ClientInviteTransaction(_ClientMachine):
    """The INVITE client transaction (RFC 3261 §17.1.1, Figure 5; RFC 6026 §8.4, Figure 5).

    The ACK for a 300-699 response is built here (§17.1.1.3) and re-sent for each retransmission of that response;
    a 2xx moves the transaction to Accepted, where every further 2xx (retransmission or fork) goes to the TU, which
    sends the ACK for 2xx itself (§13.2.2.4).
    """

    NAME = "INVITE client transaction"
    FIGURE = "RFC 3261 Figure 5, RFC 6026 Figure 5"
    INITIAL = S.INITIAL
    TRANSITIONS = (
        _t(S.INITIAL, I.REQUEST_FROM_TU, (A.SEND_REQUEST,), S.CALLING, "RFC 3261 §17.1.1.2"),
        _t(S.CALLING, I.TIMER_A, (A.RETRANSMIT_REQUEST, A.DOUBLE_A), S.CALLING, "RFC 3261 §17.1.1.2"),
        _t(S.CALLING, I.TIMER_B, (A.INFORM_TIMEOUT,), S.TERMINATED, "RFC 3261 §17.1.1.2"),
        _t(S.CALLING, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.TERMINATED, "RFC 3261 §17.1.4"),
        _t(S.CALLING, I.RECV_1XX, (A.RESPONSE_TO_TU,), S.PROCEEDING, "RFC 3261 §17.1.1.2"),
        _t(S.CALLING, I.RECV_2XX, (A.RESPONSE_TO_TU,), S.ACCEPTED, "RFC 6026 §8.4"),
        _t(S.CALLING, I.RECV_300_699, (A.RESPONSE_TO_TU, A.SEND_ACK), S.COMPLETED, "RFC 3261 §17.1.1.2"),
        _t(S.PROCEEDING, I.RECV_1XX, (A.RESPONSE_TO_TU,), S.PROCEEDING, "RFC 3261 §17.1.1.2"),
        _t(S.PROCEEDING, I.RECV_2XX, (A.RESPONSE_TO_TU,), S.ACCEPTED, "RFC 6026 §8.4"),
        _t(S.PROCEEDING, I.RECV_300_699, (A.RESPONSE_TO_TU, A.SEND_ACK), S.COMPLETED, "RFC 3261 §17.1.1.2"),
        _t(S.COMPLETED, I.RECV_300_699, (A.RETRANSMIT_ACK,), S.COMPLETED, "RFC 3261 §17.1.1.2"),
        _t(S.COMPLETED, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.TERMINATED, "RFC 3261 §17.1.1.2"),
        _t(S.COMPLETED, I.TIMER_D, (), S.TERMINATED, "RFC 3261 §17.1.1.2"),
        _t(S.ACCEPTED, I.RECV_2XX, (A.RESPONSE_TO_TU,), S.ACCEPTED, "RFC 6026 §8.4"),
        _t(S.ACCEPTED, I.TIMER_M, (), S.TERMINATED, "RFC 6026 §8.4"),
    )
    STATE_TIMERS = (
        StateTimers(S.CALLING, start=(Timer.A, Timer.B)),
        StateTimers(S.COMPLETED, start=(Timer.D,)),
        StateTimers(S.ACCEPTED, start=(Timer.M,)),
    )

    def __init__(
        self, request: Request, reliable: bool = False, config: TimerConfig | None = None, now: float = 0.0
    ) -> None:
        if request.method != "INVITE":
            raise TransactionError(f"an INVITE client transaction cannot send {request.method}")
        super().__init__(request, reliable, config or TimerConfig(), now)
        #: The ACK this transaction built for a 300-699 response (§17.1.1.3).
        self.ack: Request | None = None

    def _do(self, action: Action, message: Request | Response | None, now: float) -> None:
        if action is A.SEND_ACK:
            assert isinstance(message, Response)
            self.last_response = message
            self.ack = build_ack_for_non2xx(self.request, message)
            self._emit_send(self.ack)
        elif action is A.RETRANSMIT_ACK:
            assert self.ack is not None and message is not None
            self._events.append(MessageAbsorbed(message, self.state))
            self._emit_send(self.ack, True)
        elif action is A.INFORM_TIMEOUT:
            self._events.append(TransactionTimedOut(Timer.B))
        else:
            if action is A.RESPONSE_TO_TU and isinstance(message, Response):
                self.last_response = message
            super()._do(action, message, now)


class ClientNonInviteTransaction(_ClientMachine):
    """The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6)."""

    NAME = "non-INVITE client transaction"
    FIGURE = "RFC 3261 Figure 6"
    INITIAL = S.INITIAL
    TRANSITIONS = (
        _t(S.INITIAL, I.REQUEST_FROM_TU, (A.SEND_REQUEST,), S.TRYING, "RFC 3261 §17.1.2.2"),
        _t(S.TRYING, I.TIMER_E, (A.RETRANSMIT_REQUEST, A.DOUBLE_E), S.TRYING, "RFC 3261 §17.1.2.2"),
        _t(S.TRYING, I.TIMER_F, (A.INFORM_TIMEOUT,), S.TERMINATED, "RFC 3261 §17.1.2.2"),
        _t(S.TRYING, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.TERMINATED, "RFC 3261 §17.1.4"),
        _t(S.TRYING, I.RECV_1XX, (A.RESPONSE_TO_TU,), S.PROCEEDING, "RFC 3261 §17.1.2.2"),
        _t(S.TRYING, I.RECV_2XX, (A.RESPONSE_TO_TU,), S.COMPLETED, "RFC 3261 §17.1.2.2"),
        _t(S.TRYING, I.RECV_300_699, (A.RESPONSE_TO_TU,), S.COMPLETED, "RFC 3261 §17.1.2.2"),
        _t(S.PROCEEDING, I.TIMER_E, (A.RETRANSMIT_REQUEST, A.E_TO_T2), S.PROCEEDING, "RFC 3261 §17.1.2.2"),
        _t(S.PROCEEDING, I.TIMER_F, (A.INFORM_TIMEOUT,), S.TERMINATED, "RFC 3261 §17.1.2.2"),
        _t(S.PROCEEDING, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.TERMINATED, "RFC 3261 §17.1.4"),
        _t(S.PROCEEDING, I.RECV_1XX, (A.RESPONSE_TO_TU,), S.PROCEEDING, "RFC 3261 §17.1.2.2"),
        _t(S.PROCEEDING, I.RECV_2XX, (A.RESPONSE_TO_TU,), S.COMPLETED, "RFC 3261 §17.1.2.2"),
        _t(S.PROCEEDING, I.RECV_300_699, (A.RESPONSE_TO_TU,), S.COMPLETED, "RFC 3261 §17.1.2.2"),
        _t(S.COMPLETED, I.RECV_1XX, (A.ABSORB,), S.COMPLETED, "RFC 3261 §17.1.2.2"),
        _t(S.COMPLETED, I.RECV_2XX, (A.ABSORB,), S.COMPLETED, "RFC 3261 §17.1.2.2"),
        _t(S.COMPLETED, I.RECV_300_699, (A.ABSORB,), S.COMPLETED, "RFC 3261 §17.1.2.2"),
        _t(S.COMPLETED, I.TIMER_K, (), S.TERMINATED, "RFC 3261 §17.1.2.2"),
    )
    STATE_TIMERS = (
        StateTimers(S.TRYING, start=(Timer.E, Timer.F)),
        StateTimers(S.PROCEEDING, keep=(Timer.E, Timer.F)),
        StateTimers(S.COMPLETED, start=(Timer.K,)),
    )

    def __init__(
        self, request: Request, reliable: bool = False, config: TimerConfig | None = None, now: float = 0.0
    ) -> None:
        if request.method in ("INVITE", "ACK"):
            raise TransactionError(f"a non-INVITE client transaction cannot send {request.method} (§17.1)")
        super().__init__(request, reliable, config or TimerConfig(), now)

    def _do(self, action: Action, message: Request | Response | None, now: float) -> None:
        if action is A.INFORM_TIMEOUT:
            self._events.append(TransactionTimedOut(Timer.F))
        else:
            if action is A.RESPONSE_TO_TU and isinstance(message, Response):
                self.last_response = message
            super()._do(action, message, now)


class _ServerMachine(_Machine):
    def __init__(self, request: Request, reliable: bool, config: TimerConfig, now: float) -> None:
        super().__init__(request, reliable, config, now)
        self._events.append(RequestReceived(request))

    def matches(self, request: Request) -> bool:
        """§17.2.3: the request is a retransmission of ours (or, for INVITE, its ACK)."""
        key = server_key(request)
        return key is not None and key in (server_key(self.request), self.ack_key)

    @property
    def ack_key(self) -> TransactionKey | None:
        return None

    def receive_request(self, request: Request, now: float) -> None:
        """A request from the network that matched this transaction (§17.2.3): a retransmission, or an ACK."""
        if not self.matches(request):
            raise TransactionError(f"{self.NAME}: {request.summary()} does not match {self.request.summary()}")
        inp = I.RECV_ACK if request.method == "ACK" else I.RECV_REQUEST
        self._apply(inp, now, request)

    def send_response(self, response: Response, now: float) -> None:
        """A response from the TU for this transaction's request."""
        cseq, rcseq = response.cseq, self.request.cseq
        if cseq is None or rcseq is None or (cseq.number, cseq.method) != (rcseq.number, rcseq.method):
            raise TransactionError(f"{self.NAME}: {response.summary()} does not answer {self.request.summary()}")
        if response.transaction_branch != self.request.transaction_branch:
            raise TransactionError(f"{self.NAME}: the response's top Via is not the request's")
        self._apply(_status_input(response.status, from_tu=True), now, response)


class ServerInviteTransaction(_ServerMachine):
    """The INVITE server transaction (RFC 3261 §17.2.1, Figure 7; RFC 6026 §7.1, §8.5-8.7, Figure 7).

    Created when an INVITE arrives; it queues :class:`RequestReceived` at once. Unless ``auto_trying`` is false
    (or :meth:`disable_trying` is called), it sends 100 Trying when the TU has not answered within
    ``config.trying`` (200 ms).
    """

    NAME = "INVITE server transaction"
    FIGURE = "RFC 3261 Figure 7, RFC 6026 Figure 7"
    INITIAL = S.PROCEEDING
    TRANSITIONS = (
        _t(S.PROCEEDING, I.TIMER_TRYING, (A.SEND_TRYING,), S.PROCEEDING, "RFC 3261 §17.2.1"),
        _t(S.PROCEEDING, I.RECV_REQUEST, (A.RETRANSMIT_RESPONSE,), S.PROCEEDING, "RFC 3261 §17.2.1"),
        _t(S.PROCEEDING, I.TU_1XX, (A.STOP_TRYING, A.SEND_RESPONSE), S.PROCEEDING, "RFC 3261 §17.2.1"),
        _t(S.PROCEEDING, I.TU_2XX, (A.SEND_RESPONSE,), S.ACCEPTED, "RFC 6026 §8.5"),
        _t(S.PROCEEDING, I.TU_300_699, (A.SEND_RESPONSE,), S.COMPLETED, "RFC 3261 §17.2.1"),
        _t(S.PROCEEDING, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.TERMINATED, "RFC 3261 §17.2.4"),
        _t(S.COMPLETED, I.RECV_REQUEST, (A.RETRANSMIT_RESPONSE,), S.COMPLETED, "RFC 3261 §17.2.1"),
        _t(S.COMPLETED, I.TIMER_G, (A.RETRANSMIT_RESPONSE, A.DOUBLE_G), S.COMPLETED, "RFC 3261 §17.2.1"),
        _t(S.COMPLETED, I.RECV_ACK, (A.ABSORB,), S.CONFIRMED, "RFC 3261 §17.2.1"),
        _t(S.COMPLETED, I.TIMER_H, (A.INFORM_TIMEOUT,), S.TERMINATED, "RFC 3261 §17.2.1"),
        _t(S.COMPLETED, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.TERMINATED, "RFC 3261 §17.2.1"),
        _t(S.CONFIRMED, I.RECV_ACK, (A.ABSORB,), S.CONFIRMED, "RFC 3261 §17.2.1"),
        _t(S.CONFIRMED, I.RECV_REQUEST, (A.ABSORB,), S.CONFIRMED, "RFC 3261 §17.2.1"),
        _t(S.CONFIRMED, I.TIMER_I, (), S.TERMINATED, "RFC 3261 §17.2.1"),
        _t(S.ACCEPTED, I.RECV_REQUEST, (A.ABSORB,), S.ACCEPTED, "RFC 6026 §8.7"),
        _t(S.ACCEPTED, I.RECV_ACK, (A.REQUEST_TO_TU,), S.ACCEPTED, "RFC 6026 §8.7"),
        _t(S.ACCEPTED, I.TU_2XX, (A.SEND_RESPONSE,), S.ACCEPTED, "RFC 6026 §8.7"),
        _t(S.ACCEPTED, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.ACCEPTED, "RFC 6026 §8.7"),
        _t(S.ACCEPTED, I.TIMER_L, (), S.TERMINATED, "RFC 6026 §8.7"),
    )
    STATE_TIMERS = (
        StateTimers(S.PROCEEDING, start=(Timer.TRYING,)),
        StateTimers(S.COMPLETED, start=(Timer.G, Timer.H)),
        StateTimers(S.CONFIRMED, start=(Timer.I,)),
        StateTimers(S.ACCEPTED, start=(Timer.L,)),
    )

    def __init__(
        self,
        request: Request,
        reliable: bool = False,
        config: TimerConfig | None = None,
        now: float = 0.0,
        *,
        auto_trying: bool = True,
    ) -> None:
        if request.method != "INVITE":
            raise TransactionError(f"an INVITE server transaction cannot take {request.method}")
        super().__init__(request, reliable, config or TimerConfig(), now)
        self.auto_trying = auto_trying
        #: The final response sent (its To tag is what an RFC 2543 ACK must carry, §17.2.3).
        self.final_response: Response | None = None
        self._enter(S.PROCEEDING, now)
        self._run_immediate(now)

    def _timer_enabled(self, timer: Timer) -> bool:
        return timer is not Timer.TRYING or self.auto_trying

    def disable_trying(self) -> None:
        """The TU will answer within 200 ms itself: do not send 100 Trying (§17.2.1 "MAY")."""
        self.auto_trying = False
        self._timers.cancel(Timer.TRYING.value)

    @property
    def ack_key(self) -> TransactionKey | None:
        """The key an ACK for our final response has (§17.2.3, including the RFC 2543 To-tag rule)."""
        if self.final_response is None:
            return None
        return ack_key_for_response(self.request, self.final_response)

    def _do(self, action: Action, message: Request | Response | None, now: float) -> None:
        if action is A.SEND_TRYING:
            trying = build_response(self.request, 100)
            self.last_response = trying
            self._emit_send(trying)
        elif action is A.INFORM_TIMEOUT:
            self._events.append(TransactionTimedOut(Timer.H))
        else:
            if action is A.SEND_RESPONSE and isinstance(message, Response) and message.status >= 200:
                self.final_response = message
            super()._do(action, message, now)


class ServerNonInviteTransaction(_ServerMachine):
    """The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8). Created when the request arrives."""

    NAME = "non-INVITE server transaction"
    FIGURE = "RFC 3261 Figure 8"
    INITIAL = S.TRYING
    TRANSITIONS = (
        _t(S.TRYING, I.RECV_REQUEST, (A.ABSORB,), S.TRYING, "RFC 3261 §17.2.2"),
        _t(S.TRYING, I.TU_1XX, (A.SEND_RESPONSE,), S.PROCEEDING, "RFC 3261 §17.2.2"),
        _t(S.TRYING, I.TU_2XX, (A.SEND_RESPONSE,), S.COMPLETED, "RFC 3261 §17.2.2"),
        _t(S.TRYING, I.TU_300_699, (A.SEND_RESPONSE,), S.COMPLETED, "RFC 3261 §17.2.2"),
        _t(S.PROCEEDING, I.RECV_REQUEST, (A.RETRANSMIT_RESPONSE,), S.PROCEEDING, "RFC 3261 §17.2.2"),
        _t(S.PROCEEDING, I.TU_1XX, (A.SEND_RESPONSE,), S.PROCEEDING, "RFC 3261 §17.2.2"),
        _t(S.PROCEEDING, I.TU_2XX, (A.SEND_RESPONSE,), S.COMPLETED, "RFC 3261 §17.2.2"),
        _t(S.PROCEEDING, I.TU_300_699, (A.SEND_RESPONSE,), S.COMPLETED, "RFC 3261 §17.2.2"),
        _t(S.PROCEEDING, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.TERMINATED, "RFC 3261 §17.2.4"),
        _t(S.COMPLETED, I.RECV_REQUEST, (A.RETRANSMIT_RESPONSE,), S.COMPLETED, "RFC 3261 §17.2.2"),
        _t(S.COMPLETED, I.TU_2XX, (A.DISCARD,), S.COMPLETED, "RFC 3261 §17.2.2"),
        _t(S.COMPLETED, I.TU_300_699, (A.DISCARD,), S.COMPLETED, "RFC 3261 §17.2.2"),
        _t(S.COMPLETED, I.TRANSPORT_ERROR, (A.INFORM_TRANSPORT_ERROR,), S.TERMINATED, "RFC 3261 §17.2.4"),
        _t(S.COMPLETED, I.TIMER_J, (), S.TERMINATED, "RFC 3261 §17.2.2"),
    )
    STATE_TIMERS = (StateTimers(S.COMPLETED, start=(Timer.J,)),)

    def __init__(
        self, request: Request, reliable: bool = False, config: TimerConfig | None = None, now: float = 0.0
    ) -> None:
        if request.method in ("INVITE", "ACK"):
            raise TransactionError(f"a non-INVITE server transaction cannot take {request.method} (§17.2.2)")
        super().__init__(request, reliable, config or TimerConfig(), now)


ClientTransaction: TypeAlias = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction: TypeAlias = ServerInviteTransaction | ServerNonInviteTransaction
Transaction: TypeAlias = ClientTransaction | ServerTransaction

#: The machines, for docs and coverage matrices.
TRANSACTION_MACHINES: tuple[type[_Machine], ...] = (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
)


# -- matching -----------------------------------------------------------------------------------------------------

TransactionKey: TypeAlias = tuple[object, ...]


def _via_identity(via: Via) -> tuple[object, ...]:
    """A Via compared field by field: protocol, transport and host case-insensitively, parameters by name."""
    params = tuple(sorted((k.lower(), v) for k, v in via.params))
    return (via.protocol.upper(), via.version, via.transport.upper(), via.host.lower(), via.port, params)


def client_key(message: Message) -> TransactionKey | None:
    """§17.1.3: top-Via branch and CSeq method (so a CANCEL, sharing the INVITE's branch, is its own transaction).

    Works on the request a client transaction sent and on a response to it; ``None`` without branch or CSeq.
    """
    branch = message.transaction_branch
    cseq = message.cseq
    if branch is None or cseq is None:
        return None
    return ("client", branch, cseq.method)


def _tag(na: object) -> str | None:
    return getattr(na, "tag", None)


def server_key(request: Request, *, method: str | None = None) -> TransactionKey | None:
    """§17.2.3: the key of the server transaction ``request`` belongs to (``None`` without Via or CSeq).

    With a ``z9hG4bK`` branch: branch, top-Via sent-by and method, where ACK takes INVITE's. Otherwise the RFC 2543
    rules: Request-URI, To tag, From tag, Call-ID, CSeq and top Via; an ACK's key carries its To tag, which must
    equal the one of the response the INVITE server transaction sent (see :func:`ack_key_for_response`).
    ``method`` overrides the request's (used for CANCEL matching, §9.2).
    """
    via, cseq = request.via, request.cseq
    if not via or cseq is None:
        return None
    top = via[0]
    m = method or request.method
    if top.branch is not None and top.branch.startswith(BRANCH_COOKIE):
        return ("3261", top.branch, top.host.lower(), top.port, "INVITE" if m == "ACK" else m)
    from_tag, to_tag = _tag(request.from_), _tag(request.to)
    if m == "ACK":
        return ("2543-ACK", request.uri_text, from_tag, request.call_id, cseq.number, _via_identity(top), to_tag)
    cseq_method = m if method else cseq.method
    return ("2543", request.uri_text, to_tag, from_tag, request.call_id, cseq.number, cseq_method, _via_identity(top))


def ack_key_for_response(invite: Request, response: Response) -> TransactionKey | None:
    """The key of an ACK for ``response`` to ``invite``: for RFC 2543 requests its To tag is the response's."""
    key = server_key(invite, method="ACK")
    if key is None or key[0] != "2543-ACK":
        return key
    return key[:-1] + (_tag(response.to),)


def cancel_target_key(cancel: Request, method: str = "INVITE") -> TransactionKey | None:
    """§9.2: "assuming that the request method is anything but CANCEL or ACK and applying the transaction matching
    procedures of Section 17.2.3". ``method`` is the method assumed (INVITE, the only one worth cancelling)."""
    if method in ("CANCEL", "ACK"):
        raise ValueError("a CANCEL targets a request other than CANCEL or ACK")
    return server_key(cancel, method=method)


# -- the table ----------------------------------------------------------------------------------------------------


class _EventQueue(deque):  # type: ignore[type-arg]
    """A transaction's event queue that tells the owning table the transaction has news (so the table never has to
    scan every transaction to find events the TU caused by calling a transaction directly)."""

    def __init__(self) -> None:
        super().__init__()
        self.owner: TransactionTable | None = None
        self.tx: object = None

    def append(self, item: object) -> None:
        super().append(item)
        if self.owner is not None:
            self.owner._dirty[id(self.tx)] = self.tx  # type: ignore[assignment]

_T = TypeVar("_T", bound=_Machine)


class TransactionTable:
    """Dispatch incoming messages to transactions (§17.1.3, §17.2.3) and create server transactions.

    Sans-I/O like the machines: feed :meth:`receive` with parsed messages, call :meth:`handle_timer` at
    :meth:`next_timer`, drain :meth:`events` — pairs of (transaction or ``None``, event). A response or ACK that
    matches nothing comes out as :class:`StrayResponse` / :class:`StrayAck` with ``None``. Terminated transactions
    are dropped once their events have been collected.
    """

    def __init__(self, config: TimerConfig | None = None, *, reliable: bool = False, auto_trying: bool = True):
        self.config = config or TimerConfig()
        self.reliable = reliable
        self.auto_trying = auto_trying
        self._clients: dict[TransactionKey, ClientTransaction] = {}
        self._servers: dict[TransactionKey, ServerTransaction] = {}
        self._events: deque[tuple[Transaction | None, TransactionEvent]] = deque()
        #: Transactions with queued events not yet collected (id → transaction), in the order they got news.
        self._dirty: dict[int, Transaction] = {}
        #: Where each live transaction is registered: id → (table, key).
        self._where: dict[int, tuple[dict[TransactionKey, Any], TransactionKey]] = {}
        #: Deadlines: a heap of (deadline, seq, transaction), checked lazily against the transaction's own timers.
        self._heap: list[tuple[float, int, Transaction]] = []
        self._pushed: dict[int, float] = {}
        self._seq = 0

    # -- creating ------------------------------------------------------------------------------------------------
    def send_request(self, request: Request, now: float, *, reliable: bool | None = None) -> ClientTransaction:
        """Create a client transaction for ``request``, start it and register it."""
        rel = self.reliable if reliable is None else reliable
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = ClientInviteTransaction(request, rel, self.config, now)
        else:
            tx = ClientNonInviteTransaction(request, rel, self.config, now)
        key = client_key(request)
        if key is None:
            raise TransactionError("the request has no Via branch or CSeq")
        if key in self._clients and not self._clients[key].terminated:
            raise TransactionError(f"a client transaction {key} exists already")
        self._clients[key] = tx
        self._adopt(tx, self._clients, key)
        tx.send_request(now)
        self._collect(tx)
        return tx

    def receive(self, message: Request | Response, now: float, *, reliable: bool | None = None) -> Transaction | None:
        """Dispatch one message from the network; returns the transaction it went to (new or existing)."""
        if isinstance(message, Response):
            return self._receive_response(message, now)
        return self._receive_request(message, now, self.reliable if reliable is None else reliable)

    def _receive_response(self, response: Response, now: float) -> Transaction | None:
        key = client_key(response)
        if key is None:
            self._events.append((None, UnmatchableMessage(response, "no top-Via branch or CSeq")))
            return None
        tx = self._live(self._clients, key)
        if tx is None:
            self._events.append((None, StrayResponse(response)))
            return None
        tx.receive_response(response, now)
        self._collect(tx)
        return tx

    def _receive_request(self, request: Request, now: float, reliable: bool) -> Transaction | None:
        key = server_key(request)
        if key is None:
            self._events.append((None, UnmatchableMessage(request, "no Via or CSeq")))
            return None
        tx = self._live(self._servers, key)
        if tx is None and key[0] == "2543-ACK":
            tx = next((t for t in self._servers.values() if not t.terminated and t.ack_key == key), None)
        if request.method == "ACK":
            if tx is None:
                self._events.append((None, StrayAck(request)))
                return None
            tx.receive_request(request, now)
            self._collect(tx)
            return tx
        if tx is not None:
            tx.receive_request(request, now)
            self._collect(tx)
            return tx
        new: ServerTransaction
        if request.method == "INVITE":
            new = ServerInviteTransaction(request, reliable, self.config, now, auto_trying=self.auto_trying)
        else:
            new = ServerNonInviteTransaction(request, reliable, self.config, now)
        self._servers[key] = new
        self._adopt(new, self._servers, key)
        self._collect(new)
        return new

    @staticmethod
    def _live(table: dict[TransactionKey, _T], key: TransactionKey) -> _T | None:
        tx = table.get(key)
        return None if tx is None or tx.terminated else tx

    # -- looking up ----------------------------------------------------------------------------------------------
    def client(self, key: TransactionKey) -> ClientTransaction | None:
        return self._clients.get(key)

    def server(self, key: TransactionKey) -> ServerTransaction | None:
        return self._servers.get(key)

    def server_for(self, request: Request) -> ServerTransaction | None:
        key = server_key(request)
        return None if key is None else self._servers.get(key)

    def cancel_target(self, cancel: Request) -> ServerTransaction | None:
        """§9.2: the live server transaction a CANCEL targets (INVITE first, then any other method but CANCEL/ACK)."""
        key = cancel_target_key(cancel)
        tx = None if key is None else self._live(self._servers, key)
        if tx is not None:
            return tx
        for tx in self._servers.values():
            if tx.terminated or tx.method in ("CANCEL", "ACK", "INVITE"):
                continue
            if cancel_target_key(cancel, tx.method) == server_key(tx.request):
                return tx
        return None

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    def __iter__(self) -> Iterator[Transaction]:
        yield from self._clients.values()
        yield from self._servers.values()

    # -- time and events -----------------------------------------------------------------------------------------
    def _adopt(self, tx: Transaction, table: dict[TransactionKey, Any], key: TransactionKey) -> None:
        tx._events.owner = self
        tx._events.tx = tx
        self._where[id(tx)] = (table, key)

    def _push(self, tx: Transaction) -> None:
        deadline = tx.next_timer()
        if deadline is None or tx.terminated or self._pushed.get(id(tx)) == deadline:
            return
        self._pushed[id(tx)] = deadline
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, tx))

    def _clean(self) -> None:
        """Drop heap entries that no longer match their transaction's earliest deadline (re-pushing the real one)."""
        heap = self._heap
        while heap:
            deadline, _, tx = heap[0]
            if not tx.terminated and tx.next_timer() == deadline:
                return
            heapq.heappop(heap)
            if self._pushed.get(id(tx)) == deadline:
                del self._pushed[id(tx)]
            if not tx.terminated:
                self._push(tx)

    def next_timer(self) -> float | None:
        """The earliest deadline of any transaction (a heap: no scan of every transaction)."""
        self._clean()
        return self._heap[0][0] if self._heap else None

    def handle_timer(self, now: float) -> None:
        """Fire every due timer of every transaction, in deadline order."""
        while True:
            self._clean()
            if not self._heap or self._heap[0][0] > now:
                return
            deadline, _, tx = heapq.heappop(self._heap)
            if self._pushed.get(id(tx)) == deadline:
                del self._pushed[id(tx)]
            tx.handle_timer(now)
            self._collect(tx)

    def _collect(self, tx: Transaction) -> None:
        self._dirty.pop(id(tx), None)
        for event in tx.events():
            self._events.append((tx, event))
        if tx.terminated:
            where = self._where.pop(id(tx), None)
            if where is not None and where[0].get(where[1]) is tx:
                del where[0][where[1]]
            self._pushed.pop(id(tx), None)
        else:
            self._push(tx)

    def next_event(self) -> tuple[Transaction | None, TransactionEvent] | None:
        self._sweep()
        return self._events.popleft() if self._events else None

    def events(self) -> list[tuple[Transaction | None, TransactionEvent]]:
        """Drain every event: the table's own and those the TU caused by calling transactions directly."""
        self._sweep()
        out = list(self._events)
        self._events.clear()
        return out

    def _sweep(self) -> None:
        dirty = self._dirty
        while dirty:
            self._collect(dirty[next(iter(dirty))])


# -- docs ---------------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def state_machines_markdown() -> str:
    """The transition and timer tables as Markdown (``docs/state-machines.md`` is this text)."""
    out = [
        "# Transaction state machines",
        "",
        "<!-- Generated by conformance.sip.state.state_machines_markdown(); do not edit by hand. -->",
        "",
        'The four transaction machines of RFC 3261 §17, with the "Accepted" state RFC 6026 adds to both INVITE',
        "machines. Each table below *is* the machine: `conformance/sip/_transaction.py` interprets these rows and",
        "nothing else. An input with no row is absorbed when it comes from the network (a `MessageAbsorbed` event)",
        "and refused with `TransactionError` when it comes from the TU. A timer of zero seconds (D, I, J, K on",
        "reliable transports) fires at once, within the input that started it.",
        "",
        "## Timers",
        "",
        "| Timer | Value | Section | Meaning |",
        "|---|---|---|---|",
    ]
    for row in TIMER_TABLE.values():
        out.append(f"| {row.timer.value} | {_cell(row.formula)} | {row.section} | {row.meaning} |")
    for machine in TRANSACTION_MACHINES:
        out += [
            "",
            f"## {machine.__name__}",
            "",
            f"{machine.NAME[0].upper()}{machine.NAME[1:]} ({machine.FIGURE}).",
            f"Initial state: `{machine.INITIAL.value}`.",
            "",
        ]
        if machine.STATE_TIMERS:
            out += ["| State | Starts on entry | Keeps running |", "|---|---|---|"]
            for st in machine.STATE_TIMERS:
                start = ", ".join(t.value for t in st.start) or "-"
                keep = ", ".join(t.value for t in st.keep) or "-"
                out.append(f"| {st.state.value} | {start} | {keep} |")
            out += ["", "Every other timer is stopped when a state is entered.", ""]
        out += ["| State | Input | Actions | Next state | Section |", "|---|---|---|---|---|"]
        for tr in machine.TRANSITIONS:
            actions = "; ".join(a.value for a in tr.actions) or "-"
            out.append(
                f"| {tr.state.value} | {_cell(tr.input.value)} | {_cell(actions)} | {tr.next_state.value} | {tr.section} |"
            )
    from ._ua import UA_TIMERS  # the UA pieces sit above the transactions; imported here to avoid a cycle

    out += [
        "",
        "## UA core timers",
        "",
        "The UA pieces of `conformance/sip/_ua.py` run these timers above the transaction layer.",
        "",
        "| Piece | Timer | Schedule | When it fires | Section |",
        "|---|---|---|---|---|",
    ]
    for ua in UA_TIMERS:
        out.append(f"| {ua.piece} | {ua.timer} | {_cell(ua.schedule)} | {_cell(ua.on_expiry)} | {ua.section} |")
    return "\n".join(out) + "\n"
