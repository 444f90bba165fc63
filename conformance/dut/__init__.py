"""The built-in reference device: a correct UAS, UAC, registrar and stateful proxy, with fault switches.

``sipcert dut --role uas --transport udp --port 0`` runs it as a process (``READY <port>`` on stdout); tests start it
in-process with :class:`Device`::

    with Device(role="uas", transport="udp", faults={"no-to-tag"}) as dev:
        peer.request(invite, dev.address)

Every fault switch (:data:`FAULT_TABLE`, ``sipcert dut --list-faults``, ``docs/reference-device.md``) makes the
device break one rule of the catalogue and nothing else; the robustness faults make it crash or hang on one input
class, for the fuzzer. The device is built on the sans-I/O core of ``conformance.sip`` (transactions with automatic
100 Trying, dialogs, AcceptedInvite, ReliableProvisionals, InviteClient) and one small asyncio driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._faults import FAULT_TABLE, FAULTS, FaultDef, UnknownFault, check_faults, fault_names, faults_for_role
from ._vocab import DEVICE_TRANSPORTS, ROLES

if TYPE_CHECKING:
    from ._config import DeviceConfig
    from ._core import Crash, DeviceCore, Hang, Source, Transmit
    from ._docs import faults_markdown, reference_device_markdown, write_docs
    from ._driver import Device, DeviceError, run_device

__all__ = [
    "DEVICE_TRANSPORTS",
    "FAULTS",
    "FAULT_TABLE",
    "ROLES",
    "Crash",
    "Device",
    "DeviceConfig",
    "DeviceCore",
    "DeviceError",
    "FaultDef",
    "Hang",
    "Source",
    "Transmit",
    "UnknownFault",
    "check_faults",
    "fault_names",
    "faults_for_role",
    "faults_markdown",
    "reference_device_markdown",
    "run_device",
    "write_docs",
]

#: Names imported on first use, so that ``sipcert`` builds its parser without loading the transports.
_LAZY = {
    "DeviceConfig": "._config",
    "Crash": "._core",
    "DeviceCore": "._core",
    "Hang": "._core",
    "Source": "._core",
    "Transmit": "._core",
    "faults_markdown": "._docs",
    "reference_device_markdown": "._docs",
    "write_docs": "._docs",
    "Device": "._driver",
    "DeviceError": "._driver",
    "run_device": "._driver",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
