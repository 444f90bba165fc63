"""Fuzzing throughput, sipcert against a plain boofuzz Session, and the time to find each robustness fault.

    python benchmarks/bench_fuzz.py [--seconds 10] [--find-limit 120]

1. The same fast UDP responder (``fuzz._responder``, in its own process, on loopback) is fuzzed for the same wall
   time by sipcert (one-step scenarios on the fast path, liveness probe after every batch of 32 cases, findings
   logged) and by a plain boofuzz ``Session`` (its default logging, a UDP connection, sipcert's OPTIONS/INVITE
   request definitions), in the same run. Prints cases/s for both and the ratio.
2. For each robustness fault of the reference device (``sipcert dut``), the wall time from the start of a campaign
   over every scenario to the first crash or hang finding (minimisation off), and the same with the campaign
   restricted to the scenario that can reach the fault.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fuzz.campaign import Campaign, CampaignConfig  # noqa: E402
from fuzz.oracles import ProcessDevice  # noqa: E402

PY = sys.executable
TOY = f"{PY} -m fuzz._responder --port 0"
DUT = f"{PY} -m conformance.cli dut --role uas --transport udp --port 0"
FAULTS = (
    ("crash-long-user", "options"),
    ("crash-many-via", "options"),
    ("hang-bad-content-type", "invite-bye"),
    ("crash-info-in-dialog", "invite-info"),
    ("hang-prack-bad-rack", "invite-prack"),
    ("crash-reinvite-sdp", "invite-reinvite"),
)

_BOOFUZZ = textwrap.dedent(
    """
    import sys, time
    from boofuzz import Session, Target
    from boofuzz.connections import UDPSocketConnection
    from fuzz.boofuzz_adapter import sip_request
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    target = Target(connection=UDPSocketConnection("127.0.0.1", port, send_timeout=1.0, recv_timeout=1.0))
    session = Session(target=target, web_port=None)
    session.connect(sip_request("OPTIONS", "127.0.0.1", port))
    session.connect(sip_request("INVITE", "127.0.0.1", port))
    start = time.monotonic()

    def stop_when_done(target=None, fuzz_data_logger=None, session=None, **kwargs):
        if time.monotonic() - start >= seconds:
            raise KeyboardInterrupt

    session._callback_monitor.on_post_send.append(stop_when_done)
    try:
        session.fuzz()
    except KeyboardInterrupt:
        pass
    elapsed = time.monotonic() - start
    sys.stderr.write(f"BOOFUZZ {session.num_cases_actually_fuzzed} {elapsed}\\n")
    """
)


def bench_sipcert(seconds: float) -> tuple[int, float, int]:
    with ProcessDevice(TOY) as dev, tempfile.TemporaryDirectory() as tmp:
        cfg = CampaignConfig(target_uri="sip:127.0.0.1;transport=udp", seed=1, cases=None, duration=seconds,
                             findings_dir=Path(tmp), scenarios=("options", "register"), batch=32, catalogue=True)
        s = asyncio.run(Campaign(cfg, dev).run())
        return s.cases, s.seconds, len(s.findings)


def bench_boofuzz(seconds: float) -> tuple[int, float]:
    with ProcessDevice(TOY) as dev, tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run([PY, "-c", _BOOFUZZ, str(dev.address[1]), str(seconds)], cwd=tmp, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=seconds + 120)
        line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("BOOFUZZ ")), None)
        if line is None:
            raise RuntimeError(f"boofuzz did not report: {proc.stderr[-2000:]}")
        _, cases, elapsed = line.split()
        return int(cases), float(elapsed)


def time_to_find(fault: str, scenario: str | None, limit: float, seed: int) -> tuple[float | None, int, str]:
    with ProcessDevice(f"{DUT} --fault {fault}") as dev, tempfile.TemporaryDirectory() as tmp:
        cfg = CampaignConfig(target_uri="sip:127.0.0.1;transport=udp", seed=seed, cases=None, duration=limit,
                             findings_dir=Path(tmp), scenarios=(scenario,) if scenario else None, batch=32,
                             minimise=False, catalogue=False, stop_on=("crash", "hang"), probe_timeout=0.25)
        start = time.monotonic()
        s = asyncio.run(Campaign(cfg, dev).run())
        found = [f for f in s.findings if f.kind in ("crash", "hang")]
        if not found:
            return None, s.cases, ""
        return time.monotonic() - start, found[0].case, f"{found[0].scenario}/{found[0].step} {found[0].exit or 'hang'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="wall time of each throughput run (10)")
    ap.add_argument("--find-limit", type=float, default=120.0, help="give up finding a fault after S seconds (120)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-find", action="store_true")
    args = ap.parse_args()

    cases, elapsed, findings = bench_sipcert(args.seconds)
    s_rate = cases / elapsed
    print(f"sipcert: {cases} cases in {elapsed:.1f} s = {s_rate:.0f} cases/s (liveness every 32 cases, "
          f"{findings} findings logged)")
    b_cases, b_elapsed = bench_boofuzz(args.seconds)
    b_rate = b_cases / b_elapsed
    print(f"boofuzz: {b_cases} cases in {b_elapsed:.1f} s = {b_rate:.0f} cases/s (plain Session, default logging)")
    print(f"ratio sipcert/boofuzz: {s_rate / b_rate:.1f}x")
    if args.skip_find:
        return 0
    print("time to find each robustness fault of the reference device (sipcert dut, UDP):")
    for fault, scenario in FAULTS:
        for label, scen in (("all scenarios", None), (scenario, scenario)):
            took, n, what = time_to_find(fault, scen, args.find_limit, args.seed)
            if took is None:
                print(f"  {fault:24} {label:16} not found in {args.find_limit:g} s ({n} cases)")
            else:
                print(f"  {fault:24} {label:16} {took:6.1f} s (case {n}: {what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
