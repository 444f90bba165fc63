"""RFC 3261 §8.2: what a UAS checks before it processes a request, in the order the RFC gives.

Shared by the UA core and the registrar (a registrar is a UAS, §10.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..sip import Request, SipURI
from ..sip._transaction import ServerTransaction
from ._msg import quote_text

if TYPE_CHECKING:
    from ._core import DeviceCore

__all__ = ["inspect_request", "merged_key"]


def merged_key(request: Request) -> tuple[object, ...] | None:
    """§8.2.2.2: From tag, Call-ID and CSeq, the identity a merged request shares with an ongoing transaction."""
    if request.to is None or request.to.tag is not None or request.cseq is None or request.from_ is None:
        return None
    return (request.from_.tag, request.call_id, request.cseq.number, request.cseq.method)


def _ongoing(tx: ServerTransaction) -> bool:
    """A transaction a merged copy could still disturb: any live INVITE transaction (its 2xx makes a dialog), a
    non-INVITE one until its final response (after that a request with the same CSeq is a new one, e.g. an
    out-of-order REGISTER that §10.3 answers 500)."""
    if tx.method == "INVITE":
        return True
    last = tx.last_response
    return last is None or last.status < 200


def inspect_request(
    core: DeviceCore,
    tx: ServerTransaction,
    request: Request,
    *,
    allow: tuple[str, ...],
    supported: tuple[str, ...],
    accept: tuple[str, ...],
) -> bool:
    """Answer ``request`` if one of the §8.2 checks rejects it; ``True`` when it was answered.

    Order: the parser's verdict (505, then 400 naming the defect), §8.2.1 method (405 with Allow, 501 for a method
    nobody defined), §8.2.2.1 Request-URI scheme (416) and user (404 when ``--user`` is set), §8.2.2.2 merged requests
    (482), §8.2.2.3 Require (420 with Unsupported), §8.2.3 content (415 with Accept, 400 for a body without a usable
    Content-Type).
    """
    from ._core import KNOWN_METHODS

    fault = core.config.fault
    if core.reject_malformed(tx):
        return True
    method = request.method
    if method not in allow:
        core.respond(tx, 405 if method in KNOWN_METHODS else 501, headers=[("Allow", ", ".join(allow))])
        return True
    scheme = request.uri_text.split(":", 1)[0].lower() if ":" in request.uri_text else ""
    if scheme not in ("sip", "sips") and not fault("no-416"):
        core.respond(tx, 416)
        return True
    tagged = request.to is not None and request.to.tag is not None
    uri = request.uri
    user = core.config.user
    if user and not tagged and method != "CANCEL" and isinstance(uri, SipURI):
        if uri.user is not None and uri.user_unescaped != user:
            core.respond(tx, 404)
            return True
    key = merged_key(request)
    if key is not None and not fault("no-482"):
        other = core.live.get(key)
        if other is not None and other is not tx and not other.terminated and _ongoing(other):
            core.respond(tx, 482)
            return True
    if method not in ("ACK", "CANCEL") and not fault("no-420"):
        unknown = [t for t in request.require if t.lower() not in supported]
        if unknown:
            core.respond(tx, 420, headers=[("Unsupported", ", ".join(unknown))])
            return True
    if request.body:
        written = request.header("Content-Type")
        ctype = request.content_type
        if written is None or ctype is None:
            what = "Missing Content-Type header field" if written is None else "Bad Request (bad-content-type)"
            detail = what if written is None else f"bad-content-type in Content-Type: {written[:80]}"
            core.respond(tx, 400, what, headers=[("Warning", f"399 {core.hostport} {quote_text(detail)}")])
            return True
        if ctype.mime not in accept:
            core.respond(
                tx, 415, headers=[("Accept", ", ".join(accept)), ("Accept-Encoding", "identity"),
                                  ("Accept-Language", "en")]
            )
            return True
        encoding = request.header("Content-Encoding")
        if encoding is not None and encoding.strip().lower() not in ("", "identity"):
            core.respond(tx, 415, headers=[("Accept-Encoding", "identity"), ("Accept", ", ".join(accept))])
            return True
    if request.method in ("INVITE", "UPDATE") and not _accepts_sdp(request):
        # §21.4.7: "The resource identified by the request is only capable of generating response entities that
        # have content characteristics not acceptable according to the Accept header field sent in the request."
        # The answer is SDP; a request whose Accept excludes it gets 406 (RFC 4475 §3.3.15, sdp01).
        core.respond(tx, 406)
        return True
    return False


def _accepts_sdp(request: Request) -> bool:
    """Whether the request's Accept admits application/sdp. §20.1: "If no Accept header field is present, the
    server SHOULD assume a default value of application/sdp. An empty Accept header field means that no formats are
    acceptable." """
    values = request.header_values("Accept")
    if not values:
        return True
    for value in values:
        for item in value.split(","):
            mime = item.split(";", 1)[0].strip().lower()
            if mime in ("application/sdp", "application/*", "*/*"):
                return True
    return False
