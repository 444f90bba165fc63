"""The case space: scenarios, their steps, and which step of which scenario case ``n`` of seed ``s`` mutates.

A scenario is the exchange a well-behaved UAC would have with the device (REGISTER; OPTIONS; INVITE, provisional
(reliable or not), 2xx, ACK, a mid-dialog request, BYE; INVITE then CANCEL). A case is one scenario with exactly one
of its steps -- any step, chosen by the case number -- replaced by a mutated version of the message the scenario would
send there. :func:`case` is a pure function of (seed, number, scenarios): the same arguments always give the same
scenario, step and mutation generator.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .mutate import case_rng

__all__ = ["SCENARIOS", "Case", "Scenario", "Step", "case", "scenarios_for"]


@dataclass(frozen=True, slots=True)
class Step:
    """One message the scenario sends. ``name`` is unique within the scenario (``re-INVITE``, ``ACK-2``);
    ``method`` the SIP method; ``focus`` the header fields (or ``body``) a mutation of this step should favour."""

    name: str
    method: str
    focus: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named sequence of steps. ``methods`` and ``extensions`` are what the device must support (a profile that
    lacks one leaves the scenario out). ``stateless``: one request, no dialog, so cases may be sent without waiting
    for the reply (the fast path)."""

    name: str
    steps: tuple[Step, ...]
    methods: frozenset[str]
    extensions: frozenset[str] = frozenset()

    @property
    def stateless(self) -> bool:
        return len(self.steps) == 1

    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]


def _s(name: str, steps: Sequence[Step], extensions: Iterable[str] = ()) -> Scenario:
    methods = frozenset(s.method for s in steps)
    return Scenario(name, tuple(steps), methods, frozenset(extensions))


_INVITE = Step("INVITE", "INVITE", ("Request-URI", "Via", "Contact", "body"))
_ACK = Step("ACK", "ACK", ("CSeq", "To"))
_BYE = Step("BYE", "BYE", ("To", "CSeq"))

#: Every scenario, by name.
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _s("options", [Step("OPTIONS", "OPTIONS", ("Request-URI", "Via", "Content-Type"))]),
        _s("register", [Step("REGISTER", "REGISTER", ("Contact", "Expires", "To"))]),
        _s("invite-bye", [_INVITE, _ACK, _BYE]),
        _s("invite-cancel", [_INVITE, Step("CANCEL", "CANCEL", ("Via", "CSeq"))]),
        _s("invite-reinvite", [_INVITE, _ACK, Step("re-INVITE", "INVITE", ("body", "Content-Type", "Contact")),
                               Step("ACK-2", "ACK", ("CSeq",)), _BYE]),
        _s("invite-update", [_INVITE, _ACK, Step("UPDATE", "UPDATE", ("body", "Contact", "CSeq")), _BYE]),
        _s("invite-info", [_INVITE, _ACK, Step("INFO", "INFO", ("body", "Content-Type")), _BYE]),
        _s("invite-prack", [Step("INVITE", "INVITE", ("Require", "Supported", "Request-URI")),
                            Step("PRACK", "PRACK", ("RAck", "CSeq")), _ACK, _BYE], extensions=("100rel",)),
    )
}


@dataclass(frozen=True, slots=True)
class Case:
    """Case ``number`` of campaign ``seed``: which scenario, which step is mutated, and the generator of its
    mutation (:meth:`mutation_rng`)."""

    seed: int
    number: int
    scenario: Scenario
    step: int

    @property
    def step_name(self) -> str:
        return self.scenario.steps[self.step].name

    @property
    def label(self) -> str:
        return f"case {self.number} (seed {self.seed}): {self.scenario.name}, step {self.step_name} mutated"

    def mutation_rng(self) -> random.Random:
        return case_rng(self.seed, self.number, "mutation")

    def values_rng(self, salt: str = "") -> random.Random:
        """The generator for this case's Call-ID, tags and branches; a ``salt`` per run keeps them fresh across runs."""
        return case_rng(self.seed, self.number, "values" + salt)


def scenarios_for(
    names: Iterable[str] | None = None, *, methods: Iterable[str] | None = None, extensions: Iterable[str] | None = None
) -> tuple[Scenario, ...]:
    """The scenarios to fuzz: ``names`` (default all), less those needing a method or extension the device lacks
    (``methods`` / ``extensions`` from a device profile, ``None``: no restriction)."""
    chosen = list(SCENARIOS) if names is None else list(names)
    for n in chosen:
        if n not in SCENARIOS:
            raise ValueError(f"unknown scenario {n!r}; valid choices: {', '.join(SCENARIOS)}")
    out = []
    have_m = None if methods is None else {m.upper() for m in methods} | {"ACK", "CANCEL"}
    have_x = None if extensions is None else {x.lower() for x in extensions}
    for n in chosen:
        s = SCENARIOS[n]
        if have_m is not None and not s.methods <= have_m:
            continue
        if have_x is not None and not s.extensions <= have_x:
            continue
        out.append(s)
    if not out:
        raise ValueError("no scenario is left for this device (its profile lacks the methods or extensions)")
    return tuple(out)


def case(seed: int, number: int, scenarios: Sequence[Scenario] | None = None) -> Case:
    """Case ``number`` of the campaign ``seed`` over ``scenarios`` (default: all, in :data:`SCENARIOS` order)."""
    pool = tuple(scenarios) if scenarios is not None else tuple(SCENARIOS.values())
    rng = case_rng(seed, number, "case")
    scenario = pool[rng.randrange(len(pool))]
    return Case(seed, number, scenario, rng.randrange(len(scenario.steps)))
