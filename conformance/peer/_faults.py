"""Deliberate misbehaviour: what the peer does wrong on purpose, and message mutations that break one rule each."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ..sip import Message, Request, new_branch, new_tag

__all__ = [
    "Fault",
    "DROP",
    "DUPLICATE",
    "with_wrong_branch",
    "with_wrong_tag",
    "with_cseq",
    "with_rack",
    "corrupt_bytes",
]


@dataclass(frozen=True, slots=True)
class Fault:
    """How to (mis)send one message: ``drop`` it, send ``copies`` of it, send it after ``delay`` seconds, or put
    ``corrupt(bytes)`` on the wire instead. The trace records the fault with the message."""

    drop: bool = False
    copies: int = 1
    delay: float = 0.0
    corrupt: Callable[[bytes], bytes] | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.copies < 1:
            raise ValueError("copies must be at least 1")
        if self.delay < 0:
            raise ValueError("delay must not be negative")

    @property
    def note(self) -> str:
        if self.label:
            return f"fault:{self.label}"
        parts = []
        if self.drop:
            parts.append("drop")
        if self.copies > 1:
            parts.append(f"copies={self.copies}")
        if self.delay:
            parts.append(f"delay={self.delay:g}s")
        if self.corrupt is not None:
            parts.append("corrupt")
        return "fault:" + ",".join(parts) if parts else ""


DROP = Fault(drop=True, label="drop")
DUPLICATE = Fault(copies=2, label="duplicate")


def with_wrong_branch(msg: Message) -> Message:
    """The message with a fresh top-Via branch: it no longer matches its transaction (RFC 3261 §17.1.3/§17.2.3)."""
    via = msg.via[0]
    new_value = via.raw.replace(f"branch={via.branch}", f"branch={new_branch()}", 1) if via.branch else via.raw
    fields = [h for h in msg.header_fields("Via")]
    first = fields[0].value
    rest = first[len(via.raw) :] if first.startswith(via.raw) else ""
    msg2 = msg.with_header("Via", new_value + rest)
    for h in fields[1:]:
        msg2 = msg2.with_header_added("Via", h.value)
    return msg2


def with_wrong_tag(msg: Message, header: str = "To", tag: str | None = None) -> Message:
    """The message with another tag in From or To (a different dialog, RFC 3261 §12)."""
    na = msg.to if header.lower() in ("to", "t") else msg.from_
    if na is None:
        raise ValueError(f"the message has no valid {header}")
    new = tag or new_tag()
    value = na.raw.replace(f"tag={na.tag}", f"tag={new}", 1) if na.tag else f"{na.raw};tag={new}"
    return msg.with_header(header, value)


def with_cseq(msg: Message, number: int, method: str | None = None) -> Message:
    cseq = msg.cseq
    m = method or (cseq.method if cseq else (msg.method if isinstance(msg, Request) else "INVITE"))
    return msg.with_header("CSeq", f"{number} {m}")


def with_rack(msg: Message, rseq: int, cseq: int, method: str = "INVITE") -> Message:
    """A PRACK with another RAck (RFC 3262 §7.2): a wrong one must be answered 481."""
    return msg.with_header("RAck", f"{rseq} {cseq} {method}")


def corrupt_bytes(rng: random.Random | None = None, flips: int = 8) -> Callable[[bytes], bytes]:
    """A corruptor that replaces ``flips`` random octets with random values (deterministic with a seeded rng)."""
    r = rng or random.Random()

    def corrupt(data: bytes) -> bytes:
        b = bytearray(data)
        for _ in range(min(flips, len(b))):
            b[r.randrange(len(b))] = r.randrange(256)
        return bytes(b)

    return corrupt
