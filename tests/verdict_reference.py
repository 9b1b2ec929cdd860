"""Independent float64 re-checks of the library's verdicts (issue 22, item 3): plain numpy/scipy,
never the code under test.

* :func:`corrected` — D̃ (unit columns W dᵢ/‖W dᵢ‖, W = (D Dᵀ)^(-1/2) by eigh for "self") and
  the scales ‖W dᵢ‖.
* :func:`witness_holds` — a failure witness x for δ̃: ‖D̃x − y‖₂ ≤ 1e-9‖y‖₂ + 1e-12(‖x‖₁ + ‖δ̃‖₁)
  (the library's stated tolerance, with room for the two computations of D̃ to differ),
  ‖x‖₁ ≤ (1 + 1e-9)‖δ̃‖₁, x ≥ 0 for non-negative codes, x ≠ δ̃.
* :func:`certificate_bound` — an exact dual certificate found here: the certificate LP written
  on y = y₀ + Q z (y₀ the min-norm solution of D̃_Sᵀ y = s, Q an orthonormal basis of its null
  space, so every z is feasible to float64 rounding), solved by HiGHS; returned is the rigorous
  value max_{j∈Sᶜ} |d̃ⱼᵀ y| + ‖D̃_Sᵀ y − s‖₂/σ_min(D̃_S) + 1e-13‖y‖₂ (non-negative: max d̃ⱼᵀ y).
  < 1 with σ_min/σ_max(D̃_S) > 1e-9 proves δ̃ the unique basis-pursuit solution.
* :func:`spark_by_enumeration`, :func:`rip_by_enumeration` — exact values on small cases from
  the SVD of every subset: spark = the smallest t with a t-subset of σ_min/σ_max ≤ 1e-9 (the
  proven standard), U_k = max σ_max² − 1, L_k = 1 − min σ_min².
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.optimize import linprog


def corrected(D: np.ndarray, metric: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(D̃ as H×N float64 unit columns, ‖W dᵢ‖) under "self" or raw (None/"raw")."""
    X = np.asarray(D, dtype=np.float64)
    if metric == "self":
        lam, Q = np.linalg.eigh(X @ X.T)
        X = (Q / np.sqrt(lam)) @ Q.T @ X
    n = np.linalg.norm(X, axis=0)
    return X / n, n


def witness_holds(U: np.ndarray, delta_t: np.ndarray, x: np.ndarray, nonneg: bool) -> bool:
    """Is x a failure witness of δ̃ over D̃ = U (module docstring)?"""
    y = U @ delta_t
    l1x, l1d = np.abs(x).sum(), np.abs(delta_t).sum()
    feasible = np.linalg.norm(U @ x - y) <= 1e-9 * np.linalg.norm(y) + 1e-12 * (l1x + l1d)
    return bool(feasible and l1x <= (1 + 1e-9) * l1d and (not nonneg or x.min() >= 0)
                and np.linalg.norm(x - delta_t) > 1e-6 * np.linalg.norm(delta_t))


def certificate_bound(U: np.ndarray, S: np.ndarray, s: np.ndarray, nonneg: bool) -> float:
    """The rigorous value of an independently found exact certificate (module docstring); inf
    when D̃_S is rank-deficient (σ_min/σ_max ≤ 1e-9)."""
    H, N = U.shape
    A = U[:, S]
    W, sig, _ = np.linalg.svd(A, full_matrices=True)
    if sig[-1] <= 1e-9 * sig[0]:
        return math.inf
    y0 = np.linalg.lstsq(A.T, s, rcond=None)[0]
    Q = W[:, len(S):]
    C = U[:, np.setdiff1d(np.arange(N), S)].T
    m, q = C.shape[0], Q.shape[1]
    blocks = [(C @ Q, C @ y0)] + ([] if nonneg else [(-C @ Q, -C @ y0)])
    A_ub = np.vstack([np.hstack([M, -np.ones((m, 1))]) for M, _ in blocks])
    b_ub = np.concatenate([-b for _, b in blocks])
    c = np.zeros(q + 1)
    c[-1] = 1.0
    r = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * q + [(-1.0, None)],
                method="highs")
    z = r.x[:q] if r.status == 0 else np.zeros(q)
    y = y0 + Q @ z
    val = C @ y
    value = float(val.max() if nonneg else np.abs(val).max())
    return value + float(np.linalg.norm(A.T @ y - s)) / sig[-1] + 1e-13 * np.linalg.norm(y)


def _rho(U: np.ndarray, T) -> float:
    s = np.linalg.svd(U[:, list(T)], compute_uv=False)
    return 0.0 if len(T) > U.shape[0] else float(s[-1] / s[0])


def spark_by_enumeration(U: np.ndarray, rtol: float = 1e-9) -> float:
    """The smallest t with a t-subset of σ_min/σ_max ≤ rtol (∞ when there is none)."""
    H, N = U.shape
    for t in range(1, min(N, H + 1) + 1):
        if any(_rho(U, T) <= rtol for T in itertools.combinations(range(N), t)):
            return float(t)
    return math.inf


def rip_by_enumeration(U: np.ndarray, k: int) -> tuple[float, float]:
    """(U_k, L_k) = (max σ_max² − 1, 1 − min σ_min²) over every k-subset (σ of D̃_S, 0 if k > H)."""
    H, N = U.shape
    up, lo = -math.inf, math.inf
    for T in itertools.combinations(range(N), k):
        s = np.linalg.svd(U[:, list(T)], compute_uv=False)
        up = max(up, float(s[0] ** 2))
        lo = min(lo, 0.0 if k > H else float(s[-1] ** 2))
    return up - 1.0, 1.0 - lo
