"""``sipcert run``: the conformance suite for one role against a device, with a summary table and reports."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .profile import TRANSPORTS

__all__ = ["add_run_parser", "run_suite", "SUITE_DIR"]

SUITE_DIR = Path(__file__).resolve().parent.parent / "testcases"
SUITE_ROLES = ("uas", "registrar")


def add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run",
        help="run the conformance suite against a device (the built-in reference device when none is named)",
        description="Run the conformance test purposes for one role against a device under test. Without --target "
        "or --profile the built-in reference device is started. Prints a summary table and writes "
        "DIR/summary.json, DIR/junit.xml and DIR/index.html. Exit status 0 only when no test purpose failed or "
        "errored; 1 otherwise; 2 on a usage error. Arguments after -- go to pytest.",
    )
    p.add_argument("--target", help="device under test as a SIP URI, e.g. sip:127.0.0.1:5070;transport=udp")
    p.add_argument("--role", choices=SUITE_ROLES, help="role to certify (default: the profile's first role, or uas)")
    p.add_argument("--profile", help="device profile (YAML)")
    p.add_argument("--transport", choices=TRANSPORTS[:-1], help="transport of the built-in device (default udp)")
    p.add_argument("--fault", action="append", help="switch on a fault of the built-in device (repeatable)")
    p.add_argument("--report-dir", default="build/sipcert-report", help="where reports go (default build/sipcert-report)")
    p.add_argument("--workers", type=int, default=None,
                   help="pytest-xdist workers; timer-bound tests overlap across them (default 8; 0 = no xdist)")
    p.add_argument("--t1-ms", type=int, default=None, help="T1 in ms for the built-in device (default 500)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then arguments for pytest")
    p.set_defaults(func=run_suite)


def _pytest_args(args: argparse.Namespace) -> list[str]:
    extra = list(args.pytest_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    cmd = [sys.executable, "-m", "pytest", str(SUITE_DIR), "-p", "no:cacheprovider", "--sip-only-role",
           f"--sip-report-dir={args.report_dir}", "-o", "addopts=", "-q", "-rN",
           "--disable-warnings", "-p", "no:benchmark"]
    if args.target:
        cmd.append(f"--sip-target={args.target}")
    if args.profile:
        cmd.append(f"--sip-profile={args.profile}")
    cmd.append(f"--sip-role={args.role or 'uas'}" if args.role or not args.profile else "")
    if args.transport:
        cmd.append(f"--sip-transport={args.transport}")
    for fault in args.fault or []:
        cmd.append(f"--sip-fault={fault}")
    if args.t1_ms is not None:
        cmd.append(f"--sip-t1-ms={args.t1_ms}")
    workers = 8 if args.workers is None else args.workers
    if workers > 0:
        cmd += ["-n", str(workers), "--dist", "worksteal"]
    return [c for c in cmd if c] + extra


def _table(summary: dict[str, Any]) -> str:
    results: list[dict[str, Any]] = summary.get("results", [])
    width = max([len(str(r["id"])) for r in results] + [10])
    lines = [f"{'test purpose':<{width}}  {'verdict':<14}  title / why"]
    for r in results:
        why = ""
        if r["violations"]:
            why = "; ".join(f"{v['rule']}" for v in r["violations"][:3])
        elif r.get("reason"):
            why = str(r["reason"])
        title = str(r["title"])
        lines.append(f"{r['id']:<{width}}  {r['verdict']:<14}  {title[:60]}" + (f"  [{why[:80]}]" if why else ""))
    totals: dict[str, int] = summary.get("totals", {})
    lines.append("")
    lines.append(
        "totals: " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in totals.items())
        + f"  ({summary.get('duration_s')} s, target {summary.get('target')}, role {summary.get('role')}, "
        f"transport {summary.get('transport')})"
    )
    return "\n".join(lines)


def run_suite(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 0:
        print("sipcert run: --workers must be 0 or more", file=sys.stderr)
        return 2
    if args.target and args.fault:
        print("sipcert run: --fault switches faults of the built-in device; it cannot be used with --target", file=sys.stderr)
        return 2
    report_dir = Path(args.report_dir)
    summary_path = report_dir / "summary.json"
    if summary_path.exists():
        summary_path.unlink()
    cmd = _pytest_args(args)
    env = dict(os.environ)
    proc = subprocess.run(cmd, env=env)
    if proc.returncode in (3, 4):  # internal error, usage error: pytest has said why
        return 2
    if not summary_path.exists():
        print(f"sipcert run: the suite wrote no summary (pytest exit status {proc.returncode})", file=sys.stderr)
        return 2 if proc.returncode == 4 else 1
    summary = json.loads(summary_path.read_text())
    print()
    print(_table(summary))
    print(f"\nreports: {summary_path}, {report_dir / 'junit.xml'}, {report_dir / 'index.html'}")
    totals = summary["totals"]
    return 0 if totals.get("fail", 0) == 0 and totals.get("error", 0) == 0 else 1
