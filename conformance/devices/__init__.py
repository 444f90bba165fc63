"""sipcert: conformance/devices."""
