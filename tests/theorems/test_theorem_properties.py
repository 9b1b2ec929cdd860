"""The theorems' checks driven by the public hypothesis strategies (rip_atoms.testing): the same
properties on examples hypothesis generates and shrinks. For the documented false claim,
hypothesis itself finds and shrinks the counterexample to the minimal size K = N = H = 2."""

from __future__ import annotations

import numpy as np
from hypothesis import find, given, settings
from hypothesis import strategies as st

from rip_atoms.testing import (
    activation_sets,
    coherent_dictionaries,
    dictionaries,
    etf_block_dictionaries,
    gaussian_dictionaries,
    planted_atom_sets,
    sparse_codes,
)
from rip_atoms.testing.generators import random_invertible
from rip_atoms.theorems import get_theorem, max_certified_k

RIP = get_theorem("rip_from_coherence")
UNIQ = get_theorem("uniqueness_from_coherence")
L1 = get_theorem("l1_recovery_from_coherence")
TSAE = get_theorem("tsae_support_recovery")
TSAE_EXACT = get_theorem("tsae_exact_reconstruction")
INV = get_theorem("aip_invariance")
PARSEVAL = get_theorem("whitening_parseval")
SPARK = get_theorem("spark_whitening_invariance")


def mu(D):
    U = D / np.linalg.norm(D, axis=0)
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, 0)
    return G.max()


@given(dictionaries(), st.integers(2, 4))
def test_rip(D, K):
    if D.shape[1] > 14:
        D = D[:, :14]
    v = RIP.check({"D": D, "S": None, "K": min(K, D.shape[1])})
    assert v.status != "fail", v.reason


@given(coherent_dictionaries(), st.data(), st.sampled_from(["signed", "nonneg"]))
def test_uniqueness_and_l1_at_the_boundary(t, data, signs):
    D, m = t
    K = max(max_certified_k(m, min(D.shape[1], 4)), 1)  # μ = 1: K = 1 is discarded
    code = data.draw(sparse_codes(n_atoms=D.shape[1], K=st.integers(1, K), signs=signs))[0]
    ex = {"D": D, "S": None, "K": K, "code": code, "signs": signs}
    for thm in (UNIQ, L1):
        v = thm.check(ex)
        assert v.status != "fail", (thm.name, v.reason)


@given(planted_atom_sets(eps=st.floats(0.0, 0.15), K=st.integers(1, 3),
                         magnitude=st.tuples(st.floats(1.0, 1.5), st.floats(1.5, 2.0))),
       st.floats(0.05, 0.95))
def test_tsae_support_recovery(p, frac):
    w_lo = p.eps * p.K * p.delta_max
    w_hi = p.delta_min - p.eps * (p.K - 1) * p.delta_max
    ex = {"D": p.dictionary, "S": p.metric.S, "K": p.K, "codes": p.unit_codes,
          "delta_min": p.delta_min, "delta_max": p.delta_max, "tau": w_lo + frac * (w_hi - w_lo)}
    v = TSAE.check(ex)
    assert v.status != "fail", v.reason


def test_hypothesis_shrinks_the_tsae_counterexample_to_the_minimum():
    def fails(p):
        lo = p.eps * p.K * p.delta_max
        hi = p.delta_min - p.eps * (p.K - 1) * p.delta_max
        ex = {"D": p.dictionary, "S": p.metric.S, "K": p.K, "codes": p.unit_codes,
              "delta_min": p.delta_min, "delta_max": p.delta_max, "tau": 0.5 * (lo + hi)}
        return TSAE_EXACT.check(ex).status == "fail"

    p = find(planted_atom_sets(eps=st.floats(0.01, 0.3), magnitude=(1.0, 1.0)), fails,
             settings=settings(max_examples=500, database=None))
    assert (p.K, p.n_atoms, p.dim) == (2, 2, 2)


@given(activation_sets(dim=st.integers(1, 6)), st.integers(0, 2**32 - 1), st.data())
def test_aip_invariance(t, seed, data):
    X, _ = t
    H = X.shape[1]
    rng = np.random.default_rng(seed)
    A = random_invertible(rng, H, 50.0)
    N = data.draw(st.integers(H, H + 4))
    ex = {"X": X, "A": A, "D": rng.standard_normal((H, N)), "u": rng.standard_normal(H),
          "v": rng.standard_normal(H)}
    assert INV.check(ex).status != "fail"


@given(gaussian_dictionaries(dim=st.integers(1, 8)))
def test_parseval(D):
    assert PARSEVAL.check({"D": D}).status != "fail"


@given(etf_block_dictionaries(block_dims=st.lists(st.integers(1, 3), min_size=1, max_size=2)),
       st.integers(0, 2**32 - 1))
def test_spark_invariance_and_value(t, seed):
    D, m = t
    W = random_invertible(np.random.default_rng(seed), D.shape[0], 30.0)
    v = SPARK.check({"D": D, "W": W})
    assert v.status != "fail"
    if v.status == "pass":
        assert v.detail["spark"] == round(1 / m) + 1  # a whole ETF block is the circuit
