"""Findings: written as they happen, deduplicated by signature, minimised, replayable.

Layout of a findings directory ``DIR``::

    DIR/campaign.json             the campaign's checkpoint (seed, next case, counts)
    DIR/findings.jsonl            one JSON line per event (new, duplicate, minimised), appended and fsync'ed
    DIR/<id>/finding.json         the finding: kind, severity, seed, case, transport, mutation, signature, count, ...
    DIR/<id>/000-sent.bin ...     the whole exchange in order: NNN-sent.bin, NNN-mutated.bin, NNN-received.bin
    DIR/<id>/minimised/...        the minimised sequence, same naming
    DIR/<id>/device-output.txt    what the device wrote (when sipcert started it)

The id is ``<kind>-<hash of the signature>``; the signature is kind + mutation operator and target + scenario step
+ exit status (signal or exit code), so the same bug found again increments ``count`` instead of making a folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .stateful import Exchange

__all__ = ["Finding", "FindingStore", "load_finding", "read_exchanges", "signature_of", "write_json_atomic"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding. ``messages`` is the whole exchange of the case (or batch) that showed it, in order."""

    id: str
    kind: str
    severity: str
    signature: str
    seed: int
    case: int
    scenario: str
    step: str
    transport: str
    target: str
    detail: str
    mutation: dict[str, str] = field(default_factory=dict)
    exit: str = ""
    rule: str = ""
    local: str = ""
    messages: tuple[Exchange, ...] = ()
    minimised: tuple[Exchange, ...] | None = None
    device_output: str = ""
    count: int = 1
    found_at: float = 0.0
    minimise_note: str = ""

    def meta(self) -> dict[str, Any]:
        """finding.json: everything but the message bytes (which are files)."""
        out = asdict(self)
        out.pop("messages")
        out.pop("minimised")
        out.pop("device_output")
        out["message_files"] = _names(self.messages)
        out["minimised_files"] = _names(self.minimised) if self.minimised is not None else None
        return out

    def replay_command(self, directory: str | os.PathLike[str], dut_cmd: str | None = None) -> str:
        """The shell command that replays this finding."""
        cmd = f"sipcert replay {shlex.quote(str(Path(directory) / self.id))} --target {shlex.quote(self.target)}"
        return cmd + (f" --dut-cmd {shlex.quote(dut_cmd)}" if dut_cmd else "")


def _names(exchanges: Sequence[Exchange]) -> list[str]:
    return [f"{i:03d}-{_kind(e)}.bin" for i, e in enumerate(exchanges)]


def _kind(e: Exchange) -> str:
    if e.direction == "received":
        return "received"
    return "mutated" if e.mutated else "sent"


def signature_of(kind: str, mutation: dict[str, str], scenario: str, step: str, exit: str, rule: str = "") -> str:
    """The dedup key: kind, mutation operator (near-miss kinds folded) and target, scenario step, exit status."""
    op = mutation.get("operator", "")
    parts = [kind, op, mutation.get("target", ""), f"{scenario}/{step}", exit, rule]
    return "|".join(parts)


def _finding_id(kind: str, signature: str) -> str:
    return f"{kind}-{hashlib.sha256(signature.encode()).hexdigest()[:12]}"


def write_json_atomic(path: Path, data: Any, *, fsync: bool = True) -> None:
    """Write JSON to ``path`` through a temporary file (fsync'ed unless ``fsync=False``), then renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_exchanges(folder: Path, exchanges: Sequence[Exchange]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, e in zip(_names(exchanges), exchanges, strict=True):
        with open(folder / name, "wb") as fh:
            fh.write(e.data)
            fh.flush()
            os.fsync(fh.fileno())


def read_exchanges(folder: Path) -> tuple[Exchange, ...]:
    """The exchange stored as ``NNN-<kind>.bin`` files in ``folder``, in order."""
    out = []
    for path in sorted(folder.glob("[0-9][0-9][0-9]-*.bin")):
        kind = path.stem.split("-", 1)[1]
        out.append(Exchange("received" if kind == "received" else "sent", path.read_bytes(), kind == "mutated"))
    return tuple(out)


def load_finding(folder: str | os.PathLike[str]) -> Finding:
    """A finding from its folder (finding.json and the message files)."""
    path = Path(folder)
    meta = json.loads((path / "finding.json").read_text(encoding="utf-8"))
    meta.pop("message_files", None)
    meta.pop("minimised_files", None)
    messages = read_exchanges(path)
    minimised = read_exchanges(path / "minimised") if (path / "minimised").is_dir() else None
    output = (path / "device-output.txt").read_text("utf-8", "replace") if (path / "device-output.txt").exists() else ""
    known = {f for f in Finding.__dataclass_fields__}
    return Finding(**{k: v for k, v in meta.items() if k in known},
                   messages=messages, minimised=minimised or None, device_output=output)


class FindingStore:
    """The findings of one directory: adds new ones at once (a kill loses none), counts duplicates, records
    minimisation. Reloads what a previous run of the campaign wrote, so ``--resume`` deduplicates across runs."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "findings.jsonl"
        self.by_signature: dict[str, Finding] = {}
        self._load()

    def _load(self) -> None:
        if not self.log_path.exists():
            return
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError):
                event = json.loads(line)
                sig = event["signature"]
                if event["event"] == "new":
                    folder = self.dir / event["id"]
                    if (folder / "finding.json").exists():
                        self.by_signature[sig] = load_finding(folder)
                elif sig in self.by_signature:
                    self.by_signature[sig] = replace(self.by_signature[sig], count=event.get("count", 1))

    def __len__(self) -> int:
        return len(self.by_signature)

    def __iter__(self) -> Iterator[Finding]:
        return iter(list(self.by_signature.values()))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {"crash": 0, "hang": 0, "protocol": 0}
        for f in self.by_signature.values():
            out[f.kind] = out.get(f.kind, 0) + 1
        return out

    def _append(self, event: dict[str, Any]) -> None:
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def add(self, finding: Finding) -> tuple[Finding, bool]:
        """Record ``finding`` (its ``id`` and ``signature`` are computed here). Returns the stored finding and
        whether it is new; a duplicate only increments the first one's ``count``."""
        sig = finding.signature
        known = self.by_signature.get(sig)
        if known is not None:
            known = replace(known, count=known.count + 1)
            self.by_signature[sig] = known
            self._append({"event": "duplicate", "id": known.id, "signature": sig, "count": known.count,
                          "case": finding.case, "time": time.time()})
            with contextlib.suppress(OSError):
                write_json_atomic(self.dir / known.id / "finding.json", known.meta())
            return known, False
        finding = replace(finding, id=_finding_id(finding.kind, sig), found_at=finding.found_at or time.time())
        folder = self.dir / finding.id
        _write_exchanges(folder, finding.messages)
        if finding.device_output:
            (folder / "device-output.txt").write_text(finding.device_output, encoding="utf-8")
        write_json_atomic(folder / "finding.json", finding.meta())
        self.by_signature[sig] = finding
        self._append({"event": "new", "id": finding.id, "signature": sig, "kind": finding.kind,
                      "severity": finding.severity, "seed": finding.seed, "case": finding.case,
                      "transport": finding.transport, "detail": finding.detail, "time": finding.found_at})
        return finding, True

    def set_minimised(self, finding: Finding, exchanges: Sequence[Exchange] | None, note: str) -> Finding:
        """Store the minimised sequence of ``finding`` (``None``: minimisation failed; ``note`` says why)."""
        folder = self.dir / finding.id
        if exchanges is not None:
            _write_exchanges(folder / "minimised", exchanges)
        current = self.by_signature.get(finding.signature, finding)
        updated = replace(current, minimised=tuple(exchanges) if exchanges is not None else None, minimise_note=note)
        self.by_signature[finding.signature] = updated
        write_json_atomic(folder / "finding.json", updated.meta())
        self._append({"event": "minimised", "id": finding.id, "signature": finding.signature, "note": note,
                      "count": updated.count, "messages": len(exchanges) if exchanges is not None else None,
                      "octets": sum(len(e.data) for e in exchanges or ()), "time": time.time()})
        return updated
