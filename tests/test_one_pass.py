"""One coherence pass per report: rip_bounds and spark_bounds take a precomputed result when it
covers them (same dictionary, metric, Babel depth and top pairs) and give the same brackets."""

from __future__ import annotations

import numpy as np
import pytest

import rip_atoms.rip as rip_mod
import rip_atoms.spark as spark_mod
from rip_atoms.coherence import coherence
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.metric import fit_metric
from rip_atoms.rip import rip_bounds
from rip_atoms.spark import spark_bounds


@pytest.fixture
def D():
    return np.random.default_rng(0).standard_normal((12, 40))


def _no_pass(*_a, **_k):
    raise AssertionError("a second coherence pass was made")


def test_rip_and_spark_reuse_a_covering_pass(D, monkeypatch):
    ks = [2, 3, 5]
    coh = coherence(D, "self", babel_p=13, top=256)
    ref_rip = rip_bounds(D, ks, "self", budget_s=0.5, enumerate_max=0, seed=1)
    ref_spark = spark_bounds(D, "self", budget_s=0.5, seed=1)
    monkeypatch.setattr(rip_mod, "coherence", _no_pass)
    monkeypatch.setattr(spark_mod, "coherence", _no_pass)
    res = rip_bounds(D, ks, "self", budget_s=0.5, enumerate_max=0, seed=1,
                     coherence_result=coh)
    for a, b in zip(ref_rip.brackets, res.brackets, strict=True):
        assert (a.k, a.U_upper, a.L_upper) == (b.k, b.U_upper, b.L_upper)
        if a.k == 2:
            assert a.U_lower == b.U_lower and a.witness_U == b.witness_U
    sp_ = spark_bounds(D, "self", budget_s=0.5, seed=1, coherence_result=coh)
    assert (sp_.lower, sp_.upper) == (ref_spark.lower, ref_spark.upper)


def test_a_pass_that_does_not_cover_is_recomputed(D):
    X = np.random.default_rng(1).standard_normal((500, 12)) @ np.diag(np.linspace(0.2, 3, 12))
    m = fit_metric(X)
    other = coherence(D, m, babel_p=13, top=256)  # another metric
    shallow = coherence(D, "self", babel_p=1, top=256)  # Babel too short for k = 5
    atoms = CorrectedAtoms(D, "self")
    assert not other.covers(atoms, babel_p=4, top=8)
    assert not shallow.covers(atoms, babel_p=4, top=8)
    assert coherence(D, "self", babel_p=4, top=8).covers(atoms, babel_p=4, top=8)
    truth = rip_bounds(D, [5], "self", budget_s=0.3, enumerate_max=0)
    for c in (other, shallow):
        res = rip_bounds(D, [5], "self", budget_s=0.3, enumerate_max=0, coherence_result=c)
        assert res.mu == truth.mu and res[5].U_upper == truth[5].U_upper
    # a different dictionary of the same shape is caught by the pair check
    E = np.random.default_rng(9).standard_normal((12, 40))
    assert not coherence(E, "self", babel_p=13, top=256).covers(atoms, babel_p=1)
