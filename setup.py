"""Build hook for the optional C accelerator of the parser; every other setting lives in pyproject.toml.

``conformance/sip/_speedups.c`` is an optional extension: when it cannot be compiled (no C compiler, no Python
headers), the install still succeeds and sipcert runs its pure-Python parser (see docs/speedups.md).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "conformance.sip._speedups",
            sources=["conformance/sip/_speedups.c"],
            optional=True,
        )
    ]
)
