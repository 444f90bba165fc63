"""Turning hostile bytes into text that every rendering can carry safely.

A device may send anything: invalid UTF-8, NULs, control characters, lone surrogates after a ``surrogateescape``
round trip. XML 1.0 (JUnit, SVG) cannot carry most control characters even escaped, and a UTF-8 encoder chokes on
surrogates, so every rendering goes through :func:`display_text` / :func:`xml_safe` first. Nothing here marks text
as safe markup: escaping is the renderer's job (ElementTree, jinja2 autoescape).
"""

from __future__ import annotations

import re

__all__ = ["display_text", "display_message", "xml_safe", "shorten"]

# Characters XML 1.0 does not allow (§2.2 Char), plus the surrogates (not characters at all) and U+FFFE/U+FFFF.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that ``surrogateescape`` decoding kept: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display_text(data: bytes) -> str:
    """``data`` as text: UTF-8 where it is UTF-8, ``\\xNN`` for every byte that is not, control characters escaped."""
    return xml_safe(data.decode("utf-8", "backslashreplace"))


def display_message(data: bytes) -> str:
    """A message for reading: :func:`display_text` with CRLF shown as a plain line break and a lone CR as ``\\r``.

    (XML and HTML parsers turn CR into LF anyway; line-ending defects are reported by the parser, not by the view.)
    """
    return display_text(data).replace("\r\n", "\n").replace("\r", "\\r")


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry written as ``\\xNN`` / ``\\uNNNN`` (CR, LF and TAB stay)."""
    return _XML_BAD.sub(_escape_char, text)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with ``...`` when it is longer."""
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:width]
    return text[: width - 3] + "..."
