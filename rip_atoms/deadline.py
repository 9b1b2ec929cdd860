"""Budgets for searches: one :class:`Deadline` object checked inside every loop.

A search asks ``expired()`` between units of work small enough that one unit never overruns the
budget by much (a grow step of one support, one chunk of eigensolves or of an enumeration, one
ℓ1 solve). What it found so far is returned, marked as budget-limited. ``share(f)`` hands a
sub-search a fraction of what is left; ``search_arguments()`` hands what is left to a search that
runs its own Deadline (``budget_s=`` / ``effort=``), and ``count(result.budget)`` counts what it
used (the parts of the report's budget, :meth:`rip_atoms.report.budget.SearchBudget.part`). A
budget is counted in one of two currencies:

- **seconds** (``Deadline(budget_s)``): wall-clock time from the moment the Deadline is made
  (a search makes it at its call's start, so its fixed costs count; docs/api.md). How far a
  search gets then depends on the machine and its load, so two runs can return different
  (equally sound) brackets.
- **effort** (``Deadline(cap_s, effort=N)``): N units of work. A unit is one budget check
  (``expired()``: one chunk of an enumeration, one per-code solve), or, where a search knows
  what its steps cost (:meth:`charge`: the support search's GEMMs and eigensolves, the
  uninterruptible rank test, LARS path or projector set-up), its operation count at a nominal
  rate, :data:`UNIT_S` seconds of it per unit. Nothing in it reads the clock, so the same
  input, seed and options do the same work on any machine and give the same result on every
  run (another CPU or BLAS can still round what they search on differently); exact fixed
  costs spend no units. The wall clock is only a safety cap (``cap_s``, ``math.inf`` for
  none): a search stopped by it is recorded (:attr:`cap_hit`), and only then can its result
  depend on the machine.
"""

from __future__ import annotations

import math
import time

from rip_atoms.errors import ParameterError

#: the nominal length of one unit of effort: the size of the units of work between budget checks
#: (chunks of eigensolves are sized to about this on the machine the constants were measured on),
#: used to turn an uninterruptible step's estimated seconds into units (:meth:`Deadline.charge`)
UNIT_S = 0.05


#: the time budget of a search given neither seconds nor effort
DEFAULT_SEARCH_S = 10.0


def search_seconds(budget_s: float | None, effort: int | None) -> float:
    """A search's ``budget_s`` with its default filled in: :data:`DEFAULT_SEARCH_S` seconds
    for a time budget, no cap (``math.inf``) for a work budget."""
    if budget_s is not None:
        return budget_s
    return DEFAULT_SEARCH_S if effort is None else math.inf


class Deadline:
    """A budget: ``budget_s`` seconds from now, or ``effort`` units of work capped at
    ``budget_s`` seconds (``math.inf``: no cap)."""

    __slots__ = ("budget_s", "start", "end", "effort", "used", "counted", "_parent", "_log")

    def __init__(self, budget_s: float = math.inf, *, effort: int | None = None,
                 _parent: Deadline | None = None) -> None:
        if not (isinstance(budget_s, int | float) and not isinstance(budget_s, bool)
                and budget_s > 0):
            raise ParameterError(f"budget_s must be a number > 0, got {budget_s!r}")
        if effort is not None and (isinstance(effort, bool) or not isinstance(effort, int)
                                   or effort < 1):
            raise ParameterError(f"effort must be an integer ≥ 1 (units of work), got {effort!r}")
        self.budget_s = float(budget_s)
        self.start = time.perf_counter()
        self.end = self.start + self.budget_s if math.isfinite(budget_s) else math.inf
        self.effort = effort
        self.used = 0.0
        self.counted = False
        self._parent = _parent
        self._log = _parent._log if _parent is not None else {"cap_hit": False}

    @classmethod
    def of(cls, budget_s: float | None, effort: int | None = None) -> Deadline | None:
        """The budget of a search given its two public parameters: ``effort`` units capped at
        ``budget_s`` seconds when ``effort`` is given, else ``budget_s`` seconds (None when
        both are None: no limit)."""
        if effort is None:
            return None if budget_s is None else cls(budget_s)
        return cls(math.inf if budget_s is None else budget_s, effort=effort)

    @property
    def deterministic(self) -> bool:
        """True when the budget is work, not time (the clock is only a cap)."""
        return self.effort is not None

    @property
    def cap_hit(self) -> bool:
        """True once the wall-clock cap of a work budget (or any budget shared from it) stopped
        a search: only then can the result differ between machines."""
        return self._log["cap_hit"]

    def _spend(self, units: float) -> None:
        node: Deadline | None = self
        while node is not None:
            node.used += units
            node = node._parent

    def remaining(self) -> float:
        """Seconds left (≤ 0 once expired). For a work budget: the units left in nominal
        seconds (:data:`UNIT_S` each), which is what the callers compare estimated costs of
        uninterruptible steps against, and which reads no clock."""
        if self.effort is not None:
            return (self.effort - self.used) * UNIT_S
        return self.end - time.perf_counter()

    def left(self) -> float:
        """What is left in the budget's own currency: units of effort (exact, no nominal
        seconds), or wall-clock seconds (≤ 0 once expired)."""
        if self.effort is not None:
            return self.effort - self.used
        return self.end - time.perf_counter()

    def search_arguments(self) -> dict:
        """What is left as a search's keyword arguments: ``{"budget_s": s}`` (seconds), or
        ``{"effort": units, "budget_s": what is left of the cap}``; the search runs its own
        :class:`Deadline` on them and reports its use (``result.budget``) for :meth:`count`."""
        if self.effort is None:
            return {"budget_s": max(1e-3, self.left())}
        return {"effort": int(self.left()), "budget_s": max(1e-3, self.clock_left())}

    def count(self, record: dict) -> None:
        """Count against this budget what a search run on :meth:`search_arguments` reports it
        used (its ``result.budget``): for a work budget its units and whether the cap stopped
        it; a time budget is counted by the clock."""
        self.counted = True
        if self.effort is not None:
            self._spend(float(record.get("used", 0)))
            if record.get("cap_hit"):
                self._log["cap_hit"] = True

    def clock_left(self) -> float:
        """Wall-clock seconds left before the deadline or, for a work budget, its cap
        (``math.inf`` when uncapped): the time limit to give a solver that keeps its own
        clock."""
        return self.end - time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def expired(self, units: float = 1.0) -> bool:
        """Whether the search must stop now. For a work budget each call spends ``units`` of
        effort (searches check once between units of work; one that charges its work with
        :meth:`charge` checks with ``units=0``)."""
        if self.effort is None:
            return time.perf_counter() >= self.end
        self._spend(units)
        if self.used > self.effort:
            return True
        if time.perf_counter() >= self.end:
            self._log["cap_hit"] = True
            return True
        return False

    def fits(self, seconds: float) -> bool:
        """Whether an uninterruptible step estimated at ``seconds`` fits what is left."""
        return seconds <= self.remaining()

    def take(self, seconds: float) -> bool:
        """Start an uninterruptible step estimated at ``seconds`` only if it fits what is left
        (:meth:`fits`); then it is charged (:meth:`charge`) and True is returned."""
        if not self.fits(seconds):
            return False
        self.charge(seconds)
        return True

    def charge(self, seconds: float) -> None:
        """Count work estimated at ``seconds`` (from its operation count, never the clock)
        against a work budget, in units of :data:`UNIT_S`; a time budget counts it by the
        clock."""
        if self.effort is not None:
            self._spend(seconds / UNIT_S)

    def share(self, fraction: float) -> Deadline:
        """A budget of ``fraction`` of what is left (at least a millisecond, or one unit); the
        units it spends are spent from this budget too."""
        if self.effort is None:
            return Deadline(max(1e-3, fraction * max(self.remaining(), 0.0)))
        units = max(1, math.floor(fraction * max(self.effort - self.used, 0)))
        cap = max(1e-3, self.end - time.perf_counter()) if math.isfinite(self.end) else math.inf
        return Deadline(cap, effort=units, _parent=self)

    def to_dict(self) -> dict:
        """What the budget was and what of it was used (for results and reports)."""
        if self.effort is None:
            return {"kind": "seconds", "budget_s": self.budget_s, "seconds": self.elapsed(),
                    "reading": "a wall-clock budget: how far the search got depends on the "
                               "machine and its load"}
        return {"kind": "effort", "effort": self.effort,
                "used": round(min(self.used, self.effort), 3),
                "cap_s": self.budget_s if math.isfinite(self.budget_s) else None,
                "cap_hit": self.cap_hit, "seconds": self.elapsed(),
                "reading": "a work budget (units of search work, no clock): the same input, "
                           "seed and options do the same work on any machine and give the same "
                           "result on every run (another CPU or BLAS can still round the floats "
                           "it searches on differently)"
                           + (" — except that the wall-clock cap stopped this search, so its "
                              "result can depend on the machine" if self.cap_hit else "")}

    def __repr__(self) -> str:
        if self.effort is None:
            return f"Deadline(budget_s={self.budget_s:.3g}, remaining={self.remaining():.3g})"
        return f"Deadline(effort={self.effort}, used={self.used}, cap_s={self.budget_s:.3g})"
