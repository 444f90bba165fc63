"""The run as JUnit XML, for CI systems (Jenkins, GitLab, Azure DevOps, GitHub test reporters).

One ``<testsuite>`` per RFC area or test module (the testcase ``classname``), one ``<testcase>`` per result named
``id: title``. A fail carries a ``<failure>`` listing the MUST violations with rule id, section and evidence;
not_applicable and inconclusive are ``<skipped>`` with the reason; error is ``<error>``. The RFC sections, ETSI test
purpose and rule ids are ``<properties>`` of the testcase (as pytest's ``xunit1`` family writes them), SHOULD/MAY
violations, warnings and the ladder diagram go to ``<system-out>``.

Device bytes can hold characters XML 1.0 cannot carry even escaped; they are written as ``\\xNN``.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from ._text import xml_safe
from .ladder import ladder_text
from .summary import RunSummary, TestResult, Violation

__all__ = ["write_junit", "junit_xml", "junit_classname"]

_SECTION = re.compile(r"RFC\s*(\d+)\s*(?:§\s*|section\s+)?(\d+)?", re.IGNORECASE)


def junit_classname(result: TestResult) -> str:
    """The RFC area or module of a result: its ``module``, the module of a pytest node id, or ``rfc3261.s17``."""
    if result.module:
        return result.module
    if "::" in result.id:
        path = result.id.split("::", 1)[0]
        return path.removesuffix(".py").replace("/", ".").replace("\\", ".")
    for section in result.rfc:
        m = _SECTION.search(section)
        if m:
            return f"rfc{m.group(1)}" + (f".s{m.group(2)}" if m.group(2) else "")
    return "sipcert"


def _describe(v: Violation) -> str:
    lines = [f"{v.rule} ({v.rfc}) [{v.level}]: {v.message}"]
    lines += [f"    evidence: {line}" for line in v.evidence]
    return "\n".join(lines)


def _block(title: str, violations: Sequence[Violation]) -> str:
    if not violations:
        return ""
    return f"{title}:\n" + "\n".join(_describe(v) for v in violations) + "\n"


def _el(parent: ET.Element, tag: str, attrs: dict[str, str] | None = None, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_safe(v) for k, v in (attrs or {}).items()})
    if text is not None:
        el.text = xml_safe(text)
    return el


def _testcase(suite: ET.Element, r: TestResult, classname: str, *, include_ladder: bool) -> None:
    name = f"{r.id}: {r.title}" if r.title else r.id
    case = _el(suite, "testcase", {"classname": classname, "name": name, "time": f"{r.duration_s:.3f}"})
    props = [("rfc", s) for s in r.rfc]
    if r.etsi:
        props.append(("etsi", r.etsi))
    props.append(("verdict", r.verdict))
    props += [("violation", v.rule) for v in r.violations]
    props += [("warning", v.rule) for v in r.warnings]
    pe = _el(case, "properties")
    for key, value in props:
        _el(pe, "property", {"name": key, "value": value})

    must = [v for v in r.violations if v.level == "MUST"]
    other = [v for v in r.violations if v.level != "MUST"]
    if r.verdict == "fail":
        shown = must or list(r.violations)
        if shown:
            message = f"{len(shown)} {'MUST ' if must else ''}violation(s): " + ", ".join(
                f"{v.rule} ({v.rfc})" for v in shown
            )
        else:
            message = r.reason or "failed"
        text = "\n\n".join(_describe(v) for v in shown) or (r.reason or "")
        _el(case, "failure", {"message": message, "type": "MUST" if must else "violation"}, text + "\n")
    elif r.verdict == "error":
        _el(case, "error", {"message": r.reason or "error", "type": "error"}, (r.reason or "") + "\n")
    elif r.verdict in ("not_applicable", "inconclusive"):
        reason = f"{r.verdict}: {r.reason}" if r.reason else r.verdict
        _el(case, "skipped", {"message": reason})

    out = ""
    if r.verdict != "fail":
        out += _block("Violations", r.violations)
    else:
        out += _block("Other violations (SHOULD/MAY)", other if must else [])
    out += _block("Warnings", r.warnings)
    if include_ladder and r.trace is not None and len(r.trace):
        out += ("\n" if out else "") + ladder_text(r.trace)
    if out:
        _el(case, "system-out", None, out)


def junit_xml(summary: RunSummary, *, include_ladder: bool = True) -> str:
    """The JUnit XML document as text (with the XML declaration)."""
    groups: dict[str, list[TestResult]] = {}
    for r in summary.results:
        groups.setdefault(junit_classname(r), []).append(r)

    def counts(results: Sequence[TestResult]) -> dict[str, str]:
        return {
            "tests": str(len(results)),
            "failures": str(sum(r.verdict == "fail" for r in results)),
            "errors": str(sum(r.verdict == "error" for r in results)),
            "skipped": str(sum(r.verdict in ("not_applicable", "inconclusive") for r in results)),
            "time": f"{sum(r.duration_s for r in results):.3f}",
        }

    attrs = {"name": f"sipcert {summary.target}", **counts(summary.results)}
    root = ET.Element("testsuites", {k: xml_safe(v) for k, v in attrs.items()})
    root.set("time", f"{summary.duration_s:.3f}")
    hostname = socket.gethostname()
    for i, (classname, results) in enumerate(groups.items()):
        suite = _el(
            root,
            "testsuite",
            {
                "name": classname,
                "id": str(i),
                "package": "sipcert",
                **counts(results),
                "timestamp": summary.started,
                "hostname": hostname,
            },
        )
        props = _el(suite, "properties")
        for key, value in (
            ("sipcert_version", summary.sipcert_version),
            ("target", summary.target),
            ("role", summary.role),
            ("transport", summary.transport),
        ):
            _el(props, "property", {"name": key, "value": value})
        for r in results:
            _testcase(suite, r, classname, include_ladder=include_ladder)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(summary: RunSummary, path: str | Path, *, include_ladder: bool = True) -> Path:
    """Write the JUnit XML to ``path`` (parent directories created) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(junit_xml(summary, include_ladder=include_ladder), encoding="utf-8")
    return p
