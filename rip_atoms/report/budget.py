"""The report's budget B (``--budget-s``): the whole report's wall time, shared by its parts."""

from __future__ import annotations

#: how what is left of the budget B after the exact parts is shared out, in this order (see
#: :class:`SearchBudget`); the sampled Gaussian reference, last, gets whatever is left
BUDGET_SHARES = {"rip": 0.35, "spark": 0.15, "margins": 0.15, "probe": 0.2, "reference": 0.15}


class SearchBudget:
    """The report's budget B (``--budget-s``): the wall-clock seconds of the whole report.

    The exact parts run first and to completion (the metric, the representation shift, the
    coherence passes, the certification of the target's codes, the criteria, the cards; they
    are charged as ``"exact parts"``). The budgeted parts then share what is left, in the order
    of :data:`BUDGET_SHARES`: part i is granted (B − spent) · sᵢ / Σ_{j ≥ i} sⱼ, where spent is
    the wall time everything before it actually took, so time one part leaves unused goes to
    the next and an overrun is taken from the rest. Every part is granted at least 1 % of B, so
    each can return its cheap certified sides even when the exact parts alone exceeded B (the
    report then runs over B by about 5 % of B plus the exact parts' excess). Each search stops
    at its deadline, overrunning it by at most one unit of work.
    """

    def __init__(self, total_s: float) -> None:
        self.total_s = float(total_s)
        self.spent_s = 0.0
        self._left = dict(BUDGET_SHARES)
        self.granted: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def grant(self, name: str) -> float:
        """Seconds for part ``name`` (at least 1 % of B, so every part can start)."""
        share = self._left.pop(name)
        rest = share + sum(self._left.values())
        g = max(0.01 * self.total_s, (self.total_s - self.spent_s) * share / rest)
        self.granted[name] = g
        return g

    def charge(self, name: str, seconds: float) -> None:
        self.used[name] = self.used.get(name, 0.0) + float(seconds)
        self.spent_s += float(seconds)

    def to_dict(self) -> dict:
        return {"budget_s": self.total_s, "spent_s": self.spent_s, "granted_s": self.granted,
                "used_s": self.used,
                "reading": "B is the whole report's wall time: the exact parts run first and "
                           "to completion, the budgeted parts share what is left (each at "
                           "least 1 % of B)"}


__all__ = ["BUDGET_SHARES", "SearchBudget"]
