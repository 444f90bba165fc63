"""Trace entries keep bytes and hold the parsed message weakly; what they show does not depend on who still holds it.

Also the peer's hot-path pieces that came with it: datagrams sent without a task, ``run_calls`` freezing the
collector's live heap only while it runs. No sockets except where a test says so (loopback UDP).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from conformance.peer import AsyncPeer, run_calls
from conformance.sip import Defect, build_request, build_response, name_addr, parse, via_value
from conformance.trace import MessageEntry, Trace

INVITE = build_request(
    "INVITE",
    "sip:bob@127.0.0.1:5080",
    from_=name_addr("sip:alice@127.0.0.1", tag="a1"),
    to=name_addr("sip:bob@127.0.0.1"),
    via=via_value("UDP", "127.0.0.1", 5070, "z9hG4bK-lazy-1", rport=False),
    call_id="lazy-1",
    cseq=7,
)
A = ("127.0.0.1", 5070)
B = ("127.0.0.1", 5080)


def _same(one: MessageEntry, two: MessageEntry) -> None:
    assert one.message is not None and two.message is not None
    assert bytes(one.message) == bytes(two.message) == one.data
    assert one.message.start_line == two.message.start_line
    assert one.defects == two.defects


def test_an_entry_shows_the_same_message_after_the_peer_let_go_of_it() -> None:
    trace = Trace()
    data = bytes(INVITE)
    msg = parse(data).message
    kept = trace.record_message("sent", "udp", A, B, data, msg)
    assert kept.message is msg  # while somebody holds it, it is the very object
    dropped_msg = parse(data).message
    dropped = trace.record_message("sent", "udp", A, B, data, dropped_msg)
    del dropped_msg
    gc.collect()
    # re-parsed from the bytes: equal, and from now on the entry keeps it
    again = dropped.message
    assert again is not None and again is dropped.message
    _same(kept, dropped)
    assert dropped.summary == "INVITE sip:bob@127.0.0.1:5080 SIP/2.0"


def test_defects_are_complete_and_framing_defects_come_first() -> None:
    trace = Trace()
    bad = bytes(INVITE).replace(b"CSeq: 7 INVITE", b"CSeq: 7 BYE")
    framing = Defect("oversize", None, 0, "framing said so")
    msg = parse(bad).message
    entry = trace.record_message("received", "tcp", B, A, bad, msg, (framing,))
    del msg
    gc.collect()
    assert entry.defects[0] is framing
    assert {d.code for d in entry.defects[1:]} == {d.code for d in parse(bad).defects}
    assert "cseq-method-mismatch" in {d.code for d in entry.defects}


def test_unparseable_and_unframed_bytes() -> None:
    trace = Trace()
    garbage = trace.record_message("received", "udp", B, A, b"\x00\x01 not sip")
    assert garbage.message is None and garbage.defects and garbage.summary.startswith("<unparseable")
    framing = Defect("oversize", None, 0, "header section too long")
    unframed = trace.record_message("received", "tcp", B, A, b"INVITE sip:x SIP/2.0\r\n", None, (framing,), framed=False)
    # never parsed: the bytes are what the framer discarded, the defect says why
    assert unframed.message is None and unframed.defects == (framing,)


def test_entries_made_directly_keep_what_they_are_given() -> None:
    entry = MessageEntry(0, 0.0, "sent", "udp", A, B, bytes(INVITE), INVITE, ())
    assert entry.message is INVITE and entry.defects == ()
    lazy = MessageEntry(1, 0.0, "sent", "udp", A, B, bytes(INVITE))
    assert lazy.message is not None and lazy.message.call_id == "lazy-1" and lazy.defects == ()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_run_calls_unfreezes_the_collector_and_a_udp_send_needs_no_task(loop: str) -> None:
    """Two peers on loopback UDP: one answers INVITE and BYE with 200, the other places calls through run_calls,
    on asyncio's loop and on uvloop's (the calls benchmark runs both)."""

    async def main() -> None:
        caller, callee = AsyncPeer(name="caller"), AsyncPeer(name="callee", user="bob")
        await caller.open("udp")
        ep = await callee.open("udp")

        async def answer() -> None:
            from conformance.peer import request

            while True:
                inc = await callee.expect(request(), 10)
                msg = inc.message
                assert msg is not None
                if msg.method != "ACK":
                    await callee.send(build_response(msg, 200), inc.remote)

        server = asyncio.create_task(answer())
        assert ep.send_now(b"", ("localhost", 9)) is None  # a host name is looked up by send(), not here
        before = gc.get_freeze_count()
        results, _ = await run_calls(caller, f"sip:bob@{ep.sent_by()}", ep.local, calls=20, concurrency=5, with_sdp=False)
        server.cancel()
        assert gc.get_freeze_count() == before == 0
        assert [r.ok for r in results] == [True] * 20, [r.error for r in results if not r.ok]
        assert all(r.statuses == [200, 200] for r in results)
        # every message of every call is in the trace: INVITE, 200, ACK, BYE, 200
        assert len(caller.trace.messages()) == 20 * 5
        await caller.close()
        await callee.close()

    _run_on(loop, main)


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_stream_endpoints_keep_the_async_send(transport: str) -> None:
    async def main() -> None:
        peer = AsyncPeer()
        ep = await peer.open(transport)
        assert ep.send_now(b"OPTIONS", ep.local) is None
        await peer.close()

    asyncio.run(main())


class _DueAt:
    """A stand-in transaction table whose earliest deadline the test sets."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def next_timer(self) -> float:
        return self.deadline

    def handle_timer(self, now: float) -> None:
        self.deadline = now + 3600

    def events(self) -> list[object]:
        return []


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_peer_rearms_after_arming_a_deadline_already_past(loop: str) -> None:
    """A busy loop can hand the peer a transaction deadline that has already passed. uvloop's ``call_at`` then
    returns a plain Handle without ``when()``; the next re-arm read ``when()`` and raised AttributeError (found
    by the calls benchmark at 12,000 calls on uvloop). The peer keeps the due time itself."""

    async def main() -> None:
        peer = AsyncPeer(name="late")
        real = peer._table
        loop_ = asyncio.get_running_loop()
        peer._table = _DueAt(loop_.time() - 1.0)  # type: ignore[assignment]
        try:
            peer._arm()  # due already: a Handle on uvloop, a TimerHandle on asyncio
            peer._table.deadline = loop_.time() + 60  # type: ignore[attr-defined]
            peer._arm()  # keeps the earlier timer
            peer._table.deadline = loop_.time() - 0.5  # type: ignore[attr-defined]
            peer._arm()  # an earlier deadline: the armed one is replaced
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert peer._table.deadline > loop_.time() + 1000  # type: ignore[attr-defined]  # it fired
            peer.raise_errors()
        finally:
            peer._table = real
            await peer.close()

    _run_on(loop, main)


def _run_on(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main()`` on asyncio's default loop or on uvloop's (skipped when uvloop is not installed)."""
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (it is in the dev extra)")
        uvloop.run(main())
    else:
        asyncio.run(main())
