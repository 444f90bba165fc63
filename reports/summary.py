"""The run summary: what a run found, as frozen data and as ``summary.json``.

``summary.json`` is the contract other tools read (CI dashboards, the baselines of independent devices committed
next to the suite). Its schema is fixed; :func:`validate_summary_dict` checks a document against it and names the
first key that is wrong, and :func:`compare` lists how two runs differ in verdicts and rule ids.

Schema (extra keys are allowed anywhere)::

    {"sipcert_version": str, "target": str, "role": str, "transport": str, "started": ISO-8601, "duration_s": float,
     "totals": {"pass": int, "fail": int, "inconclusive": int, "not_applicable": int, "error": int},
     "results": [{"id": str, "title": str, "rfc": [str], "verdict": "pass|fail|inconclusive|not_applicable|error",
                  "violations": [{"rule": str, "rfc": str, "level": "MUST|SHOULD|MAY", "message": str,
                                  "evidence": [str]}],
                  "warnings": [same shape], "duration_s": float}]}

Results may also carry ``etsi``, ``reason``, ``module`` and ``trace`` (the :mod:`reports.trace_json` document).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from conformance.trace import Trace

from .trace_json import TraceFormatError, trace_from_json, trace_to_json

__all__ = [
    "VERDICTS",
    "LEVELS",
    "Verdict",
    "Level",
    "Violation",
    "TestResult",
    "RunSummary",
    "SummaryFormatError",
    "now_iso",
    "write_summary",
    "load_summary",
    "summary_from_json_dict",
    "validate_summary_dict",
    "compare",
]

Verdict = Literal["pass", "fail", "inconclusive", "not_applicable", "error"]
Level = Literal["MUST", "SHOULD", "MAY"]

#: Every verdict, in the order reports list them.
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "inconclusive", "not_applicable", "error")
#: RFC 2119 levels a rule can have.
LEVELS: tuple[Level, ...] = ("MUST", "SHOULD", "MAY")


class SummaryFormatError(ValueError):
    """A summary document does not match the schema; the message starts with the path of the bad key."""


def now_iso() -> str:
    """The current UTC time as ISO-8601 with seconds (for :attr:`RunSummary.started`)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule the device broke (or, as a warning, a SHOULD/MAY it did not follow), with the evidence."""

    rule: str
    rfc: str
    level: Level
    message: str
    #: What shows it: message start lines, ``#seq`` references into the trace, quoted header lines.
    evidence: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {self.level!r}")
        object.__setattr__(self, "evidence", tuple(self.evidence))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "rfc": self.rfc,
            "level": self.level,
            "message": self.message,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test purpose's outcome."""

    __test__ = False  # not a pytest test class, although its name says Test

    id: str
    title: str
    #: Sections the test checks, ``"RFC 3261 §17.2.1"``.
    rfc: Sequence[str]
    verdict: Verdict
    violations: Sequence[Violation] = ()
    warnings: Sequence[Violation] = ()
    duration_s: float = 0.0
    trace: Trace | None = field(default=None, compare=False)
    #: The ETSI test purpose this corresponds to (``TC_SIP_CC_OE_CE_V_001``), when there is one.
    etsi: str | None = None
    #: Why the verdict is not pass/fail (skip reason, the exception of an error, what was inconclusive).
    reason: str | None = None
    #: The module that holds the test (``testcases.test_rfc3261_uas``); JUnit's classname. Derived when empty.
    module: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}")
        object.__setattr__(self, "rfc", tuple(self.rfc))
        object.__setattr__(self, "violations", tuple(self.violations))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "duration_s", float(self.duration_s))

    def to_json_dict(self, *, include_trace: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "rfc": list(self.rfc),
            "verdict": self.verdict,
            "violations": [v.to_json_dict() for v in self.violations],
            "warnings": [v.to_json_dict() for v in self.warnings],
            "duration_s": self.duration_s,
            "etsi": self.etsi,
            "reason": self.reason,
            "module": self.module,
        }
        if include_trace and self.trace is not None:
            doc["trace"] = trace_to_json(self.trace)
        return doc


def _count(results: Sequence[TestResult]) -> dict[str, int]:
    totals: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for r in results:
        totals[r.verdict] += 1
    return totals


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A whole run: against what, when, how long, and every result. ``totals`` is counted when not given."""

    sipcert_version: str
    target: str
    role: str
    transport: str
    #: ISO-8601, see :func:`now_iso`.
    started: str
    duration_s: float
    totals: Mapping[str, int] = field(default_factory=dict)
    results: Sequence[TestResult] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", tuple(self.results))
        object.__setattr__(self, "duration_s", float(self.duration_s))
        counted = _count(self.results)
        if self.totals:
            unknown = set(self.totals) - set(VERDICTS)
            if unknown:
                raise ValueError(f"totals has keys that are not verdicts: {', '.join(sorted(unknown))}")
            counted = {k: int(self.totals.get(k, 0)) for k in VERDICTS}
        object.__setattr__(self, "totals", counted)

    def to_json_dict(self, *, include_traces: bool = True) -> dict[str, Any]:
        """The ``summary.json`` document (see the module docstring for the schema)."""
        return {
            "sipcert_version": self.sipcert_version,
            "target": self.target,
            "role": self.role,
            "transport": self.transport,
            "started": self.started,
            "duration_s": self.duration_s,
            "totals": {k: int(self.totals.get(k, 0)) for k in VERDICTS},
            "results": [r.to_json_dict(include_trace=include_traces) for r in self.results],
        }

    def result(self, test_id: str) -> TestResult:
        for r in self.results:
            if r.id == test_id:
                return r
        raise KeyError(test_id)


def write_summary(summary: RunSummary, dir: str | Path, *, include_traces: bool = True) -> Path:
    """Write ``dir/summary.json`` (creating ``dir``) and return its path."""
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    text = json.dumps(summary.to_json_dict(include_traces=include_traces), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8", errors="backslashreplace")
    return path


# -- validation and loading ---------------------------------------------------------------------------------------
def _fail(where: str, what: str) -> SummaryFormatError:
    return SummaryFormatError(f"{where}: {what}")


def _typed(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    path = f"{where}.{key}" if where else key
    if key not in doc:
        raise _fail(path, "missing")
    value = doc[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise _fail(path, f"expected {' or '.join(k.__name__ for k in kinds)}, got bool")
    if not isinstance(value, kinds):
        raise _fail(path, f"expected {' or '.join(k.__name__ for k in kinds)}, got {type(value).__name__}")
    return value


def _str_list(doc: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = _typed(doc, key, list, where)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(f"{where}.{key}[{i}]", f"expected str, got {type(item).__name__}")
    return cast(list[str], value)


def _validate_violation(doc: Any, where: str) -> None:
    if not isinstance(doc, dict):
        raise _fail(where, f"expected an object, got {type(doc).__name__}")
    for key in ("rule", "rfc", "message"):
        _typed(doc, key, str, where)
    level = _typed(doc, "level", str, where)
    if level not in LEVELS:
        raise _fail(f"{where}.level", f"expected one of {', '.join(LEVELS)}, got {level!r}")
    _str_list(doc, "evidence", where)


def validate_summary_dict(d: Any) -> None:
    """Raise :class:`SummaryFormatError` naming the first key of ``d`` that does not match the schema."""
    if not isinstance(d, dict):
        raise _fail("summary", f"expected an object, got {type(d).__name__}")
    for key in ("sipcert_version", "target", "role", "transport"):
        _typed(d, key, str, "")
    started = _typed(d, "started", str, "")
    try:
        datetime.fromisoformat(started)
    except ValueError:
        raise _fail("started", f"not an ISO-8601 date and time: {started!r}") from None
    _typed(d, "duration_s", (int, float), "")
    totals = _typed(d, "totals", dict, "")
    for verdict in VERDICTS:
        count = _typed(totals, verdict, int, "totals")
        if count < 0:
            raise _fail(f"totals.{verdict}", f"negative count {count}")
    results = _typed(d, "results", list, "")
    counted: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for i, r in enumerate(results):
        where = f"results[{i}]"
        if not isinstance(r, dict):
            raise _fail(where, f"expected an object, got {type(r).__name__}")
        _typed(r, "id", str, where)
        _typed(r, "title", str, where)
        _str_list(r, "rfc", where)
        verdict = _typed(r, "verdict", str, where)
        if verdict not in VERDICTS:
            raise _fail(f"{where}.verdict", f"expected one of {', '.join(VERDICTS)}, got {verdict!r}")
        counted[verdict] += 1
        for key in ("violations", "warnings"):
            for j, v in enumerate(_typed(r, key, list, where)):
                _validate_violation(v, f"{where}.{key}[{j}]")
        _typed(r, "duration_s", (int, float), where)
        for key in ("etsi", "reason", "module"):
            if r.get(key) is not None and not isinstance(r[key], str):
                raise _fail(f"{where}.{key}", f"expected str or null, got {type(r[key]).__name__}")
        if "trace" in r and r["trace"] is not None and not isinstance(r["trace"], dict):
            raise _fail(f"{where}.trace", f"expected an object or null, got {type(r['trace']).__name__}")
    for verdict in VERDICTS:
        if totals[verdict] != counted[verdict]:
            raise _fail(
                f"totals.{verdict}", f"says {totals[verdict]} but {counted[verdict]} result(s) have that verdict"
            )


def _violation_from(doc: dict[str, Any]) -> Violation:
    return Violation(doc["rule"], doc["rfc"], doc["level"], doc["message"], tuple(doc["evidence"]))


def summary_from_json_dict(d: Any) -> RunSummary:
    """Validate ``d`` and build the :class:`RunSummary` it describes (traces included when present)."""
    validate_summary_dict(d)
    results = []
    for i, r in enumerate(d["results"]):
        trace = None
        if r.get("trace") is not None:
            try:
                trace = trace_from_json(r["trace"])
            except TraceFormatError as exc:
                raise _fail(f"results[{i}].trace", str(exc)) from None
        results.append(
            TestResult(
                id=r["id"],
                title=r["title"],
                rfc=tuple(r["rfc"]),
                verdict=r["verdict"],
                violations=tuple(_violation_from(v) for v in r["violations"]),
                warnings=tuple(_violation_from(v) for v in r["warnings"]),
                duration_s=float(r["duration_s"]),
                trace=trace,
                etsi=r.get("etsi"),
                reason=r.get("reason"),
                module=r.get("module"),
            )
        )
    return RunSummary(
        sipcert_version=d["sipcert_version"],
        target=d["target"],
        role=d["role"],
        transport=d["transport"],
        started=d["started"],
        duration_s=float(d["duration_s"]),
        totals=dict(d["totals"]),
        results=results,
    )


def load_summary(path: str | Path) -> RunSummary:
    """Read a ``summary.json`` (or the directory holding one), validate it and build the :class:`RunSummary`."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SummaryFormatError(f"{p}: not JSON ({exc})") from None
    try:
        return summary_from_json_dict(doc)
    except SummaryFormatError as exc:
        raise SummaryFormatError(f"{p}: {exc}") from None


# -- comparing runs -------------------------------------------------------------------------------------------------
def _rules(violations: Sequence[Violation]) -> list[str]:
    return sorted({v.rule for v in violations})


def compare(baseline: RunSummary, current: RunSummary) -> list[str]:
    """How ``current`` differs from ``baseline`` in tests run, verdicts and the rule ids reported (empty: the same).

    Messages, evidence and durations are not compared: they change from run to run (tags, Call-IDs, timing).
    """
    diffs: list[str] = []
    base = {r.id: r for r in baseline.results}
    cur = {r.id: r for r in current.results}
    for test_id in base:
        if test_id not in cur:
            diffs.append(f"{test_id}: in the baseline ({base[test_id].verdict}) but not run now")
    for test_id, now in cur.items():
        then = base.get(test_id)
        if then is None:
            diffs.append(f"{test_id}: new test ({now.verdict}), not in the baseline")
            continue
        if then.verdict != now.verdict:
            diffs.append(f"{test_id}: verdict {then.verdict} -> {now.verdict}")
        for kind, old, new in (
            ("violation", then.violations, now.violations),
            ("warning", then.warnings, now.warnings),
        ):
            old_rules, new_rules = set(_rules(old)), set(_rules(new))
            for rule in sorted(new_rules - old_rules):
                diffs.append(f"{test_id}: new {kind} {rule}")
            for rule in sorted(old_rules - new_rules):
                diffs.append(f"{test_id}: {kind} {rule} no longer reported")
    return diffs
