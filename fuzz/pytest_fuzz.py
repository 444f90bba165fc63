"""The pytest entry of the fuzzer: one test per case, so pytest-xdist shards the case space across workers.

Load the plugin and run the case test module::

    pytest -p fuzz.pytest_fuzz --pyargs fuzz.fuzz_suite -n 4 \\
        --sip-fuzz-target "sip:127.0.0.1;transport=udp" --sip-fuzz-dut-cmd "sipcert dut --port {port}" \\
        --sip-fuzz-cases 2000 --sip-fuzz-seed 7

Any test may ask for the ``sip_fuzz_case`` fixture (a case number, parametrized over ``--sip-fuzz-start`` ..
``--sip-fuzz-start + --sip-fuzz-cases - 1``) and ``sip_fuzz_campaign`` (a :class:`FuzzRunner`: one device and one
campaign per worker). A failing case names its finding id and the ``sipcert replay`` command that reproduces it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .campaign import Campaign, CampaignConfig
from .cases import SCENARIOS
from .findings import Finding
from .oracles import ExternalDevice, ProcessDevice

__all__ = ["FuzzRunner", "pytest_addoption", "pytest_configure", "pytest_generate_tests"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sipcert-fuzz", "sipcert fuzzing (one test per case)")
    group.addoption("--sip-fuzz-cases", type=int, default=0, metavar="N", help="number of fuzz cases (tests)")
    group.addoption("--sip-fuzz-start", type=int, default=0, metavar="N", help="first case number (default 0)")
    group.addoption("--sip-fuzz-seed", type=int, default=0, metavar="N", help="campaign seed (default 0)")
    group.addoption("--sip-fuzz-target", metavar="URI", help="the device, e.g. sip:127.0.0.1:5070;transport=udp")
    group.addoption("--sip-fuzz-dut-cmd", metavar="CMD", help="start the device ({port} filled in, READY <port>)")
    group.addoption("--sip-fuzz-transport", choices=("udp", "tcp", "tls", "ws", "wss"), help="transport")
    group.addoption("--sip-fuzz-findings", default="build/fuzz-pytest", metavar="DIR", help="findings directory")
    group.addoption("--sip-fuzz-scenario", action="append", choices=list(SCENARIOS), metavar="NAME",
                    help=f"only this scenario (repeatable): {', '.join(SCENARIOS)}")
    parser.addini("sip_fuzz_cases", "default --sip-fuzz-cases", default="0")


def pytest_configure(config: pytest.Config) -> None:
    cases = config.getoption("--sip-fuzz-cases") or int(config.getini("sip_fuzz_cases") or 0)
    if cases < 0:
        raise pytest.UsageError(f"--sip-fuzz-cases must be >= 0, not {cases}")
    if config.getoption("--sip-fuzz-start") < 0:
        raise pytest.UsageError("--sip-fuzz-start must be >= 0")
    if cases and not config.getoption("--sip-fuzz-target"):
        raise pytest.UsageError("--sip-fuzz-cases needs --sip-fuzz-target URI (and usually --sip-fuzz-dut-cmd CMD)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sip_fuzz_case" in metafunc.fixturenames:
        cfg = metafunc.config
        cases = cfg.getoption("--sip-fuzz-cases") or int(cfg.getini("sip_fuzz_cases") or 0)
        start = cfg.getoption("--sip-fuzz-start")
        numbers = list(range(start, start + cases))
        metafunc.parametrize("sip_fuzz_case", numbers, ids=[f"case{n}" for n in numbers])


class FuzzRunner:
    """One device and one campaign (one findings sub-directory per xdist worker); :meth:`check` runs a case."""

    def __init__(self, campaign: Campaign, findings_dir: Path, dut_cmd: str | None) -> None:
        self.campaign = campaign
        self.findings_dir = findings_dir
        self.dut_cmd = dut_cmd
        self.loop = asyncio.new_event_loop()

    def check(self, number: int) -> list[Finding]:
        return self.loop.run_until_complete(self.campaign.check_case(number))

    def failure_text(self, number: int, findings: list[Finding]) -> str:
        lines = [f"case {number} (seed {self.campaign.seed}) produced {len(findings)} finding(s):"]
        for f in findings:
            lines.append(f"  {f.severity} {f.kind} finding {f.id}: {f.scenario}/{f.step} "
                         f"{f.mutation.get('description', '')}: {f.detail}")
            lines.append(f"  replay: {f.replay_command(self.findings_dir, self.dut_cmd)}")
        return "\n".join(lines)

    def close(self) -> None:
        self.loop.run_until_complete(self.campaign.close())
        self.loop.close()


@pytest.fixture(scope="session")
def sip_fuzz_campaign(request: pytest.FixtureRequest) -> Iterator[FuzzRunner]:
    from .cli import _target

    cfg = request.config
    target = cfg.getoption("--sip-fuzz-target")
    if not target:
        pytest.skip("no --sip-fuzz-target given")
    dut_cmd = cfg.getoption("--sip-fuzz-dut-cmd")
    host, port, transport, uri = _target(target, cfg.getoption("--sip-fuzz-transport"), dut_cmd)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    findings = Path(cfg.getoption("--sip-fuzz-findings")) / worker
    device: Any = (ProcessDevice(dut_cmd, host=host, port=port, transport=transport, log_dir=findings / "device")
                   if dut_cmd else ExternalDevice((host, port)))
    device.start()
    scenarios = cfg.getoption("--sip-fuzz-scenario")
    config = CampaignConfig(target_uri=uri, transport=transport, seed=cfg.getoption("--sip-fuzz-seed"), cases=None,
                            findings_dir=findings, scenarios=tuple(scenarios) if scenarios else None,
                            minimise_seconds=20.0)
    runner = FuzzRunner(Campaign(config, device), findings, dut_cmd)
    try:
        yield runner
    finally:
        runner.close()
        device.stop()


@pytest.fixture
def sip_fuzz_case(request: pytest.FixtureRequest) -> int:
    """The case number of this test (parametrized by ``--sip-fuzz-cases``)."""
    return int(request.param)
