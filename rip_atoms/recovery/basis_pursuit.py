"""Basis pursuit: min ‖x‖₁ s.t. D x = y, or min 𝟙ᵀx s.t. D x = y, x ≥ 0.

Three solvers (:func:`basis_pursuit`): the homotopy (scikit-learn's LARS-lasso path down to
α → 0, whose end is the minimum-ℓ1 interpolant; fast when the solution is sparse), HiGHS on the
LP, and cvxpy (the reference). The homotopy (:func:`lars`) also proposes witnesses and active
sets to :func:`rip_atoms.recovery.classify_recovery`, which verifies them in float64.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import NonFiniteError, ParameterError, ShapeMismatchError
from rip_atoms.recovery.problem import as_matrix
from rip_atoms.recovery.results import BPSolution
from rip_atoms.recovery.witnesses import polish_witness


def lars(cols: np.ndarray, y: np.ndarray, nonneg: bool, max_iter: int, alpha_min_rel: float):
    """scikit-learn's LARS-lasso path for min (1/2H)‖y − D x‖² + α‖x‖₁ (x ≥ 0 if non-negative)
    from αmax down to alpha_min_rel·αmax. y is rescaled so that αmax = 1e6 (sklearn stops at
    α ≤ α_min + 1.19e-7 in absolute terms). Returns (x at the end of the path, active set,
    iterations, capped); iterations = −1 and an empty active set when the path broke down."""
    from sklearn.linear_model import lars_path

    h = cols.shape[0]
    corr = cols.T @ y.astype(cols.dtype)
    c0 = float(corr.max() if nonneg else np.abs(corr).max())
    if not c0 > 0:
        return np.zeros(cols.shape[1]), np.array([], dtype=np.int64), 0, False
    scale = 1e6 * h / c0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, active, coef, n_iter = lars_path(
                cols, (y * scale).astype(cols.dtype), method="lasso", positive=nonneg,
                alpha_min=1e6 * alpha_min_rel, max_iter=max_iter, return_path=False,
                return_n_iter=True, copy_X=True,
            )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            # scikit-learn's path breaks on some degenerate steps (e.g. two coefficients
            # crossing zero at once): no proposal from this path; later tests decide
            return np.zeros(cols.shape[1]), np.array([], dtype=np.int64), -1, False
    coef = np.asarray(coef, dtype=np.float64).ravel() / scale
    return coef, np.asarray(active, dtype=np.int64), int(n_iter), int(n_iter) >= max_iter


def _solve_lp(A: np.ndarray, y: np.ndarray, nonneg: bool, time_limit: float | None):
    """HiGHS on min 𝟙ᵀx s.t. A x = y, x ≥ 0, or on the split x = u − v for signed BP."""
    from scipy.optimize import linprog

    n = A.shape[1]
    opts = {} if time_limit is None else {"time_limit": float(time_limit)}
    if nonneg:
        res = linprog(np.ones(n), A_eq=A, b_eq=y, bounds=(0, None), method="highs",
                      options=opts)
        x = res.x if res.x is not None else np.full(n, np.nan)
    else:
        res = linprog(np.ones(2 * n), A_eq=np.hstack([A, -A]), b_eq=y, bounds=(0, None),
                      method="highs", options=opts)
        x = res.x[:n] - res.x[n:] if res.x is not None else np.full(n, np.nan)
    status = "optimal" if res.status == 0 else ("cap" if res.status == 1 else res.message)
    return x, status, int(getattr(res, "nit", 0) or 0)


def _solve_cvxpy(A: np.ndarray, y: np.ndarray, nonneg: bool):
    """cvxpy with its default solver on the same problem (the reference)."""
    import cvxpy as cp

    n = A.shape[1]
    xv = cp.Variable(n, nonneg=nonneg)
    obj = cp.sum(xv) if nonneg else cp.norm1(xv)
    prob = cp.Problem(cp.Minimize(obj), [A @ xv == y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve()
    x = np.asarray(xv.value, dtype=np.float64) if xv.value is not None else np.full(n, np.nan)
    return x, "optimal" if prob.status == "optimal" else str(prob.status)


def _polish_solution(A: np.ndarray, y: np.ndarray, x: np.ndarray, nonneg: bool):
    """Least squares on the support {i : |xᵢ| > 1e-7·‖x‖_∞} (at most the H largest); kept only
    if it stays non-negative when required and does not increase the residual."""
    h, n = A.shape
    T = np.flatnonzero(np.abs(x) > 1e-7 * np.abs(x).max())
    if len(T) > h:
        T = np.sort(T[np.argsort(-np.abs(x[T]))[:h]])
    xp = polish_witness(A, y, T)
    if xp is not None and nonneg:
        xp = np.where((xp < 0) & (xp >= -1e-12 * np.abs(xp).max()), 0.0, xp)
    if xp is not None and (not nonneg or np.all(xp >= 0)):
        cand = np.zeros(n)
        cand[T] = xp
        if np.linalg.norm(A @ cand - y) <= np.linalg.norm(A @ x - y):
            return cand, True
    return x, False


#: a homotopy end x is proven optimal when ‖Dx − y‖₂ ≤ FEASIBLE_RTOL·‖y‖₂ and its dual
#: certificate's off-support correlations are at most 1 + DUAL_SLACK
FEASIBLE_RTOL = 1e-9
DUAL_SLACK = 1e-9


def _proven_optimal(A: np.ndarray, y: np.ndarray, x: np.ndarray, nonneg: bool) -> bool:
    """Whether x is a basis-pursuit optimum, proven by KKT: x feasible (‖Ax − y‖₂ ≤
    FEASIBLE_RTOL·‖y‖₂) and the min-ℓ2 dual z = A_T (A_TᵀA_T)⁻¹ s on T = supp(x), s = sign(x_T)
    (all ones for non-negative BP), meets ‖A_{Tᶜ}ᵀz‖_∞ ≤ 1 (non-negative: A_{Tᶜ}ᵀz ≤ 1) up to
    DUAL_SLACK. Then ‖x'‖₁ ≥ zᵀAx' = zᵀy = sᵀx_T = ‖x‖₁ for every feasible x'. A_T of deficient
    rank, or a dual above 1, proves nothing (False: the caller re-solves by LP)."""
    if np.linalg.norm(A @ x - y) > FEASIBLE_RTOL * max(np.linalg.norm(y), 1e-300):
        return False
    T = np.flatnonzero(x)
    if T.size == 0:
        return not np.any(y)
    AT = A[:, T]
    sv = np.linalg.svd(AT, compute_uv=False)
    if T.size > A.shape[0] or not sv[-1] > 1e-9 * sv[0]:
        return False
    s = np.ones(T.size) if nonneg else np.sign(x[T])
    z = AT @ np.linalg.solve(AT.T @ AT, s)
    off = np.delete(A.T @ z, T)
    worst = off.max(initial=-np.inf) if nonneg else np.abs(off).max(initial=0.0)
    return bool(worst <= 1.0 + DUAL_SLACK)


def basis_pursuit(
    D: Dictionary | np.ndarray,
    y: np.ndarray,
    *,
    nonneg: bool = False,
    solver: str = "homotopy",
    max_iter: int | None = None,
    time_limit: float | None = None,
    polish: bool = True,
) -> BPSolution:
    """Solve basis pursuit over D *as given* (no normalisation): min ‖x‖₁ s.t. D x = y, or with
    ``nonneg`` min 𝟙ᵀx s.t. D x = y, x ≥ 0.

    Parameters
    ----------
    D : Dictionary or numpy.ndarray
        H×N, columns are atoms.
    y : numpy.ndarray
        The signal, shape (H,).
    nonneg : bool
        Non-negative basis pursuit.
    solver : {"homotopy", "lp", "cvxpy"}
        ``"homotopy"``: scikit-learn ``lars_path(method="lasso")`` down to α → 0, whose end is
        the minimum-ℓ1 interpolant, reported "optimal" only when a dual certificate proves it
        (:func:`_proven_optimal`; otherwise, e.g. LARS on a tie of correlations, the LP solves
        the problem and the solution says ``solver="lp"``); ``"lp"``: scipy
        ``linprog(method="highs")`` with the split
        x = u − v, or x ≥ 0 directly; ``"cvxpy"``: the reference, cvxpy's default solver.
    max_iter : int, optional
        Homotopy iterations (default 8·max(H, 100)); hitting it gives status "cap".
    time_limit : float, optional
        HiGHS time limit in seconds (``"lp"`` only).
    polish : bool
        Re-solve by least squares on the support {i : |xᵢ| > 1e-7·‖x‖_∞} (at most the H
        largest; kept only if it stays non-negative when required and does not increase the
        residual).

    Returns
    -------
    BPSolution
        x, ‖x‖₁, the residual ‖D x − y‖₂, the solver's status ("optimal", "cap", "error" or
        the solver's word), iterations, whether x was polished, and the time taken.

    Examples
    --------
    >>> import numpy as np
    >>> D = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.8]])
    >>> sol = basis_pursuit(D, np.array([0.6, 0.8]))
    >>> np.round(sol.x, 9).tolist(), sol.status
    ([0.0, 0.0, 1.0], 'optimal')
    """
    t0 = time.perf_counter()
    A = as_matrix(D)
    y = np.asarray(y, dtype=np.float64).ravel()
    h, n = A.shape
    if y.shape != (h,):
        raise ShapeMismatchError(f"y has shape {y.shape}, expected ({h},)")
    if not np.isfinite(y).all():
        raise NonFiniteError("y holds non-finite values")
    n_iter = None
    if solver == "homotopy":
        cap = max_iter if max_iter is not None else 8 * max(h, 100)
        x, _, n_iter, capped = lars(np.asfortranarray(A), y, nonneg, cap, 0.0)
        status = "cap" if capped else ("error" if n_iter < 0 else "optimal")
        if polish and status == "optimal" and np.any(x):
            x, _ = _polish_solution(A, y, x, nonneg)
        if status == "optimal" and not _proven_optimal(A, y, x, nonneg):
            # the path's end is not proven (LARS on a tie or near-tie can end at an infeasible
            # or non-minimal point): the LP's answer instead, under its own name
            solver = "lp"
            x, status, n_iter = _solve_lp(A, y, nonneg, time_limit)
    elif solver == "lp":
        x, status, n_iter = _solve_lp(A, y, nonneg, time_limit)
    elif solver == "cvxpy":
        x, status = _solve_cvxpy(A, y, nonneg)
    else:
        raise ParameterError(f"solver must be 'homotopy', 'lp' or 'cvxpy', not {solver!r}")
    if nonneg and np.all(np.isfinite(x)):
        x = np.maximum(x, 0.0)  # HiGHS and cvxpy meet x ≥ 0 only to their tolerance (~1e-15)
    polished = False
    if polish and np.all(np.isfinite(x)) and np.any(x):
        x, polished = _polish_solution(A, y, x, nonneg)
    resid = float(np.linalg.norm(A @ x - y)) if np.all(np.isfinite(x)) else math.inf
    return BPSolution(x=x, l1=float(np.abs(x).sum()), residual=resid, solver=solver,
                      status=status, n_iter=n_iter, polished=polished,
                      seconds=time.perf_counter() - t0)
