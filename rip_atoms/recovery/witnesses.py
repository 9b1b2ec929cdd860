"""Failure witnesses: a feasible x ≠ δ̃ with ‖x‖₁ ≤ ‖δ̃‖₁, checked in float64.

A witness x of a code δ̃ (support S, y = D̃δ̃) satisfies, recomputed in float64 on the float64
corrected atoms D̃ (:func:`check_witness`, the one test every "failed" passes):

* feasible: ‖D̃x − y‖₂ ≤ ε = FEAS_TOL·‖y‖₂ + γ_{m+k}·(‖x‖₁ + ‖δ̃‖₁) (:func:`_feasibility_tol`:
  a relative residual of 1e-9, plus the float64 rounding of the m + k products that form
  D̃x − y, γ_n = nu/(1 − nu), u = 2⁻⁵³, so that exact ties such as an exactly duplicated atom
  pass whatever ‖y‖);
* no worse: ‖x‖₁ ≤ (1 + L1_TOL)‖δ̃‖₁, and x ≥ 0 for non-negative codes;
* different: ‖x − δ̃‖₂ > RECOVERY_TOL‖δ̃‖₂.

Then v = x − δ̃ ∈ ker D̃ (to the same tolerance) has ‖v_{Sᶜ}‖₁ ≤ ‖v_S‖₁: a null-space-property
violation of order |S|, and δ̃ is not the unique basis-pursuit solution.

Sources of candidates: least squares on a proposed support (:func:`polish_witness`,
:func:`nnls_on_support`); a step along a direction v ∈ ker D̃ that does not increase ‖·‖₁
(:func:`witness_along`) — the SVD null vector of a rank-deficient D̃_S, or the null direction
read off the certificate LP's dual (:func:`lp_dual_witness`); and the duplicate swap
(:func:`duplicate_swap`), which moves each δ̃ᵢ on an atom of a duplicate pair onto its partner
(a witness only where the pair is parallel to float64 rounding: for a pair at |cos| = 1 − ε it
misses y by about √(2ε)·|δ̃ᵢ|).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from rip_atoms.precision import gamma
from rip_atoms.recovery.problem import Code, UnitAtoms
from rip_atoms.recovery.results import FEAS_TOL, L1_TOL, RECOVERY_TOL


def _apply(rows: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """D x for a sparse x given by (indices, values): Σ vals_t · d_{idx_t} (rows: N×H)."""
    return rows[idx].T @ vals if len(idx) else np.zeros(rows.shape[1])


def _feasibility_tol(code: Code, x_l1: float, m: int) -> float:
    """ε = FEAS_TOL·‖y‖₂ + γ_{m+k}·(‖x‖₁ + ‖δ̃‖₁): the residual ‖D̃x − y‖₂ a witness with m
    non-zeros may have (module docstring). Each entry of D̃x − y is a float64 sum of m + k
    products, in error by at most γ_{m+k} times the sum of their magnitudes; over the entries,
    for unit columns, that is at most γ_{m+k}(‖x‖₁ + ‖δ̃‖₁) in ‖·‖₂."""
    return FEAS_TOL * code.y_norm + gamma(m + code.k + 1) * (x_l1 + code.l1)


def check_witness(rows: np.ndarray, code: Code, idx: np.ndarray, vals: np.ndarray,
                   nonneg: bool) -> bool:
    """Is x (sparse: idx, vals) a failure witness for the code? (module docstring), in float64
    on the rows of D̃: ‖D̃x − y‖₂ ≤ :func:`_feasibility_tol`, ‖x‖₁ ≤ (1 + L1_TOL)‖δ̃‖₁,
    x ≥ 0 if non-negative, ‖x − δ̃‖₂ > RECOVERY_TOL‖δ̃‖₂."""
    idx = np.asarray(idx, dtype=np.int64)
    vals = np.asarray(vals, dtype=np.float64)
    if idx.shape != vals.shape or not np.all(np.isfinite(vals)):
        return False
    if nonneg and np.any(vals < 0):
        return False
    x_l1 = float(np.abs(vals).sum())
    if x_l1 > (1.0 + L1_TOL) * code.l1:
        return False
    residual = np.linalg.norm(_apply(rows, idx, vals) - code.y)
    if not residual <= _feasibility_tol(code, x_l1, len(idx)):
        return False
    diff = sparse_diff_norm(idx, vals, code.S, code.vals)
    return bool(diff > RECOVERY_TOL * code.norm2)


def sparse_diff_norm(ia, va, ib, vb) -> float:
    """‖a − b‖₂ for sparse vectors given as (sorted or not) index/value arrays."""
    idx = np.concatenate([ia, ib])
    val = np.concatenate([va, -vb])
    uniq, inv = np.unique(idx, return_inverse=True)
    acc = np.zeros(len(uniq))
    np.add.at(acc, inv, val)
    return float(np.linalg.norm(acc))


def clean_sparse(idx: np.ndarray, vals: np.ndarray, nonneg: bool, rel: float = 1e-14):
    """Drop exact zeros (and, for non-negative witnesses, round −tiny entries to 0)."""
    if nonneg and len(vals):
        tiny = rel * float(np.abs(vals).max())
        vals = np.where((vals < 0) & (vals >= -tiny), 0.0, vals)
    keep = vals != 0
    return idx[keep], vals[keep]


def polish_witness(cols: np.ndarray, y: np.ndarray, T: np.ndarray) -> np.ndarray | None:
    """Least squares on a support T: argmin ‖D_T x_T − y‖₂ (QR with pivoting, float64)."""
    if len(T) == 0 or len(T) > cols.shape[0]:
        return None
    try:
        sol = sla.lstsq(cols[:, T], y, lapack_driver="gelsy", check_finite=False)[0]
    except (np.linalg.LinAlgError, ValueError):
        return None
    return sol if np.all(np.isfinite(sol)) else None


def nnls_on_support(cols: np.ndarray, y: np.ndarray, T: np.ndarray) -> np.ndarray | None:
    """Non-negative least squares on a support T: argmin_{x ≥ 0} ‖D_T x − y‖₂ (scipy nnls)."""
    from scipy.optimize import nnls

    if len(T) == 0:
        return None
    try:
        sol = nnls(cols[:, T], y)[0]
    except (RuntimeError, ValueError):
        return None
    return sol if np.all(np.isfinite(sol)) else None


def witness_along(rows: np.ndarray, code: Code, v_idx: np.ndarray, v_vals: np.ndarray,
                   nonneg: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """A witness x = δ̃ + εv from a direction v ∈ ker D̃ along which ‖·‖₁ does not increase.

    φ(ε) = ‖δ̃ + εv‖₁ − ‖δ̃‖₁ is convex piecewise linear with φ(0) = 0 and φ'(0⁺) =
    sᵀv_S + ‖v_{Sᶜ}‖₁ (non-negative: 𝟙ᵀv, and ε ≤ min_{vᵢ<0} δ̃ᵢ/(−vᵢ) keeps x ≥ 0, with
    v_{Sᶜ} ≥ 0 required). When φ'(0⁺) ≤ 0, ε is the largest step with φ(ε) ≤ min φ / 2
    (the largest with φ(ε) ≤ 0 when min φ = 0), so x differs from δ̃ as much as possible.
    Returns (idx, vals) of x if it passes :func:`check_witness`, else None.
    """
    full = np.union1d(code.S, v_idx)
    d = np.zeros(len(full))
    d[np.searchsorted(full, code.S)] = code.vals
    v = np.zeros(len(full))
    np.add.at(v, np.searchsorted(full, v_idx), v_vals)
    if not np.any(v):
        return None
    if nonneg:
        if np.any(v[d == 0] < 0) or v.sum() > 1e-12 * float(np.abs(v).sum()):
            return None
        neg = v < 0
        eps = float(np.min(d[neg] / -v[neg])) if neg.any() else 1.0 / np.abs(v).max()
    else:
        slope0 = float(np.sum(np.sign(d[d != 0]) * v[d != 0]) + np.abs(v[d == 0]).sum())
        if slope0 > 1e-12 * float(np.abs(v).sum()):
            return None
        bp = -d / np.where(v != 0, v, np.inf)
        bp = np.unique(bp[(bp > 0) & np.isfinite(bp)])
        grid = np.concatenate([[0.0], bp, [bp[-1] * 2 + 1.0 if len(bp) else 1.0]])
        phi = np.abs(d[None, :] + grid[:, None] * v[None, :]).sum(axis=1) - np.abs(d).sum()
        tie = 1e-12 * code.l1
        target = 0.5 * phi.min() if phi.min() < -tie else tie
        ok = np.flatnonzero(phi <= target)
        j = int(ok[-1])
        eps = float(grid[j])
        if j + 1 < len(grid) and phi[j + 1] > phi[j]:  # walk on to φ = target
            eps += (target - phi[j]) / (phi[j + 1] - phi[j]) * (grid[j + 1] - grid[j])
        if eps <= 0:
            return None
    x = d + eps * v
    idx, vals = clean_sparse(full, x, nonneg)
    return (idx, vals) if check_witness(rows, code, idx, vals, nonneg) else None


def lp_dual_witness(atoms: UnitAtoms, code: Code, res, comp: np.ndarray, nonneg: bool):
    """From the certificate LP's dual (multipliers w ≥ 0 of the rows ±d̃ⱼᵀy ≤ t; ``res`` and
    ``comp`` = Sᶜ from :func:`rip_atoms.recovery.certificates.exact_certificate_lp`):
    z = w⁺ − w⁻ on Sᶜ, and v_S = −argmin‖D̃_S u − D̃_{Sᶜ} z‖ makes v = (v_S, z) ∈ ker D̃ with
    −sᵀv_S = t*‖z‖₁ ≥ ‖z‖₁."""
    marg = getattr(res.ineqlin, "marginals", None)
    if marg is None:
        return None
    w = -np.asarray(marg, dtype=np.float64)
    m = len(comp)
    z = w if nonneg else w[:m] - w[m:]
    keep = np.abs(z) > 1e-12 * max(np.abs(z).max(), 1e-300)
    if not keep.any():
        return None
    zi, zv = comp[keep], z[keep]
    rhs = atoms.rows64[zi].T @ zv
    u = np.linalg.lstsq(atoms.cols64[:, code.S], rhs, rcond=None)[0]
    for sign in (1.0, -1.0):
        v_idx = np.concatenate([code.S, zi])
        v_vals = sign * np.concatenate([-u, zv])
        wit = witness_along(atoms.rows64, code, v_idx, v_vals, nonneg)
        if wit is not None:
            return wit
    return None


def duplicate_swap(atoms: UnitAtoms, code: Code, nonneg: bool,
                    partners: dict[int, list[tuple[int, float]]]):
    """Move each δ̃ᵢ on an atom with a duplicate partner j onto j (coefficient sign(cos)·δ̃ᵢ;
    for non-negative codes only onto partners with cos > 0): the same ‖x‖₁, and
    ‖D̃x − y‖₂ = ‖Σᵢ δ̃ᵢ(sign(cos)d̃ⱼ − d̃ᵢ)‖₂, zero for exactly parallel atoms. Returns
    (idx, vals) of x if it passes :func:`check_witness`, else None (nothing to move, or a pair
    that is only near-parallel: then the swap misses y and proves nothing)."""
    x = dict(zip(code.S.tolist(), code.vals.tolist(), strict=True))
    moved = False
    for a, v in zip(code.S.tolist(), code.vals.tolist(), strict=True):
        for b, c in partners.get(a, ()):
            if nonneg and c <= 0:
                continue
            x[a] = x.get(a, 0.0) - v
            x[b] = x.get(b, 0.0) + math.copysign(1.0, c) * v
            moved = True
            break
    if not moved:
        return None
    idx = np.array(sorted(k for k, v in x.items() if v != 0.0), dtype=np.int64)
    vals = np.array([x[k] for k in idx])
    return (idx, vals) if check_witness(atoms.rows64, code, idx, vals, nonneg) else None


def first_witness(atoms: UnitAtoms, code: Code, candidates,
                   nonneg: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """The first (support, values) candidate that, cleaned, passes the witness check."""
    for T, xp in candidates:
        if xp is None:
            continue
        idx, vals = clean_sparse(T, xp, nonneg)
        if check_witness(atoms.rows64, code, idx, vals, nonneg):
            return idx, vals
    return None
