"""The framework of the executable theorems: a :class:`Theorem` draws seeded examples and checks
each (:class:`Verdict`: pass, fail or discard), :meth:`Theorem.run` aggregates them into a
:class:`TheoremResult`; and the numerical conventions (module docstring of
:mod:`rip_atoms.theorems`) every check shares."""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rip_atoms.errors import ParameterError
from rip_atoms.strict_json import json_ready

DEP_RTOL = 1e-10
INDEP_RTOL = 1e-7
HYP_MARGIN = 1e-9  # a strict inequality hypothesis must hold with this much room
ENUM_MAX = 20000


@dataclass(frozen=True)
class Verdict:
    """The outcome of one example: ``status`` is "pass", "fail" or "discard" (hypotheses not
    met). ``detail`` holds the example and the computed quantities (a counterexample when
    failed); ``size`` orders counterexamples (smallest first); ``stats`` are per-example numbers
    the run aggregates by maximum (e.g. how tight a bound was)."""

    status: str
    reason: str = ""
    detail: dict = field(default_factory=dict)
    size: tuple = ()
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TheoremResult:
    """What running one theorem found.

    ``examples``: examples whose hypotheses held and whose conclusion was checked;
    ``discarded``: draws whose hypotheses failed; ``failures``: examples contradicting the
    statement; ``passed``: examples > 0 and failures = 0; ``as_documented``: the outcome matches
    ``expected`` ("holds" → passed, "fails" → a counterexample was found).
    """

    name: str
    statement: str
    hypotheses: tuple[str, ...]
    expected: str
    examples: int
    discarded: int
    failures: int
    passed: bool
    counterexample: dict | None
    corrected_statement: str | None
    corrected_by: str | None
    stats: dict
    seed: int
    seconds: float

    @property
    def as_documented(self) -> bool:
        return self.passed if self.expected == "holds" else (self.counterexample is not None)

    def to_dict(self) -> dict:
        return json_ready({
            "name": self.name,
            "statement": self.statement,
            "hypotheses": list(self.hypotheses),
            "expected": self.expected,
            "examples": self.examples,
            "discarded": self.discarded,
            "failures": self.failures,
            "passed": self.passed,
            "as_documented": self.as_documented,
            "counterexample": self.counterexample,
            "corrected_statement": self.corrected_statement,
            "corrected_by": self.corrected_by,
            "stats": self.stats,
            "seed": self.seed,
            "seconds": self.seconds,
        })


@dataclass(frozen=True)
class Theorem:
    """An executable claim: ``draw(rng, i)`` makes example i, ``check(example)`` → Verdict."""

    name: str
    statement: str
    hypotheses: tuple[str, ...]
    source: str
    draw: Callable[[np.random.Generator, int], dict] = field(repr=False)
    check: Callable[[dict], Verdict] = field(repr=False)
    expected: str = "holds"
    corrected_statement: str | None = None
    corrected_by: str | None = None

    def run(self, max_examples: int = 200, seed: int = 0, *,
            max_draws: int | None = None) -> TheoremResult:
        """Draw seeded examples until ``max_examples`` met the hypotheses (or ``max_draws``,
        default 20·max_examples, were drawn); check each. The generator is seeded with
        (seed, crc32(name)), so each theorem's examples do not depend on the others."""
        if max_examples < 1:
            raise ParameterError(f"max_examples must be ≥ 1, got {max_examples}")
        t0 = time.perf_counter()
        rng = np.random.default_rng([int(seed), zlib.crc32(self.name.encode())])
        limit = 20 * max_examples if max_draws is None else int(max_draws)
        examples = discarded = failures = draws = 0
        best: Verdict | None = None
        stats: dict[str, float] = {}
        while examples < max_examples and draws < limit:
            v = self.check(self.draw(rng, draws))
            draws += 1
            if v.status == "discard":
                discarded += 1
                continue
            examples += 1
            for k, x in v.stats.items():
                if x is not None and math.isfinite(x):
                    stats[k] = max(stats.get(k, -math.inf), float(x))
            if v.status == "fail":
                failures += 1
                if best is None or v.size < best.size:
                    best = v
        ce = None
        if best is not None:
            ce = dict(best.detail)
            ce["reason"] = best.reason
        return TheoremResult(
            name=self.name, statement=self.statement, hypotheses=self.hypotheses,
            expected=self.expected, examples=examples, discarded=discarded, failures=failures,
            passed=examples > 0 and failures == 0, counterexample=json_ready(ce),
            corrected_statement=self.corrected_statement, corrected_by=self.corrected_by,
            stats=stats, seed=int(seed), seconds=time.perf_counter() - t0)
