"""Wall-clock budgets for searches: one :class:`Deadline` object checked inside every loop.

A search given ``budget_s`` seconds creates ``Deadline(budget_s)`` and asks ``expired()``
between units of work small enough that one unit never overruns the budget by much (a grow step
of one support, one chunk of an enumeration, one ℓ1 solve). What it found so far is returned,
marked as budget-limited. ``share(f)`` hands a sub-search a fraction of what is left.
"""

from __future__ import annotations

import math
import time

from rip_atoms.errors import ParameterError


class Deadline:
    """A point in time ``budget_s`` seconds from now (``math.inf``: never)."""

    __slots__ = ("budget_s", "start", "end")

    def __init__(self, budget_s: float) -> None:
        if not (isinstance(budget_s, int | float) and budget_s > 0):
            raise ParameterError(f"budget_s must be a number > 0, got {budget_s!r}")
        self.budget_s = float(budget_s)
        self.start = time.perf_counter()
        self.end = self.start + self.budget_s if math.isfinite(budget_s) else math.inf

    def remaining(self) -> float:
        """Seconds left (≤ 0 once expired)."""
        return self.end - time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def expired(self) -> bool:
        return time.perf_counter() >= self.end

    def share(self, fraction: float) -> Deadline:
        """A deadline at ``fraction`` of the time left (at least a millisecond)."""
        return Deadline(max(1e-3, fraction * max(self.remaining(), 0.0)))

    def __repr__(self) -> str:
        return f"Deadline(budget_s={self.budget_s:.3g}, remaining={self.remaining():.3g})"
