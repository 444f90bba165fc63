"""sipcert's pytest plugin (entry point ``pytest11``): options, markers and the report header.

Options have ini twins (``sip_target``, ``sip_profile``, ``sip_role``); a bad value is a usage error that names the
valid choices. Nothing here runs unless a test asks for a ``sip_*`` fixture or the options are given.
"""

from __future__ import annotations

import pytest

from .profile import ROLES, DeviceProfile, ProfileError, Target, load_profile, parse_target

__all__ = ["pytest_addoption", "pytest_configure", "pytest_report_header", "resolve_settings", "SipSettings"]

_STASH_KEY = pytest.StashKey["SipSettings | None"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sipcert", "SIP conformance (sipcert)")
    group.addoption(
        "--sip-target",
        dest="sip_target",
        default=None,
        help="device under test as a SIP URI, e.g. sip:127.0.0.1:5070;transport=udp (sips: for TLS; "
        "transport=udp|tcp|tls|ws|wss|sctp). Overrides the profile's target.",
    )
    group.addoption("--sip-profile", dest="sip_profile", default=None, help="device profile (YAML)")
    group.addoption(
        "--sip-role",
        dest="sip_role",
        default=None,
        help=f"the role under test: {', '.join(ROLES)} (default: the profile's first role)",
    )
    parser.addini("sip_target", "default for --sip-target", default=None)
    parser.addini("sip_profile", "default for --sip-profile", default=None)
    parser.addini("sip_role", "default for --sip-role", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sip_purpose(id, title, *rfc): the test purpose id, title and RFC sections")
    config.addinivalue_line("markers", "sip_requires(*features): device features needed (roles, methods, extensions)")
    config.addinivalue_line("markers", "sip_etsi(id): the ETSI TS 102 027 test purpose that corresponds")
    try:
        config.stash[_STASH_KEY] = resolve_settings(config)
    except ProfileError as exc:
        raise pytest.UsageError(f"sipcert: {exc}") from None


class SipSettings:
    """The resolved target, profile and role for this run."""

    __slots__ = ("profile", "role")

    def __init__(self, profile: DeviceProfile, role: str) -> None:
        self.profile = profile
        self.role = role

    @property
    def target(self) -> Target:
        return self.profile.target


def _option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name, default=None)
    if value is None:
        value = config.getini(name) or None
    return value


def resolve_settings(config: pytest.Config) -> SipSettings | None:
    """Combine --sip-profile, --sip-target and --sip-role (and their ini twins); ``None`` when none is given."""
    target_text = _option(config, "sip_target")
    profile_path = _option(config, "sip_profile")
    role = _option(config, "sip_role")
    if role is not None and role not in ROLES:
        raise ProfileError(f"--sip-role {role!r} is not valid; choose from {', '.join(ROLES)}")
    if target_text is None and profile_path is None:
        return None
    if profile_path is not None:
        profile = load_profile(profile_path)
        if target_text is not None:
            profile = profile.with_target(parse_target(target_text))
    else:
        assert target_text is not None
        target = parse_target(target_text)
        profile = DeviceProfile(
            name=f"device at {target.uri}",
            target=target,
            roles=(role,) if role else ("uas",),
            transports=(target.transport,),
            source="--sip-target",
        )
    if role is None:
        role = profile.roles[0]
    elif role not in profile.roles:
        raise ProfileError(f"--sip-role {role}: the profile {profile.source} lists roles {', '.join(profile.roles)}")
    return SipSettings(profile, role)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(_STASH_KEY, None)
    if settings is None:
        return []
    p = settings.profile
    t = p.timers
    return [
        f"sipcert: target {p.target.uri} ({p.name}), role {settings.role}, transport {p.target.transport}, "
        f"timers T1={t.t1_ms} ms T2={t.t2_ms} ms T4={t.t4_ms} ms"
    ]
