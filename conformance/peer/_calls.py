"""Whole calls driven by the async peer: INVITE → provisional(s) → 2xx → ACK → (hold) → BYE → 200.

Used by the interop tests and the calls-per-second benchmark. Each call is its own pair of client transactions
plus the ACK for the 2xx, sent as its own transaction-less request built in the dialog (RFC 3261 §13.2.2.4).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from dataclasses import dataclass, field

from ..sip import Response, build_sdp
from ..sip.state import Dialog
from ..trace import Address
from ..transport import Endpoint
from ._core import AsyncPeer, ExpectationFailed

__all__ = ["CallResult", "place_call", "run_calls"]


@dataclass
class CallResult:
    ok: bool
    statuses: list[int] = field(default_factory=list)
    error: str = ""
    duration: float = 0.0


@functools.lru_cache(maxsize=64)
def _offer(address: str) -> bytes:
    """The SDP offer of a call from ``address`` (the same bytes every time: built once per address)."""
    return build_sdp(address, 40000, ipv6=":" in address)


async def place_call(
    peer: AsyncPeer,
    uri: str,
    to: Address,
    *,
    endpoint: Endpoint | None = None,
    hold: float = 0.0,
    timeout: float = 10.0,
    with_sdp: bool = True,
    route: tuple[str, ...] = (),
) -> CallResult:
    """One complete call; never raises for what the device does (the result says what went wrong)."""
    started = time.monotonic()
    ep = endpoint or peer.endpoint()
    result = CallResult(ok=False)
    try:
        body = _offer(ep.local[0]) if with_sdp else b""
        invite = peer.build_request(
            "INVITE", uri, endpoint=ep, body=body, content_type="application/sdp" if body else None, route=route
        )
        tx = await peer.request(invite, to, endpoint=ep)
        final: Response = await peer.final_response(tx, timeout)
        result.statuses = [r.status for r in tx.provisionals] + [final.status]
        if not 200 <= final.status < 300:
            result.error = f"INVITE answered {final.status} {final.reason}"
            return result
        dialog = Dialog.from_response(invite, final, secure_transport=ep.transport in ("tls", "wss"))
        ack = dialog.create_ack(invite, via=peer.via(ep))
        await peer.ack_2xx(tx, ack)
        if hold:
            await asyncio.sleep(hold)
        bye = dialog.create_request("BYE", via=peer.via(ep))
        btx = await peer.request(bye, to, endpoint=ep, flow=tx.flow)
        bye_final = await peer.final_response(btx, timeout)
        result.statuses.append(bye_final.status)
        if bye_final.status != 200:
            result.error = f"BYE answered {bye_final.status} {bye_final.reason}"
            return result
        result.ok = True
        return result
    except (ExpectationFailed, TimeoutError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return result
    finally:
        result.duration = time.monotonic() - started


async def run_calls(
    peer: AsyncPeer,
    uri: str,
    to: Address,
    *,
    calls: int,
    concurrency: int = 50,
    timeout: float = 10.0,
    with_sdp: bool = True,
    freeze: bool = True,
) -> tuple[list[CallResult], float]:
    """``calls`` calls with at most ``concurrency`` in flight; returns the results (in start order) and the wall time.

    ``concurrency`` workers each place calls one after the other until ``calls`` have been started, so only the
    calls in flight exist at any moment (a task per call, made up front, would keep thousands of suspended
    coroutines alive for the collector to walk).

    ``freeze`` (on by default) keeps the cyclic garbage collector's full passes short while the calls run (see
    ``refreeze`` below): cyclic garbage made meanwhile is collected after the run, not during it.
    """
    results: list[CallResult | None] = [None] * calls
    next_call = 0

    async def worker() -> None:
        nonlocal next_call
        while next_call < calls:
            index = next_call
            next_call += 1
            results[index] = await place_call(peer, uri, to, timeout=timeout, with_sdp=with_sdp)

    loop = asyncio.get_running_loop()
    handle: asyncio.TimerHandle | None = None

    def refreeze() -> None:
        # Calls that ended still hold their transactions for up to 64*T1 (Timers M and K): a live heap of
        # hundreds of thousands of objects that the collector's full passes would walk again and again, for
        # nothing (they are freed by reference counting). Moving what is alive into the permanent generation
        # every 0.2 s keeps those passes short; the young generations are still collected. Unfrozen at the end.
        nonlocal handle
        gc.freeze()
        handle = loop.call_later(0.2, refreeze)

    started = time.monotonic()
    frozen = freeze and gc.isenabled()
    if frozen:
        refreeze()
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, calls)))))
    finally:
        if handle is not None:
            handle.cancel()
        if frozen:
            gc.unfreeze()
    wall = time.monotonic() - started
    return [r if r is not None else CallResult(False, error="not placed") for r in results], wall
