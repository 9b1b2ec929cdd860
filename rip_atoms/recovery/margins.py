"""How safe is a certified code? The uniqueness margin: a rigorous upper bound close to the exact
value t* of the certificate LP.

Notation (docs/design.md, "Exact ℓ1 recovery of a given code"): D̃ has unit columns d̃ⱼ (the
AIP-corrected atoms); a code δ has support S and signs s = sign(δ_S). The exact uniqueness value
is the optimum of the certificate LP

    t* = min ‖D̃_{Sᶜ}ᵀ y‖_∞  s.t.  D̃_Sᵀ y = s        (non-negative codes: min max_{j∈Sᶜ} d̃ⱼᵀ y),

and with D̃_S of full column rank δ is the unique basis-pursuit solution iff t* < 1. The
classifier (:func:`rip_atoms.recovery.classify_recovery`) stops at the first certificate below
1 − margin, so the bound it reports (e.g. a pushed homotopy certificate, 0.8–0.98 on real TSAE
codes) can sit far above t* (0.02–0.16 there): it proves uniqueness but does not say how safe
the code is.

:func:`certificate_margins` drives a certificate toward the LP optimum on a seeded sample of
codes. Small problems (|Sᶜ|·H ≤ 200 000 entries) get the exact LP (HiGHS). Larger ones, where the
dense LP takes tens of seconds per code (21 s at H = 576, N = 2304 on 2 cores), are smoothed: on
the affine set y = y₀ + P z (y₀ the min-ℓ2 certificate, P the projector onto ker D̃_Sᵀ, so
D̃_Sᵀ y = s) L-BFGS minimises τ·log Σⱼ exp(cⱼ(y)/τ) (cⱼ = d̃ⱼᵀy over Sᶜ, and −cⱼ too for signed
codes), a convex function within τ·log m above the max, for τ = 0.02 then 0.005 (about 2 s per
code there, within 0.006 of t* on Gaussian atoms). Either way the value reported is the rigorous
bound of the y found. Per code:

* ``margin`` = min(LP bound, classifier bound), where the LP bound is the *rigorous* value of the
  LP's y: value + ‖D̃_Sᵀ y − s‖₂/σmin(D̃_S) + γ_H‖y‖₂·maxⱼ‖d̃ⱼ‖ (γ_H = Hu/(1 − Hu), u = 2⁻⁵³;
  :mod:`rip_atoms.recovery.certificates`). Both are upper bounds on t* of the float64 matrix
  D̃, so margin ≥ t* always, and margin < 1 (with D̃_S of full column rank) still certifies; at
  an LP optimum the margin exceeds t* only by HiGHS's feasibility tolerance and the stated
  error terms (≈ 1e-9);
* ``lp_value`` = t* as HiGHS reports it where the exact LP was solved (NaN where the
  certificate was smoothed; not rigorous, shown for reference);
* ``certificate_bound`` = the classifier's rigorous bound (the number the report gave before).

Codes not reached within the budget keep the classifier's bound as their margin
(``tightened`` false). 1 − margin is the room a code has before uniqueness is lost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from rip_atoms.codes import codes_csr
from rip_atoms.deadline import Deadline
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import ParameterError
from rip_atoms.geometry import UNSET, Geometry
from rip_atoms.metric import AIPMetric
from rip_atoms.precision import gamma
from rip_atoms.recovery.certificates import (
    certificate_lp,
    rigorous_certificate_bound,
    singular_extremes,
)
from rip_atoms.recovery.results import RANK_TOL, STATUS_NAMES

#: smoothing temperatures and iterations of the L-BFGS stage
TAUS = (0.02, 0.005)
SMOOTH_ITERS = 100
#: problems with at most this many constraint entries (|Sᶜ|·H) get the full LP from the start
FULL_LP_ENTRIES = 200_000

QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)

__all__ = ["MarginsResult", "certificate_margins"]


@dataclass(frozen=True)
class MarginsResult:
    """Per sampled code: the margin (rigorous upper bound on t*, close to it), HiGHS's t*, the
    classifier's rigorous bound and status (module docstring)."""

    tokens: np.ndarray = field(repr=False)
    l0: np.ndarray = field(repr=False)
    margin: np.ndarray = field(repr=False)
    lp_value: np.ndarray = field(repr=False)
    lp_bound: np.ndarray = field(repr=False)
    certificate_bound: np.ndarray = field(repr=False)
    status: np.ndarray = field(repr=False)
    lp_solved: np.ndarray = field(repr=False)
    tightened: np.ndarray = field(repr=False)
    nonneg: bool = True
    sampled_from: int = 0
    seconds: float = 0.0
    budget_s: float | None = None
    #: the tightening's budget and its use (:meth:`rip_atoms.deadline.Deadline.to_dict`)
    budget: dict = field(default_factory=dict)

    def quantiles(self, values: np.ndarray) -> dict:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if not v.size:
            return {}
        return {str(q): float(x) for q, x in zip(QUANTILES, np.quantile(v, QUANTILES),
                                                  strict=True)}

    def to_dict(self) -> dict:
        def fl(a):
            return [None if not math.isfinite(x) else float(x) for x in np.asarray(a, float)]

        ok = np.isfinite(self.margin) & self.tightened
        return {
            "n_codes": int(self.tokens.size), "sampled_from": self.sampled_from,
            "nonneg": self.nonneg, "lp_solved": int(self.lp_solved.sum()),
            "tightened": int(self.tightened.sum()),
            "tightened_per_code": self.tightened.tolist(),
            "tokens": self.tokens.tolist(), "l0": self.l0.tolist(),
            "margin": fl(self.margin), "lp_value": fl(self.lp_value),
            "lp_bound": fl(self.lp_bound), "certificate_bound": fl(self.certificate_bound),
            "status": [str(s) for s in self.status],
            "margin_quantiles": self.quantiles(self.margin[self.tightened]),
            "certificate_bound_quantiles": self.quantiles(
                self.certificate_bound[self.tightened]),
            "lp_value_quantiles": self.quantiles(self.lp_value),
            "below_one": int(np.sum(self.margin[ok] < 1.0)),
            "below_half": int(np.sum(self.margin[ok] < 0.5)),
            "seconds": self.seconds, "budget_s": self.budget_s, "budget": self.budget,
            "method": ("a certificate driven toward the optimum t* of the certificate LP min "
                       "‖D̃_{Sᶜ}ᵀy‖_∞ s.t. D̃_Sᵀy = s (one-sided for non-negative codes): the "
                       "exact LP (HiGHS) on small problems, else L-BFGS on a log-sum-exp "
                       "smoothing over the affine set D̃_Sᵀy = s; margin = min(its rigorous "
                       "value, the classifier's rigorous bound), value + ‖D̃_Sᵀy − s‖₂/"
                       "σmin(D̃_S) + γ_H‖y‖₂ recomputed in float64: an upper bound on t*"),
            "distribution": "the quantiles are over the tightened codes only",
            "reading": ("margin < 1 certifies the code unique (as the bound does); 1 − margin is "
                        "its room: near 0 a borderline code, near 1 a safe one. The classifier "
                        "stops at the first certificate below 1, so its bound can be far "
                        "above t*"),
        }


def certificate_margins(
    geom: Geometry | Dictionary | np.ndarray,
    codes,
    *,
    metric: AIPMetric | str | None = UNSET,
    nonneg: bool | None = None,
    max_codes: int | None = 64,
    tokens: np.ndarray | None = None,
    seed: int = 0,
    budget_s: float | None = 60.0,
    effort: int | None = None,
    lp_time_limit: float | None = 20.0,
) -> MarginsResult:
    """Margins close to the exact uniqueness value t* for a sample of codes (module docstring).

    Parameters
    ----------
    geom : Geometry, Dictionary or array_like
        The :class:`~rip_atoms.geometry.Geometry` of D (its float64 D̃ and recovery view are
        reused, as :func:`classify_recovery` does); at the API edge, D (H×N, columns are atoms,
        as given) with ``metric``: D̃ is its AIP-corrected form under it.
    codes : array_like or scipy sparse
        n×N codes over D as given (rows are tokens).
    metric : AIPMetric, "raw", "self" or None
        With a dictionary, the geometry of D̃ (default "raw"; None: "raw"); with a Geometry,
        left out (or its own).
    nonneg : bool, optional
        Non-negative basis pursuit (default: every sampled code is ≥ 0).
    max_codes : int or None
        Sample size (seeded; all non-empty codes when None). Ignored when ``tokens`` is given.
    tokens : array of int, optional
        Exactly which rows to evaluate.
    seed : int
        Seed of the sample.
    budget_s : float or None
        Wall-clock budget of the tightening; codes left when it is spent keep the classifier's
        bound (``tightened`` false). With ``effort``, only a wall-clock cap.
    effort : int or None
        A work budget instead (:mod:`rip_atoms.deadline`): one unit per code tightened, so the
        same codes are tightened on any machine (give ``lp_time_limit=None`` too, or the LP's
        own clock can still cut a solve).
    lp_time_limit : float or None
        HiGHS time limit per code.

    Returns
    -------
    MarginsResult
    """
    from rip_atoms.recovery.classify import classify_recovery

    t0 = time.perf_counter()
    deadline = Deadline.of(budget_s, effort)
    geom = Geometry.of(geom, metric, default="raw")
    d = geom.dictionary
    C = codes_csr(codes, d.n_atoms, "codes")
    n = C.shape[0]
    l0_all = np.diff(C.indptr)
    if tokens is None:
        cand = np.flatnonzero(l0_all > 0)
        if max_codes is not None and cand.size > max_codes:
            cand = np.sort(np.random.default_rng(seed).choice(cand, size=max_codes,
                                                              replace=False))
        tokens = cand
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= n):
        raise ParameterError(f"margins: token index out of range (n = {n})")
    tokens = tokens[l0_all[tokens] > 0]
    Cs = C[tokens]
    is_nonneg = bool(Cs.nnz == 0 or Cs.data.min() >= 0) if nonneg is None else bool(nonneg)
    k = tokens.size
    margin = np.full(k, np.nan)
    lp_value = np.full(k, np.nan)
    lp_bound = np.full(k, np.inf)
    cert = np.full(k, np.nan)
    status = np.array(["undetermined"] * k, dtype=object)
    solved = np.zeros(k, dtype=bool)
    tight = np.zeros(k, dtype=bool)
    if k:
        res = classify_recovery(geom, Cs, nonneg=is_nonneg)
        cert = np.asarray(res.certificate, dtype=np.float64)
        status = np.asarray(STATUS_NAMES, dtype=object)[res.status]
        atoms = geom.atoms(rows=False, rows64=True, min_live=0)

        def out_of_time() -> bool:
            return deadline is not None and deadline.expired()

        if not out_of_time():  # the set-up (D̃ without dead atoms) only when there is time
            live = np.flatnonzero(~atoms.dead)
            where = np.full(d.n_atoms, -1)
            where[live] = np.arange(live.size)
            cols = atoms.cols64 if live.size == atoms.n_atoms else \
                np.asfortranarray(atoms.cols64[:, live])
            gamma_h = gamma(atoms.dim)
            col_norm = float(np.linalg.norm(cols, axis=0).max()) if cols.size else 1.0
            for r in range(k):
                if out_of_time():
                    break
                a, b = Cs.indptr[r], Cs.indptr[r + 1]
                S = where[Cs.indices[a:b]]
                if (S < 0).any():
                    continue  # a support on a dead atom: invalid, no certificate
                sgn = np.ones(len(S)) if is_nonneg else np.sign(Cs.data[a:b])
                limits = [x for x in (lp_time_limit, None if deadline is None else
                                      deadline.clock_left()) if x is not None and
                          math.isfinite(x)]
                got = _tight_certificate(cols, S, sgn, is_nonneg, gamma_h, col_norm,
                                         time_limit=min(limits) if limits else None)
                if got is not None:
                    lp_bound[r], lp_value[r], solved[r] = got
                    tight[r] = True
        both = np.where(np.isfinite(cert), np.minimum(lp_bound, np.nan_to_num(cert, nan=np.inf)),
                        lp_bound)
        margin = np.where(np.isfinite(both), both, np.nan)
    return MarginsResult(tokens=tokens, l0=l0_all[tokens], margin=margin, lp_value=lp_value,
                         lp_bound=lp_bound, certificate_bound=cert, status=status,
                         lp_solved=solved, tightened=tight, nonneg=is_nonneg, sampled_from=int(n),
                         seconds=time.perf_counter() - t0, budget_s=budget_s,
                         budget={} if deadline is None else deadline.to_dict())


class _OutOfTime(Exception):
    """Raised inside the objective when the smoothing's time is up."""


def _smoothed(A: np.ndarray, DS: np.ndarray, cho, y0: np.ndarray, nonneg: bool,
              end: float | None = None) -> np.ndarray:
    """L-BFGS on τ·log Σ exp(c/τ), c = A y (and −A y when signed), y = y₀ + P z, over the
    temperatures :data:`TAUS`; returns y (module docstring). At ``end`` (a perf_counter time)
    the descent stops and returns the last point evaluated: any y = y₀ + P z satisfies
    D̃_Sᵀy = s, so every point is a valid certificate, only a looser one."""
    import scipy.linalg as sla
    from scipy.optimize import minimize

    def proj(v):
        return v - DS @ sla.cho_solve(cho, DS.T @ v, check_finite=False)

    last = [np.zeros_like(y0)]

    def f(z, tau):
        if end is not None and time.perf_counter() > end:
            raise _OutOfTime
        last[0] = z
        y = y0 + proj(z)
        c = A @ y
        if not nonneg:
            c = np.concatenate([c, -c])
        top = c.max()
        w = np.exp((c - top) / tau)
        tot = w.sum()
        p = w / tot
        if not nonneg:
            m = A.shape[0]
            p = p[:m] - p[m:]
        return top + tau * math.log(tot), proj(A.T @ p)

    z = np.zeros_like(y0)
    try:
        for tau in TAUS:
            z = minimize(f, z, args=(tau,), jac=True, method="L-BFGS-B",
                         options={"maxiter": SMOOTH_ITERS, "gtol": 1e-9}).x
    except _OutOfTime:
        z = last[0]
    return y0 + proj(z)


def _working_lp(A: np.ndarray, DS: np.ndarray, s: np.ndarray, J: np.ndarray, nonneg: bool,
                time_limit: float | None):
    """HiGHS on the certificate LP restricted to the atoms J: min t s.t. D̃_Sᵀy = s,
    aⱼᵀy ≤ t (and −aⱼᵀy ≤ t when signed), j ∈ J, t ≥ −1
    (:func:`rip_atoms.recovery.certificates.certificate_lp`)."""
    return certificate_lp(A[J], DS.T, s, nonneg, time_limit)


def _tight_certificate(cols: np.ndarray, S: np.ndarray, s: np.ndarray, nonneg: bool,
                       gamma: float, col_norm: float, time_limit: float | None = None):
    """(rigorous bound, exact LP value or NaN, whether the LP was solved) of a certificate for
    (S, s) driven toward the LP optimum (module docstring); None when D̃_S is rank-deficient."""
    import scipy.linalg as sla

    smin, smax, _ = singular_extremes(cols, S)
    if not (smax > 0 and smin / smax > RANK_TOL):
        return None
    rows = cols.T
    off = np.ones(cols.shape[1], dtype=bool)
    off[S] = False
    A = np.ascontiguousarray(rows[off])
    DS = cols[:, S]

    def bound_of(yv):
        return rigorous_certificate_bound(rows, S, s, yv, nonneg, smin, gamma, col_norm)[1]

    if A.size <= FULL_LP_ENTRIES:
        res = _working_lp(A, DS, s, np.arange(A.shape[0]), nonneg, time_limit)
        if res.status == 0 and res.x is not None:
            return bound_of(res.x[:-1]), float(res.x[-1]), True
    cho = sla.cho_factor(DS.T @ DS, lower=True, check_finite=False)
    y0 = DS @ sla.cho_solve(cho, s, check_finite=False)
    y = _smoothed(A, DS, cho, y0, nonneg,
                  None if time_limit is None else time.perf_counter() + time_limit)
    return min(bound_of(y0), bound_of(y)), math.nan, False
