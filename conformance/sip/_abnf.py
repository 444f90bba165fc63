"""RFC 3261 §25 lexical rules as compiled regular expressions, for the tolerant parser.

These are the parser's fast path. The complete, machine-readable grammar (every rule, with its source) lives in
``fuzz/grammar``; this module only holds what reading a message needs, written so that one ``fullmatch`` validates a
header value and its groups give the typed view. Folded lines are unfolded before matching, so LWS is ``[ \\t]+``.
"""

from __future__ import annotations

import re

__all__ = [
    "TOKEN",
    "QUOTED_STRING",
    "HOST",
    "GENERIC_PARAMS",
    "RE_TOKEN",
    "RE_WORD_CALLID",
    "RE_CSEQ",
    "RE_DIGITS",
    "RE_RACK",
    "RE_VIA",
    "RE_NAME_ADDR",
    "RE_ADDR_SPEC",
    "RE_PARAM",
    "RE_MEDIA_TYPE",
    "RE_DATE",
    "RE_WARNING",
    "RE_CTL",
    "RE_REQUEST_LINE",
    "RE_STATUS_LINE",
    "RE_HOSTNAME",
    "RE_IPV4",
    "RE_IPV6REF",
]

#: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")   (§25.1)
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
#: word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")" / "<" / ">" / ":" /
#:        "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")   (§25.1)
WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
#: quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE; qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII;
#: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)   (§25.1)
QUOTED_STRING = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"'
#: host = hostname / IPv4address / IPv6reference (§25.1). The character class is deliberately a little wider than
#: hostname (it admits the 3-colon IPv6 form of RFC 5118 §4.10 inside brackets); ``classify_host`` narrows it.
HOST = r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+"
#: gen-value = token / host / quoted-string; RFC 5118 §4.5 also allows an unbracketed IPv6 address in received=.
GEN_VALUE = rf"{QUOTED_STRING}|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.!%*_+`'~:]+"
#: generic-param = token [ EQUAL gen-value ]; SEMI = SWS ";" SWS; EQUAL = SWS "=" SWS
GENERIC_PARAMS = rf"(?:[ \t]*;[ \t]*{TOKEN}(?:[ \t]*=[ \t]*(?:{GEN_VALUE}))?)*"

RE_TOKEN = re.compile(TOKEN)
RE_DIGITS = re.compile(r"[0-9]+")
#: Call-ID = ( "Call-ID" / "i" ) HCOLON callid; callid = word [ "@" word ]
RE_WORD_CALLID = re.compile(rf"{WORD}(?:@{WORD})?")
#: CSeq = "CSeq" HCOLON 1*DIGIT LWS Method
RE_CSEQ = re.compile(rf"([0-9]+)[ \t]+({TOKEN})")
#: RAck = "RAck" HCOLON response-num LWS CSeq-num LWS Method   (RFC 3262 §7.2)
RE_RACK = re.compile(rf"([0-9]+)[ \t]+([0-9]+)[ \t]+({TOKEN})")
#: via-parm = sent-protocol LWS sent-by *( SEMI via-params ); sent-protocol = protocol-name SLASH protocol-version
#: SLASH transport; SLASH = SWS "/" SWS; sent-by = host [ COLON port ]
RE_VIA = re.compile(
    rf"({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]+({HOST})(?:[ \t]*:[ \t]*([0-9]+))?({GENERIC_PARAMS})[ \t]*"
)
#: One parameter inside a GENERIC_PARAMS run.
RE_PARAM = re.compile(rf"[ \t]*;[ \t]*({TOKEN})(?:[ \t]*=[ \t]*({GEN_VALUE}))?")
#: name-addr = [ display-name ] LAQUOT addr-spec RAQUOT; display-name = *(token LWS) / quoted-string
RE_NAME_ADDR = re.compile(
    rf"(?:({QUOTED_STRING})|((?:{TOKEN}(?:[ \t]+{TOKEN})*)?))[ \t]*<([^<>\s\"]*)>({GENERIC_PARAMS})[ \t]*"
)
#: addr-spec form: the URI runs to the first ";" (the rest are header parameters, RFC 3261 §20.10).
RE_ADDR_SPEC = re.compile(rf"([^\s;<>\",]+)({GENERIC_PARAMS})[ \t]*")
#: media-type = m-type SLASH m-subtype *(SEMI m-parameter)
RE_MEDIA_TYPE = re.compile(rf"({TOKEN})[ \t]*/[ \t]*({TOKEN})({GENERIC_PARAMS})[ \t]*")
#: rfc1123-date = wkday "," SP date1 SP time SP "GMT"
RE_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
#: warning-value = warn-code SP warn-agent SP warn-text; warn-code = 3DIGIT; warn-agent = hostport / pseudonym;
#: warn-text = quoted-string   (§20.43, §25.1)
RE_WARNING = re.compile(
    rf"([0-9]{{3}})[ \t]+((?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.!%*_+`'~]+)(?::[0-9]+)?)[ \t]+({QUOTED_STRING})"
)
#: Control characters a header value may not hold outside a quoted-pair (HTAB is LWS).
RE_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Request-Line = Method SP Request-URI SP SIP-Version CRLF (exactly one SP each, §7.1)
RE_REQUEST_LINE = re.compile(rf"({TOKEN}) ([^ ]+) SIP/([0-9]+\.[0-9]+)")
#: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
RE_STATUS_LINE = re.compile(r"SIP/([0-9]+\.[0-9]+) ([0-9]+) (.*)", re.S)

# Strict forms for the fast path: a value that fullmatches these needs no further checking.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_HOSTNAME = r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?"
STRICT_HOST = rf"(?:{_HOSTNAME}|{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}|\[[0-9A-Fa-f]*:[0-9A-Fa-f:.]*\])"
_ESC = r"%[0-9A-Fa-f]{2}"
_PARAMCHAR = rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|{_ESC})"
#: SIP-URI / SIPS-URI without headers, every part checked (§25.1). The Request-URI may not carry headers (§19.1.1).
RE_SIP_URI_STRICT = re.compile(
    rf"[sS][iI][pP][sS]?:(?:(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{_ESC})+(?::(?:[A-Za-z0-9\-_.!~*'()&=+$,]|{_ESC})*)?@)?"
    rf"{STRICT_HOST}(?::{_PORT})?(?:;{_PARAMCHAR}+(?:={_PARAMCHAR}+)?)*"
)
#: via-parm with strict sent-by, SIP/2.0 only.
RE_VIA_STRICT = re.compile(
    rf"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*({TOKEN})[ \t]+({STRICT_HOST})(?:[ \t]*:[ \t]*({_PORT}))?({GENERIC_PARAMS})[ \t]*",
    re.I,
)

#: Fast-path parameter run: no whitespace, no quoted values (the common case); anything else takes the full rule.
SIMPLE_PARAMS = r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~:\[\]]+)?)*"
RE_VIA_SIMPLE = re.compile(rf"SIP/2\.0/([A-Za-z]+) ({STRICT_HOST})(?::({_PORT}))?({SIMPLE_PARAMS})")
#: Fast-path name-addr: optional quoted or token display name, a URI in angle brackets, simple parameters.
RE_NAME_ADDR_SIMPLE = re.compile(
    rf'((?:"[^"\\\x00-\x1f]*"|[A-Za-z0-9\-.!%*_+`\'~]+(?: [A-Za-z0-9\-.!%*_+`\'~]+)*)?) ?<([^<>\s"]*)>({SIMPLE_PARAMS})'
)

RE_HOSTNAME = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?")
RE_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
RE_IPV6REF = re.compile(r"\[[0-9A-Fa-f:.]+\]")


def unquote(quoted: str) -> str:
    """The text of a quoted-string without its quotes, with quoted-pairs resolved."""
    inner = quoted[1:-1]
    if "\\" not in inner:
        return inner
    out = []
    i = 0
    n = len(inner)
    while i < n:
        ch = inner[i]
        if ch == "\\" and i + 1 < n:
            out.append(inner[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote(text: str) -> str:
    """A quoted-string holding ``text`` (backslash and DQUOTE escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_params(run: str) -> tuple[tuple[str, str | None], ...]:
    """``;a=b;c`` (with SWS) → ``(("a", "b"), ("c", None))``; names keep their case, values keep quotes."""
    if not run:
        return ()
    return tuple((m.group(1), m.group(2)) for m in RE_PARAM.finditer(run))


def split_commas(value: str) -> list[tuple[int, str]]:
    """Split a header value on the commas that separate list elements (not inside quotes or angle brackets).

    Returns ``(offset, element)`` pairs, elements stripped of surrounding whitespace, offsets relative to ``value``.
    """
    if '"' not in value and "<" not in value:
        out = []
        pos = 0
        for part in value.split(","):
            stripped = part.strip(" \t")
            out.append((pos + (len(part) - len(part.lstrip(" \t"))), stripped))
            pos += len(part) + 1
        return out
    out = []
    start = 0
    in_quote = False
    in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            part = value[start:i]
            out.append((start + (len(part) - len(part.lstrip(" \t"))), part.strip(" \t")))
            start = i + 1
        i += 1
    part = value[start:]
    out.append((start + (len(part) - len(part.lstrip(" \t"))), part.strip(" \t")))
    return out


#: Text whose every DQUOTE that opens a quoted-string is closed (quoted-pairs respected inside quotes). Possessive
#: quantifiers: the alternatives start with different characters, so there is nothing to backtrack into.
_RE_BALANCED = re.compile(r'(?:[^"]++|"(?:[^"\\]++|\\.)*+")*+', re.S)


def quotes_balanced(value: str) -> bool:
    """True when every DQUOTE that opens a quoted-string is closed (quoted-pairs respected)."""
    return '"' not in value or _RE_BALANCED.fullmatch(value) is not None
