"""Independent references for the recovery tests: plain numpy/scipy/cvxpy, never the code under
test (helpers shared by tests/recovery/test_*.py).

Theorems checked (docs/design.md, "Exact ℓ1 recovery of a given code"):

* certified ⇒ δ is the unique basis-pursuit solution, so cvxpy (an independent interior-point
  solver, called directly here) returns δ to 1e-6, and the exact certificate LP (written out
  independently here with scipy's HiGHS) has optimum t* < 1;
* failed ⇒ the witness x is feasible (‖Dx − y‖ small, recomputed here), x ≠ δ, ‖x‖₁ ≤ ‖δ‖₁
  (x ≥ 0 for non-negative codes), v = x − δ ∈ ker D violates the null space property
  (‖v_{Sᶜ}‖₁ ≤ ‖v_S‖₁), and so the BP optimum (cvxpy) is no larger than ‖δ‖₁ and t* ≥ 1;
* coherence: K < (1 + 1/μ)/2 ⇒ every K-sparse code is certified (Donoho–Elad, Tropp);
* the three basis-pursuit solvers reach the same optimum;
* under a metric, classification is that of the corrected unit atoms W dᵢ/‖W dᵢ‖ with codes
  ‖W dᵢ‖·δᵢ; under the closed-form metric S̃ = (D Dᵀ)⁻¹ it is invariant to an invertible
  mixing A (D ↦ A D).

Expected values (coherence, certificates, corrected atoms) are computed in this file with plain
numpy/scipy/cvxpy, never taken from the code under test.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
from hypothesis import strategies as st
from scipy.optimize import linprog

from rip_atoms.recovery import STATUS_NAMES

CERT, FAIL, UND, INV = (STATUS_NAMES.index(s) for s in
                        ("certified", "failed", "undetermined", "invalid"))


def unit_gaussian(H: int, N: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((H, N))
    return D / np.linalg.norm(D, axis=0)


def random_codes(N: int, ks, nonneg: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    C = np.zeros((len(ks), N))
    for i, k in enumerate(ks):
        S = rng.choice(N, size=k, replace=False)
        v = rng.uniform(0.5, 2.0, size=k)
        if not nonneg:
            v *= rng.choice([-1.0, 1.0], size=k)
        C[i, S] = v
    return C


def cvxpy_bp(D: np.ndarray, y: np.ndarray, nonneg: bool) -> np.ndarray:
    """min ‖x‖₁ (or 1ᵀx, x ≥ 0) s.t. D x = y with cvxpy's default solver, tightly solved."""
    x = cp.Variable(D.shape[1], nonneg=nonneg)
    obj = cp.sum(x) if nonneg else cp.norm1(x)
    prob = cp.Problem(cp.Minimize(obj), [D @ x == y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11,
                       tol_feas=1e-11)
        except cp.SolverError:
            prob.solve()
    return np.asarray(x.value)


def certificate_lp(D: np.ndarray, S: np.ndarray, s: np.ndarray, nonneg: bool) -> float:
    """t* = min ‖D_{Sᶜ}ᵀ y‖_∞ s.t. D_Sᵀ y = s (non-negative: min max_{j∉S} dⱼᵀ y), by HiGHS."""
    H, N = D.shape
    Sc = np.setdiff1d(np.arange(N), S)
    C = D[:, Sc].T
    rows = [np.hstack([C, -np.ones((len(Sc), 1))])]
    if not nonneg:
        rows.append(np.hstack([-C, -np.ones((len(Sc), 1))]))
    A_ub = np.vstack(rows)
    A_eq = np.hstack([D[:, S].T, np.zeros((len(S), 1))])
    c = np.zeros(H + 1)
    c[-1] = 1
    r = linprog(c, A_ub=A_ub, b_ub=np.zeros(len(A_ub)), A_eq=A_eq, b_eq=s,
                bounds=(None, None), method="highs")
    if r.status == 3:  # unbounded below (non-negative codes only): t* = −∞
        return -np.inf
    assert r.status == 0
    return float(r.fun)


def mutual_coherence(D: np.ndarray) -> float:
    U = D / np.linalg.norm(D, axis=0)
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, 0)
    return float(G.max())


def check_decisions(D: np.ndarray, C: np.ndarray, res, nonneg: bool, lp_check: bool = True):
    """Every certified code is recovered by cvxpy; every witness re-checks; the LP agrees."""
    for i, delta in enumerate(C):
        st_i = res.status[i]
        S = np.flatnonzero(delta)
        y = D @ delta
        nd = np.linalg.norm(delta)
        if st_i == CERT:
            x = cvxpy_bp(D, y, nonneg)
            assert np.linalg.norm(x - delta) <= 1e-6 * nd, (i, res.method[i])
            if lp_check:
                assert certificate_lp(D, S, np.sign(delta[S]), nonneg) < 1
        elif st_i == FAIL:
            x = res.witness(i)
            assert np.linalg.norm(D @ x - y) <= 1e-9 * nd
            assert np.abs(x).sum() <= (1 + 1e-9) * np.abs(delta).sum()
            assert np.linalg.norm(x - delta) > 1e-6 * nd
            if nonneg:
                assert x.min() >= 0
            v = res.nsp_witness(i)
            np.testing.assert_allclose(v, x - delta, atol=1e-15 * nd)
            assert np.linalg.norm(D @ v) <= 1e-9 * nd
            Sc = np.setdiff1d(np.arange(D.shape[1]), S)
            assert np.abs(v[Sc]).sum() <= np.abs(v[S]).sum() + 1e-9 * np.abs(delta).sum()
            xb = cvxpy_bp(D, y, nonneg)
            assert np.abs(xb).sum() <= (1 + 1e-7) * np.abs(delta).sum()
            if lp_check:
                assert certificate_lp(D, S, np.sign(delta[S]), nonneg) >= 1 - 1e-7


problems = st.tuples(
    st.integers(8, 24),  # H
    st.floats(1.2, 3.0),  # N/H
    st.integers(0, 2**31 - 1),  # seed
    st.booleans(),  # nonneg
)
