"""The three basis-pursuit solvers reach the optimum of an independent cvxpy solve."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from recovery_reference import cvxpy_bp, problems, random_codes

from rip_atoms.recovery import basis_pursuit


@settings(max_examples=20)
@given(problems, st.integers(1, 6))
@example((8, 1.75, 5, True), 5)  # HiGHS returned x with a −1.6e-15 entry
def test_basis_pursuit_solvers_reach_the_same_optimum(problem, k):
    H, ratio, seed, nonneg = problem
    N = int(H * ratio)
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((H, N)) * rng.uniform(0.5, 2.0, size=N)  # D as given, not unit
    x0 = random_codes(N, [min(k, H - 1)], nonneg, seed + 3)[0]
    y = D @ x0
    ref = cvxpy_bp(D, y, nonneg)
    opt = np.abs(ref).sum()
    for solver in ("homotopy", "lp", "cvxpy"):
        sol = basis_pursuit(D, y, nonneg=nonneg, solver=solver)
        if solver == "homotopy" and sol.status == "error":
            continue  # scikit-learn's LARS breaks down on rare degenerate steps; it says so
        assert sol.status == "optimal"
        assert sol.residual <= 1e-8 * np.linalg.norm(y)
        assert sol.l1 == pytest.approx(opt, rel=1e-6)
        if nonneg:
            assert sol.x.min() >= 0
