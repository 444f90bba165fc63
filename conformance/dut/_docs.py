"""``docs/reference-device.md``: the hand-written part and the fault table generated from :data:`FAULT_TABLE`."""

from __future__ import annotations

from pathlib import Path

from ._faults import FAULT_TABLE, FaultDef

__all__ = ["DOCS_PATH", "faults_markdown", "reference_device_markdown", "write_docs", "BEGIN", "END"]

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "reference-device.md"
BEGIN = "<!-- BEGIN GENERATED FAULT TABLE: python -m conformance.dut --write-docs -->"
END = "<!-- END GENERATED FAULT TABLE -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _sentences(fault: FaultDef) -> list[tuple[str, str]]:
    """(citation, sentence) pairs: from the rule catalogue for the rules the fault names, else its own."""
    if fault.rules:
        from ..checks import get_rule

        out = []
        for rule_id in fault.rules:
            rule = get_rule(rule_id)
            out.append((f"`{rule_id}` ({rule.citation})", rule.sentence))
        return out
    return [(fault.section, fault.sentence)]


def faults_markdown() -> str:
    """The generated section: one row per fault, with the rule ids and the RFC sentence each breaks."""
    out = [BEGIN, ""]
    groups = (
        ("Conformance faults", [f for f in FAULT_TABLE if f.kind == "conformance"]),
        ("Robustness faults (crash or hang, for the fuzzer)", [f for f in FAULT_TABLE if f.kind != "conformance"]),
    )
    for title, faults in groups:
        out += [f"### {title}", "", "| Fault | Roles | What the device does | Breaks | RFC sentence |",
                "|---|---|---|---|---|"]
        for f in faults:
            pairs = _sentences(f)
            cites = "<br>".join(_cell(c) for c, _ in pairs)
            sentences = "<br>".join(f"“{_cell(s)}”" for _, s in pairs)
            kind = f"**{f.kind}**: " if f.kind != "conformance" else ""
            out.append(f"| `{f.name}` | {', '.join(f.roles)} | {kind}{_cell(f.summary)} | {cites} | {sentences} |")
        out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def reference_device_markdown(current: str | None = None) -> str:
    """The whole document: ``current`` (default: the file on disk) with its generated section replaced."""
    text = current if current is not None else DOCS_PATH.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    rest = text[end:]
    if rest.startswith("\n"):
        rest = rest[1:]
    return text[:start] + faults_markdown() + rest


def write_docs() -> Path:
    DOCS_PATH.write_text(reference_device_markdown(), encoding="utf-8")
    return DOCS_PATH
