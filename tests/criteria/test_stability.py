"""The paper's criteria: q*_quantile, q*_support, support coherence and the ℓ1-certified fraction
(rip_atoms.criteria.stability), against closed forms, hand-computed distributions and
independent float64 computations written out in the test files, never against the code under
test (split from the former tests/test_atoms.py; assertions unchanged).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from rip_atoms.criteria import (
    l0_counts,
    l1_certified_fraction,
    per_atom_coherence,
    q_star_quantile,
    q_star_support,
    stability,
    support_coherence,
)
from rip_atoms.errors import (
    ParameterError,
)
from rip_atoms.metric import AIPMetric, fit_metric
from rip_atoms.testing.generators import (
    activations_with_moment,
    paired_atoms,
    planted_atom_set,
    second_moment_matrix,
)


# ------------------------------------------------------------------ independent references
def whitened_unit(D, S):
    lam, V = np.linalg.eigh(S)
    W = (V * np.sqrt(lam)) @ V.T
    X = W @ D
    return X / np.linalg.norm(X, axis=0)


def direct_per_atom(D, S):
    Dt = whitened_unit(D, S)
    G = np.abs(Dt.T @ Dt)
    np.fill_diagonal(G, -1)
    return G.max(axis=0)


def q_star_by_definition(mu, K):
    """sup{q : (2K_q − 1)μ_q < 1} scanning every level t/(m n) with exact fractions and the
    inverse-CDF quantile Q(q) = sorted[⌈q·len⌉ − 1]."""
    mu, K = np.sort(mu), np.sort(K)
    m, n = len(mu), len(K)
    best = Fraction(0)
    holds = []
    for t in range(1, m * n + 1):
        q = Fraction(t, m * n)
        mq = mu[math.ceil(q * m) - 1]
        kq = K[math.ceil(q * n) - 1]
        h = (2 * kq - 1) * mq < 1
        holds.append(h)
        if h:
            best = max(best, q)
    return float(best), holds


# ------------------------------------------------------------------ q*_quantile
def test_q_star_quantile_hand_example():
    mu = np.array([0.0] * 6 + [0.3] * 4)  # 60 % of atoms orthogonal to all others
    K = np.array([1, 2, 2, 3, 4])
    r = q_star_quantile(mu, K)
    # q ≤ 0.6: μ_q = 0 holds; q ∈ (0.6, 0.8]: μ_q = 0.3, K_q = 3 → 5·0.3 ≥ 1 fails
    assert r.value == pytest.approx(0.6, abs=1e-15)
    assert r.mu_at == 0.0 and r.K_at == 2
    assert r.first_failure["q"] == pytest.approx(0.7) and r.first_failure["K_q"] == 3
    assert r.first_failure["mu_q"] == 0.3


def test_q_star_quantile_conventions():
    # levels 1/3, 1/2, 2/3, 1: (μ_q, K_q) = (0.1, 1), (0.1, 2), (0.2, 2), (0.2, 3); the last
    # has 5·0.2 = 1, not < 1, so q* = 2/3
    r = q_star_quantile([0.1, 0.2], [1, 2, 3])
    assert r.value == pytest.approx(2 / 3) and (r.mu_at, r.K_at) == (0.2, 2)
    assert r.first_failure["q"] == 1.0
    assert q_star_quantile([0.1, 0.19], [1, 2, 3]).value == 1.0  # holds everywhere
    assert q_star_quantile([0.1, 0.19], [1, 2, 3]).first_failure is None
    assert q_star_quantile([0.6, 0.7], [2, 2]).value == 0.0  # fails on the first cell
    assert q_star_quantile([0.6, 0.7], [2, 2]).mu_at is None
    assert q_star_quantile([0.6], [0, 0, 5]).value == pytest.approx(2 / 3)  # K = 0 holds
    with pytest.raises(ParameterError):
        q_star_quantile([], [1])
    with pytest.raises(ParameterError):
        q_star_quantile([0.1], [])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12),
       st.lists(st.integers(0, 8), min_size=1, max_size=12))
def test_q_star_quantile_matches_definition(mu, K):
    mu, K = np.array(mu), np.array(K)
    ref, holds = q_star_by_definition(mu, K)
    # the condition holds on an initial interval of levels (monotonicity), so sup = max
    if False in holds:
        assert not any(holds[holds.index(False):])
    assert q_star_quantile(mu, K).value == pytest.approx(ref, abs=1e-15)


# ------------------------------------------------------------------ q*_support
def test_q_star_support_hand_example():
    mu = np.array([0.1, 0.1, 0.5, 0.0])
    codes = np.zeros((5, 4))
    codes[0, [0, 1]] = 1  # k = 2: 3·0.1 < 1 holds
    codes[1, [2]] = 1  # k = 1: 0.5 < 1 holds
    codes[2, [0, 2]] = 1  # k = 2: 3·0.5 fails
    codes[4, [0, 1, 3]] = 2  # k = 3: 5·0.1 holds; row 3 is empty: holds
    smu = support_coherence(codes, mu)
    np.testing.assert_array_equal(smu, [0.1, 0.5, 0.5, 0.0, 0.1])
    r = q_star_support(smu, l0_counts(codes))
    assert r.value == pytest.approx(0.8) and r.n_holding == 4
    assert r.by_l0[2] == (2, 1)


def test_support_coherence_ranges_over_all_atoms():
    rng = np.random.default_rng(3)
    D = rng.standard_normal((6, 15))
    S = np.linalg.inv(second_moment_matrix(rng, 6))
    pac = per_atom_coherence(D, AIPMetric.from_moment(np.linalg.inv(S)))
    codes = (rng.random((30, 15)) < 0.2) * rng.uniform(1, 2, (30, 15))
    ref_atom = direct_per_atom(D, S)
    ref = np.array([ref_atom[np.flatnonzero(c)].max() if c.any() else 0.0 for c in codes])
    np.testing.assert_allclose(support_coherence(codes, pac), ref, atol=1e-12)


def test_planted_stability_matches_planted_eps_and_K(planted):
    st_ = stability(planted.dictionary, planted.codes, metric=planted.metric, l1_max_tokens=60)
    # (2K − 1)ε = 0.25 < 1: every reading is 1
    assert st_.per_atom.mu == pytest.approx(planted.eps, abs=1e-10)
    assert st_.q_star_quantile.value == 1.0
    assert st_.q_star_support.value == 1.0
    assert st_.l1.value == 1.0 and st_.l1.n_tokens == 60 and st_.l1.nonneg
    assert set(np.unique(st_.l0)) == {3}


def test_planted_partial_pairing_readings_by_hand():
    rng = np.random.default_rng(2)
    # 6 of 20 atoms in 3 coherent pairs (μ = 0.3), K = 3: 5·0.3 ≥ 1 for paired atoms
    p = planted_atom_set(rng, 20, 20, 3, 400, eps=0.3, n_pairs=3, magnitude=(1, 2))
    st_ = stability(p.dictionary, p.codes, metric=p.metric, l1=False)
    paired = p.per_atom_mu > 0
    assert paired.sum() == 6
    assert st_.q_star_quantile.value == pytest.approx(14 / 20)  # μ_q = 0 exactly up to 0.7
    uses_pair = (p.codes[:, paired] != 0).any(axis=1)
    assert st_.q_star_support.value == pytest.approx(1 - uses_pair.mean())


# ------------------------------------------------------------------ ℓ1-certified fraction
def test_l1_certified_fraction_against_an_lp():
    from scipy.optimize import linprog

    rng = np.random.default_rng(9)
    H, N, K = 12, 30, 6  # above the weak threshold for many codes
    D = rng.standard_normal((H, N))
    codes = np.zeros((24, N))
    for i in range(24):
        codes[i, rng.choice(N, K, replace=False)] = rng.uniform(1, 2, K)
    cert = l1_certified_fraction(D, codes, metric="raw", max_tokens=None)
    assert cert.n_tokens == 24 and cert.nonneg
    assert cert.certified + cert.failed + cert.undetermined + cert.invalid == 24
    assert 0 < cert.certified < 24 and cert.failed > 0
    Du = D / np.linalg.norm(D, axis=0)
    for i, s in enumerate(cert.status):
        c = codes[i] * np.linalg.norm(D, axis=0)  # the code over unit atoms
        x = linprog(np.ones(N), A_eq=Du, b_eq=Du @ c, bounds=(0, None), method="highs").x
        same = np.max(np.abs(x - c)) <= 1e-6 * c.max()
        if s == "certified":
            assert same
        elif s == "failed":
            assert x.sum() <= c.sum() * (1 + 1e-7)


def test_l1_empty_codes_are_trivially_certified_and_sampling_is_seeded():
    D = np.random.default_rng(0).standard_normal((5, 9))
    codes = sp.csr_matrix((40, 9))
    cert = l1_certified_fraction(D, codes, metric="raw", max_tokens=10, seed=4)
    assert cert.value == 1.0 and cert.empty == 10 and cert.sampled_from == 40
    again = l1_certified_fraction(D, codes, metric="raw", max_tokens=10, seed=4)
    np.testing.assert_array_equal(cert.tokens, again.tokens)


def test_support_reading_implies_l1_certificate_per_token():
    """Tropp: (2|S| − 1)·max_{j∈S, l≠j}|⟨d̃ⱼ, d̃ₗ⟩| < 1 ⇒ ERC(S) < 1 ⇒ basis pursuit recovers the
    code; so every token counted by q*_support must be certified by the exact ℓ1 test."""
    rng = np.random.default_rng(12)
    p = planted_atom_set(rng, 24, 24, 3, 80, eps=0.3, n_pairs=6, magnitude=(1, 2))
    st_ = stability(p.dictionary, p.codes, metric=p.metric, l1_max_tokens=None)
    ok = (2 * st_.l0 - 1) * st_.support_mu < 1
    assert 0 < ok.sum() < len(ok)
    assert np.all(st_.l1.status[ok] == "certified")
    assert st_.l1.value >= st_.q_star_support.value


def test_l1_on_a_basis_is_certified_without_lps():
    rng = np.random.default_rng(13)
    H = 48
    X = activations_with_moment(rng, 300, second_moment_matrix(rng, H))
    cert = l1_certified_fraction(np.eye(H), X, metric=fit_metric(X), max_tokens=200)
    assert cert.value == 1.0 and cert.methods["full_column_rank"] == 200
    D = np.eye(4)[:, [0, 1, 2]]
    D = np.hstack([D, np.zeros((4, 1))])  # a dead atom: codes using it are not identifiable
    c = l1_certified_fraction(D, np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 2.0]]), metric="raw")
    assert c.status.tolist() == ["certified", "invalid"]
# ------------------------------------------------------------------ per-atom coherence
def test_per_atom_coherence_exact_and_refined_paths_decide_alike():
    rng = np.random.default_rng(5)
    H = 24
    # pairs at exactly 1/3 + 1e-9: float32 cannot tell which side of 1/(2·2 − 1) they are on
    D, _ = paired_atoms(rng, H, 20, 1 / 3 + 1e-9)
    G = rng.standard_normal((H, 30))  # and 30 Gaussian atoms orthogonal to the pairs
    G -= D @ np.linalg.lstsq(D, G, rcond=None)[0]
    D = np.hstack([D, G])
    ref = direct_per_atom(D, np.eye(H))
    full = per_atom_coherence(D, "raw")
    refined = per_atom_coherence(D, "raw", exact_max_atoms=10)
    assert full.exact.all()
    np.testing.assert_allclose(full.values, ref, atol=1e-13)
    assert refined.tolerance > 1e-7  # the float32 path really ran
    np.testing.assert_allclose(refined.values, ref, atol=refined.tolerance)
    for k in range(1, 6):
        np.testing.assert_array_equal((2 * k - 1) * refined.values < 1, (2 * k - 1) * ref < 1)
    paired = np.abs(ref - (1 / 3 + 1e-9)) < 1e-12
    assert paired.sum() >= 2 and refined.exact[paired].all()
    assert refined.mu == pytest.approx(ref.max(), abs=1e-13)


def test_per_atom_coherence_dead_atom_is_nan():
    D = np.eye(4)[:, [0, 1, 2]].copy()
    D = np.hstack([D, np.zeros((4, 1))])
    pac = per_atom_coherence(D, "raw")
    assert np.isnan(pac.values[3]) and pac.n_live == 3
    assert pac.for_supports()[3] == 1.0


@given(st.integers(2, 40), st.integers(0, 12), st.integers(0, 2**31 - 1))
def test_the_cholesky_rank_proof_never_contradicts_the_svd(k, log_cond, seed):
    # unit columns with singular values spread over 10^-log_cond … 1: whenever the cheap Gram
    # Cholesky proof says σ_min > tol·σ_max, the float64 SVD (the reference) agrees
    from rip_atoms.criteria.stability import _gram_certifies_rank

    rng = np.random.default_rng(seed)
    h = k + 3
    Q1 = np.linalg.qr(rng.standard_normal((h, k)))[0]
    Q2 = np.linalg.qr(rng.standard_normal((k, k)))[0]
    V = Q1 @ np.diag(np.logspace(0, -log_cond, k)) @ Q2
    V /= np.linalg.norm(V, axis=0)
    s = np.linalg.svd(V, compute_uv=False)
    for tol in (1e-9, 1e-6, 1e-3, 0.1):
        if _gram_certifies_rank(V.T @ V, h, tol):
            assert s[-1] > tol * s[0]
    # a clearly well-conditioned set is proved without the SVD
    assert _gram_certifies_rank(np.eye(k), k, 1e-3)
