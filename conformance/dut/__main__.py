"""``python -m conformance.dut --write-docs`` regenerates the fault table of docs/reference-device.md."""

from __future__ import annotations

import sys

from ._docs import write_docs


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--write-docs"]:
        print("usage: python -m conformance.dut --write-docs  (for the device itself: sipcert dut)", file=sys.stderr)
        return 2
    print(write_docs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
