"""The synchronous facade test authors use: the async core runs on an event loop in a background thread.

Each call is bounded: it waits for the core at most for its own timeout plus a margin, so a test never hangs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from ..sip import Message, Request, Response
from ..sip._timers import TimerConfig
from ..trace import Address, Trace
from ..transport import Endpoint, TLSConfig
from ._core import AsyncPeer, ClientTransactionHandle, Incoming
from ._faults import Fault
from ._match import Matcher

__all__ = ["Peer"]

T = TypeVar("T")
_MARGIN = 5.0


class Peer:
    """A scripted SIP peer. Use as a context manager (or call :meth:`close`), which re-raises background errors.

    >>> with Peer() as peer:                                            # doctest: +SKIP
    ...     ep = peer.open("udp")
    ...     inv = peer.build_request("INVITE", "sip:bob@127.0.0.1:5070")
    ...     tx = peer.request(inv, ("127.0.0.1", 5070))
    ...     peer.transaction_response(tx, response(180))
    """

    def __init__(
        self,
        *,
        name: str = "sipcert",
        user: str = "sipcert",
        timers: TimerConfig | None = None,
        trace: Trace | None = None,
        tls: TLSConfig | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"sipcert-peer-{name}", daemon=True)
        self._thread.start()
        self.core = AsyncPeer(name=name, user=user, timers=timers, trace=trace, tls=tls, host=host)
        self._closed = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("the peer is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(None if timeout is None else timeout + _MARGIN)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"the peer's event loop did not answer within {timeout} s") from None

    # -- life cycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close endpoints, stop the loop and raise :class:`PeerError` if the background failed."""
        if self._closed:
            return
        try:
            self._call(self.core.close(), 10.0)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10.0)
            self._loop.close()

    def raise_errors(self) -> None:
        self.core.raise_errors()

    @property
    def trace(self) -> Trace:
        return self.core.trace

    # -- endpoints and sending -----------------------------------------------------------------------------------
    def open(self, transport: str = "udp", *, host: str | None = None, port: int = 0) -> Endpoint:
        return self._call(self.core.open(transport, host=host, port=port), 10.0)

    def endpoint(self, transport: str | None = None) -> Endpoint:
        return self.core.endpoint(transport)

    def send(
        self,
        message: Message | bytes,
        to: Address,
        *,
        endpoint: Endpoint | None = None,
        flow: int | None = None,
        fault: Fault | None = None,
    ) -> int | None:
        delay = fault.delay if fault else 0.0
        return self._call(self.core.send(message, to, endpoint=endpoint, flow=flow, fault=fault), 10.0 + delay)

    def request(
        self, req: Request, to: Address, *, endpoint: Endpoint | None = None, flow: int | None = None
    ) -> ClientTransactionHandle:
        return self._call(self.core.request(req, to, endpoint=endpoint, flow=flow), 10.0)

    def ack_2xx(self, handle: ClientTransactionHandle, ack: Request) -> None:
        """Send the ACK for a 2xx and re-send it for every retransmitted 2xx (RFC 3261 §13.2.2.4)."""
        self._call(self.core.ack_2xx(handle, ack), 10.0)

    def respond(self, to: Incoming, response: Response, *, fault: Fault | None = None) -> int | None:
        """Send a response back where a request came from (same endpoint and, on streams, the same connection)."""
        return self.send(response, to.remote, endpoint=to.endpoint, flow=to.flow, fault=fault)

    # -- expecting -----------------------------------------------------------------------------------------------
    def expect(self, matcher: Matcher, timeout: float = 5.0, *, consume: bool = True) -> Incoming:
        return self._call(self.core.expect(matcher, timeout, consume=consume), timeout)

    def collect(self, matcher: Matcher, duration: float, *, count: int | None = None) -> list[Incoming]:
        return self._call(self.core.collect(matcher, duration, count=count), duration)

    def expect_nothing(self, matcher: Matcher, duration: float) -> None:
        self._call(self.core.expect_nothing(matcher, duration), duration)

    def transaction_response(
        self, handle: ClientTransactionHandle, matcher: Matcher | None = None, timeout: float = 5.0
    ) -> Response:
        return self._call(self.core.transaction_response(handle, matcher, timeout), timeout)

    def final_response(self, handle: ClientTransactionHandle, timeout: float = 5.0) -> Response:
        return self._call(self.core.final_response(handle, timeout), timeout)

    # -- building ------------------------------------------------------------------------------------------------
    def build_request(self, method: str, uri: str, **kwargs: Any) -> Request:
        return self.core.build_request(method, uri, **kwargs)

    def next_cseq(self) -> int:
        return self.core.next_cseq()

    def via(self, endpoint: Endpoint | None = None, branch: str | None = None, *, rport: bool = False) -> str:
        return self.core.via(endpoint, branch, rport=rport)

    def local_uri(self, endpoint: Endpoint | None = None) -> str:
        return self.core.local_uri(endpoint)

    def sleep(self, seconds: float) -> None:
        """Let time pass on the peer's loop (timers and retransmissions keep running)."""
        self._call(asyncio.sleep(seconds), seconds)

    @property
    def inbox(self) -> Iterable[Incoming]:
        return list(self.core.inbox)
