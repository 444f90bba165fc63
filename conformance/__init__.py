"""sipcert: SIP conformance and fuzz testing.

Packages: :mod:`conformance.sip` (sans-I/O core), :mod:`conformance.transport` (asyncio transports),
:mod:`conformance.peer` (the scripted peer), :mod:`conformance.checks` (the rule catalogue),
:mod:`conformance.devices` (independent SIP implementations started on loopback).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sipcert")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
