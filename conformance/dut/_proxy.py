"""The device as a stateful proxy (RFC 3261 §16), on one transport.

Requests are validated (§16.3: syntax, URI scheme, Max-Forwards, loop detection, Proxy-Require), routed (§16.4,
§16.5: a Route naming another element, then the registrar's bindings for the Request-URI, then ``--next-hop``, then
the Request-URI itself), forwarded with a decremented Max-Forwards, a Record-Route with ``lr`` and a Via of their
own (§16.6) in a client transaction; responses go back upstream without that Via (§16.7). CANCEL is answered hop by
hop and sent on downstream (§16.10); an ACK for a 2xx is forwarded statelessly (it is end to end).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..sip import BRANCH_COOKIE, NameAddr, Request, Response, SipURI, build_cancel, parse
from ..sip._transaction import (
    ClientTransaction,
    ResponseReceived,
    ServerTransaction,
    TransactionEvent,
    TransactionTimedOut,
    TransportFailed,
)
from ._core import Source
from ._msg import strip_top_via, uri_address, via_address

if TYPE_CHECKING:
    from ._core import DeviceCore

__all__ = ["Proxy"]

log = logging.getLogger("sipcert.dut")


@dataclass
class _Context:
    """A response context (§16.2): the server transaction, what was forwarded, and where."""

    server: ServerTransaction
    upstream: Source
    request_out: Request | None = None
    dest: Source | None = None
    client: ClientTransaction | None = None
    provisional: bool = False
    final: bool = False
    cancel_pending: bool = False


class Proxy:
    def __init__(self, core: DeviceCore) -> None:
        self.core = core
        self.contexts: dict[int, _Context] = {}

    # -- identity ------------------------------------------------------------------------------------------------
    def record_route(self) -> str:
        return f"<{self.core.contact_uri()};lr>"

    def mine(self, uri_text: str) -> bool:
        uri = parse_uri_safe(uri_text)
        return uri is not None and self.core.is_local(uri.host, uri.port)

    @staticmethod
    def loop_hash(req: Request) -> str:
        """§16.6 step 8: a hash of what identifies the request as received (To tag, From tag, Call-ID, CSeq number,
        Request-URI, Proxy-Require), the part of our branch that loop detection compares (§16.3 step 4)."""
        to_tag = req.to.tag if req.to else ""
        from_tag = req.from_.tag if req.from_ else ""
        cseq = req.cseq.number if req.cseq else 0
        text = f"{to_tag}|{from_tag}|{req.call_id}|{cseq}|{req.uri_text}|{','.join(req.proxy_require)}"
        return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]

    def looped(self, req: Request) -> bool:
        mine = self.loop_hash(req)
        for via in req.via:
            branch = via.branch or ""
            if self.core.is_local(via.host, via.port) and branch.startswith(BRANCH_COOKIE):
                if branch[len(BRANCH_COOKIE) :].split(".", 1)[0] == mine:
                    return True
        return False

    # -- requests ------------------------------------------------------------------------------------------------
    def request(self, tx: ServerTransaction, req: Request, now: float) -> None:
        core, fault = self.core, self.core.config.fault
        if core.reject_malformed(tx):
            return
        scheme = req.uri_text.split(":", 1)[0].lower() if ":" in req.uri_text else ""
        if scheme not in ("sip", "sips"):
            core.respond(tx, 416)
            return
        if req.method == "CANCEL":
            self.cancel(tx, req, now)
            return
        uri = req.uri
        for_me = isinstance(uri, SipURI) and uri.user is None and core.is_local(uri.host, uri.port)
        routes = [r for r in req.route]
        if routes and self.mine(routes[0].uri_text):
            routes = routes[1:]
        strict: str | None = None
        if for_me and routes:
            # §16.4: "If the Request-URI contains a value this proxy previously placed into a Record-Route header
            # field, the proxy MUST replace the Request-URI in the request with the last value from the Route header
            # field, and remove that value from the Route header field." (a strict router sent it)
            strict, routes = routes[-1].uri_text, routes[:-1]
            for_me = False
        mf = req.max_forwards
        if mf == 0 and not fault("no-483"):
            if req.method == "OPTIONS" and for_me and not routes:
                core.respond(tx, 200, headers=[("Accept", "application/sdp"), ("Accept-Encoding", "identity"),
                                               ("Accept-Language", "en"), ("Supported", "")])
            else:
                core.respond(tx, 483)
            return
        if not fault("no-loop-detection") and self.looped(req):
            core.respond(tx, 482)
            return
        if req.proxy_require:
            core.respond(tx, 420, headers=[("Unsupported", ", ".join(req.proxy_require))])
            return
        if for_me and not routes:
            if req.method == "REGISTER" and core.registrar is not None:
                core.registrar.register(tx, req, now)
                return
            if req.method == "OPTIONS":
                core.respond(tx, 200, headers=[("Accept", "application/sdp"), ("Accept-Encoding", "identity"),
                                               ("Accept-Language", "en"), ("Supported", "")])
                return
        self.forward(tx, req, routes, now, strict)

    def _target(
        self, req: Request, routes: Sequence[NameAddr], now: float, request_uri: str | None = None
    ) -> tuple[str, tuple[str, int] | None]:
        """The Request-URI to forward with and the next hop's address (§16.5, §16.12)."""
        core = self.core
        transport = core.transport
        uri_text = request_uri or req.uri_text
        if routes:
            return uri_text, uri_address(routes[0].uri_text, transport)
        uri = parse_uri_safe(uri_text)
        local = uri is not None and core.is_local(uri.host, uri.port)
        if local and core.registrar is not None:
            bindings = core.registrar.lookup(uri_text, now)
            if bindings:
                return bindings[0].uri_text, uri_address(bindings[0].uri_text, transport)
        if core.config.next_hop:
            return uri_text, uri_address(core.config.next_hop, transport)
        if local:
            return uri_text, None
        return uri_text, uri_address(uri_text, transport)

    def _copy(self, req: Request, uri_text: str, routes: Sequence[NameAddr], *, record_route: bool) -> Request:
        """§16.6 steps 1-8: the copy to forward (new Request-URI, our Route removed, Max-Forwards decremented,
        Record-Route and Via added)."""
        core, fault = self.core, self.core.config.fault
        branch = f"{BRANCH_COOKIE}{self.loop_hash(req)}.{core.new_branch()[len(BRANCH_COOKIE):][:8]}"
        lines = [f"Via: SIP/2.0/{core.via_transport} {core.hostport};branch={branch};rport"]
        mf = req.max_forwards
        new_mf = mf if mf is None or fault("max-forwards-not-decremented") else max(0, mf - 1)
        route_done = False
        rr_done = not record_route
        for h in req.headers:
            if h.key == "route":
                if not route_done and routes:
                    lines.append("Route: " + ", ".join(r.raw for r in routes))
                route_done = True
                continue
            if h.key == "max-forwards":
                lines.append(f"{h.name}: {new_mf}")
                continue
            if h.key == "record-route" and not rr_done:
                lines.append(f"Record-Route: {self.record_route()}")
                rr_done = True
            lines.append(h.raw)
        last_via = max((i for i, line in enumerate(lines) if line.lower().startswith(("via:", "v:"))), default=0)
        if mf is None:
            # §16.6 step 3: "If the copy does not contain a Max-Forwards header field, the proxy MUST add one with a
            # field value, which SHOULD be 70."
            lines.insert(last_via + 1, "Max-Forwards: 70")
        if not rr_done:
            lines.insert(last_via + 1, f"Record-Route: {self.record_route()}")
        head = f"{req.method} {uri_text} SIP/2.0\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n"
        out = parse(head.encode("utf-8", "surrogateescape") + req.body).message
        assert isinstance(out, Request)
        return out

    def forward(
        self, tx: ServerTransaction, req: Request, routes: Sequence[NameAddr], now: float, request_uri: str | None = None
    ) -> None:
        core = self.core
        upstream = core.dest_of(tx)
        assert upstream is not None
        uri_text, addr = self._target(req, routes, now, request_uri)
        if addr is None:
            core.respond(tx, 404)
            return
        record = req.method == "INVITE" and not core.config.fault("no-record-route") and (
            req.to is None or req.to.tag is None
        )
        out = self._copy(req, uri_text, routes, record_route=record)
        ctx = _Context(tx, upstream, out, Source(core.transport, addr, None))
        self.contexts[id(tx)] = ctx
        ctx.client = core.start_client(out, ctx.dest, lambda c, e, t: self._client_event(ctx, c, e, t))  # type: ignore[arg-type]

    def _client_event(self, ctx: _Context, tx: ClientTransaction, event: TransactionEvent, now: float) -> None:
        core = self.core
        if isinstance(event, ResponseReceived):
            response = event.response
            status = response.status
            if status == 100:
                return  # §16.7 step 3: a 100 is not forwarded
            if status < 200:
                ctx.provisional = True
                if ctx.cancel_pending:
                    self._send_cancel(ctx)
            else:
                ctx.final = True
                ctx.cancel_pending = False
            self._upstream(ctx, response)
        elif isinstance(event, (TransactionTimedOut, TransportFailed)) and not ctx.final:
            ctx.final = True
            status = 408 if isinstance(event, TransactionTimedOut) else 503
            log.warning("next hop %s:%s %s: %d upstream", *(ctx.dest.remote if ctx.dest else ("?", 0)),
                        "timed out" if status == 408 else "unreachable", status)
            core.respond(ctx.server, status)

    def _upstream(self, ctx: _Context, response: Response) -> None:
        core = self.core
        if core.config.fault("proxy-keeps-via"):
            core.transmit(response, ctx.upstream)
            return
        forwarded = strip_top_via(response)
        if forwarded is None:
            log.info("response %s carries no Via after ours: dropped", response.summary())
            return
        core.send_response(ctx.server, forwarded)

    def cancel(self, tx: ServerTransaction, req: Request, now: float) -> None:
        """§16.10: a CANCEL matching a response context is answered 200 here and sent on to the pending branch."""
        core = self.core
        target = core.table.cancel_target(req)
        ctx = self.contexts.get(id(target)) if target is not None else None
        if ctx is None:
            core.respond(tx, 481)
            return
        core.respond(tx, 200)
        if core.config.fault("proxy-no-cancel-forward") or ctx.final or ctx.request_out is None:
            return
        if ctx.provisional:
            self._send_cancel(ctx)
        else:
            ctx.cancel_pending = True  # §9.1: not before a provisional response

    def _send_cancel(self, ctx: _Context) -> None:
        ctx.cancel_pending = False
        assert ctx.request_out is not None and ctx.dest is not None
        self.core.start_client(build_cancel(ctx.request_out), ctx.dest, _ignore)

    def ack(self, ack: Request, now: float) -> None:
        """An ACK for a 2xx: end to end, forwarded statelessly along its Route (or Request-URI)."""
        core = self.core
        routes = [r for r in ack.route]
        if routes and self.mine(routes[0].uri_text):
            routes = routes[1:]
        if ack.max_forwards == 0:
            return
        uri_text, addr = self._target(ack, routes, now)
        if addr is None:
            log.info("ACK %s: nowhere to forward it", ack.summary())
            return
        out = self._copy(ack, uri_text, routes, record_route=False)
        core.transmit(out, Source(core.transport, addr, None))

    def stray_response(self, response: Response, now: float) -> None:
        """A response no client transaction wants (a late 2xx retransmission): forwarded statelessly (§16.11) when
        our Via is on top."""
        core = self.core
        if not response.via or not core.is_local(response.via[0].host, response.via[0].port):
            log.info("stray response %s dropped", response.summary())
            return
        forwarded = strip_top_via(response)
        if forwarded is None:
            return
        core.transmit(forwarded, Source(core.transport, via_address(forwarded.via[0], core.transport), None))

    def transaction_over(self, tx: object) -> None:
        self.contexts.pop(id(tx), None)


def parse_uri_safe(uri_text: str) -> SipURI | None:
    from ..sip import parse_uri

    uri = parse_uri(uri_text)[0]
    return uri if isinstance(uri, SipURI) else None


def _ignore(tx: ClientTransaction, event: TransactionEvent, now: float) -> None:
    if isinstance(event, ResponseReceived):
        log.info("response to %s: %s", tx.request.method, event.response.start_line)
