"""Header value readers: each checks one header's grammar and builds its typed view.

A reader takes the (unfolded) value and returns ``(typed, problem)``; ``problem`` is ``(defect code, detail)`` or
``None``. :func:`read_header` applies the right reader to every line of one header and records defects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._abnf import (
    RE_ADDR_SPEC,
    RE_CSEQ,
    RE_DATE,
    RE_DIGITS,
    RE_MEDIA_TYPE,
    RE_NAME_ADDR,
    RE_NAME_ADDR_SIMPLE,
    RE_RACK,
    RE_SIP_URI_STRICT,
    RE_TOKEN,
    RE_VIA,
    RE_VIA_SIMPLE,
    RE_VIA_STRICT,
    RE_WARNING,
    RE_WORD_CALLID,
    quotes_balanced,
    split_commas,
)
from ._defects import Defect
from ._headers import _BY_KEY, ContentType, CSeq, HeaderDef, HeaderField, NameAddr, RAck, Via
from ._uri import classify_host, parse_port, parse_uri

__all__ = ["read_header", "SINGLE_KEYS", "READ_KEYS", "read_cseq", "read_uint", "c_reader_specs"]

_new = tuple.__new__

# A problem found by a value reader: (code, detail)
_Problem = tuple[str, str]


def _read_name_addr(value: str, require_brackets: bool = False) -> tuple[NameAddr | None, _Problem | None]:
    m = RE_NAME_ADDR_SIMPLE.fullmatch(value)
    if m is not None and RE_SIP_URI_STRICT.fullmatch(m.group(2)) is not None:
        return _new(NameAddr, (m.group(1), m.group(2), m.group(3), True, value)), None
    if not quotes_balanced(value):
        return None, ("bad-quoting", "a quoted display name is not closed")
    if "<" in value or '"' in value or require_brackets:
        m = RE_NAME_ADDR.fullmatch(value)
        if m is None:
            return None, ("bad-name-addr", f"not a name-addr: {value[:60]!r}")
        display = m.group(1) or (m.group(2) or "")
        na = NameAddr(display, m.group(3), m.group(4), True, value)
    else:
        m = RE_ADDR_SPEC.fullmatch(value)
        if m is None:
            return None, ("bad-name-addr", f"not an addr-spec: {value[:60]!r}")
        uri_text = m.group(1)
        if "?" in uri_text:
            # RFC 3261 §20.10: a URI with a comma, question mark or semicolon MUST be enclosed in angle brackets.
            return None, ("bad-name-addr", "a URI with '?' must be enclosed in angle brackets (RFC 3261 §20.10)")
        na = NameAddr("", uri_text, m.group(2), False, value)
    if RE_SIP_URI_STRICT.fullmatch(na.uri_text) is not None:
        return na, None
    _, problem = parse_uri(na.uri_text)
    if problem is not None:
        return na, (problem.code, problem.detail)
    return na, None


def _read_via(value: str) -> tuple[list[Via], _Problem | None]:
    if "," not in value:
        m = RE_VIA_SIMPLE.fullmatch(value) or RE_VIA_STRICT.fullmatch(value)
        if m is not None:
            port = m.group(3)
            return [_new(Via, ("SIP", "2.0", m.group(1), m.group(2), int(port) if port else None, m.group(4), value))], None
    out: list[Via] = []
    problem: _Problem | None = None
    for _, element in split_commas(value):
        m = RE_VIA.fullmatch(element)
        if m is None:
            problem = problem or ("bad-via", f"not a via-parm: {element[:60]!r}")
            continue
        host = m.group(4)
        port_text = m.group(5)
        port = None
        if port_text is not None:
            port = parse_port(port_text)
            if port is None:
                problem = problem or ("bad-port", f"Via port {port_text[:20]!r}")
                continue
        if classify_host(host) is None:
            problem = problem or ("bad-host", f"Via host {host[:40]!r}")
            continue
        if m.group(1).upper() != "SIP" or m.group(2) != "2.0":
            problem = problem or ("bad-via", f"sent-protocol {m.group(1)}/{m.group(2)} is not SIP/2.0")
        out.append(Via(m.group(1), m.group(2), m.group(3), host, port, m.group(6), element))
    return out, problem


def _read_addr_list(value: str, require_brackets: bool) -> tuple[list[NameAddr], _Problem | None]:
    out: list[NameAddr] = []
    problem: _Problem | None = None
    for _, element in split_commas(value) if "," in value else ((0, value),):
        na, p = _read_name_addr(element, require_brackets)
        if na is not None and (p is None or p[0] == "unknown-scheme"):
            out.append(na)
        if p is not None:
            problem = problem or p
    return out, problem


def _read_cseq(value: str) -> tuple[CSeq | None, _Problem | None]:
    m = RE_CSEQ.fullmatch(value)
    if m is None:
        return None, ("bad-cseq", f"not 'number method': {value[:60]!r}")
    num = m.group(1)
    # RFC 3261 §8.1.1.5: "The sequence number MUST be expressible as a 32-bit unsigned integer and MUST be less than 2**31."
    if len(num) > 10 or int(num) >= 2**31:
        return None, ("bad-cseq", f"sequence number {num[:30]} is not below 2**31")
    return CSeq(int(num), m.group(2)), None


def _uint(value: str, code: str, low: int, high: int | None) -> tuple[int | None, _Problem | None]:
    if RE_DIGITS.fullmatch(value) is None:
        return None, (code, f"not a number: {value[:40]!r}")
    if high is not None and (len(value) > 20 or int(value) > high):
        return None, (code, f"{value[:30]} is above {high}")
    number = int(value) if len(value) <= 4000 else 2**32 - 1
    if number < low:
        return None, (code, f"{value} is below {low}")
    return number, None


def _read_tokens(value: str, code: str) -> tuple[tuple[str, ...], _Problem | None]:
    if not value:
        return (), None
    out = []
    problem = None
    for part in value.split(","):
        tag = part.strip(" \t")
        if RE_TOKEN.fullmatch(tag):
            out.append(tag)
        else:
            problem = problem or (code, f"not a token: {tag[:40]!r}")
    return tuple(out), problem


def _read_media_type(value: str) -> tuple[ContentType | None, _Problem | None]:
    m = RE_MEDIA_TYPE.fullmatch(value)
    if m is None:
        return None, ("bad-content-type", f"not type/subtype: {value[:60]!r}")
    return ContentType(m.group(1), m.group(2), m.group(3)), None


def _read_call_id(value: str) -> tuple[str | None, _Problem | None]:
    if RE_WORD_CALLID.fullmatch(value) is None:
        return None, ("bad-call-id", f"not word [@ word]: {value[:60]!r}")
    return value, None


def _read_rack(value: str) -> tuple[RAck | None, _Problem | None]:
    m = RE_RACK.fullmatch(value)
    if m is None:
        return None, ("bad-rack", f"not 'rseq cseq method': {value[:60]!r}")
    rseq, cseq = m.group(1), m.group(2)
    if len(rseq) > 10 or len(cseq) > 10 or not 1 <= int(rseq) <= 2**32 - 1 or int(cseq) >= 2**31:
        return None, ("bad-rack", "RAck numbers out of range")
    return RAck(int(rseq), int(cseq), m.group(3)), None


def _read_date(value: str) -> tuple[str | None, _Problem | None]:
    if RE_DATE.fullmatch(value) is None:
        return None, ("bad-date", f"not an RFC 1123 date in GMT: {value[:60]!r}")
    return value, None


def _read_token(value: str) -> tuple[str | None, _Problem | None]:
    if RE_TOKEN.fullmatch(value) is None:
        return None, ("bad-header-value", f"not a token: {value[:60]!r}")
    return value, None


#: Header kinds that are an unsigned integer in a range of their own: kind -> (defect code, low, high). Max-Forwards
#: (RFC 3261 §20.22: 0-255); RSeq (RFC 3262 §7.1: 1 to 2**32 - 1). The C accelerator takes the same bounds.
_RANGED_UINT = {"max-forwards": ("bad-max-forwards", 0, 255), "rseq": ("bad-rseq", 1, 2**32 - 1)}


def _uint_reader(code: str, low: int, high: int | None) -> Callable[[str], tuple[int | None, _Problem | None]]:
    return lambda v: _uint(v, code, low, high)


_SINGLE_READERS: dict[str, Callable[[str], tuple[Any, _Problem | None]]] = {
    "name-addr": _read_name_addr,
    "cseq": _read_cseq,
    "call-id": _read_call_id,
    "media-type": _read_media_type,
    "rack": _read_rack,
    "date": _read_date,
    "token": _read_token,
    **{kind: _uint_reader(*bounds) for kind, bounds in _RANGED_UINT.items()},
}
#: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )   (RFC 3261 §25.1)
_RE_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_UINT_CODES = {"content-length": "bad-content-length", "expires": "bad-expires", "min-expires": "bad-expires"}
#: RFC 3261 §20.19: "The value of this field is an integral number of seconds (in decimal) between 0 and (2**32)-1".
_UINT_HIGH = {"expires": 2**32 - 1}


def _read_contact(value: str) -> tuple[list[NameAddr], _Problem | None]:
    """Contact values; an expires parameter must be delta-seconds within the range of Expires (RFC 3261 §10.2.1.1)
    and a q parameter a qvalue (§20.10: c-p-q = "q" EQUAL qvalue; RFC 4475 §3.1.2.4 names both)."""
    out, problem = _read_addr_list(value, False)
    if problem is None:
        for na in out:
            expires = na.param("expires")
            if expires is not None:
                _, problem = _uint(expires, "bad-expires", 0, 2**32 - 1)
                if problem is not None:
                    return out, problem
            q = na.param("q")
            if q is not None and _RE_QVALUE.fullmatch(q) is None:
                return out, ("bad-header-value", f"q={q[:20]} is not a qvalue from 0 to 1")
    return out, problem


def _read_warning(value: str) -> tuple[list[tuple[int, str, str]], _Problem | None]:
    """Warning values as (warn-code, warn-agent, warn-text); RFC 3261 §20.43: warn-code = 3DIGIT."""
    out: list[tuple[int, str, str]] = []
    problem: _Problem | None = None
    for _, element in split_commas(value):
        m = RE_WARNING.fullmatch(element)
        if m is None:
            problem = problem or ("bad-header-value", f"not 'warn-code warn-agent \"warn-text\"': {element[:60]!r}")
            continue
        out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out, problem


_LIST_READERS: dict[str, Callable[[str], tuple[Any, _Problem | None]]] = {
    "via": _read_via,
    "contact": _read_contact,
    "route": lambda v: _read_addr_list(v, True),
    "methods": lambda v: _read_tokens(v, "bad-header-value"),
    "option-tags": lambda v: _read_tokens(v, "bad-option-tag"),
    "warning": _read_warning,
}


#: Per header key, the reader of its value: single-valued headers ...
_SINGLE_BY_KEY: dict[str, Callable[[str], tuple[Any, _Problem | None]]] = {
    key: (
        _uint_reader(_UINT_CODES.get(key, "bad-header-value"), 0, _UINT_HIGH.get(key))
        if d.kind == "uint"
        else _SINGLE_READERS[d.kind]
    )
    for key, d in _BY_KEY.items()
    if d.arity == "single" and d.kind != "text"
}
#: ... and list-valued ones (Via, Contact, Route, option tags).
_LIST_BY_KEY: dict[str, Callable[[str], tuple[Any, _Problem | None]]] = {
    key: _LIST_READERS[d.kind] for key, d in _BY_KEY.items() if d.arity == "list" and d.kind != "text"
}


def _header_defect(problem: _Problem, hdef: HeaderDef, offset: int) -> Defect:
    code, detail = problem
    if code == "unknown-scheme":
        return Defect(code, hdef.name, offset, detail)
    return Defect(code, hdef.name, offset, detail, fatal_override=None if hdef.fatal else False)




#: The readers the C accelerator (``_speedups.c``) may stand in for, as header key -> (kind, low, high); ``high`` -1
#: is "no upper bound". Its recognisers accept only values the reader's fast path accepts, and build the same typed
#: value; anything else is left to the reader here. CSeq and Content-Length are read while parsing, not here.
_C_SINGLE_KINDS = {"name-addr": 2, "call-id": 5, "media-type": 6, "token": 7}
_C_LIST_KINDS = {"via": 1, "contact": 3, "route": 4, "methods": 9, "option-tags": 9}
_C_UINT = 8


def c_reader_specs() -> dict[str, tuple[int, int, int]]:
    specs: dict[str, tuple[int, int, int]] = {}
    for key, d in _BY_KEY.items():
        if key in ("cseq", "content-length"):
            continue
        if key in _SINGLE_BY_KEY:
            if d.kind in _C_SINGLE_KINDS:
                specs[key] = (_C_SINGLE_KINDS[d.kind], 0, -1)
            elif d.kind == "uint":
                specs[key] = (_C_UINT, 0, _UINT_HIGH.get(key, -1))
            elif d.kind in _RANGED_UINT:
                _, low, high = _RANGED_UINT[d.kind]
                specs[key] = (_C_UINT, low, high)
        elif key in _LIST_BY_KEY and d.kind in _C_LIST_KINDS:
            specs[key] = (_C_LIST_KINDS[d.kind], 0, -1)
    return specs


#: Keys of headers that may appear once.
SINGLE_KEYS = frozenset(k for k, d in _BY_KEY.items() if d.arity == "single")
#: Keys of headers that have a reader (all others are free text).
READ_KEYS = frozenset(_SINGLE_BY_KEY) | frozenset(_LIST_BY_KEY)
read_cseq = _read_cseq
read_uint = _uint


def read_header(
    key: str,
    idx: list[int],
    headers: tuple[HeaderField, ...],
    typed: dict[str, Any],
    defects: list[Defect],
    offset_of: Callable[[int], int],
) -> None:
    """Read header ``key`` (its lines are ``headers[i] for i in idx``) into ``typed``, recording defects."""
    reader = _SINGLE_BY_KEY.get(key)
    if reader is not None:
        h = headers[idx[0]]
        value, problem = reader(h.value)
        if value is not None:
            typed[key] = value
        if problem is not None:
            defects.append(_header_defect(problem, _BY_KEY[key], offset_of(h.offset)))
        return
    list_reader = _LIST_BY_KEY.get(key)
    if list_reader is None:
        return
    collected: list[Any] = []
    for i in idx:
        h = headers[i]
        if key == "contact" and h.value == "*":
            typed["contact*"] = True
            continue
        items, problem = list_reader(h.value)
        collected.extend(items)
        if problem is not None:
            defects.append(_header_defect(problem, _BY_KEY[key], offset_of(h.offset)))
    typed[key] = tuple(collected)
