"""The paper's criteria: unit sets, the token split and bad input (rip_atoms.criteria.units),
against closed forms, hand-computed distributions and independent float64 computations written
out in the test files, never against the code under test (split from the former
tests/test_atoms.py; assertions unchanged).
"""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms import Dictionary
from rip_atoms.criteria import (
    UnitSet,
    compare_units,
    faithfulness_r2,
    token_split,
)
from rip_atoms.errors import (
    NonFiniteError,
    ParameterError,
    RipAtomsError,
    ShapeMismatchError,
)
from rip_atoms.metric import AIPMetric, fit_metric


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
