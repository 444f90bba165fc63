"""sipcert: conformance/checks."""
