"""sipcert: conformance/devices -- independent SIP implementations (Kamailio, SIPp, baresip) started on
loopback for interop tests and benchmarks. See ``_launch.py`` and /work/shared/DEVICES.md."""

from ._launch import (
    CONFIG_DIR,
    LOOPBACK,
    Baresip,
    Device,
    DeviceError,
    Kamailio,
    SippResult,
    SippUac,
    SippUas,
    available,
    free_port,
    group_members,
    missing_reason,
    probe_options,
    requires,
)

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
