"""rip_atoms.testing: each strategy has the property it promises, checked with plain numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rip_atoms.metric import fit_metric
from rip_atoms.testing import (
    activation_sets,
    coherent_dictionaries,
    dictionaries,
    etf_block_dictionaries,
    gaussian_dictionaries,
    near_etf_dictionaries,
    paired_dictionaries,
    planted_atom_sets,
    second_moments,
    sparse_codes,
)


def mu_of(D):
    U = D / np.linalg.norm(D, axis=0)
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, 0)
    return G.max()


def smallest_dependent(D):
    H, N = D.shape
    for t in range(1, N + 1):
        for T in itertools.combinations(range(N), t):
            s = np.linalg.svd(D[:, T], compute_uv=False)
            if t > H or s[-1] <= 1e-10 * s[0]:
                return t
    return np.inf


@given(gaussian_dictionaries(dim=st.integers(3, 9), n_atoms=st.integers(3, 20)))
def test_gaussian_unit_columns(D):
    assert 3 <= D.shape[0] <= 9 and 3 <= D.shape[1] <= 20
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, atol=1e-12)


@given(near_etf_dictionaries(noise=0.0))
def test_near_etf_without_noise_is_the_simplex_etf(D):
    H, N = D.shape
    assert N == H + 1
    G = D.T @ D
    np.testing.assert_allclose(G[~np.eye(N, dtype=bool)], -1.0 / H, atol=1e-12)


@given(near_etf_dictionaries(noise=st.floats(0.0, 0.05)))
def test_near_etf_stays_near_the_welch_bound(D):
    H = D.shape[0]
    assert abs(mu_of(D) - 1 / H) <= 0.25  # ‖perturbation‖ ≲ 0.05·(1 + a few σ) per atom


@given(etf_block_dictionaries(block_dims=st.lists(st.integers(1, 3), min_size=1, max_size=3)))
def test_etf_blocks_have_the_planted_mu_and_spark(t):
    D, mu = t
    dims = D.shape[1] - D.shape[0]
    assert mu == pytest.approx(mu_of(D), abs=1e-12)
    assert dims >= 1
    assert smallest_dependent(D) == round(1 / mu) + 1


@given(paired_dictionaries(mu=st.floats(0.0, 0.9)))
def test_paired_dictionaries_have_the_planted_mu(t):
    D, mu = t
    assert D.shape[1] <= D.shape[0]
    assert mu_of(D) == pytest.approx(mu, abs=1e-12)
    U = D.T @ D
    off = np.abs(U[~np.eye(D.shape[1], dtype=bool)])
    assert np.all((off < 1e-12) | (np.abs(off - mu) < 1e-12))


@given(coherent_dictionaries())
def test_coherent_dictionaries_report_their_mu(t):
    D, mu = t
    assert mu_of(D) == pytest.approx(mu, abs=1e-12)


@given(dictionaries())
def test_dictionaries_have_unit_columns(D):
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, atol=1e-12)


def test_dictionaries_rejects_unknown_kind():
    with pytest.raises(ValueError):
        dictionaries(kinds=("nope",))


@given(st.data(), st.sampled_from(["nonneg", "signed", "nonpos"]))
def test_sparse_codes(data, signs):
    N = data.draw(st.integers(1, 30))
    K = data.draw(st.integers(0, N))
    C = data.draw(sparse_codes(n_atoms=N, K=K, n=7, magnitude=(0.5, 1.5), signs=signs,
                               hit_ends=True))
    assert C.shape == (7, N)
    assert np.all(np.count_nonzero(C, axis=1) == K)
    mags = np.abs(C[C != 0])
    if K:
        assert mags.min() == 0.5 and mags.max() == 1.5
    if signs == "nonneg":
        assert C.min() >= 0
    if signs == "nonpos":
        assert C.max() <= 0


@given(second_moments(dim=st.integers(2, 8)))
def test_second_moments_are_spd(S):
    np.testing.assert_allclose(S, S.T)
    assert np.linalg.eigvalsh(S)[0] > 0


@given(activation_sets(dim=st.integers(2, 8)))
def test_activation_sets_realise_their_second_moment(t):
    X, S = t
    n = X.shape[0]
    np.testing.assert_allclose(X.T @ X / n, S, rtol=1e-9, atol=1e-9 * np.abs(S).max())
    m = fit_metric(X)
    np.testing.assert_allclose(m.S @ S, np.eye(len(S)), atol=1e-6)


@given(activation_sets(dim=12, n_samples=200, offset=4.0, decay=1.0))
def test_activation_sets_show_the_representation_shift(t):
    X, S = t
    np.testing.assert_allclose(X.T @ X / len(X), S, rtol=1e-9, atol=1e-9 * np.abs(S).max())
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    raw = (U @ U.T)[np.triu_indices(len(U), 1)].mean()
    lam, V = np.linalg.eigh(np.linalg.inv(S))
    Y = X @ ((V * np.sqrt(lam)) @ V.T)
    W = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    aip = (W @ W.T)[np.triu_indices(len(W), 1)].mean()
    # ‖m‖² = 16 tr C: raw cosines ≈ 16/17; whitening by Σ⁻¹ centres them near 0
    assert raw > 0.85 and abs(aip) < 0.1


@given(activation_sets(second_moment=second_moments(dim=5)))
def test_activation_sets_with_a_given_moment(t):
    X, S = t
    np.testing.assert_allclose(X.T @ X / len(X), S, rtol=1e-9, atol=1e-9 * np.abs(S).max())


@given(planted_atom_sets())
def test_planted_atom_sets_are_what_they_say(p):
    D, S = p.dictionary, p.metric.S
    lam, V = np.linalg.eigh(S)
    Wd = ((V * np.sqrt(lam)) @ V.T) @ D
    np.testing.assert_allclose(np.linalg.norm(Wd, axis=0), p.scales, rtol=1e-9)
    assert mu_of(Wd) == pytest.approx(p.eps, abs=1e-9)
    assert np.all(np.count_nonzero(p.codes, axis=1) == p.K)
    np.testing.assert_allclose(p.activations, p.codes @ D.T, atol=1e-12)
    mags = np.abs(p.unit_codes[p.unit_codes != 0])
    assert mags.min() == pytest.approx(p.delta_min) and mags.max() == pytest.approx(p.delta_max)
    np.testing.assert_allclose(p.unit_codes, p.codes * p.scales)


def test_the_example_in_the_docstring_runs():
    @given(planted_atom_sets(dim=16, n_atoms=16, K=2, n_samples=20, eps=0.1))
    def test_my_solver(p):
        # a "solver": least squares on the true support (what a correct solver must match)
        for x, c in zip(p.activations, p.codes, strict=True):
            T = np.flatnonzero(c)
            sol = np.linalg.lstsq(p.dictionary[:, T], x, rcond=None)[0]
            np.testing.assert_allclose(sol, c[T], rtol=1e-8)
        assert p.eps == pytest.approx(0.1) and p.K == 2

    test_my_solver()


def test_core_works_and_strategies_say_so_without_hypothesis():
    import subprocess
    import sys

    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import rip_atoms.criteria, rip_atoms.theorems, rip_atoms.testing.generators\n"
            "assert 'torch' not in sys.modules\n"
            "print('core ok')\n"
            "from rip_atoms.testing import sparse_codes\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "core ok" in proc.stdout
    assert proc.returncode != 0 and "pip install 'rip-atoms[testing]'" in proc.stderr
