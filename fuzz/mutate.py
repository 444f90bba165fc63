"""Structural mutations of whole SIP messages, on top of the grammar's near misses.

:func:`mutate` takes the bytes a scenario would send and returns them changed in exactly one labelled way
(:class:`MessageMutation`: operator, target, description). The operators are SIP-aware: headers removed, duplicated,
reordered, folded or written in compact form; Content-Length lies; many Via or Route values; long parameter lists;
bodies whose type and content disagree; unknown methods with bodies; NUL and control octets; CRLF injection inside a
value; SDP fields with boundary values; and the grammar's near misses (:func:`fuzz.grammar.near_misses`) aimed at the
start line, a header or an SDP line. Values also come from boofuzz's heuristics: the ``String`` fuzz library and the
``BitField`` / ``Word`` integer boundaries.

Everything is deterministic: the same bytes and the same ``random.Random`` state give the same result. The caller
seeds the generator from (seed, case number) (:func:`case_rng`).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fuzz.grammar import COMPACT_FORMS, near_misses

__all__ = [
    "OPERATORS",
    "MessageMutation",
    "Mutated",
    "RawMessage",
    "boofuzz_integers",
    "boofuzz_strings",
    "case_rng",
    "mutate",
    "normalise",
]

#: Every operator :func:`mutate` knows, with its weight when none is forced (near misses dominate).
OPERATORS: dict[str, int] = {
    "near-miss": 30,
    "remove-header": 5,
    "duplicate-header": 5,
    "reorder-headers": 3,
    "fold-header": 3,
    "compact-form": 3,
    "content-length-bigger": 2,
    "content-length-smaller": 2,
    "content-length-negative": 2,
    "content-length-huge": 2,
    "content-length-two": 2,
    "many-via": 3,
    "many-route": 3,
    "long-params": 3,
    "body-type-mismatch": 4,
    "unknown-method-body": 3,
    "nul-byte": 4,
    "control-byte": 3,
    "crlf-injection": 3,
    "sdp-field": 6,
    "method-swap": 4,
    "boofuzz-string": 5,
    "boofuzz-integer": 4,
}

#: The header names long lists are made of, and how many values "many" means (around typical parser limits).
_MANY_COUNTS = (10, 41, 70, 128, 257)
_LONG_PARAM_COUNTS = (32, 100, 300, 1000)
_CONTROL = "\x01\x07\x08\x0b\x0c\x1b\x7f"
_UNKNOWN_METHODS = ("FOO", "XINVITE", "INVITEX", "NOTAMETHOD", "A" * 64, "invite")
_MISMATCHED_BODIES: tuple[tuple[str, bytes], ...] = (
    ("application/sdp", b"<?xml version='1.0'?><not-sdp/>"),
    ("application/sdp", b"\x00\x01\x02\x03binary"),
    ("application/sdp", b"v=9\r\nm=\r\n"),
    ("application/pidf+xml", b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"),
    ("multipart/mixed;boundary=x", b"--y\r\n\r\nno boundary\r\n"),
    ("text/plain;charset=utf-8", b"\xff\xfe\xc0\x80"),
    ("application/sdp", b""),
    ("application/", b"v=0\r\n"),
    ("application/ ;charset=utf-8", b"hello"),
)
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])-?[0-9]+(?![A-Za-z0-9])")
_REVERSE_COMPACT = {full.lower(): short for short, full in COMPACT_FORMS.items()}
_SDP_RULES = {
    "v": "proto-version",
    "o": "origin-field",
    "s": "session-name-field",
    "c": "connection-field",
    "t": "time-fields",
    "m": "media-field",
    "a": "attribute-fields",
    "b": "bandwidth-fields",
}


@dataclass(frozen=True, slots=True)
class MessageMutation:
    """What was changed: the ``operator``, the ``target`` (header name, ``start-line``, ``body``, an SDP field such
    as ``sdp:m``, or a grammar rule) and a one-line ``description`` naming the value."""

    operator: str
    target: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return {"operator": self.operator, "target": self.target, "description": self.description}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> MessageMutation:
        return cls(data["operator"], data["target"], data["description"])


@dataclass(frozen=True, slots=True)
class Mutated:
    """The mutated bytes and the label of the one mutation applied."""

    data: bytes
    mutation: MessageMutation


@dataclass(slots=True)
class RawMessage:
    """A message cut into its start line, header lines (as ``(name, value)`` octet-space text) and body, without
    parsing anything: the raw view the operators work on. :meth:`to_bytes` joins it back."""

    start_line: str
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> RawMessage:
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            head, body = data, b""
        lines = head.decode("latin-1").split("\r\n")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                headers.append((line, "\x00nocolon"))
            else:
                headers.append((name.rstrip(), value.lstrip()))
        return cls(lines[0], headers, body)

    def to_bytes(self) -> bytes:
        lines = [self.start_line]
        for name, value in self.headers:
            lines.append(name if value == "\x00nocolon" else f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def find(self, name: str) -> list[int]:
        """Indexes of the header lines named ``name`` (full or compact form, any case)."""
        low = name.lower()
        short = _REVERSE_COMPACT.get(low)
        return [i for i, (n, _) in enumerate(self.headers) if n.lower() == low or (short and n.lower() == short)]

    def set_content_length(self, value: str | None = None) -> None:
        """Set every Content-Length to ``value`` (default: the body's length), adding one if there is none."""
        text = str(len(self.body)) if value is None else value
        idx = self.find("Content-Length")
        if not idx:
            self.headers.append(("Content-Length", text))
        for i in idx:
            self.headers[i] = (self.headers[i][0], text)

    def content_type(self) -> str:
        idx = self.find("Content-Type")
        return self.headers[idx[0]][1].lower() if idx else ""


def case_rng(seed: int, number: int, purpose: str = "") -> random.Random:
    """The generator for one case: the same (seed, number, purpose) gives the same sequence, on any machine."""
    return random.Random(f"sipcert-fuzz:{seed}:{number}:{purpose}")


@functools.lru_cache(maxsize=1)
def boofuzz_strings() -> tuple[str, ...]:
    """boofuzz's ``String`` fuzz library (octet-space text), entries up to 4 KiB."""
    try:
        from boofuzz.primitives import String
    except ImportError:  # pragma: no cover - boofuzz is a dependency
        return ("%s%s%s%n", "A" * 300, "\x00")
    out = []
    for v in getattr(String, "_fuzz_library", ()):
        text = v if isinstance(v, str) else bytes(v).decode("latin-1")
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "surrogateescape").decode("latin-1")
        if len(text) <= 4096:
            out.append(text)
    return tuple(out)


@functools.lru_cache(maxsize=1)
def boofuzz_integers() -> tuple[str, ...]:
    """Integer boundary values from boofuzz's ``BitField`` heuristics for 8, 16 (``Word``), 32 and 64 bits, signed
    renderings included (-1, -2**31, ...), as decimal text."""
    values: set[int] = set()
    try:
        from boofuzz.primitives import BitField
    except ImportError:  # pragma: no cover
        return ("0", "-1", "65535", "4294967295")
    for width in (8, 16, 32, 64):
        values.update(BitField(name=f"w{width}", default_value=0, width=width).mutations(0))
    for v in list(values):
        if v > 2**31:
            values.add(v - 2**32 if v < 2**32 else v - 2**64)
    return tuple(str(v) for v in sorted(values, key=lambda v: (abs(v).bit_length(), v)))


@functools.lru_cache(maxsize=4096)
def _near_misses(rule: str, value: bytes) -> tuple[tuple[str, tuple[bytes, ...], tuple[str, ...]], ...]:
    """Near misses of ``value`` grouped by kind: ``(kind, values, targets)``. Computed once per (rule, value) with
    a fixed generator, so that the caller's generator alone decides which one is used."""
    try:
        found = near_misses(rule, value, random.Random(0), per_kind=6)
    except Exception:  # an unknown rule or a grammar limit: no near misses for this value
        return ()
    kinds: dict[str, tuple[list[bytes], list[str]]] = {}
    for m in found:
        vals, targets = kinds.setdefault(m.kind, ([], []))
        vals.append(m.data)
        targets.append(m.target)
    return tuple((k, tuple(v), tuple(t)) for k, (v, t) in kinds.items())


def _weighted(rng: random.Random, table: dict[str, int]) -> str:
    names = list(table)
    return rng.choices(names, weights=[table[n] for n in names])[0]


def _header_choice(rng: random.Random, msg: RawMessage, focus: Sequence[str]) -> int | None:
    """A header line index: one of the ``focus`` headers half the time (when present), else any."""
    if not msg.headers:
        return None
    if focus and rng.random() < 0.5:
        idx = [i for name in focus for i in msg.find(name)]
        if idx:
            return rng.choice(idx)
    return rng.randrange(len(msg.headers))


def _short(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else f"{text[:limit]}...({len(text)} octets)"
    return repr(shown)


def mutate(
    data: bytes,
    rng: random.Random,
    *,
    operator: str | None = None,
    focus: Sequence[str] = (),
) -> Mutated:
    """Apply one mutation to the message ``data``.

    ``operator`` forces one of :data:`OPERATORS` (default: drawn by weight with ``rng``). ``focus`` names the header
    fields (or ``body``) the scenario step is about -- ``RAck`` for a PRACK, ``body`` for an INFO -- so that targeted
    operators aim there half of the time. An operator that does not apply to this message (no body for
    ``sdp-field``) falls back to a near miss.
    """
    if operator is not None and operator not in OPERATORS:
        raise ValueError(f"unknown mutation operator {operator!r}; valid choices: {', '.join(OPERATORS)}")
    op = operator or _weighted(rng, OPERATORS)
    if operator is None and "body" in focus and rng.random() < 0.25 and b"application/sdp" in data:
        op = "sdp-field"  # a step about its SDP body: its fields get a quarter of the mutations
    elif operator is None and "RAck" in focus and rng.random() < 0.15:
        op = "method-swap"  # a PRACK: the method its RAck names
    template, back = _normalised(data)
    msg = RawMessage.from_bytes(template)
    result = _APPLY[op](msg, rng, focus)
    if result is None and op != "near-miss":
        result = _near_miss(msg, rng, focus)
    if result is None:  # nothing to aim at (an empty message): a NUL octet at the end
        return Mutated(data + b"\x00", MessageMutation("nul-byte", "body", "a NUL octet appended"))
    if not back:
        return result
    out, text = result.data, result.mutation.description
    head_end = out.find(b"\r\n\r\n")
    head, body = (out, b"") if head_end < 0 else (out[:head_end], out[head_end:])
    for placeholder, original in back:
        head = head.replace(placeholder.encode("latin-1"), original.encode("latin-1"))
        text = text.replace(placeholder, original)
    m = result.mutation
    return Mutated(head + body, MessageMutation(m.operator, m.target, text))


#: The values that change from one case to the next (branch, tags, Call-ID, CSeq / RSeq / RAck numbers, ports):
#: replaced by fixed placeholders before mutating, so the grammar's near misses are computed once per message shape.
_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"branch=z9hG4bK([^;,\s>]+)"), "PHb{}x"),
    (re.compile(r";tag=([^;,\s>]+)"), "PHt{}x"),
    (re.compile(r"(?im)^(?:call-id|i)[ \t]*:[ \t]*([^\s@]+)"), "PHc{}x"),
    (re.compile(r"(?im)^(?:cseq|rseq)[ \t]*:[ \t]*(\d+)"), "91827{}"),
    (re.compile(r"(?im)^rack[ \t]*:[ \t]*(\d+)"), "91827{}"),
    (re.compile(r"(?im)^rack[ \t]*:[ \t]*\d+[ \t]+(\d+)"), "91827{}"),
    (re.compile(r"(?<![0-9.])(?:\d{1,3}\.){3}\d{1,3}:(\d+)"), "4010{}"),
)


@functools.lru_cache(maxsize=256)
def _normalised(data: bytes) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    new, back = normalise(data)
    return new, tuple(back)


def normalise(data: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    """The message with its volatile values replaced by placeholders, and the ``(placeholder, original)`` pairs that
    undo it. The body is left alone."""
    cut = data.find(b"\r\n\r\n")
    head, body = (data, b"") if cut < 0 else (data[:cut], data[cut:])
    text = head.decode("latin-1")
    spans: list[tuple[int, int, str]] = []
    mapping: dict[tuple[str, str], str] = {}
    for rx, pattern in _VOLATILE:
        for m in rx.finditer(text):
            value = m.group(1)
            key = (pattern, value)
            if key not in mapping:
                mapping[key] = pattern.format(len(mapping))
            spans.append((m.start(1), m.end(1), mapping[key]))
    if not spans:
        return data, []
    spans.sort()
    out, last = [], 0
    for start, end, placeholder in spans:
        if start < last:
            continue
        out.append(text[last:start])
        out.append(placeholder)
        last = end
    out.append(text[last:])
    new = "".join(out)
    back = [(ph, value) for (_, value), ph in mapping.items()]
    if any(text.count(ph) for ph, _ in back):
        return data, []  # a placeholder already in the message: leave it as it is
    back.sort(key=lambda pair: -len(pair[0]))
    return new.encode("latin-1") + body, back


_Operator = Callable[["RawMessage", random.Random, Sequence[str]], "Mutated | None"]


# -- the operators ---------------------------------------------------------------------------------------------------


def _done(msg: RawMessage, op: str, target: str, description: str, *, fix_length: bool = False) -> Mutated:
    if fix_length:
        msg.set_content_length()
    return Mutated(msg.to_bytes(), MessageMutation(op, target, description))


def _near_miss(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    from fuzz.grammar import header_rule

    choices: list[str] = ["start-line"] * 2 + ["header"] * 6
    if msg.body and msg.content_type().startswith("application/sdp"):
        choices += ["sdp"] * (4 if "body" in focus else 1)
    where = rng.choice(choices)
    if where == "header" and "body" in focus and msg.body and rng.random() < 0.5:
        where = "sdp" if msg.content_type().startswith("application/sdp") else where
    if where == "start-line":
        parts = msg.start_line.split(" ")
        if len(parts) != 3:
            return None
        if rng.random() < 0.75:
            picked = _pick_near_miss(rng, "Request-URI", parts[1].encode("latin-1"))
            if picked is None:
                return None
            value, kind, target = picked
            msg.start_line = f"{parts[0]} {value} {parts[2]}"
            return _done(msg, f"near-miss:{kind}", "Request-URI", f"Request-URI{_at(target)} -> {_short(value)}")
        picked = _pick_near_miss(rng, "Method", parts[0].encode("latin-1"))
        if picked is None:
            return None
        value, kind, target = picked
        msg.start_line = f"{value} {parts[1]} {parts[2]}"
        return _done(msg, f"near-miss:{kind}", "Method", f"method -> {_short(value)}")
    if where == "sdp":
        lines = msg.body.decode("latin-1").split("\r\n")
        idx = [i for i, ln in enumerate(lines) if len(ln) > 2 and ln[1] == "=" and ln[0] in _SDP_RULES]
        if not idx:
            return None
        i = rng.choice(idx)
        rule = _SDP_RULES[lines[i][0]]
        text = lines[i] + "\r\n" if rule != "proto-version" else lines[i]
        picked = _pick_near_miss(rng, rule, text.encode("latin-1"))
        if picked is None:
            return None
        value, kind, target = picked
        lines[i] = value[:-2] if value.endswith("\r\n") else value
        msg.body = "\r\n".join(lines).encode("latin-1")
        return _done(msg, f"near-miss:{kind}", f"sdp:{text[0]}", f"SDP {text[0]}= line{_at(target)} -> "
                     f"{_short(lines[i])}", fix_length=True)
    h = _header_choice(rng, msg, [f for f in focus if f != "body"])
    if h is None:
        return None
    name, value = msg.headers[h]
    rule = header_rule(name)
    line = f"{name}: {value}"
    picked = _pick_near_miss(rng, rule, line.encode("latin-1"))
    if picked is None:
        return None
    new, kind, target = picked
    nname, colon, nvalue = new.partition(":")
    msg.headers[h] = (nname, nvalue.lstrip(" ")) if colon else (new, "\x00nocolon")
    return _done(msg, f"near-miss:{kind}", _canon(name), f"{_canon(name)}{_at(target)} -> {_short(new)}")


def _at(target: str) -> str:
    return f" ({target})" if target else ""


def _canon(name: str) -> str:
    low = name.strip().lower()
    return COMPACT_FORMS.get(low, name.strip())


def _pick_near_miss(rng: random.Random, rule: str, value: bytes) -> tuple[str, str, str] | None:
    groups = _near_misses(rule, value)
    if not groups:
        return None
    kind, values, targets = rng.choice(groups)
    j = rng.randrange(len(values))
    return values[j].decode("latin-1"), kind, targets[j]


def _remove_header(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    i = _header_choice(rng, msg, focus)
    if i is None:
        return None
    name, _ = msg.headers.pop(i)
    return _done(msg, "remove-header", _canon(name), f"the {name} header line removed")


def _duplicate_header(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    i = _header_choice(rng, msg, focus)
    if i is None:
        return None
    name, value = msg.headers[i]
    if rng.random() < 0.5:
        msg.headers.insert(i + 1, (name, value))
        how = "repeated"
    else:
        other = _tweak(value, rng)
        msg.headers.insert(i + 1, (name, other))
        how = f"repeated with a different value {_short(other)}"
    return _done(msg, "duplicate-header", _canon(name), f"{name} {how}")


def _tweak(value: str, rng: random.Random) -> str:
    m = list(_NUMBER.finditer(value))
    if m:
        x = rng.choice(m)
        return value[: x.start()] + str(int(x.group()) + 1) + value[x.end() :]
    return value + "x"


def _reorder_headers(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    if len(msg.headers) < 2:
        return None
    how = rng.choice(("reversed", "shuffled", "first-last"))
    if how == "reversed":
        msg.headers.reverse()
    elif how == "shuffled":
        rng.shuffle(msg.headers)
    else:
        msg.headers.insert(0, msg.headers.pop())
    return _done(msg, "reorder-headers", "headers", f"header lines {how}")


def _fold_header(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    i = _header_choice(rng, msg, focus)
    if i is None:
        return None
    name, value = msg.headers[i]
    cuts = [m.start() for m in re.finditer(r"[ ;,]", value)] or [len(value) // 2]
    at = rng.choice(cuts)
    fold = rng.choice(("\r\n ", "\r\n\t", "\r\n  \t ", "\r\n \r\n "))
    msg.headers[i] = (name, value[:at] + fold + value[at:].lstrip(" "))
    return _done(msg, "fold-header", _canon(name), f"{name} folded with {fold!r}")


def _compact_form(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    idx = [i for i, (n, _) in enumerate(msg.headers) if n.lower() in _REVERSE_COMPACT or n.lower() in COMPACT_FORMS]
    if not idx:
        return None
    how = rng.choice(("compact", "case", "mixed-space"))
    changed = []
    for i in idx if how != "mixed-space" else [rng.choice(idx)]:
        name, value = msg.headers[i]
        low = name.lower()
        if how == "compact":
            new = _REVERSE_COMPACT.get(low, name)
            new = new.upper() if rng.random() < 0.3 else new
        elif how == "case":
            new = name.swapcase()
        else:
            new = name + rng.choice((" ", "\t", "  \t"))
        msg.headers[i] = (new, value)
        changed.append(name)
    return _done(msg, "compact-form", "headers", f"{how} header names for {', '.join(changed[:6])}")


def _content_length(kind: str) -> _Operator:
    def apply(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
        n = len(msg.body)
        if kind == "bigger":
            value = str(n + rng.choice((1, 2, 100, 4096)))
        elif kind == "smaller":
            value = str(max(0, n - rng.choice((1, 2, 10)))) if n else "0"
            if n == 0:
                msg.body = b"v=0\r\n" * rng.choice((1, 3))
        elif kind == "negative":
            value = rng.choice(("-1", "-0", f"-{n or 1}", "-2147483648"))
        elif kind == "huge":
            value = rng.choice(("2147483648", "4294967296", "18446744073709551616", "9" * 40, "1e9", "0x10"))
        else:
            msg.set_content_length()
            idx = msg.find("Content-Length")
            other = str(n + rng.choice((1, 5, -1 if n else 7)))
            msg.headers.insert(idx[0] + rng.choice((0, 1)), ("Content-Length", other))
            return _done(msg, "content-length-two", "Content-Length", f"two Content-Length values: {n} and {other}")
        msg.set_content_length(value)
        return _done(msg, f"content-length-{kind}", "Content-Length", f"Content-Length {value} for a {len(msg.body)}-octet body")

    return apply


def _many(name: str) -> _Operator:
    def apply(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
        count = rng.choice(_MANY_COUNTS)
        idx = msg.find(name)
        if name == "Via":
            base = msg.headers[idx[0]][1] if idx else "SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKx"
            values = [re.sub(r"branch=[^;,\s]*", f"branch=z9hG4bKfz{k}", base) for k in range(count)]
            values = [v for v in values[1:]]
            where = (idx[0] + 1) if idx else 0
        else:
            values = [f"<sip:proxy{k}.invalid;lr>" for k in range(count)]
            where = idx[0] if idx else max(0, len(msg.headers) - 1)
        if rng.random() < 0.5:
            for v in reversed(values):
                msg.headers.insert(where, (name, v))
            how = "header lines"
        else:
            msg.headers.insert(where, (name, ", ".join(values)))
            how = "values in one line"
        return _done(msg, f"many-{name.lower()}", name, f"{len(values)} more {name} {how}")

    return apply


def _long_params(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    count = rng.choice(_LONG_PARAM_COUNTS)
    same = rng.random() < 0.3
    params = "".join(f";p{'' if same else k}={k}" for k in range(count))
    if rng.random() < 0.3:
        parts = msg.start_line.split(" ")
        if len(parts) == 3:
            msg.start_line = f"{parts[0]} {parts[1]}{params} {parts[2]}"
            return _done(msg, "long-params", "Request-URI", f"{count} URI parameters on the Request-URI")
    cands = [i for name in ("Via", "From", "To", "Contact", "Route", "Content-Type") for i in msg.find(name)]
    if not cands:
        return None
    i = rng.choice(cands)
    name, value = msg.headers[i]
    msg.headers[i] = (name, value + params)
    return _done(msg, "long-params", _canon(name), f"{count} {'identical ' if same else ''}parameters on {name}")


def _body_type_mismatch(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    ctype, body = rng.choice(_MISMATCHED_BODIES)
    msg.body = body
    idx = msg.find("Content-Type")
    if idx:
        msg.headers[idx[0]] = (msg.headers[idx[0]][0], ctype)
    else:
        cl = msg.find("Content-Length")
        msg.headers.insert(cl[0] if cl else len(msg.headers), ("Content-Type", ctype))
    return _done(msg, "body-type-mismatch", "body", f"Content-Type {ctype} with body {_short(body.decode('latin-1'))}",
                 fix_length=True)


def _unknown_method_body(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    parts = msg.start_line.split(" ")
    if len(parts) != 3:
        return None
    method = rng.choice(_UNKNOWN_METHODS)
    msg.start_line = f"{method} {parts[1]} {parts[2]}"
    for i in msg.find("CSeq"):
        name, value = msg.headers[i]
        num = value.split(" ", 1)[0]
        msg.headers[i] = (name, f"{num} {method}" if rng.random() < 0.8 else value)
    if not msg.body:
        msg.body = rng.choice((b"hello\r\n", b"v=0\r\n", b"\x00" * 16, b"A" * 1500))
        cl = msg.find("Content-Length")
        msg.headers.insert(cl[0] if cl else len(msg.headers), ("Content-Type", "application/x-sipcert-fuzz"))
    return _done(msg, "unknown-method-body", "Method", f"method {_short(method)} with a {len(msg.body)}-octet body",
                 fix_length=True)


def _inject(kind: str) -> _Operator:
    def apply(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
        if kind == "nul-byte":
            octets = rng.choice(("\x00", "\x00" * 4, "%00\x00"))
        elif kind == "control-byte":
            octets = rng.choice(_CONTROL)
        else:
            octets = rng.choice(("\r\n", "\r\nX-Injected: 1\r\n", "\n", "\r", "\r\n\r\n", "\r\nVia: SIP/2.0/UDP evil"))
        targets = ["start-line", "header"] + (["body"] if msg.body or kind == "nul-byte" else [])
        if "body" in focus and "body" in targets:
            targets += ["body"] * 3
        where = rng.choice(targets)
        if where == "body" and kind != "crlf-injection":
            body = msg.body.decode("latin-1")
            at = rng.randint(0, len(body))
            msg.body = (body[:at] + octets + body[at:]).encode("latin-1")
            return _done(msg, kind, "body", f"{octets!r} inserted in the body at offset {at}", fix_length=True)
        if where == "start-line":
            at = rng.randint(0, len(msg.start_line))
            msg.start_line = msg.start_line[:at] + octets + msg.start_line[at:]
            return _done(msg, kind, "start-line", f"{octets!r} inserted in the start line at offset {at}")
        i = _header_choice(rng, msg, [f for f in focus if f != "body"])
        if i is None:
            return None
        name, value = msg.headers[i]
        at = rng.randint(0, len(value))
        msg.headers[i] = (name, value[:at] + octets + value[at:])
        return _done(msg, kind, _canon(name), f"{octets!r} inserted in {name} at offset {at}")

    return apply


def _sdp_field(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    if not msg.body or not msg.content_type().startswith("application/sdp"):
        return None
    lines = msg.body.decode("latin-1").split("\r\n")
    idx = [i for i, ln in enumerate(lines) if len(ln) > 2 and ln[1] == "="]
    if not idx:
        return None
    preferred = [i for i in idx if lines[i][0] in "mc"]
    i = rng.choice(preferred) if preferred and rng.random() < 0.6 else rng.choice(idx)
    line = lines[i]
    numbers = list(_NUMBER.finditer(line))
    how = rng.random()
    if numbers and how < 0.6:
        m = numbers[0] if rng.random() < 0.75 else rng.choice(numbers)
        value = rng.choice(("0", "0", "0", "-1", "65536", "65535", "2147483648", "4294967296", "99999999999999999999"))
        lines[i] = line[: m.start()] + value + line[m.end() :]
        what = f"number {m.group()} -> {value}"
    elif how < 0.8:
        value = rng.choice(boofuzz_strings())
        lines[i] = line[:2] + value
        what = f"value -> {_short(value)}"
    elif how < 0.9:
        lines[i] = line[:2]
        what = "value emptied"
    else:
        lines.insert(i, line)
        what = "line repeated"
    msg.body = "\r\n".join(lines).encode("latin-1")
    return _done(msg, "sdp-field", f"sdp:{line[0]}", f"SDP {line[0]}= {what}", fix_length=True)


_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO", "MESSAGE")


def _method_swap(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    """Another method (or the same in another case) in the start line, CSeq or RAck."""
    cands = [i for name in ("RAck", "CSeq") for i in msg.find(name)]
    focused = [i for f in focus for i in msg.find(f) if i in cands]
    if focused and rng.random() < 0.7:
        i = rng.choice(focused)
    elif cands and rng.random() < 0.7:
        i = rng.choice(cands)
    else:
        parts = msg.start_line.split(" ")
        if len(parts) != 3:
            return None
        new = rng.choice([m for m in _METHODS if m != parts[0]] + [parts[0].lower()])
        msg.start_line = f"{new} {parts[1]} {parts[2]}"
        return _done(msg, "method-swap", "Method", f"method {parts[0]} -> {new} (CSeq unchanged)")
    name, value = msg.headers[i]
    words = value.rsplit(" ", 1)
    if len(words) != 2:
        return None
    old = words[1]
    new = rng.choice([m for m in _METHODS if m != old] + [old.lower(), old.capitalize()])
    msg.headers[i] = (name, f"{words[0]} {new}")
    return _done(msg, "method-swap", _canon(name), f"{name} method {old} -> {new}")


def _boofuzz_string(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    value = rng.choice(boofuzz_strings())
    if rng.random() < 0.25:
        parts = msg.start_line.split(" ")
        if len(parts) == 3:
            m = re.match(r"(sips?:)([^@;>]*@)?(.*)", parts[1])
            if m:
                uri = f"{m.group(1)}{value}@{m.group(3)}"
                msg.start_line = f"{parts[0]} {uri} {parts[2]}"
                return _done(msg, "boofuzz-string", "Request-URI", f"Request-URI user -> {_short(value)}")
    i = _header_choice(rng, msg, [f for f in focus if f != "body"])
    if i is None:
        return None
    name, old = msg.headers[i]
    tokens = list(re.finditer(r"[A-Za-z0-9._~!*'%+-]+", old))
    if tokens and rng.random() < 0.7:
        t = rng.choice(tokens)
        msg.headers[i] = (name, old[: t.start()] + value + old[t.end() :])
        what = f"token {_short(t.group(), 16)}"
    else:
        msg.headers[i] = (name, value)
        what = "value"
    return _done(msg, "boofuzz-string", _canon(name), f"{name} {what} -> {_short(value)}")


def _boofuzz_integer(msg: RawMessage, rng: random.Random, focus: Sequence[str]) -> Mutated | None:
    cands = [(i, m) for i, (_, v) in enumerate(msg.headers) for m in _NUMBER.finditer(v)]
    focused = [(i, m) for (i, m) in cands if any(i in msg.find(f) for f in focus if f != "body")]
    if not cands:
        return None
    i, m = rng.choice(focused) if focused and rng.random() < 0.5 else rng.choice(cands)
    value = rng.choice(boofuzz_integers())
    name, old = msg.headers[i]
    msg.headers[i] = (name, old[: m.start()] + value + old[m.end() :])
    return _done(msg, "boofuzz-integer", _canon(name), f"{name} number {m.group()} -> {value}",
                 fix_length=_canon(name).lower() != "content-length")


_APPLY: dict[str, _Operator] = {
    "near-miss": _near_miss,
    "remove-header": _remove_header,
    "duplicate-header": _duplicate_header,
    "reorder-headers": _reorder_headers,
    "fold-header": _fold_header,
    "compact-form": _compact_form,
    "content-length-bigger": _content_length("bigger"),
    "content-length-smaller": _content_length("smaller"),
    "content-length-negative": _content_length("negative"),
    "content-length-huge": _content_length("huge"),
    "content-length-two": _content_length("two"),
    "many-via": _many("Via"),
    "many-route": _many("Route"),
    "long-params": _long_params,
    "body-type-mismatch": _body_type_mismatch,
    "unknown-method-body": _unknown_method_body,
    "nul-byte": _inject("nul-byte"),
    "control-byte": _inject("control-byte"),
    "crlf-injection": _inject("crlf-injection"),
    "sdp-field": _sdp_field,
    "method-swap": _method_swap,
    "boofuzz-string": _boofuzz_string,
    "boofuzz-integer": _boofuzz_integer,
}
assert set(_APPLY) == set(OPERATORS)
