"""Tests for rip_atoms.theory: closed forms checked against independent computations."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize

from rip_atoms.theory import (
    GaussianCoherence,
    coherence_uniqueness_k,
    gaussian_coherence,
    generalized_welch_delta,
    k_weak,
    psi,
    psi_tau,
    rho_weak,
    spark_lower_from_coherence,
    welch_bound,
)

# ---------------------------------------------------------------------------------------------
# Independent reference implementations (quadrature + generic optimisers, no shared code)
# ---------------------------------------------------------------------------------------------


def _psi_quad(rho: float, nonneg: bool = False) -> float:
    """psi(rho) = min_tau rho(1+tau^2) + (1-rho) sqrt(2/pi) int_tau^inf (u-tau)^2 e^{-u^2/2} du.

    The l1+ cone uses half of the integral term.
    """
    scale = 0.5 if nonneg else 1.0

    def tail(tau: float) -> float:
        val, _ = integrate.quad(
            lambda u: (u - tau) ** 2 * math.exp(-0.5 * u * u), tau, np.inf, epsabs=1e-13
        )
        return math.sqrt(2.0 / math.pi) * val

    def objective(tau: float) -> float:
        return rho * (1.0 + tau * tau) + (1.0 - rho) * scale * tail(tau)

    res = optimize.minimize_scalar(
        objective, bounds=(0.0, 12.0), method="bounded", options={"xatol": 1e-10}
    )
    return float(min(res.fun, objective(0.0)))


def _rho_weak_bisect(delta: float, nonneg: bool = False) -> float:
    """rho_W(delta) = eps/delta with psi(eps) = delta, by plain bisection on the quad psi."""
    lo, hi = 0.0, delta
    for _ in range(45):
        mid = 0.5 * (lo + hi)
        if _psi_quad(mid, nonneg) < delta:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi) / delta


def _simplex_etf(H: int) -> np.ndarray:
    """Simplex ETF: the H+1 centred standard basis vectors of R^{H+1}, normalised and written in
    an orthonormal basis of the sum-zero hyperplane. Returns H x (H+1), unit columns."""
    n = H + 1
    E = np.eye(n) - np.full((n, n), 1.0 / n)
    E /= np.linalg.norm(E, axis=0)
    # orthonormal basis of {x : sum x = 0}: left singular vectors of E with non-zero singular value
    U, s, _ = np.linalg.svd(E)
    V = U[:, :H]
    assert s[H] < 1e-12 and s[H - 1] > 0.5
    return V.T @ E


def _coherence(D: np.ndarray) -> float:
    G = np.abs(D.T @ D)
    np.fill_diagonal(G, 0.0)
    return float(G.max())


def _exact_delta_k(D: np.ndarray, k: int) -> float:
    worst = 0.0
    for S in itertools.combinations(range(D.shape[1]), k):
        ev = np.linalg.eigvalsh(D[:, S].T @ D[:, S])
        worst = max(worst, ev[-1] - 1.0, 1.0 - ev[0])
    return worst


# ---------------------------------------------------------------------------------------------
# Welch and generalised Welch
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("H", "N", "expected", "tol"),
    [(2304, 16384, 0.019314, 5e-7), (4096, 131072, 0.015379, 5e-7), (2304, 65536, 0.02046, 5e-6)],
)
def test_welch_reference_shapes(H, N, expected, tol):
    assert welch_bound(H, N) == pytest.approx(expected, abs=tol)


def test_welch_trivial_cases_and_validation():
    assert welch_bound(10, 10) == 0.0
    assert welch_bound(10, 3) == 0.0
    assert welch_bound(1, 1) == 0.0
    assert welch_bound(1, 2) == pytest.approx(1.0)  # two unit vectors on a line
    for bad in [(0, 5), (5, 0), (-1, 5)]:
        with pytest.raises(ValueError):
            welch_bound(*bad)
    with pytest.raises(TypeError):
        welch_bound(2.5, 10)


@pytest.mark.parametrize("H", [2, 3, 7, 20, 64])
def test_welch_attained_by_simplex_etf(H):
    D = _simplex_etf(H)
    assert D.shape == (H, H + 1)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, atol=1e-12)
    mu = _coherence(D)
    assert mu == pytest.approx(1.0 / H, abs=1e-12)
    assert welch_bound(H, H + 1) == pytest.approx(mu, abs=1e-12)
    # generalised Welch is a valid (and at k = 2 tight) floor for its exact delta_k = (k-1)/H
    assert generalized_welch_delta(H, H + 1, 2) == pytest.approx(mu, abs=1e-12)
    for k in range(2, min(H + 1, 5) + 1):
        exact = _exact_delta_k(D, k) if H <= 7 else (k - 1) / H
        assert exact == pytest.approx((k - 1) / H, abs=1e-10)
        assert generalized_welch_delta(H, H + 1, k) <= exact + 1e-12


@given(H=st.integers(1, 5000), extra=st.integers(-100, 100000))
def test_generalized_welch_equals_welch_at_k2(H, extra):
    N = max(2, H + extra)
    assert generalized_welch_delta(H, N, 2) == pytest.approx(welch_bound(H, N), rel=1e-14)
    assert generalized_welch_delta(H, N, 1) == 0.0


@given(H=st.integers(1, 500), N=st.integers(1, 5000), data=st.data())
def test_generalized_welch_monotone_in_k(H, N, data):
    k1 = data.draw(st.integers(1, N))
    k2 = data.draw(st.integers(k1, N))
    a, b = generalized_welch_delta(H, N, k1), generalized_welch_delta(H, N, k2)
    assert 0.0 <= a <= b
    if N <= H:
        assert b == 0.0


def test_generalized_welch_reference_and_validation():
    assert generalized_welch_delta(2304, 16384, 32) == pytest.approx(0.1075, abs=5e-5)
    with pytest.raises(ValueError):
        generalized_welch_delta(10, 20, 21)
    with pytest.raises(ValueError):
        generalized_welch_delta(10, 20, 0)


@pytest.mark.parametrize("seed", range(4))
def test_generalized_welch_below_exact_delta_of_random_matrices(seed):
    rng = np.random.default_rng(seed)
    H, N = 3, 7
    D = rng.standard_normal((H, N))
    D /= np.linalg.norm(D, axis=0)
    for k in range(2, 5):
        assert generalized_welch_delta(H, N, k) <= _exact_delta_k(D, k) + 1e-12


# ---------------------------------------------------------------------------------------------
# psi: statistical dimension of the l1 descent cone
# ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(rho=st.floats(1e-6, 1.0 - 1e-6), nonneg=st.booleans())
def test_psi_matches_quadrature_infimum(rho, nonneg):
    assert psi(rho, nonneg) == pytest.approx(_psi_quad(rho, nonneg), abs=1e-6)


@pytest.mark.parametrize("nonneg", [False, True])
@pytest.mark.parametrize("rho", [1e-4, 0.004, 0.05, 0.3, 0.5, 0.9, 0.999])
def test_psi_matches_quadrature_fixed_points(rho, nonneg):
    assert psi(rho, nonneg) == pytest.approx(_psi_quad(rho, nonneg), abs=1e-7)


@settings(max_examples=40, deadline=None)
@given(rho=st.floats(1e-5, 0.999), nonneg=st.booleans())
def test_psi_tau_is_stationary_point(rho, nonneg):
    from scipy.stats import norm

    c = 1.0 if nonneg else 2.0
    tau = psi_tau(rho, nonneg)
    lhs = c * (norm.pdf(tau) / tau - norm.sf(tau))
    assert lhs == pytest.approx(rho / (1.0 - rho), rel=1e-9)
    # the objective evaluated at tau* reproduces psi (checks the closed-form reduction)
    obj = rho * (1 + tau**2) + (1 - rho) * c * ((1 + tau**2) * norm.sf(tau) - tau * norm.pdf(tau))
    assert obj == pytest.approx(psi(rho, nonneg), rel=1e-9, abs=1e-300)


@given(a=st.floats(0.0, 1.0), b=st.floats(0.0, 1.0), nonneg=st.booleans())
def test_psi_increasing_and_above_rho(a, b, nonneg):
    lo, hi = min(a, b), max(a, b)
    p_lo, p_hi = psi(lo, nonneg), psi(hi, nonneg)
    assert p_lo <= p_hi
    assert lo <= p_lo <= 1.0
    if 0.0 < lo < 1.0:
        assert p_lo > lo
    if hi - lo > 1e-6:
        assert p_lo < p_hi


def test_psi_edges_and_signed_dominates_nonneg():
    for nonneg in (False, True):
        assert psi(0.0, nonneg) == 0.0
        assert psi(1.0, nonneg) == 1.0
        assert psi_tau(1.0, nonneg) == 0.0
        assert psi_tau(0.0, nonneg) == math.inf
    for rho in np.linspace(0.01, 0.99, 25):
        assert psi(rho, nonneg=True) < psi(rho)
    #: 1000 * psi(0.004) = 29.6
    assert 1000 * psi(0.004) == pytest.approx(29.6, abs=0.05)
    # extreme sparsities stay finite and ordered
    assert 0.0 < psi(1e-300) < 1e-295
    assert psi(1.0 - 1e-15) == pytest.approx(1.0, abs=1e-6)
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError):
            psi(bad)


# ---------------------------------------------------------------------------------------------
# Donoho-Tanner weak threshold
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nonneg", [False, True])
@pytest.mark.parametrize("delta", [0.1, 0.5])
def test_rho_weak_matches_independent_bisection(delta, nonneg):
    assert rho_weak(delta, nonneg) == pytest.approx(_rho_weak_bisect(delta, nonneg), rel=1e-4)


def test_rho_weak_reference_values():
    assert rho_weak(0.02) == pytest.approx(0.1234, abs=5e-5)  #
    assert rho_weak(0.5) == pytest.approx(0.385, abs=1e-3)
    assert rho_weak(0.5, nonneg=True) == pytest.approx(0.558, abs=1e-3)  # DT simplex
    assert rho_weak(1.0) == 1.0
    assert rho_weak(1.0, nonneg=True) == 1.0
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValueError):
            rho_weak(bad)


@given(d=st.floats(1e-4, 0.999), nonneg=st.booleans())
@settings(max_examples=30, deadline=None)
def test_rho_weak_solves_defining_equation(d, nonneg):
    r = rho_weak(d, nonneg)
    assert 0.0 < r < 1.0
    assert psi(r * d, nonneg) == pytest.approx(d, rel=1e-10)


def test_rho_weak_monotone_and_nonneg_above_signed():
    deltas = np.linspace(0.02, 0.98, 25)
    signed = [rho_weak(d) for d in deltas]
    plus = [rho_weak(d, nonneg=True) for d in deltas]
    assert np.all(np.diff(signed) > 0)
    assert np.all(np.diff(plus) > 0)
    assert np.all(np.array(plus) > np.array(signed))


def test_rho_weak_small_delta_asymptotics():
    # rho_W(delta) ~ 1/(2 ln(1/delta)) (Donoho-Tanner 2009); convergence is slow
    deltas = (1e-6, 1e-12, 1e-30, 1e-100, 1e-300)
    ratios = [rho_weak(d) * 2.0 * math.log(1.0 / d) for d in deltas]
    for ratio in ratios:
        assert 0.95 < ratio < 1.1
    gaps = [abs(r - 1.0) for r in ratios]
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 0.01


@pytest.mark.parametrize("nonneg", [False, True])
def test_rho_weak_near_one(nonneg):
    for d in (0.999, 0.999999, 1.0 - 1e-12):
        r = rho_weak(d, nonneg)
        assert 0.9 < r <= 1.0
        assert psi(r * d, nonneg) == pytest.approx(d, rel=1e-12)


def test_k_weak_reference_shapes():
    #: k_W ~ 490 at 2304 x 16384 and ~561 at 4096 x 131072
    assert k_weak(2304, 16384) == pytest.approx(490, abs=1.0)
    assert k_weak(4096, 131072) == pytest.approx(561, abs=1.0)
    assert k_weak(200, 400) == pytest.approx(77, abs=0.5)  # 50% point of the N = 400 check
    assert k_weak(2304, 16384, nonneg=True) > k_weak(2304, 16384)
    assert k_weak(64, 64) == 64.0
    with pytest.raises(ValueError):
        k_weak(100, 50)


# ---------------------------------------------------------------------------------------------
# Coherence of Gaussian dictionaries (Cai-Jiang)
# ---------------------------------------------------------------------------------------------


def test_gaussian_coherence_monte_carlo():
    H, N, draws = 200, 2000, 30
    rng = np.random.default_rng(0)
    mus = np.empty(draws)
    for t in range(draws):
        G = rng.standard_normal((H, N))
        G /= np.linalg.norm(G, axis=0)
        mus[t] = _coherence(G)
    pred = gaussian_coherence(H, N)
    # The limit law is asymptotic: at this size it overshoots the median by ~2-3% (seen over
    # several seeds); the median of 30 draws has a sampling error of ~1%. 5% is honest.
    assert np.median(mus) == pytest.approx(pred.quantiles[0.5], rel=0.05)
    assert np.mean(mus) == pytest.approx(pred.mean, rel=0.05)
    assert pred.quantiles[0.05] < np.median(mus) < pred.quantiles[0.95]
    assert np.mean((mus >= pred.quantiles[0.05]) & (mus <= pred.quantiles[0.95])) >= 0.6


def test_gaussian_coherence_structure():
    res = gaussian_coherence(2304, 16384, quantiles=(0.05, 0.5, 0.95))
    assert isinstance(res, GaussianCoherence)
    q = res.quantiles
    assert q[0.05] < q[0.5] < res.mean < q[0.95]  # Gumbel: mean above median
    assert res.first_order == pytest.approx(2.0 * math.sqrt(math.log(16384) / 2304))
    # hand computation of the median: y_0.5 = 2 log K - 2 log log 2
    y_med = -math.log(8 * math.pi) - 2 * math.log(math.log(2))
    expected = math.sqrt((4 * math.log(16384) - math.log(math.log(16384)) + y_med) / 2304)
    assert q[0.5] == pytest.approx(expected, rel=1e-12)
    assert welch_bound(2304, 16384) < q[0.05]
    d = res.to_dict()
    assert set(d) == {"H", "N", "mean", "quantiles", "first_order", "method"}
    json.loads(json.dumps(d))
    assert d["quantiles"]["0.5"] == q[0.5]
    with pytest.raises(AttributeError):
        res.mean = 0.0  # type: ignore[misc]
    for bad in [(10, 2), (0, 10)]:
        with pytest.raises(ValueError):
            gaussian_coherence(*bad)
    with pytest.raises(ValueError):
        gaussian_coherence(10, 100, quantiles=(0.0,))


@given(H=st.integers(10, 100000), N=st.integers(3, 10**7))
def test_gaussian_coherence_in_unit_interval(H, N):
    res = gaussian_coherence(H, N)
    for v in (res.mean, res.first_order, *res.quantiles.values()):
        assert 0.0 <= v <= 1.0


# ---------------------------------------------------------------------------------------------
# What coherence certifies
# ---------------------------------------------------------------------------------------------


def test_coherence_uniqueness_k():
    assert coherence_uniqueness_k(1 / 3) == pytest.approx(2.0)
    assert coherence_uniqueness_k(1.0) == 1.0
    assert coherence_uniqueness_k(0.0) == math.inf
    # K < (1 + 1/mu)/2  <=>  mu < 1/(2K - 1)
    for mu in (0.01, 0.1, 0.2, 0.49):
        for K in range(1, 60):
            assert (K < coherence_uniqueness_k(mu)) == (mu < 1 / (2 * K - 1))
    with pytest.raises(ValueError):
        coherence_uniqueness_k(1.5)


def test_spark_lower_from_coherence_exact_reciprocals():
    assert spark_lower_from_coherence(1 / 3) == 4
    assert spark_lower_from_coherence(1.0) == 2
    assert spark_lower_from_coherence(0.3) == 5  # 1 + 3.33 -> 5
    assert spark_lower_from_coherence(0.0) == math.inf
    for n in range(1, 5000):
        assert spark_lower_from_coherence(1.0 / n) == n + 1
    for bad in (-0.1, 2.0):
        with pytest.raises(ValueError):
            spark_lower_from_coherence(bad)


@pytest.mark.parametrize("H", [2, 3, 5, 8])
def test_spark_bound_is_tight_for_simplex_etf(H):
    # the simplex ETF has spark H + 1 (any H columns independent, all H + 1 dependent)
    D = _simplex_etf(H)
    assert spark_lower_from_coherence(_coherence(D)) == H + 1
    assert np.linalg.matrix_rank(D) == H


@given(st.floats(min_value=1e-6, max_value=1.0))
def test_coherence_certified_k_is_the_largest_integer_with_the_condition(mu):
    from rip_atoms.theory import coherence_certified_k

    k = coherence_certified_k(mu)
    assert k == 0 or (2 * k - 1) * mu < 1
    assert (2 * (k + 1) - 1) * mu >= 1


def test_coherence_certified_k_edges():
    from rip_atoms.theory import coherence_certified_k

    assert coherence_certified_k(0.0) == math.inf
    assert coherence_certified_k(1.0) == 0
    assert coherence_certified_k(1 / 3) == 1  # (2·2−1)/3 = 1, not < 1
    assert coherence_certified_k(0.3) == 2


def test_coherence_certified_k_terminates_for_tiny_mu():
    from rip_atoms.theory import coherence_certified_k

    for mu in (6.5e-121, 2.5e-230, 1e-17):
        k = coherence_certified_k(mu)
        assert k >= 0.5 * (1 + 1 / mu) - 2  # the floor of (1 + 1/μ)/2, up to rounding
