"""sipcert: conformance."""
