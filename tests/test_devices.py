"""Independent SIP devices (conformance.devices) start on free loopback ports, answer, and stop cleanly.

Every wait here is bounded; the whole file takes a few seconds when Kamailio, SIPp and baresip are
installed (.ci/install-debian.sh), and skips what is not installed.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.devices import (
    CONFIG_DIR,
    Baresip,
    Device,
    DeviceError,
    Kamailio,
    SippUac,
    SippUas,
    available,
    free_port,
    missing_reason,
    probe_options,
    requires,
)

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


# ------------------------------------------------------------------------------------------------------
# a few lines of raw SIP, independent of the project's own parser on purpose


def _request(method: str, ruri: str, local_port: int, transport: str = "UDP", *, to: str | None = None,
             to_tag: str | None = None, from_uri: str | None = None, call_id: str | None = None, cseq: int = 1,
             route: str | None = None, body: str = "") -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """A minimal valid request; returns its bytes and its headers (to compare with what comes back)."""
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    call_id = call_id or uuid.uuid4().hex + "@sipcert.test"
    headers = {
        "Via": f"SIP/2.0/{transport} {HOST}:{local_port};branch={branch};rport",
        "Max-Forwards": "70",
        "From": f"<{from_uri or f'sip:tester@{HOST}:{local_port}'}>;tag=sipcert1",
        "To": f"<{to or ruri}>" + (f";tag={to_tag}" if to_tag else ""),
        "Call-ID": call_id,
        "CSeq": f"{cseq} {method}",
        "Contact": f"<sip:tester@{HOST}:{local_port}>",
    }
    if route:
        headers["Route"] = route
    if body:
        headers["Content-Type"] = "application/sdp"
    headers["Content-Length"] = str(len(body.encode()))
    text = f"{method} {ruri} SIP/2.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n" + body
    return text.encode(), headers


def _parse(data: bytes) -> tuple[str, int, dict[str, list[str]], str]:
    """(version, status, headers by lower-case name (compact forms expanded), body) of a response."""
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    m = re.fullmatch(r"(SIP/2\.0) ([1-6]\d\d) (.*)", lines[0])
    assert m, f"bad status line {lines[0]!r}"
    compact = {"v": "via", "i": "call-id", "f": "from", "t": "to", "m": "contact", "l": "content-length"}
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        headers.setdefault(compact.get(name, name), []).append(value.strip())
    return m.group(1), int(m.group(2)), headers, body


def _group(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in {text!r}"
    return m.group(1)


def _assert_echoes(reply: bytes, sent: dict[str, str]) -> int:
    """RFC 3261 8.2.6.2: the response copies Via, Call-ID, CSeq (and From) of the request. Returns the status."""
    version, status, headers, _ = _parse(reply)
    assert version == "SIP/2.0"
    via = headers["via"][0]
    assert via.startswith(sent["Via"].split(";")[0]), (via, sent["Via"])
    branch = sent["Via"].split(";branch=")[1].split(";")[0]
    assert re.search(r";branch=" + re.escape(branch) + r"(;|$)", via), (via, branch)
    assert headers["call-id"] == [sent["Call-ID"]]
    assert re.sub(r"\s+", " ", headers["cseq"][0]) == sent["CSeq"]
    assert "tag=sipcert1" in headers["from"][0]
    return status


def _udp_exchange(sock: socket.socket, port: int, request: bytes, *, until: int = 200, timeout: float = 3.0) -> list[bytes]:  # fmt: skip
    """Send ``request`` to HOST:port and collect responses until one with status >= ``until`` (bounded)."""
    sock.sendto(request, (HOST, port))
    replies: list[bytes] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except TimeoutError:
            break
        if not data.startswith(b"SIP/2.0 "):
            continue  # a request from the device (not expected here)
        replies.append(data)
        if _parse(data)[1] >= until:
            return replies
    raise AssertionError(f"no response >= {until} within {timeout} s; got {[r.split(b' ', 2)[1] for r in replies]}")


def _tcp_exchange(port: int, request: bytes, *, wrap: ssl.SSLContext | None = None, timeout: float = 3.0) -> bytes:
    raw = socket.create_connection((HOST, port), timeout=timeout)
    with wrap.wrap_socket(raw, server_hostname=HOST) if wrap else raw as s:
        s.sendall(request)
        buf = b""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            chunk = s.recv(65535)
            if not chunk:
                break
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^(content-length|l)\s*:\s*(\d+)", head)
            if sep and len(rest) >= (int(m.group(2)) if m else 0):
                return buf
    raise AssertionError(f"no complete response over TCP within {timeout} s: {buf!r}")


@pytest.fixture
def udp() -> Iterator[tuple[socket.socket, int]]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    try:
        yield s, s.getsockname()[1]
    finally:
        s.close()


def _options(sock_port: tuple[socket.socket, int], port: int, user: str | None = None) -> tuple[bytes, dict[str, str]]:
    sock, lp = sock_port
    ruri = f"sip:{user + '@' if user else ''}{HOST}:{port}"
    request, sent = _request("OPTIONS", ruri, lp)
    return _udp_exchange(sock, port, request)[-1], sent


def _assert_gone(dev: Device, pid: int) -> None:
    """The device's process is reaped and nothing of its process group (its own session) still runs.
    (Orphans of the group killed with it may linger as zombies until init reaps them: those don't count.)"""
    assert dev.returncode is not None
    assert not dev.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rpartition(b")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pid and fields[0] not in (b"Z", b"X"):
            live.append(stat.parent.name)
    assert not live, f"processes of group {pid} still alive: {live}"


# ------------------------------------------------------------------------------------------------------
# plumbing


def test_free_port_is_free_for_udp_and_tcp_and_the_ports_after_it() -> None:
    for transport in ("udp", "tcp"):
        port = free_port(transport, HOST, count=3)
        for p in range(port, port + 3):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((HOST, p))


def test_requires_names_the_package_to_install() -> None:
    assert isinstance(available("kamailio"), bool)
    reason = missing_reason("kamailio")
    assert reason is None or reason.startswith("kamailio not installed (apt-get install kamailio")
    assert requires("sipp", "baresip").name == "skipif"
    with pytest.raises(ValueError):
        available("asterisk")


def test_kept_configs_are_present() -> None:
    for name in ("kamailio.cfg", "baresip.config.template", "uas_rr.xml", "uac_rr.xml"):
        text = (CONFIG_DIR / name).read_text()
        assert "/work/shared/" in text or name.endswith(".xml"), name
    for name in ("uas_rr.xml", "uac_rr.xml"):
        text = (CONFIG_DIR / name).read_text()
        assert 'rrs="true"' in text
    assert "[next_url]" in (CONFIG_DIR / "uac_rr.xml").read_text()
    assert "[routes]" in (CONFIG_DIR / "uac_rr.xml").read_text()
    assert "[last_Record-Route:]" in (CONFIG_DIR / "uas_rr.xml").read_text()


class _Sleeper(Device):
    """A 'device' that never answers: to see the readiness bound and the process-group kill."""

    name = "sleeper"
    ready_timeout = 0.5

    def _prepare(self, run_dir: Path) -> list[str]:
        self.port = free_port("udp", HOST)
        # a child of its own too, to check that the whole group goes
        return ["sh", "-c", "echo sleeper says hello; sleep 30 & sleep 30; wait"]


def test_a_device_that_never_answers_fails_with_its_log_and_leaves_nothing(tmp_path: Path) -> None:
    dev = _Sleeper(run_dir=tmp_path)
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=r"did not answer an OPTIONS .* within 0.5 s(.|\n)*sleeper says hello"):
        dev.start()
    assert time.monotonic() - t0 < 5
    assert dev.pid is not None
    _assert_gone(dev, dev.pid)


# ------------------------------------------------------------------------------------------------------
# Kamailio


@requires("kamailio")
def test_kamailio_answers_options_over_udp_and_tcp_and_stops(udp: tuple[socket.socket, int]) -> None:
    with Kamailio() as k:
        assert k.uri == f"sip:{HOST}:{k.port}"
        pid = k.pid
        assert pid is not None and k.running and k.returncode is None
        reply, sent = _options(udp, k.port)
        assert _assert_echoes(reply, sent) == 200
        request, sent = _request("OPTIONS", f"sip:{HOST}:{k.port};transport=tcp", 9, "TCP")
        assert _assert_echoes(_tcp_exchange(k.port, request), sent) == 200
        assert "INFO" in k.log_text()  # its stderr goes to the log (-E)
    _assert_gone(k, pid)
    assert k.run_dir is not None and not k.run_dir.exists()
    assert k.log_text()  # still readable after the run dir went


@requires("kamailio", "kamailio-tls", "kamailio-websocket")
def test_kamailio_starts_with_tls_and_websocket_and_answers_over_tls() -> None:
    with Kamailio(tls=True, ws=True) as k:
        pid = k.pid
        assert k.tls_port == k.port + 1 and k.ws_port == k.port + 2
        ctx = ssl.create_default_context(cafile=str(k.ca_path))
        request, sent = _request("OPTIONS", f"sip:{HOST}:{k.tls_port};transport=tls", 9, "TLS")
        assert _assert_echoes(_tcp_exchange(k.tls_port, request, wrap=ctx), sent) == 200
        # the WebSocket listener answers the HTTP upgrade (101) and refuses plain HTTP (404)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        upgrade = (
            f"GET / HTTP/1.1\r\nHost: {HOST}:{k.ws_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
        ).encode()
        with socket.create_connection((HOST, k.ws_port), timeout=3) as s:
            s.sendall(upgrade)
            assert s.recv(4096).startswith(b"HTTP/1.1 101 ")
    _assert_gone(k, pid)


@requires("kamailio")
def test_kamailio_with_auth_challenges_register(udp: tuple[socket.socket, int]) -> None:
    with Kamailio(("udp",), auth=True) as k:
        sock, lp = udp
        aor = f"sip:alice@{HOST}"
        request, sent = _request("REGISTER", f"sip:{HOST}:{k.port}", lp, to=aor, from_uri=aor)
        reply = _udp_exchange(sock, k.port, request)[-1]
        assert _assert_echoes(reply, sent) == 401
        assert _parse(reply)[2]["www-authenticate"][0].startswith("Digest ")


@requires("kamailio")
def test_kamailio_that_cannot_start_reports_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text("this is not a kamailio config\n")
    k = Kamailio(config=bad, run_dir=tmp_path / "run")
    with pytest.raises(DeviceError, match=r"kamailio exited with status \d+ (.|\n)*syntax error"):
        k.start()
    assert k.pid is not None
    _assert_gone(k, k.pid)


# ------------------------------------------------------------------------------------------------------
# SIPp


@requires("sipp")
def test_sipp_uas_answers_options_when_auto_answer_is_on(udp: tuple[socket.socket, int]) -> None:
    with SippUas("u1") as uas:
        pid = uas.pid
        reply, sent = _options(udp, uas.port)
        assert _assert_echoes(reply, sent) == 200
        # -aa answers from a template: the To of the 200 carries no tag (RFC 3261 8.2.6.2 wants one)
        assert "tag=" not in _parse(reply)[2]["to"][0]
    _assert_gone(uas, pid)


@requires("sipp")
def test_sipp_uas_over_tcp_answers_options() -> None:
    with SippUas("t1") as uas:
        assert uas.uri.endswith(";transport=tcp")
        request, sent = _request("OPTIONS", f"sip:{HOST}:{uas.port};transport=tcp", 9, "TCP")
        assert _assert_echoes(_tcp_exchange(uas.port, request), sent) == 200
        pid = uas.pid
    _assert_gone(uas, pid)


@requires("sipp")
def test_sipp_uas_without_auto_answer_is_ready_when_its_port_is_bound() -> None:
    with SippUas("u1", auto_answer=False) as uas:
        assert probe_options(HOST, uas.port, timeout=0.3) is None  # the built-in uas ignores OPTIONS
        pid = uas.pid
    _assert_gone(uas, pid)


@requires("sipp")
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_builtin_uac_completes_20_calls_to_sipp_uas(transport: str) -> None:
    with SippUas(transport) as uas:
        uac = SippUac(uas, transport, calls=20, rate=100, timeout=20, recv_timeout=3)
        result = uac.run()
    assert result.ok, result.summary()
    assert (result.successful, result.failed, result.created) == (20, 0, 20)
    assert result.returncode == 0 and not result.timed_out
    assert 0 < result.call_rate <= 120
    assert uac.pid is not None
    _assert_gone(uac, uac.pid)


@requires("sipp")
def test_sipp_uac_counts_failed_calls_when_nobody_answers() -> None:
    port = free_port("udp", HOST)  # nothing listens there
    result = SippUac(f"{HOST}:{port}", calls=2, rate=100, timeout=10, recv_timeout=0.5).run()
    assert not result.ok
    assert result.returncode != 0 and result.successful == 0 and result.failed == 2, result.summary()


@requires("sipp", "kamailio")
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_record_route_scenarios_complete_calls_through_kamailio(transport: str) -> None:
    with Kamailio() as proxy, SippUas(transport, scenario="uas_rr") as uas:
        assert proxy.register("service", uas.uri) == 200
        result = SippUac(proxy, transport, calls=20, rate=100, scenario="uac_rr", timeout=20, recv_timeout=3).run()
    assert result.ok, result.summary()


# ------------------------------------------------------------------------------------------------------
# baresip


@requires("baresip")
def test_baresip_answers_options_for_its_user_only(udp: tuple[socket.socket, int]) -> None:
    with Baresip() as b:
        pid = b.pid
        assert b.uri == f"sip:baresip@{HOST}:{b.port}"
        reply, sent = _options(udp, b.port, user="baresip")
        assert _assert_echoes(reply, sent) == 200
        reply, sent = _options(udp, b.port, user="somebody-else")
        assert _assert_echoes(reply, sent) == 404
    _assert_gone(b, pid)


SDP = (
    "v=0\r\no=tester 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


@requires("baresip")
def test_baresip_auto_answers_a_raw_invite_then_takes_ack_and_bye(udp: tuple[socket.socket, int]) -> None:
    sock, lp = udp
    rtp = free_port("udp", HOST, count=2)
    with Baresip() as b:
        invite, sent = _request("INVITE", b.uri, lp, body=SDP.format(port=rtp))
        replies = _udp_exchange(sock, b.port, invite, timeout=5)
        statuses = [_assert_echoes(r, sent) for r in replies]
        assert statuses[-1] == 200, statuses
        assert set(statuses) <= {100, 180, 183, 200}, statuses
        _, _, headers, body = _parse(replies[-1])
        assert "m=audio" in body
        to_tag = _group(r";tag=([^;>\s]+)", headers["to"][0])
        target = _group(r"<([^>]+)>", headers["contact"][0])
        ack, _ = _request("ACK", target, lp, to=b.uri, to_tag=to_tag, call_id=sent["Call-ID"])
        sock.sendto(ack, (HOST, b.port))
        b.wait_for_log(r"Call established", timeout=5)
        bye, bye_sent = _request("BYE", target, lp, to=b.uri, to_tag=to_tag, call_id=sent["Call-ID"], cseq=2)
        assert _assert_echoes(_udp_exchange(sock, b.port, bye)[-1], bye_sent) == 200
        pid = b.pid
    _assert_gone(b, pid)


@requires("baresip", "sipp")
def test_baresip_dials_and_hangs_up_from_its_console() -> None:
    with SippUas("u1", trace_messages=True) as uas, Baresip() as b:
        out = b.dial(f"sip:service@{uas.hostport}")
        assert "connecting to" in out, out
        b.wait_for_log(r"Call established", timeout=5)
        assert "terminate call" in b.hangup()
        deadline = time.monotonic() + 5
        while not re.search(r"(?m)^BYE sip:(.|\n)*^SIP/2\.0 200 OK\s*$", uas.messages_text()):
            assert time.monotonic() < deadline, "SIPp's uas never answered a BYE:\n" + uas.messages_text()[-3000:]
            time.sleep(0.05)
        assert re.search(r"(?m)^INVITE sip:service@127\.0\.0\.1:\d+ SIP/2\.0", uas.messages_text())


@requires("baresip", "kamailio")
def test_baresip_registers_with_kamailio_and_is_reachable_through_it(udp: tuple[socket.socket, int]) -> None:
    sock, lp = udp
    with Kamailio() as k, Baresip(registrar=k) as b:
        b.wait_registered(timeout=5)
        invite, sent = _request("INVITE", f"sip:baresip@{k.hostport}", lp, body=SDP.format(port=free_port()))
        replies = _udp_exchange(sock, k.port, invite, timeout=5)
        assert _assert_echoes(replies[-1], sent) == 200
        _, _, headers, _ = _parse(replies[-1])
        assert headers.get("record-route"), "the proxy record-routes"
        # leave the call to the device's stop(): baresip is killed with it
