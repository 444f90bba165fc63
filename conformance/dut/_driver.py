"""The asyncio driver of the reference device, and :class:`Device`, which runs it in a background thread.

One endpoint feeds :class:`~conformance.dut._core.DeviceCore`; one loop timer is re-armed to the core's earliest
deadline after every input (the aioquic pattern, as ``conformance/peer/_core.py`` does); what the core wants sent goes
out in order through one sender task. An optional line-based TCP control port takes ``call <uri>``, ``bye``,
``cancel`` and ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..sip._timers import TimerConfig
from ..transport import DatagramError, Endpoint, FramingFailed, Received, TLSConfig, open_endpoint
from ._config import DeviceConfig
from ._core import Crash, DeviceCore, Hang, Source, Transmit

__all__ = ["run_device", "Device", "DeviceError"]

log = logging.getLogger("sipcert.dut")


class DeviceError(RuntimeError):
    """The device could not start, or its own code failed while it ran (a bug of the device, not of the peer)."""


class _Driver:
    """I/O for one :class:`DeviceCore`: endpoint, timer, sender, control port, crash and hang."""

    def __init__(self, config: DeviceConfig, hang_release: threading.Event | None = None) -> None:
        self.config = config
        self.hang_release = hang_release
        self.endpoint: Endpoint | None = None
        self.core: DeviceCore | None = None
        self.control: Any = None
        self.control_port: int | None = None
        self.finished = asyncio.Event()
        self.crashed: str | None = None
        self.hung: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._queue: asyncio.Queue[Transmit] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.get_running_loop()

    @property
    def port(self) -> int:
        assert self.endpoint is not None
        return self.endpoint.local[1]

    async def start(self) -> None:
        cfg = self.config
        tls = cfg.tls
        if tls is None and cfg.transport in ("tls", "wss"):
            tls = TLSConfig.for_tests()
        self.endpoint = await open_endpoint(
            cfg.transport, cfg.host, cfg.port, on_message=self._on_message, on_error=self._on_error, tls=tls
        )
        self.core = DeviceCore(cfg, local=self.endpoint.local, now=self._loop.time())
        self._sender = self._loop.create_task(self._send_loop())
        if cfg.control_port is not None:
            self.control = await asyncio.start_server(self._control_client, cfg.host, cfg.control_port)
            self.control_port = self.control.sockets[0].getsockname()[1]
        log.info("%s on %s %s (faults: %s)", cfg.role, cfg.transport, self.endpoint.sent_by(),
                 ", ".join(sorted(cfg.faults)) or "none")

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.control is not None:
            self.control.close()
            for task in list(self._clients):
                task.cancel()
            if self._clients:
                await asyncio.gather(*self._clients, return_exceptions=True)
            await self.control.wait_closed()
            self.control = None
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None
        if self.endpoint is not None:
            await self.endpoint.close()

    # -- inputs --------------------------------------------------------------------------------------------------
    def _on_message(self, received: Received) -> None:
        core = self.core
        if core is None or core.dead:
            return
        core.receive(received.data, Source(received.transport, received.remote, received.flow), self._loop.time())
        self._flush()

    def _on_error(self, exc: BaseException) -> None:
        core = self.core
        if isinstance(exc, FramingFailed):
            log.warning("%s", exc)
        elif isinstance(exc, DatagramError) and exc.remote is not None and core is not None:
            log.warning("datagram to %s:%s failed: %s", *exc.remote, exc)
            core.unreachable(exc.remote, self._loop.time())
            self._flush()
        else:
            log.warning("transport error: %s: %s", type(exc).__name__, exc)

    def _fire(self) -> None:
        self._timer = None
        core = self.core
        if core is None or core.dead:
            return
        core.handle_timer(self._loop.time())
        self._flush()

    def command(self, line: str) -> str:
        core = self.core
        if core is None:
            return "ERROR not started"
        answer = core.command(line, self._loop.time())
        self._flush()
        return answer

    # -- outputs -------------------------------------------------------------------------------------------------
    def _flush(self) -> None:
        core = self.core
        assert core is not None
        for out in core.outputs():
            if isinstance(out, Transmit):
                self._queue.put_nowait(out)
            elif isinstance(out, Crash):
                self._crash(out.reason)
                return
            elif isinstance(out, Hang):
                self._hang(out.reason)
                return
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        core = self.core
        deadline = core.next_timer() if core is not None else None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire)

    async def _send_loop(self) -> None:
        while True:
            out = await self._queue.get()
            endpoint, core = self.endpoint, self.core
            if endpoint is None or core is None or core.dead:
                continue
            try:
                await endpoint.send(out.data, out.remote, flow=out.flow)
            except Exception as exc:  # the next hop is unreachable: the transaction that sent it fails (§17.1.4)
                log.warning("cannot send to %s:%s: %s: %s", *out.remote, type(exc).__name__, exc)
                if out.token is not None:
                    core.send_failed(out.token, self._loop.time())
                    self._flush()

    def _crash(self, reason: str) -> None:
        self.crashed = reason
        if self.config.on_crash == "abort":
            sys.stderr.flush()
            # A deliberate crash for the fuzzer to find: no core file in whatever directory the device runs in.
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.abort()
        # in-process: the device stops answering and its run ends, as if the process had died
        self._stop_now()

    def _hang(self, reason: str) -> None:
        self.hung = reason
        if self.hang_release is not None:
            self.hang_release.wait()
            self._stop_now()
            return
        if threading.current_thread() is threading.main_thread():
            # The loop is blocked for good: let SIGTERM and SIGINT kill the process the default way.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        threading.Event().wait()

    def _stop_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.endpoint is not None:
            self._loop.create_task(self.endpoint.close())
        self.finished.set()

    # -- control port --------------------------------------------------------------------------------------------
    async def _control_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                text = line.decode("utf-8", "replace").strip()
                if not text:
                    continue
                if text.lower() in ("quit", "exit"):
                    writer.write(b"OK bye\n")
                    break
                writer.write((self.command(text) + "\n").encode("utf-8"))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._clients.discard(task)


async def run_device(
    config: DeviceConfig,
    *,
    ready: Callable[[int], None] | None = None,
    control_ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
    hang_release: threading.Event | None = None,
    _started: Callable[[_Driver], None] | None = None,
) -> str | None:
    """Run the reference device until ``stop`` is set (or, with ``on_crash="stop"``, until a crash fault fires).

    ``ready(port)`` is called once it listens (port 0 in the config: the port picked); ``control_ready(port)`` once
    the control port listens. Returns ``None`` after a clean stop, else the reason a robustness fault gave.
    """
    driver = _Driver(config, hang_release)
    await driver.start()
    try:
        if _started is not None:
            _started(driver)
        if ready is not None:
            ready(driver.port)
        if control_ready is not None and driver.control_port is not None:
            control_ready(driver.control_port)
        if config.call:
            log.info("%s", driver.command(f"call {config.call}"))
        waiters = [asyncio.ensure_future(driver.finished.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        await driver.close()
    if driver.core is not None and driver.core.errors:
        errors = driver.core.errors
        raise DeviceError(f"{len(errors)} internal error(s) in the device: "
                          + "; ".join(f"{type(e).__name__}: {e}" for e in errors))
    return driver.crashed or driver.hung


class Device:
    """The reference device in a background thread, for tests and the conformance suite.

    >>> with Device(role="uas", transport="udp") as dev:            # doctest: +SKIP
    ...     peer.request(invite, dev.address)

    Keyword arguments are :class:`DeviceConfig` fields (``faults`` may be any iterable of names); ``timers`` is a
    :class:`~conformance.sip.state.TimerConfig`, or give ``t1``, ``t2``, ``t4`` in seconds. Crash faults stop the device instead of killing the process
    (``on_crash="stop"``); :attr:`crashed` and :attr:`hung` then say why it went quiet. Leaving the context re-raises
    any internal error of the device (:class:`DeviceError`).
    """

    def __init__(self, config: DeviceConfig | None = None, /, **overrides: Any) -> None:
        if "faults" in overrides and not isinstance(overrides["faults"], frozenset):
            overrides["faults"] = frozenset(overrides["faults"])
        if any(k in overrides for k in ("t1", "t2", "t4")):
            base = overrides.get("timers") or (config.timers if config is not None else TimerConfig(trying=0.0))
            values = {k: overrides.pop(k) for k in ("t1", "t2", "t4") if k in overrides}
            overrides["timers"] = dataclasses.replace(base, **values)
        self.config = dataclasses.replace(config, **overrides) if config is not None else DeviceConfig(**overrides)
        self.port = 0
        self.control_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"sipcert-dut-{self.config.role}", daemon=True)
        self._ready = threading.Event()
        self._release = threading.Event()
        self._stop: asyncio.Event | None = None
        self._driver: _Driver | None = None
        self._error: BaseException | None = None
        self._result: str | None = None
        self._started = False

    # -- life cycle ----------------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Device:
        if self._started:
            return self
        self._started = True
        self._loop = asyncio.new_event_loop()
        self._thread.start()
        if not self._ready.wait(timeout):
            raise DeviceError(f"the device did not start within {timeout} s")
        if self._error is not None:
            error, self._error = self._error, None
            self._thread.join(timeout)
            raise DeviceError(f"the device could not start: {type(error).__name__}: {error}") from error
        return self

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()

        def started(driver: _Driver) -> None:
            self._driver = driver

        def ready(port: int) -> None:
            self.port = port
            if self._driver is not None:
                self.control_port = self._driver.control_port
            self._ready.set()

        try:
            self._result = await run_device(
                self.config, ready=ready, stop=self._stop, hang_release=self._release, _started=started
            )
        except BaseException as exc:  # start failure or internal errors: re-raised in the owner's thread
            self._error = exc
        finally:
            self._ready.set()

    def stop(self) -> None:
        """Stop the device (releasing a hang) and re-raise its internal errors, if any."""
        if not self._started:
            return
        self._release.set()
        if self._thread.is_alive():
            stop = self._stop
            if stop is not None and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(stop.set)
                except RuntimeError:  # the loop closed already
                    pass
            self._thread.join(10.0)
        if self._error is not None:
            error, self._error = self._error, None
            raise DeviceError(str(error)) from error

    def __enter__(self) -> Device:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests want -----------------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return self.config.host, self.port

    @property
    def uri(self) -> str:
        """``sip:host:port;transport=x`` (``sips:`` over TLS and WSS) reaching the device."""
        scheme = "sips" if self.config.transport in ("tls", "wss") else "sip"
        param = "" if self.config.transport == "tls" else f";transport={'ws' if self.config.transport == 'wss' else self.config.transport}"
        return f"{scheme}:{self.config.host}:{self.port}{param}"

    def user_uri(self, user: str) -> str:
        return self.uri.replace(":", f":{user}@", 1)

    @property
    def crashed(self) -> str | None:
        return self._driver.crashed if self._driver is not None else None

    @property
    def hung(self) -> str | None:
        return self._driver.hung if self._driver is not None else None

    @property
    def core(self) -> DeviceCore:
        """The sans-I/O core (read it from the test thread only for what does not change under you)."""
        assert self._driver is not None and self._driver.core is not None
        return self._driver.core

    def command(self, line: str, timeout: float = 5.0) -> str:
        """Run a control command (``call <uri>``, ``bye``, ``cancel``, ``status``) on the device's loop."""
        driver, loop = self._driver, self._loop
        if driver is None or loop is None:
            raise DeviceError("the device is not running")

        async def run() -> str:
            return driver.command(line)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)
