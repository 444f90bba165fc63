"""reports/: every rendering of one trace and of a run's verdicts.

The traces are built with the core builders on a stepped clock (so times are exact and renderings deterministic):
an INVITE/100/180/200/ACK/BYE/200 call, a malformed NOTIFY from the device with ``<script>`` in a header and bytes
that are not UTF-8, a timer, a verdict and a note.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import json
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from conformance.sip import build_request, build_response, name_addr, raw_message, via_value
from conformance.trace import MessageEntry, Trace
from reports import (
    RunSummary,
    SummaryFormatError,
    TestResult,
    Violation,
    compare,
    junit_classname,
    ladder_svg,
    ladder_text,
    load_summary,
    pcap_bytes,
    pcap_notes,
    render_html,
    trace_from_json,
    trace_to_json,
    validate_summary_dict,
    write_html,
    write_junit,
    write_pcap,
    write_summary,
)

EVIL = "<script>alert('x')</script>"
STARTED_WALL = 1_700_000_000.25


class SteppedTrace(Trace):
    """A trace whose clock the test moves."""

    clock = 0.0

    def now(self) -> float:
        return self.clock


def make_trace(transport: str = "udp", *, v6: bool = False, name: str = "basic call <b>") -> Trace:
    trace = SteppedTrace(name=name, started_wall=STARTED_WALL)
    me = ("::1", 5070) if v6 else ("127.0.0.1", 5070)
    dev = ("::1", 5060) if v6 else ("127.0.0.1", 5060)
    host = "[::1]" if v6 else "127.0.0.1"
    stream = transport != "udp"

    def record(direction: str, data: bytes, after: float) -> None:
        trace.clock += after
        trace.record_message(direction, transport, me, dev, data, stream=stream)  # type: ignore[arg-type]

    def via(branch: str) -> str:
        return via_value(transport, me[0], me[1], branch)

    target = f"sip:bob@{host}:5060"
    invite = build_request(
        "INVITE",
        target,
        from_=name_addr(f"sip:alice@{host}", tag="a1"),
        to=name_addr(f"sip:bob@{host}"),
        via=via("z9hG4bKinvite"),
        call_id="call-1@sipcert.invalid",
        contact=f"<sip:alice@{host}:5070>",
    )
    ok = build_response(invite, 200, to_tag="b1", contact=f"<sip:bob@{host}:5060>")
    ack = build_request(
        "ACK", target, from_=invite.header("From") or "", to=ok.header("To") or "", via=via("z9hG4bKack"),
        call_id=invite.call_id, cseq=1,
    )  # fmt: skip
    bye = build_request(
        "BYE", target, from_=invite.header("From") or "", to=ok.header("To") or "", via=via("z9hG4bKbye"),
        call_id=invite.call_id, cseq=2,
    )  # fmt: skip
    record("sent", bytes(invite), 0.0)
    record("received", bytes(build_response(invite, 100)), 0.012)
    record("received", bytes(build_response(invite, 180, to_tag="b1")), 0.2)
    trace.clock += 0.3
    trace.record_timer("A", "INVITE z9hG4bKinvite", "retransmission")
    record("received", bytes(ok), 0.5)
    record("sent", bytes(ack), 0.004)
    record("sent", bytes(bye), 1.0)
    record("received", bytes(build_response(bye, 200)), 0.03)
    bad = raw_message(
        "NOTIFY sip:alice@example.com SIP/2.0",
        [
            ("Via", f"SIP/2.0/{transport.upper()} {host}:5060;branch=z9hG4bKnotify"),
            ("X-Evil", EVIL),
            ("CSeq", "abc NOTIFY"),
            ("X-Bin", "\udcff\udcfe\x01end"),
        ],
    )
    record("received", bad, 0.1)
    trace.clock += 0.001
    trace.record_verdict("3261-8.1.1.5-cseq", "RFC 3261 §8.1.1.5", "MUST", "violation", "CSeq is not a number", (8,))
    trace.note(f"device sent {EVIL}")
    return trace


START_LINES = [
    "INVITE sip:bob@127.0.0.1:5060 SIP/2.0",
    "SIP/2.0 100 Trying",
    "SIP/2.0 180 Ringing",
    "SIP/2.0 200 OK",
    "ACK sip:bob@127.0.0.1:5060 SIP/2.0",
    "BYE sip:bob@127.0.0.1:5060 SIP/2.0",
    "SIP/2.0 200 OK",
    "NOTIFY sip:alice@example.com SIP/2.0",
]


def make_summary(trace: Trace | None = None) -> RunSummary:
    trace = trace or make_trace()
    must = Violation(
        "3261-8.1.1.5-cseq", "RFC 3261 §8.1.1.5", "MUST", f"CSeq is not a number {EVIL}", ["#8 NOTIFY", "CSeq: abc"]
    )
    should = Violation("3261-20.1-accept", "RFC 3261 §20.1", "SHOULD", "no Accept in the 415", ["#4 SIP/2.0 200 OK"])
    results = [
        TestResult(
            "test_s17_2_1_uas_retransmits_final_response_until_ack",
            "UAS retransmits 2xx until ACK",
            ["RFC 3261 §17.2.1", "RFC 3261 §13.3.1.4"],
            "pass",
            duration_s=1.25,
            trace=trace,
            etsi="TC_SIP_CC_TE_CE_V_001",
        ),
        TestResult(
            "test_s8_1_1_5_cseq_is_a_number",
            f"CSeq {EVIL}",
            ["RFC 3261 §8.1.1.5"],
            "fail",
            violations=[must, should],
            warnings=[should],
            duration_s=0.5,
            trace=trace,
        ),
        TestResult("test_s20_1_accept", "Accept in 415", ["RFC 3261 §20.1"], "not_applicable", reason="no 415 sent"),
        TestResult("test_s22_auth", "Digest challenge", ["RFC 3261 §22.2"], "inconclusive", reason="no challenge"),
        TestResult(
            "testcases/test_rfc3262.py::test_prack",
            "PRACK",
            ["RFC 3262 §7.2"],
            "error",
            reason=f"OSError: refused {EVIL}",
        ),
    ]
    return RunSummary("0.1.0", "udp:127.0.0.1:5060", "uas", "udp", "2024-05-01T12:00:00+00:00", 3.5, results=results)


@pytest.fixture(scope="module")
def trace() -> Trace:
    return make_trace()


@pytest.fixture(scope="module")
def summary(trace: Trace) -> RunSummary:
    return make_summary(trace)


# -- summary.json ------------------------------------------------------------------------------------------------------
_TOP = {"sipcert_version": str, "target": str, "role": str, "transport": str, "started": str, "duration_s": float}
_RESULT = {"id": str, "title": str, "rfc": list, "verdict": str, "violations": list, "warnings": list}
_VIOLATION = {"rule": str, "rfc": str, "level": str, "message": str, "evidence": list}


def test_summary_json_has_exactly_the_schema(summary: RunSummary, tmp_path: Path) -> None:
    path = write_summary(summary, tmp_path / "out")
    assert path == tmp_path / "out" / "summary.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    for key, kind in _TOP.items():
        assert isinstance(doc[key], kind), key
    assert doc["totals"] == {"pass": 1, "fail": 1, "inconclusive": 1, "not_applicable": 1, "error": 1}
    assert [r["verdict"] for r in doc["results"]] == ["pass", "fail", "not_applicable", "inconclusive", "error"]
    for r in doc["results"]:
        for key, kind in _RESULT.items():
            assert isinstance(r[key], kind), key
        assert isinstance(r["duration_s"], float)
        assert all(isinstance(s, str) for s in r["rfc"])
        for v in r["violations"] + r["warnings"]:
            assert set(_VIOLATION) <= set(v)
            for key, kind in _VIOLATION.items():
                assert isinstance(v[key], kind), key
            assert v["level"] in ("MUST", "SHOULD", "MAY")
    fail = doc["results"][1]
    assert fail["violations"][0] == {
        "rule": "3261-8.1.1.5-cseq",
        "rfc": "RFC 3261 §8.1.1.5",
        "level": "MUST",
        "message": f"CSeq is not a number {EVIL}",
        "evidence": ["#8 NOTIFY", "CSeq: abc"],
    }
    assert doc["results"][0]["rfc"] == ["RFC 3261 §17.2.1", "RFC 3261 §13.3.1.4"]
    validate_summary_dict(doc)


def test_summary_round_trips_through_load(summary: RunSummary, tmp_path: Path) -> None:
    loaded = load_summary(write_summary(summary, tmp_path))
    assert loaded.to_json_dict() == summary.to_json_dict()
    assert compare(summary, loaded) == []
    loaded_trace = loaded.results[0].trace
    assert loaded_trace is not None and summary.results[0].trace is not None
    assert [m.data for m in loaded_trace.messages()] == [m.data for m in summary.results[0].trace.messages()]
    assert load_summary(tmp_path).results[2].reason == "no 415 sent"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.pop("target"), "target: missing"),
        (lambda d: d.update(started="yesterday"), "started: not an ISO-8601"),
        (lambda d: d.update(duration_s="3"), "duration_s: expected int or float, got str"),
        (lambda d: d["totals"].pop("error"), "totals.error: missing"),
        (lambda d: d["totals"].update(fail=7), "totals.fail: says 7 but 1 result"),
        (lambda d: d["results"][1].update(verdict="FAIL"), "results[1].verdict: expected one of"),
        (lambda d: d["results"][0].update(rfc="RFC 3261"), "results[0].rfc: expected list, got str"),
        (lambda d: d["results"][1]["violations"][0].update(level="must"), "results[1].violations[0].level"),
        (lambda d: d["results"][1]["warnings"][0].pop("rule"), "results[1].warnings[0].rule: missing"),
        (lambda d: d["results"][1]["violations"][1]["evidence"].append(3), "results[1].violations[1].evidence[1]"),
        (lambda d: d["results"][2].update(duration_s=True), "results[2].duration_s: expected int or float, got bool"),
    ],
)
def test_validator_names_the_bad_key(summary: RunSummary, mutate: Any, where: str) -> None:
    doc = copy.deepcopy(summary.to_json_dict(include_traces=False))
    validate_summary_dict(doc)
    mutate(doc)
    with pytest.raises(SummaryFormatError) as info:
        validate_summary_dict(doc)
    assert where in str(info.value)


def test_load_summary_names_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text('{"sipcert_version": 1}', encoding="utf-8")
    with pytest.raises(SummaryFormatError, match=r"summary\.json: sipcert_version: expected str, got int"):
        load_summary(tmp_path)


def test_compare_lists_verdict_and_rule_changes(summary: RunSummary) -> None:
    results = list(summary.results)
    results[0] = TestResult(results[0].id, results[0].title, results[0].rfc, "fail", violations=[
        Violation("3261-17.2.1-retransmit", "RFC 3261 §17.2.1", "MUST", "no retransmission")])  # fmt: skip
    results[1] = TestResult(
        results[1].id, results[1].title, results[1].rfc, "fail", violations=results[1].violations[:1]
    )
    results.pop(3)
    results.append(TestResult("test_new", "new", ["RFC 3261 §9.1"], "pass"))
    current = RunSummary("0.2.0", "x", "uas", "udp", "2024-05-02T00:00:00Z", 1.0, results=results)
    assert current.totals == {"pass": 1, "fail": 2, "inconclusive": 0, "not_applicable": 1, "error": 1}
    assert compare(summary, current) == [
        "test_s22_auth: in the baseline (inconclusive) but not run now",
        "test_s17_2_1_uas_retransmits_final_response_until_ack: verdict pass -> fail",
        "test_s17_2_1_uas_retransmits_final_response_until_ack: new violation 3261-17.2.1-retransmit",
        "test_s8_1_1_5_cseq_is_a_number: violation 3261-20.1-accept no longer reported",
        "test_s8_1_1_5_cseq_is_a_number: warning 3261-20.1-accept no longer reported",
        "test_new: new test (pass), not in the baseline",
    ]


def test_model_rejects_unknown_verdicts_and_levels() -> None:
    with pytest.raises(ValueError, match="verdict"):
        TestResult("t", "t", [], "passed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        Violation("r", "RFC 3261 §8", "must", "m")  # type: ignore[arg-type]


# -- trace JSON ------------------------------------------------------------------------------------------------------
def test_trace_json_keeps_every_entry_and_the_exact_bytes(trace: Trace) -> None:
    doc = json.loads(json.dumps(trace_to_json(trace)))
    kinds = [e["type"] for e in doc["entries"]]
    assert kinds == ["message"] * 3 + ["timer"] + ["message"] * 5 + ["verdict", "note"]
    notify = doc["entries"][8]
    assert notify["encoding"] == "base64" and "\\xff\\xfe\\x01end" in notify["text"]
    assert {d["code"] for d in notify["defects"]} >= {"bad-cseq", "bad-encoding"}
    assert doc["entries"][0]["encoding"] == "utf-8"
    assert doc["entries"][0]["data"].startswith("INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n")
    assert doc["entries"][9] == {
        "type": "verdict", "seq": 9, "time": pytest.approx(2.147), "rule": "3261-8.1.1.5-cseq",
        "rfc": "RFC 3261 §8.1.1.5", "level": "MUST", "outcome": "violation", "message": "CSeq is not a number",
        "evidence": [8],
    }  # fmt: skip

    back = trace_from_json(doc)
    assert back.name == trace.name and back.started_wall == trace.started_wall
    assert len(back) == len(trace)
    for a, b in zip(back.entries, trace.entries, strict=True):
        assert type(a) is type(b)
        if isinstance(a, MessageEntry) and isinstance(b, MessageEntry):
            assert (a.data, a.direction, a.local, a.remote, a.time) == (b.data, b.direction, b.local, b.remote, b.time)
            assert [str(d) for d in a.defects] == [str(d) for d in b.defects]
            assert a.summary == b.summary
        else:
            assert a == b
    assert ladder_text(back) == ladder_text(trace)


# -- ladder diagrams ---------------------------------------------------------------------------------------------------
def test_ladder_text_shows_the_call(trace: Trace) -> None:
    text = ladder_text(trace)
    assert text == ladder_text(trace) == ladder_text(make_trace())
    lines = text.splitlines()
    assert lines[0] == "sipcert ladder: basic call <b>"
    assert "127.0.0.1:5070" in lines[1] and "127.0.0.1:5060" in lines[1]
    arrows = [line for line in lines if re.search(r"#\d+ udp", line)]
    assert len(arrows) == 8
    for line, start in zip(arrows, START_LINES, strict=True):
        assert start in line
    assert "-->|" in arrows[0] and "|<--" in arrows[1]  # sent to the right, received to the left
    assert arrows[0].lstrip().startswith("+0.000    #0 udp")
    assert "+0.212" in arrows[2]
    assert "! NOTIFY" in arrows[7]
    assert any("! bad-cseq in CSeq" in line for line in lines)
    assert any("[timer A] INVITE z9hG4bKinvite: retransmission" in line for line in lines)
    assert any("[VIOLATION MUST 3261-8.1.1.5-cseq, RFC 3261 §8.1.1.5] CSeq is not a number (evidence #8)" in line
               for line in lines)  # fmt: skip
    assert not any(c in text for c in "\x00\x01\r")


def test_ladder_svg_is_well_formed_escaped_and_hovers_the_message(trace: Trace) -> None:
    svg = ladder_svg(trace)
    assert svg == ladder_svg(make_trace())
    assert EVIL not in svg and "&lt;script&gt;" in svg
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert not [el for el in root.iter() if el.tag.endswith("script") or el.tag.endswith("foreignObject")]
    groups = [g for g in root.iter(f"{ns}g") if "MessageEntry" in g.get("class", "")]
    assert len(groups) == 8
    titles = [g.find(f"{ns}title") for g in groups]
    assert all(t is not None and t.text for t in titles)
    assert "X-Evil: " + EVIL in (titles[7].text or "")  # type: ignore[union-attr]
    assert "\\xff\\xfe\\x01end" in (titles[7].text or "")  # type: ignore[union-attr]
    invite_text = trace.messages()[0].data.decode().replace("\r\n", "\n")
    assert (titles[0].text or "").endswith(invite_text)  # type: ignore[union-attr]
    labels = [t.text for g in groups for t in g.iter(f"{ns}text") if t.get("text-anchor") == "middle"]
    assert labels[:7] == START_LINES[:7]
    texts = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    assert "[timer A]" in texts and "3261-8.1.1.5-cseq" in texts


def test_ladder_of_an_empty_trace() -> None:
    empty = Trace(name="empty", started_wall=0.0)
    assert ladder_text(empty) == "sipcert ladder: empty\n(no messages)\n"
    ET.fromstring(ladder_svg(empty))


# -- pcap --------------------------------------------------------------------------------------------------------------
def _ones_complement_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def _read_pcap(data: bytes) -> list[tuple[float, bytes]]:
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    packets, off = [], 24
    while off < len(data):
        sec, usec, caplen, length = struct.unpack("<IIII", data[off : off + 16])
        assert caplen == length
        packets.append((sec + usec / 1e6, data[off + 16 : off + 16 + caplen]))
        off += 16 + caplen
    return packets


@pytest.mark.parametrize(("transport", "v6"), [("udp", False), ("tcp", False), ("udp", True), ("tcp", True)])
def test_pcap_headers_lengths_checksums_and_seq(transport: str, v6: bool) -> None:
    trace = make_trace(transport, v6=v6)
    packets = _read_pcap(pcap_bytes(trace))
    messages = trace.messages()
    assert len(packets) == len(messages)
    next_seq: dict[tuple[int, int], int] = {}
    for (stamp, frame), m in zip(packets, messages, strict=True):
        assert stamp == pytest.approx(STARTED_WALL + m.time, abs=1e-6)
        ethertype = struct.unpack("!H", frame[12:14])[0]
        ip = frame[14:]
        if v6:
            assert ethertype == 0x86DD
            plen, proto = struct.unpack("!HB", ip[4:7])
            src, dst, l4 = ip[8:24], ip[24:40], ip[40:]
            assert plen == len(l4)
            pseudo = src + dst + struct.pack("!IxxxB", len(l4), proto)
            assert ipaddress.IPv6Address(src) == ipaddress.IPv6Address("::1")
        else:
            assert ethertype == 0x0800
            total, proto = struct.unpack("!H", ip[2:4])[0], ip[9]
            assert total == len(ip) and _ones_complement_ok(ip[:20])
            src, dst, l4 = ip[12:16], ip[16:20], ip[20:]
            pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
        assert _ones_complement_ok(pseudo + l4)
        sport, dport = struct.unpack("!HH", l4[:4])
        assert (sport, dport) == ((5070, 5060) if m.direction == "sent" else (5060, 5070))
        if transport == "udp":
            assert proto == 17 and struct.unpack("!H", l4[4:6])[0] == len(l4) and l4[8:] == m.data
        else:
            assert proto == 6
            seq, ack = struct.unpack("!II", l4[4:12])
            assert l4[20:] == m.data
            assert seq == next_seq.get((sport, dport), seq)
            next_seq[(sport, dport)] = seq + len(m.data)
            assert ack == next_seq.get((dport, sport), ack)


def test_pcap_notes_say_what_is_not_as_on_the_wire(tmp_path: Path) -> None:
    assert pcap_notes(make_trace()) == []
    notes = pcap_notes(make_trace("wss"))
    assert len(notes) == 8 and all("wss written as plain TCP" in n for n in notes)
    path = write_pcap(make_trace(), tmp_path / "deep" / "call.pcap")
    assert path.read_bytes() == pcap_bytes(make_trace())


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (Debian package tshark); pcap decoding unchecked")
@pytest.mark.parametrize(("transport", "v6"), [("udp", False), ("tcp", True), ("ws", False)])
def test_pcap_decodes_as_sip_in_tshark(transport: str, v6: bool, tmp_path: Path) -> None:
    trace = make_trace(transport, v6=v6)
    path = write_pcap(trace, tmp_path / "trace.pcap")
    fields = ["sip.Method", "sip.Status-Code", "sip.Request-Line", "sip.Status-Line"]
    checks = ["ip.checksum.status", "udp.checksum.status", "tcp.checksum.status", "_ws.malformed"]
    out = subprocess.run(
        [TSHARK or "tshark", "-r", str(path), "-n", "-d", "udp.port==5060,sip", "-d", "tcp.port==5060,sip",
         "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
         "-T", "fields", "-E", "separator=|", *(x for f in fields + checks for x in ("-e", f))],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    rows = [line.split("|") for line in out.splitlines()]
    assert len(rows) == len(trace.messages())
    for row, m in zip(rows, trace.messages(), strict=True):
        method, status, request_line, status_line, ip_ok, udp_ok, tcp_ok, malformed = row
        msg = m.message
        assert msg is not None
        if msg.is_request:
            assert method == msg.method  # type: ignore[union-attr]
            assert request_line == msg.start_line
        else:
            assert status == str(msg.status)  # type: ignore[union-attr]
            assert status_line == msg.start_line
        assert ip_ok in ("", "1") and (udp_ok or tcp_ok) == "1"  # IPv6 has no header checksum
        assert malformed == ""


# -- JUnit -------------------------------------------------------------------------------------------------------------
def test_junit_parses_back_with_failures_skips_errors(summary: RunSummary, tmp_path: Path) -> None:
    path = write_junit(summary, tmp_path / "junit" / "junit.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "1", "2")
    suites = root.findall("testsuite")
    cases = [c for s in suites for c in s.findall("testcase")]
    assert len(cases) == 5
    for s in suites:
        assert int(s.get("tests", "-1")) == len(s.findall("testcase"))
        assert s.find("properties/property[@name='target']") is not None
    by_id = {c.get("name", "").split(":", 1)[0]: c for c in cases}
    passed = by_id["test_s17_2_1_uas_retransmits_final_response_until_ack"]
    assert passed.get("classname") == "rfc3261.s17" and passed.get("time") == "1.250"
    assert [p.get("value") for p in passed.findall("properties/property[@name='rfc']")] == [
        "RFC 3261 §17.2.1",
        "RFC 3261 §13.3.1.4",
    ]
    assert passed.find("properties/property[@name='etsi']") is not None
    assert passed.find("failure") is None and "INVITE sip:bob" in (passed.findtext("system-out") or "")

    failed = by_id["test_s8_1_1_5_cseq_is_a_number"]
    assert failed.get("name") == f"test_s8_1_1_5_cseq_is_a_number: CSeq {EVIL}"
    failure = failed.find("failure")
    assert failure is not None and failure.get("type") == "MUST"
    assert failure.get("message") == "1 MUST violation(s): 3261-8.1.1.5-cseq (RFC 3261 §8.1.1.5)"
    assert "3261-8.1.1.5-cseq (RFC 3261 §8.1.1.5) [MUST]" in (failure.text or "")
    assert "evidence: CSeq: abc" in (failure.text or "")
    assert "3261-20.1-accept" not in (failure.text or "")
    assert "3261-20.1-accept" in (failed.findtext("system-out") or "")
    assert "\\xff\\xfe\\x01end" not in (failed.findtext("system-out") or "")  # the ladder shows start lines only

    na = by_id["test_s20_1_accept"].find("skipped")
    assert na is not None and na.get("message") == "not_applicable: no 415 sent"
    inc = by_id["test_s22_auth"].find("skipped")
    assert inc is not None and inc.get("message") == "inconclusive: no challenge"
    error = by_id["testcases/test_rfc3262.py"]
    assert error.get("classname") == "testcases.test_rfc3262"
    assert (error.find("error") is not None) and EVIL in (error.find("error").get("message") or "")  # type: ignore[union-attr]
    # Child order of the common JUnit schema: properties, then skipped|error|failure, then system-out.
    for case in cases:
        order = [child.tag for child in case]
        assert order == sorted(order, key=["properties", "skipped", "error", "failure", "system-out"].index)


def test_junit_classname_derivation() -> None:
    assert junit_classname(TestResult("x", "", ["RFC 3262 §7.1"], "pass")) == "rfc3262.s7"
    assert junit_classname(TestResult("a/b.py::t", "", [], "pass")) == "a.b"
    assert junit_classname(TestResult("x", "", [], "pass", module="testcases.test_uas")) == "testcases.test_uas"
    assert junit_classname(TestResult("x", "", [], "pass")) == "sipcert"


# -- HTML --------------------------------------------------------------------------------------------------------------
class _Collector(HTMLParser):
    VOID = {"meta", "input", "br", "img", "hr", "link", "area", "base", "col", "embed", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)
        self.text.append(data)


def test_html_report_is_well_formed_escaped_and_offline(summary: RunSummary, tmp_path: Path) -> None:
    path = write_html(summary, tmp_path / "html")
    assert path == tmp_path / "html" / "index.html"
    page = path.read_bytes().decode("utf-8")
    assert page == render_html(summary)
    assert EVIL not in page and "<script>alert" not in page
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    tags = [t for t, _ in parser.tags]
    assert tags.count("script") == 1 and not any(a.get("src") for t, a in parser.tags if t == "script")
    assert not any(name.startswith("on") for _, attrs in parser.tags for name in attrs)
    # Nothing is loaded from anywhere: the only URLs are links to the RFCs.
    for tag, attrs in parser.tags:
        for name in ("src", "href"):
            url = attrs.get(name)
            assert url is None or url.startswith("#") or url.startswith("https://www.rfc-editor.org/rfc/"), url
        assert tag not in ("link", "iframe", "object", "embed", "img")
    # The one script is ours, and the Content-Security-Policy allows it (by hash) and nothing else.
    csp = next(a["content"] for t, a in parser.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    digest = base64.b64encode(hashlib.sha256(parser.scripts[0].encode()).digest()).decode()
    assert csp is not None and f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    # The device's text is there, as text.
    text = "".join(parser.text)
    assert f"X-Evil: {EVIL}" in text and f"CSeq {EVIL}" in text and f"OSError: refused {EVIL}" in text
    assert "\\xff\\xfe\\x01end" in text
    # Totals, filters, table and per-result details.
    assert [a["value"] for t, a in parser.tags if t == "input" and a.get("class") == "vfilter"] == [
        "pass", "fail", "inconclusive", "not_applicable", "error"
    ]  # fmt: skip
    rows = [a for t, a in parser.tags if t == "tr" and "result" in (a.get("class") or "")]
    assert [r["data-verdict"] for r in rows] == ["pass", "fail", "not_applicable", "inconclusive", "error"]
    assert tags.count("svg") == 2
    assert "3261-8.1.1.5-cseq" in text and "RFC 3261 §8.1.1.5" in text and "evidence" not in csp


def test_html_svg_fragment_parses_as_xml(summary: RunSummary) -> None:
    page = render_html(summary)
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        ET.fromstring(svg)


# -- Allure ------------------------------------------------------------------------------------------------------------
_ALLURE_TEST = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_reports import make_summary
    from reports import allure_active, attach_result

    def test_attaches():
        result = make_summary().results[1]
        assert attach_result(result) is {expect}
        assert allure_active() is {expect}
    """
)


@pytest.mark.parametrize("with_allure", [True, False])
def test_allure_helpers_attach_when_active_and_are_noops_otherwise(with_allure: bool, tmp_path: Path) -> None:
    test_file = tmp_path / "test_allure_probe.py"
    test_file.write_text(_ALLURE_TEST.format(tests=str(Path(__file__).parent), expect=with_allure))
    results_dir = tmp_path / "allure-results"
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(test_file)]
    if with_allure:
        args.append(f"--alluredir={results_dir}")
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if not with_allure:
        assert not results_dir.exists()
        return
    (result_file,) = results_dir.glob("*-result.json")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    names = {a["name"]: a for a in result["attachments"]}
    key = "test_s8_1_1_5_cseq_is_a_number"
    assert {f"{key}: ladder", f"{key}: ladder diagram", f"{key}: trace JSON", f"{key}: pcap", "violations"} <= set(
        names
    )
    assert names[f"{key}: ladder diagram"]["type"] == "image/svg+xml"
    assert names[f"{key}: pcap"]["type"] == "application/vnd.tcpdump.pcap"
    ladder = (results_dir / names[f"{key}: ladder"]["source"]).read_text(encoding="utf-8")
    assert ladder == ladder_text(make_trace())
    pcap = (results_dir / names[f"{key}: pcap"]["source"]).read_bytes()
    assert pcap == pcap_bytes(make_trace())
    violations = (results_dir / names["violations"]["source"]).read_text(encoding="utf-8")
    assert "3261-8.1.1.5-cseq (RFC 3261 §8.1.1.5) [MUST]" in violations
    labels = {(label["name"], label["value"]) for label in result["labels"]}
    assert ("rfc", "RFC 3261 §8.1.1.5") in labels and ("verdict", "fail") in labels
    assert ("as_id", key) in labels
    links = {link["url"] for link in result["links"]}
    assert "https://www.rfc-editor.org/rfc/rfc3261#section-8.1.1.5" in links


def test_trace_json_errors_name_the_entry(trace: Trace) -> None:
    from reports import TraceFormatError

    doc = trace_to_json(trace)
    doc["entries"][3]["type"] = "alarm"
    with pytest.raises(TraceFormatError, match=r"entries\[3\]\.type: expected message, timer, note or verdict"):
        trace_from_json(doc)
    doc = trace_to_json(trace)
    doc["entries"][8]["data"] = "not base64!"
    with pytest.raises(TraceFormatError, match=r"entries\[8\]\.data: not valid base64"):
        trace_from_json(doc)


def test_pcap_splits_a_large_tcp_message_into_continuous_segments() -> None:
    big = SteppedTrace(name="big", started_wall=STARTED_WALL)
    body = b"x" * 150_000
    data = raw_message("MESSAGE sip:bob@127.0.0.1 SIP/2.0", [("Content-Type", "text/plain")], body)
    big.record_message("sent", "tcp", ("127.0.0.1", 5070), ("127.0.0.1", 5060), data, stream=True)
    packets = _read_pcap(pcap_bytes(big))
    assert len(packets) == 3
    payloads = [frame[14 + 20 + 20 :] for _, frame in packets]
    assert b"".join(payloads) == data
    seqs = [struct.unpack("!I", frame[14 + 20 + 4 : 14 + 20 + 8])[0] for _, frame in packets]
    assert seqs[1] == seqs[0] + len(payloads[0]) and seqs[2] == seqs[1] + len(payloads[1])
    assert pcap_notes(big) == [f"#0: {len(data)}-byte message written as 3 TCP segments"]
