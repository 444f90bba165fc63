"""The reference device's core, sans-I/O: bytes and ``now`` in, :class:`Transmit` (and crash/hang orders) out.

One :class:`DeviceCore` holds the transaction table (RFC 3261 §17, automatic 100 Trying), the role handlers (the UA
core of ``_ua.py``, the registrar of ``_registrar.py``, the proxy of ``_proxy.py``), the UA pieces they run
(AcceptedInvite, ReliableProvisionals, InviteClient) and a timer wheel for its own deadlines. The asyncio driver
(``_driver.py``) feeds :meth:`DeviceCore.receive` and :meth:`DeviceCore.handle_timer`, re-arms one timer at
:meth:`DeviceCore.next_timer` and puts :meth:`DeviceCore.outputs` on the wire.

It never raises on what arrives: a request whose defects are fatal gets its RFC answer (400 with a Warning naming the
defect, 505 for another SIP version), a response with fatal defects is dropped, and both are logged.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from ..sip import BuildError, Request, Response, SipURI, build_response, parse, raw_message
from ..sip._build import BRANCH_COOKIE, REASON_PHRASES
from ..sip._timers import TimerWheel
from ..sip._transaction import (
    ClientInviteTransaction,
    ClientTransaction,
    MessageAbsorbed,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    ServerInviteTransaction,
    ServerTransaction,
    StrayAck,
    StrayResponse,
    TransactionError,
    TransactionEvent,
    TransactionTable,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    UnmatchableMessage,
)
from ..sip.state import DialogError, UaError
from ..transport import Address
from ._config import DeviceConfig
from ._inspect import merged_key
from ._msg import amend_top_via, default_port, quote_text, rebuild, replace_top_via, set_tag, strip_tag, with_lines

__all__ = ["DeviceCore", "Source", "Transmit", "Crash", "Hang", "Output", "ClientOwner", "Piece"]

log = logging.getLogger("sipcert.dut")


def _printable(text: str) -> str:
    """Text without lone surrogates (octets a peer sent that are not UTF-8 come back as such from the parser)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _PrintableRecords(logging.Filter):
    """Log records of the device carry message text as received: make them safe to encode anywhere (a log file, a
    terminal, xdist's channel to the controller)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _printable(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _printable(record.exc_text)
        return True


log.addFilter(_PrintableRecords())

#: Methods RFC 3261 and its extensions define: a UAS recognises them (405), anything else is unknown (501).
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "INFO", "UPDATE", "MESSAGE", "SUBSCRIBE",
     "NOTIFY", "REFER", "PUBLISH"}
)
#: What copying an odd request into a strictly built message raises (the strict builders refuse any defect; a header
#: with non-UTF-8 octets fails to encode): the request is answered on the raw path or with 400, never a device bug.
INPUT_ERRORS: tuple[type[Exception], ...] = (BuildError, DialogError, UaError, UnicodeEncodeError)
_RE_EMPTY_SUBTYPE = re.compile(r"^[ \t]*[^/; \t]+[ \t]*/[ \t]*(?:;|$)")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from (and where answers to it go): transport, remote address, connection."""

    transport: str
    remote: Address
    flow: int | None = None


@dataclass(frozen=True, slots=True)
class Transmit:
    """Put these bytes on the wire to ``remote`` (on ``flow`` when it is still open)."""

    data: bytes
    remote: Address
    flow: int | None = None
    #: A client transaction's id: if sending fails the driver reports it with :meth:`DeviceCore.send_failed`.
    token: int | None = None


@dataclass(frozen=True, slots=True)
class Crash:
    """A robustness fault fired: the process must die (SIGABRT)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Hang:
    """A robustness fault fired: the device must stop answering anything."""

    reason: str


Output: TypeAlias = Transmit | Crash | Hang


#: Who gets the events of a client transaction the device started: ``owner(tx, event, now)``.
ClientOwner: TypeAlias = Callable[[ClientTransaction, TransactionEvent, float], None]


class Piece(Protocol):
    """A UA piece of ``conformance.sip.state``: deadlines and events."""

    def next_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def events(self) -> Sequence[object]: ...


PieceHandler = Callable[[object, float], None]


class DeviceCore:
    """The device: one transport, one role, sans-I/O. See the module docstring."""

    def __init__(
        self,
        config: DeviceConfig,
        *,
        local: Address,
        now: float = 0.0,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.transport = config.transport
        self.local = local
        self.rng = rng
        self.wall_clock = wall_clock
        self.timers = config.timers
        self.now = now
        self.table = TransactionTable(self.timers, reliable=config.reliable, auto_trying=True)
        self.dead: str | None = None
        #: Exceptions the device's own code raised (a device bug, not the peer's): re-raised by the driver's owner.
        self.errors: list[BaseException] = []
        self.current_source: Source | None = None
        self._out: deque[Output] = deque()
        self._dest: dict[int, Source] = {}
        self._owners: dict[int, ClientOwner] = {}
        self._server_of: dict[int, ServerTransaction] = {}
        self._client_of: dict[int, ClientTransaction] = {}
        self._wheel = TimerWheel()
        self._actions: dict[str, Callable[[float], None]] = {}
        self._pieces: dict[int, tuple[Piece, PieceHandler]] = {}
        self._tag_counter = 0
        self._fixed_tag: str | None = None
        self._seq = 0
        #: Live server transactions by From tag, Call-ID and CSeq, for merged-request detection (§8.2.2.2).
        self.live: dict[tuple[object, ...], ServerTransaction] = {}
        from ._proxy import Proxy
        from ._registrar import Registrar
        from ._ua import UserAgent

        self.ua: UserAgent | None = UserAgent(self) if config.role in ("uas", "uac") else None
        self.registrar: Registrar | None = Registrar(self) if config.role in ("registrar", "proxy") else None
        self.proxy: Proxy | None = Proxy(self) if config.role == "proxy" else None

    # -- identity ------------------------------------------------------------------------------------------------
    @property
    def secure(self) -> bool:
        return self.transport in ("tls", "wss")

    @property
    def hostport(self) -> str:
        host, port = self.local
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    def contact_uri(self, user: str | None = None) -> str:
        scheme = "sips" if self.secure else "sip"
        userinfo = f"{user}@" if user else ""
        param = {"udp": ";transport=udp", "tcp": ";transport=tcp", "ws": ";transport=ws", "wss": ";transport=ws"}
        return f"{scheme}:{userinfo}{self.hostport}{param.get(self.transport, '')}"

    def contact(self) -> str:
        return f"<{self.contact_uri(self.config.user or 'dut')}>"

    def via(self, branch: str | None = None) -> str:
        """A Via for a request this device sends (a new branch unless given)."""
        return f"SIP/2.0/{self.via_transport} {self.hostport};branch={branch or self.new_branch()};rport"

    def new_branch(self) -> str:
        return f"{BRANCH_COOKIE}{self._hex(64)}"

    def new_tag(self) -> str:
        """A tag for a response or request; the ``weak-tags`` and ``fixed-tag`` faults live here."""
        if self.config.fault("weak-tags"):
            self._tag_counter += 1
            return str(self._tag_counter)
        if self.config.fault("fixed-tag"):
            if self._fixed_tag is None:
                self._fixed_tag = self._hex(64)
            return self._fixed_tag
        return self._hex(64)

    def _hex(self, bits: int) -> str:
        if self.rng is None:
            return secrets.token_hex(bits // 8)
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def randint(self, low: int, high: int) -> int:
        """A random integer in [low, high] (from the seeded rng when there is one)."""
        if self.rng is None:
            return low + secrets.randbelow(high - low + 1)
        return self.rng.randint(low, high)

    def date(self) -> str:
        return email.utils.formatdate(self.wall_clock(), usegmt=True)

    def is_local(self, host: str, port: int | None) -> bool:
        """Whether a URI's host and port name this device (its address, ``localhost``, or its ``--domain``)."""
        host = host.strip("[]").lower()
        domain = (self.config.domain or "").lower()
        if domain and host == domain and port in (None, self.local[1]):
            return True
        if host in (self.local[0].lower(), "localhost"):
            return (port if port is not None else default_port(self.transport)) == self.local[1]
        return False

    # -- inputs --------------------------------------------------------------------------------------------------
    def receive(self, data: bytes, source: Source, now: float) -> None:
        """One message from the network. Never raises: a failure of the device's own code is logged and kept."""
        if self.dead:
            return
        self.now = now
        self.current_source = source
        try:
            self._receive(data, source, now)
            self._settle(now)
        except Exception as exc:  # a bug of the device: logged, kept for the owner, the device carries on
            log.exception("internal error on a message from %s:%s", *source.remote)
            self.errors.append(exc)
        finally:
            self.current_source = None

    def _receive(self, data: bytes, source: Source, now: float) -> None:
        result = parse(data, stream=source.transport in ("tcp", "tls"))
        msg = result.message
        if msg is None:
            log.warning("dropped %d octets from %s:%s: no SIP start line (%s)", len(data), *source.remote,
                        "; ".join(str(d) for d in result.defects))
            return
        if isinstance(msg, Response):
            broken = msg.fatal_defects
            if broken:
                log.warning("dropped response %s: %s", msg.start_line, "; ".join(str(d) for d in broken))
                return
            log.info("<- %s", msg.summary())
            self.table.receive(msg, now)
            return
        log.info("<- %s from %s:%s", msg.summary(), *source.remote)
        if self._robustness(msg):
            return
        fatal = [d for d in msg.fatal_defects if not (d.code == "bad-version" and self.config.fault("no-505"))]
        if fatal and not msg.has_header("Via"):
            # §8.2.6.2 / §18.2.2: no Via, no valid response to send (a malformed Via is still copied back verbatim).
            log.warning("dropped %s: no usable Via to answer it on", msg.start_line)
            return
        if fatal:
            # Answered statelessly: a request this broken does not make a transaction (nor an automatic 100 Trying,
            # which could not even be built from it); a retransmission gets the same answer again.
            if msg.method == "ACK":
                log.warning("dropped malformed ACK: %s", "; ".join(str(d) for d in fatal))
            elif self.config.fault("malformed-silent"):
                log.warning("fault malformed-silent: dropped %s unanswered: %s", msg.start_line,
                            "; ".join(str(d) for d in fatal))
            else:
                self.transmit(self.malformed_response(msg), source)
            return
        if msg.via:
            msg = amend_top_via(
                msg, source.remote, received=not self.config.fault("no-received"), rport=not self.config.fault("no-rport")
            )
        # The transaction sends 100 Trying itself, built strictly; a request whose To, From or Via the strict builder
        # will not copy (a non-fatal defect) gets its 100 from the core instead, made on the raw path if need be.
        auto = msg.method != "INVITE" or _strictly_answerable(msg)
        self.table.auto_trying = auto
        try:
            tx = self.table.receive(msg, now, reliable=source.transport != "udp")
        finally:
            self.table.auto_trying = True
        if tx is not None and id(tx) not in self._dest:
            self._dest[id(tx)] = source
            self._server_of[id(tx)] = tx  # type: ignore[assignment]

    def _robustness(self, msg: Request) -> bool:
        """The stateless robustness faults: crash or hang on one input class."""
        cfg = self.config
        if cfg.fault("crash-long-user"):
            uri = msg.uri
            user = getattr(uri, "user", None)
            if user is not None and len(user.encode("utf-8", "surrogateescape")) > 256:
                return self.crash(f"crash-long-user: Request-URI user of {len(user)} octets")
        if cfg.fault("crash-many-via") and len(msg.via) > 40:
            return self.crash(f"crash-many-via: {len(msg.via)} Via values")
        if cfg.fault("hang-bad-content-type"):
            ct = msg.header("Content-Type")
            if ct is not None and _RE_EMPTY_SUBTYPE.match(ct):
                return self.hang(f"hang-bad-content-type: Content-Type {ct!r}")
        if cfg.fault("hang-long-header"):
            for h in msg.headers:
                if len(h.value) > 2048:
                    return self.hang(f"hang-long-header: {h.name} of {len(h.value)} octets")
        return False

    def crash(self, reason: str) -> bool:
        self.dead = reason
        log.critical("fault switch fired, crashing: %s", reason)
        self._out.append(Crash(reason))
        return True

    def hang(self, reason: str) -> bool:
        self.dead = reason
        log.critical("fault switch fired, hanging: %s", reason)
        self._out.append(Hang(reason))
        return True

    def send_failed(self, token: int, now: float) -> None:
        """The driver could not send a message of client transaction ``token`` (§17.1.4)."""
        if self.dead:
            return
        self.now = now
        try:
            tx = self._client_of.get(token)
            if tx is not None and not tx.terminated:
                tx.transport_error(now)
            self._settle(now)
        except Exception as exc:
            log.exception("internal error after a send failure")
            self.errors.append(exc)

    def unreachable(self, remote: Address, now: float) -> None:
        """An ICMP error came back for a datagram to ``remote``: client transactions to it fail (§17.1.4)."""
        for key, tx in list(self._client_of.items()):
            dest = self._dest.get(key)
            if dest is not None and dest.remote == remote and not tx.terminated:
                self.send_failed(key, now)

    def command(self, line: str, now: float) -> str:
        """A control line (``call <uri>``, ``bye``, ``cancel``, ``status``); returns one line of answer."""
        if self.dead:
            return f"ERROR the device is dead: {self.dead}"
        self.now = now
        try:
            words = line.strip().split(None, 1)
            if not words:
                return "ERROR empty command"
            verb, arg = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
            if verb == "status":
                answer = self.status()
            elif self.ua is None:
                answer = f"ERROR a {self.config.role} places no calls"
            else:
                answer = self.ua.command(verb, arg, now)
            self._settle(now)
            return answer
        except Exception as exc:
            log.exception("internal error on command %r", line)
            self.errors.append(exc)
            return f"ERROR {type(exc).__name__}: {exc}"

    def status(self) -> str:
        parts = [f"role={self.config.role}", f"transactions={len(self.table)}"]
        if self.ua is not None:
            parts.append(self.ua.status())
        if self.registrar is not None:
            parts.append(f"bindings={self.registrar.count(self.now)}")
        return "OK " + " ".join(parts)

    # -- time ----------------------------------------------------------------------------------------------------
    def next_timer(self) -> float | None:
        if self.dead:
            return None
        deadlines = [d for d in (self.table.next_timer(), self._wheel.next_timer()) if d is not None]
        deadlines += [d for p, _ in self._pieces.values() if (d := p.next_timer()) is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        if self.dead:
            return
        self.now = now
        try:
            self.table.handle_timer(now)
            while (item := self._wheel.pop_next(now)) is not None:
                action = self._actions.pop(item[0], None)
                if action is not None:
                    action(now)
                if self.dead:
                    return
            for piece, _ in list(self._pieces.values()):
                piece.handle_timer(now)
            self._settle(now)
        except Exception as exc:
            log.exception("internal error in a timer")
            self.errors.append(exc)

    def after(self, delay: float, name: str, action: Callable[[float], None]) -> None:
        """Run ``action(now)`` ``delay`` seconds from now (replacing a timer of that name)."""
        self._actions[name] = action
        self._wheel.start(name, self.now + delay)

    def cancel_timer(self, name: str) -> None:
        self._wheel.cancel(name)
        self._actions.pop(name, None)

    def unique(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}#{self._seq}"

    def watch(self, piece: Piece, handler: PieceHandler) -> None:
        """Run ``piece``'s timers and pass its events to ``handler(event, now)``."""
        self._pieces[id(piece)] = (piece, handler)

    def unwatch(self, piece: object) -> None:
        self._pieces.pop(id(piece), None)

    # -- outputs -------------------------------------------------------------------------------------------------
    def outputs(self) -> list[Output]:
        out = list(self._out)
        self._out.clear()
        return out

    def transmit(self, message: Request | Response | bytes, dest: Source, token: int | None = None) -> None:
        data = message if isinstance(message, bytes) else bytes(message)
        if not isinstance(message, bytes):
            log.info("-> %s to %s:%s", message.summary(), *dest.remote)
        self._out.append(Transmit(data, dest.remote, dest.flow, token))

    # -- transactions --------------------------------------------------------------------------------------------
    def start_client(
        self, request: Request, dest: Source, owner: ClientOwner, *, reliable: bool | None = None
    ) -> ClientTransaction:
        """Send ``request`` in a new client transaction to ``dest``; its events go to ``owner``."""
        tx = self.table.send_request(request, self.now, reliable=self.config.reliable if reliable is None else reliable)
        self._dest[id(tx)] = dest
        self._owners[id(tx)] = owner
        self._client_of[id(tx)] = tx
        return tx

    def dest_of(self, tx: object) -> Source | None:
        return self._dest.get(id(tx))

    def send_response(self, tx: ServerTransaction, response: Response) -> None:
        """Pass a response to a server transaction (it goes on the wire through :meth:`_settle`)."""
        if tx.terminated:
            log.info("response %s dropped: its transaction is over", response.start_line)
            return
        try:
            tx.send_response(response, self.now)
        except TransactionError as exc:
            log.info("response %s not sent: %s", response.start_line, exc)

    def build(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        contact: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Response:
        """A response to ``request`` (RFC 3261 §8.2.6); for a request too malformed for the strict builder, the same
        made on the raw path from whatever header fields it has."""
        hdrs = list(headers)
        if request.to is not None and request.to.tag is None and status != 100 and to_tag is None:
            to_tag = self.new_tag()
        try:
            return build_response(
                request, status, reason, to_tag=to_tag, contact=contact, headers=hdrs, body=body,
                content_type=content_type,
            )
        except INPUT_ERRORS:
            pass
        phrase = reason if reason is not None else REASON_PHRASES.get(status, "Unknown")
        fields: list[tuple[str, str]] = [("Via", v) for v in request.header_values("Via")]
        for name in ("From", "To", "Call-ID", "CSeq"):
            value = request.header(name)
            if value is None:
                continue
            if name == "To" and to_tag and request.to is not None and request.to.tag is None:
                value = set_tag(value, to_tag)
            fields.append((name, value))
        fields += hdrs
        data = raw_message(f"SIP/2.0 {status} {phrase}", fields, body)
        out = parse(data).message
        if not isinstance(out, Response):  # pragma: no cover - the raw path always makes a status line
            raise RuntimeError(f"cannot build a {status} for {request.summary()}")
        return out

    def respond(
        self,
        tx: ServerTransaction,
        status: int,
        reason: str | None = None,
        **kwargs: object,
    ) -> Response:
        """Build a response to ``tx``'s request and send it in ``tx``."""
        response = self.build(tx.request, status, reason, **kwargs)  # type: ignore[arg-type]
        self.send_response(tx, response)
        return response

    def malformed_response(self, req: Request) -> Response:
        """§8.2 and §16.3 for what the parser found: 505 for another SIP version, else 400 with a reason and a
        Warning naming the first fatal defect (§21.4.1: "The Reason-Phrase SHOULD identify the syntax problem in
        more detail, for example, "Missing Call-ID header field".")."""
        fatal = req.fatal_defects
        if any(d.code == "bad-version" for d in fatal) and not self.config.fault("no-505"):
            log.warning("505 to %s", req.start_line)
            return self.build(req, 505)
        first = next(d for d in fatal if d.code != "bad-version")
        where = f" {first.header}" if first.header else ""
        text = f"{first.code}{where}: {first.detail}" if first.detail else f"{first.code}{where}"
        missing = first.code == "missing-header"
        reason = f"Missing {first.header} header field" if missing else f"Bad Request ({first.code}{where})"
        log.warning("400 to %s: %s", req.start_line, "; ".join(str(d) for d in fatal))
        return self.build(req, 400, _reason_text(reason), headers=[("Warning", f"399 {self.hostport} {quote_text(text)}")])

    def reject_malformed(self, tx: ServerTransaction) -> bool:
        """The same for a request that made a transaction (fatal defects are normally answered before that);
        whether it was answered."""
        fatal = [d for d in tx.request.fatal_defects if not (d.code == "bad-version" and self.config.fault("no-505"))]
        if not fatal:
            return False
        if self.config.fault("malformed-silent"):
            log.warning("fault malformed-silent: %s left unanswered", tx.request.start_line)
            return True
        self.send_response(tx, self.malformed_response(tx.request))
        return True

    def _stateless_reject(self, message: Request) -> None:
        """A request the transaction layer cannot key (no Via or CSeq): 400 sent back statelessly, when possible."""
        source = self.current_source
        if source is None or message.method == "ACK":
            return
        if not message.has_header("Via"):
            # §8.2.6.2: the response's Via MUST equal the request's, and §18.2.2 routes responses by it: without a
            # usable Via no valid response exists, so the request is dropped (RFC 4475 §3.1.2's messages allow it).
            log.warning("dropped %s: no usable Via to answer it on", message.start_line)
            return
        missing = [n for n in ("Via", "CSeq") if not message.has_header(n)]
        what = f"Missing {missing[0]} header field" if missing else "Bad Request (unusable Via or CSeq)"
        response = self.build(message, 400, what, headers=[("Warning", f"399 {self.hostport} {quote_text(what)}")])
        log.warning("400 (stateless) to %s: %s", message.start_line, what)
        self.transmit(response, source)

    # -- the event pump ------------------------------------------------------------------------------------------
    def _settle(self, now: float) -> None:
        """Act on every queued event of the transaction table and the UA pieces until none is left."""
        for _ in range(10_000):
            if self.dead:
                return
            moved = False
            for tx, event in self.table.events():
                moved = True
                self._on_table_event(tx, event, now)
                if self.dead:
                    return
            for piece, handler in list(self._pieces.values()):
                for piece_event in piece.events():
                    moved = True
                    handler(piece_event, now)
            if not moved:
                return
        raise RuntimeError("the event pump did not settle")  # pragma: no cover

    def _on_table_event(self, tx: object, event: TransactionEvent, now: float) -> None:
        if isinstance(event, SendMessage):
            self._send_from_tx(tx, event)
        elif isinstance(event, RequestReceived):
            assert tx is not None
            self._on_request(tx, event.request, now)  # type: ignore[arg-type]
        elif isinstance(event, (ResponseReceived, TransactionTimedOut, TransportFailed)):
            owner = self._owners.get(id(tx))
            if owner is not None:
                try:
                    owner(tx, event, now)  # type: ignore[arg-type]
                except INPUT_ERRORS as exc:
                    log.warning("response not acted on: %s", exc)
            elif isinstance(event, TransactionTimedOut):
                log.info("%r timed out (Timer %s)", tx, event.timer)
        elif isinstance(event, TransactionTerminated):
            owner = self._owners.pop(id(tx), None)
            if owner is not None:
                owner(tx, event, now)  # type: ignore[arg-type]
            self._dest.pop(id(tx), None)
            self._server_of.pop(id(tx), None)
            self._client_of.pop(id(tx), None)
            server = getattr(tx, "request", None)
            key = merged_key(server) if isinstance(server, Request) else None
            if key is not None and self.live.get(key) is tx:
                del self.live[key]
            if self.ua is not None:
                self.ua.transaction_over(tx)
            if self.proxy is not None:
                self.proxy.transaction_over(tx)
        elif isinstance(event, StrayAck):
            self._on_stray_ack(event.ack, now)
        elif isinstance(event, StrayResponse):
            if self.proxy is not None:
                self.proxy.stray_response(event.response, now)
            else:
                log.info("stray response %s dropped", event.response.summary())
        elif isinstance(event, UnmatchableMessage):
            if isinstance(event.message, Request):
                self._stateless_reject(event.message)
            else:
                log.warning("dropped response without Via branch or CSeq: %s", event.message.start_line)
        elif isinstance(event, MessageAbsorbed):
            log.debug("absorbed %s", event.message.start_line)

    def _on_request(self, tx: ServerTransaction, request: Request, now: float) -> None:
        if request.method == "ACK":  # an ACK for our 2xx that reused the INVITE's branch (RFC 6026 Accepted)
            self._on_stray_ack(request, now)
            return
        key = merged_key(request)
        if key is not None and key not in self.live:
            self.live[key] = tx
        if isinstance(tx, ServerInviteTransaction) and not tx.auto_trying and tx.last_response is None:
            self.send_response(tx, self.build(request, 100))
        try:
            if self.proxy is not None:
                self.proxy.request(tx, request, now)
            elif self.registrar is not None:
                self.registrar.request(tx, request, now)
            elif self.ua is not None:
                self.ua.request(tx, request, now)
        except INPUT_ERRORS as exc:
            # What the request carries cannot be copied into a valid message (a To with an odd URI, a Contact that
            # makes no dialog): it is answered 400 naming why, not held against the device.
            log.warning("cannot process %s: %s", request.start_line, exc)
            if tx.last_response is None or tx.last_response.status < 200:
                what = f"cannot be processed as sent: {exc}"
                self.send_response(tx, self.build(request, 400, "Bad Request (cannot be processed as sent)",
                                                  headers=[("Warning", f"399 {self.hostport} {quote_text(what)}")]))

    def _on_stray_ack(self, ack: Request, now: float) -> None:
        if self.proxy is not None:
            self.proxy.ack(ack, now)
        elif self.ua is not None:
            self.ua.ack(ack, now)

    def _send_from_tx(self, tx: object, event: SendMessage) -> None:
        dest = self._dest.get(id(tx))
        if dest is None:
            log.warning("no destination for %s", event.message.start_line)
            return
        msg = event.message
        if isinstance(msg, Response):
            server = self._server_of.get(id(tx))
            data = self.wire_response(msg, server.request if server is not None else None, event.retransmission)
            if data is not None:
                log.info("-> %s%s", msg.summary(), " (retransmission)" if event.retransmission else "")
                self._out.append(Transmit(data, dest.remote, dest.flow))
            return
        if isinstance(msg, Request) and msg.method == "ACK" and isinstance(tx, ClientInviteTransaction):
            # The ACK for a 300-699 that the INVITE client transaction built (§17.1.1.3).
            if self.config.fault("no-ack-non2xx"):
                return
            if self.config.fault("ack-non2xx-wrong-to"):
                msg = msg.with_header("To", tx.request.header("To") or "")  # type: ignore[assignment]
        log.info("-> %s%s", msg.summary(), " (retransmission)" if event.retransmission else "")
        self._out.append(Transmit(bytes(msg), dest.remote, dest.flow, id(tx)))

    # -- the response faults, applied on the wire ----------------------------------------------------------------
    def wire_response(self, response: Response, request: Request | None, retransmission: bool = False) -> bytes | None:
        """The bytes a response the device made goes out as: correct, or broken by the response faults switched on.

        Faults are applied here, on the copy that leaves, so that the device's own state (transactions, dialogs)
        stays right and each fault breaks only what it names. ``None``: nothing is sent.
        """
        if self.config.role == "proxy" or request is None:
            return bytes(response)
        if not self.config.faults:
            return bytes(response)
        return _mutate(self, response, request, retransmission)


def _strictly_answerable(request: Request) -> bool:
    """Whether the strict builder can make a response to ``request`` (it copies Via, From, To, Call-ID, CSeq)."""
    try:
        build_response(request, 100)
    except INPUT_ERRORS:
        return False
    return True


def _reason_text(text: str) -> str:
    """A Reason-Phrase without control characters."""
    return "".join(c if c.isprintable() else "?" for c in text)[:120]


def _stable_tag(seed: str) -> str:
    return hashlib.sha1(seed.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _with(msg: Response, name: str, value: str) -> Response:
    out = msg.with_header(name, value)
    assert isinstance(out, Response)
    return out


def _without(msg: Response, *names: str) -> Response:
    out: Response = msg
    for name in names:
        if out.has_header(name):
            stripped = out.without_header(name)
            assert isinstance(stripped, Response)
            out = stripped
    return out


def _mutate(core: DeviceCore, resp: Response, req: Request, retransmission: bool) -> bytes | None:
    f = core.config.fault
    status = resp.status
    method = resp.cseq.method if resp.cseq is not None else req.method
    invite = method == "INVITE"
    req_tagged = req.to is not None and req.to.tag is not None
    if retransmission and not invite:
        if f("no-response-retransmit"):
            return None
        if f("final-response-unstable") and status >= 200:
            resp = core.build(req, 500, to_tag=resp.to.tag if resp.to else None)
    if retransmission and invite and status < 200 and resp.rseq is None and f("no-provisional-retransmit"):
        return None
    # -- To, From, Call-ID, CSeq, Via (§8.2.6.2) -----------------------------------------------------------------
    to_value = resp.header("To") or ""
    if f("no-to-tag") and not req_tagged and status != 100:
        resp = _with(resp, "To", strip_tag(to_value))
    if f("trying-to-tag") and invite and status == 100 and not req_tagged:
        resp = _with(resp, "To", set_tag(to_value, _stable_tag(req.transaction_branch or "")))
    if f("to-uri-changed") and not req_tagged and resp.to is not None:
        na = resp.to
        uri = na.uri
        if isinstance(uri, SipURI):
            changed = na.uri_text.replace(":", ":x-", 1) if uri.user else na.uri_text.replace(":", ":x@", 1)
            resp = _with(resp, "To", f"<{changed}>{na.params_text}")
    if f("to-changed") and req_tagged:
        resp = _with(resp, "To", (resp.header("To") or "") + ";x-sipcert=1")
    if f("from-changed"):
        resp = _with(resp, "From", (resp.header("From") or "") + ";x-sipcert=1")
    if f("call-id-changed"):
        resp = _with(resp, "Call-ID", (resp.header("Call-ID") or "") + "-x")
    if f("cseq-method-wrong") and not invite and resp.cseq is not None:
        resp = _with(resp, "CSeq", f"{resp.cseq.number} {resp.cseq.method.lower()}")
    if f("cseq-number-wrong") and not invite and resp.cseq is not None:
        resp = _with(resp, "CSeq", f"{resp.cseq.number + 1} {resp.cseq.method}")
    if f("wrong-via") and resp.via:
        out = replace_top_via(resp, resp.via[0].raw + ";x-sipcert=1")
        assert isinstance(out, Response)
        resp = out
    if f("via-count"):
        lines = with_lines(resp)
        last = max(i for i, h in enumerate(resp.headers) if h.key == "via")
        lines.insert(last + 1, "Via: SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKsipcert.extra")
        resp = rebuild(resp, lines)  # type: ignore[assignment]
    # -- headers some statuses must carry ----------------------------------------------------------------------
    if f("no-allow-405") and status == 405:
        resp = _without(resp, "Allow")
    if f("no-unsupported-420") and status == 420:
        resp = _without(resp, "Unsupported")
    if f("no-accept-415") and status == 415:
        resp = _without(resp, "Accept", "Accept-Encoding", "Accept-Language")
    if f("no-require-421") and status == 421:
        resp = _without(resp, "Require")
    if f("no-min-expires-423") and status in (423, 606):
        resp = _without(resp, "Min-Expires")
    if invite and 200 <= status < 300:
        if f("require-unsupported"):
            resp = _with(resp, "Require", "timer")
        if f("no-contact-2xx"):
            resp = _without(resp, "Contact")
        if f("no-allow-supported-2xx"):
            resp = _without(resp, "Allow", "Supported")
    if invite and 101 <= status <= 199 and f("no-contact-1xx"):
        resp = _without(resp, "Contact")
    if invite and 101 <= status <= 299:
        if f("contact-not-sip") and resp.has_header("Contact"):
            resp = _with(resp, "Contact", "<tel:+15550100>")
        if f("contact-not-sips") and resp.has_header("Contact"):
            resp = _with(resp, "Contact", (resp.header("Contact") or "").replace("<sips:", "<sip:"))
        if f("record-route-not-copied"):
            resp = _without(resp, "Record-Route")
    if f("options-no-capabilities") and method == "OPTIONS" and 200 <= status < 300:
        resp = _without(resp, "Allow", "Accept", "Accept-Encoding", "Accept-Language", "Supported")
    if f("allow-incomplete") and resp.has_header("Allow"):
        methods = [m.strip() for v in resp.header_values("Allow") for m in v.split(",") if m.strip() != "BYE"]
        resp = _with(resp, "Allow", ", ".join(methods))
    if f("no-timestamp-100") and status == 100:
        resp = _without(resp, "Timestamp")
    if f("register-record-route") and method == "REGISTER":
        resp = _with(resp, "Record-Route", f"<sip:{core.hostport};lr>")
    # -- RFC 3262 -------------------------------------------------------------------------------------------------
    if f("reliable-100") and invite and status == 100:
        resp = _with(_with(resp, "Require", "100rel"), "RSeq", "1")
    if invite and 101 <= status <= 199 and resp.rseq is not None and core.ua is not None:
        wire = core.ua.wire_rseq(req, resp.rseq)
        if wire != resp.rseq:
            resp = _with(resp, "RSeq", str(wire))
        if f("prack-no-rseq"):
            resp = _without(resp, "RSeq")
        if f("prack-no-require"):
            others = [t for t in resp.require if t.lower() != "100rel"]
            resp = _with(resp, "Require", ", ".join(others)) if others else _without(resp, "Require")
    # -- body and syntax ------------------------------------------------------------------------------------------
    if f("no-content-type") and resp.body:
        resp = _without(resp, "Content-Type")
    if f("syntax-minor"):
        resp = _with(resp, "Date", "yesterday")
    data = bytes(resp)
    if f("syntax-error"):
        data = _insert_line(data, b"Server: sipcert\x07dut")
    if f("content-length-wrong"):
        data = _set_length(data, len(resp.body) + 10)
    elif f("no-content-length") and not resp.body:
        data = _drop_length(data)
    return data


_RE_LENGTH = re.compile(rb"\r\n(?:Content-Length|l)[ \t]*:[^\r\n]*", re.I)


def _insert_line(data: bytes, line: bytes) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    return head + b"\r\n" + line + sep + body


def _set_length(data: bytes, value: int) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    return _RE_LENGTH.sub(b"\r\nContent-Length: " + str(value).encode(), head, count=1) + sep + body


def _drop_length(data: bytes) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    return _RE_LENGTH.sub(b"", head, count=1) + sep + body
