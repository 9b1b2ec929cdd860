"""Why a code stays undetermined, in words, where the classifier can say it.

Two numerical situations leave a code without a proof either way, and each gets a reason
(``RecoveryResult.reasons``):

* a support atom is in a near-parallel pair (a, b), |⟨d̃ₐ, d̃_b⟩| ≥ 1 − DUPLICATE_TOL: no rigorous
  certificate bound fell below 1 − margin (for a 1-sparse code on a, the best certificate is
  near |cos| itself) and the swap δ̃ₐ → b is a witness only when the pair is parallel to float64
  rounding. The reason names the pair, 1 − |cos| = σ_min² of [d̃ₐ d̃_b] and ρ = σ_min/σ_max
  (float64 SVD), read against the two standards of :mod:`rip_atoms.precision`: "numerically
  parallel at <dtype> precision" when ρ ≤ the input's rank tolerance, else independent in float64;
* D̃_S is rank-deficient in float64 (σmin/σmax ≤ RANK_TOL) and no null-space step gave a witness
  that re-checks.
"""

from __future__ import annotations

import math

import numpy as np

from rip_atoms.precision import PROOF_RTOL
from rip_atoms.recovery.problem import Code, UnitAtoms
from rip_atoms.recovery.results import RANK_TOL


def _pair_of(code: Code, partners: dict[int, list[tuple[int, float]]],
             nonneg: bool) -> tuple[int, int, float] | None:
    """The most parallel duplicate pair (a, b, cos) with a in the support (for non-negative
    codes a positive pair), or None."""
    best = None
    for a in code.S.tolist():
        for b, c in partners.get(a, ()):
            if (not nonneg or c > 0) and (best is None or abs(c) > abs(best[2])):
                best = (a, b, c)
    return best


def _pair_words(atoms: UnitAtoms, a: int, b: int) -> str:
    """The pair as the two standards read it: ρ = σ_min/σ_max of [d̃ₐ d̃_b] (float64 SVD) and
    1 − |cos| = σ_min² (exact for unit columns, and free of the cancellation in 1 − |cos|)."""
    s = np.linalg.svd(atoms.cols64[:, [a, b]], compute_uv=False)
    rho = float(s[-1] / s[0])
    gap = f"|cos| = 1 − {float(s[-1]) ** 2:.1e}, σmin/σmax = {rho:.1e}"
    if rho <= PROOF_RTOL:
        return f"parallel pair ({a}, {b}) in float64 ({gap})"
    name, rtol = atoms.precision if atoms.precision is not None else ("the input's", 0.0)
    if rho <= rtol:
        return (f"numerically parallel pair ({a}, {b}) at {name} precision ({gap} ≤ "
                f"{rtol:.1e}); independent in float64")
    return f"near-parallel pair ({a}, {b}) ({gap}: independent in float64)"


def undetermined_reason(atoms: UnitAtoms, code: Code,
                        partners: dict[int, list[tuple[int, float]]], nonneg: bool,
                        bound: float, margin: float) -> str:
    """The reason an open code has no proof (module docstring), or "" when it is neither on a
    near-parallel pair nor on a rank-deficient D̃_S. ``bound``: the best rigorous certificate
    bound seen (NaN if none)."""
    open_words = ("no certificate below 1 − "
                  f"{margin:g}{f' (best bound {bound:.9f})' if math.isfinite(bound) else ''} "
                  "and no failure witness that re-checks in float64")
    pair = _pair_of(code, partners, nonneg) if code.blocked else None
    if pair is not None:
        return f"{_pair_words(atoms, pair[0], pair[1])}: {open_words}"
    if code.sigma_ratio <= RANK_TOL:
        return (f"D̃_S is rank-deficient in float64 (σmin/σmax = {code.sigma_ratio:.1e} ≤ "
                f"{RANK_TOL:g}): {open_words}")
    return ""
