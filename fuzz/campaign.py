"""A campaign: cases in batches, liveness after each batch, bisection when a batch fails, findings, checkpoints.

Cases run in batches of ``batch`` (K) case numbers. One-step scenarios over UDP take the fast path: the mutated
message is sent and the next case follows without waiting for the reply (replies are matched to their case by the
Via branch, which carries the case number). Other cases run with the stateful driver, ``workers`` at a time. After
each batch the device is checked: did its process end (crash), does it still answer an OPTIONS probe and its retry
(hang)? When a batch fails, the device is restarted and the batch is bisected -- the halves re-run, each followed by
the check -- down to the one case that fails alone. Its finding is written at once, then minimised.

The checkpoint ``DIR/campaign.json`` is written after every batch: ``--resume`` goes on with the next case.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.transport import Endpoint, Received, open_endpoint

from .cases import Case, Scenario, case, scenarios_for
from .findings import Finding, FindingStore, signature_of, write_json_atomic
from .minimise import minimise
from .mutate import mutate
from .oracles import (
    RULE_2XX_TO_MALFORMED,
    DeviceControl,
    Prober,
    ProcessDevice,
    Verdict,
    catalogue_verdicts,
    protocol_verdicts,
)
from .stateful import CaseDriver, CaseResult, Exchange, Timeouts, build_stateless, fill, replay, target_uri

__all__ = ["Campaign", "CampaignConfig", "CampaignError", "Progress", "Summary", "reproduce"]

_CASE_BRANCH = re.compile(rb"branch=z9hG4bKfz-(\d+)-")


class CampaignError(RuntimeError):
    """The campaign cannot start or go on (a bad resume, a device that stopped answering and cannot be restarted)."""


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    """Everything a campaign needs besides the device. ``cases`` is the total number of case numbers to reach
    (``--resume`` counts the ones already run); ``duration`` a wall-time bound in seconds for this run."""

    target_uri: str
    transport: str = "udp"
    seed: int = 0
    cases: int | None = 1000
    duration: float | None = None
    findings_dir: Path = Path("build/fuzz")
    resume: bool = False
    workers: int = 8
    batch: int = 32
    scenarios: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    extensions: tuple[str, ...] | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    probe_timeout: float = 0.5
    minimise: bool = True
    minimise_tests: int = 60
    minimise_seconds: float = 30.0
    #: Minimise the new findings when the cases are done (True), or each as soon as it is found (False). Findings
    #: are written at once either way.
    minimise_at_end: bool = True
    catalogue: bool = True
    #: Run the catalogue's rules on the replies of one case in this many (1: every case); the 2xx-to-malformed
    #: check runs on every case.
    catalogue_every: int = 16
    #: Seconds between two checkpoints (a kill re-runs at most this much; the last batch is always checkpointed).
    checkpoint_interval: float = 0.2
    #: Stop at the first new finding of one of these kinds (e.g. ``("crash", "hang")``); empty: never.
    stop_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Progress:
    cases: int
    seconds: float
    findings: int
    next_case: int

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return f"{self.cases} cases, {self.rate:.0f} cases/s, {self.findings} findings (next case {self.next_case})"


@dataclass(frozen=True, slots=True)
class Summary:
    """The end of a run: cases run in this run, its wall time, every finding of the directory, why it stopped."""

    cases: int
    seconds: float
    next_case: int
    seed: int
    findings: tuple[Finding, ...]
    new_findings: tuple[Finding, ...]
    stopped: str = ""

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds > 0 else 0.0

    def counts(self) -> dict[str, int]:
        out = {"crash": 0, "hang": 0, "protocol": 0}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + 1
        return out

    def line(self) -> str:
        c = self.counts()
        kinds = ", ".join(f"{n} {k}" for k, n in c.items())
        text = (f"sipcert fuzz: {self.cases} cases in {self.seconds:.1f} s ({self.rate:.0f} cases/s), "
                f"{len(self.findings)} findings ({kinds}), seed {self.seed}, next case {self.next_case}")
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")


class _FastPath:
    """One-step scenarios over UDP: send and go on; replies are matched to their case by branch."""

    def __init__(self) -> None:
        self.ep: Endpoint | None = None
        self.results: dict[int, CaseResult] = {}
        self._templates: dict[tuple[str, tuple[str, int]], bytes] = {}

    async def open(self) -> None:
        if self.ep is None:
            self.ep = await open_endpoint("udp", "127.0.0.1", 0, on_message=self._on_message,
                                          on_error=lambda exc: None)

    def _on_message(self, received: Received) -> None:
        m = _CASE_BRANCH.search(received.data)
        if m is None:
            return
        result = self.results.get(int(m.group(1)))
        if result is not None:
            result.replies.append(received.data)
            result.exchanges.append(Exchange("received", received.data))

    async def send(self, c: Case, target: tuple[str, int]) -> CaseResult:
        assert self.ep is not None
        step = c.scenario.steps[0]
        template = self._templates.get((step.name, target))
        if template is None:
            uri = target_uri(target, "udp")
            template = self._templates[(step.name, target)] = build_stateless(step, self.ep, uri)
        m = mutate(template, c.mutation_rng(), focus=step.focus)
        data = fill(m.data, c.number, c.values_rng().getrandbits(32))
        result = CaseResult(c, "udp", m.mutation, data, [Exchange("sent", data, True)], local=self.ep.sent_by(),
                            steps_done=1)
        self.results[c.number] = result
        with contextlib.suppress(OSError):
            await self.ep.send(data, target)
        return result

    def forget(self) -> None:
        self.results.clear()

    async def close(self) -> None:
        if self.ep is not None:
            with contextlib.suppress(Exception):
                await self.ep.close()
            self.ep = None


class Campaign:
    """Runs a campaign against ``device`` (already started). Use :meth:`run` for a whole campaign or
    :meth:`check_case` for one case with its own check (the pytest entry)."""

    def __init__(
        self,
        config: CampaignConfig,
        device: DeviceControl,
        *,
        progress: Callable[[Progress], None] | None = None,
        progress_interval: float = 0.5,
    ) -> None:
        self.config = config
        self.device = device
        self.progress = progress
        self.progress_interval = progress_interval
        self.scenarios: tuple[Scenario, ...] = scenarios_for(
            config.scenarios, methods=config.methods, extensions=config.extensions
        )
        self.store = FindingStore(config.findings_dir)
        self.state_path = Path(config.findings_dir) / "campaign.json"
        self.seed = config.seed
        self.next_case = 0
        self.cases_run = 0
        self.new_findings: list[Finding] = []
        self._prober: Prober | None = None
        self._fast: _FastPath | None = None
        self._driver: CaseDriver | None = None
        self._salt = f"{time.time_ns():x}"
        self._defer_minimise = False
        self._to_minimise: list[Finding] = []

    # -- set-up --------------------------------------------------------------------------------------------------
    def _load_state(self) -> None:
        if not self.config.resume:
            return
        if not self.state_path.exists():
            return
        state = json.loads(self.state_path.read_text(encoding="utf-8"))
        if state.get("transport") != self.config.transport:
            raise CampaignError(f"--resume: {self.state_path} is a campaign over {state.get('transport')}, "
                                f"not {self.config.transport}")
        self.seed = int(state["seed"])
        self.next_case = int(state["next_case"])
        self.cases_run = int(state.get("cases_run", self.next_case))
        stored = state.get("scenarios")
        if stored and self.config.scenarios is None:
            self.scenarios = scenarios_for(stored)

    def _checkpoint(self, elapsed: float) -> None:
        write_json_atomic(self.state_path, {
            "seed": self.seed,
            "next_case": self.next_case,
            "cases_run": self.cases_run,
            "transport": self.config.transport,
            "target": self.config.target_uri,
            "scenarios": [s.name for s in self.scenarios],
            "batch": self.config.batch,
            "findings": self.store.counts(),
            "elapsed_this_run": round(elapsed, 3),
            "updated": time.time(),
        }, fsync=False)

    async def _setup(self) -> None:
        if self._prober is None:
            self._prober = Prober(self.config.transport, timeout=self.config.probe_timeout)
        if self._driver is None:
            self._driver = CaseDriver(self.device.address, self.config.transport, timeouts=self.config.timeouts)
        if self.config.transport == "udp" and self._fast is None and any(s.stateless for s in self.scenarios):
            self._fast = _FastPath()
            await self._fast.open()

    async def close(self) -> None:
        if self._prober is not None:
            await self._prober.close()
        if self._fast is not None:
            await self._fast.close()

    # -- running cases -------------------------------------------------------------------------------------------
    def case(self, number: int) -> Case:
        return case(self.seed, number, self.scenarios)

    async def _run_cases(self, numbers: Sequence[int], workers: int | None = None) -> dict[int, CaseResult]:
        assert self._driver is not None
        target = self.device.address
        self._driver.target = target
        out: dict[int, CaseResult] = {}
        slow: list[Case] = []
        for n in numbers:
            c = self.case(n)
            c = _salted(c, self._salt)
            if self._fast is not None and c.scenario.stateless:
                out[n] = await self._fast.send(c, target)
            else:
                slow.append(c)
        if slow:
            sem = asyncio.Semaphore(max(1, workers if workers is not None else self.config.workers))

            async def one(c: Case) -> None:
                async with sem:
                    assert self._driver is not None
                    out[c.number] = await self._driver.run(c)

            await asyncio.gather(*(one(c) for c in slow))
        return out

    async def _health(self) -> Verdict | None:
        assert self._prober is not None
        status = self.device.exit_status()
        if status is None:
            if await self._prober.alive(self.device.address):
                return None
            status = self._exit_after(0.2)
            if status is None:
                return Verdict("hang", f"the device answered neither an OPTIONS probe nor its retry within "
                                       f"{self._prober.timeout:g} s each")
        return Verdict("crash", f"the device process ended: {status}", exit=status)

    def _exit_after(self, seconds: float) -> str | None:
        if isinstance(self.device, ProcessDevice):
            return self.device.wait_exit(seconds)
        return self.device.exit_status()

    def _restart(self) -> bool:
        try:
            return self.device.restart()
        except Exception as exc:
            raise CampaignError(f"the device could not be restarted: {exc}") from exc

    # -- findings ------------------------------------------------------------------------------------------------
    def _finding(self, result: CaseResult, verdict: Verdict, messages: Sequence[Exchange] | None = None,
                 note: str = "") -> Finding:
        c = result.case
        mutation = result.mutation.to_dict() if result.mutation is not None else {}
        if verdict.kind == "protocol" and verdict.rule != RULE_2XX_TO_MALFORMED:
            # a catalogue rule judges the device's answer, whatever the mutation: one finding per rule and step
            sig = signature_of(verdict.kind, {}, c.scenario.name, c.step_name, "", verdict.rule)
        else:
            sig = signature_of(verdict.kind, mutation, c.scenario.name, c.step_name, verdict.exit, verdict.rule)
        return Finding(
            id="",
            kind=verdict.kind,
            severity=verdict.severity,
            signature=sig,
            seed=c.seed,
            case=c.number,
            scenario=c.scenario.name,
            step=c.step_name,
            transport=result.transport,
            target=self.config.target_uri,
            detail=verdict.detail + (f" ({note})" if note else ""),
            mutation=mutation,
            exit=verdict.exit,
            rule=verdict.rule,
            local=result.local,
            messages=tuple(messages if messages is not None else result.exchanges),
            device_output=self.device.output() if verdict.kind in ("crash", "hang") else "",
        )

    async def _record(self, finding: Finding) -> Finding:
        stored, new = self.store.add(finding)
        if new:
            self.new_findings.append(stored)
            if self.config.minimise and self._defer_minimise:
                self._to_minimise.append(stored)
            elif self.config.minimise:
                stored = await self._minimise(stored)
        return stored

    async def _minimise(self, finding: Finding) -> Finding:
        if finding.kind in ("crash", "hang") and not self._restartable():
            return self.store.set_minimised(finding, None, "the device cannot be restarted by sipcert: not minimised")
        result = await minimise(finding.messages, lambda seq: self.reproduces(finding, seq),
                                max_tests=self.config.minimise_tests, seconds=self.config.minimise_seconds)
        if finding.kind in ("crash", "hang"):
            self._restart()
        return self.store.set_minimised(finding, result.exchanges, result.note)

    def _restartable(self) -> bool:
        from .oracles import ExternalDevice

        return not isinstance(self.device, ExternalDevice)

    async def reproduces(self, finding: Finding, messages: Sequence[Exchange]) -> bool:
        """Whether ``messages`` still make the device show ``finding`` (restarting it first for a crash or hang)."""
        assert self._prober is not None
        return await reproduce(finding, messages, self.device, self._prober, timeout=self.config.timeouts.mutated)

    # -- the campaign --------------------------------------------------------------------------------------------
    async def run(self) -> Summary:
        cfg = self.config
        self._load_state()
        await self._setup()
        start = time.monotonic()
        ran = 0
        last_progress = last_checkpoint = 0.0
        known = 0
        stopped = ""
        self._defer_minimise = cfg.minimise_at_end
        try:
            if not await self._prober.alive(self.device.address):  # type: ignore[union-attr]
                raise CampaignError(f"the device at {self.device.address[0]}:{self.device.address[1]} "
                                    f"({cfg.transport}) does not answer OPTIONS")
            while True:
                if cfg.cases is not None and self.next_case >= cfg.cases:
                    break
                if cfg.duration is not None and time.monotonic() - start >= cfg.duration:
                    break
                end = self.next_case + max(1, cfg.batch)
                if cfg.cases is not None:
                    end = min(end, cfg.cases)
                numbers = list(range(self.next_case, end))
                results = await self._run_cases(numbers)
                verdict = await self._health()
                for n in numbers:
                    catalogue = cfg.catalogue and n % max(1, cfg.catalogue_every) == 0
                    for v in protocol_verdicts(results[n], catalogue=catalogue):
                        await self._record(self._finding(results[n], v))
                if verdict is not None:
                    more = await self._on_failure(numbers, results, verdict)
                    if more:
                        stopped = more
                if self._fast is not None:
                    self._fast.forget()
                if cfg.stop_on and any(f.kind in cfg.stop_on for f in self.new_findings):
                    stopped = f"a {'/'.join(cfg.stop_on)} finding"
                ran += len(numbers)
                self.cases_run += len(numbers)
                self.next_case = end
                elapsed = time.monotonic() - start
                if elapsed - last_checkpoint >= cfg.checkpoint_interval or stopped or len(self.new_findings) != known:
                    self._checkpoint(elapsed)
                    last_checkpoint, known = elapsed, len(self.new_findings)
                if self.progress is not None and elapsed - last_progress >= self.progress_interval:
                    last_progress = elapsed
                    self.progress(Progress(ran, elapsed, len(self.store), self.next_case))
                if stopped:
                    break
            elapsed = time.monotonic() - start
            self._checkpoint(elapsed)
            self._defer_minimise = False
            for finding in self._to_minimise:
                await self._minimise(finding)
            self._to_minimise.clear()
        finally:
            await self.close()
        if self.progress is not None:
            self.progress(Progress(ran, elapsed, len(self.store), self.next_case))
        return Summary(ran, elapsed, self.next_case, self.seed, tuple(self.store), tuple(self.new_findings), stopped)

    async def _on_failure(self, numbers: list[int], results: dict[int, CaseResult], verdict: Verdict) -> str:
        if not self._restartable():
            last = results[numbers[-1]]
            msgs = [e for n in numbers for e in results[n].exchanges]
            await self._record(self._finding(last, verdict, msgs, note=f"in cases {numbers[0]}-{numbers[-1]}; "
                                             "the device was not started by sipcert, so it was not bisected"))
            return "the device stopped answering and sipcert cannot restart it (give --dut-cmd)"
        self._restart()
        if len(numbers) == 1:
            await self._record(self._finding(results[numbers[0]], verdict))
            return ""
        found = await self._bisect(numbers)
        if found is None:
            last = results[numbers[-1]]
            msgs = [e for n in numbers for e in results[n].exchanges]
            await self._record(self._finding(last, verdict, msgs,
                                             note=f"cases {numbers[0]}-{numbers[-1]} together; no single case alone"))
        else:
            await self._record(self._finding(found[0], found[1]))
        if self.device.exit_status() is not None or not await self._prober.alive(self.device.address):  # type: ignore[union-attr]
            self._restart()
        return ""

    async def _bisect(self, numbers: list[int]) -> tuple[CaseResult, Verdict] | None:
        """``numbers`` failed together (and the device was restarted): run each half alone, with the check, and go
        into the half that fails, down to one case. None when neither half fails alone."""
        mid = len(numbers) // 2
        for part in (numbers[:mid], numbers[mid:]):
            results = await self._run_cases(part, workers=1)  # one at a time: no doubt about who did it
            verdict = await self._health()
            if self._fast is not None:
                self._fast.forget()
            if verdict is None:
                continue
            self._restart()
            if len(part) == 1:
                return results[part[0]], verdict
            return await self._bisect(part)
        return None

    async def check_case(self, number: int) -> list[Finding]:
        """Run case ``number`` alone with its checks; the findings it produced (new or duplicates)."""
        await self._setup()
        results = await self._run_cases([number])
        verdict = await self._health()
        out = []
        for v in protocol_verdicts(results[number], catalogue=self.config.catalogue):
            out.append(await self._record(self._finding(results[number], v)))
        if verdict is not None:
            if self._restartable():
                out.append(await self._record(self._finding(results[number], verdict)))
                if self.device.exit_status() is not None or not await self._prober.alive(self.device.address):  # type: ignore[union-attr]
                    self._restart()
            else:
                out.append(await self._record(self._finding(results[number], verdict)))
        if self._fast is not None:
            self._fast.forget()
        return out


def _salted(c: Case, salt: str) -> Case:
    return _SaltedCase(c.seed, c.number, c.scenario, c.step, salt)


@dataclass(frozen=True, slots=True)
class _SaltedCase(Case):
    salt: str = ""

    def values_rng(self, salt: str = "") -> Any:  # type: ignore[override]
        return Case.values_rng(self, self.salt + salt)


async def reproduce(
    finding: Finding, messages: Sequence[Exchange], device: DeviceControl, prober: Prober, *, timeout: float = 0.3
) -> bool:
    """Replay ``messages`` and judge with the oracle that made ``finding``: the same exit status for a crash, no
    answer to the probe for a hang, the same protocol verdict on the replies to the mutated message. A crash or hang
    finding restarts the device first, so the replay meets a fresh one."""
    if finding.kind in ("crash", "hang") or device.exit_status() is not None or device.dirty:
        device.restart()  # a fresh device: no dialog or transaction left from an earlier attempt
        device.dirty = False
    rr = await replay(messages, device.address, finding.transport, local=finding.local, timeout=timeout)

    def exit_after(seconds: float) -> str | None:
        if isinstance(device, ProcessDevice):
            return device.wait_exit(seconds)
        return device.exit_status()

    if finding.kind == "crash":
        status = exit_after(0.3)
        if status is None and not await prober.alive(device.address):
            device.dirty = True
            status = exit_after(0.2) or ("hang" if not finding.exit else None)
        return status is not None and (not finding.exit or status == finding.exit)
    if finding.kind == "hang":
        hung = device.exit_status() is None and not await prober.alive(device.address)
        device.dirty = hung
        return hung
    return _protocol_again(finding, rr.exchanges)


def _protocol_again(finding: Finding, exchanges: Sequence[Exchange]) -> bool:
    """Whether a replay shows the protocol finding again: the mutated message still answered as before."""
    seen_mutated = False
    mutated = b""
    replies: list[bytes] = []
    for e in exchanges:
        if e.direction == "sent":
            if seen_mutated and replies:
                break
            if e.mutated:
                seen_mutated, mutated = True, e.data
        elif seen_mutated:
            replies.append(e.data)
    if not seen_mutated:
        return False
    fake = CaseResult(case(finding.seed, finding.case), finding.transport, None, mutated, [], replies)
    if finding.rule == RULE_2XX_TO_MALFORMED:
        return any(v.rule == finding.rule for v in protocol_verdicts(fake, catalogue=False))
    return any(v.rule == finding.rule for v in catalogue_verdicts(mutated, replies, finding.transport))

