"""This library's basis pursuit and ℓ1 classification against scipy's HiGHS, an LP solver it
does not control (docs/testing.md). Every LP here is written out in the test.

* ``basis_pursuit`` (homotopy and LP; signed and non-negative) returns a feasible x whose ℓ1 norm
  is HiGHS's optimum (:func:`~rip_atoms.testing.properties.assert_l1_minimal`) whenever it says
  "optimal". Found: the homotopy says "optimal" for an infeasible or non-minimal x when
  correlations |dⱼᵀy| tie (equal code magnitudes on symmetric atoms, duplicate atoms) or nearly
  tie (a Gaussian 2×13 case where plain ``lars_path`` on y is right and the homotopy's rescaled
  y is not). Fixed: the homotopy now says "optimal" only with a dual certificate, else the LP
  answers (``solver="lp"``); ``test_basis_pursuit_homotopy_on_a_tie`` keeps the four shrunk
  counterexamples. The LP solver and ``classify_recovery`` (which re-checks every answer in
  float64) hold.
* ``classify_recovery``: a *certified* code is the unique HiGHS optimum (HiGHS returns δ);
  a *failed* code's witness is feasible with ‖x‖₁ ≤ ‖δ‖₁, and the exact certificate
  t* = min t s.t. D_Sᵀy = s, |dⱼᵀy| ≤ t (j ∉ S) solved by HiGHS is ≥ 1 (< 1 for certified
  codes) — the Fuchs/Zhang–Yin–Cheng theorem: δ is the unique ℓ1 solution iff D_S has full
  column rank and t* < 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from scipy.optimize import linprog

from rip_atoms.recovery import STATUS_NAMES, basis_pursuit, classify_recovery
from rip_atoms.testing import codes_by_support, gaussian_dictionaries, integer_dictionaries
from rip_atoms.testing.properties import assert_l1_minimal


@st.composite
def bp_cases(draw):
    """Any unit dictionary (integer ones with ties and duplicates, Gaussian ones), a code of any
    sparsity K ≤ N, signed or non-negative."""
    D = draw(st.one_of(integer_dictionaries(dim=st.integers(1, 6), n_atoms=st.integers(1, 10)),
                       gaussian_dictionaries(dim=st.integers(2, 8), n_atoms=st.integers(2, 16))))
    K = draw(st.integers(1, D.shape[1]))
    signs = draw(st.sampled_from(["signed", "nonneg"]))
    return D, draw(codes_by_support(D.shape[1], K, signs=signs))[0], signs == "nonneg"


def check_bp(D, code, nonneg, solver, record=True):
    sol = basis_pursuit(D, D @ code, nonneg=nonneg, solver=solver)
    if record:  # hypothesis's statistics (only inside a @given test)
        event(f"{sol.solver}: {sol.status}")
    if sol.status == "optimal":  # "cap"/"error" make no claim (BPSolution's contract)
        assert_l1_minimal(lambda D, y: sol.x, D, D @ code, nonneg=nonneg, rtol=1e-7)


@given(bp_cases())
def test_basis_pursuit_lp_reaches_the_highs_optimum(case):
    check_bp(*case, "lp")


@given(bp_cases())
def test_basis_pursuit_homotopy_reaches_the_highs_optimum(case):
    check_bp(*case, "homotopy")


S2, S3 = 2 ** -0.5, 3 ** -0.5
TIES = {  # shrunk counterexamples (signed BP): exact ties of correlations, δ = 1 on `support`
    "tie, non-minimal": ([[0, 1 / 3, -S2, -S3], [-S2, -2 / 3, 0, -S3], [-S2, -2 / 3, -S2, -S3]],
                         [0, 1]),
    "tie, infeasible": ([[0, S2, S3, S3, S3], [S2, 0, S3, S3, S3], [S2, S2, S3, S3, S3]],
                        [0, 1]),
    "duplicate atoms, infeasible": ([[0, 0, 0, .5, .5], [0, S2, S3, .5, .5], [S2, 0, S3, .5, .5],
                                     [S2, S2, S3, .5, .5]], [0, 1, 3]),
    # Gaussian, H = 2, N = 13: three correlations within 4e-4 of each other (a near-tie); plain
    # lars_path on y finds the optimum 1.5296, the homotopy's rescaled y (α_max = 1e6) does not
    "near-tie, non-minimal": ([
        [0.44379554, -0.80944922, 0.29109464, 0.00894524, 0.47845911, 0.54852766, -0.08468917,
         -0.98888679, -0.99398357, -0.65072782, 0.1930115, -0.98250496, -0.19483302],
        [0.89612807, 0.58718988, -0.95669426, 0.99995999, 0.87810983, 0.83613241, 0.99640742,
         -0.14867049, -0.10952925, 0.75931107, -0.98119649, 0.18623644, 0.98083643]], [0, 1]),
}


@pytest.mark.parametrize("kind", sorted(TIES))
def test_basis_pursuit_homotopy_on_a_tie(kind):
    D, support = TIES[kind]
    D = np.array(D) / np.linalg.norm(D, axis=0)
    code = np.zeros(D.shape[1])
    code[support] = 1.0
    check_bp(D, code, False, "homotopy", record=False)


def highs_bp(D, y, nonneg):
    A = D if nonneg else np.hstack([D, -D])
    res = linprog(np.ones(A.shape[1]), A_eq=A, b_eq=y, bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return res.x if nonneg else res.x[: D.shape[1]] - res.x[D.shape[1]:]


def highs_certificate(D, code, nonneg):
    """t* = min t s.t. D_Sᵀy = s, dⱼᵀy ≤ t and (signed) −dⱼᵀy ≤ t for j ∉ S, over (y, t) with
    t ≥ −1 (the one-sided non-negative LP is otherwise unbounded below; t* < 1 is unchanged)."""
    H, N = D.shape
    S = np.flatnonzero(code)
    rest = np.setdiff1d(np.arange(N), S)
    if rest.size == 0:
        return -np.inf
    E = D[:, rest].T
    rows = E if nonneg else np.vstack([E, -E])
    A_ub = np.hstack([rows, -np.ones((rows.shape[0], 1))])
    A_eq = np.hstack([D[:, S].T, np.zeros((S.size, 1))])
    res = linprog(np.r_[np.zeros(H), 1.0], A_ub=A_ub, b_ub=np.zeros(rows.shape[0]), A_eq=A_eq,
                  b_eq=np.sign(code[S]), bounds=[(None, None)] * H + [(-1, None)], method="highs")
    return res.fun if res.status == 0 else np.inf  # infeasible: no y with D_Sᵀy = s


@given(bp_cases())
def test_classify_recovery_agrees_with_highs(case):
    D, code, nonneg = case
    res = classify_recovery(D, code[None, :], nonneg=nonneg, metric="raw")
    status = STATUS_NAMES[res.status[0]]
    event(f"classify_recovery: {status}")
    y, l1 = D @ code, np.abs(code).sum()
    t_star = highs_certificate(D, code, nonneg)
    if status == "certified":
        assert t_star < 1
        np.testing.assert_allclose(highs_bp(D, y, nonneg), code, atol=1e-7 * max(1.0, l1))
    elif status == "failed":
        x = res.witness(0)
        assert np.linalg.norm(D @ x - y) <= 1e-6 * max(1.0, l1)
        assert np.abs(x).sum() <= l1 * (1 + 1e-6) and (not nonneg or x.min() >= 0)
        assert np.linalg.norm(x - code) > 1e-9 * l1
        rank_deficient = np.linalg.matrix_rank(D[:, np.flatnonzero(code)]) < np.count_nonzero(
            code)
        assert rank_deficient or t_star >= 1 - 1e-7
