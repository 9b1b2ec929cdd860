"""The library's own engines agree with the suite's brute force on the suite's examples:
rip_bounds (exact δ_K), spark_bounds, classify_recovery (every code certified under the
coherence condition), coherence (μ) and tsae_encoder (the identifiable TSAE)."""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms.coherence import coherence
from rip_atoms.criteria import tsae_encoder
from rip_atoms.metric import AIPMetric
from rip_atoms.recovery import classify_recovery
from rip_atoms.rip import rip_bounds
from rip_atoms.spark import spark_bounds
from rip_atoms.theorems import aip_unit_atoms, enumerate_spark, exact_delta_k, get_theorem

pytestmark = pytest.mark.sensitive  # exact enumeration within a budget, float64 tolerances


def _metric(S):
    return None if S is None else AIPMetric.from_moment(np.linalg.inv(S))


def _examples(name, n, seed=0):
    t = get_theorem(name)
    rng = np.random.default_rng([seed, 7])
    out, i = [], 0
    while len(out) < n and i < 50 * n:
        ex = t.draw(rng, i)
        i += 1
        if t.check(ex).status == "pass":
            out.append(ex)
    return out


def test_rip_bounds_exact_equals_enumeration():
    for ex in _examples("rip_from_coherence", 25):
        Dt = aip_unit_atoms(ex["D"], ex["S"])
        res = rip_bounds(ex["D"], ex["K"], _metric(ex["S"]), budget_s=2.0)
        b = res[ex["K"]]
        assert b.exact
        assert b.delta_upper == pytest.approx(exact_delta_k(Dt, ex["K"])[0], abs=1e-9)
        G = np.abs(Dt.T @ Dt)
        np.fill_diagonal(G, 0)
        assert res.mu == pytest.approx(G.max(), abs=1e-12)


def test_spark_bounds_equal_enumeration():
    for ex in _examples("spark_whitening_invariance", 25):
        s, _, _ = enumerate_spark(ex["D"])
        res = spark_bounds(ex["D"], "raw", budget_s=2.0)
        assert res.exact
        assert res.lower == res.upper == s


def test_classify_recovery_certifies_every_code_under_the_coherence_condition():
    exs = _examples("l1_recovery_from_coherence", 30)
    for ex in exs:
        nonneg = ex["signs"] == "nonneg"
        # the code is over AIP-unit atoms: convert to the atoms as given (δⱼ / ‖W dⱼ‖)
        Sm = np.eye(ex["D"].shape[0]) if ex["S"] is None else ex["S"]
        norms = np.sqrt(np.einsum("hj,hk,kj->j", ex["D"], Sm, ex["D"]))
        res = classify_recovery(ex["D"], (ex["code"] / norms)[None, :], nonneg=nonneg,
                                metric=_metric(ex["S"]) or "raw")
        assert res.certified == 1, res.to_dict()


def test_coherence_matches_the_suite():
    for ex in _examples("uniqueness_from_coherence", 20):
        Dt = aip_unit_atoms(ex["D"], ex["S"])
        G = np.abs(Dt.T @ Dt)
        np.fill_diagonal(G, 0)
        assert coherence(ex["D"], _metric(ex["S"]) or "raw").mu == pytest.approx(G.max(),
                                                                                abs=1e-12)


def test_tsae_encoder_is_the_theorems_encoder():
    for ex in _examples("tsae_support_recovery", 20):
        D, S, codes, tau = ex["D"], ex["S"], ex["codes"], ex["tau"]
        Sm = np.eye(D.shape[0]) if S is None else S
        norms = np.sqrt(np.einsum("hj,hk,kj->j", D, Sm, D))
        X = codes @ (D / norms).T
        got = tsae_encoder(D, _metric(S), tau)(X) * norms  # back to AIP-unit codes
        np.testing.assert_array_equal(got != 0, codes != 0)
        assert np.max(np.abs(got - codes)) <= get_theorem("tsae_support_recovery").check(
            ex).detail["coefficient_bound"] + 1e-12
