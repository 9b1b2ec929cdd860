"""Closed-form and one-dimensional-root reference values from compressed-sensing theory.

Notation (as in ``docs/design.md``): H is the ambient dimension, N the number of atoms (unit
columns of a dictionary D in R^{H x N}), k (or K) a sparsity. Donoho-Tanner coordinates are
delta = H/N (undersampling) and rho = k/H (sparsity per measurement).

Contents
--------
- :func:`welch_bound`, :func:`generalized_welch_delta`: floors that *any* dictionary obeys.
- :func:`psi`, :func:`psi_tau`: statistical dimension of the l1 descent cone (ALMT 2014).
- :func:`rho_weak`, :func:`k_weak`: the Donoho-Tanner weak phase transition of basis pursuit
  for Gaussian dictionaries (signed and non-negative).
- :func:`gaussian_coherence`: the Cai-Jiang limiting law of the coherence of N iid Gaussian
  vectors in R^H.
- :func:`coherence_uniqueness_k`, :func:`spark_lower_from_coherence`, :func:`uniqueness_holds`,
  :func:`babel_certified_k`: what a coherence value (or the Babel function) certifies about
  uniqueness, exact recovery and the spark.

Everything here is numpy/scipy only and costs microseconds to milliseconds.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special

from rip_atoms.errors import ParameterError, ParameterTypeError

__all__ = [
    "GaussianCoherence",
    "babel_certified_k",
    "coherence_certified_k",
    "coherence_uniqueness_k",
    "gaussian_coherence",
    "generalized_welch_delta",
    "k_weak",
    "psi",
    "psi_tau",
    "rho_weak",
    "spark_lower_from_coherence",
    "uniqueness_holds",
    "welch_bound",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# K = (8*pi)^(-1/2), the constant in the Cai-Jiang Gumbel law.
_LOG_CJ_K = -0.5 * math.log(8.0 * math.pi)


def _positive_int(name: str, value: int) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise ParameterTypeError(f"{name} must be an integer, got {value!r}") from None
    if v < 1:
        raise ParameterError(f"{name} must be >= 1, got {v}")
    return v


def _as_float(name: str, value: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterTypeError(f"{name} must be a real number, got {value!r}") from None


def _unit_interval(name: str, value: float) -> float:
    v = _as_float(name, value)
    if not 0.0 <= v <= 1.0:  # also rejects NaN
        raise ParameterError(f"{name} must lie in [0, 1], got {value!r}")
    return v


# ---------------------------------------------------------------------------------------------
# Welch-type floors
# ---------------------------------------------------------------------------------------------


def welch_bound(H: int, N: int) -> float:
    """Welch lower bound on the coherence of N unit vectors in R^H.

    ``mu >= sqrt((N - H) / (H (N - 1)))`` for N > H, and 0 for N <= H (an orthonormal set
    exists). Equality holds iff the vectors form an equiangular tight frame (ETF), e.g. the
    simplex ETF with N = H + 1, whose coherence is exactly 1/H.

    Sources: L. R. Welch, "Lower bounds on the maximum cross correlation of signals", IEEE
    Trans. Inf. Theory 20(3):397-399, 1974; T. Strohmer & R. W. Heath, "Grassmannian frames with
    applications to coding and communication", ACHA 14:257-275, 2003.

    Parameters
    ----------
    H : int
        Dimension (>= 1).
    N : int
        Number of vectors (>= 1).

    Returns
    -------
    float
        The bound, in [0, 1].
    """
    H = _positive_int("H", H)
    N = _positive_int("N", N)
    if N <= H:
        return 0.0
    return math.sqrt((N - H) / (H * (N - 1)))


def generalized_welch_delta(H: int, N: int, k: int) -> float:
    """Lower bound on the restricted isometry constant delta_k of any H x N unit-column matrix.

    ``delta_k >= sqrt((k - 1)(N - H) / (H (N - 1)))``; 0 when N <= H or k <= 1, and equal to
    :func:`welch_bound` at k = 2 (where delta_2 = mu exactly). Any claimed *upper* bound on
    delta_k below this value is a bug.

    Derivation: the frame potential obeys ||D^T D||_F^2 >= N^2 / H
    (Benedetto & Fickus, "Finite normalized tight frames", Adv. Comput. Math. 18:357-385, 2003).
    Averaging ||G_S - I||_F^2 over uniformly random supports |S| = k gives
    k(k-1)/(N(N-1)) * (||G||_F^2 - N) >= k(k-1)(N-H)/(H(N-1)); some S attains at least the
    average, and ||G_S - I||_2^2 >= ||G_S - I||_F^2 / k with delta_k >= ||G_S - I||_2.

    Parameters
    ----------
    H, N : int
        Dimension and number of atoms (>= 1).
    k : int
        Support size, 1 <= k <= N.

    Returns
    -------
    float
        The bound (>= 0).
    """
    H = _positive_int("H", H)
    N = _positive_int("N", N)
    k = _positive_int("k", k)
    if k > N:
        raise ParameterError(f"k must be <= N = {N}, got {k}")
    if N <= H or k <= 1:
        return 0.0
    return math.sqrt((k - 1) * (N - H) / (H * (N - 1)))


# ---------------------------------------------------------------------------------------------
# Statistical dimension of the l1 descent cone and the Donoho-Tanner weak threshold
# ---------------------------------------------------------------------------------------------


def _cone_factor(nonneg: bool) -> float:
    return 1.0 if nonneg else 2.0


def _upper_tail(tau: float) -> float:
    """Q(tau) = 1 - Phi(tau) for tau >= 0, as erfcx(tau/sqrt 2) exp(-tau^2/2) / 2 (no early
    underflow, unlike ``ndtr(-tau)`` which returns 0 in the subnormal range)."""
    return 0.5 * float(special.erfcx(tau / math.sqrt(2.0))) * math.exp(-0.5 * tau * tau)


def _log_stationarity_lhs(tau: float, c: float) -> float:
    """log of g(tau) = c [phi(tau)/tau - Q(tau)], computed without underflow.

    With Q(tau) = exp(-tau^2/2) erfcx(tau/sqrt 2)/2 and phi(tau) = exp(-tau^2/2)/sqrt(2 pi),
    g(tau) = c exp(-tau^2/2) [1/(tau sqrt(2 pi)) - erfcx(tau/sqrt 2)/2].
    """
    bracket = 1.0 / (tau * _SQRT_2PI) - 0.5 * special.erfcx(tau / math.sqrt(2.0))
    if bracket <= 0.0:  # only by rounding, far beyond any tau a float ratio can reach
        return -math.inf
    return math.log(c) + math.log(bracket) - 0.5 * tau * tau


def psi_tau(rho: float, nonneg: bool = False) -> float:
    """Minimiser tau* of the infimum that defines :func:`psi`.

    tau* is the unique root in (0, inf) of the stationarity equation

        c [phi(tau)/tau - Q(tau)] = rho / (1 - rho),     c = 2 (signed), c = 1 (non-negative),

    with Q = 1 - Phi the N(0,1) upper tail and phi its density (ALMT 2014, Prop. 4.5; the same
    equation as M. B. McCoy's ``snow.m``). The left side g(tau) is strictly decreasing
    (g'(tau) = -c phi(tau)/tau^2) from +inf at 0+ to 0 at +inf, so the root is unique; it is
    found by ``brentq`` on log g(tau) - log(rho/(1-rho)) after expanding a bracket from tau = 1
    geometrically (halving / doubling until the sign changes, which must happen by the limits
    above). Returns +inf for rho = 0 and 0 for rho = 1.

    Parameters
    ----------
    rho : float
        Relative sparsity s/N in [0, 1].
    nonneg : bool
        Use the descent cone of the l1 norm restricted to the non-negative orthant ("l1+").

    Returns
    -------
    float
        tau* >= 0.
    """
    rho = _unit_interval("rho", rho)
    if rho == 0.0:
        return math.inf
    if rho == 1.0:
        return 0.0
    c = _cone_factor(nonneg)
    log_target = math.log(rho) - math.log1p(-rho)

    def f(tau: float) -> float:
        return _log_stationarity_lhs(tau, c) - log_target

    # Geometric bracket search from tau = 1; it terminates because f -> +inf at 0+ and
    # f -> -inf at +inf, and ends with f(lo) > 0 > f(hi), hi = 2 lo.
    f1 = f(1.0)
    if f1 == 0.0:
        return 1.0
    if f1 > 0.0:
        hi = 2.0
        while f(hi) >= 0.0:
            hi *= 2.0
        lo = 0.5 * hi
    else:
        lo = 0.5
        while f(lo) <= 0.0:
            lo *= 0.5
        hi = 2.0 * lo
    return float(optimize.brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps))


def psi(rho: float, nonneg: bool = False) -> float:
    """Per-coordinate statistical dimension of the l1 descent cone at relative sparsity rho.

    For x in R^N with s = rho N non-zeros (ALMT 2014, Prop. 4.5):

        psi(rho) = inf_{tau >= 0} { rho (1 + tau^2)
                                    + (1 - rho) c [(1 + tau^2) Q(tau) - tau phi(tau)] },

    c = 2 for the signed l1 norm, c = 1 for the non-negative (l1+) cone, and
    psi(s/N) - 2/sqrt(sN) <= delta(D(||.||_1, x)) / N <= psi(s/N).
    At the minimiser tau* (:func:`psi_tau`) the stationarity condition
    rho tau = (1 - rho) c [phi(tau) - tau Q(tau)] collapses the objective to

        psi(rho) = rho + c (1 - rho) Q(tau*),

    which is what is evaluated (no cancellation; Q(tau) = erfcx(tau/sqrt 2) e^{-tau^2/2} / 2,
    accurate down to subnormal tails).
    Edge cases psi(0) = 0, psi(1) = 1; psi is strictly increasing and psi(rho) > rho on (0, 1).

    Source: D. Amelunxen, M. Lotz, M. B. McCoy, J. A. Tropp, "Living on the edge: phase
    transitions in convex programs with random data", Inf. Inference 3(3):224-294, 2014,
    arXiv:1303.6672.

    Parameters
    ----------
    rho : float
        Relative sparsity s/N in [0, 1].
    nonneg : bool
        Use the l1+ cone (non-negative codes, as in SAEs).

    Returns
    -------
    float
        psi(rho) in [0, 1].
    """
    rho = _unit_interval("rho", rho)
    if rho == 0.0 or rho == 1.0:
        return rho
    tau = psi_tau(rho, nonneg)
    value = rho + _cone_factor(nonneg) * (1.0 - rho) * _upper_tail(tau)
    return min(value, 1.0)


def rho_weak(delta: float, nonneg: bool = False) -> float:
    """Donoho-Tanner weak threshold rho_W(delta) of l1 recovery with a Gaussian dictionary.

    In DT coordinates delta = H/N in (0, 1] and rho = k/H, the weak threshold is the rho at
    which the statistical dimension of the l1 descent cone equals the number of measurements
    (ALMT 2014, Thm. II and section 4; for the l1 ball this coincides with Donoho-Tanner's
    face-counting threshold):

        rho_W(delta) = eps* / delta,   where psi(eps*) = delta   (eps = k/N).

    psi is continuous and strictly increasing with psi(0) = 0 and psi(eps) > eps on (0, 1), so
    eps* is the unique root in (0, delta), found with ``brentq`` in log(eps) (valid for
    delta down to about 1e-300). rho_W(1) = 1. Asymptotically
    rho_W(delta) ~ 1 / (2 ln(1/delta)) as delta -> 0 (Donoho & Tanner 2009), i.e. the transition
    sits at H ~ 2 k ln(N/H). With ``nonneg=True`` it is the weak threshold of the simplex (l1
    minimisation over x >= 0).

    Sources: D. L. Donoho & J. Tanner, "Counting faces of randomly projected polytopes when the
    projection radically lowers dimension", J. AMS 22(1):1-53, 2009; "Neighborliness of randomly
    projected simplices in high dimensions", PNAS 102(27):9452-9457, 2005; ALMT 2014 (see
    :func:`psi`).

    Parameters
    ----------
    delta : float
        Undersampling ratio H/N in (0, 1].
    nonneg : bool
        Non-negative (simplex) threshold instead of the signed (cross-polytope) one.

    Returns
    -------
    float
        rho_W in (0, 1].
    """
    d = _as_float("delta", delta)
    if not 0.0 < d <= 1.0:
        raise ParameterError(f"delta = H/N must lie in (0, 1], got {delta!r}")
    if d == 1.0:
        return 1.0

    log_d = math.log(d)

    def f(log_eps: float) -> float:
        return math.log(psi(math.exp(log_eps), nonneg)) - log_d

    # psi(d) > d brackets from above; halve eps until psi(eps) < d (it must: psi(0+) = 0).
    # Solving in log(eps) keeps the relative precision for tiny delta.
    lo = 0.5 * d
    while psi(lo, nonneg) >= d:
        lo *= 0.5
    log_eps = optimize.brentq(f, math.log(lo), log_d, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    return min(1.0, math.exp(log_eps) / d)


def k_weak(H: int, N: int, nonneg: bool = False) -> float:
    """Predicted 50% point of l1 recovery in sparsity for a Gaussian H x N dictionary.

    ``k_W = rho_W(H/N) * H`` (see :func:`rho_weak`): codes with K well below k_W are recovered
    by basis pursuit with high probability, codes well above it are not; the transition width
    is O(sqrt(N)) (ALMT 2014, Thm. II). Not rounded.

    Parameters
    ----------
    H, N : int
        Dimension and number of atoms, 1 <= H <= N.
    nonneg : bool
        Non-negative codes (l1+ / simplex threshold).

    Returns
    -------
    float
        k_W in (0, H].
    """
    H = _positive_int("H", H)
    N = _positive_int("N", N)
    if H > N:
        raise ParameterError(f"k_weak needs H <= N (delta = H/N <= 1), got H={H}, N={N}")
    return rho_weak(H / N, nonneg) * H


# ---------------------------------------------------------------------------------------------
# Coherence of Gaussian dictionaries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianCoherence:
    """Predicted coherence of N iid Gaussian vectors in R^H (see :func:`gaussian_coherence`).

    Attributes
    ----------
    H, N : int
        Shape.
    mean : float
        sqrt((4 log N - log log N + E[Y]) / H): the plug-in of E[Y], not E[mu].
    quantiles : dict[float, float]
        q -> q-quantile of mu under the limiting law.
    first_order : float
        2 sqrt(log N / H), the law-of-large-numbers rate.
    method : str
        What was computed, in words.
    """

    H: int
    N: int
    mean: float
    quantiles: dict[float, float] = field(default_factory=dict)
    first_order: float = math.nan
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; quantile keys become strings such as ``"0.05"``."""
        return {
            "H": self.H,
            "N": self.N,
            "mean": self.mean,
            "quantiles": {repr(float(q)): v for q, v in self.quantiles.items()},
            "first_order": self.first_order,
            "method": self.method,
        }


def gaussian_coherence(
    H: int, N: int, quantiles: Sequence[float] = (0.05, 0.5, 0.95)
) -> GaussianCoherence:
    """Cai-Jiang limiting law of the coherence of N iid Gaussian vectors in R^H.

    For mu = max_{i<j} |cos(g_i, g_j)| with g_1..g_N iid N(0, I_H):

        H mu^2 - 4 log N + log log N  ->  Y  in distribution,
        P(Y <= y) = exp(-K e^{-y/2}),   K = (8 pi)^{-1/2},

    i.e. Y = 2 log K + 2 G with G standard Gumbel. Hence
    mu_q = sqrt((4 log N - log log N + y_q) / H) with y_q = 2 log K - 2 log(-log q), and the
    reported ``mean`` is sqrt((4 log N - log log N + E[Y]) / H) with E[Y] = 2 log K + 2 gamma
    (gamma the Euler-Mascheroni constant) -- the plug-in of E[Y], not E[mu]. ``first_order`` is
    the law of large numbers sqrt(H) mu / sqrt(log N) -> 2, i.e. mu ~ 2 sqrt(log N / H).
    Values are clipped to [0, 1] (they can only leave it far outside the asymptotic regime).

    The law is asymptotic: proved for log N = o(H^{1/3}) in Cai & Jiang (2011) and extended to
    the whole regime log N = o(H) for spherically distributed columns in Cai & Jiang (2012);
    at finite sizes expect errors of a few percent in mu.

    Sources: T. T. Cai & T. Jiang, "Limiting laws of coherence of random matrices with
    applications to testing covariance structure and construction of compressed sensing
    matrices", Ann. Statist. 39(3):1496-1525, 2011; "Phase transition in limiting distributions
    of coherence of high-dimensional random matrices", J. Multivariate Anal. 107:24-39, 2012,
    arXiv:1102.2926.

    Parameters
    ----------
    H : int
        Dimension (>= 1).
    N : int
        Number of vectors (>= 3, so that log log N > 0).
    quantiles : sequence of float
        Levels q in (0, 1).

    Returns
    -------
    GaussianCoherence
    """
    H = _positive_int("H", H)
    N = _positive_int("N", N)
    if N < 3:
        raise ParameterError(f"gaussian_coherence needs N >= 3, got N={N}")
    qs = [_as_float("quantile level", q) for q in quantiles]
    for q in qs:
        if not 0.0 < q < 1.0:
            raise ParameterError(f"quantile levels must lie in (0, 1), got {q!r}")

    log_n = math.log(N)
    centre = 4.0 * log_n - math.log(log_n)

    def mu_of(y: float) -> float:
        return min(1.0, math.sqrt(max(0.0, centre + y) / H))

    mean_y = 2.0 * _LOG_CJ_K + 2.0 * float(np.euler_gamma)
    qmap = {q: mu_of(2.0 * _LOG_CJ_K - 2.0 * math.log(-math.log(q))) for q in qs}
    return GaussianCoherence(
        H=H,
        N=N,
        mean=mu_of(mean_y),
        quantiles=qmap,
        first_order=min(1.0, 2.0 * math.sqrt(log_n / H)),
        method=(
            "Cai-Jiang (2011) limiting law: H mu^2 - 4 log N + log log N -> Y, "
            "P(Y <= y) = exp(-(8 pi)^(-1/2) e^(-y/2)); mean is the plug-in of E[Y]"
        ),
    )


# ---------------------------------------------------------------------------------------------
# What a coherence value certifies
# ---------------------------------------------------------------------------------------------


def _coherence_value(mu: float) -> float:
    m = _as_float("coherence mu", mu)
    if not 0.0 <= m <= 1.0 + 1e-12:
        raise ParameterError(f"coherence mu must lie in [0, 1], got {mu!r}")
    return min(m, 1.0)


def coherence_uniqueness_k(mu: float) -> float:
    """Sparsity below which coherence certifies uniqueness and l1/OMP recovery.

    ``k_mu = (1 + 1/mu) / 2``: every code with K < k_mu (equivalently mu < 1/(2K - 1)) is the
    unique K-sparse representation of its signal, and basis pursuit and OMP recover it.
    Returns +inf for mu = 0.

    Sources: D. L. Donoho & M. Elad, "Optimally sparse representation in general (nonorthogonal)
    dictionaries via l1 minimization", PNAS 100(5):2197-2202, 2003; J. A. Tropp, "Greed is good",
    IEEE Trans. Inf. Theory 50(10):2231-2242, 2004.

    Parameters
    ----------
    mu : float
        Mutual coherence in [0, 1].

    Returns
    -------
    float
        k_mu in [1, inf].
    """
    m = _coherence_value(mu)
    if m == 0.0:
        return math.inf
    return 0.5 * (1.0 + 1.0 / m)


def coherence_certified_k(mu: float) -> int | float:
    """The largest integer K with μ < 1/(2K − 1), i.e. (2K − 1)μ < 1: every code with at most K
    non-zeros is the unique K-sparse representation and basis pursuit recovers it.

    Evaluated exactly on the float μ (the candidate ⌊(1 + 1/μ)/2⌋ is corrected by testing
    (2K − 1)μ < 1 directly). Returns 0 when μ = 1 (e.g. duplicate atoms: not even 1-sparse codes
    are unique) and +inf when μ = 0 (orthogonal atoms). Sources as
    :func:`coherence_uniqueness_k`.
    """
    m = _coherence_value(mu)
    if m == 0.0:
        return math.inf
    k = max(0, int(math.floor(0.5 * (1.0 + 1.0 / m))))
    if 1.0 / m > 2.0**52:  # (2K − 1)·μ no longer resolves steps of K: the floor is the answer
        return k
    while k > 0 and (2 * k - 1) * m >= 1.0:
        k -= 1
    while (2 * (k + 1) - 1) * m < 1.0:
        k += 1
    return k


def spark_lower_from_coherence(mu: float) -> int | float:
    """Integer lower bound on the spark implied by the coherence: ``ceil(1 + 1/mu)``.

    spark(D) >= 1 + 1/mu (Donoho & Elad 2003, PNAS 100(5); Gribonval & Nielsen, IEEE Trans.
    Inf. Theory 49(12), 2003), and the spark is an integer. To stay a valid *lower* bound under
    rounding, 1/mu is snapped to the nearest integer when within 8 ulps of it, so mu = 1/3
    gives 4 (not 5 from a 1/mu of 3.0000000000000004). Returns ``math.inf`` for mu = 0
    (orthogonal atoms have no null vector; spark = inf by convention).

    Parameters
    ----------
    mu : float
        Mutual coherence in [0, 1].

    Returns
    -------
    int or float
        The bound (an int >= 2), or ``math.inf`` when mu = 0.
    """
    m = _coherence_value(mu)
    if m == 0.0:
        return math.inf
    r = 1.0 / m
    nearest = round(r)
    if abs(r - nearest) <= 8.0 * np.finfo(float).eps * r:
        r = float(nearest)
    return int(math.ceil(1.0 + r))


def uniqueness_holds(mu: np.ndarray | float, k: np.ndarray | int) -> np.ndarray | bool:
    """The uniqueness condition (2k − 1)·μ < 1, elementwise (k = 0, the empty code, holds).

    For k ≥ 1 it is μ < 1/(2k − 1): every code with at most k non-zeros over atoms of coherence
    μ is the unique k-sparse representation of its signal (Donoho & Elad 2003), and basis pursuit
    and OMP recover it (Tropp 2004).

    Parameters
    ----------
    mu : float or array_like
        Coherence values in [0, 1].
    k : int or array_like
        Sparsities ≥ 0 (broadcast against ``mu``).

    Returns
    -------
    bool or numpy.ndarray of bool

    Examples
    --------
    >>> bool(uniqueness_holds(0.3, 2)), bool(uniqueness_holds(0.34, 2))
    (True, False)
    """
    return (2.0 * np.asarray(k, dtype=np.float64) - 1.0) * np.asarray(mu, dtype=np.float64) < 1.0


def babel_certified_k(babel_upper: np.ndarray) -> int:
    """Largest K with μ₁(K−1) + μ₁(K) < 1 (Tropp's exact-recovery condition; μ₁(0) = 0).

    Evaluated on certified upper values of the Babel function μ₁, so every K-sparse code is
    recovered by OMP and basis pursuit (J. A. Tropp, "Greed is good", IEEE Trans. Inf. Theory
    50(10), 2004). Limited to the K for which μ₁ was computed.

    Parameters
    ----------
    babel_upper : array_like
        Upper bounds on μ₁(1), μ₁(2), … (e.g.
        :attr:`rip_atoms.coherence.CoherenceResult.babel_upper`).

    Returns
    -------
    int
        K ≥ 0.

    Examples
    --------
    >>> babel_certified_k(np.array([0.1, 0.3, 0.6, 0.9]))
    3
    """
    b = np.concatenate([[0.0], np.asarray(babel_upper, dtype=np.float64)])
    K = 0
    for k in range(1, len(b)):
        if b[k - 1] + b[k] < 1.0:
            K = k
        else:
            break
    return K
