"""Configuration shared by every test module. Kept minimal and generic: no fixtures that belong to one area.

Hypothesis profiles: ``HYPOTHESIS_PROFILE=ci`` makes property tests derandomized (the same examples on every run,
no deadline flakes on a loaded runner); without it, hypothesis runs with its defaults and each test's own settings.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)

if os.environ.get("HYPOTHESIS_PROFILE") == "ci":
    settings.load_profile("ci")


# -- the parser's two implementations ------------------------------------------------------------------------------
#: Test modules run twice when the C accelerator is active: once as is (``[c]``), once with the pure-Python parser
#: (``[python]``), so both keep passing the parser tests (docs/speedups.md). tests/test_speedups.py compares the two.
DUAL_PARSER_MODULES = frozenset(("test_parser", "test_torture", "test_views", "test_build", "test_properties"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from conformance.sip import _parser

    if _parser.SPEEDUPS and metafunc.module.__name__.rpartition(".")[2] in DUAL_PARSER_MODULES:
        metafunc.fixturenames.append("sip_parser_impl")
        metafunc.parametrize("sip_parser_impl", ["c", "python"], indirect=True)


@pytest.fixture
def sip_parser_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``"c"``: parse as configured; ``"python"``: the pure-Python parser for this test."""
    from conformance.sip import _parser

    if request.param == "python":
        monkeypatch.setattr(_parser, "_parse", _parser._parse_py)
    return str(request.param)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the long tests (marked ``slow``: whole-suite runs against the built-in and independent devices) first.

    pytest-xdist hands tests out in collection order; started last, a minute-long test keeps one worker busy while
    the other has nothing left to do. Started first, the short tests fill in around it. The order within each group
    is kept, and it is the same on every worker (xdist requires that)."""
    items[:] = [i for i in items if i.get_closest_marker("slow")] + [i for i in items if not i.get_closest_marker("slow")]
