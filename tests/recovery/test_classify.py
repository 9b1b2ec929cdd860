"""classify_recovery: every decision is a proof that an independent solver confirms.

References and the theorems checked: recovery_reference.py (plain numpy/scipy/cvxpy).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from recovery_reference import (
    CERT,
    FAIL,
    UND,
    check_decisions,
    cvxpy_bp,
    mutual_coherence,
    problems,
    random_codes,
    unit_gaussian,
)

from rip_atoms.errors import InvalidCodeError, NonFiniteError, ShapeMismatchError
from rip_atoms.recovery import classify_recovery
from rip_atoms.synthetic import simplex_etf, union_of_bases

# decisions at precision tolerances, re-checked by an independent solver
pytestmark = pytest.mark.sensitive


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
