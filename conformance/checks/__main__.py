"""``python -m conformance.checks [--format text|markdown|json] [--write-docs]``: print or regenerate the catalogue."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._render import DOCS_PATH, render_catalogue, write_docs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.checks", description=__doc__)
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument("--write-docs", action="store_true", help=f"write the Markdown catalogue to {DOCS_PATH}")
    args = parser.parse_args(argv)
    if args.write_docs:
        print(write_docs())
        return 0
    sys.stdout.write(render_catalogue(args.format))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
