"""A small, fast SIP user agent server for fuzzing sipcert itself: the toy device of the tests and the benchmark.

It answers OPTIONS and REGISTER, plays the called party of INVITE dialogs (100, 180 -- reliable when the INVITE asks
for 100rel --, 200 with SDP, PRACK, ACK, re-INVITE, UPDATE, INFO, BYE, CANCEL), rejects what its parser finds fatal
with 400, and has switchable robustness faults named like the reference device's (``sipcert dut``)::

    python -m fuzz._responder --transport udp --port 0 --fault crash-long-user     # prints READY <port>

A crash fault kills the process (SIGABRT or SIGSEGV); a hang fault makes it stop answering for good. In-process
(:class:`Responder` started in a thread by a test) a crash closes the endpoint instead: the process must survive.
``ok-to-malformed`` answers 200 to anything, for the protocol oracle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field

from conformance.sip import STREAM_TRANSPORTS, parse
from conformance.transport import Endpoint, Received, TLSConfig, open_endpoint

__all__ = ["FAULTS", "Responder", "ResponderThread", "main"]

FAULTS = (
    "crash-long-user",
    "crash-many-via",
    "hang-bad-content-type",
    "crash-info-in-dialog",
    "hang-prack-bad-rack",
    "crash-reinvite-sdp",
    "ok-to-malformed",
)

_COPY = {"via": "via", "v": "via", "from": "from", "f": "from", "to": "to", "t": "to", "call-id": "call-id",
         "i": "call-id", "cseq": "cseq"}
_LINE = re.compile(rb"^([A-Za-z0-9.!%*_+`'~-]+)[ \t]*:[ \t]*(.*)$")
_USER = re.compile(rb"^\S+ sips?:([^@\s>]*)@", re.I)
_EMPTY_SUBTYPE = re.compile(rb"(?im)^(?:content-type|c)[ \t]*:[ \t]*[^/\r\n;]*/[ \t]*(?:;|\r?$)")
_SDP = (b"v=0\r\no=toy 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


@dataclass
class _Call:
    tag: str
    answered: bool = False
    confirmed: bool = False
    early: bool = False
    invite_head: list[bytes] = field(default_factory=list)
    rseq: int = 0
    waiting_prack: bool = False


class Responder:
    """The device: one endpoint on one transport, answering on the event loop it was started on."""

    def __init__(self, transport: str = "udp", faults: tuple[str, ...] = (), *, in_process: bool = True) -> None:
        bad = [f for f in faults if f not in FAULTS]
        if bad:
            raise ValueError(f"unknown fault {bad[0]!r}; valid choices: {', '.join(FAULTS)}")
        self.transport = transport
        self.faults = frozenset(faults)
        self.in_process = in_process
        self.endpoint: Endpoint | None = None
        self.hung = False
        self.crashed: str | None = None
        self.handled = 0
        self._calls: dict[bytes, _Call] = {}
        self._tags = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        tls = TLSConfig.for_tests() if self.transport in ("tls", "wss") else None
        self.endpoint = await open_endpoint(self.transport, host, port, on_message=self._on_message,
                                            on_error=lambda exc: None, tls=tls)
        return self.endpoint.local[1]

    async def close(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.close()

    # -- faults --------------------------------------------------------------------------------------------------
    def _crash(self, why: str, sig: int) -> None:
        self.crashed = why
        if not self.in_process:
            sys.stderr.write(f"toy responder: fatal: {why} ({self._fault_name(why)})\n")
            sys.stderr.flush()
            os.kill(os.getpid(), sig)
        self.hung = True  # in-process: stop answering, like a dead device

    def _fault_name(self, why: str) -> str:
        return ", ".join(sorted(self.faults))

    def _hang(self, why: str) -> None:
        if not self.in_process:
            sys.stderr.write(f"toy responder: stuck: {why}\n")
            sys.stderr.flush()
        self.hung = True

    # -- receiving -----------------------------------------------------------------------------------------------
    def _on_message(self, received: Received) -> None:
        if self.hung:
            return
        self.handled += 1
        data = received.data
        if data.startswith(b"SIP/2.0"):
            return
        head = data.partition(b"\r\n\r\n")[0]
        lines = head.split(b"\r\n")
        faults = self.faults
        if faults:
            if "crash-long-user" in faults:
                m = _USER.match(lines[0])
                if m and len(m.group(1)) > 256:
                    return self._crash(f"Request-URI user of {len(m.group(1))} octets", signal.SIGABRT)
            if "crash-many-via" in faults:
                vias = sum(len(ln.split(b":", 1)[1].split(b",")) for ln in lines[1:]
                           if ln.split(b":", 1)[0].strip().lower() in (b"via", b"v") and b":" in ln)
                if vias > 40:
                    return self._crash(f"{vias} Via values", signal.SIGSEGV)
            if "hang-bad-content-type" in faults and _EMPTY_SUBTYPE.search(head):
                return self._hang("Content-Type with an empty subtype")
        method = lines[0].split(b" ", 1)[0]
        result = parse(data, stream=self.transport in STREAM_TRANSPORTS)
        msg = result.message
        if "ok-to-malformed" in faults:
            if method != b"ACK":
                self._reply(received, lines, 200, "OK")
            return
        if msg is None or result.fatal:
            if method != b"ACK":
                self._reply(received, lines, 400, "Bad Request")
            return
        self._dispatch(received, lines, msg)

    def _dispatch(self, received: Received, lines: list[bytes], msg: object) -> None:
        from conformance.sip import Request

        assert isinstance(msg, Request)
        method = msg.method
        call_id = (msg.call_id or "").encode()
        to_tag = msg.to.tag if msg.to is not None else None
        if method in ("OPTIONS", "REGISTER"):
            extra = [b"Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, INFO, UPDATE, REGISTER",
                     b"Supported: 100rel"]
            if method == "REGISTER":
                contacts = [c.raw for c in msg.contact]
                if contacts:
                    extra.append(("Contact: " + ", ".join(f"{c};expires=60" for c in contacts)).encode(
                        "utf-8", "surrogateescape"))
            self._reply(received, lines, 200, "OK", extra, tag="toyreg")
            return
        call = self._calls.get(call_id)
        if method == "INVITE" and to_tag is None:
            if call is not None:
                return  # a retransmission
            self._tags += 1
            call = self._calls[call_id] = _Call(tag=f"toy{self._tags}")
            if len(self._calls) > 512:
                self._calls.pop(next(iter(self._calls)))
            call.invite_head = lines
            self._reply(received, lines, 100, "Trying")
            reliable = "100rel" in msg.require or "100rel" in msg.supported
            if reliable:
                call.rseq = 1
                call.early = call.waiting_prack = True
                self._reply(received, lines, 180, "Ringing", [b"Require: 100rel", b"RSeq: 1", self._contact()],
                            tag=call.tag)
            else:
                self._reply(received, lines, 180, "Ringing", [self._contact()], tag=call.tag)
                self._answer(received, call)
            return
        if method == "CANCEL":
            if call is None:
                self._reply(received, lines, 481, "Call/Transaction Does Not Exist")
                return
            self._reply(received, lines, 200, "OK")
            if not call.answered:
                call.answered = True
                self._reply(received, call.invite_head, 487, "Request Terminated", tag=call.tag)
            return
        if method == "ACK":
            if call is not None:
                call.confirmed = True
            return
        if call is None or to_tag != call.tag:
            self._reply(received, lines, 481, "Call/Transaction Does Not Exist")
            return
        body = msg.body
        if method == "PRACK":
            rack = msg.rack
            if "hang-prack-bad-rack" in self.faults and call.early and (rack is None or rack.method != "INVITE"):
                return self._hang("PRACK whose RAck method is not INVITE")
            self._reply(received, lines, 200, "OK")
            if call.waiting_prack:
                call.waiting_prack = call.early = False
                self._answer(received, call)
            return
        if method == "INFO" and "crash-info-in-dialog" in self.faults and call.confirmed and b"\x00" in body:
            return self._crash("INFO with a NUL octet in its body", signal.SIGSEGV)
        if method == "INVITE":
            if "crash-reinvite-sdp" in self.faults and call.confirmed and re.search(rb"(?m)^m=[a-z]+ 0[ /]", body):
                return self._crash("re-INVITE with an m= line on port 0", signal.SIGABRT)
            self._reply(received, lines, 200, "OK", [self._contact(), b"Content-Type: application/sdp"],
                        body=_SDP)
            return
        if method == "BYE":
            self._calls.pop(call_id, None)
        self._reply(received, lines, 200, "OK")

    def _answer(self, received: Received, call: _Call) -> None:
        call.answered = True
        self._reply(received, call.invite_head, 200, "OK", [self._contact(), b"Content-Type: application/sdp"],
                    tag=call.tag, body=_SDP)

    def _contact(self) -> bytes:
        assert self.endpoint is not None
        return f"Contact: <{self.endpoint.contact_uri('toy')}>".encode()

    def _reply(self, received: Received, lines: list[bytes], status: int, reason: str,
               extra: list[bytes] | None = None, *, tag: str | None = None, body: bytes = b"") -> None:
        out = [f"SIP/2.0 {status} {reason}".encode()]
        unfolded: list[bytes] = []
        for ln in lines[1:]:
            if ln[:1] in (b" ", b"\t") and unfolded:
                unfolded[-1] += b" " + ln.strip()
            else:
                unfolded.append(ln)
        for ln in unfolded:
            m = _LINE.match(ln)
            if m is None:
                continue
            key = _COPY.get(m.group(1).lower().decode("latin-1"))
            if key is None:
                continue
            if key == "to" and status > 100 and b";tag=" not in ln:
                ln += f";tag={tag or 'toy0'}".encode()
            elif key == "to" and tag and b";tag=" not in ln:
                ln += f";tag={tag}".encode()
            out.append(ln)
        out += extra or []
        out.append(b"Content-Length: %d" % len(body))
        data = b"\r\n".join(out) + b"\r\n\r\n" + body
        ep = self.endpoint
        if ep is None:
            return
        task = asyncio.get_running_loop().create_task(ep.send(data, received.remote, flow=received.flow))
        task.add_done_callback(_ignore)


def _ignore(task: asyncio.Task[int]) -> None:
    if not task.cancelled():
        task.exception()


class ResponderThread:
    """A :class:`Responder` on its own event loop in a daemon thread, for tests: ``with ResponderThread() as r:``.

    :meth:`restart` brings a crashed or hung device back on the same port (a fresh device, no calls).
    """

    def __init__(self, transport: str = "udp", faults: tuple[str, ...] = ()) -> None:
        self.transport = transport
        self.faults = faults
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="toy-responder", daemon=True)
        self.responder = Responder(transport, faults)
        self.port = 0
        self.restarts = 0

    def start(self) -> ResponderThread:
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.responder.start(), self.loop).result(10)
        return self

    def restart(self) -> None:
        old = self.responder
        asyncio.run_coroutine_threadsafe(old.close(), self.loop).result(10)
        self.responder = Responder(self.transport, self.faults)
        asyncio.run_coroutine_threadsafe(self.responder.start(port=self.port), self.loop).result(10)
        self.restarts += 1

    @property
    def uri(self) -> str:
        scheme = "sips" if self.transport in ("tls", "wss") else "sip"
        return f"{scheme}:127.0.0.1:{self.port};transport={self.transport}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.responder.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self) -> ResponderThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz._responder", description=__doc__.split("\n")[0])
    parser.add_argument("--transport", default="udp", choices=("udp", "tcp", "tls", "ws", "wss"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault", action="append", default=[], choices=FAULTS)
    args = parser.parse_args(argv)

    async def run() -> None:
        responder = Responder(args.transport, tuple(args.fault), in_process=False)
        port = await responder.start(args.host, args.port)
        print(f"READY {port}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
