"""The paper's criteria: faithfulness R², AIP and Euclidean (rip_atoms.criteria.faithfulness),
against closed forms, hand-computed distributions and independent float64 computations written
out in the test files, never against the code under test (split from the former
tests/test_atoms.py; assertions unchanged).
"""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms.criteria import (
    UnitSet,
    faithfulness_r2,
    token_split,
)
from rip_atoms.testing.generators import (
    activations_with_moment,
    second_moment_matrix,
)


def test_planted_r2_is_one(planted):
    u = UnitSet.from_codes("atoms", planted.dictionary, planted.codes, kind="atoms")
    r = faithfulness_r2(planted.activations, u, metric=planted.metric)
    assert abs(r.r2_aip - 1) <= 1e-9 and abs(r.r2_euclidean - 1) <= 1e-9
    assert r.n_tokens == 600


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
