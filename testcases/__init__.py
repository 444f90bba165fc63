"""The conformance suite: test purposes run against a device under test, one module per RFC area.

Each test is one test purpose: a ``sip_purpose`` marker with its id, title and RFC sections, and a docstring quoting
the requirement. The passive rule catalogue runs on every message the device sends in every test.
"""
