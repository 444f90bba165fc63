"""sipcert's fuzzer: grammar (``fuzz.grammar``), structural mutations, cases and scenarios, stateful driving over every
transport, oracles (crash, hang, protocol), findings with minimisation and replay, campaigns with resume, the
``sipcert fuzz`` / ``sipcert replay`` commands, a pytest entry and a boofuzz adapter. See docs/fuzzing.md.

The public names below are loaded on first use, so ``import fuzz.grammar`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Campaign",
    "CampaignConfig",
    "Case",
    "CaseDriver",
    "CaseResult",
    "Exchange",
    "Finding",
    "FindingStore",
    "MessageMutation",
    "Mutated",
    "OPERATORS",
    "ProcessDevice",
    "ExternalDevice",
    "Prober",
    "SCENARIOS",
    "Scenario",
    "Summary",
    "Verdict",
    "case",
    "load_finding",
    "replay",
    "reproduce",
]

_WHERE = {
    "Campaign": "campaign",
    "CampaignConfig": "campaign",
    "Summary": "campaign",
    "reproduce": "campaign",
    "Case": "cases",
    "SCENARIOS": "cases",
    "Scenario": "cases",
    "case": "cases",
    "CaseDriver": "stateful",
    "CaseResult": "stateful",
    "Exchange": "stateful",
    "replay": "stateful",
    "Finding": "findings",
    "FindingStore": "findings",
    "load_finding": "findings",
    "MessageMutation": "mutate",
    "Mutated": "mutate",
    "OPERATORS": "mutate",
    "ProcessDevice": "oracles",
    "ExternalDevice": "oracles",
    "Prober": "oracles",
    "Verdict": "oracles",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fuzz' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fuzz.{module}"), name)
