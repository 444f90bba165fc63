"""sipcert's pytest plugin (entry point ``pytest11``): options, fixtures, markers, verdicts and reports.

- Options (``--sip-target``, ``--sip-profile``, ``--sip-role``, ``--sip-transport``, ``--sip-fault``,
  ``--sip-report-dir``, ``--sip-t1-ms``, ``--sip-torture-uri``) have ini twins; a bad value is a usage error that names the valid choices.
- Without a target, the built-in reference device is started in-process (per xdist worker) for the role and
  transport asked for; ``--sip-fault`` switches its faults on.
- ``sip_peer`` gives each test a scripted peer with a fresh trace. After the test body, the passive rules of the
  catalogue run on every message the device sent: a MUST violation fails the test, a SHOULD violation is a warning.
- Verdicts: pass, fail, error, ``not_applicable`` (the profile rules the test out: ``sip_requires``) and
  ``inconclusive`` (the test could not be exercised, with the reason: :func:`inconclusive`). Never a silent pass.
- ``--sip-report-dir DIR`` writes ``summary.json``, ``junit.xml`` and ``index.html`` at the end of the session
  (workers send their results to the controller under pytest-xdist).
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .profile import ROLES, TRANSPORTS, DeviceProfile, ProfileError, Target, Timers, load_profile, parse_target

__all__ = [
    "SipSettings",
    "inconclusive",
    "not_applicable",
    "resolve_settings",
    "INCONCLUSIVE",
    "NOT_APPLICABLE",
    "TORTURE_URI_CHOICES",
    "torture_uri_mode",
]

#: ``--sip-torture-uri`` values; the first is the default.
TORTURE_URI_CHOICES = ("device", "archive")

INCONCLUSIVE = "inconclusive: "
NOT_APPLICABLE = "not-applicable: "
_SETTINGS = pytest.StashKey["SipSettings | None"]()
_ITEM_FINDINGS = pytest.StashKey["dict[str, Any]"]()


def inconclusive(reason: str) -> None:
    """End the test as ``inconclusive``: it could not be exercised (say why)."""
    pytest.skip(INCONCLUSIVE + reason)


def not_applicable(reason: str) -> None:
    """End the test as ``not_applicable``: the device, by its profile, does not do what the test checks."""
    pytest.skip(NOT_APPLICABLE + reason)


# -- options -------------------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sipcert", "SIP conformance (sipcert)")
    group.addoption(
        "--sip-target",
        dest="sip_target",
        default=None,
        help="device under test as a SIP URI, e.g. sip:127.0.0.1:5070;transport=udp (sips: for TLS; "
        "transport=udp|tcp|tls|ws|wss|sctp). Overrides the profile's target. Default: the built-in device.",
    )
    group.addoption("--sip-profile", dest="sip_profile", default=None, help="device profile (YAML)")
    group.addoption("--sip-role", dest="sip_role", default=None, help=f"role under test: {', '.join(ROLES)}")
    group.addoption(
        "--sip-transport",
        dest="sip_transport",
        default=None,
        help=f"transport for the built-in device: {', '.join(TRANSPORTS[:-1])} (default udp)",
    )
    group.addoption(
        "--sip-fault",
        dest="sip_fault",
        action="append",
        default=None,
        help="switch a fault of the built-in device on (repeatable; `sipcert dut --list-faults`)",
    )
    group.addoption(
        "--sip-only-role",
        dest="sip_only_role",
        action="store_true",
        default=False,
        help="deselect test purposes written for other roles than --sip-role (sipcert run uses this)",
    )
    group.addoption(
        "--sip-select-fault",
        dest="sip_select_fault",
        default=None,
        help="keep only the test purposes whose sip_faults marker names this fault, plus those marked "
        "sip_canary (quick purposes from every area that must pass whatever fault is on)",
    )
    group.addoption("--sip-t1-ms", dest="sip_t1_ms", default=None, help="T1 in ms for the built-in device and checks")
    group.addoption("--sip-report-dir", dest="sip_report_dir", default=None, help="write summary.json, junit.xml, index.html here")
    group.addoption(
        "--sip-torture-uri",
        dest="sip_torture_uri",
        default=None,
        choices=TORTURE_URI_CHOICES,
        help="RFC 4475 purposes (TP-TOR-*): 'device' (default) puts the profile's user, host and port into a plain "
        "archive Request-URI (sip:user@example.com), so a UAS that serves only its own user reaches the step the "
        "message tortures; 'archive' sends the archive's Request-URI unchanged",
    )
    for name, help_text in (
        ("sip_target", "default for --sip-target"),
        ("sip_profile", "default for --sip-profile"),
        ("sip_role", "default for --sip-role"),
        ("sip_transport", "default for --sip-transport"),
        ("sip_report_dir", "default for --sip-report-dir"),
        ("sip_torture_uri", "default for --sip-torture-uri"),
    ):
        parser.addini(name, help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sip_purpose(id, title, *rfc, etsi=None): the test purpose id, title, RFC sections (and ETSI TP id)"
    )
    config.addinivalue_line(
        "markers",
        "sip_requires(role=None, methods=(), extensions=(), transports=()): device features the test needs; "
        "a device whose profile lacks one gets not_applicable",
    )
    config.addinivalue_line("markers", "sip_timer(seconds): the test waits for protocol timers about this long")
    config.addinivalue_line("markers", "sip_faults(*names): built-in device faults that this test purpose targets")
    config.addinivalue_line("markers", "sip_canary: a quick test purpose used to show a fault breaks nothing else")
    try:
        config.stash[_SETTINGS] = resolve_settings(config)
    except ProfileError as exc:
        raise pytest.UsageError(f"sipcert: {exc}") from None
    config.pluginmanager.register(_Collector(config), "sipcert-collector")


@dataclass
class SipSettings:
    """The resolved target, profile and role of this run; ``builtin`` when sipcert starts its own device."""

    profile: DeviceProfile
    role: str
    builtin: bool = False
    faults: tuple[str, ...] = ()
    transport: str = "udp"
    report_dir: Path | None = None
    started: float = field(default_factory=time.time)

    @property
    def target(self) -> Target:
        return self.profile.target


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name, default=None)
    if value is None:
        try:
            value = config.getini(name) or None
        except ValueError:
            value = None
    return value


def torture_uri_mode(config: pytest.Config | None) -> str:
    """``--sip-torture-uri`` (or its ini twin): how the RFC 4475 purposes address their requests. A bad ini value is
    a usage error naming the choices."""
    value = _option(config, "sip_torture_uri") if config is not None else None
    if value is None:
        return TORTURE_URI_CHOICES[0]
    if value not in TORTURE_URI_CHOICES:
        raise pytest.UsageError(f"sip_torture_uri {value!r} is not valid; choose from {', '.join(TORTURE_URI_CHOICES)}")
    return str(value)


def _builtin_profile(role: str, transport: str, t1_ms: int) -> DeviceProfile:
    roles = ("uas",) if role == "uas" else (role,)
    return DeviceProfile(
        name="sipcert built-in reference device",
        target=parse_target(f"sip:127.0.0.1:1;transport={transport}"),
        roles=roles,
        transports=(transport,),
        aor="sip:dut@127.0.0.1",
        methods=("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "PRACK", "INFO", "UPDATE", "MESSAGE", "REGISTER"),
        extensions=("100rel", "rport"),
        timers=Timers(t1_ms=t1_ms, t2_ms=max(4000, t1_ms * 8), t4_ms=5000),
        source="<built-in>",
    )


def resolve_settings(config: pytest.Config) -> SipSettings | None:
    """Combine the options and their ini twins. ``None`` when this run has nothing to do with a SIP device."""
    target_text = _option(config, "sip_target")
    profile_path = _option(config, "sip_profile")
    role = _option(config, "sip_role")
    transport = _option(config, "sip_transport")
    faults = tuple(config.getoption("sip_fault", default=None) or ())
    t1_text = _option(config, "sip_t1_ms")
    report_dir = _option(config, "sip_report_dir")
    if role is not None and role not in ROLES:
        raise ProfileError(f"--sip-role {role!r} is not valid; choose from {', '.join(ROLES)}")
    if transport is not None and transport not in TRANSPORTS:
        raise ProfileError(f"--sip-transport {transport!r} is not valid; choose from {', '.join(TRANSPORTS)}")
    t1_ms = 500
    if t1_text is not None:
        if not str(t1_text).isdigit() or int(t1_text) <= 0:
            raise ProfileError(f"--sip-t1-ms {t1_text!r}: give a positive whole number of milliseconds")
        t1_ms = int(t1_text)
    if faults:
        _validate_faults(faults)
    if (
        target_text is None
        and profile_path is None
        and role is None
        and transport is None
        and not faults
        and not report_dir
        and t1_text is None
    ):
        return None
    builtin = False
    if profile_path is not None:
        profile = load_profile(profile_path)
        if target_text is not None:
            profile = profile.with_target(parse_target(target_text))
    elif target_text is not None:
        target = parse_target(target_text)
        profile = DeviceProfile(
            name=f"device at {target.uri}",
            target=target,
            roles=(role,) if role else ("uas",),
            transports=(target.transport,),
            timers=Timers(t1_ms=t1_ms, t2_ms=max(4000, t1_ms * 8)),
            source="--sip-target",
        )
    else:
        builtin = True
        profile = _builtin_profile(role or "uas", transport or "udp", t1_ms)
    if faults and not builtin:
        raise ProfileError("--sip-fault switches faults of the built-in device; it cannot be used with a target")
    if role is None:
        role = profile.roles[0]
    elif role not in profile.roles:
        raise ProfileError(f"--sip-role {role}: the profile {profile.source} lists roles {', '.join(profile.roles)}")
    return SipSettings(
        profile=profile,
        role=role,
        builtin=builtin,
        faults=faults,
        transport=profile.target.transport,
        report_dir=Path(report_dir) if report_dir else None,
    )


def _validate_faults(faults: tuple[str, ...]) -> None:
    try:
        from .dut import FAULTS
    except ImportError:  # pragma: no cover - the device package is part of sipcert
        return
    known = sorted(FAULTS)
    bad = [f for f in faults if f not in FAULTS]
    if bad:
        raise ProfileError(f"--sip-fault {', '.join(bad)}: unknown; valid faults are {', '.join(known)}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(_SETTINGS, None)
    if settings is None:
        return []
    p = settings.profile
    t = p.timers
    where = "built-in reference device" if settings.builtin else f"{p.target.uri} ({p.name})"
    faults = f", faults: {', '.join(settings.faults)}" if settings.faults else ""
    return [
        f"sipcert: target {where}, role {settings.role}, transport {settings.transport}, "
        f"timers T1={t.t1_ms} ms T2={t.t2_ms} ms T4={t.t4_ms} ms{faults}"
    ]


# -- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sip_settings(request: pytest.FixtureRequest) -> SipSettings:
    """The run's settings; a usage error tells how to name a device when none was given."""
    settings = request.config.stash.get(_SETTINGS, None)
    if settings is None:
        settings = SipSettings(profile=_builtin_profile("uas", "udp", 500), role="uas", builtin=True)
        request.config.stash[_SETTINGS] = settings
    return settings


@pytest.fixture(scope="session")
def sip_device(sip_settings: SipSettings) -> Iterator[Target]:
    """Where the device under test listens: the given target, or the built-in device started for this session."""
    if not sip_settings.builtin:
        yield sip_settings.target
        return
    from .dut import Device

    t = sip_settings.profile.timers
    role = sip_settings.role
    aor = sip_settings.profile.aor or ""
    domain = aor.split("@", 1)[1].split(":", 1)[0].split(";", 1)[0] if "@" in aor else None
    with Device(
        role=role,
        transport=sip_settings.transport,
        faults=list(sip_settings.faults),
        t1=t.t1,
        t2=t.t2,
        t4=t.t4,
        # The registrar is responsible for the profile's domain (§10.3 step 5: others get 404), and asks for a
        # Min-Expires short enough that the expiry purposes can watch a binding lapse.
        domain=domain,
        min_expires=5,
    ) as dev:
        scheme = "sips" if sip_settings.transport in ("tls", "wss") else "sip"
        target = Target(f"{scheme}:127.0.0.1:{dev.port};transport={sip_settings.transport}", "127.0.0.1", dev.port,
                        sip_settings.transport)
        yield target


@pytest.fixture(scope="session")
def sip_profile(sip_settings: SipSettings, sip_device: Target) -> DeviceProfile:
    """The device profile, with the target where the device actually listens."""
    return sip_settings.profile.with_target(sip_device)


@pytest.fixture(scope="session")
def sip_target(sip_device: Target) -> Target:
    return sip_device


@pytest.fixture
def sip_peer(request: pytest.FixtureRequest, sip_profile: DeviceProfile, sip_settings: SipSettings) -> Iterator[Any]:
    """A scripted peer with an endpoint on the target's transport and a fresh trace for this test."""
    from .peer import Peer
    from .sip.state import TimerConfig
    from .trace import Trace

    t = sip_profile.timers
    trace = Trace(request.node.nodeid)
    peer = Peer(name="sipcert", timers=TimerConfig(t1=t.t1, t2=t.t2, t4=t.t4), trace=trace)
    transport = sip_profile.target.transport
    host = sip_profile.target.address[0]
    try:
        peer.open(transport, host="::1" if ":" in host else "127.0.0.1")
    except Exception:
        peer.close()
        raise
    request.node.stash[_ITEM_FINDINGS] = {
        "trace": trace,
        "peer": peer,
        "profile": sip_profile,
        "role": sip_settings.role,
        "explicit_warnings": [],
    }
    yield peer
    peer.close()


@dataclass(frozen=True, slots=True)
class ShouldFinding:
    """A SHOULD-level requirement a test purpose checked itself and found unmet: a warning, not a failure."""

    rule_id: str
    citation: str
    message: str
    evidence: tuple[int, ...] = ()
    level: Any = None


@pytest.fixture
def sip_should(request: pytest.FixtureRequest) -> Any:
    """``sip_should(condition, rule_id, citation, message)``: record a SHOULD-level warning when ``condition`` is
    false. RFC 2119 SHOULD requirements warn; they do not fail the test (MUST requirements are asserted)."""
    from .checks import Level

    def should(condition: bool, rule_id: str, citation: str, message: str) -> bool:
        if condition:
            return True
        info = request.node.stash.get(_ITEM_FINDINGS, None)
        finding = ShouldFinding(rule_id, citation, message, (), Level.SHOULD)
        if info is not None:
            info["explicit_warnings"].append(finding)
        request.node.warn(pytest.PytestWarning(f"{rule_id} ({citation}) SHOULD: {message}"))
        return False

    return should


def _apply_requirements(item: pytest.Item, profile: DeviceProfile, role: str) -> None:
    for mark in item.iter_markers("sip_requires"):
        need_role = mark.kwargs.get("role")
        if need_role and need_role != role and not profile.has_role(need_role):
            not_applicable(f"the device does not act as {need_role} (profile roles: {', '.join(profile.roles)})")
        if need_role and need_role != role:
            not_applicable(f"this run tests the {role} role; the test purpose is for {need_role}")
        for method in mark.kwargs.get("methods", ()):
            if not profile.supports_method(method):
                not_applicable(f"the profile does not list {method} among the device's methods")
        for ext in mark.kwargs.get("extensions", ()):
            if not profile.supports_extension(ext):
                not_applicable(f"the profile does not list the {ext} extension")
        transports = mark.kwargs.get("transports", ())
        if transports and profile.target.transport not in transports:
            not_applicable(f"needs transport {' or '.join(transports)}; the target uses {profile.target.transport}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("sip_requires") is None:
        return
    settings = item.config.stash.get(_SETTINGS, None)
    if settings is None:
        return
    _apply_requirements(item, settings.profile, settings.role)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """After the test body: run the passive rules on every message the device sent. MUST → fail; SHOULD → warn.

    They run whatever the body's outcome (a failed purpose still reports which rules the device broke), except
    after a skip; the body's own exception, if any, is re-raised afterwards."""
    failure: BaseException | None = None
    try:
        result = yield
    except pytest.skip.Exception:
        raise
    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the passive checks
        failure = exc
        result = None
    info = item.stash.get(_ITEM_FINDINGS, None)
    if info is None:
        if failure is not None:
            raise failure
        return result
    from .checks import Context, check_trace, split_by_level

    profile: DeviceProfile = info["profile"]
    peer = info["peer"]
    try:
        peer.sleep(0.05)  # let in-flight messages land in the trace
    except Exception:  # the peer may already be closed by the test
        pass
    ctx = Context(
        role=info["role"],  # type: ignore[arg-type]
        t1=profile.timers.t1,
        t2=profile.timers.t2,
        tolerance=max(0.1, profile.timers.t1 * 0.2),
    )
    findings = check_trace(info["trace"], ctx)
    violations, warnings = split_by_level(findings)
    for f in findings:
        f.record(info["trace"])
    info["violations"] = violations
    seen = {w.rule_id for w in warnings}
    info["warnings"] = [*warnings, *(w for w in info.get("explicit_warnings", []) if w.rule_id not in seen)]
    for w in warnings:
        item.warn(pytest.PytestWarning(f"{w.rule_id} ({w.citation}) SHOULD: {w.message}"))
    if failure is not None:
        raise failure
    if violations:
        lines = [f"the device broke {len(violations)} MUST rule(s):"]
        lines += [f"  {v.rule_id} ({v.citation}): {v.message}" for v in violations]
        raise AssertionError("\n".join(lines))
    return result


# -- verdicts and reports ------------------------------------------------------------------------------------------


def _purpose(item: pytest.Item) -> tuple[str, str, list[str], str | None]:
    mark = item.get_closest_marker("sip_purpose")
    if mark is None:
        return item.nodeid, item.name, [], None
    args = list(mark.args)
    tp_id = args[0] if args else item.nodeid
    title = args[1] if len(args) > 1 else item.name
    rfc = [str(a) for a in args[2:]]
    if "callspec" in item.__dict__:
        tp_id = f"{tp_id}[{item.callspec.id}]"  # type: ignore[attr-defined]
    return tp_id, title, rfc, mark.kwargs.get("etsi")


def _verdict(report: pytest.TestReport) -> tuple[str, str | None]:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(INCONCLUSIVE):
            return "inconclusive", reason[len(INCONCLUSIVE) :]
        if reason.startswith(NOT_APPLICABLE):
            return "not_applicable", reason[len(NOT_APPLICABLE) :]
        return "inconclusive", reason
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = (getattr(crash, "message", None) or report.longreprtext.strip().splitlines()[-1:] or [""])
        reason = message if isinstance(message, str) else message[0]
        if report.when != "call":
            return "error", reason[:2000]
        kinds = [str(v) for k, v in report.user_properties if k == "sipcert-failure-kind" and v]
        return (kinds[-1] if kinds else "error"), reason[:2000]
    return "pass", None


def _finding_dict(f: Any) -> dict[str, Any]:
    return {"rule": f.rule_id, "rfc": f.citation, "level": f.level.value, "message": f.message,
            "evidence": [str(e) for e in f.evidence]}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if item.get_closest_marker("sip_purpose") is None and _ITEM_FINDINGS not in item.stash:
        return report
    info = item.stash.get(_ITEM_FINDINGS, {})
    tp_id, title, rfc, etsi = _purpose(item)
    # fail: the device did not do what a requirement says (an assertion, an expectation, pytest.fail); error:
    # anything else went wrong (decided by the exception's type, never by searching the failure text).
    excinfo = call.excinfo
    failure_kind = None
    if excinfo is not None and not excinfo.errisinstance(pytest.skip.Exception):
        failure_kind = "fail" if excinfo.errisinstance((AssertionError, pytest.fail.Exception)) else "error"
    report.user_properties.append(("sipcert-failure-kind", failure_kind or ""))
    report.user_properties.append(
        ("sipcert", json.dumps({
            "id": tp_id,
            "title": title,
            "rfc": rfc,
            "etsi": etsi,
            "module": getattr(getattr(item, "module", None), "__name__", None),
            "violations": [_finding_dict(f) for f in info.get("violations", [])],
            "warnings": [_finding_dict(f) for f in info.get("warnings", [])],
            "trace": _trace_json(info.get("trace")) if call.when == "call" else None,
        }))
    )
    return report


def _trace_json(trace: Any) -> Any:
    if trace is None:
        return None
    try:
        from reports import trace_to_json

        return trace_to_json(trace)
    except Exception:  # a report must never fail the test
        return None


class _Collector:
    """Collects the verdict of every test purpose of this session (the controller's, under pytest-xdist, which
    receives the workers' reports) and writes the run's reports at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if "sipcert" not in props:
            return
        if report.when == "setup" and report.passed:
            return
        if report.when == "teardown" and not report.failed:
            return
        data = json.loads(str(props["sipcert"]))
        verdict, reason = _verdict(report)
        self.results.append(
            {**data, "verdict": verdict, "reason": reason, "duration_s": round(report.duration, 3), "when": report.when}
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput"):
            return  # an xdist worker: the controller writes the report
        settings = session.config.stash.get(_SETTINGS, None)
        if settings is None or settings.report_dir is None:
            return
        write_run_reports(settings, self.results, settings.report_dir)


def write_run_reports(settings: SipSettings, raw_results: list[dict[str, Any]], out: Path) -> Path:
    """Write summary.json, junit.xml and index.html for a run's results; returns the summary path."""
    from conformance import __version__
    from reports import RunSummary, TestResult, Violation, trace_from_json, write_html, write_junit, write_summary

    merged: dict[str, dict[str, Any]] = {}
    for r in raw_results:
        prev = merged.get(r["id"])
        # A teardown failure after a passing call turns the verdict into an error; keep the worst.
        if prev is None or _rank(r["verdict"]) > _rank(prev["verdict"]):
            if prev is not None and r.get("trace") is None:
                r = {**r, "trace": prev.get("trace"), "duration_s": prev["duration_s"]}
            merged[r["id"]] = r
    results = []
    for r in merged.values():
        trace = None
        if r.get("trace"):
            try:
                trace = trace_from_json(r["trace"])
            except Exception:
                trace = None
        results.append(
            TestResult(
                id=r["id"],
                title=r["title"],
                rfc=r["rfc"],
                verdict=r["verdict"],
                violations=[Violation(**v) for v in r["violations"]],
                warnings=[Violation(**v) for v in r["warnings"]],
                duration_s=r["duration_s"],
                trace=trace,
                etsi=r.get("etsi"),
                reason=r.get("reason"),
                module=r.get("module"),
            )
        )
    results.sort(key=lambda t: t.id)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(settings.started))
    summary = RunSummary(
        sipcert_version=__version__,
        target="built-in reference device" + (f" (faults: {', '.join(settings.faults)})" if settings.faults else "")
        if settings.builtin
        else settings.target.uri,
        role=settings.role,
        transport=settings.transport,
        started=started,
        duration_s=round(time.time() - settings.started, 3),
        results=results,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = write_summary(summary, out)
    write_junit(summary, out / "junit.xml")
    write_html(summary, out)
    return path


def _rank(verdict: str) -> int:
    return {"pass": 0, "not_applicable": 1, "inconclusive": 2, "fail": 3, "error": 4}.get(verdict, 0)


def _workers(config: pytest.Config) -> int:
    n = getattr(config.option, "numprocesses", None)
    if isinstance(n, int) and n > 0:
        return n
    workers = getattr(config, "workerinput", {}).get("workercount")
    return int(workers) if workers else 1


def _spread_timers(items: list[pytest.Item], weight: Any, workers: int) -> list[pytest.Item]:
    """Longest timers first, dealt round-robin into ``workers`` contiguous blocks: pytest-xdist hands each worker
    a block at the start, so every worker begins with one long timer instead of one worker getting them all."""
    ordered = sorted(items, key=weight)
    if workers <= 1:
        return ordered
    blocks: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for i, item in enumerate(ordered):
        blocks[i % workers].append(item)
    return [item for block in blocks for item in block]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the tests that wait for long protocol timers first, so that under xdist they overlap: a run is then
    bounded by the longest timer rather than the sum of them."""

    def weight(item: pytest.Item) -> float:
        mark = item.get_closest_marker("sip_timer")
        return -float(mark.args[0]) if mark and mark.args else 0.0

    if config.getoption("sip_only_role", default=False):
        settings = config.stash.get(_SETTINGS, None)
        role = settings.role if settings is not None else "uas"
        keep: list[pytest.Item] = []
        drop: list[pytest.Item] = []
        for item in items:
            wanted = next((m.kwargs["role"] for m in item.iter_markers("sip_requires") if m.kwargs.get("role")), None)
            (drop if wanted is not None and wanted != role else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    selected_fault = config.getoption("sip_select_fault", default=None)
    if selected_fault:
        keep, drop = [], []
        for item in items:
            names = {n for m in item.iter_markers("sip_faults") for n in m.args}
            (keep if selected_fault in names or item.get_closest_marker("sip_canary") else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    if any(item.get_closest_marker("sip_timer") for item in items):
        items[:] = _spread_timers(items, weight, _workers(config))

