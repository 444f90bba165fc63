"""Configuration shared by every test module. Kept minimal and generic: no fixtures that belong to one area.

Hypothesis profiles: ``HYPOTHESIS_PROFILE=ci`` makes property tests derandomized (the same examples on every run,
no deadline flakes on a loaded runner); without it, hypothesis runs with its defaults and each test's own settings.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)

if os.environ.get("HYPOTHESIS_PROFILE") == "ci":
    settings.load_profile("ci")
