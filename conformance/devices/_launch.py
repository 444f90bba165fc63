"""Start and stop independent SIP implementations (Kamailio, SIPp, baresip) on loopback.

Each device is a context manager. Entering it picks free ports, writes its configuration into a private
run directory, starts the program in its own session (``start_new_session=True``, stdin from /dev/null,
stdout and stderr into ``RUNDIR/<name>.log``) and waits, with a bound, until the device answers a SIP
OPTIONS. Leaving it kills the whole process group (SIGTERM, then SIGKILL after a bound), also when
starting failed. The run directory is removed on a clean stop and kept (and named in the error) when the
device failed to start, so its log and configuration can be read.

    with Kamailio() as proxy, SippUas(scenario="uas_rr") as uas:
        proxy.register("service", uas.uri)
        result = SippUac(proxy, calls=20, rate=50, scenario="uac_rr").run()
        assert result.ok, result.summary()

See /work/shared/DEVICES.md for how these programs were brought up here and what to expect of them.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import errno
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "CONFIG_DIR",
    "LOOPBACK",
    "Baresip",
    "Device",
    "DeviceError",
    "Kamailio",
    "SippResult",
    "SippUac",
    "SippUas",
    "available",
    "free_port",
    "group_members",
    "missing_reason",
    "probe_options",
    "requires",
]

CONFIG_DIR = Path(__file__).resolve().with_name("configs")
LOOPBACK = "127.0.0.1"

READY_TIMEOUT = 10.0  # seconds a device may take to answer its first OPTIONS
PROBE_INTERVAL = 0.05  # seconds between two readiness probes
STOP_TIMEOUT = 3.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL_LINES = 40
START_ATTEMPTS = 3  # a port picked free can be taken before the device binds it: retry with new ports


class DeviceError(RuntimeError):
    """A device could not be started, did not become ready, or failed while running."""


# --------------------------------------------------------------------------------------------------
# availability


@dataclass(frozen=True, slots=True)
class _Requirement:
    check: str  # an executable name, or a glob for a file (a Kamailio module)
    install: str  # what to tell the user


_REQUIREMENTS: dict[str, _Requirement] = {
    "kamailio": _Requirement("kamailio", "apt-get install kamailio"),
    "kamailio-tls": _Requirement("/usr/lib/*/kamailio/modules/tls.so", "apt-get install kamailio-tls-modules"),
    "kamailio-websocket": _Requirement(
        "/usr/lib/*/kamailio/modules/websocket.so", "apt-get install kamailio-websocket-modules"
    ),
    "sipp": _Requirement("sipp", "apt-get install sip-tester"),
    "baresip": _Requirement("baresip", "apt-get install baresip"),
    "sipsak": _Requirement("sipsak", "apt-get install sipsak"),
    "tshark": _Requirement("tshark", "apt-get install tshark"),
    "timeout": _Requirement("timeout", "apt-get install coreutils"),
}


def available(name: str) -> bool:
    """True when the named device (``kamailio``, ``kamailio-tls``, ``kamailio-websocket``, ``sipp``,
    ``baresip``, ``sipsak``, ``tshark``) is installed on this machine."""
    try:
        req = _REQUIREMENTS[name]
    except KeyError:
        raise ValueError(f"unknown device {name!r}; known: {', '.join(sorted(_REQUIREMENTS))}") from None
    if req.check.startswith("/"):
        return bool(glob.glob(req.check))
    return shutil.which(req.check) is not None


def missing_reason(name: str) -> str | None:
    """None when ``name`` is available, else a skip reason such as
    ``"kamailio not installed (apt-get install kamailio)"``."""
    if available(name):
        return None
    return f"{name} not installed ({_REQUIREMENTS[name].install}; or run .ci/install-debian.sh)"


def requires(*names: str) -> Any:
    """A pytest ``skipif`` mark that skips the test when any of ``names`` is not installed."""
    import pytest  # only the tests need pytest, not the library

    reasons = [r for r in (missing_reason(n) for n in names) if r]
    return pytest.mark.skipif(bool(reasons), reason="; ".join(reasons) or "all installed")


# --------------------------------------------------------------------------------------------------
# ports and probes


def _bindable(port: int, host: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(transport: str = "udp", host: str = LOOPBACK, *, count: int = 1, attempts: int = 200) -> int:
    """A port P such that P, P+1, ..., P+count-1 are all free for BOTH UDP and TCP on ``host``.

    The first candidate comes from binding port 0 with ``transport`` ("udp" or "tcp"); each candidate is
    then bound with both protocols. There is still a window between this check and the device binding the
    port: the device classes retry with new ports when a device fails to bind.
    """
    kind = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}[transport.lower()]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(attempts):
        with socket.socket(family, kind) as s:
            s.bind((host, 0))
            port: int = s.getsockname()[1]
        if port + count - 1 > 65535:
            continue
        if all(_bindable(port + i, host) for i in range(count)):
            return port
    raise DeviceError(f"no run of {count} free UDP+TCP port(s) on {host} after {attempts} attempts")


def _options_request(host: str, port: int, local_port: int, transport: str, user: str | None) -> tuple[bytes, str]:
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    local = f"[{host}]:{local_port}" if ":" in host else f"{host}:{local_port}"
    ruri = f"sip:{user + '@' if user else ''}{hostport}" + (";transport=tcp" if transport == "tcp" else "")
    call_id = f"{uuid.uuid4().hex}@sipcert.probe"
    branch = "z9hG4bK" + uuid.uuid4().hex[:20]
    msg = (
        f"OPTIONS {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {local};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{local}>;tag={uuid.uuid4().hex[:10]}\r\n"
        f"To: <{ruri}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        f"Contact: <sip:probe@{local}>\r\n"
        "Accept: application/sdp\r\n"
        "User-Agent: sipcert-probe\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    return msg.encode(), call_id


def probe_options(
    host: str, port: int, *, transport: str = "udp", user: str | None = None, timeout: float = 1.0
) -> bytes | None:
    """Send one minimal valid OPTIONS (``z9hG4bK`` branch) to ``host:port`` and return the raw bytes of the
    first SIP response received (any status), or None when none came within ``timeout`` seconds.
    ``transport`` is "udp" or "tcp"; over TCP, a refused connection also gives None."""
    transport = transport.lower()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    if transport == "udp":
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            request, _ = _options_request(host, port, s.getsockname()[1], "udp", user)
            s.sendto(request, (host, port))
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                try:
                    data = s.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    # ICMP port unreachable shows up as ECONNREFUSED on the next recv on Linux
                    return None
                if data.startswith(b"SIP/2.0 "):
                    return data
            return None
    if transport != "tcp":
        raise ValueError(f"probe transport must be udp or tcp, not {transport!r}")
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    with s:
        request, _ = _options_request(host, port, s.getsockname()[1], "tcp", user)
        buf = b""
        try:
            s.sendall(request)
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                chunk = s.recv(65535)
                if not chunk:
                    break
                buf += chunk
                head, sep, rest = buf.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head)
                    if len(rest) >= (int(m.group(1)) if m else 0):
                        break
        except OSError:
            pass
        _close_gently(s)
    return buf if buf.startswith(b"SIP/2.0 ") else None


def _close_gently(s: socket.socket, drain: float = 0.2) -> None:
    """Half-close and drain before closing, so that the kernel sends a FIN, not a RST: SIPp's t1 UAS exits
    (status 255, "Connection reset by peer") when a TCP peer resets its connection."""
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + drain
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            if not s.recv(65535):
                break


def _tls_pems(run_dir: Path) -> tuple[Path, Path, Path]:
    """Write a throw-away CA and a certificate for 127.0.0.1/localhost (from trustme) into ``run_dir``.
    Returns (ca.pem, cert.pem with its chain, key.pem)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(LOOPBACK, "::1", "localhost")
    ca_path, cert_path, key_path = run_dir / "ca.pem", run_dir / "cert.pem", run_dir / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return ca_path, cert_path, key_path


# --------------------------------------------------------------------------------------------------
# the process side, shared by every device

_RUNNING: set[Device] = set()


@atexit.register
def _stop_all_at_exit() -> None:
    for dev in list(_RUNNING):
        with contextlib.suppress(Exception):
            dev.stop()


def _kill_group(
    pgid: int, proc: subprocess.Popen[bytes] | None, bound: float, signals: Sequence[int] = (signal.SIGTERM,)
) -> None:
    """Send each of ``signals`` to the process group in turn, waiting up to ``bound`` after each for the
    leader and every member to go; then SIGKILL whatever is left (and wait for it, bounded)."""

    def gone_within(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return not _group_alive(pgid) and (proc is None or proc.poll() is not None)

    for sig in (*signals, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        if gone_within(bound):
            return


def _group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` is alive. Zombies do not count: members orphaned by the
    leader's death are reaped by init in its own time, and they no longer run."""
    members = group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int] | None:
    """Pids of the live (not zombie) processes in process group ``pgid``, from /proc; None without /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rpartition(b")")[2].split()  # after "pid (comm)": state ppid pgrp ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry))
    return members


class Device:
    """Base class: one program started in its own session on loopback. Subclasses fill in ``_prepare``
    (ports, files, argv) and may override ``_probe`` (readiness)."""

    name: ClassVar[str] = "device"
    ready_timeout: float = READY_TIMEOUT
    stop_timeout: float = STOP_TIMEOUT  # after each of stop_signals, before the next / SIGKILL
    stop_signals: tuple[int, ...] = (signal.SIGTERM,)

    def __init__(self, *, host: str = LOOPBACK, run_dir: str | os.PathLike[str] | None = None) -> None:
        if host not in (LOOPBACK, "::1"):
            raise ValueError(f"devices run on loopback only (127.0.0.1 or ::1), not {host!r}")
        self.host = host
        self.port = 0
        self._own_run_dir = run_dir is None
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._log_cache: str | None = None
        self.argv: list[str] = []
        self.started_at = 0.0
        self.startup_seconds = 0.0

    # -- what subclasses provide ---------------------------------------------------------------------
    def _prepare(self, run_dir: Path) -> list[str]:
        """Pick ports (set ``self.port``), write files into ``run_dir``; return the argv."""
        raise NotImplementedError

    def _probe(self) -> bool:
        """One readiness probe. Over UDP at most PROBE_INTERVAL long (then a new OPTIONS goes out); over TCP a
        refused connection returns at once, and an accepted one waits up to 2 s for the answer."""
        timeout = PROBE_INTERVAL if self._probe_transport == "udp" else 2.0
        return probe_options(self.host, self.port, transport=self._probe_transport, timeout=timeout) is not None

    _probe_transport = "udp"
    _env: ClassVar[dict[str, str]] = {}

    # -- public surface --------------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sip:{host}:{self.port}"

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """Everything the program wrote to stdout/stderr so far (also after ``stop()``)."""
        if self._log_path is not None and self._log_path.exists():
            self._log_cache = self._log_path.read_text(errors="replace")
        return self._log_cache or ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> re.Match[str]:
        """Wait (bounded) until the log matches the regular expression ``pattern``; return the match."""
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text())
            if m:
                return m
            if time.monotonic() >= deadline:
                raise DeviceError(f"{self.name}: {pattern!r} not in its log after {timeout:g} s\n{self._tail_block()}")
            if not self.running:
                raise DeviceError(
                    f"{self.name} exited ({self.returncode}) before logging {pattern!r}\n{self._tail_block()}"
                )
            time.sleep(PROBE_INTERVAL)

    def start(self) -> Device:
        if self._proc is not None:
            raise DeviceError(f"{self.name} already started")
        last_error: DeviceError | None = None
        for attempt in range(START_ATTEMPTS):
            run_dir = self._make_run_dir()
            try:
                self._spawn(run_dir)
                self._wait_ready()
                return self
            except DeviceError as exc:
                last_error = exc
                log = self.log_text()
                self._stop_process()
                if not _looks_like_port_clash(log) or attempt == START_ATTEMPTS - 1:
                    break
                self._discard_run_dir(run_dir)
            except BaseException:
                self._stop_process()
                self._discard_run_dir(run_dir)
                raise
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        """Kill the process group: ``stop_signals`` (SIGTERM), then SIGKILL after ``stop_timeout``. Idempotent."""
        self._stop_process()
        if self.run_dir is not None and self._own_run_dir:
            self._discard_run_dir(self.run_dir)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped rc={self.returncode}" if self._proc else "not started"
        return f"<{type(self).__name__} {self.uri} pid={self.pid} {state}>"

    # -- internals -------------------------------------------------------------------------------------
    def _make_run_dir(self) -> Path:
        if self._own_run_dir:
            self.run_dir = Path(tempfile.mkdtemp(prefix=f"sipcert-{self.name}-"))
        else:
            assert self.run_dir is not None
            self.run_dir.mkdir(parents=True, exist_ok=True)
        return self.run_dir

    def _discard_run_dir(self, run_dir: Path) -> None:
        if self._own_run_dir:
            self.log_text()  # keep the log readable after the directory is gone
            shutil.rmtree(run_dir, ignore_errors=True)
            self._log_path = None

    def _spawn(self, run_dir: Path) -> None:
        self.argv = self._prepare(run_dir)
        self._log_path = run_dir / f"{self.name}.log"
        self._log_cache = None
        env = dict(os.environ, LC_ALL="C", **self._env)
        with open(self._log_path, "wb") as log:
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    cwd=run_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                )
            except OSError as exc:
                raise DeviceError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc
        _RUNNING.add(self)
        self.started_at = time.monotonic()

    def _wait_ready(self) -> None:
        deadline = self.started_at + self.ready_timeout
        while True:
            if not self.running:
                raise DeviceError(
                    f"{self.name} exited with status {self.returncode} before answering on {self.hostport} "
                    f"(run dir {self.run_dir})\n{self._tail_block()}"
                )
            tick = time.monotonic()
            if self._probe():
                self.startup_seconds = time.monotonic() - self.started_at
                return
            if time.monotonic() >= deadline:
                raise DeviceError(
                    f"{self.name} did not answer an OPTIONS on {self.hostport} within {self.ready_timeout:g} s "
                    f"(run dir {self.run_dir})\n{self._tail_block()}"
                )
            time.sleep(max(0.0, PROBE_INTERVAL - (time.monotonic() - tick)))

    def _stop_process(self) -> None:
        proc = self._proc
        if proc is None:
            return
        _kill_group(proc.pid, proc, self.stop_timeout, self.stop_signals)
        _RUNNING.discard(self)
        self.log_text()

    def _tail_block(self) -> str:
        argv = " ".join(self.argv)
        return f"--- command: {argv}\n--- last lines of its log:\n{self.log_tail()}\n---"


def _looks_like_port_clash(log: str) -> bool:
    return bool(re.search(r"address already in use|EADDRINUSE|bind.*fail|unable to bind|cannot bind", log, re.I))


# --------------------------------------------------------------------------------------------------
# Kamailio


class Kamailio(Device):
    """Kamailio 5.6 as a registrar and record-routing stateful proxy (``configs/kamailio.cfg``).

    Listens on ``udp``/``tcp`` at ``.port`` (the ``transports`` given), TLS at ``.tls_port`` (= port+1)
    when ``tls``, and WebSocket at ``.ws_port`` (= port+2, plain TCP; WSS goes through the TLS port) when
    ``ws``. ``auth`` challenges REGISTER (401) and INVITE/MESSAGE/... from local users (407), password
    ``AUTH_PASSWORD`` ("secret"). ``defines`` adds ``-A`` defines, e.g. ``("WITH_LOOPCHECK",)`` or
    ``("KAM_DEBUG=3",)``. With ``tls``, the CA to trust is ``.ca_path`` (written by trustme).
    """

    name = "kamailio"

    def __init__(
        self,
        transports: Sequence[str] = ("udp", "tcp"),
        *,
        tls: bool = False,
        ws: bool = False,
        auth: bool = False,
        defines: Sequence[str] = (),
        config: str | os.PathLike[str] | None = None,
        host: str = LOOPBACK,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if host != LOOPBACK:
            raise ValueError("the kept kamailio.cfg takes 127.0.0.1 as its local domain: IPv4 loopback only")
        super().__init__(host=host, run_dir=run_dir)
        self.transports = tuple(t.lower() for t in transports)
        bad = set(self.transports) - {"udp", "tcp"}
        if bad or not self.transports:
            raise ValueError(f"transports must be a non-empty subset of udp, tcp (tls= and ws= switch the rest): {bad}")
        self.tls, self.ws, self.auth = tls, ws, auth
        self.defines = tuple(defines)
        self.config = Path(config) if config is not None else CONFIG_DIR / "kamailio.cfg"
        self.tls_port: int | None = None
        self.ws_port: int | None = None
        self.ca_path: Path | None = None
        self._probe_transport = "udp" if "udp" in self.transports else "tcp"

    def _prepare(self, run_dir: Path) -> list[str]:
        span = 3 if self.ws else 2 if self.tls else 1
        self.port = free_port(self._probe_transport, self.host, count=span)
        ip = f"[{self.host}]" if ":" in self.host else self.host
        argv = [
            "kamailio", "-f", str(self.config), "-DD", "-E", "-m", "512", "-M", "8",
            "-Y", str(run_dir), "-w", str(run_dir), "-n", "4",
        ]  # fmt: skip
        for t in self.transports:
            argv += ["-l", f"{t}:{ip}:{self.port}"]
        if self.tls:
            self.tls_port = self.port + 1
            self.ca_path, cert, key = _tls_pems(run_dir)
            argv += ["-l", f"tls:{ip}:{self.tls_port}", "-A", "WITH_TLS",
                     "-A", f'TLS_CERT="{cert}"', "-A", f'TLS_KEY="{key}"']  # fmt: skip
        if self.ws:
            self.ws_port = self.port + 2
            argv += ["-l", f"tcp:{ip}:{self.ws_port}", "-A", "WITH_WS"]
        if self.auth:
            argv += ["-A", "WITH_AUTH"]
        for d in self.defines:
            argv += ["-A", d]
        return argv

    @property
    def tls_uri(self) -> str | None:
        return None if self.tls_port is None else f"sips:{self.host}:{self.tls_port}"

    @property
    def ws_url(self) -> str | None:
        return None if self.ws_port is None else f"ws://{self.host}:{self.ws_port}/"

    def register(self, user: str, contact: str, *, expires: int = 3600, timeout: float = 2.0) -> int:
        """REGISTER ``contact`` (a SIP URI) for ``sip:user@127.0.0.1`` over UDP (a third-party registration,
        so that a UA that cannot register itself, like SIPp's uas, becomes reachable through the proxy).
        Returns the final status code. Needs ``udp`` in transports and no ``auth``."""
        with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((self.host, 0))
            lp = s.getsockname()[1]
            aor = f"sip:{user}@{self.host}"
            msg = (
                f"REGISTER sip:{self.hostport} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.host}:{lp};branch=z9hG4bK{uuid.uuid4().hex[:20]};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <{aor}>;tag={uuid.uuid4().hex[:10]}\r\n"
                f"To: <{aor}>\r\n"
                f"Call-ID: {uuid.uuid4().hex}@sipcert.register\r\n"
                "CSeq: 1 REGISTER\r\n"
                f"Contact: <{contact}>;expires={expires}\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            s.sendto(msg, (self.host, self.port))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                try:
                    data = s.recv(65535)
                except TimeoutError:
                    break
                m = re.match(rb"SIP/2\.0 (\d{3}) ", data)
                if m and int(m.group(1)) >= 200:
                    return int(m.group(1))
        raise DeviceError(f"kamailio: no final response to REGISTER {user} -> {contact} within {timeout:g} s")


# --------------------------------------------------------------------------------------------------
# SIPp

_SIPP_TRANSPORTS = {"udp": "u1", "tcp": "t1", "u1": "u1", "t1": "t1", "un": "un", "tn": "tn"}


def _sipp_transport(transport: str) -> str:
    try:
        return _SIPP_TRANSPORTS[transport.lower()]
    except KeyError:
        raise ValueError(f"SIPp transport must be u1, t1, un or tn (or udp/tcp), not {transport!r}") from None


def _sipp_scenario(scenario: str | os.PathLike[str]) -> list[str]:
    """``-sn NAME`` for a SIPp built-in, ``-sf FILE`` for a kept scenario (``uas_rr``, ``uac_rr``) or a path."""
    text = os.fspath(scenario)
    kept = CONFIG_DIR / f"{text}.xml"
    if os.sep not in text and not text.endswith(".xml"):
        return ["-sf", str(kept)] if kept.exists() else ["-sn", text]
    path = Path(text)
    if not path.exists():
        raise ValueError(f"SIPp scenario file not found: {path}")
    return ["-sf", str(path.resolve())]


def _sipp_side_ports(host: str) -> list[str]:
    """Pin SIPp's media (RTP echo on MP and MP+2) and control sockets to loopback and free ports: by
    default it binds 6000/6002 and 0.0.0.0:8888."""
    media = free_port("udp", host, count=3)
    ctrl = free_port("udp", host)
    return ["-mi", host, "-mp", str(media), "-ci", host, "-cp", str(ctrl)]


def _target_hostport(target: str | Device) -> str:
    if isinstance(target, Device):
        return target.hostport
    text = target.strip()
    m = re.fullmatch(r"(?:sips?:)?(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?(?:;.*)?", text)
    if not m:
        raise ValueError(f"cannot read host:port from {target!r}")
    return f"{m.group(1)}:{m.group(2) or 5060}"


class SippUas(Device):
    """SIPp as a scripted UAS: ``scenario`` "uas" (built-in), "uas_rr" (kept: honours Record-Route, for
    use behind a proxy), another built-in name, or a path to an XML file. ``transport`` "u1" or "t1".

    With ``auto_answer`` (SIPp ``-aa``) SIPp answers OPTIONS (and INFO, NOTIFY, UPDATE) with 200 OK, which
    is how readiness is detected; without it, readiness is "the process is alive and the port is bound".
    Note that each probe OPTIONS becomes a (failed) call in SIPp's own statistics.
    ``trace_messages`` logs every message sent and received (``-trace_msg``): read it with ``messages_text()``.
    """

    name = "sipp-uas"

    def __init__(
        self,
        transport: str = "u1",
        scenario: str | os.PathLike[str] = "uas",
        *,
        auto_answer: bool = True,
        trace_messages: bool = False,
        extra_args: Sequence[str] = (),
        host: str = LOOPBACK,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(host=host, run_dir=run_dir)
        self.transport = _sipp_transport(transport)
        self.scenario = scenario
        self.auto_answer = auto_answer
        self.trace_messages = trace_messages
        self.extra_args = tuple(extra_args)
        self._probe_transport = "udp" if self.transport.startswith("u") else "tcp"
        self._messages_cache = ""

    @property
    def uri(self) -> str:
        return super().uri + (";transport=tcp" if self._probe_transport == "tcp" else "")

    def messages_text(self) -> str:
        """With ``trace_messages``: SIPp's log of the messages it sent and received so far."""
        if self.run_dir is not None and (path := self.run_dir / "messages.log").exists():
            self._messages_cache = path.read_text(errors="replace")
        return self._messages_cache

    def _stop_process(self) -> None:
        super()._stop_process()
        self.messages_text()

    def _prepare(self, run_dir: Path) -> list[str]:
        self.port = free_port(self._probe_transport, self.host)
        argv = ["sipp", *_sipp_scenario(self.scenario), "-i", self.host, "-p", str(self.port), "-t", self.transport,
                *_sipp_side_ports(self.host), "-nostdin", "-f", "60",
                "-trace_err", "-error_file", str(run_dir / "errors.log")]  # fmt: skip
        if self.auto_answer:
            argv.append("-aa")
        if self.trace_messages:
            argv += ["-trace_msg", "-message_file", str(run_dir / "messages.log")]
        return argv + list(self.extra_args)

    def _probe(self) -> bool:
        if self.auto_answer:
            return super()._probe()
        time.sleep(PROBE_INTERVAL)
        kind = socket.SOCK_DGRAM if self._probe_transport == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, kind) as s:
            try:
                s.bind((self.host, self.port))
            except OSError as exc:
                return exc.errno == errno.EADDRINUSE
        return False


@dataclass(frozen=True, slots=True)
class SippResult:
    """What a SIPp UAC run achieved. ``ok``: exit status 0 and every requested call successful."""

    returncode: int
    calls: int  # requested (-m)
    successful: int
    failed: int
    created: int
    target_rate: float  # calls per second asked for (-r)
    call_rate: float  # calls per second achieved (SIPp's cumulative CallRate; wall-clock based if missing)
    elapsed: float  # wall-clock seconds of the run
    timed_out: bool
    screen: str  # SIPp's final screens (-trace_screen), or its log when there is none
    errors: str  # unexpected messages (-trace_err)
    #: seconds from SIPp's start until its count of successful calls last grew (from its statistics, sampled every
    #: 0.1 s); unlike ``elapsed`` it leaves out SIPp's start-up and the wait for calls that failed; ``None`` when
    #: SIPp wrote no statistics
    completed_in: float | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.failed == 0 and self.successful == self.calls

    def summary(self) -> str:
        text = (
            f"sipp rc={self.returncode}{' (timed out)' if self.timed_out else ''}: {self.successful}/{self.calls} "
            f"successful, {self.failed} failed, {self.created} created, {self.call_rate:.1f} cps "
            f"(asked {self.target_rate:g}) in {self.elapsed:.2f} s"
        )
        if not self.ok:
            text += "\n--- screen:\n" + self.screen[-3000:] + "\n--- unexpected messages:\n" + self.errors[-3000:]
        return text


class SippUac(Device):
    """SIPp as a UAC placing ``calls`` calls at ``rate`` calls/s to ``target`` (a Device, "host:port" or a
    SIP URI), then exiting. ``scenario``: "uac" (built-in), "uac_rr" (kept: honours Record-Route), another
    built-in, or a path. ``outbound_proxy`` ("host:port" or a Device) sends every request there (``-rsa``)
    while the Request-URI still names ``target``. ``service`` is the Request-URI user part.

    The run is bounded: SIPp is wrapped in ``timeout`` and given ``-recv_timeout``. Use ``run()``, or
    ``with SippUac(...) as uac: ...; result = uac.wait()`` to do something while the calls run.
    """

    name = "sipp-uac"

    def __init__(
        self,
        target: str | Device,
        transport: str = "u1",
        calls: int = 1,
        rate: float = 10.0,
        scenario: str | os.PathLike[str] = "uac",
        outbound_proxy: str | Device | None = None,
        *,
        service: str = "service",
        timeout: float = 30.0,
        recv_timeout: float = 5.0,
        extra_args: Sequence[str] = (),
        host: str = LOOPBACK,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(host=host, run_dir=run_dir)
        if calls < 1 or rate <= 0 or timeout <= 0:
            raise ValueError("calls >= 1, rate > 0 and timeout > 0 please")
        self.target = _target_hostport(target)
        self.transport = _sipp_transport(transport)
        self.calls, self.rate = calls, rate
        self.scenario = scenario
        self.outbound_proxy = None if outbound_proxy is None else _target_hostport(outbound_proxy)
        self.service = service
        self.timeout, self.recv_timeout = timeout, recv_timeout
        self.extra_args = tuple(extra_args)
        self._result: SippResult | None = None
        self._probe_transport = "udp" if self.transport.startswith("u") else "tcp"

    def _prepare(self, run_dir: Path) -> list[str]:
        self.port = free_port(self._probe_transport, self.host)
        argv = []
        if available("timeout"):
            argv = ["timeout", "--kill-after=2", f"{self.timeout:g}"]
        argv += ["sipp", self.target, *_sipp_scenario(self.scenario), "-s", self.service,
                 "-i", self.host, "-p", str(self.port), "-t", self.transport,
                 "-m", str(self.calls), "-r", f"{self.rate:g}", "-recv_timeout", str(int(self.recv_timeout * 1000)),
                 *_sipp_side_ports(self.host), "-nostdin", "-f", "60",
                 "-trace_stat", "-stf", str(run_dir / "stat.csv"), "-fd", "100ms",
                 "-trace_screen", "-screen_file", str(run_dir / "screen.log"),
                 "-trace_err", "-error_file", str(run_dir / "errors.log")]  # fmt: skip
        if self.outbound_proxy:
            argv += ["-rsa", self.outbound_proxy]
        return argv + list(self.extra_args)

    def _wait_ready(self) -> None:  # a UAC is "ready" as soon as it runs: it has nothing to answer
        return

    def start(self) -> SippUac:
        for attempt in range(START_ATTEMPTS):
            self._result = None
            super().start()
            if attempt == START_ATTEMPTS - 1:
                break
            # SIPp exits at once with 254 ("fatal error binding a socket") when a port was taken meanwhile
            with contextlib.suppress(subprocess.TimeoutExpired):
                assert self._proc is not None
                if self._proc.wait(timeout=0.2) == 254 and _looks_like_port_clash(self.log_text()):
                    self._stop_process()
                    if self.run_dir is not None:
                        self._discard_run_dir(self.run_dir)
                    self._proc = None
                    continue
            break
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for the run to end (bounded by ``timeout``, default the run's own timeout + 5 s), stop the
        process group either way, and return the result."""
        if self._result is not None:
            return self._result
        if self._proc is None:
            raise DeviceError("sipp-uac: not started")
        bound = self.timeout + 5.0 if timeout is None else timeout
        timed_out = False
        try:
            self._proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            elapsed = time.monotonic() - self.started_at
            self._stop_process()
        rc = self._proc.returncode
        timed_out = timed_out or rc == 124 or rc == -signal.SIGKILL
        self._result = self._read_result(rc, elapsed, timed_out)
        return self._result

    def run(self) -> SippResult:
        """Start, wait for the end, stop; return the result."""
        with self:
            return self.wait()

    def stop(self) -> None:
        if self._proc is not None and self._result is None and self.run_dir is not None and self.run_dir.exists():
            # stopped before wait(): record what there is before the run dir goes
            elapsed = time.monotonic() - self.started_at
            self._stop_process()
            self._result = self._read_result(self._proc.returncode, elapsed, timed_out=False)
        super().stop()

    @property
    def result(self) -> SippResult | None:
        return self._result

    def _read_result(self, rc: int | None, elapsed: float, timed_out: bool) -> SippResult:
        assert self.run_dir is not None
        rows = _stat_rows(self.run_dir / "stat.csv")
        stats = rows[-1] if rows else {}

        def number(key: str) -> float | None:
            try:
                return float(stats[key])
            except (KeyError, ValueError):
                return None

        rc = -1 if rc is None else rc
        successful = number("SuccessfulCall(C)")
        failed = number("FailedCall(C)")
        created = number("TotalCallCreated")
        if successful is None:  # no statistics: all we know is the exit status (0 = every call OK)
            successful = float(self.calls) if rc == 0 else 0.0
            failed = 0.0 if rc == 0 else float(self.calls)
            created = float(self.calls) if rc == 0 else 0.0
        rate = number("CallRate(C)")
        if not rate:
            rate = (successful + (failed or 0)) / elapsed if elapsed > 0 else 0.0
        screen_file = self.run_dir / "screen.log"
        screen = screen_file.read_text(errors="replace") if screen_file.exists() else self.log_text()
        errors_file = self.run_dir / "errors.log"
        errors = errors_file.read_text(errors="replace") if errors_file.exists() else ""
        return SippResult(
            returncode=rc,
            calls=self.calls,
            successful=int(successful),
            failed=int(failed or 0),
            created=int(created or 0),
            target_rate=self.rate,
            call_rate=rate,
            elapsed=elapsed,
            timed_out=timed_out,
            screen=screen,
            errors=errors,
            completed_in=_completed_in(rows),
        )


def _stat_rows(path: Path) -> list[dict[str, str]]:
    """The rows of SIPp's ``-trace_stat`` CSV (';'-separated), keyed by its header; the last one is cumulative."""
    if not path.exists():
        return []
    with open(path, newline="", errors="replace") as f:
        rows = [r for r in csv.reader(f, delimiter=";") if r]
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]


def _epoch(field: str | None) -> float | None:
    """The epoch seconds at the end of a ``StartTime`` / ``CurrentTime`` value (``date<TAB>time<TAB>epoch``)."""
    try:
        return float((field or "").split()[-1])
    except (IndexError, ValueError):
        return None


def _completed_in(rows: list[dict[str, str]]) -> float | None:
    """Seconds from the start until the first statistics row that shows the final count of successful calls."""
    if not rows:
        return None
    final = rows[-1].get("SuccessfulCall(C)")
    start = _epoch(rows[0].get("StartTime"))
    for row in rows:
        if row.get("SuccessfulCall(C)") == final:
            now = _epoch(row.get("CurrentTime"))
            return None if start is None or now is None else max(now - start, 1e-3)
    return None


# --------------------------------------------------------------------------------------------------
# baresip


class Baresip(Device):
    """baresip 1.0 as a user agent (``configs/baresip.config.template``): an auto-answering UAS for
    ``sip:<user>@127.0.0.1:<port>`` (it answers only its own user; others get 404), and a UAC through its
    console (``dial()``, ``hangup()``, ``command()``; ``cons`` module on UDP ``.console_port``).

    Listens on UDP and TCP at ``.port`` and TLS at ``.tls_port`` (= port+1; certificate from trustme,
    CA at ``.ca_path``). ``answermode``: "auto", "manual" or "early". ``transport`` ("udp", "tcp", "tls")
    is put in the account URI, so it is what baresip uses for the requests it sends. With ``registrar``
    (a Device such as Kamailio, or "host:port"), the account registers there (``regint=60``) and the AOR is
    ``sip:<user>@<registrar>``; call ``wait_registered()`` before relying on it.
    """

    name = "baresip"
    # On the first SIGTERM baresip hangs up and unregisters, and waits for those transactions (up to
    # Timer F when the peer is gone); a second SIGTERM makes it exit at once.
    stop_signals = (signal.SIGTERM, signal.SIGTERM)
    stop_timeout = 1.0

    def __init__(
        self,
        user: str = "baresip",
        answermode: str = "auto",
        transport: str = "udp",
        *,
        registrar: str | Device | None = None,
        rtp_ports: int = 40,
        host: str = LOOPBACK,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if host != LOOPBACK:
            raise ValueError("the kept baresip configuration is IPv4 loopback only")
        super().__init__(host=host, run_dir=run_dir)
        if not re.fullmatch(r"[A-Za-z0-9._~+-]+", user):
            raise ValueError(f"keep the baresip user simple: {user!r}")
        if answermode not in ("auto", "manual", "early"):
            raise ValueError(f"answermode must be auto, manual or early, not {answermode!r}")
        if transport.lower() not in ("udp", "tcp", "tls"):
            raise ValueError(f"transport must be udp, tcp or tls, not {transport!r}")
        self.user, self.answermode, self.transport = user, answermode, transport.lower()
        self.registrar = None if registrar is None else _target_hostport(registrar)
        self.rtp_ports = rtp_ports
        self.console_port = 0
        self.tls_port = 0
        self.ca_path: Path | None = None

    @property
    def uri(self) -> str:
        """The URI it answers on (its own user at its own address)."""
        return f"sip:{self.user}@{self.host}:{self.port}"

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.registrar or self.hostport}"

    def _prepare(self, run_dir: Path) -> list[str]:
        self.port = free_port("udp", self.host, count=2)  # UDP+TCP on port, TLS on port+1
        self.tls_port = self.port + 1
        self.console_port = free_port("udp", self.host)
        rtp = free_port("udp", self.host, count=self.rtp_ports)
        self.ca_path, cert, key = _tls_pems(run_dir)
        (run_dir / "sip.pem").write_bytes(key.read_bytes() + cert.read_bytes())
        template = (CONFIG_DIR / "baresip.config.template").read_text()
        config = (
            template.replace("@PORT@", str(self.port))
            .replace("@CONSPORT@", str(self.console_port))
            .replace("@RUNDIR@", str(run_dir))
            .replace("@RTPPORTS@", f"{rtp}-{rtp + self.rtp_ports - 1}")
        )
        (run_dir / "config").write_text(config)
        tparam = "" if self.transport == "udp" else f";transport={self.transport}"
        if self.registrar:
            account = f"<sip:{self.user}@{self.registrar}{tparam}>;regint=60;answermode={self.answermode}"
        else:
            account = f"<sip:{self.user}@{self.hostport}{tparam}>;regint=0;answermode={self.answermode}"
        (run_dir / "accounts").write_text(account + "\n")
        return ["baresip", "-f", str(run_dir), "-4"]

    def _probe(self) -> bool:
        return probe_options(self.host, self.port, user=self.user, timeout=PROBE_INTERVAL) is not None

    def command(self, line: str, *, wait: float = 0.3) -> str:
        """Send one console command (e.g. "/dial sip:..." or "/hangup") and return what the console
        printed back within ``wait`` seconds. The line is always terminated: the console keeps an
        unterminated line and prepends it to the next command."""
        if not self.running:
            raise DeviceError(f"baresip is not running (status {self.returncode})\n{self._tail_block()}")
        if "\n" in line or "\r" in line:
            raise ValueError("one command line at a time")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((self.host, 0))
            s.sendto(line.encode() + b"\n", (self.host, self.console_port))
            out = b""
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                try:
                    out += s.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    break
        return out.decode(errors="replace")

    def dial(self, uri: str, *, wait: float = 0.3) -> str:
        """Make a call to ``uri`` (baresip as UAC). Returns the console output; follow progress with
        ``wait_for_log(r"Call established")``."""
        if not re.fullmatch(r"sips?:\S+", uri):
            raise ValueError(f"dial a SIP URI, not {uri!r}")
        return self.command(f"/dial {uri}", wait=wait)

    def hangup(self, *, wait: float = 0.3) -> str:
        """Hang up the current call."""
        return self.command("/hangup", wait=wait)

    def wait_registered(self, timeout: float = 5.0) -> None:
        """With a ``registrar``: wait (bounded) until baresip logs a successful registration."""
        if not self.registrar:
            raise DeviceError("baresip: no registrar configured")
        self.wait_for_log(r"\{\d+/\w+/v[46]\} 200 OK", timeout=timeout)
