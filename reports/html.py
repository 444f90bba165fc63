"""The run as one self-contained HTML page: totals, a filterable table of results, and per result the violations,
warnings, ladder diagram and raw messages.

Everything a device sent is hostile input. The template is rendered with autoescaping on and no user data is ever
marked safe; the only markup inserted verbatim is sipcert's own: the static script and style, and the ladder SVG,
which ElementTree serialized with every string in it escaped. The page carries a Content-Security-Policy that allows
only that script and style (by hash) and nothing from the network, so it works offline and an escaping bug would
still not run a device's script.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from conformance.trace import MessageEntry, Trace

from ._rfc import rfc_url
from ._text import display_message, xml_safe
from .ladder import format_address, ladder_svg, ladder_text
from .pcap import pcap_notes
from .summary import VERDICTS, RunSummary, TestResult, Violation

__all__ = ["write_html", "render_html"]


def _finalize(value: Any) -> Any:
    # Every string printed (then autoescaped) loses the characters HTML and XML cannot carry; markup is ours.
    if isinstance(value, str) and not isinstance(value, Markup):
        return xml_safe(value)
    return value


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        finalize=_finalize,
    )


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _violation(v: Violation) -> dict[str, Any]:
    return {
        "rule": v.rule,
        "rfc": v.rfc,
        "url": rfc_url(v.rfc),
        "level": v.level,
        "message": v.message,
        "evidence": list(v.evidence),
    }


def _message(e: MessageEntry) -> dict[str, Any]:
    arrow = "->" if e.direction == "sent" else "<-"
    return {
        "seq": e.seq,
        "time": e.time,
        "direction": e.direction,
        "transport": e.transport,
        "arrow": f"{format_address(e.local)} {arrow} {format_address(e.remote)}",
        "summary": xml_safe(e.summary),
        "defects": [xml_safe(str(d)) for d in e.defects],
        "text": display_message(e.data),
    }


def _trace(trace: Trace) -> dict[str, Any]:
    messages = trace.messages()
    return {
        "entries": len(trace),
        "messages": [_message(m) for m in messages],
        # sipcert's own serialization, every device string in it escaped by ElementTree: not user data.
        "svg": Markup(ladder_svg(trace)),
        "text": ladder_text(trace),
        "pcap_notes": pcap_notes(trace),
    }


def _result(r: TestResult) -> dict[str, Any]:
    search = " ".join([r.id, r.title, *r.rfc, *(v.rule for v in r.violations), *(v.rule for v in r.warnings)])
    return {
        "id": r.id,
        "title": r.title,
        "rfc": [{"text": s, "url": rfc_url(s)} for s in r.rfc],
        "verdict": r.verdict,
        "duration_s": r.duration_s,
        "etsi": r.etsi,
        "reason": r.reason,
        "violations": [_violation(v) for v in r.violations],
        "warnings": [_violation(v) for v in r.warnings],
        "trace": _trace(r.trace) if r.trace is not None and len(r.trace) else None,
        "search": search,
    }


def render_html(summary: RunSummary) -> str:
    """The report page as text."""
    env = _environment()
    assert env.loader is not None
    script = env.loader.get_source(env, "_report.js.j2")[0]
    style = env.loader.get_source(env, "_report.css.j2")[0]
    template = env.get_template("index.html.j2")
    return template.render(
        s=summary,
        verdicts=VERDICTS,
        results=[_result(r) for r in summary.results],
        # Static files of this package, not user data.
        script=Markup(script),
        style=Markup(style),
        script_hash=Markup(_csp_hash(script)),
        style_hash=Markup(_csp_hash(style)),
    )


def write_html(summary: RunSummary, dir: str | Path) -> Path:
    """Write ``dir/index.html`` (creating ``dir``) and return its path."""
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(render_html(summary), encoding="utf-8", errors="backslashreplace")
    return path
