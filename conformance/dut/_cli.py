"""``sipcert dut``: run the reference device from the command line.

Prints exactly one line ``READY <port>`` on stdout once it listens (and ``CONTROL <port>`` after it when a control
port was asked for), logs to stderr, exits 0 on SIGTERM or SIGINT. A crash fault kills it with SIGABRT; a hang fault
blocks it until it is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ._faults import FAULT_TABLE, fault_names
from ._vocab import DEVICE_TRANSPORTS, ROLES

__all__ = ["configure_parser", "faults_text"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not from 0 to 65535")
    return value


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of milliseconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} ms: must be positive")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: must not be negative")
    return value


def _sip_uri(text: str) -> str:
    if not text.lower().startswith(("sip:", "sips:")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a sip: or sips: URI")
    return text


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Fill the ``dut`` subcommand's parser (``conformance/cli.py`` makes it and hands it here)."""
    p.description = (
        "Run the built-in reference device: a correct UAS, UAC, registrar or stateful proxy on loopback, with fault "
        "switches that each break one rule of the catalogue (and robustness faults that crash or hang it, for the "
        "fuzzer). Prints 'READY <port>' on stdout once listening; logs to stderr; exits 0 on SIGTERM/SIGINT."
    )
    p.add_argument("--role", choices=ROLES, default="uas", help="what the device is (default: uas)")
    p.add_argument("--transport", choices=DEVICE_TRANSPORTS, default="udp", help="transport (default: udp)")
    p.add_argument("--port", type=_port, default=0, help="port to listen on; 0 picks a free one (default)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--fault", action="append", default=[], choices=fault_names(), metavar="NAME",
                   help="switch a fault on (repeatable); see --list-faults")
    p.add_argument("--list-faults", action="store_true", help="print the fault table and exit")
    p.add_argument("--next-hop", type=_sip_uri, metavar="SIP-URI",
                   help="proxy: where requests go without Route or binding; uac: outbound proxy")
    p.add_argument("--t1-ms", type=_milliseconds, default=500, help="T1 in milliseconds (default: 500)")
    p.add_argument("--t2-ms", type=_milliseconds, default=4000, help="T2 in milliseconds (default: 4000)")
    p.add_argument("--t4-ms", type=_milliseconds, default=5000, help="T4 in milliseconds (default: 5000)")
    p.add_argument("--user", help="uas: its user; a Request-URI with another user gets 404")
    p.add_argument("--domain", help="registrar/proxy: the domain it is responsible for")
    p.add_argument("--min-expires", type=_non_negative, default=60, help="registrar: Min-Expires (default: 60)")
    p.add_argument("--call", type=_sip_uri, metavar="URI", help="uac: call this URI once started")
    p.add_argument("--control-port", type=_port, metavar="N",
                   help="line-based TCP control port (call <uri>, bye, cancel, status); 0 picks one; "
                   "prints 'CONTROL <port>' after READY")
    p.add_argument("--ring-ms", type=_non_negative, default=50, help="uas: ring time before the 200 (default: 50)")
    p.add_argument("--require-100rel", action="store_true", help="uas: answer 421 when the UAC lacks 100rel")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info",
                   help="stderr log level (default: info)")
    p.set_defaults(func=_cmd_dut)


def faults_text() -> str:
    """The fault table as text, one fault a line (``sipcert dut --list-faults``)."""
    width = max(len(f.name) for f in FAULT_TABLE)
    lines = [f"{len(FAULT_TABLE)} fault switches", ""]
    for f in FAULT_TABLE:
        rules = ", ".join(f.rules) if f.rules else (f.section or "-")
        kind = "" if f.kind == "conformance" else f"[{f.kind}] "
        lines.append(f"{f.name:<{width}}  {'/'.join(f.roles):<22} {kind}{f.summary}  ({rules})")
    return "\n".join(lines) + "\n"


def _cmd_dut(args: argparse.Namespace) -> int:
    if args.list_faults:
        sys.stdout.write(faults_text())
        return 0
    from ..sip._timers import TimerConfig
    from ._config import DeviceConfig
    from ._driver import run_device

    try:
        timers = TimerConfig(t1=args.t1_ms / 1000, t2=args.t2_ms / 1000, t4=args.t4_ms / 1000, trying=0.0)
        config = DeviceConfig(
            role=args.role, transport=args.transport, host=args.host, port=args.port, faults=frozenset(args.fault),
            next_hop=args.next_hop, timers=timers, user=args.user, domain=args.domain, min_expires=args.min_expires,
            call=args.call, control_port=args.control_port, ring_time=args.ring_ms / 1000,
            require_100rel=args.require_100rel, on_crash="abort",
        )
    except ValueError as exc:
        print(f"sipcert dut: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
        format="%(asctime)s sipcert-dut %(levelname)s %(message)s",
    )

    def ready(port: int) -> None:
        print(f"READY {port}", flush=True)

    def control_ready(port: int) -> None:
        print(f"CONTROL {port}", flush=True)

    async def main() -> str | None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_device(config, ready=ready, control_ready=control_ready, stop=stop)

    from ._driver import DeviceError

    try:
        asyncio.run(main())
    except DeviceError as exc:
        print(f"sipcert dut: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"sipcert dut: cannot listen on {args.host}:{args.port} ({args.transport}): {exc}", file=sys.stderr)
        return 1
    return 0
