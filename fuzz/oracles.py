"""Oracles: is the device still alive, did it crash, did it answer a malformed request as if it were fine?

* **Liveness** (:class:`Prober`): an OPTIONS transaction with a bounded timeout; the device *hangs* when it answers
  neither the probe nor one retry. Any response counts as an answer, even a 4xx or 5xx.
* **Crash** (:class:`ProcessDevice`): the device process sipcert started (``--dut-cmd``) exited or died by a signal.
  It is then restarted for the next case. A device sipcert did not start (:class:`ExternalDevice`) cannot be told
  apart from a hung one, and cannot be restarted.
* **Protocol** (:func:`protocol_verdicts`, lower severity): a 2xx to a request the parser finds fatally malformed
  (``conformance.sip.parse``), where RFC 3261 demands a 400; and, on requests without fatal defects, the MUST-level
  message rules of ``conformance.checks`` run on each response.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from conformance.sip import STREAM_TRANSPORTS, Request, Response, parse
from conformance.transport import Endpoint, Received, TLSConfig, open_endpoint

from .stateful import CaseResult, client_tls

__all__ = [
    "DeviceControl",
    "DeviceStartError",
    "ExternalDevice",
    "ProcessDevice",
    "Prober",
    "Verdict",
    "exit_text",
    "protocol_verdicts",
]

SEVERITY = {"crash": "high", "hang": "high", "protocol": "low"}
_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_BRANCH = re.compile(rb"branch=(z9hG4bK[^;,\s]+)")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an oracle found. ``exit`` is ``"signal SIGSEGV"`` / ``"exit 3"`` for a crash, ``rule`` the id of the
    rule a protocol verdict applies."""

    kind: str
    detail: str
    exit: str = ""
    rule: str = ""

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]


def exit_text(returncode: int) -> str:
    """``signal SIGABRT`` for a negative return code (death by signal), else ``exit N``."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"


# -- the device ------------------------------------------------------------------------------------------------------


class DeviceControl(Protocol):
    """What the campaign needs of the device: where it listens, whether it died, and a restart. ``dirty`` is set
    when a replay left it hung, so that the next replay restarts it first."""

    dirty: bool

    @property
    def address(self) -> tuple[str, int]: ...

    def start(self) -> None: ...

    def exit_status(self) -> str | None:
        """``None`` while the device runs (or when it cannot be known), else how it ended (:func:`exit_text`)."""

    def restart(self) -> bool:
        """Bring a fresh device up; False when this device cannot be restarted."""

    def output(self) -> str:
        """What the device wrote on stderr (and stdout), the tail, when sipcert started it."""

    def stop(self) -> None: ...


class DeviceStartError(RuntimeError):
    """The device command did not start or did not say READY in time."""


class ExternalDevice:
    """A device sipcert did not start: a fixed address, no exit status, no restart."""

    def __init__(self, address: tuple[str, int]) -> None:
        self._address = address
        self.dirty = False

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    def start(self) -> None:
        return None

    def exit_status(self) -> str | None:
        return None

    def restart(self) -> bool:
        return False

    def output(self) -> str:
        return ""

    def stop(self) -> None:
        return None


class ProcessDevice:
    """A device process sipcert starts from a command line (``--dut-cmd``).

    ``{port}`` in the command is replaced by a free loopback port and ``{transport}`` by the transport. The device is
    ready when it prints a line ``READY <port>`` (that port is then used) or, without one, when it answers an OPTIONS
    probe; both within ``ready_timeout``. It runs in its own session; stdout and stderr go to a log file.
    """

    def __init__(
        self,
        command: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        transport: str = "udp",
        ready_timeout: float = 15.0,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.command = command
        self.host = host
        self.transport = transport
        self.ready_timeout = ready_timeout
        self._fixed_port = port
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="sipcert-dut-"))
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = self._log_dir / "device.log"
        self._ready = threading.Event()
        self.starts = 0
        self.argv: list[str] = []
        self.dirty = False

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self._port)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        port = self._fixed_port
        if "{port}" in self.command and not port:
            from conformance.devices import free_port

            port = free_port("tcp" if self.transport != "udp" else "udp", self.host)
        text = self.command.replace("{port}", str(port)).replace("{transport}", self.transport)
        self.argv = shlex.split(text)
        self._ready.clear()
        self._port = port
        log = open(self._log_path, "ab")  # noqa: SIM115 - handed to the child and closed below
        try:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True
            )
        except OSError as exc:
            raise DeviceStartError(f"cannot run the device command {text!r}: {exc}") from exc
        finally:
            log.close()
        self.starts += 1
        threading.Thread(target=self._read_stdout, args=(self._proc,), daemon=True).start()
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.05):
                return
            if self._proc.poll() is not None:
                raise DeviceStartError(
                    f"the device command {text!r} ended ({exit_text(self._proc.returncode)}) before it was ready:\n"
                    + self.output()
                )
            if self._port and _probe_once(self.host, self._port, self.transport):
                return
        self.stop()
        raise DeviceStartError(f"the device command {text!r} printed no READY line and answered no OPTIONS within "
                               f"{self.ready_timeout:g} s:\n{self.output()}")

    def _read_stdout(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with open(self._log_path, "ab") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                m = re.match(rb"\s*READY\s+(\d+)", line)
                if m and not self._ready.is_set():
                    if proc is self._proc:
                        self._port = int(m.group(1))
                        self._ready.set()

    def exit_status(self) -> str | None:
        if self._proc is None:
            return None
        rc = self._proc.poll()
        return None if rc is None else exit_text(rc)

    def wait_exit(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` for the device to end; its exit status, or None if it still runs."""
        if self._proc is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout)
        return self.exit_status()

    def restart(self) -> bool:
        self.stop()
        self.start()
        return True

    def output(self, limit: int = 20000) -> str:
        try:
            data = self._log_path.read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(5)
        if proc.stdout is not None:
            with contextlib.suppress(Exception):
                proc.stdout.close()

    def __enter__(self) -> ProcessDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _probe_once(host: str, port: int, transport: str) -> bool:
    if transport not in ("udp", "tcp"):
        import socket

        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        return False
    from conformance.devices import probe_options

    return probe_options(host, port, transport=transport, timeout=0.2) is not None


# -- liveness --------------------------------------------------------------------------------------------------------


class Prober:
    """Liveness probes over one endpoint of the campaign's transport: an OPTIONS, answered or not within ``timeout``.

    For a stream transport the endpoint's connection to the device is reused while it stays open, and reopened when
    the device closed it (after a restart).
    """

    def __init__(self, transport: str, *, timeout: float = 1.0, tls: TLSConfig | None = None) -> None:
        self.transport = transport
        self.timeout = timeout
        self.tls = tls if tls is not None or transport not in ("tls", "wss") else client_tls()
        self._ep: Endpoint | None = None
        self._waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)
        self.sent = 0

    async def _endpoint(self) -> Endpoint:
        if self._ep is None:
            self._ep = await open_endpoint(self.transport, "127.0.0.1", 0, on_message=self._on_message,
                                           on_error=lambda exc: None, tls=self.tls)
        return self._ep

    def _on_message(self, received: Received) -> None:
        m = _BRANCH.search(received.data)
        if m is not None:
            fut = self._waiting.pop(m.group(1), None)
            if fut is not None and not fut.done():
                fut.set_result(received.data)

    def _options(self, ep: Endpoint, target: tuple[str, int], branch: str) -> bytes:
        host = f"[{target[0]}]" if ":" in target[0] else target[0]
        scheme = "sips" if ep.secure else "sip"
        uri = f"{scheme}:{host}:{target[1]}"
        if self.transport not in ("udp", "tls"):
            uri += f";transport={'ws' if self.transport == 'wss' else self.transport}"
        local = ep.sent_by()
        return (
            f"OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/{ep.via_transport} {local};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nTo: <{uri}>\r\nFrom: <{scheme}:probe@{local}>;tag=p{branch[-8:]}\r\n"
            f"Call-ID: {branch}@sipcert.probe\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    async def probe(self, target: tuple[str, int], timeout: float | None = None) -> bool:
        """One OPTIONS; True when any response came back in time."""
        wait = self.timeout if timeout is None else timeout
        try:
            ep = await asyncio.wait_for(self._endpoint(), wait)
            branch = f"z9hG4bKprobe{next(self._ids)}x{os.getpid()}"
            fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._waiting[branch.encode()] = fut
            await asyncio.wait_for(ep.send(self._options(ep, target, branch), target), wait)
            self.sent += 1
            data = await asyncio.wait_for(fut, wait)
            return bool(_STATUS.match(data))
        except (OSError, TimeoutError, ConnectionError):
            return False
        except Exception:
            return False
        finally:
            self._waiting.clear()

    async def alive(self, target: tuple[str, int]) -> bool:
        """The probe, and one retry: False means the device hangs (or is gone)."""
        if await self.probe(target):
            return True
        return await self.probe(target)

    async def close(self) -> None:
        if self._ep is not None:
            with contextlib.suppress(Exception):
                await self._ep.close()
            self._ep = None


# -- protocol --------------------------------------------------------------------------------------------------------

#: The label of the 2xx-to-malformed verdict (RFC 3261 §8.2 and §21.4.1: a request the UAS cannot parse gets a 400).
RULE_2XX_TO_MALFORMED = "fuzz-2xx-to-malformed"


def _fatal(data: bytes, transport: str) -> list[str]:
    result = parse(data, stream=transport in STREAM_TRANSPORTS)
    if result.message is None:
        return [d.code for d in result.defects] or ["bad-start-line"]
    return [d.code for d in result.fatal]


def protocol_verdicts(result: CaseResult, *, catalogue: bool = True) -> list[Verdict]:
    """Protocol verdicts on the replies to the mutated message of one case."""
    if result.mutated_data is None or not result.replies:
        return []
    out: list[Verdict] = []
    statuses = [int(m.group(1)) for r in result.replies if (m := _STATUS.match(r))]
    ok_2xx = any(200 <= s < 300 for s in statuses)
    fatal = _fatal(result.mutated_data, result.transport) if ok_2xx or catalogue else []
    if ok_2xx and fatal:
        first = next(s for s in statuses if 200 <= s < 300)
        out.append(Verdict("protocol", f"answered {first} to a request with fatal defects ({', '.join(fatal[:4])}); "
                           "RFC 3261 §8.2 and §21.4.1 want 400 (Bad Request)", rule=RULE_2XX_TO_MALFORMED))
    if catalogue and not fatal:
        out.extend(catalogue_verdicts(result.mutated_data, result.replies, result.transport))
    return out


def catalogue_verdicts(request_data: bytes, replies: Sequence[bytes], transport: str) -> list[Verdict]:
    """MUST-level message rules of ``conformance.checks`` on each reply to a request without fatal defects."""
    try:
        from conformance.checks import Context, Level, check_message, is_reliable, transport_kind
    except ImportError:  # pragma: no cover - the catalogue is part of sipcert
        return []
    req = parse(request_data).message
    if not isinstance(req, Request):
        return []
    ctx = Context(request=req, transport=transport_kind(transport), reliable=is_reliable(transport))
    out = []
    for data in replies:
        msg = parse(data).message
        if not isinstance(msg, Response):
            continue
        try:
            findings = check_message(msg, ctx, levels=[Level.MUST])
        except Exception:  # a rule that cannot judge this odd exchange: not a device finding
            continue
        for f in findings:
            out.append(Verdict("protocol", f"{f.citation}: {f.message}", rule=f.rule_id))
    return out
