"""Differential mutation run of the parser: C accelerator against the pure-Python reference, for a while.

Not a pytest module: a tool for long runs, e.g. under AddressSanitizer and UBSan (see docs/speedups.md). It mutates
the RFC 4475 / RFC 5118 torture messages at random (insertions of delimiters, NUL, DEL, 0xFF and long runs,
deletions, truncations, copies of other parts), parses each result with both implementations and compares
everything a caller can see: the defect list, the class, the bytes, the header fields, body, trailing octets and
every typed view.

Run: ``python3 tests/tools/differential_mutations.py [SEED] [SECONDS]``; prints the count and the differences (the
first three in full); exits 1 on a difference.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import conformance.sip as sip
from conformance.sip import _parser

TORTURE = Path(__file__).resolve().parent.parent / "data" / "torture"
ALPHABET = b"\r\n\t ;:,<>\"\\@=%/[]?\x00\x7f\xff0123456789aZ"
VIEWS = (
    "via", "from_", "to", "contact", "route", "record_route", "cseq", "call_id", "max_forwards", "content_length",
    "content_type", "rseq", "rack", "require", "supported", "expires",
)


def view(result: _parser.ParseResult) -> list[Any]:
    """What a caller can see of a parse result (the defects first, as a caller reading them first would)."""
    out: list[Any] = [tuple((d.code, d.header, d.offset, d.detail, d.fatal) for d in result.defects)]
    msg = result.message
    if msg is not None:
        out += [type(msg).__name__, bytes(msg), msg.headers, msg.body, msg.trailing]
        for name in VIEWS:
            try:
                out.append(getattr(msg, name))
            except Exception as exc:  # the same exception on both sides counts as the same
                out.append(("raised", type(exc).__name__))
    return out


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        i = rng.randrange(len(data) + 1)
        if op < 0.4:
            data[i:i] = bytes([rng.choice(ALPHABET)]) * rng.choice((1, 1, 2, 70, 300))
        elif op < 0.7 and len(data) > 1:
            del data[i : i + rng.randint(1, 20)]
        elif op < 0.85:
            data = data[:i]
        else:
            j = rng.randrange(len(data) + 1)
            data[i:i] = data[j : j + rng.randint(1, 80)]
    return bytes(data)


def main(argv: list[str]) -> int:
    if not sip.SPEEDUPS:
        print("the C accelerator is not active: nothing to compare", file=sys.stderr)
        return 2
    rng = random.Random(int(argv[0]) if argv else 1)
    deadline = time.monotonic() + (float(argv[1]) if len(argv) > 1 else 60.0)
    seeds = [p.read_bytes() for p in sorted(TORTURE.glob("*/*.dat"))]
    count = diffs = 0
    while time.monotonic() < deadline:
        data = mutate(rng, rng.choice(seeds))
        fast = view(sip.parse(data))
        reference = view(_parser._parse_py(data, False, _parser.DEFAULT_MAX_SIZE))
        count += 1
        if fast != reference:
            diffs += 1
            if diffs <= 3:
                print("DIFFERENCE for", data[:300])
                for mine, theirs in zip(fast, reference, strict=False):
                    if mine != theirs:
                        print("  C     :", repr(mine)[:300])
                        print("  Python:", repr(theirs)[:300])
    print(f"{count} mutated messages, {diffs} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
