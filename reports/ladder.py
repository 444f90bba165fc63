"""Ladder (sequence) diagrams of a trace: plain text for logs and terminals, SVG for the HTML report and Allure.

One column per endpoint address (sipcert's own addresses first, then the device's, each in order of first use), one
arrow per message with its start line, the time offset and sequence number in the margin, and timers, notes and
verdicts as annotations. Messages with parse defects are marked ``!`` and their defects listed under the arrow.
Both renderings depend on nothing but the trace: the same trace gives the same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from conformance.trace import Address, Entry, MessageEntry, NoteEntry, TimerEntry, Trace, VerdictEntry

from ._text import display_message, shorten, xml_safe

__all__ = ["ladder_text", "ladder_svg", "format_address", "entry_annotation"]

_MIN_GAP = 24
_MAX_GAP = 72


def format_address(addr: Address) -> str:
    """``host:port``, IPv6 hosts in brackets."""
    host, port = addr
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def _ends(e: MessageEntry) -> tuple[Address, Address]:
    return (e.local, e.remote) if e.direction == "sent" else (e.remote, e.local)


def _columns(entries: list[Entry]) -> list[Address]:
    messages = [e for e in entries if isinstance(e, MessageEntry)]
    cols: list[Address] = []
    for addr in [e.local for e in messages] + [e.remote for e in messages]:
        if addr not in cols:
            cols.append(addr)
    return cols


def _one_line(text: str) -> str:
    return xml_safe(text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " "))


def _label(e: MessageEntry) -> str:
    text = _one_line(e.summary)
    if e.defects:
        text = "! " + text
    return text


def _defect_lines(e: MessageEntry) -> list[str]:
    return [f"! {_one_line(str(d))}" for d in e.defects]


def entry_annotation(e: Entry) -> str:
    """The one-line annotation for a timer, note or verdict entry (and a message's note, if any)."""
    if isinstance(e, TimerEntry):
        detail = f": {e.detail}" if e.detail else ""
        return _one_line(f"[timer {e.timer}] {e.owner}{detail}")
    if isinstance(e, NoteEntry):
        tag = "note" if e.level == "info" else e.level
        return _one_line(f"[{tag}] {e.text}")
    if isinstance(e, VerdictEntry):
        outcome = "PASS" if e.outcome == "pass" else "VIOLATION"
        evidence = f" (evidence {' '.join(f'#{s}' for s in e.evidence)})" if e.evidence else ""
        return _one_line(f"[{outcome} {e.level} {e.rule}, {e.rfc}] {e.message}{evidence}")
    parts = [p for p in (e.endpoint, e.note) if p]
    return _one_line(f"({', '.join(parts)})") if parts else ""


@dataclass(frozen=True, slots=True)
class _Layout:
    columns: list[Address]
    names: list[str]
    gap: int
    margin: int

    def pos(self, addr: Address) -> int:
        return self.margin + self.columns.index(addr) * self.gap

    @property
    def width(self) -> int:
        return self.margin + (len(self.columns) - 1) * self.gap + 1


def _layout(entries: list[Entry], margin: int) -> _Layout:
    columns = _columns(entries)
    names = [format_address(c) for c in columns]
    longest_label = max((len(_label(e)) for e in entries if isinstance(e, MessageEntry)), default=0)
    longest_name = max((len(n) for n in names), default=0)
    gap = max(_MIN_GAP, min(_MAX_GAP, longest_label + 8), longest_name + 2)
    return _Layout(columns, names, gap, margin)


# -- text ------------------------------------------------------------------------------------------------------------
def _lanes(layout: _Layout) -> list[str]:
    row = [" "] * layout.width
    for i in range(len(layout.columns)):
        row[layout.margin + i * layout.gap] = "|"
    return row


def _gutter(time: float, seq: int, transport: str) -> str:
    return f"{f'+{time:.3f}':>9} {f'#{seq}':>5} {transport[:4]:<4} "


def ladder_text(trace: Trace) -> str:
    """The trace as a text ladder diagram (ends with a newline)."""
    entries = trace.entries
    margin = len(_gutter(0.0, 0, "")) + 2
    layout = _layout(entries, margin)
    title = _one_line(trace.name) if trace.name else "trace"
    lines = [f"sipcert ladder: {title}"]
    if not layout.columns:
        lines.append("(no messages)")
        lines += [f"{_gutter(e.time, e.seq, '')}{entry_annotation(e)}".rstrip() for e in entries]
        return "\n".join(lines) + "\n"
    # Address names centred on their lanes, on as many rows as it takes for them not to overlap.
    rows: list[list[str]] = []
    for i, name in enumerate(layout.names):
        start = max(0, layout.margin + i * layout.gap - len(name) // 2)
        for row in rows:
            if all(c == " " for c in row[max(0, start - 1) : start + len(name) + 1]):
                break
        else:
            row = [" "] * (layout.width + layout.gap)
            rows.append(row)
        row[start : start + len(name)] = list(name)
    lines += ["".join(r).rstrip() for r in rows]
    lines.append("".join(_lanes(layout)).rstrip())
    for e in entries:
        row = _lanes(layout)
        if isinstance(e, MessageEntry):
            src, dst = _ends(e)
            a, b = layout.pos(src), layout.pos(dst)
            note = entry_annotation(e)
            if a == b:
                text = f"{''.join(row)}  <-> {_label(e)} (from {format_address(src)} to itself)"
            else:
                lo, hi = min(a, b), max(a, b)
                span = hi - lo - 1
                for x in range(lo + 1, hi):
                    row[x] = "-"
                if b > a:
                    row[hi - 1] = ">"
                else:
                    row[lo + 1] = "<"
                label = f" {shorten(_label(e), max(0, span - 6))} "
                if span - 4 >= len(label) > 2:
                    start = lo + 1 + (span - len(label)) // 2
                    row[start : start + len(label)] = list(label)
                text = "".join(row)
            prefix = _gutter(e.time, e.seq, e.transport)
            lines.append((prefix + text[len(prefix) :] + (f"  {note}" if note else "")).rstrip())
            for d in _defect_lines(e):
                lines.append(("".join(_lanes(layout)) + "  " + d).rstrip())
        else:
            prefix = _gutter(e.time, e.seq, "")
            text = "".join(row)
            lines.append((prefix + text[len(prefix) :] + "  " + entry_annotation(e)).rstrip())
    return "\n".join(lines) + "\n"


# -- SVG ---------------------------------------------------------------------------------------------------------------
_SVG_NS = "http://www.w3.org/2000/svg"
_CHAR_W = 7.2  # monospace 12px, near enough for laying out
_ROW_H = 26
_NOTE_H = 18
_HEAD_H = 44
_GUTTER_W = 120
_PAD = 16

_COLOURS = {
    "sent": "#1f4e99",
    "received": "#0a7d3b",
    "defect": "#c62828",
    "timer": "#6a1b9a",
    "note": "#555555",
    "warning": "#b26a00",
    "error": "#c62828",
    "pass": "#0a7d3b",
    "violation": "#c62828",
}


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str | int | float) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): _num(v) for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _num(v: str | int | float) -> str:
    if isinstance(v, float):
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return str(v)


def _hover(e: MessageEntry) -> str:
    head = f"#{e.seq} +{e.time:.3f}s {e.direction} {e.transport} {format_address(e.local)}"
    head += f" {'->' if e.direction == 'sent' else '<-'} {format_address(e.remote)}"
    defects = "".join(f"\n{d}" for d in _defect_lines(e))
    return f"{head}{defects}\n\n{display_message(e.data)}"


def ladder_svg(trace: Trace) -> str:
    """The trace as a standalone SVG ladder diagram; hovering an arrow shows the whole message."""
    entries = trace.entries
    columns = _columns(entries)
    labels = [_label(e) for e in entries if isinstance(e, MessageEntry)]
    names = [format_address(c) for c in columns]
    gap = max(
        220.0,
        min(_MAX_GAP, max((len(s) for s in labels), default=0)) * _CHAR_W + 40,
        max((len(n) for n in names), default=0) * _CHAR_W + 24,
    )
    lane_x = [_GUTTER_W + _PAD + gap / 2 + i * gap for i in range(len(columns))]
    right = lane_x[-1] if lane_x else _GUTTER_W + _PAD
    notes = [entry_annotation(e) for e in entries] + [
        d for e in entries if isinstance(e, MessageEntry) for d in _defect_lines(e)
    ]
    note_w = max((len(n) for n in notes), default=0) * _CHAR_W * 11 / 12
    heights = [(_ROW_H + _NOTE_H * len(e.defects)) if isinstance(e, MessageEntry) else _NOTE_H for e in entries]
    width = right + 16 + note_w + _PAD + (gap / 2 if lane_x else 0)
    height = _HEAD_H + _PAD * 2 + sum(heights) + 10

    svg = ET.Element(
        "svg",
        {
            "xmlns": _SVG_NS,
            "version": "1.1",
            "width": _num(float(round(width))),
            "height": _num(float(round(height))),
            "viewBox": f"0 0 {round(width)} {round(height)}",
            "font-family": "monospace",
            "font-size": "12",
            "class": "sipcert-ladder",
        },
    )
    _sub(svg, "title", f"sipcert ladder: {_one_line(trace.name) if trace.name else 'trace'}")
    _sub(svg, "rect", x=0, y=0, width=round(width), height=round(height), fill="#ffffff")
    top = _PAD + _HEAD_H
    bottom = height - _PAD
    for x, name in zip(lane_x, names, strict=True):
        box_w = len(name) * _CHAR_W + 16
        _sub(
            svg,
            "rect",
            x=x - box_w / 2,
            y=_PAD,
            width=box_w,
            height=_HEAD_H - 14,
            rx=4,
            fill="#eef2f7",
            stroke="#5b6b80",
        )
        _sub(svg, "text", name, x=x, y=_PAD + 20, text_anchor="middle", font_weight="bold")
        _sub(svg, "line", x1=x, y1=top - 14, x2=x, y2=bottom, stroke="#9aa5b1", stroke_dasharray="4 3")
    _sub(svg, "text", "time / seq", x=_PAD, y=_PAD + 20, fill="#555555")
    if not columns:
        _sub(svg, "text", "(no messages)", x=_GUTTER_W + _PAD, y=_PAD + 20, fill="#555555")

    y = float(top)
    for e, h in zip(entries, heights, strict=True):
        g = _sub(svg, "g", class_=f"entry {type(e).__name__}", id=f"e{e.seq}")
        gutter = f"+{e.time:.3f} #{e.seq}"
        if isinstance(e, MessageEntry):
            colour = _COLOURS["defect"] if e.defects else _COLOURS[e.direction]
            _sub(g, "title", _hover(e))
            line_y = y + 16
            _sub(g, "text", gutter, x=_PAD, y=line_y + 4, fill="#555555")
            src, dst = _ends(e)
            x1, x2 = lane_x[columns.index(src)], lane_x[columns.index(dst)]
            label = shorten(_label(e), int(max(abs(x2 - x1) - 30, 60) / _CHAR_W))
            if x1 == x2:
                loop = f"M {_num(x1)} {_num(line_y - 6)} h 30 v 12 h -30"
                _sub(g, "path", d=loop, fill="none", stroke=colour, stroke_width=1.5)
                _sub(g, "text", label, x=x1 + 36, y=line_y + 4, fill=colour)
            else:
                direction = 1 if x2 > x1 else -1
                tip = x2 - direction * 1
                _sub(g, "line", x1=x1, y1=line_y, x2=tip - direction * 8, y2=line_y, stroke=colour, stroke_width=1.5)
                points = (
                    f"{_num(tip)},{_num(line_y)} {_num(tip - direction * 9)},{_num(line_y - 4.5)} "
                    f"{_num(tip - direction * 9)},{_num(line_y + 4.5)}"
                )
                _sub(g, "polygon", points=points, fill=colour)
                _sub(g, "text", label, x=(x1 + x2) / 2, y=line_y - 5, text_anchor="middle", fill=colour)
            extra = entry_annotation(e)
            if e.transport.lower() != "udp":
                extra = f"{e.transport} {extra}".strip()
            if extra:
                _sub(g, "text", extra, x=right + 16, y=line_y + 4, fill="#555555")
            for i, d in enumerate(_defect_lines(e)):
                _sub(g, "text", d, x=right + 16, y=y + _ROW_H + _NOTE_H * i + 10, fill=_COLOURS["defect"])
        else:
            if isinstance(e, TimerEntry):
                colour = _COLOURS["timer"]
            elif isinstance(e, NoteEntry):
                colour = _COLOURS["note" if e.level == "info" else e.level]
            else:
                colour = _COLOURS[e.outcome]
            text_y = y + 13
            _sub(g, "text", gutter, x=_PAD, y=text_y, fill="#555555")
            if lane_x:
                _sub(
                    g,
                    "line",
                    x1=lane_x[0] - 6,
                    y1=text_y - 4,
                    x2=right + 10,
                    y2=text_y - 4,
                    stroke=colour,
                    stroke_width=0.6,
                    stroke_dasharray="1 3",
                )
            _sub(g, "text", entry_annotation(e), x=right + 16, y=text_y, fill=colour)
        y += h
    return ET.tostring(svg, encoding="unicode") + "\n"
