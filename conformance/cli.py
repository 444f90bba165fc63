"""The ``sipcert`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sipcert",
        description="SIP conformance and fuzz testing: RFC 3261/3262 verdicts, grammar-based fuzzing, reports.",
    )
    parser.add_argument("--version", action="version", version=f"sipcert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "parse",
        help="read SIP messages from a file and print their structure and defects",
        description="Read one SIP message (or, with --stream, every message of a TCP-style byte stream) and print "
        "its start line, headers, typed views and every defect with its RFC section. Exit status: 0 when no "
        "defect makes a message unusable, 1 when one does, 2 on a usage error.",
    )
    p.add_argument("file", help="file holding the raw message bytes, or - for standard input")
    p.add_argument("--stream", action="store_true", help="frame the input as a stream (Content-Length framing)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    p.set_defaults(func=_cmd_parse)

    c = sub.add_parser(
        "checks",
        help="print the rule catalogue (every rule with its id, RFC section, level and sentence)",
        description="Print the rule catalogue: the checks sipcert runs on every message a device sends and on "
        "every trace, each with a stable id, its RFC section, its RFC 2119 level and the sentence it encodes.",
    )
    c.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="output format (default: text)")
    c.add_argument("--level", choices=("MUST", "SHOULD", "MAY"), help="only rules of this level")
    c.set_defaults(func=_cmd_checks)

    from ._run import add_run_parser

    add_run_parser(sub)

    from fuzz.cli import add_fuzz_parser, add_replay_parser

    add_fuzz_parser(sub)
    add_replay_parser(sub)

    from .dut._cli import configure_parser

    configure_parser(sub.add_parser("dut", help="run the built-in reference device (UAS, UAC, registrar or proxy)"))
    return parser


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


def _describe(msg: Any, defects: Sequence[Any]) -> dict[str, Any]:
    from .sip import Request

    out: dict[str, Any] = {"start_line": msg.start_line}
    if isinstance(msg, Request):
        out.update(kind="request", method=msg.method, request_uri=msg.uri_text)
    else:
        out.update(kind="response", status=msg.status, reason=msg.reason)
    out["headers"] = [{"name": h.name, "value": h.value} for h in msg.headers]
    views: dict[str, Any] = {}
    if msg.via:
        views["via"] = [
            {"transport": v.transport, "sent_by": v.host + (f":{v.port}" if v.port else ""), "branch": v.branch}
            for v in msg.via
        ]
    for name, value in (("from", msg.from_), ("to", msg.to)):
        if value is not None:
            views[name] = {"display_name": value.display_name, "uri": value.uri_text, "tag": value.tag}
    if msg.call_id is not None:
        views["call_id"] = msg.call_id
    if msg.cseq is not None:
        views["cseq"] = {"number": msg.cseq.number, "method": msg.cseq.method}
    if msg.contact:
        views["contact"] = [c.uri_text for c in msg.contact]
    if msg.contact_star:
        views["contact"] = "*"
    for name in ("max_forwards", "content_length", "rseq", "expires", "min_expires"):
        value = getattr(msg, name)
        if value is not None:
            views[name] = value
    for name in ("require", "supported", "unsupported", "proxy_require", "allow"):
        value = getattr(msg, name)
        if value:
            views[name] = list(value)
    if msg.rack is not None:
        views["rack"] = str(msg.rack)
    if msg.content_type is not None:
        views["content_type"] = msg.content_type.mime
    out["views"] = views
    out["body_bytes"] = len(msg.body)
    if msg.trailing:
        out["trailing_bytes"] = len(msg.trailing)
    sdp = msg.sdp
    if sdp is not None:
        out["sdp"] = {
            "origin": sdp.origin.address if sdp.origin else None,
            "media": [f"{m.media} {m.port} {m.proto} {' '.join(m.formats)}" for m in sdp.media],
            "defects": [str(d) for d in sdp.defects],
        }
    out["defects"] = [_defect_dict(d) for d in defects]
    return out


def _defect_dict(d: Any) -> dict[str, Any]:
    return {
        "code": d.code,
        "header": d.header,
        "offset": d.offset,
        "section": d.section,
        "fatal": d.fatal,
        "detail": d.detail,
    }


def _print_text(item: dict[str, Any]) -> None:
    print(item["start_line"])
    for h in item["headers"]:
        print(f"  {h['name']}: {h['value']}")
    print(f"  [body: {item['body_bytes']} bytes" + (f", {item['trailing_bytes']} trailing]" if "trailing_bytes" in item else "]"))
    for key, value in item["views"].items():
        print(f"  {key:>14} = {value}")
    if "sdp" in item:
        print(f"  {'sdp':>14} = {item['sdp']}")
    if item["defects"]:
        print(f"defects ({len(item['defects'])}):")
        for d in item["defects"]:
            where = f" in {d['header']}" if d["header"] else ""
            severity = "FATAL" if d["fatal"] else "warn "
            print(f"  {severity} {d['code']}{where} at byte {d['offset']} ({d['section']}): {d['detail']}")
    else:
        print("defects: none")


def _cmd_parse(args: argparse.Namespace) -> int:
    from .sip import parse
    from .sip._framing import FramedMessage, FramingError, StreamFramer

    try:
        data = _read_input(args.file)
    except OSError as exc:
        print(f"sipcert parse: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    items: list[dict[str, Any]] = []
    fatal = False
    if args.stream:
        framer = StreamFramer()
        frames = framer.feed(data) + framer.close()
        for frame in frames:
            if isinstance(frame, FramedMessage):
                result = parse(frame.data, stream=True)
                defects = list(frame.defects) + list(result.defects)
                if result.message is None:
                    items.append({"start_line": None, "defects": [_defect_dict(d) for d in defects]})
                else:
                    items.append(_describe(result.message, defects))
                fatal = fatal or any(d.fatal for d in defects) or result.message is None
            elif isinstance(frame, FramingError):
                items.append({"start_line": None, "framing_error": _defect_dict(frame.defect)})
                fatal = True
    else:
        result = parse(data)
        if result.message is None:
            items.append({"start_line": None, "defects": [_defect_dict(d) for d in result.defects]})
            fatal = True
        else:
            items.append(_describe(result.message, result.defects))
            fatal = any(d.fatal for d in result.defects)
    if args.format == "json":
        print(json.dumps(items if args.stream else items[0], indent=2, ensure_ascii=False))
    else:
        for item in items:
            if item.get("start_line") is None:
                print("no SIP message could be read:")
                for d in item.get("defects", []) + ([item["framing_error"]] if "framing_error" in item else []):
                    print(f"  FATAL {d['code']} at byte {d['offset']} ({d['section']}): {d['detail']}")
            else:
                _print_text(item)
    return 1 if fatal else 0


def _cmd_checks(args: argparse.Namespace) -> int:
    from .checks import catalogue, render_catalogue

    rules = [r for r in catalogue() if args.level is None or r.level.value == args.level]
    print(render_catalogue(args.format, rules), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
