"""The empirical phase transition of basis pursuit lands on the Donoho–Tanner weak threshold.

Theorem (Donoho–Tanner 2009; Amelunxen–Lotz–McCoy–Tropp 2014): for a Gaussian H×N dictionary,
basis pursuit recovers a random k-sparse code with probability → 1 for k < ρ_W(H/N)·H and → 0
above it, with a transition of width O(√N). At H = 200, N = 400 the 50% point must lie within
±4 of ρ_W·H ≈ 77.14 (signed) and ρ_W⁺·H ≈ 111.65 (non-negative). The reference values below
come from the closed-form root of ψ, checked against theory.py's own tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms.errors import ParameterError
from rip_atoms.recovery import crossing, pava_decreasing, phase_transition
from rip_atoms.theory import k_weak, rho_weak

K_WEAK_SIGNED = 77.1379  # ρ_W(1/2)·200
K_WEAK_NONNEG = 111.6455  # ρ_W⁺(1/2)·200


@pytest.mark.slow
@pytest.mark.parametrize(
    ("nonneg", "k_ref", "ks"),
    [(False, K_WEAK_SIGNED, range(61, 94, 4)), (True, K_WEAK_NONNEG, range(96, 129, 4))],
    ids=["signed", "nonneg"],
)
def test_empirical_50_percent_point_is_the_weak_threshold(nonneg, k_ref, ks):
    res = phase_transition(200, 400, ks, 40, nonneg=nonneg, seed=2026)
    assert res.k_weak == pytest.approx(k_ref, abs=1e-3)
    assert np.all(res.undetermined == 0)
    assert res.success_rate[0] >= 0.85 and res.success_rate[-1] <= 0.15
    assert res.k50_empirical is not None
    assert abs(res.k50_empirical - k_ref) <= 4.0, res.to_dict()


def test_small_transition_is_seeded_and_reports_the_prediction():
    a = phase_transition(20, 40, [2, 6, 10, 14, 18], 6, seed=3)
    b = phase_transition(20, 40, [18, 2, 14, 6, 10, 10], 6, seed=3)  # order/duplicates ignored
    np.testing.assert_array_equal(a.ks, [2, 6, 10, 14, 18])
    np.testing.assert_array_equal(a.successes, b.successes)
    assert a.rho_weak == pytest.approx(rho_weak(0.5))
    assert a.k_weak == pytest.approx(k_weak(20, 40))
    assert np.all(a.successes + a.failures + a.undetermined == 6)
    assert a.success_rate[0] == 1.0 and a.success_rate[-1] == 0.0
    d = a.to_dict()
    assert d["k"] == [2, 6, 10, 14, 18] and len(d["success_rate"]) == 5
    assert {"rho_weak", "k_weak", "k50_empirical"} <= d.keys()
    n = phase_transition(20, 40, [2, 18], 3, nonneg=True, seed=1)
    assert n.rho_weak == pytest.approx(rho_weak(0.5, nonneg=True))


def test_fifty_percent_point_interpolation():
    ks = np.array([10, 20, 30, 40])
    w = np.ones(4)
    assert crossing(ks, np.array([1.0, 0.75, 0.25, 0.0]), w) == pytest.approx(25.0)
    assert crossing(ks, np.array([1.0, 0.5, 0.5, 0.0]), w) == pytest.approx(30.0)
    assert crossing(ks, np.array([1.0, 1.0, 0.9, 0.8]), w) is None
    # a noisy, non-monotone curve is first made non-increasing (pool adjacent violators)
    np.testing.assert_allclose(pava_decreasing(np.array([1.0, 0.4, 0.6, 0.0]), w),
                               [1.0, 0.5, 0.5, 0.0])
    assert crossing(ks, np.array([1.0, 0.4, 0.6, 0.0]), w) == pytest.approx(30.0)


def test_bad_arguments():
    with pytest.raises(ParameterError):
        phase_transition(20, 40, [0, 3], 2)
    with pytest.raises(ParameterError):
        phase_transition(20, 40, [41], 2)
    with pytest.raises(ParameterError):
        phase_transition(50, 40, [3], 2)
    with pytest.raises(ParameterError):
        phase_transition(20, 40, [3], 0)
