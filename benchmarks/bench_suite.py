"""Suite wall time: the whole UAS and registrar suites against the built-in device at T1 = 500 ms.

Prints, per role, the wall time of ``sipcert run`` next to the sum of the per-purpose durations from its
summary.json: the ratio shows how much the timer-bound purposes overlap under pytest-xdist (the target is a whole
run under 2 minutes on a 2-core machine). Run: ``python benchmarks/bench_suite.py [--workers N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_role(role: str, workers: int, t1_ms: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "conformance.cli", "run", "--role", role, "--workers", str(workers),
             "--t1-ms", str(t1_ms), "--report-dir", tmp],
            capture_output=True, text=True,
        )
        wall = time.monotonic() - started
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    durations = [r["duration_s"] for r in summary["results"]]
    return {
        "role": role,
        "exit_status": proc.returncode,
        "purposes": len(durations),
        "totals": summary["totals"],
        "wall_s": round(wall, 1),
        "sum_of_durations_s": round(sum(durations), 1),
        "longest_purpose_s": round(max(durations), 1),
        "overlap": round(sum(durations) / wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--t1-ms", type=int, default=500)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    results = [run_role(role, args.workers, args.t1_ms) for role in ("uas", "registrar")]
    total_wall = sum(r["wall_s"] for r in results)
    print(f"whole suite against the built-in device, T1 = {args.t1_ms} ms, {args.workers} workers:")
    for r in results:
        print(f"  {r['role']:<10} {r['purposes']:>4} purposes  wall {r['wall_s']:>6.1f} s  sum of durations "
              f"{r['sum_of_durations_s']:>7.1f} s  (x{r['overlap']} overlap; longest {r['longest_purpose_s']} s)  "
              f"{r['totals']}")
    print(f"  both roles: {total_wall:.1f} s wall (target < 120 s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"t1_ms": args.t1_ms, "workers": args.workers, "roles": results,
                                         "total_wall_s": total_wall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
