"""docs/coverage.md is generated from the test purposes' markers and must match them."""

from __future__ import annotations

from conformance._coverage import COVERAGE_PATH, purposes, render_coverage


def test_coverage_page_is_up_to_date() -> None:
    assert COVERAGE_PATH.read_text(encoding="utf-8") == render_coverage(), (
        "docs/coverage.md is stale: run `python -m conformance._coverage`"
    )


#: test.dat is in RFC 4475's archive only: no section describes it, so there is no sentence to quote.
NO_TEXT = {"TP-TOR-test"}


def test_every_purpose_has_an_id_a_title_an_rfc_section_and_a_quoted_requirement() -> None:
    items = purposes()
    assert len(items) >= 100
    ids = [p.id for p in items]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for p in items:
        assert p.id.startswith("TP-") and p.title and p.rfc, p
        assert p.id in NO_TEXT or '"' in p.docstring, f"{p.id} ({p.module}.{p.function}) quotes no requirement in its docstring"
