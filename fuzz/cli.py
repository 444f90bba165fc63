"""``sipcert fuzz`` and ``sipcert replay``: the command-line side of the fuzzer (``conformance/cli.py`` delegates)."""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import time
from pathlib import Path

from .cases import SCENARIOS

__all__ = ["add_fuzz_parser", "add_replay_parser", "cmd_fuzz", "cmd_replay"]

_TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss", "sctp")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (a positive integer is wanted)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive (a positive integer is wanted)")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (a seed is an integer >= 0)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (a seed is an integer >= 0)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a positive number of seconds")
    return value


def add_fuzz_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p: argparse.ArgumentParser = sub.add_parser(
        "fuzz",
        help="fuzz a SIP device: grammar-based, stateful, every transport; crashes, hangs and protocol findings",
        description="Run a fuzz campaign against a device: each case is a scenario (OPTIONS, REGISTER, INVITE "
        "dialogs with re-INVITE, UPDATE, INFO, PRACK, BYE, CANCEL) with one step replaced by a mutated message. "
        "After every batch of cases the device must answer an OPTIONS probe. Findings are written to the findings "
        "directory as they happen, minimised, and can be replayed with 'sipcert replay'. Exit status: 0 no finding, "
        "1 findings, 2 usage error.",
    )
    p.add_argument("--target", metavar="URI", help="the device, e.g. sip:127.0.0.1:5070;transport=udp (with "
                   "--dut-cmd the port may be left out: the device's READY line gives it)")
    p.add_argument("--profile", metavar="FILE", help="a device profile (YAML): its target, methods and extensions "
                   "choose the scenarios")
    p.add_argument("--dut-cmd", metavar="CMD", help="start the device with this command ({port} and {transport} are "
                   "filled in; it prints 'READY <port>' when ready) and restart it after a crash or hang")
    p.add_argument("--transport", choices=_TRANSPORTS, help="transport (default: the target's, else udp)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--cases", type=_positive_int, metavar="N", help="run case numbers up to N (default 1000)")
    size.add_argument("--duration", type=_seconds, metavar="S", help="run for S seconds")
    p.add_argument("--seed", type=_seed, metavar="N", help="campaign seed (default: a random one, printed)")
    p.add_argument("--findings", metavar="DIR", default="build/fuzz", help="findings directory (default build/fuzz)")
    p.add_argument("--resume", action="store_true", help="go on with the campaign checkpointed in DIR/campaign.json")
    p.add_argument("--workers", type=_positive_int, default=8, metavar="N",
                   help="stateful cases run at once (default 8)")
    p.add_argument("--batch", type=_positive_int, default=32, metavar="K",
                   help="cases between two liveness probes; a failing batch is bisected (default 32)")
    p.add_argument("--scenario", action="append", choices=list(SCENARIOS), metavar="NAME",
                   help=f"only this scenario (repeatable); valid choices: {', '.join(SCENARIOS)}")
    p.add_argument("--probe-timeout", type=_seconds, default=0.5, metavar="S",
                   help="seconds to wait for the answer to a liveness probe (default 0.5; one retry)")
    p.add_argument("--no-minimise", action="store_true", help="do not minimise findings")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_fuzz)
    return p


def add_replay_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="resend a fuzz finding's messages and say whether it still reproduces",
        description="Resend the minimised message sequence of a finding (or the original one with --original) to "
        "the device and judge it with the oracle that found it. Exit status: 0 reproduced, 1 not reproduced, "
        "2 usage error.",
    )
    p.add_argument("finding", metavar="FINDING_DIR", help="a finding's folder (DIR/<id>)")
    p.add_argument("--target", metavar="URI", required=True, help="the device, e.g. sip:127.0.0.1:5070;transport=udp")
    p.add_argument("--dut-cmd", metavar="CMD", help="start the device with this command (as for sipcert fuzz)")
    p.add_argument("--original", action="store_true", help="replay the original sequence, not the minimised one")
    p.add_argument("--timeout", type=_seconds, default=0.5, metavar="S", help="seconds to wait for replies (0.5)")
    p.set_defaults(func=cmd_replay)
    return p


def _usage(parser_name: str, text: str) -> int:
    print(f"sipcert {parser_name}: error: {text}", file=sys.stderr)
    return 2


def _target(text: str, transport: str | None, dut_cmd: str | None) -> tuple[str, int, str, str]:
    """(host, port, transport, uri) from a target URI; port 0 when it is left out and the device is started."""
    from conformance.profile import ProfileError, parse_target

    try:
        t = parse_target(text)
    except ProfileError as exc:
        raise ValueError(str(exc)) from None
    explicit = re.search(r"^[a-zA-Z]+:(?:[^@;]*@)?(?:\[[^\]]*\]|[^:;]*):(\d+)", text.strip()) is not None
    if not explicit:
        if not dut_cmd:
            raise ValueError(f"target {text!r} has no port: give one (sip:127.0.0.1:5070) or --dut-cmd")
        port = 0
    else:
        port = t.port
    tr = transport or t.transport
    host = t.address[0]
    if host == "localhost":
        host = "127.0.0.1"
    return host, port, tr, text.strip()


def cmd_fuzz(args: argparse.Namespace) -> int:
    from conformance.transport import sctp_available

    from .campaign import Campaign, CampaignConfig, CampaignError, Progress
    from .oracles import DeviceStartError, ExternalDevice, ProcessDevice

    methods = extensions = None
    target_text = args.target
    if args.profile:
        from conformance.profile import ProfileError, load_profile

        try:
            profile = load_profile(args.profile)
        except (ProfileError, OSError) as exc:
            return _usage("fuzz", f"--profile {args.profile}: {exc}")
        methods, extensions = profile.methods, profile.extensions
        target_text = target_text or profile.target.uri
    if not target_text:
        return _usage("fuzz", "--target URI is required (or a --profile with a target)")
    try:
        host, port, transport, uri = _target(target_text, args.transport, args.dut_cmd)
    except ValueError as exc:
        return _usage("fuzz", str(exc))
    if transport == "sctp":
        ok, reason = sctp_available()
        if not ok:
            print(f"sipcert fuzz: skipped: {reason}; choose --transport udp, tcp, tls, ws or wss", file=sys.stderr)
            return 0
    findings = Path(args.findings)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    if args.resume and args.seed is not None and (findings / "campaign.json").exists():
        import json

        stored = json.loads((findings / "campaign.json").read_text(encoding="utf-8")).get("seed")
        if stored is not None and int(stored) != args.seed:
            return _usage("fuzz", f"--resume: the campaign in {findings} has seed {stored}, not {args.seed}")
    config = CampaignConfig(
        target_uri=uri,
        transport=transport,
        seed=seed,
        cases=None if args.duration else (args.cases or 1000),
        duration=args.duration,
        findings_dir=findings,
        resume=args.resume,
        workers=args.workers,
        batch=args.batch,
        scenarios=tuple(args.scenario) if args.scenario else None,
        methods=methods,
        extensions=extensions,
        probe_timeout=args.probe_timeout,
        minimise=not args.no_minimise,
    )
    device: ProcessDevice | ExternalDevice
    if args.dut_cmd:
        device = ProcessDevice(args.dut_cmd, host=host, port=port, transport=transport, log_dir=findings / "device")
        try:
            device.start()
        except DeviceStartError as exc:
            return _usage("fuzz", str(exc))
    else:
        device = ExternalDevice((host, port))
    tty = sys.stderr.isatty()

    def progress(p: Progress) -> None:
        if args.quiet:
            return
        end = "\r" if tty else "\n"
        print(f"sipcert fuzz: {p.line()}", end=end, file=sys.stderr, flush=True)

    try:
        campaign = Campaign(config, device, progress=progress, progress_interval=0.5 if tty else 5.0)
    except ValueError as exc:
        device.stop()
        return _usage("fuzz", str(exc))
    try:
        summary = asyncio.run(campaign.run())
    except CampaignError as exc:
        print(f"\nsipcert fuzz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsipcert fuzz: interrupted; resume with --resume", file=sys.stderr)
        return 130
    finally:
        device.stop()
    if tty and not args.quiet:
        print(file=sys.stderr)
    for f in summary.new_findings:
        print(f"  {f.severity:6} {f.kind:8} {f.id}: {f.scenario}/{f.step} {f.mutation.get('operator', '')} "
              f"{f.mutation.get('target', '')}: {f.detail}")
        print(f"         replay: {f.replay_command(findings, args.dut_cmd)}")
    print(summary.line())
    return 1 if summary.findings else 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .campaign import reproduce
    from .findings import load_finding
    from .oracles import DeviceStartError, ExternalDevice, Prober, ProcessDevice

    folder = Path(args.finding)
    if not (folder / "finding.json").exists():
        return _usage("replay", f"{folder} is not a finding folder (no finding.json)")
    finding = load_finding(folder)
    try:
        host, port, transport, _ = _target(args.target, None, args.dut_cmd)
    except ValueError as exc:
        return _usage("replay", str(exc))
    if transport != finding.transport:
        return _usage("replay", f"the finding was made over {finding.transport}, the target is {transport}")
    messages = finding.messages if args.original or finding.minimised is None else finding.minimised
    which = "original" if messages is finding.messages else "minimised"
    device: ProcessDevice | ExternalDevice
    if args.dut_cmd:
        device = ProcessDevice(args.dut_cmd, host=host, port=port, transport=transport)
        try:
            device.start()
        except DeviceStartError as exc:
            return _usage("replay", str(exc))
    else:
        device = ExternalDevice((host, port))

    async def run() -> bool:
        prober = Prober(transport, timeout=args.timeout)
        try:
            return await reproduce(finding, messages, device, prober, timeout=args.timeout)
        finally:
            await prober.close()

    start = time.monotonic()
    try:
        ok = asyncio.run(run())
    finally:
        device.stop()
    sent = sum(1 for e in messages if e.direction == "sent")
    verdict = "REPRODUCED" if ok else "NOT REPRODUCED"
    print(f"sipcert replay: {verdict}: {finding.id} ({finding.kind}, {finding.detail}); {which} sequence of {sent} "
          f"message(s) sent in {time.monotonic() - start:.1f} s")
    return 0 if ok else 1
