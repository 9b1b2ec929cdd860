"""The report's budget B: work units (``--effort``, the default) or wall time (``--budget-s``),
shared by its budgeted parts."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from rip_atoms.deadline import Deadline

#: how what is left of the budget B after the exact parts is shared out, in this order (see
#: :class:`SearchBudget`); the sampled Gaussian reference, last, gets whatever is left
BUDGET_SHARES = {"rip": 0.35, "spark": 0.15, "margins": 0.15, "probe": 0.2, "reference": 0.15}

#: the report's default budgets, defined here only: work units (one unit ≈ 50 ms of search on
#: the reference machine, :data:`rip_atoms.deadline.UNIT_S`) and the wall-clock cap over them
#: (``rip-atoms verify``, :func:`verify_budget`), and the time budget of
#: :func:`rip_atoms.report.build_report` called with neither
DEFAULT_EFFORT = 2400
QUICK_EFFORT = 240
DEFAULT_CAP_S = 900.0
QUICK_CAP_S = 120.0
DEFAULT_BUDGET_S = 120.0


def verify_budget(effort: int | None, budget_s: float | None, *, quick: bool = False) -> dict:
    """The report's budget from ``--effort`` and ``--budget-s`` as keyword arguments of
    :func:`rip_atoms.report.build_report`: a work budget (the default, :data:`DEFAULT_EFFORT`
    or :data:`QUICK_EFFORT` units, capped at :data:`DEFAULT_CAP_S` or :data:`QUICK_CAP_S`
    seconds) unless ``budget_s`` alone asks for a time budget."""
    if effort is None and budget_s is not None:
        return {"budget_s": budget_s}
    return {"effort": effort if effort is not None else (QUICK_EFFORT if quick
                                                         else DEFAULT_EFFORT),
            "budget_s": budget_s if budget_s is not None else (QUICK_CAP_S if quick
                                                               else DEFAULT_CAP_S)}


class SearchBudget:
    """The report's budget B, in one of two currencies.

    - **Effort** (``effort`` units; the default of ``rip-atoms verify``): the budgeted parts
      (RIP witnesses, spark null vectors, the uniqueness margins, the ℓ1 probe, the sampled
      Gaussian reference) share B units of search work (:mod:`rip_atoms.deadline`), which read
      no clock, so the same target, seed and options give the same report on any machine. The
      exact parts run to completion outside B. ``total_s`` is a wall-clock cap over the whole
      report: once it is reached the searches stop, and the report records it (``cap_hit``):
      only then can its brackets depend on the machine.
    - **Seconds** (``effort=None``): B is the whole report's wall time. The exact parts run
      first and to completion (they are charged as ``"exact parts"``); the budgeted parts share
      what is left.

    Either way, in the order of :data:`BUDGET_SHARES`, part i is granted (B − spent) · sᵢ /
    Σ_{j ≥ i} sⱼ, where spent is what everything before it actually used, so what one part
    leaves unused goes to the next and an overrun is taken from the rest. Every part is granted
    at least 1 % of B, so each can return its cheap certified sides even when the parts before
    it used everything. Each search stops at its budget, overrunning it by at most one unit of
    work.

    A part runs as ``with budget.part(name) as deadline:``: it is granted on entry (a
    :class:`rip_atoms.deadline.Deadline` of its grant, whose clock starts then), its searches
    run on ``deadline.search_arguments()`` and report their use with ``deadline.count(
    result.budget)``, and it is charged on exit (its wall seconds from entry, set-up included;
    or the units counted, none when it ran no search). :meth:`skip` grants a part that does not
    run and charges nothing; :meth:`charge_exact_parts` charges the exact parts (time budget).
    """

    def __init__(self, total_s: float, effort: int | None = None,
                 started: float | None = None) -> None:
        self.total_s = float(total_s)
        self.effort = effort
        self.started = time.perf_counter() if started is None else started
        self.spent = 0.0
        self._left = dict(BUDGET_SHARES)
        self.granted: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.cap_hit: list[str] = []

    @property
    def deterministic(self) -> bool:
        return self.effort is not None

    def _total(self) -> float:
        return float(self.effort) if self.effort is not None else self.total_s

    def grant(self, name: str) -> dict:
        """The budget of part ``name`` as keyword arguments of its search: ``{"budget_s": s}``
        (seconds), or ``{"effort": units, "budget_s": what is left of the cap}``."""
        share = self._left.pop(name)
        rest = share + sum(self._left.values())
        g = max(0.01 * self._total(), (self._total() - self.spent) * share / rest)
        if self.effort is None:
            self.granted[name] = g
            return {"budget_s": g}
        units = max(1, math.floor(g))
        self.granted[name] = units
        cap_left = self.total_s - (time.perf_counter() - self.started)
        return {"effort": units, "budget_s": max(1e-3, cap_left)}

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[Deadline]:
        """Part ``name`` (class docstring): its grant as a :class:`Deadline` on entry, charged
        on exit."""
        g = self.grant(name)
        deadline = Deadline(g["budget_s"]) if self.effort is None else \
            Deadline(g["budget_s"], effort=g["effort"])
        yield deadline
        if self.effort is None:
            self.charge(name, deadline.elapsed())
        elif deadline.counted:
            self.charge(name, deadline.elapsed(), {"used": deadline.used,
                                                   "cap_hit": deadline.cap_hit})

    def skip(self, name: str) -> None:
        """Part ``name`` does not run: its share passes to the parts after it."""
        self.grant(name)

    def charge_exact_parts(self) -> None:
        """The exact parts ran from ``started`` until now: charged to a time budget (outside a
        work budget)."""
        self.charge("exact parts", time.perf_counter() - self.started)

    def charge(self, name: str, seconds: float, budget: dict | None = None) -> None:
        """What part ``name`` used: its wall seconds (time budget), or the units its result's
        ``budget`` record says it used (work budget)."""
        if self.effort is not None:
            if budget is None:
                return  # an exact part: outside the work budget
            used = float(budget.get("used", 0))
            if budget.get("cap_hit"):
                self.cap_hit.append(name)
        else:
            used = float(seconds)
        self.used[name] = self.used.get(name, 0.0) + used
        self.spent += used

    def to_dict(self) -> dict:
        if self.effort is None:
            return {"kind": "seconds", "budget_s": self.total_s, "spent_s": self.spent,
                    "granted_s": self.granted, "used_s": self.used,
                    "reading": "B is the whole report's wall time: the exact parts run first "
                               "and to completion, the budgeted parts share what is left (each "
                               "at least 1 % of B); how far each search got depends on the "
                               "machine and its load"}
        return {"kind": "effort", "effort": self.effort, "cap_s": self.total_s,
                "spent": self.spent, "granted": self.granted, "used": self.used,
                "cap_hit": list(self.cap_hit),
                "reading": "B is work, not time: the budgeted parts share B units of search "
                           "work (no clock), so the same target, seed and options give the "
                           "same brackets on any machine; cap_s is a wall-clock cap, and a "
                           "part it stopped is listed in cap_hit (only those can differ "
                           "between machines)"}


__all__ = ["BUDGET_SHARES", "DEFAULT_CAP_S", "DEFAULT_EFFORT", "QUICK_CAP_S", "QUICK_EFFORT",
           "SearchBudget"]
