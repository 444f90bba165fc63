"""Parse benchmark: sipcert against the PyPI package ``sipmessage``, side by side in one process.

Work per message, for both: parse the bytes, then read the top Via branch, the From and To tags, the CSeq number
and the Call-ID. sipcert is measured twice: as the issue states the work (the defect list is kept and complete
whenever read, but header grammars nobody reads are checked lazily), and with ``len(result.defects)`` forced, so
every header of every message is validated. Both are measured again with the pure-Python parser (the fallback when
the C accelerator is not built, or ``SIPCERT_PURE_PYTHON=1``); the report says which implementation each runs.

Corpora:
- ``invite``: 2,000 distinct typical INVITEs with an SDP body (fresh branch, tags, Call-ID and CSeq each), so no
  per-value cache can help either side;
- ``rfc4475``: the 50 RFC 4475 torture messages, round-robin (sipmessage raises on some: those count as done, and
  the number it failed on is reported).

Run: ``python benchmarks/bench_parse.py [--seconds S] [--rounds N] [--json FILE]``. Rounds alternate between the
contenders; each figure is the best round (least disturbed by the other core's load).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance.sip import SPEEDUPS, ParseResult, _parser, parse

ROOT = Path(__file__).resolve().parent.parent
TORTURE = ROOT / "tests" / "data" / "torture" / "rfc4475"

SDP = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\ns=-\r\n"
    "c=IN IP4 pc33.atlanta.example.com\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def typical_invites(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        branch = f"z9hG4bK{rng.getrandbits(64):016x}"
        ftag = f"{rng.getrandbits(48):012x}"
        callid = f"{rng.getrandbits(96):024x}@pc33.atlanta.example.com"
        msg = (
            "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            "To: Bob <sip:bob@biloxi.example.com>\r\n"
            f"From: Alice <sip:alice@atlanta.example.com>;tag={ftag}\r\n"
            f"Call-ID: {callid}\r\n"
            f"CSeq: {1 + i} INVITE\r\n"
            "Contact: <sip:alice@pc33.atlanta.example.com:5060>\r\n"
            "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO\r\n"
            "Supported: 100rel, timer\r\n"
            "User-Agent: sipcert-bench/1.0\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(SDP)}\r\n\r\n{SDP}"
        )
        out.append(msg.encode())
    return out


def rfc4475_messages() -> list[bytes]:
    return [p.read_bytes() for p in sorted(TORTURE.glob("*.dat"))]


def _pure_python_parse(data: bytes) -> ParseResult:
    """``parse`` with the C accelerator bypassed: the pure-Python fallback (what ``SIPCERT_PURE_PYTHON=1`` selects)."""
    return _parser._parse_py(bytes(data), False, _parser.DEFAULT_MAX_SIZE)


def make_sipcert_work(parse_fn: Callable[[bytes], ParseResult], full: bool) -> Callable[[bytes], Any]:
    """The work per message with ``parse_fn``; ``full`` also forces every header's validation (``len(defects)``)."""

    def work(data: bytes) -> Any:
        result = parse_fn(data)
        msg = result.message
        n = len(result.defects) if full else None
        if msg is None:
            return n
        via = msg.via
        return (
            via[0].branch if via else None,
            msg.from_.tag if msg.from_ else None,
            msg.to.tag if msg.to else None,
            msg.cseq.number if msg.cseq else None,
            msg.call_id,
            n,
        )

    return work


sipcert_work = make_sipcert_work(parse, full=False)
sipcert_work_full = make_sipcert_work(parse, full=True)
sipcert_work_pure = make_sipcert_work(_pure_python_parse, full=False)
sipcert_work_pure_full = make_sipcert_work(_pure_python_parse, full=True)

#: Which parser each sipcert contender runs.
IMPLEMENTATIONS = {
    "sipcert": "C accelerator (conformance.sip._speedups)" if SPEEDUPS else "pure Python (the accelerator is off)",
    "sipcert_full_validation": "C accelerator (conformance.sip._speedups)" if SPEEDUPS else "pure Python (the accelerator is off)",
    "sipcert_pure_python": "pure Python (_parser._parse_py)",
    "sipcert_pure_python_full": "pure Python (_parser._parse_py)",
}


def sipmessage_work(data: bytes) -> Any:
    import sipmessage

    try:
        msg = sipmessage.Message.parse(data)
        return (
            msg.via[0].parameters.get("branch"),
            msg.from_address.parameters.get("tag"),
            msg.to_address.parameters.get("tag"),
            msg.cseq.sequence,
            msg.call_id,
        )
    except Exception:  # sipmessage raises on malformed input; that still counts as one message handled
        return None


def rate(fn: Callable[[bytes], Any], corpus: list[bytes], seconds: float) -> float:
    """Messages per second over about ``seconds`` of wall time."""
    done = 0
    n = len(corpus)
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for i in range(n):
            fn(corpus[i])
        done += n
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def failures(fn: Callable[[bytes], Any], corpus: list[bytes]) -> int:
    return sum(1 for data in corpus if fn(data) is None)


def run(seconds: float, rounds: int) -> dict[str, Any]:
    import sipmessage

    contenders = {
        "sipmessage": sipmessage_work,
        "sipcert": sipcert_work,
        "sipcert_full_validation": sipcert_work_full,
        "sipcert_pure_python": sipcert_work_pure,
        "sipcert_pure_python_full": sipcert_work_pure_full,
    }
    corpora = {"invite": typical_invites(2000), "rfc4475": rfc4475_messages()}
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "sipmessage_version": getattr(sipmessage, "__version__", "0.7.1"),
        "speedups": SPEEDUPS,
        "implementations": IMPLEMENTATIONS,
        "seconds_per_round": seconds,
        "rounds": rounds,
        "corpora": {},
    }
    for cname, corpus in corpora.items():
        best = dict.fromkeys(contenders, 0.0)
        for fn in contenders.values():  # warm-up
            rate(fn, corpus, 0.2)
        for _ in range(rounds):
            for name, fn in contenders.items():
                best[name] = max(best[name], rate(fn, corpus, seconds))
        base = best["sipmessage"]
        results["corpora"][cname] = {
            "messages": len(corpus),
            "msgs_per_s": {k: round(v) for k, v in best.items()},
            "ratio_vs_sipmessage": {k: round(v / base, 2) for k, v in best.items() if k != "sipmessage"},
            "sipmessage_failed_on": failures(sipmessage_work, corpus),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="wall time per round and contender (default 1.0)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    results = run(args.seconds, args.rounds)
    print("implementations:")
    for name, impl in results["implementations"].items():
        print(f"  {name:<26} {impl}")
    for cname, r in results["corpora"].items():
        print(f"\n{cname} ({r['messages']} messages; sipmessage raised on {r['sipmessage_failed_on']}):")
        for name, value in r["msgs_per_s"].items():
            ratio = r["ratio_vs_sipmessage"].get(name)
            print(f"  {name:<26} {value:>9,} msg/s" + (f"   x{ratio} sipmessage" if ratio else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
