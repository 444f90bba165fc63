"""The conformance suite (``testcases/``) against independent implementations, compared with committed baselines.

Each device is started on a free loopback port (``conformance.devices``), the suite is run against it exactly as a
user would (``sipcert run --profile ... --target ... --role ...``, 8 xdist workers, T1 = 500 ms from the device's
profile in ``conformance/devices/profiles/``), and the run's ``summary.json`` is compared with
``tests/data/baselines/<device>-<role>.json`` by :func:`reports.compare`: any verdict that changed, any purpose
added or gone, any MUST violation or SHOULD warning rule id that appeared or disappeared fails the test, and the
failure lists every difference. Messages, evidence and durations are not compared (tags, ports and timing change
from run to run). The only tolerance: the purposes in ``RACES``, whose outcome was seen to depend on a race on
loopback, may take any of the outcomes seen (they are findings, listed in the README).

=====================  =========  ===========  ============================================
baseline               program    role         device
=====================  =========  ===========  ============================================
kamailio-registrar     kamailio   registrar    Kamailio 5.6 with the kept ``kamailio.cfg``
sipp-uas               sipp       uas          SIPp 3.6 built-in ``uas`` scenario with ``-aa``
baresip-uas            baresip    uas          baresip 1.0 auto-answering, account ``baresip``
=====================  =========  ===========  ============================================

Every non-pass purpose of every baseline is explained in ``tests/data/baselines/README.md`` and
``docs/independent-devices.md`` (the RFC sentence, the evidence from the trace, and whether it is the device's
deviation, a purpose the profile rules out, or a sipcert problem). One run takes about 20 s (Kamailio), 80 s (SIPp)
and 60 s (baresip) on a 2-CPU machine, so the three take about 2.5 minutes: the purposes that wait 64*T1 = 32 s
overlap across the workers.

Regenerate the baselines after a deliberate change (then explain every new non-pass purpose in the README)::

    python tests/test_suite_independent.py --update                 # all three
    python tests/test_suite_independent.py --update sipp-uas        # one

A program that is not installed skips its test and says how to install it (``sh .ci/install-debian.sh``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.devices import CONFIG_DIR, Baresip, Device, Kamailio, SippUas, requires
from reports import RunSummary, TestResult, compare, load_summary

pytestmark = pytest.mark.interop

BASELINES = Path(__file__).resolve().parent / "data" / "baselines"
PROFILES = CONFIG_DIR.parent / "profiles"
#: xdist workers: enough that the purposes waiting 64*T1 (32 s) run side by side.
WORKERS = 8
#: Bound on one whole run of the suite (the longest run here takes under two minutes).
RUN_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class IndependentDevice:
    """One independent implementation in one role: how to start it and which profile describes it."""

    name: str  # the baseline's file stem, <device>-<role>
    program: str  # the conformance.devices requirement name (for the skip reason)
    role: str
    profile: str  # file name in conformance/devices/profiles/
    start: Callable[[], Device]

    @property
    def baseline(self) -> Path:
        return BASELINES / f"{self.name}.json"

    @property
    def profile_path(self) -> Path:
        return PROFILES / self.profile


DEVICES: tuple[IndependentDevice, ...] = (
    IndependentDevice(
        "kamailio-registrar", "kamailio", "registrar", "kamailio-registrar.yaml", lambda: Kamailio(transports=("udp",))
    ),
    IndependentDevice("sipp-uas", "sipp", "uas", "sipp-uas.yaml", lambda: SippUas(transport="u1")),
    IndependentDevice("baresip-uas", "baresip", "uas", "baresip-uas.yaml", lambda: Baresip(user="baresip")),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A purpose's result as :func:`reports.compare` sees it: the verdict and the rule ids of its findings."""

    verdict: str
    violations: frozenset[str] = frozenset()
    warnings: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Race:
    """A purpose whose outcome against this device depends on which of two messages wins a race on loopback.

    ``outcomes`` are the (verdict, violation rule ids) pairs seen in repeated runs; ``warnings`` the SHOULD rule ids
    that came with them (whether a late 2xx falls inside the purpose's trace varies too). Reported as a finding
    (tests/data/baselines/README.md, "Unstable purposes"); tolerated here only within these sets, so any other change
    of the purpose still fails the test."""

    purpose: str
    outcomes: tuple[tuple[str, frozenset[str]], ...]
    warnings: frozenset[str]
    why: str

    def admits(self, outcome: Outcome) -> bool:
        return (outcome.verdict, outcome.violations) in self.outcomes and outcome.warnings <= self.warnings


_TO_TAG = "3261-8.2.6.2-to-tag"
_RECEIVED = "3261-18.2.1-received"
_NO_ALLOW = "3261-13.3.1.4-allow-supported-in-2xx"
_CANCEL = frozenset({"3261-9.2-cancel-481", "3261-9.2-cancel-487", "3261-9.2-cancel-to-tag", _NO_ALLOW})
_AT_ONCE = (
    "SIPp's uas scenario sends 180 and 200 back to back; the purpose needs the INVITE still pending when its next "
    "request arrives: inconclusive (rightly) when the 200 arrives first, SIPp's deviation when the request does"
)
_NONE: frozenset[str] = frozenset()
_STOPPED = frozenset({"3261-13.3.1.4-2xx-retransmit"})
_DROPS_CALL = (
    "SIPp drops the call when a second INVITE with the same Call-ID arrives; whether its 200 to the first INVITE had been retransmitted "
    "before that, and so stopped before any ACK (3261-13.3.1.4-2xx-retransmit), depends on timing"
)

#: Purposes seen with more than one outcome in repeated runs (see the README for the runs and their outcomes).
RACES: dict[str, tuple[Race, ...]] = {
    "sipp-uas": (
        Race("TP-CAN-001", (("inconclusive", _NONE), ("fail", frozenset({_TO_TAG}))), _CANCEL, _AT_ONCE),
        Race("TP-CAN-006", (("inconclusive", _NONE), ("fail", frozenset({_TO_TAG}))), _CANCEL, _AT_ONCE),
        Race("TP-CAN-007", (("inconclusive", _NONE), ("fail", frozenset({_RECEIVED, _TO_TAG}))), _CANCEL, _AT_ONCE),
        Race("TP-CAN-008", (("inconclusive", _NONE), ("fail", frozenset({_TO_TAG}))), _CANCEL, _AT_ONCE),
        Race("TP-DLG-020", (("inconclusive", _NONE), ("fail", _NONE)), frozenset({_NO_ALLOW}), _AT_ONCE),
        Race("TP-DLG-013", (("fail", _NONE), ("fail", _STOPPED), ("inconclusive", _NONE), ("inconclusive", _STOPPED)),
             frozenset({_NO_ALLOW}),
             _DROPS_CALL + "; when SIPp's 200 to the first INVITE arrives before the second leaves, RFC 3261 §14.2's "
             "case does not arise (inconclusive)"),
        Race("TP-TXN-005", (("fail", _NONE), ("fail", _STOPPED)), frozenset({_NO_ALLOW}), _DROPS_CALL),
        Race("TP-REQ-032", (("fail", _NONE), ("fail", _STOPPED)), frozenset({_NO_ALLOW}), _DROPS_CALL),
        Race("TP-INV-020", (("inconclusive", _NONE), ("pass", _NONE)), frozenset({_NO_ALLOW}),
             "the purpose resends the INVITE as soon as the 180 arrives: when SIPp's 200 had arrived before the "
             "retransmission left, the transaction was no longer in Proceeding (inconclusive, since the S5 fix); "
             "when the retransmission wins, SIPp resends the 180 (pass)"),
    ),
}  # fmt: skip


def outcome_of(result: TestResult) -> Outcome:
    return Outcome(
        result.verdict, frozenset(v.rule for v in result.violations), frozenset(w.rule for w in result.warnings)
    )


def differences(device: str, baseline: RunSummary, current: RunSummary) -> list[str]:
    """:func:`reports.compare`, less the differences of a known race whose outcome now is one of those seen."""
    races = {r.purpose: r for r in RACES.get(device, ())}
    now = {r.id: r for r in current.results}
    diffs = []
    for diff in compare(baseline, current):
        purpose = diff.split(":", 1)[0]
        race = races.get(purpose)
        if race is not None and purpose in now and race.admits(outcome_of(now[purpose])):
            continue
        diffs.append(diff)
    return diffs


@dataclass(frozen=True, slots=True)
class SuiteRun:
    """What one run of the suite against a device left: the summary, how long it took, what it printed."""

    summary: Path
    seconds: float
    returncode: int
    output: str
    device_alive: bool
    device_log: str


def run_suite(device: IndependentDevice, report_dir: Path, *, workers: int = WORKERS) -> SuiteRun:
    """Start ``device``, run ``sipcert run`` against it (a subprocess, reports into ``report_dir``), stop it."""
    with device.start() as dev:
        target = f"sip:127.0.0.1:{dev.port};transport=udp"
        cmd = [sys.executable, "-m", "conformance.cli", "run", "--profile", str(device.profile_path),
               "--target", target, "--role", device.role, "--report-dir", str(report_dir),
               "--workers", str(workers)]  # fmt: skip
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        alive = dev.running
        log = dev.log_tail(20)
    return SuiteRun(report_dir / "summary.json", seconds, proc.returncode, proc.stdout + proc.stderr, alive, log)


def baseline_document(summary: Path) -> dict:
    """The committed form of a run's summary: schema-valid ``summary.json`` without the traces."""
    doc = json.loads(summary.read_text(encoding="utf-8"))
    for result in doc["results"]:
        result.pop("trace", None)
    return doc


def _params() -> list:
    return [pytest.param(d, id=d.name, marks=requires(d.program)) for d in DEVICES]


@pytest.mark.slow
@pytest.mark.parametrize("device", _params())
def test_suite_verdicts_match_committed_baseline(device: IndependentDevice, tmp_path: Path) -> None:
    """The suite's verdicts and rule ids against ``device`` are those of its committed baseline."""
    assert device.baseline.exists(), (
        f"no baseline {device.baseline}: run `python tests/test_suite_independent.py --update {device.name}` and "
        "explain every non-pass purpose in tests/data/baselines/README.md"
    )
    run = run_suite(device, tmp_path / "report")
    print(f"{device.name}: suite ran in {run.seconds:.1f} s (sipcert run exit status {run.returncode})")
    assert run.summary.exists(), (
        f"the run against {device.name} wrote no summary (exit status {run.returncode}); its output ends:\n"
        + run.output[-4000:]
    )
    assert run.device_alive, (
        f"{device.name} was no longer running at the end of the suite; its log ends:\n{run.device_log}"
    )
    current = load_summary(run.summary)
    baseline = load_summary(device.baseline)
    assert current.role == baseline.role == device.role, (current.role, baseline.role)
    diffs = differences(device.name, baseline, current)
    assert not diffs, (
        f"{len(diffs)} difference(s) from the committed baseline {device.baseline.name} (verdicts now: "
        f"{dict(current.totals)}; then: {dict(baseline.totals)}):\n  "
        + "\n  ".join(diffs)
        + f"\nThe run's reports (summary.json with traces, index.html) are in {run.summary.parent}"
    )


def test_known_races_name_baseline_purposes_and_outcomes() -> None:
    """Every tolerated race names a purpose of its device's baseline, and the baseline's outcome is one of those
    listed (no device needed)."""
    for name, races in RACES.items():
        baseline = load_summary(BASELINES / f"{name}.json")
        results = {r.id: r for r in baseline.results}
        for race in races:
            assert race.purpose in results, f"{name}: {race.purpose} is not in the baseline"
            assert race.admits(outcome_of(results[race.purpose])), (
                f"{name}: the baseline's {race.purpose} {outcome_of(results[race.purpose])} is not a listed outcome"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """``--update [NAME ...]``: run the suite against the named devices (default all) and write their baselines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--update", action="store_true", required=True, help="write tests/data/baselines/*.json")
    parser.add_argument(
        "names", nargs="*", help=f"devices to update (default all): {', '.join(d.name for d in DEVICES)}"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep each run's full report under this directory")
    args = parser.parse_args(argv)
    known = {d.name: d for d in DEVICES}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown device(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    import tempfile

    BASELINES.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(known):
        device = known[name]
        with tempfile.TemporaryDirectory(prefix=f"sipcert-{name}-") as tmp:
            report = (args.keep / name) if args.keep else Path(tmp) / "report"
            run = run_suite(device, report)
            if not run.summary.exists():
                print(run.output[-4000:], file=sys.stderr)
                print(f"{name}: no summary written (exit status {run.returncode})", file=sys.stderr)
                return 1
            doc = baseline_document(run.summary)
            device.baseline.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            print(
                f"{name}: {doc['totals']} in {run.seconds:.1f} s (device alive at the end: {run.device_alive}) "
                f"-> {device.baseline}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
