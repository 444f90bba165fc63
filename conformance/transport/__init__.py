"""sipcert: conformance/transport."""
