"""The theorem suite: the registry :data:`THEOREMS`, lookup by name, and running them all."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rip_atoms.errors import ParameterError
from rip_atoms.theorems.coherence_theorems import L1, RIP, UNIQUENESS
from rip_atoms.theorems.framework import Theorem, TheoremResult
from rip_atoms.theorems.invariance import INVARIANCE, INVARIANCE_UNIT, PARSEVAL, SPARK
from rip_atoms.theorems.tsae_theorems import TSAE_EXACT, TSAE_SUPPORT

# ============================================================================== registry
THEOREMS: tuple[Theorem, ...] = (RIP, UNIQUENESS, L1, TSAE_SUPPORT, TSAE_EXACT, INVARIANCE,
                                 INVARIANCE_UNIT, PARSEVAL, SPARK)


def get_theorem(name: str) -> Theorem:
    """The theorem of that name (ParameterError listing the names otherwise)."""
    for t in THEOREMS:
        if t.name == name:
            return t
    raise ParameterError(f"unknown theorem {name!r}; known: {', '.join(t.name for t in THEOREMS)}")


@dataclass(frozen=True)
class TheoremSuiteResult:
    """Every theorem's result; ``all_as_documented`` is True when each passed or, for the
    documented false claims, produced its counterexample."""

    results: tuple[TheoremResult, ...]
    max_examples: int
    seed: int
    seconds: float

    @property
    def all_as_documented(self) -> bool:
        return all(r.as_documented for r in self.results)

    def to_dict(self) -> dict:
        return {"theorems": [r.to_dict() for r in self.results],
                "max_examples": self.max_examples, "seed": self.seed,
                "all_as_documented": self.all_as_documented, "seconds": self.seconds}


def run_theorems(max_examples: int = 200, seed: int = 0,
                 names: Iterable[str] | None = None,
                 progress: Callable[[str], None] | None = None) -> TheoremSuiteResult:
    """Run the suite (or the named theorems) with ``max_examples`` examples each."""
    t0 = time.perf_counter()
    chosen = THEOREMS if names is None else tuple(get_theorem(n) for n in names)
    out = []
    for t in chosen:
        r = t.run(max_examples=max_examples, seed=seed)
        if progress is not None:
            verdict = "passed" if r.passed else "counterexample found"
            doc = "as documented" if r.as_documented else "NOT as documented"
            progress(f"{t.name}: {r.examples} examples, {r.discarded} discarded, {verdict}, "
                     f"{doc} ({r.seconds:.1f} s)")
        out.append(r)
    return TheoremSuiteResult(tuple(out), int(max_examples), int(seed),
                              time.perf_counter() - t0)
