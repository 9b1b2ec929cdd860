"""The paper's criteria: the comparison table (rip_atoms.criteria.comparison), against closed
forms, hand-computed distributions and independent float64 computations written out in the test
files, never against the code under test (split from the former tests/test_atoms.py; assertions
unchanged).
"""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms.criteria import (
    UnitSet,
    compare_units,
    token_split,
)
from rip_atoms.testing.generators import (
    activations_with_moment,
    second_moment_matrix,
)


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
