"""What the reference device is asked to be: :class:`DeviceConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..sip._timers import TimerConfig
from ..transport import TLSConfig
from ._faults import FAULTS, check_faults
from ._vocab import DEVICE_TRANSPORTS, ROLES

__all__ = ["DeviceConfig", "ROLES", "DEVICE_TRANSPORTS"]


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """The reference device's configuration: role, where it listens, its timers, its users and its faults.

    ``on_crash`` says what a crash fault does: ``abort`` kills the process with SIGABRT (what ``sipcert dut`` does,
    what a fuzzer's monitor expects); ``stop`` only stops the device (the default for the in-process
    :class:`~conformance.dut.Device`, which must not kill the test process). A hang fault blocks the device's event
    loop until the device is stopped from outside (or forever, in ``sipcert dut``).
    """

    role: str = "uas"
    transport: str = "udp"
    host: str = "127.0.0.1"
    port: int = 0
    faults: frozenset[str] = frozenset()
    #: Proxy: where requests go when no Route and no binding says otherwise; UAC: the outbound proxy.
    next_hop: str | None = None
    timers: TimerConfig = field(default_factory=lambda: TimerConfig(trying=0.0))
    #: UAS: when set, a Request-URI with another user part gets 404.
    user: str | None = None
    #: Registrar / proxy: the domain it is responsible for (default: any).
    domain: str | None = None
    min_expires: int = 60
    default_expires: int = 3600
    #: UAC: place a call to this URI when started.
    call: str | None = None
    #: A line-based TCP control port (``call <uri>``, ``bye``, ``cancel``, ``status``); 0 picks a free port.
    control_port: int | None = None
    #: UAS: seconds between the 180 and the 200 (the "ring time").
    ring_time: float = 0.05
    #: UAS: answer 421 to an INVITE that does not support 100rel.
    require_100rel: bool = False
    tls: TLSConfig | None = None
    on_crash: Literal["abort", "stop"] = "stop"
    #: RTP port put in SDP (no media is sent).
    media_port: int = 40000

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; valid choices: {', '.join(ROLES)}")
        if self.transport not in DEVICE_TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}; valid choices: {', '.join(DEVICE_TRANSPORTS)}")
        object.__setattr__(self, "faults", check_faults(self.faults))
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not from 0 to 65535")
        if self.min_expires < 0 or self.default_expires < 0 or self.ring_time < 0:
            raise ValueError("min_expires, default_expires and ring_time must not be negative")
        if self.on_crash not in ("abort", "stop"):
            raise ValueError(f"on_crash must be 'abort' or 'stop', not {self.on_crash!r}")

    def fault(self, name: str) -> bool:
        """Whether fault ``name`` is switched on (a name not in the table is a bug of the device: KeyError)."""
        if name not in FAULTS:
            raise KeyError(f"no fault {name!r} in the fault table")
        return name in self.faults

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"
