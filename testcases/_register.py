"""Registrar scenario helpers (RFC 3261 §10): one address-of-record per test, its REGISTERs and the bindings a
registrar lists.

Every test purpose gets a fresh address-of-record user, so test purposes run side by side against one registrar
without seeing each other's bindings. The helpers only build, send and read; each test states the requirement it
checks in its own body.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import uuid4

from conformance.peer import ExpectationFailed, Peer
from conformance.profile import DeviceProfile
from conformance.sip import NameAddr, Request, Response, SipURI, name_addr, new_call_id, new_tag, parse_uri

__all__ = [
    "Binding",
    "Registration",
    "bindings",
    "binding_for",
    "domain",
    "new_registration",
    "registrar_uri",
    "unregister_all",
]


def domain(profile: DeviceProfile) -> str:
    """The domain the registrar keeps bindings for: the host (and port, when given) of the profile's address of
    record, else the target's host and port (§10.3: "A registrar has to know ... the set of domain(s) for which it
    maintains bindings")."""
    if profile.aor:
        uri, _ = parse_uri(profile.aor)
        if isinstance(uri, SipURI):
            return uri.host if uri.port is None else f"{uri.host}:{uri.port}"
    t = profile.target
    host = f"[{t.host}]" if ":" in t.host and not t.host.startswith("[") else t.host
    return f"{host}:{t.port}"


def registrar_uri(profile: DeviceProfile) -> str:
    """§10.2: "The Request-URI names the domain of the location service for which the registration is meant ...
    The "userinfo" and "@" components of the SIP URI MUST NOT be present." """
    scheme = "sips" if profile.target.secure else "sip"
    return f"{scheme}:{domain(profile)}"


@dataclass(frozen=True, slots=True)
class Binding:
    """One Contact value of a 2xx to REGISTER: its URI, the expiry the registrar chose (the ``expires`` parameter,
    else the response's Expires), and its ``q``."""

    contact: NameAddr
    expires: int | None
    q: float | None

    @property
    def uri(self) -> str:
        return self.contact.uri_text


def _same_uri(a: str, b: str) -> bool:
    """SIP URI equality for what the tests register (§19.1.4): user case-sensitive, host case-insensitive, port."""
    ua, _ = parse_uri(a)
    ub, _ = parse_uri(b)
    if isinstance(ua, SipURI) and isinstance(ub, SipURI):
        return (
            ua.scheme.lower() == ub.scheme.lower()
            and ua.user_unescaped == ub.user_unescaped
            and ua.host.lower() == ub.host.lower()
            and ua.port == ub.port
        )
    return a == b


def bindings(response: Response) -> list[Binding]:
    """The bindings a 2xx to REGISTER lists (§10.3 step 8)."""
    header_expires = response.expires
    out = []
    for c in response.contact:
        raw = c.param("expires")
        expires = int(raw) if raw is not None and raw.isdigit() else header_expires
        out.append(Binding(c, expires, c.q))
    return out


def binding_for(response: Response, contact_uri: str) -> list[Binding]:
    """The listed bindings whose URI is ``contact_uri`` (normally zero or one)."""
    return [b for b in bindings(response) if _same_uri(b.uri, contact_uri)]


def _describe(response: Response) -> str:
    listed = [f"<{b.uri}> expires={b.expires}" + (f" q={b.q:g}" if b.q is not None else "") for b in bindings(response)]
    return f"{response.status} {response.reason}" + (f" listing {', '.join(listed)}" if listed else " listing no binding")


@dataclass
class Registration:
    """One address-of-record of one test, the Call-ID and CSeq of its REGISTERs (§10.2: "A UA MUST increment the
    CSeq value by one for each REGISTER request with the same Call-ID")."""

    peer: Peer
    profile: DeviceProfile
    user: str
    call_id: str
    cseq: int = 1
    from_tag: str = field(default_factory=new_tag)
    sent: list[Request] = field(default_factory=list)

    @property
    def aor(self) -> str:
        scheme = "sips" if self.profile.target.secure else "sip"
        return f"{scheme}:{self.user}@{domain(self.profile)}"

    def contact_uri(self, label: str) -> str:
        """A contact address at the peer's endpoint, distinct per ``label`` (the user part names the test's AOR)."""
        ep = self.peer.endpoint()
        uri = ep.contact_uri(f"{self.user}-{label}")
        return uri

    def build(
        self,
        contacts: Sequence[str] | None = None,
        *,
        expires: int | None = None,
        call_id: str | None = None,
        cseq: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
        to: str | None = None,
        uri: str | None = None,
    ) -> Request:
        """A REGISTER for this AOR. ``contacts`` are Contact header values as written (``"<sip:...>;expires=60"``,
        ``"*"``); none means a query (§10.2.3). Without ``cseq`` the next number of this Call-ID is used."""
        if cseq is None:
            cseq = self.cseq
            self.cseq += 1
        extra: list[tuple[str, str]] = [("Contact", c) for c in contacts or ()]
        if expires is not None:
            extra.append(("Expires", str(expires)))
        aor = name_addr(self.aor)
        return self.peer.build_request(
            "REGISTER",
            uri or registrar_uri(self.profile),
            to=to or aor,
            from_=name_addr(self.aor, tag=self.from_tag),
            call_id=call_id or self.call_id,
            cseq=cseq,
            contact=False,
            headers=[*extra, *headers],
        )

    def send(self, request: Request, timeout: float = 5.0) -> Response:
        """Send a REGISTER in a client transaction and return its final response."""
        self.sent.append(request)
        tx = self.peer.request(request, self.profile.target.address)
        return self.peer.final_response(tx, timeout)

    def register(
        self,
        contacts: Sequence[str] | None = None,
        *,
        expires: int | None = None,
        timeout: float = 5.0,
        **kwargs: object,
    ) -> Response:
        return self.send(self.build(contacts, expires=expires, **kwargs), timeout)  # type: ignore[arg-type]

    def query(self) -> Response:
        """A REGISTER without Contact: §10.2.3 "If no Contact header field is present in a REGISTER request, the
        list of bindings is left unchanged" and the 2xx lists them."""
        return self.register()

    def describe(self, response: Response) -> str:
        return _describe(response)


def new_registration(peer: Peer, profile: DeviceProfile) -> Registration:
    """A fresh address-of-record user (``sipcert-<8 hex>``) and Call-ID for one test."""
    user = f"sipcert-{uuid4().hex[:8]}"
    host = peer.endpoint().local[0].replace(":", "-")
    return Registration(peer, profile, user, new_call_id(host))


def unregister_all(reg: Registration) -> None:
    """Best-effort cleanup: ``Contact: *`` with ``Expires: 0`` (§10.2.2), never failing the test."""
    try:
        reg.register(["*"], expires=0, timeout=3.0)
    except (ExpectationFailed, TimeoutError, RuntimeError):
        pass
