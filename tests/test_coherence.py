"""Coherence: μ, per-atom μⱼ, Babel, top pairs, histogram, duplicates — against direct float64
computations on the full Gram matrix (independent of the blocked kernel)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rip_atoms import AIPMetric, Dictionary, coherence
from rip_atoms.precision import float32_cosine_tolerance
from rip_atoms.synthetic import gaussian_dictionary, simplex_etf, union_of_bases

pytestmark = pytest.mark.sensitive  # float32 passes against float64 truth at stated tolerances


def direct(U: np.ndarray):
    """Reference: |Gram| of unit columns in float64, diagonal removed."""
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, -np.inf)
    rows = -np.sort(-G, axis=1)[:, :-1]  # drop the -inf diagonal
    return G, rows


def unit(D):
    return D / np.linalg.norm(D, axis=0)


shapes = st.tuples(st.integers(2, 40), st.integers(3, 260), st.integers(0, 2**31 - 1))


@given(shapes, st.sampled_from([16, 64, 2048]))
def test_mu_and_babel_match_float64(shape, block):
    H, N, seed = shape
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((H, N))
    res = coherence(D, "raw", babel_p=12, top=7, block_size=block)
    U = unit(D)
    G, rows = direct(U)
    tol = float32_cosine_tolerance(H)
    assert res.mu == pytest.approx(G.max(), abs=1e-12)
    i, j = res.pair
    assert abs(U[:, i] @ U[:, j]) == pytest.approx(G.max(), abs=1e-12)
    p_max = min(12, N - 1)
    ref_babel = np.cumsum(rows[:, :p_max], axis=1).max(axis=0)
    assert len(res.babel) == p_max
    # each value is a float64 sum of p true |cos| (a lower bound) within p·2·tol32 of the truth
    assert np.all(res.babel <= ref_babel + 1e-12)
    assert np.all(res.babel >= ref_babel - 2 * tol * np.arange(1, p_max + 1) - 1e-12)
    assert res.babel[0] == pytest.approx(res.mu, abs=1e-15)  # μ₁(1) = μ
    assert np.all(np.diff(res.babel) >= 0)  # non-decreasing
    assert res.mu >= res.welch_bound - 1e-12
    np.testing.assert_allclose(res.per_atom, rows[:, 0], atol=tol)
    # top pairs: float64 values, descending, and they are the r largest entries
    r = min(7, N * (N - 1) // 2)
    vals = np.array([v for _, _, v in res.top_pairs])
    iu = np.triu_indices(N, 1)
    ref_top = np.sort(G[iu])[::-1][:r]
    assert len(vals) == r
    np.testing.assert_allclose(vals, ref_top, atol=2 * tol)
    for a, b, v in res.top_pairs:
        assert a < b and abs(U[:, a] @ U[:, b]) == pytest.approx(v, abs=1e-12)
    assert res.histogram_counts.sum() == N * (N - 1) // 2


def test_simplex_etf_mu_is_one_over_h_exactly():
    for H in (3, 8, 33, 100):
        res = coherence(simplex_etf(H), "raw")
        assert res.mu == pytest.approx(1 / H, abs=1e-14)
        assert res.mu == pytest.approx(res.welch_bound, abs=1e-14)
        p = np.arange(1, len(res.babel) + 1)
        np.testing.assert_allclose(res.babel, p / H, atol=1e-13)


def test_simplex_etf_is_invariant_under_self_metric():
    # the simplex ETF is a tight frame: (D Dᵀ) ∝ I, so the AIP leaves its cosines unchanged
    res = coherence(simplex_etf(12), "self")
    assert res.mu == pytest.approx(1 / 12, abs=1e-13)


def test_orthonormal_union_of_bases():
    d = union_of_bases(16, 2, seed=3)
    res = coherence(d, "raw")
    U = d.unit()
    G, _ = direct(U)
    assert res.mu == pytest.approx(G.max(), abs=1e-13)
    assert res.mu >= 1 / np.sqrt(16) - 1e-12  # two ONBs: μ ≥ 1/√H


def test_block_size_does_not_change_answers():
    d = gaussian_dictionary(24, 300, seed=5)
    a = coherence(d, "raw", block_size=32, babel_p=20)
    b = coherence(d, "raw", block_size=4096, babel_p=20)
    assert a.mu == b.mu and a.pair == b.pair
    np.testing.assert_allclose(a.babel, b.babel, atol=1e-12)
    np.testing.assert_array_equal(a.histogram_counts, b.histogram_counts)


def test_permutation_relabels_pairs():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((10, 80))
    perm = rng.permutation(80)
    a = coherence(D, "raw")
    b = coherence(D[:, perm], "raw")
    assert a.mu == pytest.approx(b.mu, abs=1e-15)
    assert {int(perm[b.pair[0]]), int(perm[b.pair[1]])} == set(a.pair)


def test_metric_equals_raw_coherence_of_corrected_dictionary():
    rng = np.random.default_rng(1)
    D = rng.standard_normal((12, 90))
    X = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 12))
    from rip_atoms import fit_metric

    m = fit_metric(X)
    a = coherence(D, m)
    b = coherence(m.corrected(Dictionary(D)), "raw")
    assert a.mu == pytest.approx(b.mu, abs=1e-12)
    np.testing.assert_allclose(a.babel, b.babel, atol=1e-10)
    # and against the AIP cosine formula directly
    i, j = a.pair
    assert abs(m.cosine(D[:, i], D[:, j])) == pytest.approx(a.mu, abs=1e-12)
    assert a.metric["kind"] == "activations"


def test_self_metric_matches_independent_whitening():
    rng = np.random.default_rng(2)
    D = rng.standard_normal((9, 40)) * rng.uniform(0.2, 5.0, size=40)  # unequal norms
    U = D  # the self metric uses the atoms as given: S̃ = (D Dᵀ)⁻¹
    lam, V = np.linalg.eigh(U @ U.T)
    W = (V / np.sqrt(lam)) @ V.T
    G, rows = direct(unit(W @ U))
    res = coherence(D, "self", babel_p=5)
    assert res.mu == pytest.approx(G.max(), abs=1e-12)
    np.testing.assert_allclose(res.babel, np.cumsum(rows[:, :5], axis=1).max(0), atol=1e-9)


def test_dead_atoms_are_excluded_and_reported():
    rng = np.random.default_rng(3)
    D = rng.standard_normal((8, 30))
    D[:, [4, 17]] = 0.0
    res = coherence(D, "raw")
    assert res.dead_atoms.tolist() == [4, 17]
    assert res.n_live == 28
    assert np.isnan(res.per_atom[[4, 17]]).all()
    U = unit(np.delete(D, [4, 17], axis=1))
    G, _ = direct(U)
    assert res.mu == pytest.approx(G.max(), abs=1e-12)
    assert 4 not in res.pair and 17 not in res.pair
    assert res.welch_bound == pytest.approx(np.sqrt((28 - 8) / (8 * 27)))


def test_duplicates_are_reported_at_the_stated_tolerance():
    rng = np.random.default_rng(4)
    D = unit(rng.standard_normal((16, 40)))
    e1 = D[:, 0]
    e2 = D[:, 1] - (D[:, 1] @ e1) * e1
    e2 /= np.linalg.norm(e2)
    c_dup, c_not = 1 - 5e-7, 1 - 5e-6
    D[:, 10] = -3.0 * D[:, 0]  # exact duplicate up to sign and scale
    D[:, 11] = c_dup * e1 + np.sqrt(1 - c_dup**2) * e2  # |cos(0, 11)| = 1 − 5e-7: duplicate
    D[:, 12] = c_not * e1 - np.sqrt(1 - c_not**2) * e2  # |cos(0, 12)| = 1 − 5e-6: not
    res = coherence(D, "raw")
    pairs = {(i, j) for i, j, _ in res.duplicate_pairs}
    assert (0, 10) in pairs and (0, 11) in pairs and (10, 11) in pairs
    assert (0, 12) not in pairs
    assert res.mu == pytest.approx(1.0, abs=1e-12)


def test_many_copies_saturating_the_lists_are_all_found():
    rng = np.random.default_rng(5)
    base = unit(rng.standard_normal((6, 20)))
    D = np.hstack([base, np.repeat(base[:, :1], 12, axis=1)])  # 13 copies of atom 0
    res = coherence(D, "raw", babel_p=3, top=2)  # lists of 3 entries: saturated by copies
    copies = [0] + list(range(20, 32))
    expected = {(a, b) for k, a in enumerate(copies) for b in copies[k + 1 :]}
    assert {(i, j) for i, j, _ in res.duplicate_pairs} == expected


def test_neurons_are_orthogonal():
    res = coherence(Dictionary.neurons(10), "raw")
    assert res.mu == 0.0
    assert np.all(res.babel == 0.0)


def test_float32_dictionary_is_handled_in_float64_for_extremes():
    d64 = gaussian_dictionary(32, 200, seed=7)
    d32 = Dictionary(np.asarray(d64.atoms, dtype=np.float32))
    res = coherence(d32, "raw")
    G, _ = direct(unit(np.asarray(d32.atoms, dtype=np.float64)))
    assert res.mu == pytest.approx(G.max(), abs=1e-12)


def test_identity_metric_equals_raw():
    d = gaussian_dictionary(10, 50, seed=8)
    a = coherence(d, AIPMetric.identity(10))
    b = coherence(d, "raw")
    assert a.mu == pytest.approx(b.mu, abs=1e-15)


def test_to_dict_is_json_ready():
    import json

    res = coherence(gaussian_dictionary(8, 40, seed=9), "raw", babel_p=4, top=3)
    d = res.to_dict()
    json.dumps(d)
    assert len(d["babel"]) == 4 and len(d["top_pairs"]) == 3
    assert set(d["per_atom_quantiles"]) >= {"0.5", "1.0"}


@given(shapes)
def test_babel_upper_brackets_the_truth(shape):
    H, N, seed = shape
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((H, N)).astype(np.float32)
    res = coherence(D, "raw", babel_p=9)
    _, rows = direct(unit(D.astype(np.float64)))
    p_max = min(9, N - 1)
    ref = np.cumsum(rows[:, :p_max], axis=1).max(axis=0)
    assert np.all(res.babel <= ref + 1e-12)
    assert np.all(ref <= res.babel_upper + 1e-12)
