"""Proof that the conformance suite measures what it says (issue: plugin, rule catalogue, UAS/registrar suite).

1. The whole suite passes against the built-in reference device on UDP, TCP and TLS (T1 = 100 ms so the timer
   purposes take seconds; the suite itself scales every timer from the profile's T1).
2. Every fault switch of the built-in device makes the test purposes aimed at it (``sip_faults``) fail, naming one
   of the rules the fault breaks, while a fixed set of canary purposes from every area still pass.

Each run is a ``sipcert run``-style pytest subprocess, so the plugin, the verdicts and the summary are proven too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance._coverage import Purpose, purposes
from conformance.checks import Level, get_rule
from conformance.dut import FAULTS, FaultDef

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "testcases"

#: Quick purposes from every area; none of them may fail because an unrelated fault is switched on.
CANARIES = {
    "uas": ("TP-OPT-001", "TP-REQ-001", "TP-TXN-001", "TP-INV-001", "TP-CAN-001", "TP-DLG-001"),
    "registrar": ("TP-REG-001", "TP-REG-003"),
}


def _run(args: list[str], report_dir: Path, timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], dict]:
    cmd = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-o", "addopts=", "-q",
           "--disable-warnings", f"--sip-report-dir={report_dir}", "--sip-t1-ms=100"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    summary_path = report_dir / "summary.json"
    assert summary_path.exists(), f"no summary written:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, json.loads(summary_path.read_text())


def _failures(summary: dict) -> list[str]:
    return [
        f"{r['id']}: {r['verdict']}: {r.get('reason') or ''} {[v['rule'] for v in r['violations']]}"
        for r in summary["results"]
        if r["verdict"] in ("fail", "error")
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("role", "transport"),
    [("uas", "udp"), ("uas", "tcp"), ("uas", "tls"), ("registrar", "udp"), ("registrar", "tcp")],
)
def test_whole_suite_passes_against_the_builtin_device(role: str, transport: str, tmp_path: Path) -> None:
    proc, summary = _run(
        [str(SUITE), "--sip-only-role", f"--sip-role={role}", f"--sip-transport={transport}", "-n", "4"], tmp_path
    )
    assert not _failures(summary), "\n".join(_failures(summary))
    assert summary["totals"]["pass"] >= (100 if role == "uas" else 15), summary["totals"]
    assert proc.returncode == 0, proc.stdout[-2000:]


def _aimed_at(fault: str, items: list[Purpose]) -> list[Purpose]:
    return [p for p in items if fault in p.faults]


def _nodes(items: list[Purpose]) -> list[str]:
    return sorted({f"testcases/{p.module}.py::{p.function}" for p in items})


_PURPOSES = purposes()
#: Faults that exist on one transport only.
ONLY_ON = {"contact-not-sips": "tls", "no-content-length": "tcp"}

#: Faults no purpose can be aimed at, and why.
EXEMPT = {
    # RFC 3261 §10.3 step 7: the registrar "MAY reject the registration with a response of 423": granting the
    # short expiry is allowed, so this switch breaks no requirement.
    "no-423": "423 is a MAY (RFC 3261 §10.3 step 7)",
    # The 421 path needs the device started with --require-100rel, which the plugin does not set.
    "no-require-421": "needs the device's --require-100rel option",
}

#: The faults of the roles this suite certifies (the UAC and proxy faults are for suites not written yet).
_CONFORMANCE_FAULTS = sorted(
    name
    for name, f in FAULTS.items()
    if f.kind == "conformance" and set(f.roles) & {"uas", "registrar"} and name not in EXEMPT
)


def _should_only(fault: FaultDef) -> bool:
    """A fault whose rules are all SHOULD-level: it earns warnings, not failures (RFC 2119)."""
    levels = {get_rule(r).level for r in fault.rules}
    return bool(levels) and levels <= {Level.SHOULD}


def test_every_conformance_fault_has_a_purpose_aimed_at_it() -> None:
    orphans = [f for f in _CONFORMANCE_FAULTS if not _aimed_at(f, _PURPOSES)]
    assert not orphans, f"faults no test purpose lists in sip_faults: {orphans}"


@pytest.mark.slow
@pytest.mark.parametrize("fault", _CONFORMANCE_FAULTS)
def test_fault_fails_exactly_the_purposes_aimed_at_it(fault: str, tmp_path: Path) -> None:
    """A MUST-level fault makes every purpose aimed at it fail, naming one of its rules (or its section); a
    SHOULD-level one makes them warn, naming it; the canaries of the role pass either way."""
    definition: FaultDef = FAULTS[fault]
    aimed = _aimed_at(fault, _PURPOSES)
    if not aimed:
        pytest.fail(f"no test purpose lists {fault} in its sip_faults marker")
    sections = [f"§{get_rule(r).section}" for r in definition.rules]
    if definition.section:
        sections += [definition.section, definition.section.split(" ", 2)[-1]]
    names = [*definition.rules, *sections]
    transport = ONLY_ON.get(fault, "udp")
    for role in sorted({p.role or "uas" for p in aimed}):
        in_role = [p for p in aimed if (p.role or "uas") == role]
        canaries = [p for p in _PURPOSES if p.id in CANARIES.get(role, ()) and fault not in p.faults]
        _, summary = _run(
            [*_nodes(in_role + canaries), f"--sip-role={role}", f"--sip-fault={fault}",
             f"--sip-transport={transport}", "-n", "2"],
            tmp_path / role,
        )
        results = summary["results"]
        aimed_ids = {p.id for p in in_role}
        mine = [r for r in results if r["id"].split("[")[0] in aimed_ids]

        def text(r: dict, kind: str) -> str:
            found = r["violations"] if kind == "violations" else r["warnings"]
            return (r.get("reason") or "") + " " + " ".join(f"{v['rule']} {v['rfc']} {v['message']}" for v in found)

        if not definition.rules:
            # No catalogue rule: the aimed purposes must fail, and they cite the fault's section themselves.
            by_id = {p.id: p for p in in_role}
            linked = [r for r in mine if r["verdict"] == "fail"
                      and (not definition.section or definition.section in by_id[r["id"].split("[")[0]].rfc)]
            # A SHOULD-level requirement (§9.2's 487, §13.3.1.4's BYE) warns instead, citing the section.
            linked += [r for r in mine if any(definition.section and definition.section in w["rfc"]
                                              for w in r["warnings"])]
            assert linked, (
                f"{fault} ({definition.summary}) failed or warned no aimed purpose citing {definition.section}: "
                + "; ".join(f"{r['id']}={r['verdict']}" for r in mine)
            )
        elif _should_only(definition):
            warned = [r for r in mine if any(n in text(r, "warnings") for n in names)]
            failed = [r for r in mine if r["verdict"] == "fail" and any(n in text(r, "violations") for n in names)]
            assert warned or failed, (
                f"{fault} ({definition.summary}) drew no warning or failure naming {names}: "
                + "; ".join(f"{r['id']}={r['verdict']} warnings={[w['rule'] for w in r['warnings']]}" for r in mine)
            )
        else:
            caught = {r["id"].split("[")[0] for r in mine if r["verdict"] == "fail"}
            not_caught = sorted(aimed_ids - caught)
            assert not not_caught, (
                f"{fault} ({definition.summary}) did not make these purposes fail: {not_caught}; verdicts: "
                + "; ".join(f"{r['id']}={r['verdict']}" for r in mine)
            )
            named = [r for r in mine if r["verdict"] == "fail" and any(n in text(r, "violations") for n in names)]
            assert named, (
                f"{fault}: the failing purposes name none of {names}: "
                + "; ".join(f"{r['id']}: {r.get('reason')}" for r in mine)
            )
        # A fault that touches every response (a missing To tag) fails the canaries too, but only through its own
        # rules: a canary may pass, or fail with violations of the fault's rules and nothing else.
        broken = []
        for r in results:
            # inconclusive: the fault stopped the exchange the canary needs from even starting; not a false failure
            if r["id"] not in CANARIES.get(role, ()) or r["id"] in aimed_ids or r["verdict"] in ("pass", "inconclusive"):
                continue
            rules = {v["rule"] for v in r["violations"]}
            own = r["verdict"] in ("fail", "error", "inconclusive") and bool(rules & set(definition.rules))
            if not own:
                broken.append(f"{r['id']}={r['verdict']} {r.get('reason')} {[v['rule'] for v in r['violations']]}")
        assert not broken, f"{fault} also broke unrelated purposes: {broken}"
