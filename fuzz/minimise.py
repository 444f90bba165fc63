"""Minimisation by delta debugging: the shortest sequence that still reproduces, then the shortest message.

The oracle is a coroutine ``reproduces(exchanges) -> bool`` (the campaign's: restart the device when needed, replay,
judge with the same oracle that made the finding). First the sequence: each message sipcert sent, with the replies
that followed it, is a unit, and ddmin (Zeller and Hildebrandt, 2002) drops units. Then the message that carried the
mutation (or the last one sent): ddmin drops header lines, then values are shortened (a run of one repeated octet
halved, a long value halved) and the body is dropped, each change kept only when the finding still reproduces.
Bounded by a number of tests and a time budget; the best result so far is kept when the budget runs out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from .stateful import Exchange

__all__ = ["Minimised", "ddmin", "minimise"]

Oracle = Callable[[tuple[Exchange, ...]], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Minimised:
    """The result: ``exchanges`` (None when the original did not reproduce), tests run, and a one-line note."""

    exchanges: tuple[Exchange, ...] | None
    tests: int
    note: str


class _Budget:
    def __init__(self, tests: int, seconds: float) -> None:
        self.tests = 0
        self.max_tests = tests
        self.deadline = time.monotonic() + seconds

    def spent(self) -> bool:
        return self.tests >= self.max_tests or time.monotonic() >= self.deadline


async def ddmin(items: Sequence[object], test: Callable[[list[object]], Awaitable[bool]], budget: _Budget) -> list[object]:
    """The classic ddmin over ``items``: a 1-minimal sub-list (in the budget) for which ``test`` holds."""
    current = list(items)
    n = 2
    while len(current) >= 2 and not budget.spent():
        chunk = max(1, len(current) // n)
        subsets = [current[i : i + chunk] for i in range(0, len(current), chunk)]
        reduced = False
        for i in range(len(subsets)):
            if budget.spent():
                break
            complement = [x for j, s in enumerate(subsets) if j != i for x in s]
            if complement and await test(complement):
                current = complement
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), n * 2)
    return current


def _units(exchanges: Sequence[Exchange]) -> list[tuple[Exchange, ...]]:
    units: list[list[Exchange]] = []
    for e in exchanges:
        if e.direction == "sent" or not units:
            units.append([e])
        else:
            units[-1].append(e)
    return [tuple(u) for u in units]


def _flatten(units: Sequence[object]) -> tuple[Exchange, ...]:
    return tuple(e for u in units for e in u)  # type: ignore[attr-defined]


_RUN = re.compile(rb"(.)\1{7,}", re.S)


def _shorter(line: bytes) -> list[bytes]:
    """Shorter versions of one header line (or start line), most promising first."""
    out = []
    runs = sorted(_RUN.finditer(line), key=lambda m: -(m.end() - m.start()))
    for m in runs[:2]:
        half = (m.end() - m.start()) // 2
        out.append(line[: m.start()] + line[m.start() : m.start() + half] + line[m.end() :])
    name, colon, value = line.partition(b":")
    if colon and len(value) > 24:
        out.append(name + b":" + value[: len(value) // 2])
    return [c for c in out if c != line]


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body if sep else b""


def _join(lines: Sequence[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def minimise(exchanges: Sequence[Exchange], reproduces: Oracle, *, max_tests: int = 80,
                   seconds: float = 60.0) -> Minimised:
    """Minimise a reproducing exchange (see the module docstring)."""
    budget = _Budget(max_tests, seconds)

    async def test(seq: tuple[Exchange, ...]) -> bool:
        budget.tests += 1
        return await reproduces(seq)

    original = tuple(exchanges)
    if not await test(original):
        return Minimised(None, budget.tests, "the finding did not reproduce on replay: not minimised")
    units = _units(original)

    async def keep_units(sub: list[object]) -> bool:
        return await test(_flatten(sub))

    kept = await ddmin(units, keep_units, budget) if len(units) > 1 else list(units)
    best = list(_flatten(kept))
    # The message to shrink: the mutated one if it is still there, else the last one sent.
    sent_idx = [i for i, e in enumerate(best) if e.direction == "sent"]
    target = next((i for i in sent_idx if best[i].mutated), sent_idx[-1] if sent_idx else None)
    if target is None:
        return Minimised(tuple(best), budget.tests, f"{len(original)} -> {len(best)} messages")
    lines, body = _split(best[target].data)

    def with_message(data: bytes) -> tuple[Exchange, ...]:
        seq = list(best)
        seq[target] = replace(best[target], data=data)
        return tuple(seq)

    async def keep_lines(sub: list[object]) -> bool:
        return await test(with_message(_join([lines[0], *sub], body)))  # type: ignore[list-item]

    if len(lines) > 2 and not budget.spent():
        headers = await ddmin(lines[1:], keep_lines, budget)
        lines = [lines[0], *headers]  # type: ignore[list-item]
    progress = True
    while progress and not budget.spent():
        progress = False
        for i in range(len(lines)):
            for cand in _shorter(lines[i]):
                if budget.spent():
                    break
                trial = [*lines[:i], cand, *lines[i + 1 :]]
                if await test(with_message(_join(trial, body))):
                    lines, progress = trial, True
                    break
    if body and not budget.spent():
        no_body = [re.sub(rb"(?i)^((?:content-length|l)[ \t]*:[ \t]*)\d+", rb"\g<1>0", ln) for ln in lines]
        if await test(with_message(_join(no_body, b""))):
            lines, body = no_body, b""
    best[target] = replace(best[target], data=_join(lines, body))
    before = sum(len(e.data) for e in original if e.direction == "sent")
    after = sum(len(e.data) for e in best if e.direction == "sent")
    sent_before = sum(1 for e in original if e.direction == "sent")
    sent_after = sum(1 for e in best if e.direction == "sent")
    note = (f"{sent_before} -> {sent_after} messages sent, {before} -> {after} octets, {budget.tests} tests"
            + (" (budget exhausted)" if budget.spent() else ""))
    return Minimised(tuple(best), budget.tests, note)
