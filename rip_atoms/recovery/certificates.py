"""Dual certificates: the rigorous bound, the Fuchs certificate, the exact LP, the pushed one.

**Theorem** (Fuchs 2004; Zhang–Yin–Cheng 2015). A code with support S and signs s is the
unique basis-pursuit solution over D iff D_S has full column rank and some y has D_Sᵀ y = s and
‖D_{Sᶜ}ᵀ y‖_∞ < 1 (non-negative case, s = 𝟙: max_{j∈Sᶜ} dⱼᵀ y < 1).

**The rigorous bound** (:func:`rigorous_certificate_bound`, the one place it is computed). A y
computed in float64 satisfies D_Sᵀ y = s only approximately. For e = D_Sᵀ y − s, the corrected
y' = y − D_S G_S⁻¹ e satisfies D_Sᵀ y' = s exactly and |dⱼᵀ(y' − y)| ≤ ‖e‖₂/σmin(D_S)·‖dⱼ‖;
computing dⱼᵀ y in float64 errs by at most γ_H‖y‖₂‖dⱼ‖ (γ_H = Hu/(1 − Hu), u = 2⁻⁵³). So

    bound = value + ‖e‖₂/σmin(D_S) + γ_H‖y‖₂·maxⱼ‖dⱼ‖

bounds the value of an exactly feasible certificate; σmin(D_S) > 0 is the full-column-rank check
(σmin/σmax > RANK_TOL, float64 SVD). Certificates are statements about the float64 matrix held.

Certificates built here: the min-ℓ2 (Fuchs) y₀ = D_S (D_Sᵀ D_S)⁻¹ s (:func:`fuchs_certificate`;
cheap, sufficient only); the exact LP min t s.t. D_Sᵀ y = s, |dⱼᵀ y| ≤ t (j ∈ Sᶜ) through HiGHS
(:func:`dual_certificate`; t* < 1 iff the code is unique); and the certificate pushed from the
homotopy's final segment (:func:`_push_certificate`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.optimize import minimize_scalar

from rip_atoms.dictionary import Dictionary
from rip_atoms.precision import gamma
from rip_atoms.recovery.problem import Code, UnitAtoms, as_matrix, support_signs
from rip_atoms.recovery.results import RANK_TOL, Certificate

_PUSH_ROUNDS = 10
_ADD_TOL = 1e-7


def _cert_value(c: np.ndarray, nonneg: bool) -> float:
    """‖c‖_∞ (non-negative: max c; −inf/0 when c is empty)."""
    if c.size == 0:
        return -math.inf if nonneg else 0.0
    return float(c.max() if nonneg else np.abs(c).max())


def rigorous_bound(value: float, eq_residual: float, sigma_min: float, gamma: float,
                    y_norm: float, col_norm: float = 1.0, k: int = 1) -> float:
    """The bound of the module docstring with the rounding of the computed products:
    value + (‖D_Sᵀ y − s‖₂ + √k·ρ)/σmin(D_S) + ρ, ρ = γ_H·‖y‖₂·maxⱼ‖dⱼ‖ (with a relative 1e-12):
    each computed dⱼᵀy is within ρ of the exact one, so the exact residual on the k atoms of S
    is within √k·ρ of the computed one (this term matters when ‖y‖₂/σmin is large: a certificate
    of a near-parallel pair); +inf when σmin is not > 0."""
    if not sigma_min > 0:
        return math.inf
    rho = gamma * y_norm * col_norm * (1 + 1e-12)
    return value + (eq_residual + math.sqrt(k) * rho) / sigma_min + rho


def rigorous_certificate_bound(rows: np.ndarray, S: np.ndarray, s: np.ndarray, y: np.ndarray,
                       nonneg: bool, sigma_min: float, gamma: float,
                       col_norm: float = 1.0) -> tuple[float, float]:
    """(value, bound) of a certificate y over the atoms ``rows`` (N×H): value = ‖D_{Sᶜ}ᵀ y‖_∞
    (non-negative: max_{j∈Sᶜ} dⱼᵀy), bound = value + ‖D_Sᵀ y − s‖₂ / σmin(D_S) +
    γ_H·‖y‖₂·maxⱼ‖dⱼ‖ (module docstring); +inf when σmin is not > 0."""
    c = rows @ y
    e = c[S] - s
    mask = np.ones(len(c), dtype=bool)
    mask[S] = False
    value = _cert_value(c[mask], nonneg)
    return value, rigorous_bound(value, float(np.linalg.norm(e)), sigma_min, gamma,
                                  float(np.linalg.norm(y)), col_norm, len(S))


def singular_extremes(cols: np.ndarray, S: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(σmin, σmax, last right singular vector) of D_S (float64 SVD); σmin = 0 when |S| > H."""
    A = cols[:, S]
    _, sv, Vt = np.linalg.svd(A, full_matrices=True)
    smin = 0.0 if len(S) > A.shape[0] else float(sv[-1])
    return smin, float(sv[0]), Vt[-1]


def _single_support(D, support, signs, nonneg):
    """(cols H×N, rows N×H, S, s, σmin, σmin/σmax, max‖dⱼ‖) for the single-support functions."""
    cols = as_matrix(D)
    rows = np.ascontiguousarray(cols.T)
    S, s = support_signs(support, signs, cols.shape[1], nonneg)
    smin, smax, _ = singular_extremes(cols, S)
    ratio = smin / smax if smax > 0 else 0.0
    col_norm = float(np.linalg.norm(cols, axis=0).max())
    return cols, rows, S, s, smin, ratio, col_norm


def fuchs_certificate(D: Dictionary | np.ndarray, support: Sequence[int] | np.ndarray,
                      signs: Sequence[float] | np.ndarray | None = None, *,
                      nonneg: bool = False) -> Certificate:
    """The min-ℓ2 (Fuchs) certificate y₀ = D_S (D_Sᵀ D_S)⁻¹ s of one support, D as given.

    Value ‖D_{Sᶜ}ᵀ y₀‖_∞ (non-negative, s = 𝟙: max_{j∈Sᶜ} dⱼᵀ y₀); a bound < 1 (with D_S of full
    column rank) proves that every code with this support and sign pattern is the unique
    solution of basis pursuit over D — sufficient, not necessary.

    Parameters
    ----------
    D : Dictionary or numpy.ndarray
        H×N, columns are atoms; used as given (no normalisation, no metric).
    support : sequence of int
        S, distinct atom indices (:class:`InvalidCodeError` otherwise).
    signs : sequence of float, optional
        s = sign of the code on S, one per index (default 𝟙; ignored with ``nonneg``).
    nonneg : bool
        The one-sided test of non-negative basis pursuit.

    Returns
    -------
    Certificate
        ``method="fuchs"``; value and rigorous bound in float64 (bound +inf and value NaN when
        D_S is rank-deficient, σmin/σmax ≤ RANK_TOL).

    Examples
    --------
    >>> import numpy as np
    >>> c = fuchs_certificate(np.eye(3), [0, 2], [1, -1])
    >>> c.value, c.certifies()
    (0.0, True)
    """
    cols, rows, S, s, smin, ratio, col_norm = _single_support(D, support, signs, nonneg)
    if not ratio > RANK_TOL:
        return Certificate(math.nan, math.inf, np.full(cols.shape[0], np.nan), ratio, "fuchs")
    A = cols[:, S]
    a = np.linalg.solve(A.T @ A, s)
    y = A @ a
    value, bound = rigorous_certificate_bound(rows, S, s, y, nonneg, smin, gamma(cols.shape[0]),
                                      col_norm)
    return Certificate(value, bound, y, ratio, "fuchs")


def certificate_lp(C: np.ndarray, E: np.ndarray, s: np.ndarray, nonneg: bool,
                   time_limit: float | None):
    """HiGHS on the certificate LP over the constraint atoms C (rows cⱼ) and the support rows E
    (rows eᵢ = d_i, i ∈ S): min t s.t. E y = s, cⱼᵀ y ≤ t (and −cⱼᵀ y ≤ t for signed codes);
    variables (y, t) ∈ R^{H+1}. The bound t ≥ −1 keeps the one-sided (non-negative) LP bounded
    without changing whether t* < 1. Returns the scipy result."""
    from scipy.optimize import linprog

    h = E.shape[1]
    ones = -np.ones((C.shape[0], 1))
    A_ub = np.hstack([C, ones]) if nonneg else np.vstack([np.hstack([C, ones]),
                                                          np.hstack([-C, ones])])
    A_eq = np.hstack([E, np.zeros((E.shape[0], 1))])
    c = np.zeros(h + 1)
    c[-1] = 1.0
    opts = {"presolve": True}
    if time_limit is not None:
        opts["time_limit"] = float(time_limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return linprog(c, A_ub=sp.csr_matrix(A_ub), b_ub=np.zeros(A_ub.shape[0]),
                       A_eq=sp.csr_matrix(A_eq), b_eq=s, bounds=[(None, None)] * h + [(-1, None)],
                       method="highs", options=opts)


def exact_certificate_lp(rows: np.ndarray, S: np.ndarray, s: np.ndarray, nonneg: bool,
        time_limit: float | None):
    """:func:`certificate_lp` with every atom outside S as a constraint (the exact LP: j ∈ Sᶜ).
    Returns the scipy result and Sᶜ."""
    mask = np.ones(rows.shape[0], dtype=bool)
    mask[S] = False
    return certificate_lp(rows[mask], rows[S], s, nonneg, time_limit), np.flatnonzero(mask)


def dual_certificate(D: Dictionary | np.ndarray, support: Sequence[int] | np.ndarray,
                     signs: Sequence[float] | np.ndarray | None = None, *,
                     nonneg: bool = False, time_limit: float | None = None) -> Certificate:
    """The exact dual certificate of one support, D as given, by linear programming (HiGHS).

    t* = min ‖D_{Sᶜ}ᵀ y‖_∞ s.t. D_Sᵀ y = s (non-negative, s = 𝟙: min max_{j∈Sᶜ} dⱼᵀ y); with
    D_S of full column rank, a code with support S and signs s is the unique basis-pursuit
    solution iff t* < 1.

    Parameters
    ----------
    D : Dictionary or numpy.ndarray
        H×N, columns are atoms; used as given.
    support : sequence of int
        S, distinct atom indices.
    signs : sequence of float, optional
        s on S (default 𝟙; ignored with ``nonneg``).
    nonneg : bool
        The one-sided LP of non-negative basis pursuit.
    time_limit : float, optional
        HiGHS time limit in seconds.

    Returns
    -------
    Certificate
        ``method="lp"``; ``lp_status`` is HiGHS's status (0 optimal), ``lp_value`` is max(t*, −1)
        as HiGHS reports it; ``value``/``bound`` are recomputed from the returned y in float64.
        Without an optimum: value NaN, bound +inf, lp_value None.

    Examples
    --------
    >>> import numpy as np
    >>> D = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.8]])
    >>> c = dual_certificate(D, [0])
    >>> round(c.lp_value, 6), c.certifies()
    (0.333333, True)
    """
    cols, rows, S, s, smin, ratio, col_norm = _single_support(D, support, signs, nonneg)
    res, _ = exact_certificate_lp(rows, S, s, nonneg, time_limit)
    if res.status != 0 or res.x is None:
        return Certificate(math.nan, math.inf, np.full(cols.shape[0], np.nan), ratio, "lp",
                           int(res.status), None)
    y = res.x[:-1]
    value, bound = rigorous_certificate_bound(rows, S, s, y, nonneg,
                                              smin if ratio > RANK_TOL else 0.0,
                                              gamma(cols.shape[0]), col_norm)
    return Certificate(value, bound, y, ratio, "lp", 0, float(res.x[-1]))


def _push_certificate(atoms: UnitAtoms, code: Code, T: np.ndarray, sT: np.ndarray,
                      nonneg: bool, rounds: int = _PUSH_ROUNDS) -> float:
    """The rigorous bound of :func:`pushed_certificate` (+inf if nothing usable was built)."""
    return pushed_certificate(atoms, code, T, sT, nonneg, rounds)[0]


def pushed_certificate(atoms: UnitAtoms, code: Code, T: np.ndarray, sT: np.ndarray,
                        nonneg: bool, rounds: int = _PUSH_ROUNDS
                        ) -> tuple[float, float, float, np.ndarray | None]:
    """Certificate from an active set A = S ∪ T with signs s_A (the homotopy's final segment).

    y_A = D̃_A G_A⁻¹ s_A (G_A = D̃_Aᵀ D̃_A) has D̃_Sᵀ y_A = s and d̃ⱼᵀ y_A = sⱼ on T; atoms off A
    that reach 1 − 1e-7 are added to T with sign(d̃ⱼᵀ y_A) (at most ``rounds`` times). Then
    y = y_A − η w with w = D̃_A G_A⁻¹ [0; s_T] (so d̃ⱼᵀ y = (1 − η) sⱼ on T and D̃_Sᵀ w = 0), η
    minimising max(|1 − η|, max_{j∉A} |cⱼ − η wⱼ|) on [0, 2] (convex; bounded Brent). Returns
    (bound, value, ‖y‖₂, y) of y (:func:`rigorous_certificate_bound`); (+inf, NaN, NaN, None) if
    nothing usable was built.
    """
    rows, h = atoms.rows64, atoms.dim
    S, s = code.S, code.s
    T = np.asarray(T, dtype=np.int64)
    sT = np.asarray(sT, dtype=np.float64)
    nothing = (math.inf, math.nan, math.nan, None)
    for _ in range(rounds):
        A = np.concatenate([S, T])
        if len(A) >= h:
            return nothing
        sA = np.concatenate([s, sT])
        DA = rows[A]  # |A|×H
        G = DA @ DA.T
        try:
            cf = sla.cho_factor(G, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return nothing
        yA = DA.T @ sla.cho_solve(cf, sA, check_finite=False)
        eT = np.zeros(len(A))
        eT[len(S):] = sT
        w = DA.T @ sla.cho_solve(cf, eT, check_finite=False)
        CW = rows @ np.column_stack([yA, w])
        off = np.ones(atoms.n_atoms, dtype=bool)
        off[A] = False
        off &= ~atoms.dead
        c, cw = CW[off, 0], CW[off, 1]
        viol = (c >= 1 - _ADD_TOL) if nonneg else (np.abs(c) >= 1 - _ADD_TOL)
        if viol.any():
            new = np.flatnonzero(off)[viol]
            T = np.concatenate([T, new])
            sT = np.concatenate([sT, np.ones(len(new)) if nonneg else np.sign(c[viol])])
            continue
        if len(T):
            def f(eta: float, c=c, cw=cw) -> float:
                return max(_cert_value(c - eta * cw, nonneg), abs(1.0 - eta))

            eta = minimize_scalar(f, bounds=(0.0, 2.0), method="bounded",
                                  options={"xatol": 1e-12}).x
            y = yA - eta * w
        else:
            y = yA
        value, bound = rigorous_certificate_bound(rows, S, s, y, nonneg, code.sigma_min,
                                                  atoms.gamma)
        return bound, value, float(np.linalg.norm(y)), y
    return nothing
