"""The fuzzer: mutations, cases, stateful driving on every transport, oracles, findings, minimisation, replay,
resume, the CLI, the pytest entry and the boofuzz adapter -- against the toy responder (fuzz._responder)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.sip import parse
from conformance.transport import sctp_available
from fuzz._responder import ResponderThread
from fuzz.campaign import Campaign, CampaignConfig
from fuzz.cases import SCENARIOS, case, scenarios_for
from fuzz.findings import Finding, FindingStore, load_finding
from fuzz.minimise import minimise
from fuzz.mutate import OPERATORS, RawMessage, case_rng, mutate, normalise
from fuzz.oracles import RULE_2XX_TO_MALFORMED, ExternalDevice, Prober, ProcessDevice
from fuzz.stateful import CaseDriver, Exchange

TOY = f"{sys.executable} -m fuzz._responder --port 0"
INVITE = (
    b"INVITE sip:bob@127.0.0.1:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bKabc1;rport\r\n"
    b"Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1:40000>\r\nFrom: <sip:a@127.0.0.1:40001>;tag=t1\r\n"
    b"Call-ID: c1@h\r\nCSeq: 7 INVITE\r\nContact: <sip:a@127.0.0.1:40001>\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 57\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 4000 RTP/AVP 0\r\n"
)


# -- mutations -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("operator", list(OPERATORS))
def test_every_operator_is_labelled_and_deterministic(operator: str) -> None:
    a = mutate(INVITE, case_rng(5, 9), operator=operator, focus=("body", "CSeq"))
    b = mutate(INVITE, case_rng(5, 9), operator=operator, focus=("body", "CSeq"))
    assert a == b
    assert a.data != INVITE
    assert a.mutation.operator.split(":")[0] in (operator, "near-miss")
    assert a.mutation.target and a.mutation.description


def test_content_length_lies() -> None:
    for op, check in (
        ("content-length-bigger", lambda v, n: int(v[0]) > n),
        ("content-length-smaller", lambda v, n: int(v[0]) < n),
        ("content-length-negative", lambda v, n: v[0].startswith("-")),
        ("content-length-two", lambda v, n: len(set(v)) == 2),
    ):
        m = RawMessage.from_bytes(mutate(INVITE, case_rng(1, 2), operator=op).data)
        values = [m.headers[i][1] for i in m.find("Content-Length")]
        assert check(values, len(m.body)), (op, values)


def test_normalise_puts_the_volatile_values_back() -> None:
    template, back = normalise(INVITE)
    assert b"abc1" not in template and b"c1@h" not in template and b"40001" not in template
    restored = template.split(b"\r\n\r\n")[0].decode()
    for placeholder, original in back:
        restored = restored.replace(placeholder, original)
    assert restored.encode() == INVITE.split(b"\r\n\r\n")[0]


def test_unknown_operator_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid choices: near-miss"):
        mutate(INVITE, case_rng(0, 0), operator="nope")


# -- cases -----------------------------------------------------------------------------------------------------------


def test_case_is_a_pure_function_and_reaches_every_step() -> None:
    assert case(3, 17) == case(3, 17)
    steps = {case(3, n, [SCENARIOS["invite-reinvite"]]).step_name for n in range(200)}
    assert steps == set(SCENARIOS["invite-reinvite"].step_names())


def test_scenarios_follow_the_profile() -> None:
    names = [s.name for s in scenarios_for(methods=["INVITE", "BYE", "OPTIONS"], extensions=[])]
    assert names == ["options", "invite-bye", "invite-cancel", "invite-reinvite"]
    with pytest.raises(ValueError, match="valid choices"):
        scenarios_for(["nope"])


# -- stateful driving on every transport -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls", "ws", "wss"])
def test_dialog_values_carried_forward_on_every_transport(transport: str) -> None:
    """A case mutating the INFO in the middle of a dialog: tags, CSeq and target come from the device's answers."""
    scenario = SCENARIOS["invite-info"]
    number = next(n for n in range(100) if case(2, n, [scenario]).step_name == "INFO")
    with ResponderThread(transport) as toy:

        async def run() -> None:
            result = await CaseDriver(("127.0.0.1", toy.port), transport).run(case(2, number, [scenario]))
            assert result.error is None, result.error
            assert result.steps_done == 4
            sent = [parse(e.data).message for e in result.exchanges if e.direction == "sent" and not e.mutated]
            bye = next(m for m in sent if m is not None and m.method == "BYE")  # type: ignore[union-attr]
            assert bye.to is not None and bye.to.tag and bye.to.tag.startswith("toy")
            assert [e.mutated for e in result.exchanges if e.direction == "sent"].count(True) == 1

        asyncio.run(run())


def test_sctp_is_skipped_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    if sctp_available()[0]:
        pytest.skip("SCTP works here")
    from conformance.cli import main

    assert main(["fuzz", "--target", "sip:127.0.0.1:40999;transport=sctp", "--cases", "1"]) == 0
    err = capsys.readouterr().err
    assert "sipcert fuzz: skipped: SCTP is not available" in err and "choose --transport" in err


# -- oracles ---------------------------------------------------------------------------------------------------------


def test_prober_sees_a_hang() -> None:
    with ResponderThread("udp", ("hang-bad-content-type",)) as toy:

        async def run() -> None:
            prober = Prober("udp", timeout=0.2)
            assert await prober.alive(("127.0.0.1", toy.port))
            toy.responder.hung = True
            assert not await prober.alive(("127.0.0.1", toy.port))
            await prober.close()

        asyncio.run(run())


def test_protocol_finding_for_2xx_to_malformed(tmp_path: Path) -> None:
    with ResponderThread("udp", ("ok-to-malformed",)) as toy:
        dev = ExternalDevice(("127.0.0.1", toy.port))
        cfg = CampaignConfig(target_uri=toy.uri, seed=1, cases=64, findings_dir=tmp_path, scenarios=("options",),
                             minimise_tests=10, minimise_seconds=5)
        summary = asyncio.run(Campaign(cfg, dev).run())
    rules = {f.rule for f in summary.findings}
    assert RULE_2XX_TO_MALFORMED in rules
    f = next(f for f in summary.findings if f.rule == RULE_2XX_TO_MALFORMED)
    assert f.kind == "protocol" and f.severity == "low" and f.minimised is not None


# -- findings, minimisation ------------------------------------------------------------------------------------------


def test_store_dedups_and_reloads(tmp_path: Path) -> None:
    store = FindingStore(tmp_path)
    f = Finding(id="", kind="crash", severity="high", signature="crash|x|y|s/a|signal SIGSEGV|", seed=1, case=4,
                scenario="s", step="a", transport="udp", target="sip:127.0.0.1:40000", detail="d",
                messages=(Exchange("sent", b"A", True), Exchange("received", b"B")))
    first, new = store.add(f)
    again, new2 = store.add(f)
    assert new and not new2 and again.id == first.id and again.count == 2
    assert sorted(p.name for p in (tmp_path / first.id).glob("*.bin")) == ["000-mutated.bin", "001-received.bin"]
    assert FindingStore(tmp_path).by_signature[f.signature].count == 2
    assert load_finding(tmp_path / first.id).messages == f.messages
    events = [json.loads(line)["event"] for line in (tmp_path / "findings.jsonl").read_text().splitlines()]
    assert events == ["new", "duplicate"]


def test_minimise_finds_the_one_line_that_matters() -> None:
    lines = [f"X-H{i}: {'v' * 40}" for i in range(12)]
    lines.insert(5, "X-Bad: " + "A" * 600)
    msg = ("OPTIONS sip:a@b SIP/2.0\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()
    seq = (Exchange("sent", b"OPTIONS sip:x SIP/2.0\r\n\r\n"), Exchange("received", b"SIP/2.0 200 OK\r\n\r\n"),
           Exchange("sent", msg, True))

    async def oracle(s: tuple[Exchange, ...]) -> bool:
        return any(b"X-Bad: " + b"A" * 300 in e.data for e in s if e.direction == "sent")

    result = asyncio.run(minimise(seq, oracle, max_tests=200, seconds=10))
    assert result.exchanges is not None
    sent = [e for e in result.exchanges if e.direction == "sent"]
    assert len(sent) == 1 and sent[0].mutated
    assert sent[0].data.count(b"\r\n") == 3  # start line, X-Bad, end of header
    assert 300 <= sent[0].data.count(b"A") < 600


# -- the robustness faults, found, minimised and replayed ------------------------------------------------------------

DUT = f"{sys.executable} -m conformance.cli dut --role uas --transport udp --port 0"
FAULTS = [
    # device, fault, scenario, seed, cases, batch, kind
    ("dut", "crash-long-user", "options", 3, 320, 32, "crash"),
    ("dut", "crash-many-via", "options", 1, 48, 8, "crash"),
    ("dut", "hang-bad-content-type", "invite-bye", 1, 27, 9, "hang"),
    ("dut", "crash-info-in-dialog", "invite-info", 1, 10, 4, "crash"),
    ("dut", "hang-prack-bad-rack", "invite-prack", 1, 3, 1, "hang"),
    ("dut", "crash-reinvite-sdp", "invite-reinvite", 1, 40, 8, "crash"),
    ("toy", "crash-many-via", "options", 1, 48, 8, "crash"),
    ("toy", "hang-prack-bad-rack", "invite-prack", 1, 3, 1, "hang"),
]


@pytest.mark.parametrize(("device", "fault", "scenario", "seed", "cases", "batch", "kind"), FAULTS,
                         ids=[f"{f[0]}-{f[1]}" for f in FAULTS])
def test_robustness_fault_found_minimised_replayed(
    tmp_path: Path, device: str, fault: str, scenario: str, seed: int, cases: int, batch: int, kind: str
) -> None:
    """The reference device's robustness faults (and two of the toy's): each found, minimised and replayed."""
    base = DUT if device == "dut" else TOY
    cmd = f"{base} --fault {fault}"
    with ProcessDevice(cmd) as dev:
        cfg = CampaignConfig(target_uri="sip:127.0.0.1;transport=udp", seed=seed, cases=cases, batch=batch,
                             findings_dir=tmp_path, scenarios=(scenario,), catalogue=False, probe_timeout=0.5,
                             minimise_tests=10, minimise_seconds=4)
        summary = asyncio.run(Campaign(cfg, dev).run())
    found = [f for f in summary.findings if f.kind == kind]
    assert found, summary.line()
    f = found[0]
    assert f.severity == "high" and f.seed == seed and f.scenario == scenario
    assert f.minimised is not None, f.minimise_note
    assert sum(len(e.data) for e in f.minimised) <= sum(len(e.data) for e in f.messages)
    if kind == "crash":
        assert f.exit.startswith("signal ") and fault in f.device_output
    folder = tmp_path / f.id
    assert (folder / "finding.json").exists() and list((folder / "minimised").glob("*.bin"))
    from conformance.cli import main

    assert main(["replay", str(folder), "--target", "sip:127.0.0.1;transport=udp", "--dut-cmd", cmd,
                 "--timeout", "0.5"]) == 0
    assert main(["replay", str(folder), "--target", "sip:127.0.0.1;transport=udp", "--dut-cmd", base,
                 "--timeout", "0.5"]) == 1


# -- campaign, resume, CLI -------------------------------------------------------------------------------------------


def test_resume_goes_on_without_repeating(tmp_path: Path) -> None:
    with ResponderThread("udp") as toy:
        dev = ExternalDevice(("127.0.0.1", toy.port))
        base = CampaignConfig(target_uri=toy.uri, seed=11, cases=40, findings_dir=tmp_path, scenarios=("options",),
                              catalogue=False, batch=16)
        first = asyncio.run(Campaign(base, dev).run())
        state = json.loads((tmp_path / "campaign.json").read_text())
        assert (first.cases, state["next_case"], state["seed"]) == (40, 40, 11)
        more = CampaignConfig(target_uri=toy.uri, seed=99, cases=100, findings_dir=tmp_path, resume=True,
                              scenarios=("options",), catalogue=False, batch=16)
        second = asyncio.run(Campaign(more, dev).run())
    state = json.loads((tmp_path / "campaign.json").read_text())
    assert (second.cases, second.seed, state["next_case"], state["cases_run"]) == (60, 11, 100, 100)


def test_cli_summary_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    with ResponderThread("udp") as toy:
        rc = main(["fuzz", "--target", toy.uri, "--cases", "64", "--seed", "4", "--findings", str(tmp_path),
                   "--scenario", "options", "--quiet"])
    out = capsys.readouterr().out
    assert rc in (0, 1)
    assert "64 cases in" in out and "cases/s" in out and "findings" in out
    for argv, text in (
        (["fuzz", "--target", toy.uri, "--cases", "0"], "not positive"),
        (["fuzz", "--target", toy.uri, "--transport", "pigeon"], "choose from"),
        (["fuzz", "--target", toy.uri, "--scenario", "nope"], "choose from"),
        (["fuzz", "--target", toy.uri, "--cases", "5", "--duration", "3"], "not allowed with"),
        (["fuzz", "--target", "sip:127.0.0.1"], "has no port"),
    ):
        with pytest.raises(SystemExit) as exc:
            rc = main(argv)
            raise SystemExit(rc)
        assert exc.value.code == 2
        assert text in capsys.readouterr().err


# -- pytest entry, boofuzz adapter -----------------------------------------------------------------------------------


def test_pytest_entry_one_test_per_case(tmp_path: Path) -> None:
    cmd = f"{TOY} --fault crash-long-user"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "fuzz.pytest_fuzz", "--pyargs", "fuzz.fuzz_suite", "-q",
         "-p", "no:cacheprovider", "--sip-fuzz-seed", "3", "--sip-fuzz-start", "306", "--sip-fuzz-cases", "6",
         "--sip-fuzz-scenario", "options", "--sip-fuzz-target", "sip:127.0.0.1;transport=udp",
         "--sip-fuzz-dut-cmd", cmd, "--sip-fuzz-findings", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )
    assert "1 failed, 5 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "case310" in proc.stdout and "crash finding crash-" in proc.stdout and "sipcert replay" in proc.stdout


def test_boofuzz_session_with_sipcert_definitions_and_monitor(tmp_path: Path) -> None:
    from boofuzz import Session

    from fuzz.boofuzz_adapter import SipLivenessMonitor, s_sip_request, sip_request, sip_target

    with ResponderThread("udp") as toy:
        monitor = SipLivenessMonitor("127.0.0.1", toy.port, timeout=0.3)
        target = sip_target("127.0.0.1", toy.port, monitors=[monitor])
        session = Session(target=target, web_port=None, fuzz_loggers=[], db_filename=str(tmp_path / "b.db"),
                          index_end=12, receive_data_after_each_request=False)
        req = sip_request("INVITE", "127.0.0.1", toy.port)
        assert parse(req.render()).ok  # the unfuzzed rendering is a valid message
        session.connect(req)
        session.connect(s_sip_request("OPTIONS", "127.0.0.1", toy.port, name=f"opt-{os.getpid()}"))
        session.fuzz()
        assert session.num_cases_actually_fuzzed >= 12
        assert monitor.probes >= 12
        assert toy.responder.handled >= 12
