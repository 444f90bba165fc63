"""sipcert: conformance/peer."""
