"""RFC section references: ``"RFC 3261 §17.2.1"`` to a link on rfc-editor.org."""

from __future__ import annotations

import re

__all__ = ["rfc_url"]

_REF = re.compile(r"^\s*RFC\s*(\d{1,5})(?:\s*(?:§|section)\s*([0-9]+(?:\.[0-9]+)*))?", re.IGNORECASE)


def rfc_url(reference: str) -> str | None:
    """The rfc-editor.org URL of a reference like ``RFC 3261 §17.2.1`` (``None`` when it is not one)."""
    m = _REF.match(reference)
    if not m:
        return None
    url = f"https://www.rfc-editor.org/rfc/rfc{int(m.group(1))}"
    return url + (f"#section-{m.group(2)}" if m.group(2) else "")
