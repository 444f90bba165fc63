"""Attach traces and verdicts to the current Allure test.

Every helper is a no-op unless ``allure`` is importable and the allure-pytest plugin is writing results (pytest was
run with ``--alluredir``), so tests and the sipcert plugin can call them unconditionally.

Attachments: the ladder diagram (text and SVG), the pcap, the trace as JSON, and a summary of the violations.
Labels: ``rfc`` (one per section), ``etsi``, ``verdict``; the test's Allure id; links to the RFC sections.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from conformance.trace import Trace

from ._rfc import rfc_url
from ._text import xml_safe
from .ladder import ladder_svg, ladder_text
from .pcap import pcap_bytes, pcap_notes
from .summary import TestResult, Violation
from .trace_json import trace_to_json

__all__ = ["allure_active", "attach_trace", "attach_violations", "label_rfc", "attach_result"]


def _allure() -> Any:
    try:
        import allure
        import allure_commons
    except ImportError:  # pragma: no cover - allure-pytest is a dependency, but a stripped install may lack it
        return None
    # The allure-pytest listener implements ``attach_data`` only when results are being written (--alluredir).
    if not allure_commons.plugin_manager.hook.attach_data.get_hookimpls():
        return None
    return allure


def allure_active() -> bool:
    """``allure`` is importable and its pytest plugin is writing results."""
    return _allure() is not None


def attach_trace(trace: Trace, name: str = "trace", *, pcap: bool = True) -> bool:
    """Attach the ladder diagram (text, SVG), the trace JSON and the pcap; ``False`` when Allure is not active."""
    allure = _allure()
    if allure is None:
        return False
    kind = allure.attachment_type
    allure.attach(ladder_text(trace), name=f"{name}: ladder", attachment_type=kind.TEXT)
    allure.attach(ladder_svg(trace), name=f"{name}: ladder diagram", attachment_type=kind.SVG)
    allure.attach(
        json.dumps(trace_to_json(trace), indent=2, ensure_ascii=True),
        name=f"{name}: trace JSON",
        attachment_type=kind.JSON,
    )
    if pcap and trace.messages():
        allure.attach(pcap_bytes(trace), name=f"{name}: pcap", attachment_type=kind.PCAP)
        notes = pcap_notes(trace)
        if notes:
            allure.attach("\n".join(notes) + "\n", name=f"{name}: pcap notes", attachment_type=kind.TEXT)
    return True


def _lines(violations: Iterable[Violation]) -> list[str]:
    out = []
    for v in violations:
        out.append(f"{v.rule} ({v.rfc}) [{v.level}]: {v.message}")
        out += [f"    evidence: {e}" for e in v.evidence]
    return out


def attach_violations(
    violations: Iterable[Violation], warnings: Iterable[Violation] = (), name: str = "violations"
) -> bool:
    """Attach a text summary of violations and warnings (nothing when both are empty)."""
    allure = _allure()
    if allure is None:
        return False
    v, w = _lines(violations), _lines(warnings)
    if not v and not w:
        return True
    text = ""
    if v:
        text += "Violations:\n" + "\n".join(v) + "\n"
    if w:
        text += ("\n" if text else "") + "Warnings:\n" + "\n".join(w) + "\n"
    allure.attach(xml_safe(text), name=name, attachment_type=allure.attachment_type.TEXT)
    return True


def label_rfc(*sections: str) -> bool:
    """Label the current test with RFC sections (label ``rfc``) and link each to rfc-editor.org."""
    allure = _allure()
    if allure is None:
        return False
    if sections:
        allure.dynamic.label("rfc", *sections)
    for section in sections:
        url = rfc_url(section)
        if url:
            allure.dynamic.link(url, link_type="link", name=section)
    return True


def attach_result(result: TestResult) -> bool:
    """Everything about one result: id, labels, links, the violations and its trace."""
    allure = _allure()
    if allure is None:
        return False
    allure.dynamic.id(result.id)
    label_rfc(*result.rfc)
    allure.dynamic.label("verdict", result.verdict)
    if result.etsi:
        allure.dynamic.label("etsi", result.etsi)
    if result.reason:
        allure.attach(xml_safe(result.reason), name="reason", attachment_type=allure.attachment_type.TEXT)
    attach_violations(result.violations, result.warnings)
    if result.trace is not None and len(result.trace):
        attach_trace(result.trace, name=result.id)
    return True
