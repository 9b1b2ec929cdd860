"""Floating-point precision: the unit roundoffs and γₙ every rounding bound uses, the cosine
tolerances of float32 and float64 passes, and two standards of linear dependence — proven in
float64, and within the input's precision.

A set T of corrected unit atoms (columns of D̃_T, float64) is judged by ρ(T) = σ_min/σ_max of
D̃_T (float64 SVD), equivalently by a unit null vector v with relative residual
‖D̃_T v‖₂ / ‖D̃_T‖₂:

* **dependent (proven)** when ρ(T) ≤ ``PROOF_RTOL`` = 1e-9: the null vector re-checks in float64
  to a residual tied to float64 (1e-9 is ~10⁷ unit roundoffs u₆₄ = 2⁻⁵³, far above the error of
  the float64 computation of D̃ and of the SVD for any H the library handles, and far below the
  float32 roundoff 2⁻²⁴ ≈ 6e-8). The same tolerance is the rank test of :mod:`rip_atoms.recovery`
  (``RANK_TOL``). "uniqueness fails" and spark's proven upper side rest on this standard only.
* **dependent within the input's precision** when ρ(T) ≤ r = max(floor, √(H + 1)·κ(W)·u_in)
  (:func:`rank_tolerance`), u_in the unit roundoff of the dtype the atoms arrived in (float32:
  2⁻²⁴, bfloat16: 2⁻⁸, float16: 2⁻¹¹, float64: 2⁻⁵³) and κ(W) = √κ(S̃) the condition number of
  the whitening. Rounding each entry to the input's precision moves a column dᵢ by at most
  u_in‖dᵢ‖, its corrected unit column by at most κ(W)·u_in, so t ≤ H + 1 unit columns by at most
  √t·κ(W)·u_in in ‖·‖_F ≥ ‖·‖₂; by Eckart–Young a perturbation of norm σ_min makes D̃_T
  singular, so such a set cannot be told from a dependent one at the input's precision. It is
  *not* proven dependent: the float64 data may well be independent (a float32 pair dⱼ = −3dᵢ has
  ρ ≈ 1e-8 after rounding).

Sets with ρ(T) > r are independent, with room to spare for both standards.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: the modules below import this one
    from rip_atoms.corrected_atoms import CorrectedAtoms
    from rip_atoms.dictionary import Dictionary
    from rip_atoms.metric import AIPMetric

#: unit roundoffs u = 2⁻ᵖ of float64 and float32 (round to nearest)
U64 = 2.0**-53
U32 = 2.0**-24


def gamma(n: int, u: float = U64) -> float:
    """γₙ = n·u/(1 − n·u) (Higham, *Accuracy and Stability*, Lemma 3.1): the bound on the
    relative error of a length-n dot product or sum in precision u (float64 by default)."""
    e = n * u
    return e / (1.0 - e)


def float32_cosine_tolerance(dim: int) -> float:
    """Bound on |float32 cosine − exact cosine| for unit rows of length H: γ_H(u₃₂) + 2.5u₃₂."""
    return gamma(dim, U32) + 2.5 * U32


def float64_cosine_tolerance(dim: int, condition_number: float = 1.0) -> float:
    """Bound on |float64 cosine − exact cosine| of cos(j, l) = dⱼᵀ S̃ dₗ / (‖dⱼ‖_S ‖dₗ‖_S) for
    the atoms and S̃ as stored: 4(H + 2)·ε₆₄·κ(S̃) (ε₆₄ = 2⁻⁵²; the products S̃d and dᵀ(S̃d) carry
    relative error ≤ (H + 1)ε₆₄‖S̃‖‖d‖², which is ≤ (H + 1)ε₆₄·κ(S̃) relative to ‖d‖²_S ≥
    λmin(S̃)‖d‖²; the two norms and the division add a few ε₆₄; κ = 1 for raw cosines)."""
    return 4.0 * (dim + 2) * float(np.finfo(np.float64).eps) * max(1.0, float(condition_number))

#: a set is proven dependent when σ_min/σ_max ≤ PROOF_RTOL (float64 SVD)
PROOF_RTOL = 1e-9
#: unit roundoff of the dtypes atoms arrive in (integers are exact: treated as float64)
UNIT_ROUNDOFF = {"float64": U64, "float32": U32, "float16": 2.0**-11,
                 "bfloat16": 2.0**-8}


def _dtype_names(d: Dictionary) -> set[str]:
    return {str(d.provenance.dtype).replace("torch.", ""), str(d.atoms.dtype)}


def _roundoff(name: str) -> float:
    return UNIT_ROUNDOFF.get(name, 2.0**-53 if "int" in name else 2.0**-24)


def input_unit_roundoff(d: Dictionary) -> float:
    """u_in: the unit roundoff of the precision the atoms are known to, the coarser of the dtype
    they arrived in (``provenance.dtype``) and the dtype they are held in."""
    return max(_roundoff(n) for n in _dtype_names(d))


def input_precision_name(d: Dictionary) -> str:
    """The name of the dtype behind :func:`input_unit_roundoff` (e.g. "float32")."""
    return max(sorted(_dtype_names(d)), key=_roundoff)


def rank_tolerance(d: Dictionary, metric: AIPMetric | None,
                   rank_rtol: float = PROOF_RTOL) -> float:
    """r = max(rank_rtol, √(H + 1)·κ(W)·u_in): the relative σ_min at or below which a set of
    corrected atoms is dependent within the input's precision (module docstring)."""
    kappa_w = 1.0 if metric is None else math.sqrt(max(1.0, metric.condition_number))
    return max(float(rank_rtol), math.sqrt(d.dim + 1) * kappa_w * input_unit_roundoff(d))


def relative_sigma_min(X: np.ndarray) -> float:
    """ρ = σ_min/σ_max of X (H×t, float64 SVD); 0 when t > H (more columns than rows) or X = 0."""
    if X.shape[1] > X.shape[0]:
        return 0.0
    s = np.linalg.svd(X, compute_uv=False)
    return float(s[-1] / s[0]) if s.size and s[0] > 0 else 0.0


def dependence_words(rho: float, rtol_in: float, precision: str) -> str:
    """How a set with σ_min/σ_max = ρ reads: "dependent in float64 (…)", "dependent within the
    input's precision (…)" or "independent (…)", the numbers named."""
    if rho <= PROOF_RTOL:
        return f"dependent in float64 (σ_min/σ_max = {rho:.1e} ≤ {PROOF_RTOL:g})"
    if rho <= rtol_in:
        return (f"dependent within the input's precision ({precision}: σ_min/σ_max = "
                f"{rho:.1e} ≤ {rtol_in:.1e}), not in float64")
    return f"independent (σ_min/σ_max = {rho:.1e} > {rtol_in:.1e})"


def near_singular_words(atoms: CorrectedAtoms, support, lam_min: float) -> str | None:
    """How a support with a small float64 λmin(G_S) reads, for labels of L_k ≈ 1: when
    λmin ≤ |S|·(r² + 1e-12) (r = :func:`rank_tolerance`; λmin = σ_min² and σ_max² ≤ |S| for unit
    columns, so only then can ρ = σ_min/σ_max be ≤ r; 1e-12 covers the float64 error of an
    eigenvalue of the Gram, ~|S|·u₆₄), :func:`dependence_words` of ρ from the float64 SVD of
    D̃_S; None otherwise, and for |S| > H (dependent by dimension, a proof)."""
    S = [int(i) for i in support]
    d = atoms.dictionary
    rtol = rank_tolerance(d, atoms.metric)
    if not S or len(S) > d.dim or not lam_min <= len(S) * (rtol * rtol + 1e-12):
        return None
    rho = relative_sigma_min(atoms.vectors(S))
    return dependence_words(rho, rtol, input_precision_name(d))
