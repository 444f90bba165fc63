"""Device profiles and targets: valid ones load, every invalid one is a clear error naming key and choices."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.profile import ProfileError, load_profile, parse_target, profile_from_dict

EXAMPLE = """\
name: Example phone
target: "sip:127.0.0.1:5070;transport=udp"
roles: [uas, registrar]
transports: [udp, tcp, tls]
aor: "sip:alice@127.0.0.1:5070"
methods: [INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, INFO, UPDATE, MESSAGE]
extensions: [100rel]
timers: {t1_ms: 500, t2_ms: 4000, t4_ms: 5000}
credentials: {user: alice, password: secret}
commands: {start: "phone --port 5070", stop: "pkill phone", restart: "phone --restart", call: "phone-dial {uri}"}
"""


def test_the_example_profile_of_the_issue_loads(tmp_path: Path) -> None:
    path = tmp_path / "phone.yaml"
    path.write_text(EXAMPLE)
    p = load_profile(path)
    assert p.name == "Example phone"
    assert (p.target.host, p.target.port, p.target.transport) == ("127.0.0.1", 5070, "udp")
    assert p.roles == ("uas", "registrar")
    assert p.transports == ("udp", "tcp", "tls")
    assert p.supports_method("prack") and not p.supports_method("SUBSCRIBE")
    assert p.supports_extension("100REL")
    assert (p.timers.t1, p.timers.t2, p.timers.t4) == (0.5, 4.0, 5.0)
    assert p.credentials is not None and p.credentials.user == "alice"
    assert p.commands.call == "phone-dial {uri}"
    assert p.source == str(path)


@pytest.mark.parametrize(
    ("text", "transport", "port", "host"),
    [
        ("sip:127.0.0.1:5070", "udp", 5070, "127.0.0.1"),
        ("sip:127.0.0.1:5070;transport=tcp", "tcp", 5070, "127.0.0.1"),
        ("sips:127.0.0.1:5071", "tls", 5071, "127.0.0.1"),
        ("sips:127.0.0.1:5071;transport=wss", "wss", 5071, "127.0.0.1"),
        ("sip:[::1]:5070;transport=ws", "ws", 5070, "[::1]"),
        ("sip:127.0.0.1", "udp", 5060, "127.0.0.1"),
        ("sips:127.0.0.1", "tls", 5061, "127.0.0.1"),
        ("sip:127.0.0.1:5070;transport=sctp", "sctp", 5070, "127.0.0.1"),
    ],
)
def test_targets(text: str, transport: str, port: int, host: str) -> None:
    t = parse_target(text)
    assert (t.transport, t.port, t.host) == (transport, port, host)
    assert t.address[0] == host.strip("[]")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("127.0.0.1:5070", "not a SIP or SIPS URI"),
        ("http://example.com", "not a SIP or SIPS URI"),
        ("sip:127.0.0.1:5070;transport=carrier-pigeon", "udp, tcp, tls, ws, wss, sctp"),
        ("sips:127.0.0.1:5070;transport=udp", "sips: URI needs transport=tls"),
        ("sip:127.0.0.1:99999", "not a SIP or SIPS URI"),
    ],
)
def test_bad_targets_say_why(text: str, says: str) -> None:
    with pytest.raises(ProfileError, match=says.replace(".", r"\.").replace("+", r"\+")):
        parse_target(text)


def _base(**extra: object) -> dict[str, object]:
    d: dict[str, object] = {"name": "x", "target": "sip:127.0.0.1:5070"}
    d.update(extra)
    return d


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([], "a profile is a mapping"),
        ({"target": "sip:127.0.0.1:5070"}, "name: missing"),
        ({"name": "x"}, "target: missing"),
        (_base(color="blue"), "color: unknown key; valid keys are name, target, roles"),
        (_base(roles=["uas", "gateway"]), "roles: gateway not valid; choose from uas, uac, registrar, proxy"),
        (_base(transports=["udp", "ipx"]), "transports: ipx not valid; choose from udp, tcp, tls, ws, wss, sctp"),
        (_base(transports=["tcp"]), "does not include the target's transport udp"),
        (_base(roles="uas,registrar"), "gateway|uas,registrar not valid"),
        (_base(timers={"t1_ms": 0}), r"timers.t1_ms: must be a positive whole number"),
        (_base(timers={"t3_ms": 10}), "timers.t3_ms: unknown key; valid keys are t1_ms, t2_ms, t4_ms"),
        (_base(timers={"t1_ms": 5000, "t2_ms": 4000}), "t1_ms must not exceed t2_ms"),
        (_base(credentials={"user": "a"}), "credentials: must be a mapping"),
        (_base(commands={"call": "dial"}), r"commands.call: must contain \{uri\}"),
        (_base(commands={"reboot": "x"}), "commands.reboot: unknown key; valid keys are start, stop, restart, call"),
        (_base(aor="alice@example.com"), "aor: 'alice@example.com' is not a SIP or SIPS URI"),
        (_base(methods=["INVITE", "invite"]), "methods: lists an item twice"),
        (_base(target=5070), "target: must be a SIP URI string"),
    ],
)
def test_invalid_profiles_are_clear_errors(data: object, says: str) -> None:
    with pytest.raises(ProfileError, match=says):
        profile_from_dict(data, "p.yaml")


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read the profile"):
        load_profile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("name: [unclosed\n"))
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(bad)


def test_with_transport_keeps_the_device() -> None:
    t = parse_target("sip:127.0.0.1:5070").with_transport("tls")
    assert t.uri == "sips:127.0.0.1:5070;transport=tls" and t.secure
    with pytest.raises(ProfileError, match="not one of"):
        t.with_transport("ipx")
