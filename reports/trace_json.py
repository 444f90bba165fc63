"""The trace as JSON: every entry, the wire bytes kept exactly, and back again.

Bytes that are valid UTF-8 are written as text (``"encoding": "utf-8"``); anything else as base64
(``"encoding": "base64"``) with a readable ``text`` beside it (``\\xNN`` for the bytes that are not UTF-8). Either way
:func:`trace_from_json` gives back the same bytes, re-parses them, and restores the defects as recorded.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from conformance.sip import DEFECT_CODES, STREAM_TRANSPORTS, Defect, parse
from conformance.trace import Entry, MessageEntry, NoteEntry, TimerEntry, Trace, VerdictEntry

from ._text import display_text

__all__ = ["TRACE_FORMAT", "TraceFormatError", "trace_to_json", "trace_from_json", "encode_bytes", "decode_bytes"]

#: The ``format`` key of a trace document; bumped when the shape changes incompatibly.
TRACE_FORMAT = "sipcert-trace/1"


class TraceFormatError(ValueError):
    """A trace document does not have the shape :func:`trace_from_json` reads; the message names the key."""


def encode_bytes(data: bytes) -> dict[str, str]:
    """``{"encoding": "utf-8", "data": text}`` or ``{"encoding": "base64", "data": b64, "text": readable}``."""
    try:
        return {"encoding": "utf-8", "data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "encoding": "base64",
            "data": base64.b64encode(data).decode("ascii"),
            "text": display_text(data),
        }


def decode_bytes(doc: dict[str, Any], where: str = "entry") -> bytes:
    """The bytes :func:`encode_bytes` wrote."""
    encoding = doc.get("encoding")
    data = doc.get("data")
    if not isinstance(data, str):
        raise TraceFormatError(f"{where}.data: expected a string, got {type(data).__name__}")
    if encoding == "utf-8":
        return data.encode("utf-8", "surrogateescape")
    if encoding == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TraceFormatError(f"{where}.data: not valid base64 ({exc})") from None
    raise TraceFormatError(f"{where}.encoding: expected 'utf-8' or 'base64', got {encoding!r}")


def _defect_json(d: Defect) -> dict[str, Any]:
    known = d.code in DEFECT_CODES
    return {
        "code": d.code,
        "header": d.header,
        "offset": d.offset,
        "detail": d.detail,
        "section": d.section if known else "",
        "fatal": d.fatal if known else d.fatal_override,
    }


def _entry_json(e: Entry) -> dict[str, Any]:
    if isinstance(e, MessageEntry):
        msg = e.message
        doc: dict[str, Any] = {
            "type": "message",
            "seq": e.seq,
            "time": e.time,
            "direction": e.direction,
            "transport": e.transport,
            "local": [e.local[0], e.local[1]],
            "remote": [e.remote[0], e.remote[1]],
            "endpoint": e.endpoint,
            "note": e.note,
            "summary": display_text(e.summary.encode("utf-8", "surrogateescape")),
            "kind": None if msg is None else ("request" if msg.is_request else "response"),
            "method": getattr(msg, "method", None),
            "status": getattr(msg, "status", None),
            "defects": [_defect_json(d) for d in e.defects],
        }
        doc.update(encode_bytes(e.data))
        return doc
    if isinstance(e, TimerEntry):
        return {"type": "timer", "seq": e.seq, "time": e.time, "timer": e.timer, "owner": e.owner, "detail": e.detail}
    if isinstance(e, NoteEntry):
        return {"type": "note", "seq": e.seq, "time": e.time, "text": e.text, "level": e.level}
    return {
        "type": "verdict",
        "seq": e.seq,
        "time": e.time,
        "rule": e.rule,
        "rfc": e.rfc,
        "level": e.level,
        "outcome": e.outcome,
        "message": e.message,
        "evidence": list(e.evidence),
    }


def trace_to_json(trace: Trace) -> dict[str, Any]:
    """Every entry of ``trace`` as JSON-ready data (``json.dumps`` takes it as is)."""
    return {
        "format": TRACE_FORMAT,
        "name": trace.name,
        "started_wall": trace.started_wall,
        "entries": [_entry_json(e) for e in trace.entries],
    }


def _need(doc: dict[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise TraceFormatError(f"{where}.{key}: missing")
    value = doc[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise TraceFormatError(f"{where}.{key}: expected {_type_names(types)}, got {type(value).__name__}")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _type_names(types: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in _as_tuple(types))


def _address(doc: dict[str, Any], key: str, where: str) -> tuple[str, int]:
    value = _need(doc, key, list, where)
    if len(value) != 2 or not isinstance(value[0], str) or not isinstance(value[1], int):
        raise TraceFormatError(f"{where}.{key}: expected [host, port], got {value!r}")
    return (value[0], value[1])


def _defect_from_json(doc: dict[str, Any], where: str) -> Defect:
    code = _need(doc, "code", str, where)
    header = doc.get("header")
    offset = _need(doc, "offset", int, where)
    detail = doc.get("detail") or ""
    fatal = doc.get("fatal")
    override: bool | None = None
    if code in DEFECT_CODES:
        if isinstance(fatal, bool) and fatal != DEFECT_CODES[code].fatal:
            override = fatal
    else:
        # A code this version does not know (a trace from a newer sipcert): keep it, with its recorded fatality.
        override = bool(fatal)
    return Defect(code, header if isinstance(header, str) else None, offset, str(detail), override)


def _entry_from_json(doc: dict[str, Any], index: int) -> Entry:
    where = f"entries[{index}]"
    if not isinstance(doc, dict):
        raise TraceFormatError(f"{where}: expected an object, got {type(doc).__name__}")
    kind = _need(doc, "type", str, where)
    seq = _need(doc, "seq", int, where)
    time = float(_need(doc, "time", (int, float), where))
    if kind == "message":
        direction = _need(doc, "direction", str, where)
        if direction not in ("sent", "received"):
            raise TraceFormatError(f"{where}.direction: expected 'sent' or 'received', got {direction!r}")
        transport = _need(doc, "transport", str, where)
        data = decode_bytes(doc, where)
        message = parse(data, stream=transport.lower() in STREAM_TRANSPORTS).message
        defects = tuple(
            _defect_from_json(d, f"{where}.defects[{i}]") for i, d in enumerate(_need(doc, "defects", list, where))
        )
        return MessageEntry(
            seq,
            time,
            "sent" if direction == "sent" else "received",
            transport,
            _address(doc, "local", where),
            _address(doc, "remote", where),
            data,
            message,
            defects,
            str(doc.get("endpoint") or ""),
            str(doc.get("note") or ""),
        )
    if kind == "timer":
        return TimerEntry(
            seq, time, _need(doc, "timer", str, where), _need(doc, "owner", str, where), str(doc.get("detail") or "")
        )
    if kind == "note":
        level = doc.get("level", "info")
        if level not in ("info", "warning", "error"):
            raise TraceFormatError(f"{where}.level: expected info, warning or error, got {level!r}")
        return NoteEntry(seq, time, _need(doc, "text", str, where), level)
    if kind == "verdict":
        level = _need(doc, "level", str, where)
        if level not in ("MUST", "SHOULD", "MAY"):
            raise TraceFormatError(f"{where}.level: expected MUST, SHOULD or MAY, got {level!r}")
        outcome = _need(doc, "outcome", str, where)
        if outcome not in ("violation", "pass"):
            raise TraceFormatError(f"{where}.outcome: expected 'violation' or 'pass', got {outcome!r}")
        evidence = _need(doc, "evidence", list, where)
        if not all(isinstance(s, int) for s in evidence):
            raise TraceFormatError(f"{where}.evidence: expected a list of entry seq numbers")
        return VerdictEntry(
            seq,
            time,
            _need(doc, "rule", str, where),
            _need(doc, "rfc", str, where),
            level,
            outcome,
            _need(doc, "message", str, where),
            tuple(evidence),
        )
    raise TraceFormatError(f"{where}.type: expected message, timer, note or verdict, got {kind!r}")


def trace_from_json(doc: dict[str, Any]) -> Trace:
    """A :class:`Trace` holding the entries of a document :func:`trace_to_json` made (messages re-parsed).

    The entries keep their recorded ``seq`` and ``time``; the trace is a record to read and render, appending to it
    stamps new entries with the current clock.
    """
    if not isinstance(doc, dict):
        raise TraceFormatError(f"trace: expected an object, got {type(doc).__name__}")
    fmt = doc.get("format", TRACE_FORMAT)
    if fmt != TRACE_FORMAT:
        raise TraceFormatError(f"format: expected {TRACE_FORMAT!r}, got {fmt!r}")
    entries = [_entry_from_json(e, i) for i, e in enumerate(_need(doc, "entries", list, "trace"))]
    started = _need(doc, "started_wall", (int, float), "trace")
    return Trace(name=str(doc.get("name") or ""), started_wall=float(started), _entries=entries)
