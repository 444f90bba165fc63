"""URIs: SIP and SIPS (RFC 3261 §19.1), tel (RFC 3966), and any other absoluteURI kept opaque."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote as _pct_unquote

from ._abnf import RE_HOSTNAME, RE_IPV4

__all__ = ["URI", "SipURI", "TelURI", "AbsoluteURI", "parse_uri", "UriProblem"]

# user = 1*( unreserved / escaped / user-unreserved ); user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
_RE_USER = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_RE_PASSWORD = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*")
# uri-parameter: pname [ "=" pvalue ]; paramchar = param-unreserved / unreserved / escaped;
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
_RE_URI_PARAMS = re.compile(r"(?:;(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+(?:=(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+)?)*")
# header = hname "=" hvalue; hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
_RE_URI_HEADERS = re.compile(
    r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})+=(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*"
    r"(?:&(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})+=(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*)*"
)
_RE_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_RE_HOSTPORT = re.compile(r"(\[[0-9A-Fa-f:.]*\]|[^:\[\]]*)(?::([^:]*))?")
# telephone-subscriber, loosely: global (+digits/visual separators) or local number, then ;params (RFC 3966 §3)
_RE_TEL = re.compile(r"(\+?[0-9A-Fa-f*#\-.()pw]+)((?:;[A-Za-z0-9\-]+(?:=[^;]*)?)*)")


@dataclass(frozen=True, slots=True)
class UriProblem:
    """Why a URI did not parse cleanly: a defect code and a detail."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class SipURI:
    """``sip:`` or ``sips:`` URI. ``str(uri)`` is the text as it was written."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...]
    headers: tuple[tuple[str, str], ...]
    raw: str

    def __str__(self) -> str:
        return self.raw

    def param(self, name: str, default: str | None = None) -> str | None:
        """A uri-parameter's value by case-insensitive name (``""`` for a flag such as ``lr``), as written.

        Names are compared unescaped: ``;%6C%72`` is the ``lr`` parameter (RFC 3261 §19.1.4: characters other than
        those in the "reserved" set are equivalent to their "%" HEX HEX encoding; RFC 4475 §3.1.1.3).
        """
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname or ("%" in key and _pct_unquote(key).lower() == lname):
                return "" if value is None else value
        return default

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        return self.has_param("lr")

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def host_unbracketed(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %HH escapes resolved (RFC 3261 §19.1.4: compare unescaped)."""
        return None if self.user is None else _pct_unquote(self.user, errors="surrogateescape")

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TelURI:
    """``tel:`` URI (RFC 3966)."""

    number: str
    params: tuple[tuple[str, str | None], ...]
    raw: str
    scheme: str = "tel"

    def __str__(self) -> str:
        return self.raw

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")


@dataclass(frozen=True, slots=True)
class AbsoluteURI:
    """Any other absoluteURI (``http:``, ``urn:``, ...): kept opaque, RFC 3261 §19.1 does not interpret it."""

    scheme: str
    rest: str
    raw: str

    def __str__(self) -> str:
        return self.raw


URI = SipURI | TelURI | AbsoluteURI


def classify_host(host: str) -> str | None:
    """``"ipv4"``, ``"ipv6"``, ``"hostname"`` or ``None`` when the host matches no form of RFC 3261 §25.1."""
    if not host:
        return None
    if host[0] == "[":
        inner = host[1:-1] if host.endswith("]") else ""
        # IPv6reference; RFC 5118 §4.10 tolerates the 3-colon form RFC 3261's ABNF admits.
        if inner and ":" in inner and all(c in "0123456789abcdefABCDEF:." for c in inner):
            return "ipv6"
        return None
    if RE_IPV4.fullmatch(host):
        return "ipv4" if all(int(p) <= 255 for p in host.split(".")) else None
    if RE_HOSTNAME.fullmatch(host):
        return "hostname"
    return None


def parse_port(text: str) -> int | None:
    if text.isdigit() and len(text) <= 5:
        port = int(text)
        if port <= 65535:
            return port
    return None


def parse_uri(text: str) -> tuple[URI | None, UriProblem | None]:
    """Parse a URI; never raises. Returns the URI (when its scheme could be read) and the first problem found."""
    colon = text.find(":")
    if colon <= 0 or not _RE_SCHEME.fullmatch(text[:colon]):
        return None, UriProblem("bad-uri", f"no URI scheme in {text[:60]!r}")
    scheme = text[:colon].lower()
    rest = text[colon + 1 :]
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        m = _RE_TEL.fullmatch(rest)
        if not m:
            return AbsoluteURI(scheme, rest, text), UriProblem("bad-uri", f"malformed tel URI {text[:60]!r}")
        params = tuple(
            (p.split("=", 1)[0], p.split("=", 1)[1] if "=" in p else None) for p in m.group(2).split(";")[1:]
        )
        return TelURI(m.group(1), params, text), None
    if not rest or any(c in rest for c in " \t<>\""):
        return AbsoluteURI(scheme, rest, text), UriProblem("bad-uri", f"malformed absoluteURI {text[:60]!r}")
    return AbsoluteURI(scheme, rest, text), UriProblem("unknown-scheme", f"scheme {scheme!r} is not sip, sips or tel")


def _parse_sip(scheme: str, rest: str, raw: str) -> tuple[URI | None, UriProblem | None]:
    problem: UriProblem | None = None
    # userinfo ends at the last "@": neither host, uri-parameters nor headers may hold a bare "@".
    at = rest.rfind("@")
    user = password = None
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        ucolon = userinfo.find(":")
        if ucolon >= 0:
            user, password = userinfo[:ucolon], userinfo[ucolon + 1 :]
        else:
            user = userinfo
        if not _RE_USER.fullmatch(user):
            problem = UriProblem("bad-uri", f"invalid user part {user[:40]!r}")
        elif password is not None and not _RE_PASSWORD.fullmatch(password):
            problem = UriProblem("bad-uri", "invalid password part")
    headers_text = ""
    q = rest.find("?")
    if q >= 0:
        rest, headers_text = rest[:q], rest[q + 1 :]
    semi = rest.find(";")
    params_text = ""
    if semi >= 0:
        rest, params_text = rest[:semi], rest[semi:]
    m = _RE_HOSTPORT.fullmatch(rest)
    host = rest
    port: int | None = None
    if m is None:
        problem = problem or UriProblem("bad-host", f"invalid host {rest[:40]!r}")
    else:
        host = m.group(1)
        if m.group(2) is not None:
            port = parse_port(m.group(2))
            if port is None:
                problem = problem or UriProblem("bad-port", f"invalid port {m.group(2)[:20]!r}")
        if classify_host(host) is None:
            problem = problem or UriProblem("bad-host", f"invalid host {host[:40]!r}")
    params: tuple[tuple[str, str | None], ...] = ()
    if params_text:
        if not _RE_URI_PARAMS.fullmatch(params_text):
            problem = problem or UriProblem("bad-uri", f"invalid uri-parameters {params_text[:40]!r}")
        params = tuple(
            (p.split("=", 1)[0], p.split("=", 1)[1] if "=" in p else None) for p in params_text[1:].split(";") if p
        )
    headers: tuple[tuple[str, str], ...] = ()
    if q >= 0 and not headers_text:
        # headers = "?" header *( "&" header ): a "?" must be followed by at least one header (§25.1)
        problem = problem or UriProblem("bad-uri", "a '?' with no URI headers after it")
    if headers_text:
        if not _RE_URI_HEADERS.fullmatch(headers_text):
            problem = problem or UriProblem("bad-uri", f"invalid URI headers {headers_text[:40]!r}")
        headers = tuple((h.split("=", 1)[0], h.split("=", 1)[1] if "=" in h else "") for h in headers_text.split("&"))
    return SipURI(scheme, user, password, host, port, params, headers, raw), problem
