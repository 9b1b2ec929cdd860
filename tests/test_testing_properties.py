"""rip_atoms.testing.properties: each check refuses inputs outside its theorem's hypothesis,
catches a wrong solver, and computes its quantities as stated (closed forms by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms.errors import ParameterError
from rip_atoms.testing.properties import (
    PreconditionError,
    assert_l1_minimal,
    assert_recovers,
    assert_support_identified,
    exact_recovery_coefficient,
)

S2 = 2 ** -0.5


def lstsq_on_true_support(D, y, K):
    """A 'solver' that is right exactly when the support is the K largest |Dᵀy|."""
    S = np.sort(np.argsort(-np.abs(D.T @ y))[:K])
    x = np.zeros(D.shape[1])
    x[S] = np.linalg.lstsq(D[:, S], y, rcond=None)[0]
    return x


def test_erc_closed_forms():
    D = np.array([[1.0, 0.0, S2], [0.0, 1.0, S2]])
    assert exact_recovery_coefficient(D, [0, 1]) == pytest.approx(2 * S2)  # D_S⁺d₂ = (1, 1)/√2
    assert exact_recovery_coefficient(D, [0]) == pytest.approx(S2)  # max(0, 1/√2)
    assert exact_recovery_coefficient(np.eye(2), [0, 1]) == 0.0  # S is everything
    assert exact_recovery_coefficient(np.array([[1.0, 1.0, 0.0]]), [0, 1]) == np.inf


def test_erc_holds_where_coherence_does_not():
    d = np.array([0.3, 0.3, 0.9])
    D = np.column_stack([np.eye(3), d / np.linalg.norm(d)])  # μ ≈ 0.94 ≥ 1/3
    code = np.array([1.0, -2.0, 0.0, 0.0])
    erc = exact_recovery_coefficient(D, [0, 1])
    assert erc == pytest.approx(0.6 / np.linalg.norm(d))
    with pytest.raises(PreconditionError, match="coherence theorem does not apply"):
        assert_recovers(lstsq_on_true_support, D, code)
    x = assert_recovers(lstsq_on_true_support, D, code, condition="erc")
    np.testing.assert_allclose(x, code, atol=1e-12)


def test_assert_recovers_catches_a_wrong_solver_and_refuses_bad_input():
    D = np.eye(3)
    code = np.array([0.0, 2.0, 0.0])
    with pytest.raises(AssertionError, match=r"true support \[1\], found \[\]"):
        assert_recovers(lambda D, y, K: np.zeros(3), D, code)
    assert_recovers(lambda D, y, K: 0.5 * y, D, code, support_only=True)
    with pytest.raises(AssertionError):
        assert_recovers(lambda D, y, K: 0.5 * y, D, code)
    with pytest.raises(PreconditionError, match="unit-norm"):
        assert_recovers(lambda D, y, K: y, 2 * D, code)
    with pytest.raises(ParameterError, match="condition must be"):
        assert_recovers(lambda D, y, K: y, D, code, condition="rip")


def test_certificate_condition_uses_classify_recovery():
    D = np.array([[1.0, 0.0, S2], [0.0, 1.0, S2]])
    code = np.array([1.0, 1.0, 0.0])  # ‖δ‖₁ = 2 > √2 = ‖(0, 0, √2)‖₁: ℓ1 fails
    with pytest.raises(PreconditionError, match="not certified"):
        assert_recovers(lambda D, y, K: y, D, code, condition="certificate")
    good = np.array([1.0, 0.0, 0.0])
    assert_recovers(lambda D, y, K: np.r_[y[0], 0.0, 0.0], D, good, condition="certificate")


def test_support_identification_checks_the_window():
    c = 0.2
    D = np.array([[1.0, c], [0.0, np.sqrt(1 - c * c)]])  # ε = 0.2
    codes = np.array([[1.0, 0.0], [0.0, 1.5]])  # K = 1, δ ∈ [1, 1.5]: window (0.3, 1)
    X = codes @ D.T

    def tsae(tau):
        return lambda X: np.where(X @ D > tau, X @ D, 0.0)

    Z = assert_support_identified(tsae(0.5), D, codes, thresholds=0.5)
    np.testing.assert_array_equal(Z != 0, codes != 0)
    assert X.shape == (2, 2)
    with pytest.raises(PreconditionError, match="leave the window"):
        assert_support_identified(tsae(0.2), D, codes, thresholds=0.2)
    with pytest.raises(AssertionError, match="support"):
        assert_support_identified(tsae(0.1), D, codes)  # no thresholds given: cross-talk leaks
    with pytest.raises(PreconditionError, match="non-negative"):
        assert_support_identified(tsae(0.5), D, -codes)
    wide = np.array([[1.0, 0.0], [0.0, 10.0]])  # δ_max/δ_min = 10 > 1/ε: infeasible
    with pytest.raises(PreconditionError, match="infeasible"):
        assert_support_identified(tsae(0.5), D, wide)


def test_assert_l1_minimal_against_highs():
    D = np.array([[1.0, 0.0, S2], [0.0, 1.0, S2]])
    y = np.array([1.0, 1.0])  # optimum ‖(0, 0, √2)‖₁ = √2
    x, p = assert_l1_minimal(lambda D, y: np.array([0.0, 0.0, np.sqrt(2)]), D, y)
    assert p == pytest.approx(np.sqrt(2))
    with pytest.raises(AssertionError, match="HiGHS optimum"):
        assert_l1_minimal(lambda D, y: np.array([1.0, 1.0, 0.0]), D, y)
    with pytest.raises(AssertionError, match="infeasible"):
        assert_l1_minimal(lambda D, y: np.zeros(3), D, y)
    with pytest.raises(PreconditionError, match="HiGHS"):
        assert_l1_minimal(lambda D, y: np.zeros(2), np.array([[1.0, 1.0]]), np.array([-1.0]),
                          nonneg=True)
