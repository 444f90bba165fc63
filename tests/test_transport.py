"""conformance.transport on loopback: every transport over IPv4 and IPv6, framing, keep-alives, errors, identity.

Each test runs its own event loop (``asyncio.run``) under :func:`run`, which also fails the test if a task was left
pending, the loop's exception handler was called or a ResourceWarning was emitted: clean shutdown is part of the API.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import ssl
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from conformance.sip import (
    Request,
    SipURI,
    build_request,
    build_response,
    name_addr,
    new_tag,
    parse,
    parse_uri,
    raw_message,
    via_value,
)
from conformance.transport import (
    TRANSPORTS,
    DatagramError,
    Endpoint,
    FramingFailed,
    Received,
    TLSConfig,
    TransportUnavailable,
    WebSocketRefused,
    open_endpoint,
    sctp_available,
)
from conformance.transport._sctp import IPPROTO_SCTP

WAIT = 5.0  # every wait is bounded by this


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


SCTP_OK, SCTP_REASON = sctp_available()
IPV6_OK = _ipv6_loopback()

FAMILIES = [
    pytest.param("127.0.0.1", id="v4"),
    pytest.param("::1", id="v6", marks=pytest.mark.skipif(not IPV6_OK, reason="no IPv6 loopback on this machine")),
]


def _transport(name: str) -> Any:
    if name == "sctp":
        return pytest.param(name, id=name, marks=pytest.mark.skipif(not SCTP_OK, reason=SCTP_REASON))
    return pytest.param(name, id=name)


ALL = [_transport(t) for t in TRANSPORTS]
STREAMS = [_transport(t) for t in ("tcp", "tls", "sctp")]
CONNECTED = [_transport(t) for t in ("tcp", "tls", "ws", "wss", "sctp")]


# -- harness ---------------------------------------------------------------------------------------------------------


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    """Run one scenario on a fresh loop; fail on leftover tasks, loop-reported errors or ResourceWarnings."""
    problems: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: problems.append(context))
        await asyncio.wait_for(scenario(), timeout)
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        assert not leftover, f"tasks still pending after the scenario: {leftover}"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(main())
        gc.collect()
    assert not problems, f"the event loop reported: {problems}"
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


class Inbox:
    """Collects what an endpoint hands to ``on_message`` and ``on_error``."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Received] = asyncio.Queue()
        self.errors: asyncio.Queue[BaseException] = asyncio.Queue()

    def on_message(self, received: Received) -> None:
        self.messages.put_nowait(received)

    def on_error(self, exc: BaseException) -> None:
        self.errors.put_nowait(exc)

    async def message(self) -> Received:
        return await asyncio.wait_for(self.messages.get(), WAIT)

    async def error(self) -> BaseException:
        return await asyncio.wait_for(self.errors.get(), WAIT)

    def assert_no_errors(self) -> None:
        assert self.errors.empty(), self.errors.get_nowait()


async def endpoint(transport: str, host: str, inbox: Inbox, **kwargs: Any) -> Endpoint:
    return await open_endpoint(
        transport, host, on_message=inbox.on_message, on_error=inbox.on_error, tls=TLSConfig.for_tests(), **kwargs
    )


async def until(condition: Callable[[], bool]) -> None:
    """Bounded polling for a condition that has no event to wait on (a connection being torn down)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def options_request(sender: Endpoint, receiver: Endpoint) -> bytes:
    request = build_request(
        "OPTIONS",
        receiver.contact_uri("bob"),
        from_=name_addr(sender.contact_uri("alice"), tag=new_tag()),
        to=name_addr(receiver.contact_uri("bob")),
        via=via_value(sender.via_transport, *sender.local),
        contact=name_addr(sender.contact_uri("alice")),
    )
    return bytes(request)


async def raw_stream(ep: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain client connection to a TCP, TLS or SCTP endpoint, for tests that write bytes the endpoint must frame."""
    host, port = ep.local
    if ep.transport == "sctp":
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        return await asyncio.open_connection(sock=sock)
    if ep.transport == "tls":
        client = TLSConfig.for_tests().client
        return await asyncio.open_connection(host, port, ssl=client, server_hostname=host)
    return await asyncio.open_connection(host, port)


def ws_client(ep: Endpoint, subprotocols: list[str] | None = None) -> ws_connect:
    """A plain WebSocket client for a WS or WSS endpoint, offering ``subprotocols`` (the ``sip`` one by default)."""
    offered = [Subprotocol(p) for p in (["sip"] if subprotocols is None else subprotocols)] or None
    client_ssl = TLSConfig.for_tests().client if ep.transport == "wss" else None
    return ws_connect(f"{ep.transport}://{ep.sent_by()}/", subprotocols=offered, ssl=client_ssl, open_timeout=WAIT)


async def close_raw(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), WAIT)
    except (ConnectionError, ssl.SSLError):
        pass


def ping_message(n: int, body: bytes = b"") -> bytes:
    return raw_message(
        "MESSAGE sip:bob@example.com SIP/2.0",
        [
            ("Via", f"SIP/2.0/TCP 192.0.2.1:5070;branch=z9hG4bK-{n}"),
            ("Max-Forwards", "70"),
            ("To", "<sip:bob@example.com>"),
            ("From", f"<sip:alice@example.com>;tag={n}"),
            ("Call-ID", f"call-{n}@192.0.2.1"),
            ("CSeq", f"{n} MESSAGE"),
        ],
        body,
    )


# -- every transport, both families ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", FAMILIES)
@pytest.mark.parametrize("transport", ALL)
def test_s18_request_and_response_exchanged(transport: str, host: str) -> None:
    """RFC 3261 §18.2.2: "the response MUST be sent using the existing connection to the source of the original
    request that created the transaction, if that connection is still open." The response comes back on the request's
    flow, and no second connection is opened."""

    async def scenario() -> None:
        alice_in, bob_in = Inbox(), Inbox()
        alice = await endpoint(transport, host, alice_in)
        bob = await endpoint(transport, host, bob_in)
        async with alice, bob:
            request = options_request(alice, bob)
            sent_flow = await alice.send(request, bob.local)
            rx = await bob_in.message()
            assert rx.data == request
            assert (rx.transport, rx.remote[0], rx.local) == (transport, host, bob.local)
            assert rx.defects == ()
            parsed = parse(rx.data).message
            assert isinstance(parsed, Request) and parsed.via[0].transport == alice.via_transport

            response = bytes(build_response(parsed, 200))
            reply_flow = await bob.send(response, rx.remote, flow=rx.flow)
            back = await alice_in.message()
            assert back.data == response
            assert back.remote == bob.local
            if transport == "udp":
                assert sent_flow == reply_flow == back.flow == rx.flow == 0
                assert alice.flows() == bob.flows() == []
            else:
                assert reply_flow == rx.flow and back.flow == sent_flow
                assert [f.id for f in bob.flows()] == [rx.flow] and not bob.flows()[0].outbound
                assert [f.id for f in alice.flows()] == [sent_flow] and alice.flows()[0].outbound
                # Sending to the peer's address again, either direction, reuses the open connection.
                assert await bob.send(response, rx.remote) == rx.flow
                assert await alice.send(request, bob.local) == sent_flow
                assert (await alice_in.message()).flow == sent_flow
                assert (await bob_in.message()).flow == rx.flow
                assert len(alice.flows()) == len(bob.flows()) == 1
        assert alice.flows() == bob.flows() == []
        alice_in.assert_no_errors()
        bob_in.assert_no_errors()

    run(scenario)


@pytest.mark.parametrize("host", FAMILIES)
@pytest.mark.parametrize("transport", ALL)
def test_identity_via_and_contact(transport: str, host: str) -> None:
    """RFC 3261 §18.1.1 (Via transport), §19.1 (sip/sips URIs); RFC 7118 §5.2: Via ``SIP/2.0/WS`` or ``WSS`` and the
    URI parameter ``;transport=ws`` for both; RFC 4168: ``SCTP`` and ``;transport=sctp``."""
    expected = {
        "udp": ("UDP", "sip", "udp"),
        "tcp": ("TCP", "sip", "tcp"),
        "tls": ("TLS", "sips", None),
        "ws": ("WS", "sip", "ws"),
        "wss": ("WSS", "sips", "ws"),
        "sctp": ("SCTP", "sip", "sctp"),
    }[transport]

    async def scenario() -> None:
        ep = await endpoint(transport, host, Inbox())
        async with ep:
            via_token, scheme, uri_transport = expected
            assert ep.transport == transport and ep.via_transport == via_token
            port = ep.local[1]
            assert ep.local[0] == host and port > 0
            assert ep.sent_by() == (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            uri = ep.contact_uri("alice")
            suffix = f";transport={uri_transport}" if uri_transport else ""
            assert uri == f"{scheme}:alice@{ep.sent_by()}{suffix}"
            assert ep.contact_uri() == f"{scheme}:{ep.sent_by()}{suffix}"
            parsed, problem = parse_uri(uri)
            assert problem is None and isinstance(parsed, SipURI)
            assert (parsed.scheme, parsed.host.strip("[]"), parsed.port) == (scheme, host, port)
            assert parsed.param("transport") == uri_transport
            request = parse(options_request(ep, ep)).message
            assert isinstance(request, Request) and request.defects == ()
            via = request.via[0]
            assert (via.transport, via.host.strip("[]"), via.port) == (via_token, host, port)
            assert f"SIP/2.0/{via_token} {ep.sent_by()};" in options_request(ep, ep).decode()

    run(scenario)


# -- stream framing (TCP, TLS, SCTP) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", FAMILIES)
@pytest.mark.parametrize("transport", STREAMS)
def test_s18_3_message_written_one_byte_at_a_time(transport: str, host: str) -> None:
    """RFC 3261 §18.3: the message is framed by its Content-Length however the stream is split."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint(transport, host, inbox)
        async with ep:
            message = ping_message(1, b"hello, split world")
            reader, writer = await raw_stream(ep)
            for i in range(len(message)):
                writer.write(message[i : i + 1])
                await writer.drain()
            rx = await inbox.message()
            assert rx.data == message and rx.defects == ()
            assert rx.remote == tuple(writer.get_extra_info("sockname")[:2])
            await close_raw(writer)
        inbox.assert_no_errors()

    run(scenario)


@pytest.mark.parametrize("host", FAMILIES)
@pytest.mark.parametrize("transport", STREAMS)
def test_s18_3_several_messages_in_one_write(transport: str, host: str) -> None:
    """RFC 3261 §18.3: several messages in one read are cut apart; a message without Content-Length carries the
    ``missing-content-length`` defect and an empty body."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint(transport, host, inbox)
        async with ep:
            first, second = ping_message(1, b"one"), ping_message(2, b"two\r\n\r\nstill two")
            third = b"OPTIONS sip:bob@example.com SIP/2.0\r\nCall-ID: x\r\n\r\n"
            reader, writer = await raw_stream(ep)
            writer.write(b"\r\n" + first + second + third)
            await writer.drain()
            got = [await inbox.message() for _ in range(3)]
            assert [r.data for r in got] == [first, second, third]
            assert len({r.flow for r in got}) == 1
            assert got[0].defects == got[1].defects == ()
            assert [d.code for d in got[2].defects] == ["missing-content-length"]
            await close_raw(writer)
        inbox.assert_no_errors()

    run(scenario)


@pytest.mark.parametrize("host", FAMILIES)
@pytest.mark.parametrize("transport", STREAMS)
def test_rfc5626_s3_5_1_ping_gets_pong(transport: str, host: str) -> None:
    """RFC 5626 §3.5.1: "When a server receives a double CRLF (a "ping") it MUST send a single CRLF (a "pong")"."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint(transport, host, inbox)
        async with ep:
            reader, writer = await raw_stream(ep)
            for _ in range(2):
                writer.write(b"\r\n\r\n")
                await writer.drain()
                assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
            # The connection is still usable for messages afterwards.
            writer.write(ping_message(3))
            await writer.drain()
            assert (await inbox.message()).data == ping_message(3)
            await close_raw(writer)
        inbox.assert_no_errors()

    run(scenario)


@pytest.mark.parametrize("host", FAMILIES)
@pytest.mark.parametrize("transport", STREAMS)
def test_rfc4475_s3_1_2_3_negative_content_length_closes_connection(transport: str, host: str) -> None:
    """RFC 4475 §3.1.2.3 (ncl): a negative Content-Length leaves no way to find the next message; the framing error
    reaches on_error as FramingFailed and the connection is closed."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint(transport, host, inbox)
        async with ep:
            reader, writer = await raw_stream(ep)
            client = tuple(writer.get_extra_info("sockname")[:2])  # read now: once closed, the socket has no name
            good = ping_message(1)
            bad = good.replace(b"Content-Length: 0", b"Content-Length: -999")
            writer.write(good + bad)
            await writer.drain()
            assert (await inbox.message()).data == good
            error = await inbox.error()
            assert isinstance(error, FramingFailed)
            assert error.defect.code == "bad-content-length" and error.transport == transport
            assert error.remote == client
            assert error.discarded == bad
            assert "closed" in str(error)
            assert await asyncio.wait_for(reader.read(), WAIT) == b""  # EOF: the endpoint closed the connection
            await until(lambda: ep.flows() == [])
            await close_raw(writer)
        assert inbox.messages.empty()

    run(scenario)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_stream_closed_mid_message_is_a_framing_error(transport: str) -> None:
    """RFC 3261 §18.3: a peer closing the stream before Content-Length octets arrived left a truncated message."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint(transport, "127.0.0.1", inbox)
        async with ep:
            reader, writer = await raw_stream(ep)
            writer.write(ping_message(1, b"0123456789")[:-4])
            await writer.drain()
            await close_raw(writer)
            error = await inbox.error()
            assert isinstance(error, FramingFailed) and error.defect.code == "content-length-mismatch"
        assert inbox.messages.empty()

    run(scenario)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_oversize_header_section_is_a_framing_error(transport: str) -> None:
    """RFC 3261 §18.1.1: a message above the endpoint's size limit cannot be buffered; the connection is closed."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint(transport, "127.0.0.1", inbox, max_message=200)
        async with ep:
            reader, writer = await raw_stream(ep)
            writer.write(ping_message(1).replace(b"\r\n\r\n", b"\r\nSubject: " + b"x" * 300 + b"\r\n\r\n"))
            await writer.drain()
            error = await inbox.error()
            assert isinstance(error, FramingFailed) and error.defect.code == "oversize"
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
            await close_raw(writer)

    run(scenario)


# -- connections -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", CONNECTED)
def test_s18_2_2_closed_flow_falls_back_to_a_new_connection(transport: str) -> None:
    """RFC 3261 §18.2.2: "If that connection is no longer open, the server SHOULD open a connection to the IP address
    in the "received" parameter". Sending on a closed flow id opens a new connection to the remote."""

    async def scenario() -> None:
        alice_in, bob_in = Inbox(), Inbox()
        alice = await endpoint(transport, "127.0.0.1", alice_in)
        bob = await endpoint(transport, "127.0.0.1", bob_in)
        async with alice, bob:
            first = await alice.send(options_request(alice, bob), bob.local)
            rx = await bob_in.message()
            await alice.close()  # closes the only flow; alice's listener is gone too
            await until(lambda: bob.flows() == [])
            with pytest.raises(OSError):
                await bob.send(b"late", rx.remote, flow=rx.flow)  # nothing listens at the client's ephemeral port
            carol_in = Inbox()
            carol = await endpoint(transport, "127.0.0.1", carol_in)
            async with carol:
                flow = await bob.send(options_request(bob, carol), carol.local, flow=rx.flow)
                assert flow != rx.flow and (await carol_in.message()).remote[1] != 0
            assert first == 1
        alice_in.assert_no_errors()
        bob_in.assert_no_errors()

    run(scenario)


@pytest.mark.parametrize("transport", CONNECTED)
def test_concurrent_sends_share_one_connection(transport: str) -> None:
    """Several sends to a peer with no connection yet open one connection, not one each."""

    async def scenario() -> None:
        alice_in, bob_in = Inbox(), Inbox()
        alice = await endpoint(transport, "127.0.0.1", alice_in)
        bob = await endpoint(transport, "127.0.0.1", bob_in)
        async with alice, bob:
            flows = await asyncio.gather(*(alice.send(ping_message(i), bob.local) for i in range(5)))
            assert len(set(flows)) == 1
            got = sorted([(await bob_in.message()).data for _ in range(5)])
            assert got == sorted(ping_message(i) for i in range(5))
            assert len(alice.flows()) == len(bob.flows()) == 1

    run(scenario)


# -- UDP -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", FAMILIES)
def test_udp_icmp_port_unreachable_reaches_on_error(host: str) -> None:
    """An ICMP port unreachable for a datagram we sent is reported to on_error as a DatagramError, not a crash."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint("udp", host, inbox)
        async with ep:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind((host, 0))
                closed_port = probe.getsockname()[1]
            await ep.send(b"OPTIONS sip:nobody SIP/2.0\r\n\r\n", (host, closed_port))
            error = await inbox.error()
            assert isinstance(error, DatagramError) and isinstance(error, OSError)
            assert error.errno == errno.ECONNREFUSED
            if sys.platform.startswith("linux"):  # the error queue names the datagram's destination
                assert error.remote == (host, closed_port) and error.icmp_type is not None
                assert "port unreachable" in str(error)
            # The endpoint still works afterwards.
            other_in = Inbox()
            other = await endpoint("udp", host, other_in)
            async with other:
                await ep.send(b"hello", other.local)
                assert (await other_in.message()).data == b"hello"

    run(scenario)


def test_udp_oversize_datagram_is_still_delivered() -> None:
    """A datagram larger than max_message is delivered whole: the parser, not the transport, flags it."""

    async def scenario() -> None:
        alice_in, bob_in = Inbox(), Inbox()
        alice = await endpoint("udp", "127.0.0.1", alice_in)
        bob = await endpoint("udp", "127.0.0.1", bob_in, max_message=1300)
        async with alice, bob:
            big = ping_message(1, b"x" * 4000)
            await alice.send(big, bob.local)
            assert (await bob_in.message()).data == big

    run(scenario)


def test_udp_send_failure_raises_in_the_caller() -> None:
    """A datagram the kernel refuses to send (above 65507 octets over IPv4) raises from send(), with context."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint("udp", "127.0.0.1", inbox)
        async with ep:
            with pytest.raises(DatagramError, match="could not send 70000 octets"):
                await ep.send(b"x" * 70000, ep.local)
        inbox.assert_no_errors()

    run(scenario)


def test_on_message_exception_reaches_on_error() -> None:
    """Design principle 6: an exception in the background (here, in on_message) reaches the test via on_error."""

    async def scenario() -> None:
        errors: list[BaseException] = []

        def broken(received: Received) -> None:
            raise KeyError("handler bug")

        ep = await open_endpoint("udp", on_message=broken, on_error=errors.append)
        async with ep:
            await ep.send(b"boom", ep.local)
            await until(lambda: bool(errors))
        assert isinstance(errors[0], KeyError)
        assert any("on_message" in note for note in errors[0].__notes__)

    run(scenario)


# -- WebSocket -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", FAMILIES)
@pytest.mark.parametrize("transport", ["ws", "wss"])
def test_rfc7118_s4_client_without_sip_subprotocol_is_refused(transport: str, host: str) -> None:
    """RFC 7118 §4: the ``sip`` subprotocol is required; a client that does not offer it is refused (HTTP 400)."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint(transport, host, inbox)
        async with ep:
            for offered in ([], ["chat"]):
                with pytest.raises(InvalidStatus) as refused:
                    await ws_client(ep, offered)
                assert refused.value.response.status_code == 400
            assert ep.flows() == []
            async with ws_client(ep, ["chat", "sip"]) as ws:
                assert ws.subprotocol == "sip"
                await until(lambda: len(ep.flows()) == 1)
        inbox.assert_no_errors()

    run(scenario)


def test_rfc7118_s4_server_not_selecting_sip_is_disconnected() -> None:
    """RFC 7118 §4: a server that completes the handshake without selecting ``sip`` is not a SIP WebSocket server;
    the client closes the connection and send() raises WebSocketRefused."""

    async def scenario() -> None:
        async def echo(ws: ServerConnection) -> None:
            async for _ in ws:
                pass

        inbox = Inbox()
        async with ws_serve(echo, "127.0.0.1", 0) as plain:
            port = plain.sockets[0].getsockname()[1]
            ep = await endpoint("ws", "127.0.0.1", inbox)
            async with ep:
                with pytest.raises(WebSocketRefused, match="RFC 7118"):
                    await ep.send(b"OPTIONS sip:x SIP/2.0\r\n\r\n", ("127.0.0.1", port))
                assert ep.flows() == []
        inbox.assert_no_errors()

    run(scenario)


@pytest.mark.parametrize("transport", ["ws", "wss"])
def test_rfc7118_s5_each_websocket_message_is_one_sip_message(transport: str) -> None:
    """RFC 7118 §5: a SIP message is carried in one WebSocket message, text or binary, possibly fragmented; no
    Content-Length is needed (and none is demanded)."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint(transport, "127.0.0.1", inbox)
        async with ep:
            no_length = b"OPTIONS sip:bob@example.com SIP/2.0\r\nCall-ID: ws\r\n\r\n"
            message = ping_message(7, b"body")
            async with ws_client(ep) as ws:
                await ws.send(no_length.decode())  # text message
                await ws.send([message[i : i + 1] for i in range(len(message))])  # binary, one fragment per byte
                first, second = await inbox.message(), await inbox.message()
                assert (first.data, first.defects) == (no_length, ())
                assert (second.data, second.defects) == (message, ())
                assert first.flow == second.flow and first.remote == ws.local_address[:2]
                # The endpoint answers on the same connection, in a text message.
                await ep.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", first.remote, flow=first.flow)
                assert await asyncio.wait_for(ws.recv(), WAIT) == "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"
        inbox.assert_no_errors()

    run(scenario)


def test_websocket_message_above_max_message_closes_with_1009() -> None:
    """A WebSocket message above max_message closes the connection (1009) and is reported as an oversize framing
    failure."""

    async def scenario() -> None:
        inbox = Inbox()
        ep = await endpoint("ws", "127.0.0.1", inbox, max_message=500)
        async with ep:
            async with ws_client(ep) as ws:
                await ws.send(ping_message(1, b"x" * 1000))
                await asyncio.wait_for(ws.wait_closed(), WAIT)
                assert ws.close_code == 1009
            error = await inbox.error()
            assert isinstance(error, FramingFailed) and error.defect.code == "oversize"
            assert error.transport == "ws"
        assert inbox.messages.empty()

    run(scenario)


# -- SCTP, names, misuse ---------------------------------------------------------------------------------------------


def test_sctp_unavailable_is_a_clear_error() -> None:
    """RFC 4168 needs kernel SCTP; without it open_endpoint("sctp") says so with the kernel's errno."""
    if SCTP_OK:
        pytest.skip("SCTP is available on this kernel")
    assert "SCTP is not available on this kernel" in SCTP_REASON and "errno" in SCTP_REASON

    async def scenario() -> None:
        with pytest.raises(TransportUnavailable, match="SCTP is not available on this kernel") as info:
            await open_endpoint("sctp", on_message=lambda r: None)
        assert info.value.errno is not None and f"errno {info.value.errno}" in str(info.value)

    run(scenario)


def test_unknown_transport_names_the_choices() -> None:
    async def scenario() -> None:
        with pytest.raises(ValueError, match="udp, tcp, tls, ws, wss, sctp"):
            await open_endpoint("quic", on_message=lambda r: None)

    run(scenario)


@pytest.mark.parametrize("transport", ["tls", "wss"])
def test_secure_transport_without_tls_config_is_refused(transport: str) -> None:
    async def scenario() -> None:
        with pytest.raises(ValueError, match="TLSConfig"):
            await open_endpoint(transport, on_message=lambda r: None)

    run(scenario)


def test_send_after_close_raises_and_close_is_idempotent() -> None:
    async def scenario() -> None:
        ep = await endpoint("tcp", "127.0.0.1", Inbox())
        await ep.close()
        await ep.close()
        assert ep.closed and "closed" in repr(ep)
        with pytest.raises(RuntimeError, match="closed"):
            await ep.send(b"x", ("127.0.0.1", 9))

    run(scenario)


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_address_family_mismatch_is_a_value_error(transport: str) -> None:
    if not IPV6_OK:
        pytest.skip("no IPv6 loopback on this machine")

    async def scenario() -> None:
        ep = await endpoint(transport, "127.0.0.1", Inbox())
        async with ep:
            with pytest.raises(ValueError, match="address families differ"):
                await ep.send(b"x", ("::1", 9))

    run(scenario)


def test_tls_config_for_tests_is_cached_and_trusted() -> None:
    first, second = TLSConfig.for_tests(), TLSConfig.for_tests()
    assert first is second
    assert first.server is not None and first.client is not None and first.ca_pem
    assert first.client.verify_mode == ssl.CERT_REQUIRED and first.client.check_hostname
