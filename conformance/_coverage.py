"""What the conformance suite covers, read from the test purposes themselves (their ``sip_purpose`` markers).

``python -m conformance._coverage`` rewrites ``docs/coverage.md``; a test keeps the committed page up to date.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import testcases

__all__ = ["Purpose", "purposes", "render_coverage", "write_coverage", "COVERAGE_PATH"]

COVERAGE_PATH = Path(__file__).resolve().parent.parent / "docs" / "coverage.md"


@dataclass(frozen=True, slots=True)
class Purpose:
    id: str
    title: str
    rfc: tuple[str, ...]
    etsi: str | None
    module: str
    function: str
    role: str | None
    faults: tuple[str, ...]
    variants: int
    timer: float | None
    docstring: str


def _marks(obj: object) -> list[object]:
    marks = getattr(obj, "pytestmark", [])
    return list(marks) if isinstance(marks, list) else [marks]


def purposes() -> list[Purpose]:
    """Every test purpose of the suite, in module then id order."""
    out: list[Purpose] = []
    for info in pkgutil.iter_modules(testcases.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"testcases.{info.name}")
        module_marks = _marks(module)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_") or fn.__module__ != module.__name__:
                continue
            marks = _marks(fn) + module_marks
            purpose = next((m for m in marks if getattr(m, "name", "") == "sip_purpose"), None)
            if purpose is None:
                continue
            args = list(purpose.args)  # type: ignore[attr-defined]
            role = next((m.kwargs.get("role") for m in marks  # type: ignore[attr-defined]
                         if getattr(m, "name", "") == "sip_requires" and m.kwargs.get("role")), None)  # type: ignore[attr-defined]
            faults = tuple(n for m in marks if getattr(m, "name", "") == "sip_faults" for n in m.args)  # type: ignore[attr-defined]
            timer = next((float(m.args[0]) for m in marks if getattr(m, "name", "") == "sip_timer" and m.args), None)  # type: ignore[attr-defined]
            variants = 1
            for m in marks:
                if getattr(m, "name", "") == "parametrize":
                    variants *= len(m.args[1])  # type: ignore[attr-defined]
            out.append(
                Purpose(
                    id=str(args[0]) if args else name,
                    title=str(args[1]) if len(args) > 1 else name,
                    rfc=tuple(str(a) for a in args[2:]),
                    etsi=purpose.kwargs.get("etsi"),  # type: ignore[attr-defined]
                    module=info.name,
                    function=name,
                    role=role,
                    faults=faults,
                    variants=variants,
                    timer=timer,
                    docstring=inspect.getdoc(fn) or "",
                )
            )
    out.sort(key=lambda p: (p.module, p.id))
    return out


def render_coverage(items: list[Purpose] | None = None) -> str:
    items = purposes() if items is None else items
    total = sum(p.variants for p in items)
    by_role = Counter(p.role or "any" for p in items for _ in range(p.variants))
    lines = [
        "# What the conformance suite covers",
        "",
        "Generated from the test purposes' markers by `python -m conformance._coverage`; do not edit by hand.",
        "Where the suite deviates from the RFCs, and why, is in [deviations.md](deviations.md).",
        "",
        f"{total} test purposes ({len(items)} test functions; parametrized ones count once per variant), by role: "
        + ", ".join(f"{role} {n}" for role, n in sorted(by_role.items())) + ".",
        "",
    ]
    module = None
    for p in items:
        if p.module != module:
            module = p.module
            doc = (importlib.import_module(f"testcases.{module}").__doc__ or "").strip().splitlines()
            lines += ["", f"## `testcases/{module}.py`", ""]
            if doc:
                lines += [doc[0], ""]
            lines += ["| id | title | RFC | ETSI | faults caught | variants |", "|---|---|---|---|---|---|"]
        rfc = ", ".join(p.rfc)
        faults = ", ".join(f"`{f}`" for f in p.faults)
        timer = f" (waits ~{p.timer:g} s)" if p.timer else ""
        lines.append(
            f"| {p.id} | {p.title.replace('|', '/')}{timer} | {rfc} | {p.etsi or ''} | {faults} | {p.variants} |"
        )
    return "\n".join(lines) + "\n"


def write_coverage(path: Path = COVERAGE_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_coverage(), encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write_coverage())
    sys.exit(0)
