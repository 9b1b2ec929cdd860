"""The paper's criteria (rip_atoms.atoms) against closed forms, hand-computed distributions and
independent float64 computations written out in this file — never against the code under test.

Acceptance (issue 5): on planted atom sets the criteria return what was planted (R² = 1 to
1e-9 with the planted encoder, q* readings and certified fractions consistent with ε and K, the
TSAE window containing the planted threshold); on the identity basis over dense codes
q*_quantile is 0.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from rip_atoms import Dictionary
from rip_atoms.atoms import (
    UnitSet,
    atom_set_check,
    check_thresholds,
    compare_units,
    faithfulness_r2,
    l0_counts,
    l1_certified_fraction,
    per_atom_coherence,
    q_star_quantile,
    q_star_support,
    stability,
    support_coherence,
    token_split,
    tsae_encoder,
    tsae_window,
)
from rip_atoms.errors import (
    NonFiniteError,
    ParameterError,
    RipAtomsError,
    ShapeMismatchError,
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


def test_identity_basis_over_dense_codes_has_q_star_zero():
    rng = np.random.default_rng(0)
    H = 16
    X = activations_with_moment(rng, 400, second_moment_matrix(rng, H, offset=2.0))
    cmp_ = compare_units(X, {}, l1=False)
    row = cmp_["neurons"]
    assert row.mean_l0 == H  # dense codes
    # independent: neuron AIP cosines are S̃_jl / sqrt(S̃_jj S̃_ll) of the fitted metric
    Sg = np.linalg.inv(X[token_split(400).fit].T @ X[token_split(400).fit] / 200)
    C = np.abs(Sg / np.sqrt(np.outer(np.diag(Sg), np.diag(Sg))))
    np.fill_diagonal(C, 0)
    assert row.mu == pytest.approx(C.max(), rel=1e-9)
    assert C.max(axis=0).min() * (2 * H - 1) >= 1  # so the first cell already fails
    assert row.q_star_quantile == 0.0 and row.q_star_support == 0.0
    assert row.r2_aip == 1.0 and row.r2_euclidean == 1.0


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


# ------------------------------------------------------------------ planted sets: acceptance
@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(11)
    return planted_atom_set(rng, 32, 32, 3, 1200, eps=0.05, magnitude=(1.0, 1.5),
                            scale_range=(0.5, 2.0), mixing_cond=20.0)


def test_planted_r2_is_one(planted):
    u = UnitSet.from_codes("atoms", planted.dictionary, planted.codes, kind="atoms")
    r = faithfulness_r2(planted.activations, u, metric=planted.metric)
    assert abs(r.r2_aip - 1) <= 1e-9 and abs(r.r2_euclidean - 1) <= 1e-9
    assert r.n_tokens == 600


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


def test_planted_atom_set_check_and_window(planted):
    u = UnitSet.from_codes("atoms", planted.dictionary, planted.codes)
    chk = atom_set_check(planted.activations, u, metric=planted.metric)
    assert chk.is_atom_set and chk.uniqueness
    assert chk.eps == pytest.approx(0.05, abs=1e-10) and chk.K == 3
    assert chk.delta_min == pytest.approx(1.0) and chk.delta_max == pytest.approx(1.5)
    assert chk.rip_bound == pytest.approx(0.1, abs=1e-9)
    # planted threshold: the middle of the window of the planted (ε, K, δ_min, δ_max)
    lo, hi = 0.05 * 3 * 1.5, 1.0 - 0.05 * 2 * 1.5
    tau = 0.5 * (lo + hi)
    assert chk.window.feasible and chk.window.contains(tau)
    assert chk.window.lower == pytest.approx(lo, abs=1e-9)
    assert chk.window.upper == pytest.approx(hi, abs=1e-9)
    # and that threshold recovers every planted support with W_enc = D̂ᵀS̃
    codes = tsae_encoder(planted.dictionary, planted.metric, tau)(planted.activations)
    np.testing.assert_array_equal(codes != 0, planted.codes != 0)
    # conditions asked for at a stricter ε or K fail, named
    strict = atom_set_check(planted.activations, u, metric=planted.metric, eps=0.01, K=2)
    assert not strict.separability and not strict.sparsity and strict.representability
    noisy = atom_set_check(planted.activations + 1e-3, u, metric=planted.metric)
    assert not noisy.representability


def test_compare_units_on_planted(planted):
    u = UnitSet.from_codes("atoms", planted.dictionary, planted.codes, kind="atoms")
    res = compare_units(planted.activations, {"atoms": u}, metric=planted.metric,
                        l1_max_tokens=40)
    assert [r.name for r in res.rows] == ["neurons", "atoms"]
    a = res["atoms"]
    assert abs(a.r2_aip - 1) <= 1e-9 and abs(a.r2_euclidean - 1) <= 1e-9
    assert a.q_star_quantile == 1.0 and a.q_star_support == 1.0
    assert a.l1_certified_fraction == 1.0 and a.l1_sampled == 40
    assert a.mu == pytest.approx(planted.eps, abs=1e-10)
    assert a.mean_l0 == 3.0 and a.dead_atoms == 0
    ev = token_split(1200).eval
    assert a.never_active == int(np.sum((planted.codes[ev] != 0).sum(axis=0) == 0))
    n = res["neurons"]
    assert n.r2_aip == 1.0 and n.q_star_quantile == 0.0
    assert n.l1_certified_fraction == 1.0  # a basis: the representation is unique
    d = res.to_dict()
    assert d["rows"][1]["stability"]["q_star_quantile"]["value"] == 1.0
    text = res.render()
    assert "atoms" in text and "q*quant" in text and "held-out" in text


# ------------------------------------------------------------------ R² against formulas
def test_r2_matches_formula_for_a_relu_encoder():
    rng = np.random.default_rng(7)
    H, N, n = 8, 20, 300
    X = activations_with_moment(rng, n, second_moment_matrix(rng, H, offset=1.0))
    D = rng.standard_normal((H, N))
    We = rng.standard_normal((H, N)) * 0.3
    b = rng.standard_normal(H) * 0.1
    u = UnitSet.from_encoder("relu", D, lambda Z: np.maximum(Z @ We, 0), decoder_bias=b)
    split = token_split(n, 0.4, seed=3)
    r = faithfulness_r2(X, u, split=split)
    Xe = X[split.eval]
    Xh = np.maximum(Xe @ We, 0) @ D.T + b
    S = np.linalg.inv(X[split.fit].T @ X[split.fit] / len(split.fit))
    E, T = Xe - Xh, Xe - Xe.mean(axis=0)
    ref_aip = 1 - np.einsum("ih,hk,ik->", E, S, E) / np.einsum("ih,hk,ik->", T, S, T)
    ref_euc = 1 - (E**2).sum() / (T**2).sum()
    assert r.r2_aip == pytest.approx(ref_aip, rel=1e-10)
    assert r.r2_euclidean == pytest.approx(ref_euc, rel=1e-10)
    assert r.n_tokens == len(split.eval) == 120


def test_aip_r2_is_invariant_and_euclidean_is_not():
    rng = np.random.default_rng(8)
    H, N, n = 6, 12, 400
    X = activations_with_moment(rng, n, second_moment_matrix(rng, H, offset=2.0))
    D = rng.standard_normal((H, N))
    codes = np.abs(np.linalg.lstsq(D, X.T, rcond=None)[0].T) * (rng.random((n, N)) < 0.5)
    A = np.diag([1, 10, 0.1, 3, 1, 0.5]) @ np.linalg.qr(rng.standard_normal((H, H)))[0]
    r1 = faithfulness_r2(X, UnitSet.from_codes("a", D, codes))
    r2 = faithfulness_r2(X @ A.T, UnitSet.from_codes("a", A @ D, codes))
    assert r1.r2_aip == pytest.approx(r2.r2_aip, rel=1e-9)
    assert abs(r1.r2_euclidean - r2.r2_euclidean) > 1e-3


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


# ------------------------------------------------------------------ TSAE window
def test_tsae_window_closed_form():
    w = tsae_window(0.1, 3, 1.0, 1.5)
    assert w.lower == pytest.approx(0.45) and w.upper == pytest.approx(0.7)
    assert w.feasible and w.margin == pytest.approx(0.25)
    assert w.contains(0.5) and not w.contains(0.45) and not w.contains(0.7)
    np.testing.assert_array_equal(w.contains(np.array([0.4, 0.6, 0.8])), [False, True, False])
    edge = tsae_window(0.1, 3, 0.75, 1.5)  # δ_min = ε(2K − 1)δ_max: the window is empty
    assert not edge.feasible and edge.lower == pytest.approx(edge.upper)
    assert "infeasible" in tsae_window(0.5, 2, 1, 1).statement
    assert tsae_window(0.0, 5, 1, 2).lower == 0.0  # orthogonal atoms: any τ in (0, δ_min)


@pytest.mark.parametrize("args", [(0.1, 0, 1, 2), (-0.1, 2, 1, 2), (0.1, 2, 2, 1),
                                  (0.1, 2, 0, 1), (1.5, 2, 1, 2), (0.1, 2.5, 1, 2),
                                  (float("nan"), 2, 1, 2)])
def test_tsae_window_bad_input(args):
    with pytest.raises(ParameterError):
        tsae_window(*args)


def test_check_thresholds():
    w = tsae_window(0.1, 3, 1.0, 1.5)  # (0.45, 0.7)
    c = check_thresholds(np.array([0.3, 0.5, 0.69, 0.7, 0.9]), w)
    assert (c.n_inside, c.n_below, c.n_above) == (2, 1, 2)
    assert c.below.tolist() == [0] and c.above.tolist() == [3, 4]
    assert c.fraction_inside == pytest.approx(0.4) and not c.all_inside
    s = check_thresholds(0.5, eps=0.1, K=3, delta_min=1.0, delta_max=1.5)
    assert s.all_inside and s.n_latents == 1
    # thresholds in the TSAE's own units, atoms of AIP norm 2: 0.3·2 = 0.6 is inside
    scaled = check_thresholds(0.3, w, atom_norms=np.array([2.0, 1.0]))
    assert scaled.n_inside == 1 and scaled.below.tolist() == [1] and scaled.scaled
    with pytest.raises(ParameterError):
        check_thresholds(0.5)
    with pytest.raises(NonFiniteError):
        check_thresholds([np.nan], w)


# ------------------------------------------------------------------ token split
def test_token_split():
    s = token_split(10, 0.3, seed=1)
    assert len(s.eval) == 3 and len(s.fit) == 7
    assert sorted(np.concatenate([s.fit, s.eval]).tolist()) == list(range(10))
    np.testing.assert_array_equal(s.eval, token_split(10, 0.3, seed=1).eval)
    assert token_split(10, 0.3, mode="tail").eval.tolist() == [7, 8, 9]
    a = token_split(5, mode="all")
    assert a.fit.tolist() == a.eval.tolist() == list(range(5))
    for bad in [dict(n_tokens=0), dict(n_tokens=5, held_out=1.0), dict(n_tokens=1),
                dict(n_tokens=5, mode="x")]:
        with pytest.raises(ParameterError):
            token_split(**bad)


# ------------------------------------------------------------------ bad input
def test_bad_input_is_named():
    D = np.random.default_rng(0).standard_normal((4, 6))
    X = np.random.default_rng(1).standard_normal((50, 4))
    with pytest.raises(ShapeMismatchError, match="N = 6"):
        UnitSet.from_codes("f", D, np.ones((50, 5)))
    with pytest.raises(NonFiniteError, match="token 3"):
        bad = np.zeros((50, 6))
        bad[3, 1] = np.inf
        UnitSet.from_codes("f", D, bad)
    with pytest.raises(ParameterError):
        UnitSet(name="x", decoder=Dictionary(D))
    with pytest.raises(ShapeMismatchError, match="H = 4"):
        UnitSet.from_codes("f", D, np.ones((50, 6)), decoder_bias=np.ones(3))
    u = UnitSet.from_encoder("f", D, lambda Z: np.ones((len(Z), 7)))
    with pytest.raises(ShapeMismatchError, match="7 columns"):
        faithfulness_r2(X, u)
    with pytest.raises(ShapeMismatchError, match="width"):
        faithfulness_r2(X[:, :3], UnitSet.from_codes("f", D, np.ones((50, 6))))
    Xn = X.copy()
    Xn[7, 0] = np.nan
    with pytest.raises(RipAtomsError, match="row 7"):
        faithfulness_r2(Xn, UnitSet.neurons(4), metric=fit_metric(X),
                        split=token_split(50, mode="all"))
    with pytest.raises(ShapeMismatchError, match="precomputed codes"):
        compare_units(X, {"f": UnitSet.from_codes("f", D, np.ones((10, 6)))}, l1=False)
    with pytest.raises(ParameterError, match="zero variance"):
        faithfulness_r2(np.ones((50, 4)), UnitSet.neurons(4), metric=AIPMetric.identity(4))


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


def test_check_thresholds_counts_both_sides_of_an_infeasible_window():
    from rip_atoms.atoms import check_thresholds, tsae_window

    w = tsae_window(0.5, 3, 1.0, 2.0)  # lower = 3, upper = 1 − 2 = −1: infeasible
    assert not w.feasible
    chk = check_thresholds(np.array([-2.0, 0.5, 4.0]), w)
    # −2 ≤ lower only; 0.5 is ≤ lower and ≥ upper; 4 ≥ upper only
    assert (chk.n_inside, chk.n_below, chk.n_above, chk.n_both) == (0, 2, 2, 1)
    ok = check_thresholds(np.array([0.2, 0.3]), tsae_window(0.05, 2, 1.0, 1.0))  # (0.1, 0.95)
    assert ok.window.feasible and ok.n_both == 0 and ok.n_inside == 2
