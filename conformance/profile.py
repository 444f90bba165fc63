"""Device profiles and targets.

A profile (YAML) says what a device under test is and can do, so that a test purpose the device rules out is
``not-applicable`` and one that cannot be exercised is ``inconclusive`` with the reason, never a silent pass::

    name: Example phone
    target: "sip:127.0.0.1:5070;transport=udp"
    roles: [uas, registrar]
    transports: [udp, tcp, tls]
    aor: "sip:alice@127.0.0.1:5070"
    methods: [INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, INFO, UPDATE, MESSAGE]
    extensions: [100rel]
    timers: {t1_ms: 500, t2_ms: 4000, t4_ms: 5000}
    credentials: {user: alice, password: secret}
    commands: {start: "...", stop: "...", restart: "...", call: "... {uri} ..."}

Every problem is reported with the file, the key and the valid choices (:class:`ProfileError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .sip import SipURI, parse_uri

__all__ = [
    "ROLES",
    "TRANSPORTS",
    "DEFAULT_METHODS",
    "ProfileError",
    "Target",
    "Timers",
    "Credentials",
    "Commands",
    "DeviceProfile",
    "parse_target",
    "load_profile",
    "profile_from_dict",
]

ROLES = ("uas", "uac", "registrar", "proxy")
TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss", "sctp")
DEFAULT_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER")
_KEYS = ("name", "target", "roles", "transports", "aor", "methods", "extensions", "timers", "credentials", "commands")
_TIMER_KEYS = ("t1_ms", "t2_ms", "t4_ms")
_COMMAND_KEYS = ("start", "stop", "restart", "call")


class ProfileError(ValueError):
    """A profile or target that cannot be used; the message names the key and the valid choices."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the device listens: from a SIP URI such as ``sip:127.0.0.1:5070;transport=tcp``."""

    uri: str
    host: str
    port: int
    transport: str

    @property
    def address(self) -> tuple[str, int]:
        return (self.host[1:-1] if self.host.startswith("[") else self.host, self.port)

    @property
    def secure(self) -> bool:
        return self.transport in ("tls", "wss")

    def with_transport(self, transport: str) -> Target:
        """The same device on another transport (same host and port, TLS on the port the profile gives)."""
        if transport not in TRANSPORTS:
            raise ProfileError(f"transport {transport!r} is not one of {', '.join(TRANSPORTS)}")
        scheme = "sips" if transport in ("tls", "wss") else "sip"
        return Target(f"{scheme}:{self.host}:{self.port};transport={transport}", self.host, self.port, transport)

    def __str__(self) -> str:
        return self.uri


def parse_target(text: str) -> Target:
    """A target from a SIP or SIPS URI. ``sips:`` means TLS unless ``transport=wss``; the port defaults to 5060
    (5061 for TLS) as RFC 3261 §19.1.2 says, but sipcert never picks those defaults for its own sockets."""
    uri, problem = parse_uri(text.strip())
    if not isinstance(uri, SipURI) or (problem is not None and problem.code != "unknown-scheme"):
        detail = f" ({problem.detail})" if problem else ""
        raise ProfileError(f"target {text!r} is not a SIP or SIPS URI such as sip:127.0.0.1:5070;transport=udp{detail}")
    transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
    if transport not in TRANSPORTS:
        raise ProfileError(f"target {text!r}: transport={transport} is not one of {', '.join(TRANSPORTS)}")
    if uri.scheme == "sips" and transport not in ("tls", "wss"):
        raise ProfileError(f"target {text!r}: a sips: URI needs transport=tls or transport=wss")
    port = uri.port if uri.port is not None else (5061 if transport in ("tls", "wss") else 5060)
    return Target(text.strip(), uri.host, port, transport)


@dataclass(frozen=True, slots=True)
class Timers:
    """The device's timer values (RFC 3261 §17.1.1.1, §17.1.2.2), in milliseconds."""

    t1_ms: int = 500
    t2_ms: int = 4000
    t4_ms: int = 5000

    @property
    def t1(self) -> float:
        return self.t1_ms / 1000

    @property
    def t2(self) -> float:
        return self.t2_ms / 1000

    @property
    def t4(self) -> float:
        return self.t4_ms / 1000


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Commands:
    """Shell commands that control the device; ``call`` has a ``{uri}`` placeholder for the URI to call."""

    start: str | None = None
    stop: str | None = None
    restart: str | None = None
    call: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    name: str
    target: Target
    roles: tuple[str, ...] = ("uas",)
    transports: tuple[str, ...] = ("udp",)
    aor: str | None = None
    methods: tuple[str, ...] = DEFAULT_METHODS
    extensions: tuple[str, ...] = ()
    timers: Timers = field(default_factory=Timers)
    credentials: Credentials | None = None
    commands: Commands = field(default_factory=Commands)
    source: str = "<built-in>"

    def supports_method(self, method: str) -> bool:
        return method.upper() in self.methods

    def supports_extension(self, tag: str) -> bool:
        return tag.lower() in (e.lower() for e in self.extensions)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def with_target(self, target: Target) -> DeviceProfile:
        return replace(self, target=target)


def _err(source: str, key: str, problem: str) -> ProfileError:
    return ProfileError(f"{source}: {key}: {problem}")


def _str_list(source: str, key: str, value: Any, valid: tuple[str, ...] | None = None, upper: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _err(source, key, "must be a list of strings")
    items = tuple(v.upper() if upper else v.lower() for v in value)
    if valid is not None:
        bad = [v for v in items if v not in valid]
        if bad:
            raise _err(source, key, f"{', '.join(bad)} not valid; choose from {', '.join(valid)}")
    if len(set(items)) != len(items):
        raise _err(source, key, "lists an item twice")
    return items


def profile_from_dict(data: Any, source: str = "<profile>") -> DeviceProfile:
    """Validate a profile read from YAML (or built in code)."""
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile is a mapping with keys {', '.join(_KEYS)}")
    unknown = sorted(set(map(str, data)) - set(_KEYS))
    if unknown:
        raise _err(source, unknown[0], f"unknown key; valid keys are {', '.join(_KEYS)}")
    for required in ("name", "target"):
        if required not in data:
            raise _err(source, required, "missing (required)")
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise _err(source, "name", "must be a non-empty string")
    if not isinstance(data["target"], str):
        raise _err(source, "target", "must be a SIP URI string such as sip:127.0.0.1:5070;transport=udp")
    try:
        target = parse_target(data["target"])
    except ProfileError as exc:
        raise _err(source, "target", str(exc)) from None
    roles = _str_list(source, "roles", data.get("roles", ["uas"]), ROLES)
    transports = _str_list(source, "transports", data.get("transports", [target.transport]), TRANSPORTS)
    if target.transport not in transports:
        raise _err(source, "transports", f"does not include the target's transport {target.transport}")
    aor = data.get("aor")
    if aor is not None:
        uri, problem = parse_uri(aor) if isinstance(aor, str) else (None, None)
        if not isinstance(uri, SipURI) or problem is not None:
            raise _err(source, "aor", f"{aor!r} is not a SIP or SIPS URI")
    methods = _str_list(source, "methods", data.get("methods", list(DEFAULT_METHODS)), upper=True)
    extensions = _str_list(source, "extensions", data.get("extensions", []))
    timers_data = data.get("timers", {}) or {}
    if not isinstance(timers_data, dict):
        raise _err(source, "timers", f"must be a mapping with keys {', '.join(_TIMER_KEYS)}")
    for key, value in timers_data.items():
        if key not in _TIMER_KEYS:
            raise _err(source, f"timers.{key}", f"unknown key; valid keys are {', '.join(_TIMER_KEYS)}")
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _err(source, f"timers.{key}", f"must be a positive whole number of milliseconds, not {value!r}")
    timers = Timers(**timers_data)
    if not timers.t1_ms <= timers.t2_ms:
        raise _err(source, "timers", "t1_ms must not exceed t2_ms (RFC 3261 §17.1.2.2)")
    credentials = None
    if data.get("credentials") is not None:
        c = data["credentials"]
        if not isinstance(c, dict) or set(c) != {"user", "password"} or not all(isinstance(v, str) for v in c.values()):
            raise _err(source, "credentials", "must be a mapping with string keys user and password")
        credentials = Credentials(c["user"], c["password"])
    cmd_data = data.get("commands", {}) or {}
    if not isinstance(cmd_data, dict):
        raise _err(source, "commands", f"must be a mapping with keys {', '.join(_COMMAND_KEYS)}")
    for key, value in cmd_data.items():
        if key not in _COMMAND_KEYS:
            raise _err(source, f"commands.{key}", f"unknown key; valid keys are {', '.join(_COMMAND_KEYS)}")
        if not isinstance(value, str) or not value.strip():
            raise _err(source, f"commands.{key}", "must be a non-empty shell command string")
    if "call" in cmd_data and "{uri}" not in cmd_data["call"]:
        raise _err(source, "commands.call", "must contain {uri}, the URI the device is to call")
    commands = Commands(**cmd_data)
    return DeviceProfile(
        name=name.strip(),
        target=target,
        roles=roles,
        transports=transports,
        aor=aor,
        methods=methods,
        extensions=extensions,
        timers=timers,
        credentials=credentials,
        commands=commands,
        source=source,
    )


def load_profile(path: str | Path) -> DeviceProfile:
    """Read and validate a YAML profile; every problem is a :class:`ProfileError` naming the file and key."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read the profile: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{p}: not valid YAML: {exc}") from None
    return profile_from_dict(data, str(p))
