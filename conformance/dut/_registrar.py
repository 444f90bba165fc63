"""The device as a registrar (RFC 3261 §10.3): bindings per address-of-record, kept in loop time.

Expiry is ``now`` + the granted interval on whatever clock the core is fed with; a binding past its time is gone
the next time anybody looks (nothing reads a clock here).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..sip import Request, SipURI, parse_uri
from ..sip._transaction import ServerTransaction
from ..sip.state import answer_cancel
from ._inspect import inspect_request

if TYPE_CHECKING:
    from ._core import DeviceCore

__all__ = ["Registrar", "Binding", "REGISTRAR_ALLOW"]

log = logging.getLogger("sipcert.dut")

REGISTRAR_ALLOW: tuple[str, ...] = ("REGISTER", "OPTIONS", "CANCEL")


@dataclass
class Binding:
    """One Contact bound to an address-of-record, with the Call-ID and CSeq of the REGISTER that set it (§10.3
    step 7)."""

    uri_text: str
    expires_at: float
    call_id: str
    cseq: int
    #: The q-value the REGISTER gave (RFC 3261 §10.2.1.2), listed back with the binding.
    q: str | None = None

    def remaining(self, now: float) -> int:
        return max(0, math.ceil(self.expires_at - now - 1e-9))


def aor_key(uri_text: str) -> str | None:
    """An address-of-record as a lookup key: ``sip:user@host`` (sips and sip alike, host lower-cased)."""
    uri = parse_uri(uri_text)[0]
    if not isinstance(uri, SipURI):
        return None
    user = uri.user_unescaped or ""
    return f"sip:{user}@{uri.host_unbracketed.lower()}"


def contact_key(uri_text: str) -> tuple[object, ...] | str:
    uri = parse_uri(uri_text)[0]
    if isinstance(uri, SipURI):
        return (uri.user, uri.host_unbracketed.lower(), uri.port, uri.transport)
    return uri_text


class Registrar:
    """REGISTER processing, §10.3 steps 1 to 8 (authentication skipped)."""

    def __init__(self, core: DeviceCore) -> None:
        self.core = core
        self.bindings: dict[str, dict[tuple[object, ...] | str, Binding]] = {}

    def request(self, tx: ServerTransaction, req: Request, now: float) -> None:
        core = self.core
        if inspect_request(core, tx, req, allow=REGISTRAR_ALLOW, supported=(), accept=("application/sdp",)):
            return
        if core.config.fault("provisional-non-invite"):
            core.respond(tx, 100)
        if req.method == "OPTIONS":
            core.respond(tx, 200, headers=[("Allow", ", ".join(REGISTRAR_ALLOW)), ("Accept", "application/sdp"),
                                           ("Accept-Encoding", "identity"), ("Accept-Language", "en"),
                                           ("Supported", "")])
        elif req.method == "CANCEL":
            answer = answer_cancel(req, core.table.cancel_target(req), to_tag=core.new_tag())
            core.send_response(tx, answer.cancel_response)
        else:
            self.register(tx, req, now)

    # -- bindings ------------------------------------------------------------------------------------------------
    def _purge(self, now: float) -> None:
        for aor, table in list(self.bindings.items()):
            for key, b in list(table.items()):
                if b.expires_at <= now:
                    log.info("binding %s -> %s expired", aor, b.uri_text)
                    del table[key]
            if not table:
                del self.bindings[aor]

    def lookup(self, uri_text: str, now: float) -> list[Binding]:
        """The current bindings of an address-of-record (for a proxy's routing)."""
        self._purge(now)
        key = aor_key(uri_text)
        return [] if key is None else list(self.bindings.get(key, {}).values())

    def count(self, now: float) -> int:
        self._purge(now)
        return sum(len(t) for t in self.bindings.values())

    def register(self, tx: ServerTransaction, req: Request, now: float) -> None:
        core, cfg = self.core, self.core.config
        fault = cfg.fault
        to = req.to
        key = aor_key(to.uri_text) if to is not None else None
        if to is None or key is None:
            # §10.3 step 5: "If the address-of-record is not valid for the domain in the Request-URI, the registrar
            # MUST send a 404 (Not Found) response".
            core.respond(tx, 404, "Not Found (address-of-record is not a SIP URI)")
            return
        to_uri = parse_uri(to.uri_text)[0]
        if cfg.domain and isinstance(to_uri, SipURI) and to_uri.host_unbracketed.lower() != cfg.domain.lower():
            core.respond(tx, 404, f"Not Found (not responsible for {to_uri.host})")
            return
        self._purge(now)
        current = self.bindings.get(key, {})
        call_id = req.call_id or ""
        cseq = req.cseq.number if req.cseq is not None else 0
        if req.contact_star:
            # §10.3 step 6: "*" only with Expires: 0 and no other Contact.
            others = len(req.contact)
            written = req.header("Expires")
            if (others or written is None or written.strip() != "0") and not fault("star-accepted"):
                core.respond(tx, 400, "Invalid Request (Contact: * needs Expires: 0 and no other Contact)")
                return
            for b in current.values():
                if b.call_id == call_id and cseq <= b.cseq and not fault("no-500-cseq"):
                    core.respond(tx, 500, "Server Internal Error (CSeq out of order)")
                    return
            self.bindings.pop(key, None)
            self._ok(tx, key, now)
            return
        default = req.expires if req.expires is not None else cfg.default_expires
        changes: list[tuple[tuple[object, ...] | str, str, int, str | None]] = []
        for na in req.contact:
            raw = na.param("expires")
            expires = int(raw) if raw is not None and raw.isdigit() else default
            if 0 < expires < cfg.min_expires and expires < 3600 and not fault("no-423"):
                status = 606 if fault("register-6xx") else 423
                core.respond(tx, status, headers=[("Min-Expires", str(cfg.min_expires))])
                return
            ckey = contact_key(na.uri_text)
            existing = current.get(ckey)
            if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                if not fault("no-500-cseq"):
                    core.respond(tx, 500, "Server Internal Error (CSeq out of order)")
                    return
            changes.append((ckey, na.uri_text, expires, na.param("q")))
        if changes:
            table = self.bindings.setdefault(key, {})
            for ckey, uri_text, expires, q in changes:
                if expires == 0:
                    table.pop(ckey, None)
                else:
                    table[ckey] = Binding(uri_text, now + expires, call_id, cseq, q or None)
            if not table:
                del self.bindings[key]
        self._ok(tx, key, now)

    def _ok(self, tx: ServerTransaction, key: str, now: float) -> None:
        """§10.3 step 8: 200 with every current binding and a Date."""
        core, fault = self.core, self.core.config.fault
        headers: list[tuple[str, str]] = []
        if not fault("bindings-not-listed"):
            for b in self.bindings.get(key, {}).values():
                expires = "" if fault("no-contact-expires") else f";expires={b.remaining(now)}"
                q = f";q={b.q}" if b.q else ""
                headers.append(("Contact", f"<{b.uri_text}>{expires}{q}"))
        headers.append(("Date", core.date()))
        core.respond(tx, 200, headers=headers)
