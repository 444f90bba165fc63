"""sipcert reports: renderings of one trace and of a run's verdicts (design principle 7, "one trace, many renderings").

- :mod:`reports.summary`: the run summary model, ``summary.json``, its validator and baseline comparison.
- :mod:`reports.junit`: JUnit XML for CI.
- :mod:`reports.trace_json`, :mod:`reports.ladder`, :mod:`reports.pcap`: a trace as JSON, ladder diagram (text, SVG)
  and libpcap file.
- :mod:`reports.html`: a self-contained, offline HTML report.
- :mod:`reports.allure`: attachments and labels for Allure (no-ops without ``--alluredir``).

Reports go to a directory the user names (default the git-ignored ``build/``), never into this package.
"""

from .allure import allure_active, attach_result, attach_trace, attach_violations, label_rfc
from .html import render_html, write_html
from .junit import junit_classname, junit_xml, write_junit
from .ladder import format_address, ladder_svg, ladder_text
from .pcap import LINKTYPE_ETHERNET, pcap_bytes, pcap_notes, write_pcap
from .summary import (
    LEVELS,
    VERDICTS,
    Level,
    RunSummary,
    SummaryFormatError,
    TestResult,
    Verdict,
    Violation,
    compare,
    load_summary,
    now_iso,
    summary_from_json_dict,
    validate_summary_dict,
    write_summary,
)
from .trace_json import TRACE_FORMAT, TraceFormatError, decode_bytes, encode_bytes, trace_from_json, trace_to_json

__all__ = [
    # summary
    "LEVELS",
    "VERDICTS",
    "Level",
    "Verdict",
    "Violation",
    "TestResult",
    "RunSummary",
    "SummaryFormatError",
    "now_iso",
    "write_summary",
    "load_summary",
    "summary_from_json_dict",
    "validate_summary_dict",
    "compare",
    # junit
    "write_junit",
    "junit_xml",
    "junit_classname",
    # trace renderings
    "TRACE_FORMAT",
    "TraceFormatError",
    "trace_to_json",
    "trace_from_json",
    "encode_bytes",
    "decode_bytes",
    "ladder_text",
    "ladder_svg",
    "format_address",
    "LINKTYPE_ETHERNET",
    "pcap_bytes",
    "pcap_notes",
    "write_pcap",
    # html
    "write_html",
    "render_html",
    # allure
    "allure_active",
    "attach_trace",
    "attach_violations",
    "label_rfc",
    "attach_result",
]
