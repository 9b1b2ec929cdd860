"""The executable theorem suite: every theorem behaves as documented on 300 examples per theorem
that meet its hypotheses (seed 0; two more seeds at 100), the documented counterexamples are
minimal and re-check with plain numpy from their JSON, and discarded draws really violate a
hypothesis."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rip_atoms.theorems import THEOREMS, get_theorem, run_theorems

N_EXAMPLES = 300  # examples meeting the hypotheses, per theorem (CI)


@pytest.fixture(scope="module")
def suite():
    return run_theorems(max_examples=N_EXAMPLES, seed=0)


def test_every_theorem_behaves_as_documented(suite):
    assert [r.name for r in suite.results] == [t.name for t in THEOREMS]
    for r in suite.results:
        assert r.as_documented, (r.name, r.counterexample)
        assert r.examples == N_EXAMPLES, r.name
        if r.expected == "holds":
            assert r.passed and r.failures == 0 and r.counterexample is None
        else:
            assert not r.passed and r.counterexample is not None
            assert r.corrected_statement and r.corrected_by
            assert get_theorem(r.corrected_by).expected == "holds"
    assert suite.all_as_documented


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds(seed):
    res = run_theorems(max_examples=100, seed=seed)
    assert res.all_as_documented, [r.name for r in res.results if not r.as_documented]


def test_json_is_strict_and_complete(suite):
    text = json.dumps(suite.to_dict(), allow_nan=False)
    d = json.loads(text)
    for t in d["theorems"]:
        assert {"name", "statement", "examples", "passed", "counterexample"} <= set(t)


def test_bounds_are_attained(suite):
    res = {r.name: r for r in suite.results}
    # the simplex ETF attains δ_K = (K − 1)μ: the RIP bound is tight
    assert res["rip_from_coherence"].stats["max_delta_over_bound"] == pytest.approx(1, abs=1e-9)
    # the TSAE coefficient error reaches (K − 1)εδ_max (all cross-talk aligned)
    assert res["tsae_support_recovery"].stats["max_coefficient_error_over_bound"] > 0.9
    # ERC values approach 1 at the boundary K of the coherence condition
    assert res["l1_recovery_from_coherence"].stats["max_erc"] > 0.8


def _whiten(D, S):
    if S is None:
        X = np.asarray(D, float)
    else:
        lam, V = np.linalg.eigh(np.asarray(S, float))
        X = ((V * np.sqrt(lam)) @ V.T) @ np.asarray(D, float)
    return X / np.linalg.norm(X, axis=0)


def test_tsae_counterexample_is_minimal_and_rechecks(suite):
    ce = next(r for r in suite.results if r.name == "tsae_exact_reconstruction").counterexample
    D, S = np.array(ce["D"]), None if ce["S"] is None else np.array(ce["S"])
    code, tau, K = np.array(ce["code"]), ce["tau"], ce["K"]
    assert D.shape == (2, 2) and K == 2 and np.count_nonzero(code) == 2  # K = N = H = 2
    Sm = np.eye(2) if S is None else S
    Dt = _whiten(D, S)
    eps = abs(Dt[:, 0] @ Dt[:, 1])
    dmin, dmax = code[code > 0].min(), code.max()
    # hypotheses, recomputed: window feasible and τ inside it
    assert dmin > eps * 3 * dmax
    assert eps * 2 * dmax < tau < dmin - eps * dmax
    norms = np.sqrt(np.einsum("hj,hk,kj->j", D, Sm, D))
    Dh = D / norms
    x = Dh @ code
    z = Dh.T @ Sm @ x
    c = np.where(z > tau, z, 0)
    assert np.array_equal(c != 0, code != 0)  # support recovered
    e = x - Dh @ c
    rel = np.sqrt(e @ Sm @ e / (x @ Sm @ x))
    assert rel > 1e-3  # but not the activation
    # the coefficients are off by exactly the cross-talk G δ − δ
    G = Dt.T @ Dt
    np.testing.assert_allclose(c - code, (G - np.eye(2)) @ code, atol=1e-12)


def test_unit_column_counterexample_is_minimal_and_rechecks(suite):
    r = next(r for r in suite.results if r.name == "aip_invariance_unit_columns")
    ce = r.counterexample
    A, D = np.array(ce["A"]), np.array(ce["D"])
    assert D.shape == (2, 3)  # H = 2, N = 3; N = H cannot fail

    def cosines(M):
        U = M / np.linalg.norm(M, axis=0)
        S = np.linalg.inv(U @ U.T)
        G = U.T @ S @ U
        d = np.sqrt(np.diag(G))
        return G / np.outer(d, d)

    i, j = ce["atoms"]
    before, after = cosines(D)[i, j], cosines(A @ D)[i, j]
    assert abs(before - after) > 1e-6
    assert before == pytest.approx(ce["cos_before"]) and after == pytest.approx(ce["cos_after"])

    def raw_cosines(M):
        S = np.linalg.inv(M @ M.T)
        G = M.T @ S @ M
        d = np.sqrt(np.diag(G))
        return G / np.outer(d, d)

    np.testing.assert_allclose(raw_cosines(A @ D), raw_cosines(D), atol=1e-9)  # corrected


def test_discarded_draws_violate_a_hypothesis():
    """The runner discards exactly the examples whose hypotheses fail (recomputed here)."""
    t = get_theorem("rip_from_coherence")
    rng = np.random.default_rng([0, 99])
    n_disc = 0
    for i in range(200):
        ex = t.draw(rng, i)
        v = t.check(ex)
        Dt = _whiten(ex["D"], ex["S"])
        G = np.abs(Dt.T @ Dt)
        np.fill_diagonal(G, 0)
        K, N = ex["K"], Dt.shape[1]
        holds = (K - 1) * G.max() < 1 - 1e-9 and math.comb(N, K) <= 20000 and 2 <= K <= N
        assert (v.status == "discard") == (not holds)
        n_disc += v.status == "discard"
    assert 0 < n_disc < 200
    u = get_theorem("uniqueness_from_coherence")
    for i in range(100):
        ex = u.draw(rng, i)
        v = u.check(ex)
        Dt = _whiten(ex["D"], ex["S"])
        G = np.abs(Dt.T @ Dt)
        np.fill_diagonal(G, 0)
        if (2 * ex["K"] - 1) * G.max() >= 1 - 1e-9:
            assert v.status == "discard"


def test_runner_is_seeded_and_validates():
    a = get_theorem("spark_whitening_invariance").run(max_examples=20, seed=5)
    b = get_theorem("spark_whitening_invariance").run(max_examples=20, seed=5)
    assert (a.examples, a.discarded) == (b.examples, b.discarded)
    from rip_atoms.errors import ParameterError

    with pytest.raises(ParameterError):
        get_theorem("nope")
    with pytest.raises(ParameterError):
        get_theorem("rip_from_coherence").run(max_examples=0)


@pytest.mark.parametrize("mu, cap, expected", [
    (1 / 3, 10, 1), (1 / 3 - 1e-12, 10, 2), (0.2, 10, 2), (0.19, 10, 3), (1.0, 5, 0),
    (0.0, 7, 7), (1e-121, 7, 7),  # tiny μ: bounded work (no loop over 10¹²⁰ candidates)
])
def test_max_certified_k(mu, cap, expected):
    from rip_atoms.theorems import max_certified_k

    assert max_certified_k(mu, cap) == expected
    k = expected
    assert k == 0 or (2 * k - 1) * mu < 1
    assert k == cap or (2 * k + 1) * mu >= 1
