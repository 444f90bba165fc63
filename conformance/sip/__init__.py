"""sipcert: conformance/sip."""
