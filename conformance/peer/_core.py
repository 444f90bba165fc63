"""The scripted peer's async core: endpoints, sending, expecting, client transactions, the trace.

It runs on one asyncio loop. The sans-I/O transaction table is driven by one loop timer, re-armed to the table's
earliest deadline after every input (the aioquic pattern). Everything the peer sends or receives goes into its
:class:`~conformance.trace.Trace`. A failure of the peer's own machinery in the background is kept and re-raised in
the test (``raise_errors``, and on ``close``); a malformed message from the device is not a failure of the peer: it
is recorded, with its defects, and the test decides.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sip import (
    STREAM_TRANSPORTS,
    Message,
    Request,
    Response,
    build_request,
    name_addr,
    new_branch,
    new_call_id,
    new_tag,
    parse,
)
from ..sip._timers import TimerConfig
from ..sip._transaction import (
    ClientTransaction,
    MessageAbsorbed,
    ResponseReceived,
    SendMessage,
    TransactionTable,
    TransactionTerminated,
    TransactionTimedOut,
)
from ..trace import Address, MessageEntry, Trace
from ..transport import Endpoint, FramingFailed, Received, TLSConfig, open_endpoint
from ._faults import Fault
from ._match import Matcher, response

#: Any final response (made once: every call waits for one or two).
_FINAL = response(range(200, 700))

__all__ = ["AsyncPeer", "Incoming", "ClientTransactionHandle", "ExpectationFailed", "PeerError"]


class ExpectationFailed(AssertionError):
    """An expected message did not arrive in time; the text says what arrived instead and how it differs."""


class PeerError(RuntimeError):
    """The peer's background machinery failed (not the device): raised in the test that owns the peer."""

    def __init__(self, errors: Sequence[BaseException]):
        self.errors = list(errors)
        lines = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} error(s) in the peer's background loop: {lines}")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message that arrived, where from, and its trace entry."""

    entry: MessageEntry
    endpoint: Endpoint
    remote: Address
    flow: int
    #: The parsed message (the entry holds it only weakly; this keeps it for whoever holds the Incoming).
    parsed: Request | Response | None = None

    @property
    def message(self) -> Request | Response | None:
        return self.parsed if self.parsed is not None else self.entry.message

    @property
    def time(self) -> float:
        return self.entry.time


@dataclass
class ClientTransactionHandle:
    """A client transaction the peer runs (retransmissions per Timer A/E on UDP, ACK for non-2xx per §17.1.1.3)."""

    request: Request
    endpoint: Endpoint
    remote: Address
    flow: int | None
    tx: ClientTransaction
    responses: list[Incoming] = field(default_factory=list)
    timed_out: str | None = None
    terminated: bool = False
    #: The ACK for the 2xx, re-sent for every retransmitted 2xx (RFC 3261 §13.2.2.4); set by :meth:`AsyncPeer.ack_2xx`.
    ack: Request | None = None
    #: the future a ``transaction_response`` call waits on, resolved by :meth:`_wake`
    _waiter: asyncio.Future[None] | None = None
    _taken: int = 0

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def final(self) -> Response | None:
        for inc in self.responses:
            msg = inc.message
            if isinstance(msg, Response) and msg.status >= 200:
                return msg
        return None

    @property
    def provisionals(self) -> list[Response]:
        return [m for i in self.responses if isinstance(m := i.message, Response) and m.status < 200]


class AsyncPeer:
    """The peer's async API. Most tests use the synchronous :class:`~conformance.peer.Peer` facade instead."""

    def __init__(
        self,
        *,
        name: str = "sipcert",
        user: str = "sipcert",
        timers: TimerConfig | None = None,
        trace: Trace | None = None,
        tls: TLSConfig | None = None,
        host: str = "127.0.0.1",
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.user = user
        self.timers = timers or TimerConfig()
        self.trace = trace if trace is not None else Trace(name)
        self.tls = tls
        self.host = host
        self.rng = rng
        self.endpoints: list[Endpoint] = []
        self.inbox: list[Incoming] = []
        self._consumed: set[int] = set()
        self._errors: list[BaseException] = []
        #: futures of the ``expect`` calls waiting for the inbox to grow
        self._waiters: list[asyncio.Future[None]] = []
        self._table = TransactionTable(self.timers, auto_trying=False)
        self._handles: dict[int, ClientTransactionHandle] = {}
        self._timer: asyncio.Handle | None = None
        #: When ``_timer`` is due. Kept here: uvloop's ``call_at`` returns a plain ``Handle`` (no ``when()``) for a
        #: time that has already passed.
        self._timer_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._cseq = random.Random().randrange(1, 10_000) if rng is None else rng.randrange(1, 10_000)
        self._closed = False

    # -- endpoints -----------------------------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def open(self, transport: str = "udp", *, host: str | None = None, port: int = 0) -> Endpoint:
        """Open a local endpoint (free port by default) and start receiving on it."""
        tls = self.tls
        if transport in ("tls", "wss") and tls is None:
            tls = self.tls = TLSConfig.for_tests()
        ep = await open_endpoint(
            transport,
            host or self.host,
            port,
            on_message=self._on_message,
            on_error=self._on_error,
            tls=tls,
        )
        self.endpoints.append(ep)
        self.trace.note(f"{self.name}: opened {transport} endpoint {ep.sent_by()}")
        return ep

    def endpoint(self, transport: str | None = None) -> Endpoint:
        """The first open endpoint (of that transport)."""
        for ep in self.endpoints:
            if transport is None or ep.transport == transport:
                return ep
        raise LookupError(f"no {transport or ''} endpoint is open: call open() first".replace("  ", " "))

    async def close(self) -> None:
        """Close every endpoint and stop the timer; then raise :class:`PeerError` if the background failed."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for ep in self.endpoints:
            try:
                await ep.close()
            except Exception as exc:  # closing must not hide the test's own result
                self._errors.append(exc)
        self.raise_errors()

    def raise_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise PeerError(errors)

    # -- receiving -----------------------------------------------------------------------------------------------
    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, FramingFailed):
            # The device broke stream framing: a finding about the device, recorded, not a peer failure.
            self.trace.record_message(
                "received",
                exc.transport,
                ("", 0),
                exc.remote,
                exc.discarded,
                None,
                (exc.defect,),
                note="framing-failed",
                framed=False,
            )
            self.trace.note(f"stream from {exc.remote} closed after a framing error: {exc.defect}", "warning")
            return
        self._errors.append(exc)

    def _endpoint_of(self, received: Received) -> Endpoint:
        for ep in self.endpoints:
            if ep.transport == received.transport and (ep.local == received.local or received.flow in {f.id for f in ep.flows()}):
                return ep
        return self.endpoint(received.transport)

    def _on_message(self, received: Received) -> None:
        try:
            msg = parse(received.data, stream=received.transport in STREAM_TRANSPORTS).message
            entry = self.trace.record_message(
                "received",
                received.transport,
                received.local,
                received.remote,
                received.data,
                msg,
                tuple(received.defects),
                endpoint=self.name,
            )
            ep = self._endpoint_of(received)
            incoming = Incoming(entry, ep, received.remote, received.flow, msg)
            if isinstance(msg, Response) and self._handles:
                tx = self._table.receive(msg, self.loop.time(), reliable=ep.transport != "udp")
                handle = self._handles.get(id(tx)) if tx is not None else None
                if handle is not None:
                    self._drain(incoming_for=(handle, incoming))
                    return
            self.inbox.append(incoming)
            self._notify()
        except Exception as exc:  # a bug in the peer: fail the test that owns it
            self._errors.append(exc)

    def _notify(self) -> None:
        """Wake every ``expect`` waiting for the inbox (no task is made: this runs on the loop's thread)."""
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[None] = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._errors.append(task.exception())  # type: ignore[arg-type]

    # -- the transaction driver ----------------------------------------------------------------------------------
    def _drain(self, incoming_for: tuple[ClientTransactionHandle, Incoming] | None = None) -> None:
        """Act on the table's events, then re-arm the one timer."""
        delivered = False
        for tx, event in self._table.events():
            handle = self._handles.get(id(tx)) if tx is not None else None
            if handle is None:
                continue
            if isinstance(event, SendMessage):
                self._send_soon(bytes(event.message), handle.endpoint, handle.remote, handle.flow,
                                note="retransmission" if event.retransmission else "")
            elif isinstance(event, ResponseReceived) and incoming_for is not None and incoming_for[0] is handle:
                handle.responses.append(incoming_for[1])
                delivered = True
                handle._wake()
                if handle.ack is not None and 200 <= event.response.status < 300:
                    # §13.2.2.4: "The UAC core MUST generate an ACK request for each 2xx received from the
                    # transaction layer." A retransmitted 2xx means our ACK was lost: send it again.
                    self._send_soon(bytes(handle.ack), handle.endpoint, handle.remote, handle.flow,
                                    note="ack-retransmission", message=handle.ack)
            elif isinstance(event, MessageAbsorbed) and incoming_for is not None and incoming_for[0] is handle:
                delivered = True  # a retransmission the transaction absorbed; it is in the trace
            elif isinstance(event, TransactionTimedOut):
                handle.timed_out = str(event.timer)
                self.trace.record_timer(str(event.timer), f"client transaction {handle.tx.branch}", "timed out")
                handle._wake()
            elif isinstance(event, TransactionTerminated):
                handle.terminated = True
                self._handles.pop(id(tx), None)
                handle._wake()
        if incoming_for is not None and not delivered:
            self.inbox.append(incoming_for[1])
            self._notify()
        self._arm()

    def _arm(self) -> None:
        """Have the loop call :meth:`_fire` at the table's earliest deadline.

        An armed loop timer that is due no later than that deadline is kept: firing early costs one empty
        ``handle_timer`` and a re-arm, while cancelling and re-making the loop timer after every message costs a
        heap push each time (most messages stop one timer and start a later one).
        """
        deadline = self._table.next_timer()
        timer = self._timer
        if timer is not None:
            if deadline is not None and self._timer_at <= deadline:
                return
            timer.cancel()
            self._timer = None
        if deadline is not None and not self._closed:
            self._timer = self.loop.call_at(deadline, self._fire)
            self._timer_at = deadline

    def _fire(self) -> None:
        self._timer = None
        try:
            self._table.handle_timer(self.loop.time())
            self._drain()
        except Exception as exc:
            self._errors.append(exc)

    # -- sending -------------------------------------------------------------------------------------------------
    def _send_soon(
        self, data: bytes, ep: Endpoint, remote: Address, flow: int | None, *, note: str = "", message: Message | None = None
    ) -> None:
        """Send from a callback: at once when the endpoint can (a datagram), else in a task. Errors fail the test."""
        try:
            used = ep.send_now(data, remote, flow=flow)
        except Exception as exc:
            self._errors.append(exc)
            return
        if used is None:
            self._spawn(self._send_bytes(data, ep, remote, flow, note=note, message=message))
        else:
            self._record_sent(data, ep, remote, used, note, message)

    async def _send_bytes(
        self, data: bytes, ep: Endpoint, remote: Address, flow: int | None, *, note: str = "", message: Message | None = None
    ) -> int:
        used = ep.send_now(data, remote, flow=flow)
        if used is None:
            used = await ep.send(data, remote, flow=flow)
        self._record_sent(data, ep, remote, used, note, message)
        return used

    def _record_sent(
        self, data: bytes, ep: Endpoint, remote: Address, used: int, note: str, message: Message | None
    ) -> None:
        local = ep.local
        for f in ep.flows():
            if f.id == used:
                local = f.local
                break
        if isinstance(message, Request | Response) and bytes(message) == data:
            self.trace.record_message("sent", ep.transport, local, remote, data, message, endpoint=self.name, note=note)
        else:
            self.trace.record_message("sent", ep.transport, local, remote, data, endpoint=self.name, note=note)

    async def send(
        self,
        message: Message | bytes,
        to: Address,
        *,
        endpoint: Endpoint | None = None,
        flow: int | None = None,
        fault: Fault | None = None,
    ) -> int | None:
        """Send a message (or raw bytes) once, with an optional deliberate fault. Returns the flow id used."""
        ep = endpoint or self.endpoint()
        data = message if isinstance(message, bytes) else bytes(message)
        msg = None if isinstance(message, bytes) else message
        note = "raw" if isinstance(message, bytes) else ""
        if fault is not None:
            if fault.drop:
                first_line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
                self.trace.note(f"{fault.note}: not sent: {first_line}")
                return None
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.corrupt is not None:
                data, msg = fault.corrupt(data), None
            note = fault.note
        used = await self._send_bytes(data, ep, to, flow, note=note, message=msg)
        for _ in range((fault.copies if fault else 1) - 1):
            used = await self._send_bytes(data, ep, to, used, note=note, message=msg)
        return used

    async def request(
        self, req: Request, to: Address, *, endpoint: Endpoint | None = None, flow: int | None = None
    ) -> ClientTransactionHandle:
        """Send ``req`` in a client transaction: retransmitted on UDP (Timers A/E), timed out (B/F), and for an
        INVITE the ACK for a non-2xx final response sent inside the transaction (RFC 3261 §17.1.1.3)."""
        ep = endpoint or self.endpoint()
        reliable = ep.transport != "udp"
        tx = self._table.send_request(req, self.loop.time(), reliable=reliable)
        handle = ClientTransactionHandle(req, ep, to, flow, tx)
        self._handles[id(tx)] = handle
        first = True
        for ttx, event in self._table.events():
            if ttx is tx and isinstance(event, SendMessage) and first:
                handle.flow = await self._send_bytes(bytes(event.message), ep, to, flow, message=event.message)
                first = False
        self._arm()
        return handle

    async def ack_2xx(self, handle: ClientTransactionHandle, ack: Request) -> None:
        """Send the ACK for the INVITE's 2xx and re-send it for every retransmitted 2xx (RFC 3261 §13.2.2.4)."""
        handle.ack = ack
        await self.send(ack, handle.remote, endpoint=handle.endpoint, flow=handle.flow)

    # -- expecting -----------------------------------------------------------------------------------------------
    def _pending(self) -> list[Incoming]:
        return [inc for inc in self.inbox if inc.entry.seq not in self._consumed]

    async def expect(self, matcher: Matcher, timeout: float = 5.0, *, consume: bool = True) -> Incoming:
        """Wait for the first unconsumed message that matches; fail with what arrived instead."""
        deadline = _Deadline(self.loop, timeout, self._notify)
        try:
            while True:
                self.raise_errors()
                for inc in self._pending():
                    if matcher.matches(inc.message):
                        if consume:
                            self._consumed.add(inc.entry.seq)
                        return inc
                if deadline.passed():
                    raise ExpectationFailed(self._explain(matcher, timeout))
                await self._inbox_grows(deadline)
        finally:
            deadline.cancel()

    async def _inbox_grows(self, deadline: _Deadline) -> None:
        """Sleep until a message joins the inbox or ``deadline`` passes."""
        fut = deadline.sleep()
        self._waiters.append(fut)
        await fut

    async def collect(self, matcher: Matcher, duration: float, *, count: int | None = None) -> list[Incoming]:
        """Every matching message that arrives within ``duration`` seconds (consumed), e.g. to count retransmissions.
        With ``count``, return as soon as that many have arrived (at most ``count``), so a test that counts
        retransmissions can allow a generous bound without waiting it out."""
        deadline = _Deadline(self.loop, duration, self._notify)
        try:
            while True:
                self.raise_errors()
                out = [inc for inc in self._pending() if matcher.matches(inc.message)]
                if count is not None and len(out) >= count:
                    out = out[:count]
                    break
                if deadline.passed():
                    break
                await self._inbox_grows(deadline)
        finally:
            deadline.cancel()
        self._consumed.update(inc.entry.seq for inc in out)
        return out

    async def expect_nothing(self, matcher: Matcher, duration: float) -> None:
        """Fail if a matching message arrives within ``duration`` seconds (e.g. a response to an ACK)."""
        got = await self.collect(matcher, duration)
        if got:
            first = got[0]
            raise ExpectationFailed(
                f"expected no {matcher.describe()} for {duration:g} s, but #{first.entry.seq} arrived after "
                f"{first.time:.3f} s: {first.entry.summary}"
            )

    async def transaction_response(
        self, handle: ClientTransactionHandle, matcher: Matcher | None = None, timeout: float = 5.0
    ) -> Response:
        """The next response of a client transaction (that matches), in arrival order."""
        deadline = _Deadline(self.loop, timeout, handle._wake)
        try:
            while True:
                self.raise_errors()
                while handle._taken < len(handle.responses):
                    inc = handle.responses[handle._taken]
                    handle._taken += 1
                    if matcher is None or matcher.matches(inc.message):
                        assert isinstance(inc.message, Response)
                        return inc.message
                if handle.timed_out:
                    raise ExpectationFailed(
                        f"the {handle.request.method} transaction timed out (Timer {handle.timed_out}) without "
                        f"{matcher.describe() if matcher else 'a response'}; got: "
                        + (", ".join(str(i.entry.summary) for i in handle.responses) or "nothing")
                    )
                if deadline.passed():
                    raise ExpectationFailed(
                        f"no {matcher.describe() if matcher else 'response'} to {handle.request.summary()} within "
                        f"{timeout:g} s; the transaction got: "
                        + (", ".join(str(i.entry.summary) for i in handle.responses) or "nothing")
                    )
                fut = deadline.sleep()
                handle._waiter = fut
                await fut
        finally:
            deadline.cancel()

    async def final_response(self, handle: ClientTransactionHandle, timeout: float = 5.0) -> Response:
        return await self.transaction_response(handle, _FINAL, timeout)

    def _explain(self, matcher: Matcher, timeout: float) -> str:
        pending = self._pending()
        lines = [f"expected {matcher.describe()} within {timeout:g} s"]
        if not pending:
            lines.append("nothing else arrived")
        else:
            lines.append("received instead:")
            for inc in pending[-10:]:
                diff = "; ".join(matcher.difference(inc.message))
                lines.append(f"  #{inc.entry.seq} at {inc.time:.3f} s from {inc.remote[0]}:{inc.remote[1]}: "
                             f"{inc.entry.summary} -- {diff}")
        return "\n".join(lines)

    # -- building with defaults ----------------------------------------------------------------------------------
    def next_cseq(self) -> int:
        self._cseq += 1
        return self._cseq

    def local_uri(self, ep: Endpoint | None = None) -> str:
        ep = ep or self.endpoint()
        scheme = "sips" if ep.transport in ("tls", "wss") else "sip"
        return f"{scheme}:{self.user}@{ep.sent_by()}"

    def via(self, ep: Endpoint | None = None, branch: str | None = None, *, rport: bool = False) -> str:
        """A Via for a request from ``ep``; ``rport`` asks for RFC 3581 symmetric response routing (off by default:
        a device that does not implement RFC 3581 ignores it, and then RFC 3581's rules would not apply)."""
        ep = ep or self.endpoint()
        value = f"SIP/2.0/{ep.via_transport} {ep.sent_by()};branch={branch or new_branch(self.rng)}"
        return value + ";rport" if rport else value

    def build_request(
        self,
        method: str,
        uri: str,
        *,
        endpoint: Endpoint | None = None,
        to: str | None = None,
        from_: str | None = None,
        call_id: str | None = None,
        cseq: int | None = None,
        branch: str | None = None,
        contact: str | bool = True,
        route: Iterable[str] = (),
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        max_forwards: int = 70,
    ) -> Request:
        """A request from this peer with every default RFC 3261 §8.1.1 wants; each can be overridden."""
        ep = endpoint or self.endpoint()
        to_uri = uri.split(";", 1)[0] if uri.startswith(("sip:", "sips:")) else uri
        if contact is True:
            contact_value: str | None = f"<{ep.contact_uri(self.user)}>"
        elif contact is False:
            contact_value = None
        else:
            contact_value = contact
        return build_request(
            method,
            uri,
            from_=from_ or name_addr(self.local_uri(ep), self.name, new_tag(self.rng)),
            to=to or name_addr(to_uri),
            via=self.via(ep, branch),
            call_id=call_id or new_call_id(ep.local[0].replace(":", "-"), self.rng),
            cseq=cseq if cseq is not None else self.next_cseq(),
            max_forwards=max_forwards,
            contact=contact_value,
            route=route,
            headers=headers,
            body=body,
            content_type=content_type,
        )


class _Deadline:
    """The time limit of one wait: a single loop timer for the whole wait, made only when it has to sleep, that calls
    ``wake`` (which resolves the pending future) and marks the wait expired (the loop's clock may read a hair
    before the deadline when the timer fires)."""

    __slots__ = ("loop", "at", "wake", "expired", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, wake: Callable[[], None]) -> None:
        self.loop = loop
        self.at = loop.time() + timeout
        self.wake = wake
        self.expired = False
        self._timer: asyncio.TimerHandle | None = None

    def passed(self) -> bool:
        return self.expired or self.loop.time() >= self.at

    def sleep(self) -> asyncio.Future[None]:
        """A future for the waiter to await (the caller registers it where ``wake`` will find it)."""
        if self._timer is None:
            self._timer = self.loop.call_at(self.at, self._fire)
        return self.loop.create_future()

    def _fire(self) -> None:
        self.expired = True
        self.wake()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
