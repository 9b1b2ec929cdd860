"""The empirical phase transition of basis pursuit, beside the Donoho–Tanner prediction.

**Theorem** (Donoho–Tanner 2009; Amelunxen–Lotz–McCoy–Tropp 2014). For a Gaussian H×N dictionary,
basis pursuit recovers a random k-sparse code with probability → 1 for k < ρ_W(H/N)·H and → 0
above it (ρ_W from the statistical dimension of the ℓ1 descent cone, :mod:`rip_atoms.theory`).
:func:`phase_transition` measures the success rate with :func:`classify_recovery` (every success
a certificate, every failure a witness) and locates its 50% point on the monotone (isotonic,
scikit-learn) fit of the rate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rip_atoms.arguments import check_seed
from rip_atoms.errors import ParameterError
from rip_atoms.matrix_files import check_memory
from rip_atoms.recovery.classify import classify_recovery
from rip_atoms.recovery.results import CERTIFIED, FAILED, MARGIN, METHOD_NAMES, UNDETERMINED
from rip_atoms.theory import k_weak, rho_weak


@dataclass(frozen=True)
class PhaseTransitionResult:
    """Empirical phase transition of basis pursuit for Gaussian H×N dictionaries.

    success_rate[i] = certified / (certified + failed) at ks[i] over ``trials`` trials (each
    trial draws a fresh dictionary and one code per k); undetermined trials are excluded and
    counted. rho_weak = ρ_W(H/N) and k_weak = ρ_W·H (Donoho–Tanner, :mod:`rip_atoms.theory`);
    k50_empirical is where the success rate, made non-increasing in k (isotonic regression,
    weighted by decided trials), crosses 1/2 (linear interpolation; None if it never does).
    """

    dim: int
    n_atoms: int
    nonneg: bool
    trials: int
    seed: int
    ks: np.ndarray
    successes: np.ndarray
    failures: np.ndarray
    undetermined: np.ndarray
    success_rate: np.ndarray
    rho_weak: float
    k_weak: float
    k50_empirical: float | None
    methods: dict
    seconds: float

    def to_dict(self) -> dict:
        """The curve, the prediction and the counts as a JSON-ready dict."""
        return {
            "dim": self.dim,
            "n_atoms": self.n_atoms,
            "nonneg": self.nonneg,
            "trials": self.trials,
            "seed": self.seed,
            "k": [int(k) for k in self.ks],
            "success_rate": [float(r) for r in self.success_rate],
            "successes": [int(v) for v in self.successes],
            "failures": [int(v) for v in self.failures],
            "undetermined": [int(v) for v in self.undetermined],
            "rho_weak": self.rho_weak,
            "k_weak": self.k_weak,
            "k50_empirical": self.k50_empirical,
            "methods": dict(self.methods),
            "seconds": self.seconds,
        }


def pava_decreasing(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-increasing fit of y (scikit-learn's isotonic regression)."""
    from sklearn.isotonic import IsotonicRegression

    y = np.asarray(y, dtype=np.float64)
    return IsotonicRegression(increasing=False).fit_transform(
        np.arange(len(y), dtype=np.float64), y, sample_weight=np.asarray(w, dtype=np.float64))


def crossing(ks: np.ndarray, rate: np.ndarray, weights: np.ndarray) -> float | None:
    """k where the non-increasing fit of the success rate crosses 1/2 (linear interpolation)."""
    ok = weights > 0
    if ok.sum() < 2:
        return None
    k, f = ks[ok].astype(np.float64), pava_decreasing(rate[ok], weights[ok])
    for i in range(len(k) - 1):
        if f[i] >= 0.5 > f[i + 1]:
            return float(k[i] + (f[i] - 0.5) / (f[i] - f[i + 1]) * (k[i + 1] - k[i]))
    return None


def _trial_codes(rng: np.random.Generator, ks: np.ndarray, n_atoms: int,
                 nonneg: bool) -> sp.csr_matrix:
    """One code per k: a uniformly random support of size k, magnitudes uniform in [1, 2],
    random signs (all positive with ``nonneg``)."""
    rows, cols, vals = [], [], []
    for r, k in enumerate(ks):
        S = np.sort(rng.choice(n_atoms, size=int(k), replace=False))
        v = rng.uniform(1.0, 2.0, size=int(k))
        if not nonneg:
            v *= rng.choice([-1.0, 1.0], size=int(k))
        rows.append(np.full(len(S), r))
        cols.append(S)
        vals.append(v)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(ks), n_atoms))


def phase_transition(
    dim: int,
    n_atoms: int,
    ks: Iterable[int],
    trials: int,
    *,
    nonneg: bool = False,
    seed: int = 0,
    margin: float = MARGIN,
    witness_iters: int = 100,
    max_iter: int | None = None,
    lp: bool = True,
    progress: bool = False,
) -> PhaseTransitionResult:
    """Success rate of basis pursuit against sparsity k for Gaussian dictionaries.

    Each trial draws D with iid N(0, 1) entries and unit-normalised columns (H×N), and for every
    k a code with a uniformly random support of size k, magnitudes uniform in [1, 2] and random
    signs (all positive with ``nonneg``); the codes are classified by
    :func:`classify_recovery` (raw metric). Success = certified (the certificate proves BP
    returns the code; any BP solution then agrees with it to RECOVERY_TOL after polish),
    failure = a witness that beats it. Seeded: the same arguments give the same codes and
    dictionaries.

    Parameters
    ----------
    dim : int
        H ≥ 1.
    n_atoms : int
        N ≥ H.
    ks : iterable of int
        Sparsities in [1, N] (sorted and deduplicated).
    trials : int
        Dictionaries drawn (one code per k each).
    nonneg : bool
        Non-negative codes and basis pursuit (prediction ρ_W⁺).
    seed : int
        Seed of the numpy Generator.
    margin, witness_iters, max_iter, lp
        Passed to :func:`classify_recovery`.
    progress : bool
        A tqdm bar over trials on stderr.

    Returns
    -------
    PhaseTransitionResult
        Successes, failures and undetermined per k, the success rate, the Donoho–Tanner weak
        threshold k_W = ρ_W(H/N)·H (signed, or the non-negative ρ_W⁺) and the empirical 50%
        point.

    Examples
    --------
    >>> res = phase_transition(10, 20, [1, 9], 2, seed=0)
    >>> res.success_rate.tolist(), round(res.k_weak, 2)
    ([1.0, 0.0], 3.86)
    """
    for name, val in (("dim", dim), ("n_atoms", n_atoms), ("trials", trials)):
        if int(val) != val or val < 1:
            raise ParameterError(f"{name} must be a positive integer, got {val!r}")
    if dim > n_atoms:
        raise ParameterError(f"need dim ≤ n_atoms (H/N ≤ 1), got H = {dim}, N = {n_atoms}")
    ks = np.unique(np.asarray(list(ks), dtype=np.int64))
    if ks.size == 0 or ks.min() < 1 or ks.max() > n_atoms:
        raise ParameterError(f"every k must lie in [1, N = {n_atoms}], got {ks.tolist()}")
    seed = check_seed(seed)
    check_memory(3 * 8 * int(dim) * int(n_atoms),
                 f"phase transition: a {dim}×{n_atoms} float64 dictionary and its corrected copies")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    succ = np.zeros(len(ks), dtype=np.int64)
    fail = np.zeros(len(ks), dtype=np.int64)
    und = np.zeros(len(ks), dtype=np.int64)
    methods = dict.fromkeys(METHOD_NAMES[1:], 0)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=trials, desc="phase transition", unit="trial", file=sys.stderr,
                   leave=False)
    try:
        for _ in range(trials):
            D = rng.standard_normal((dim, n_atoms))
            D /= np.linalg.norm(D, axis=0)
            codes = _trial_codes(rng, ks, n_atoms, nonneg)
            res = classify_recovery(D, codes, nonneg=nonneg, metric=None, margin=margin,
                                    witness_iters=witness_iters, max_iter=max_iter, lp=lp)
            succ += res.status == CERTIFIED
            fail += res.status == FAILED
            und += res.status == UNDETERMINED
            for name, cnt in res.methods.items():
                methods[name] += cnt
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    decided = succ + fail
    rate = np.where(decided > 0, succ / np.maximum(decided, 1), np.nan)
    k50 = crossing(ks, np.nan_to_num(rate), decided)
    return PhaseTransitionResult(
        dim=dim, n_atoms=n_atoms, nonneg=nonneg, trials=trials, seed=seed, ks=ks,
        successes=succ, failures=fail, undetermined=und, success_rate=rate,
        rho_weak=rho_weak(dim / n_atoms, nonneg), k_weak=k_weak(dim, n_atoms, nonneg),
        k50_empirical=k50, methods=methods, seconds=time.perf_counter() - t0,
    )
