"""Calls per second: the sipcert peer against SIPp's ``uas`` scenario, next to SIPp's own ``uac``, in one run.

A call is INVITE, 180, 200, ACK, BYE, 200 (SIPp's built-in uas sends no 100), with the peer's trace on: every
message is recorded with its time, direction, transport, addresses and exact bytes; the parsed view and the complete
defect list are views of those bytes, made when read (``conformance.trace.MessageEntry``). After each sipcert run
the benchmark reads every entry's defect list back and reports how long that took (``trace_read_s``), outside the
calls-per-second figure. Measured over UDP on loopback:

- ``sipp-uac``: SIPp's built-in ``uac`` scenario at rising rates; its highest sustained rate counts;
- ``sipcert-1``: one Python process driving calls with the async peer (``conformance.peer.run_calls``), on
  asyncio's default event loop, and again on uvloop when it is installed (``sipcert-1-uvloop``);
- ``sipcert-N``: N processes (default: the number of cores), each with its own peer, started together (uvloop when
  installed).

Each contender gets its own fresh SIPp ``uas`` so none inherits another's load. Run:
``python benchmarks/bench_calls.py [--calls N] [--processes P] [--concurrency C] [--json FILE]``.
The machine has as many cores as it has: SIPp's ``uas`` shares them with the contender.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

from conformance.devices import SippUac, SippUas
from conformance.peer import AsyncPeer, run_calls


async def _drive(port: int, calls: int, concurrency: int, transport: str) -> tuple[int, float, float]:
    peer = AsyncPeer(name="bench")
    await peer.open(transport)
    results, wall = await run_calls(
        peer, f"sip:service@127.0.0.1:{port}", ("127.0.0.1", port), calls=calls, concurrency=concurrency
    )
    await peer.close()
    started = time.perf_counter()
    defects = sum(len(e.defects) for e in peer.trace.messages())
    read = time.perf_counter() - started
    ok = sum(r.ok for r in results)
    if len(peer.trace.messages()) < 6 * ok:
        raise RuntimeError(f"the trace lacks messages: {len(peer.trace.messages())} for {ok} calls")
    if defects:
        print(f"note: {defects} defects in the trace (SIPp's messages are expected to have none)", file=sys.stderr)
    return ok, wall, read


def _run(coro: Any, loop: str) -> Any:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _worker(args: tuple[int, int, int, str, str, Any]) -> tuple[int, float, float, float]:
    port, calls, concurrency, transport, loop, barrier = args
    barrier.wait()
    start = time.time()
    ok, wall, _ = _run(_drive(port, calls, concurrency, transport), loop)
    return ok, wall, start, time.time()


def sipcert_rate(calls: int, concurrency: int, processes: int, transport: str, loop: str) -> dict[str, Any]:
    with SippUas(transport="u1" if transport == "udp" else "t1") as uas:
        if processes == 1:
            ok, wall, read = _run(_drive(uas.port, calls, concurrency, transport), loop)
            return {"calls": calls, "ok": ok, "wall_s": round(wall, 3), "calls_per_s": round(ok / wall, 1),
                    "loop": loop, "trace_read_s": round(read, 3)}
        per = calls // processes
        ctx = multiprocessing.get_context("fork")
        with ctx.Manager() as manager:
            barrier = manager.Barrier(processes)
            with ctx.Pool(processes) as pool:
                out = pool.map(_worker, [(uas.port, per, concurrency, transport, loop, barrier)] * processes)
        ok = sum(o[0] for o in out)
        wall = max(o[3] for o in out) - min(o[2] for o in out)
        return {"calls": per * processes, "ok": ok, "wall_s": round(wall, 3), "calls_per_s": round(ok / wall, 1),
                "loop": loop}


def sipp_rate(transport: str, seconds: float = 3.0) -> dict[str, Any]:
    """SIPp's highest sustained rate: rising asked rates, each for ``seconds``, until fewer than 99 % of the calls
    succeed, or SIPp falls below 90 % of the asked rate without doing better than before; the best achieved rate with
    >= 99 % success counts.

    The achieved rate is the successful calls over the time until the last of them completed, read from SIPp's own
    statistics (sampled every 0.1 s): SIPp's start-up and the 5 s wait for a call whose packet was lost are not
    SIPp's throughput (sipcert's figure likewise counts from its first call to its last)."""
    t = "u1" if transport == "udp" else "t1"
    best: dict[str, Any] = {"calls_per_s": 0.0}
    tried = []
    for rate in (500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000):
        calls = int(rate * seconds)
        with SippUas(transport=t) as uas:
            result = SippUac(uas.uri, transport=t, calls=calls, rate=float(rate), timeout=60.0 + seconds * 4).run()
        wall = result.completed_in or result.elapsed or 1e-9
        achieved = result.successful / wall
        tried.append({"asked": rate, "calls": calls, "ok": result.successful, "calls_per_s": round(achieved, 1),
                      "completed_in_s": round(wall, 3), "process_elapsed_s": round(result.elapsed, 3)})
        if result.successful < 0.99 * calls:
            break
        improved = achieved > best["calls_per_s"]
        if improved:
            best = {"calls": calls, "ok": result.successful, "wall_s": round(wall, 3), "calls_per_s": round(achieved, 1),
                    "asked_rate": rate}
        if achieved < 0.9 * rate and not improved:
            break  # SIPp no longer keeps up, and asking for more gave no more
    best["search"] = tried
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=6000, help="calls per contender (default 6000)")
    ap.add_argument("--concurrency", type=int, default=200, help="calls in flight per sipcert process (default 200)")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="processes for sipcert-N")
    ap.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    results: dict[str, Any] = {"transport": args.transport, "cores": os.cpu_count()}
    results["sipp-uac"] = sipp_rate(args.transport)
    names = ["sipp-uac", "sipcert-1"]
    results["sipcert-1"] = sipcert_rate(args.calls, args.concurrency, 1, args.transport, "asyncio")
    fast = "uvloop" if have_uvloop() else "asyncio"
    if fast == "uvloop":
        names.append("sipcert-1-uvloop")
        results["sipcert-1-uvloop"] = sipcert_rate(args.calls, args.concurrency, 1, args.transport, "uvloop")
    multi = f"sipcert-{args.processes}"
    names.append(multi)
    results[multi] = sipcert_rate(args.calls, args.concurrency, args.processes, args.transport, fast)
    base = results["sipp-uac"]["calls_per_s"] or 1e-9
    print(f"calls per second over {args.transport} on loopback ({results['cores']} cores), trace on:")
    for name in names:
        r = results[name]
        ratio = r["calls_per_s"] / base
        results[name]["ratio_vs_sipp"] = round(ratio, 3)
        extra = ""
        if name != "sipp-uac":
            extra = f"   {ratio:.2f} x SIPp  [{r['loop']}]"
            if "trace_read_s" in r:
                extra += f"  (reading every defect list back afterwards: {r['trace_read_s']} s)"
        print(f"  {name:<17} {r['calls_per_s']:>9.1f} calls/s  ({r['ok']}/{r['calls']} ok in {r['wall_s']} s){extra}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
