"""Exact ℓ1 recovery: every decision is a proof that an independent solver confirms.

Theorems checked (DESIGN.md, "Exact ℓ1 recovery of a given code"; cs-methods §3.1):

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

import os
import warnings

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from rip_atoms.errors import InvalidCodeError, NonFiniteError, ShapeMismatchError
from rip_atoms.recovery import (
    STATUS_NAMES,
    basis_pursuit,
    classify_recovery,
    dual_certificate,
    fuchs_certificate,
)
from rip_atoms.synthetic import simplex_etf, union_of_bases

CERT, FAIL, UND, INV = (STATUS_NAMES.index(s) for s in
                        ("certified", "failed", "undetermined", "invalid"))


# ---------------------------------------------------------------------------------------------
# independent references
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# decisions are proofs
# ---------------------------------------------------------------------------------------------
@given(problems)
def test_certified_codes_are_recovered_and_witnesses_recheck(problem):
    H, ratio, seed, nonneg = problem
    N = int(H * ratio)
    D = unit_gaussian(H, N, seed)
    rng = np.random.default_rng(seed + 1)
    ks = rng.integers(1, max(2, int(0.7 * H)), size=4)
    C = random_codes(N, ks, nonneg, seed + 2)
    res = classify_recovery(D, C, nonneg=nonneg, metric=None)
    assert res.invalid == 0
    check_decisions(D, C, res, nonneg)


@pytest.mark.parametrize("nonneg", [False, True])
def test_signed_and_nonneg_paths_agree_with_cvxpy_near_the_transition(nonneg):
    # codes around the weak threshold of a 30×60 Gaussian, where both outcomes occur and
    # every stage (Fuchs, ADMM, homotopy) gets used
    D = unit_gaussian(30, 60, 7)
    ks = [3, 6, 9, 11, 13, 15, 17, 19] if not nonneg else [5, 10, 14, 16, 18, 20, 22, 24]
    C = random_codes(60, ks * 2, nonneg, 8)
    res = classify_recovery(D, C, nonneg=nonneg, metric=None)
    assert res.undetermined == 0
    assert res.certified > 0 and res.failed > 0
    check_decisions(D, C, res, nonneg)
    # cvxpy's verdict (recovered or not, at 1e-6) is ours on every code
    for i, delta in enumerate(C):
        x = cvxpy_bp(D, D @ delta, nonneg)
        recovered = np.linalg.norm(x - delta) <= 1e-6 * np.linalg.norm(delta)
        assert recovered == (res.status[i] == CERT), i


def _coherence_cases():
    yield simplex_etf(12).atoms, "etf12"
    yield simplex_etf(20).atoms, "etf20"
    yield union_of_bases(16, 2, seed=1).atoms, "onb16x2"
    yield union_of_bases(32, 2, seed=2).atoms, "onb32x2"
    yield unit_gaussian(60, 70, 3), "gauss60x70"


@pytest.mark.parametrize("nonneg", [False, True])
@pytest.mark.parametrize("case", list(_coherence_cases()), ids=lambda c: c[1])
def test_coherence_condition_certifies_every_code(case, nonneg):
    D = np.asarray(case[0], dtype=np.float64)
    mu = mutual_coherence(D)
    K = 1
    while (2 * (K + 1) - 1) * mu < 1:  # largest K with (2K − 1)μ < 1
        K += 1
    assert (2 * K - 1) * mu < 1
    rng = np.random.default_rng(4)
    ks = rng.integers(1, K + 1, size=12)
    ks[0] = K
    C = random_codes(D.shape[1], ks, nonneg, 5)
    res = classify_recovery(D, C, nonneg=nonneg, metric=None)
    assert res.certified == len(C), res.status_names()
    # Tropp: under the coherence condition the Fuchs certificate itself is < 1
    assert np.all(res.fuchs < 1)


@settings(max_examples=20)
@given(problems, st.integers(1, 6))
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


def test_fuchs_values_match_the_closed_form():
    D = unit_gaussian(40, 100, 11)
    for nonneg in (False, True):
        C = random_codes(100, [1, 3, 5, 8, 12, 12, 20], nonneg, 12)
        res = classify_recovery(D, C, nonneg=nonneg, metric=None, witness_iters=0,
                                max_iter=1, lp=False)
        for i, delta in enumerate(C):
            S = np.flatnonzero(delta)
            s = np.ones(len(S)) if nonneg else np.sign(delta[S])
            DS = D[:, S]
            y0 = DS @ np.linalg.solve(DS.T @ DS, s)
            c = np.delete(D.T @ y0, S)
            ref = c.max() if nonneg else np.abs(c).max()
            assert res.fuchs[i] == pytest.approx(ref, abs=1e-10)
            single = fuchs_certificate(D, S, delta[S], nonneg=nonneg)
            assert single.value == pytest.approx(ref, abs=1e-10)
            assert single.bound >= single.value
            assert single.certifies() == (res.method[i] == 1)


def test_dual_certificate_lp_value_is_the_exact_threshold():
    D = unit_gaussian(20, 40, 13)
    C = random_codes(40, [2, 5, 8, 10, 12, 14], False, 14)
    res = classify_recovery(D, C, metric=None)
    for i, delta in enumerate(C):
        S = np.flatnonzero(delta)
        cert = dual_certificate(D, S, delta[S])
        ref = certificate_lp(D, S, np.sign(delta[S]), False)
        assert cert.lp_value == pytest.approx(ref, abs=1e-7)
        assert cert.value == pytest.approx(ref, abs=1e-6)
        assert (ref < 1) == (res.status[i] == CERT)


# ---------------------------------------------------------------------------------------------
# non-uniqueness: ties and rank
# ---------------------------------------------------------------------------------------------
def test_duplicate_atoms_give_tie_witnesses():
    D = unit_gaussian(20, 40, 15)
    D[:, 1] = D[:, 0]
    C = np.zeros((3, 40))
    C[0, 0] = 1.0  # δ on atom 0: moving it to its duplicate costs nothing
    C[1, [0, 1]] = [1.0, 2.0]  # D_S rank-deficient
    C[2, [0, 1]] = [1.0, -2.0]  # y = −d₀: ℓ1 optimum 1 < 3
    for nonneg in (False, True):
        Cn = np.abs(C) if nonneg else C
        res = classify_recovery(D, Cn, nonneg=nonneg, metric=None)
        assert np.all(res.status == FAIL), res.status_names()
        check_decisions(D, Cn, res, nonneg, lp_check=False)
    res = classify_recovery(D, C, metric=None)
    assert np.abs(res.witness(2)).sum() < np.abs(C[2]).sum() - 0.5


def test_more_nonzeros_than_dimensions_is_not_unique():
    D = unit_gaussian(10, 30, 16)
    C = random_codes(30, [11, 15], False, 17)
    res = classify_recovery(D, C, metric=None)
    assert np.all(res.status == FAIL)
    check_decisions(D, C, res, False, lp_check=False)


def test_never_guesses_without_a_proof():
    D = unit_gaussian(40, 120, 18)
    C = random_codes(120, [14, 16, 18, 30], False, 19)
    res = classify_recovery(D, C, metric=None, witness_iters=0, max_iter=1, lp=False)
    fuchs_ok = res.method == 1
    assert (~fuchs_ok).sum() >= 2
    assert np.all(res.status[~fuchs_ok] == UND)
    assert np.all(res.homotopy_iters[~fuchs_ok] <= 1)


# ---------------------------------------------------------------------------------------------
# metric, chunking, input forms, output file
# ---------------------------------------------------------------------------------------------
def test_metric_classifies_the_corrected_atoms_with_rescaled_codes():
    from rip_atoms.metric import AIPMetric

    rng = np.random.default_rng(20)
    H, N = 16, 40
    D = rng.standard_normal((H, N)) * rng.uniform(0.3, 3.0, size=N)
    m = AIPMetric.from_dictionary(D)
    # independent corrected atoms: W = (D Dᵀ)^{-1/2} (the self metric uses D as given),
    # then d̃ = W d/‖W d‖
    lam, Q = np.linalg.eigh(D @ D.T)
    W = (Q / np.sqrt(lam)) @ Q.T
    WD = W @ D
    scale = np.linalg.norm(WD, axis=0)
    Dt = WD / scale
    C = random_codes(N, [2, 4, 6, 8, 10, 12], False, 21)
    a = classify_recovery(D, C, metric=m)
    b = classify_recovery(Dt, C * scale, metric=None)
    c = classify_recovery(D, C, metric="self")
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.status, c.status)
    np.testing.assert_allclose(a.fuchs, b.fuchs, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(a.atom_scale, scale, rtol=1e-10)


def test_self_metric_is_invariant_under_mixing():
    from rip_atoms.metric import AIPMetric

    rng = np.random.default_rng(22)
    H, N = 16, 40
    D = rng.standard_normal((H, N))
    A = rng.standard_normal((H, H)) + 3 * np.eye(H)
    C = random_codes(N, [2, 4, 6, 8, 10, 12], True, 23)
    # S̃ = (D Dᵀ)⁻¹ on the atoms as given: W' A D = Q W D with Q orthogonal, so D̃' = Q D̃
    a = classify_recovery(D, C, nonneg=True, metric=AIPMetric.from_dictionary(D, atoms="raw"))
    b = classify_recovery(A @ D, C, nonneg=True,
                          metric=AIPMetric.from_dictionary(A @ D, atoms="raw"))
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_allclose(a.fuchs, b.fuchs, rtol=1e-6, atol=1e-7)


def test_chunking_and_input_form_do_not_change_answers():
    D = unit_gaussian(24, 60, 24)
    C = random_codes(60, [2, 5, 8, 10, 12, 14, 16, 3, 9], False, 25)
    ref = classify_recovery(D, C, metric=None)
    for chunk in (1, 4):
        r = classify_recovery(D, C, metric=None, chunk_size=chunk)
        np.testing.assert_array_equal(r.status, ref.status)
        np.testing.assert_array_equal(r.method, ref.method)
    for form in (sp.csr_matrix(C), sp.coo_matrix(C), sp.csc_matrix(C)):
        r = classify_recovery(D, form, metric=None)
        np.testing.assert_array_equal(r.status, ref.status)
    r = classify_recovery(D, C[3], metric=None)  # one code as a vector
    assert r.n == 1 and r.status[0] == ref.status[3]


def test_output_file_is_written_atomically_and_loads_without_pickle(tmp_path):
    D = unit_gaussian(20, 40, 26)
    C = random_codes(40, [2, 6, 10, 14, 18], False, 27)
    C = np.vstack([C, np.zeros(40)])
    path = tmp_path / "per_code.npz"
    res = classify_recovery(D, C, metric=None, out=path)
    assert sorted(os.listdir(tmp_path)) == ["per_code.npz"]
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["status"], res.status)
        np.testing.assert_array_equal(z["method"], res.method)
        np.testing.assert_array_equal(z["certificate"], res.certificate)
        W = sp.csr_matrix((z["witness_data"], z["witness_indices"], z["witness_indptr"]),
                          shape=tuple(z["shape"]))
        assert abs(W - res.witnesses).max() == 0
        assert list(z["status_names"]) == list(STATUS_NAMES)
        import json

        summary = json.loads(str(z["summary"]))
        assert summary["n"] == 6 and summary["invalid"] == 1
    d = res.to_dict()
    for key in ("n", "certified", "failed", "undetermined", "invalid", "methods", "seconds"):
        assert key in d
    assert d["certified"] + d["failed"] + d["undetermined"] + d["invalid"] == d["n"]


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_structural_problems_raise_naming_the_code():
    D = unit_gaussian(10, 20, 28)
    with pytest.raises(ShapeMismatchError, match=r"codes\.npy: codes have 19 columns .* N = 20"):
        classify_recovery(D, np.zeros((3, 19)), metric=None, source="codes.npy")
    C = random_codes(20, [2, 3, 4], False, 29)
    C[2, 5] = np.nan
    with pytest.raises(NonFiniteError, match=r"code 2 .*atom 5"):
        classify_recovery(D, C, metric=None)
    with pytest.raises(NonFiniteError, match=r"code 2 .*atom 5"):
        classify_recovery(D, sp.csr_matrix(C), metric=None)
    with pytest.raises(InvalidCodeError, match="real numbers"):
        classify_recovery(D, np.zeros((2, 20), dtype=complex), metric=None)
    with pytest.raises(ShapeMismatchError):
        classify_recovery(D, np.zeros((2, 2, 20)), metric=None)


def test_bad_codes_are_reported_by_index_and_the_batch_goes_on():
    D = unit_gaussian(20, 40, 30)
    D[:, 7] = 0  # a dead atom
    good = random_codes(40, [2, 3], True, 31)
    good[:, 7] = 0
    C = np.vstack([good[0], np.zeros(40), good[1], good[1], good[1]])
    C[3, 4] = -1.0  # negative entry of a non-negative code
    C[4, 7] = 1.0  # support on the dead atom
    res = classify_recovery(D, C, nonneg=True, metric=None)
    assert list(res.status_names()) == ["certified", "invalid", "certified", "invalid",
                                        "invalid"]
    ex = {e["index"]: e["reason"] for e in res.invalid_examples()}
    assert ex == {1: "empty support", 3: "negative entry in a non-negative code",
                  4: "support on a dead atom"}
    # the same negative entry is fine for signed codes
    assert classify_recovery(D, C[3], metric=None).status[0] == CERT


def test_single_code_functions_reject_bad_supports():
    D = unit_gaussian(10, 20, 32)
    with pytest.raises(InvalidCodeError, match="empty support"):
        fuchs_certificate(D, [])
    with pytest.raises(InvalidCodeError):
        dual_certificate(D, [3, 3])
    with pytest.raises(InvalidCodeError):
        fuchs_certificate(D, [1, 25])
