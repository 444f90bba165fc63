"""The fuzz case test: ``pytest -p fuzz.pytest_fuzz --pyargs fuzz.fuzz_suite --sip-fuzz-cases N ...``."""

from __future__ import annotations

import pytest

from .pytest_fuzz import FuzzRunner


def test_sip_fuzz_case(sip_fuzz_case: int, sip_fuzz_campaign: FuzzRunner) -> None:
    """One fuzz case: the device must survive it (no crash, no hang) and answer it as RFC 3261 wants."""
    findings = sip_fuzz_campaign.check(sip_fuzz_case)
    if findings:
        pytest.fail(sip_fuzz_campaign.failure_text(sip_fuzz_case, findings), pytrace=False)
