"""RIP brackets: bounds bracket the enumerated truth, witnesses re-check, closed forms hold."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rip_atoms import Dictionary
from rip_atoms.errors import DeadAtomsError, ParameterError
from rip_atoms.metric import fit_metric
from rip_atoms.rip import rip_bounds, sdp_sparse_eigen_bounds, witness_eigenvalues
from rip_atoms.synthetic import random_orthogonal, simplex_etf, union_of_bases

# the searches run under wall-clock budgets; bounds are compared at 1e-9–1e-12
pytestmark = pytest.mark.sensitive

SLACK = 1e-9


def exact_ric(U: np.ndarray, k: int):
    """Independent enumeration: max λmax and min λmin of G_S over all |S| = k."""
    G = U.T @ U
    lmax, lmin = -np.inf, np.inf
    for S in itertools.combinations(range(U.shape[1]), k):
        w = np.linalg.eigvalsh(G[np.ix_(S, S)])
        lmax, lmin = max(lmax, w[-1]), min(lmin, w[0])
    return lmax - 1, 1 - lmin


def unit(D):
    return D / np.linalg.norm(D, axis=0)


def gen_welch(H, N, k):
    return math.sqrt(max(0.0, (k - 1) * (N - H) / (H * (N - 1))))


small = st.tuples(st.integers(2, 6), st.integers(4, 11), st.integers(0, 2**31 - 1))


@given(small, st.data())
def test_search_brackets_the_enumerated_truth(shape, data):
    H, N, seed = shape
    k = data.draw(st.integers(2, min(N, 5)))
    D = np.random.default_rng(seed).standard_normal((H, N))
    res = rip_bounds(D, [k], "raw", budget_s=0.5, enumerate_max=0, sdp_max_atoms=0, seed=1)
    b = res[k]
    U, L = exact_ric(unit(D), k)
    assert b.U_lower - SLACK <= U <= b.U_upper + SLACK
    assert b.L_lower - SLACK <= L <= b.L_upper + SLACK
    assert b.delta_lower - SLACK <= max(U, L) <= b.delta_upper + SLACK
    assert b.delta_upper >= gen_welch(H, N, k) - SLACK  # no upper bound below the floor
    # every witness re-checks in float64
    wu = witness_eigenvalues(D, b.witness_U, "raw")
    wl = witness_eigenvalues(D, b.witness_L, "raw")
    assert len(b.witness_U) == k and len(b.witness_L) == k
    assert wu.U == pytest.approx(b.U_lower, abs=1e-12)
    if k <= H:
        assert wl.L == pytest.approx(b.L_lower, abs=1e-12)


@given(small)
def test_delta2_equals_mu(shape):
    H, N, seed = shape
    D = np.random.default_rng(seed).standard_normal((H, N))
    G = np.abs(unit(D).T @ unit(D))
    np.fill_diagonal(G, 0)
    b = rip_bounds(D, 2, "raw", budget_s=0.1)[2]
    if G.max() >= 1 - 1e-6:  # a duplicate pair counts as parallel: only δ₂ ≤ 1 is certified
        assert not b.exact and b.U_upper == b.L_upper == b.delta_upper == 1.0
        for v in (b.U_lower, b.L_lower, b.delta_lower):
            assert v == pytest.approx(G.max(), abs=1e-12)
        return
    assert b.exact
    for v in (b.U_lower, b.U_upper, b.L_lower, b.L_upper, b.delta_lower, b.delta_upper):
        assert v == pytest.approx(G.max(), abs=1e-12)


@given(st.integers(3, 6), st.integers(7, 12), st.integers(0, 2**31 - 1))
def test_enumeration_is_exact_and_labelled(H, N, seed):
    D = np.random.default_rng(seed).standard_normal((H, N))
    res = rip_bounds(D, [3, 4], "raw", budget_s=1.0)
    for k in (3, 4):
        b = res[k]
        U, L = exact_ric(unit(D), k)
        assert b.exact
        assert b.U_lower == pytest.approx(U, abs=1e-12) and b.U_upper == b.U_lower
        assert b.L_lower == pytest.approx(L, abs=1e-12) and b.L_upper == b.L_lower
        assert "enumeration" in b.methods["U_lower"]


def test_simplex_etf_closed_form():
    H = 9
    res = rip_bounds(simplex_etf(H), [2, 3, 4, 6], "raw", budget_s=0.5, enumerate_max=0)
    for b in res.brackets:
        k = b.k
        # G_S = (1 + 1/H) I − (1/H) 11ᵀ: λmin = 1 − (k−1)/H, λmax = 1 + 1/H
        assert b.L_lower <= (k - 1) / H + SLACK <= b.L_upper + 2 * SLACK
        assert b.L_lower == pytest.approx((k - 1) / H, abs=1e-12)  # the search finds it
        assert b.U_lower == pytest.approx(1 / H, abs=1e-12)
        assert b.delta_upper == pytest.approx((k - 1) / H, abs=1e-4)  # Babel is tight on ETFs


def test_orthonormal_basis_has_delta_zero():
    Q = random_orthogonal(12, seed=0)
    res = rip_bounds(Q, [2, 3, 5], "raw", budget_s=0.3)
    for b in res.brackets:
        assert abs(b.U_lower) < 1e-12 and abs(b.L_lower) < 1e-12
        assert b.delta_upper < 1e-4  # certified up to the float32 pass tolerance
    res = rip_bounds(Dictionary.neurons(7), [3, 7], "raw", budget_s=0.3)
    assert all(b.delta_upper < 1e-5 for b in res.brackets)


def test_k_above_dimension_has_lower_constant_one():
    D = np.random.default_rng(0).standard_normal((4, 30))
    b = rip_bounds(D, [5], "raw", budget_s=0.3)[5]
    assert b.L_lower == 1.0 and b.L_upper == 1.0
    assert any("k > H" in n for n in b.notes)
    assert witness_eigenvalues(D, b.witness_L, "raw").lambda_min < 1e-12


def test_brackets_are_monotone_in_k():
    D = np.random.default_rng(1).standard_normal((8, 60))
    res = rip_bounds(D, [3, 4, 5, 6], "raw", budget_s=0.3, enumerate_max=0)
    ups = [b.U_upper for b in res.brackets]
    lups = [b.L_upper for b in res.brackets]
    assert ups == sorted(ups) and lups == sorted(lups)
    for b in res.brackets:
        assert b.U_lower <= b.U_upper and b.L_lower <= b.L_upper


def test_sdp_bound_is_valid_and_tightens_gershgorin():
    rng = np.random.default_rng(2)
    U = unit(rng.standard_normal((5, 9)))
    G = U.T @ U
    for k in (2, 3, 4):
        up, lo = sdp_sparse_eigen_bounds(G, k)
        Ue, Le = exact_ric(U, k)
        assert up >= 1 + Ue - 1e-9 and lo <= 1 - Le + 1e-9
        assert up <= np.linalg.eigvalsh(G)[-1] + 1e-9  # never worse than the spectral bound
    b = rip_bounds(U, [3], "raw", budget_s=0.3, enumerate_max=0, sdp_max_atoms=20)[3]
    Ue, _ = exact_ric(U, 3)
    assert b.U_upper >= Ue - SLACK


def test_metric_equals_raw_on_the_corrected_dictionary():
    rng = np.random.default_rng(3)
    D = rng.standard_normal((5, 10))
    m = fit_metric(rng.standard_normal((300, 5)) @ rng.standard_normal((5, 5)))
    a = rip_bounds(D, [3], m, budget_s=0.5)[3]
    Ue, Le = exact_ric(np.asarray(m.corrected(Dictionary(D)).atoms), 3)
    assert a.U_lower == pytest.approx(Ue, abs=1e-10) and a.L_lower == pytest.approx(Le, abs=1e-10)
    assert witness_eigenvalues(D, a.witness_U, m).U == pytest.approx(a.U_lower, abs=1e-12)


def test_budget_that_runs_out_returns_a_labelled_bracket():
    D = np.random.default_rng(4).standard_normal((20, 1500))
    b = rip_bounds(D, [6], "raw", budget_s=1e-4, enumerate_max=0)[6]
    assert b.search == "budget exhausted"
    assert 0 < b.U_lower <= b.U_upper and 0 < b.L_lower <= b.L_upper
    assert witness_eigenvalues(D, b.witness_U, "raw").U == pytest.approx(b.U_lower, abs=1e-12)


def test_union_of_bases_bracket():
    d = union_of_bases(8, 2, seed=5)
    b = rip_bounds(d, [4], "raw", budget_s=0.5)[4]
    U, L = exact_ric(d.unit(), 4)
    assert b.exact and b.U_lower == pytest.approx(U, abs=1e-12)


@pytest.mark.parametrize("bad", [0, -1, 31])
def test_bad_k(bad):
    with pytest.raises(ParameterError):
        rip_bounds(np.random.default_rng(0).standard_normal((4, 30)), [bad], "raw")


def test_bad_budget_and_dead_atoms():
    D = np.random.default_rng(0).standard_normal((4, 30))
    with pytest.raises(ParameterError, match="budget"):
        rip_bounds(D, [3], "raw", budget_s=0)
    D[:, 3] = 0
    with pytest.raises(DeadAtomsError, match="dead"):
        rip_bounds(D, [3], "raw")
    b = rip_bounds(D, [3], "raw", drop_dead=True, budget_s=0.2)[3]
    assert 3 not in b.witness_U and any("dead" in n for n in b.notes)


def test_witness_rejects_bad_supports():
    D = np.random.default_rng(0).standard_normal((4, 10))
    with pytest.raises(ParameterError):
        witness_eigenvalues(D, [1, 1], "raw")
    with pytest.raises(ParameterError):
        witness_eigenvalues(D, [1, 99], "raw")
