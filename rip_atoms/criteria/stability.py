"""Stability of a unit set's codes: the q* readings and the ℓ1-certified fraction.

Notation (docs/design.md, "The paper's criteria"): d̃ⱼ = W dⱼ/‖W dⱼ‖ are the corrected atoms D̃
(W = S̃^{1/2}), μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| the per-atom coherence
(:func:`rip_atoms.coherence.per_atom_coherence`), Kᵢ = ‖δᵢ‖₀. The uniqueness condition for
sparsity k is (2k − 1)·μ < 1 (:func:`rip_atoms.theory.uniqueness_holds`).

* :func:`q_star_quantile` — the paper's q* = sup{q : μ_q < 1/(2K_q − 1)} with μ_q the q-quantile
  of {μⱼ : j live} and K_q the q-quantile of {Kᵢ}; quantiles are the inverse empirical CDF and
  the sup is exact over the merged grid of order statistics.
* :func:`q_star_support` — the fraction of tokens whose own support S satisfies
  (2|S| − 1)·max_{j∈S, l≠j} |⟨d̃ⱼ, d̃ₗ⟩| < 1 (l over *all* atoms), from
  :func:`support_coherence`.
* :func:`l1_certified_fraction` — the fraction of tokens whose code is certified by the exact
  ℓ1 test of :mod:`rip_atoms.recovery` (non-negative basis pursuit where the codes are ≥ 0).
* :func:`stability` — the three readings of one unit set's codes.

Precision. The decisions (2k − 1)·μⱼ < 1 use certified upper bounds on μⱼ
(:meth:`rip_atoms.coherence.PerAtomCoherence.decision_values`,
:meth:`~rip_atoms.coherence.PerAtomCoherence.for_supports`), so a value that only rounding puts
below a threshold never passes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rip_atoms.codes import Codes, codes_csr
from rip_atoms.coherence import (
    EXACT_MAX_ATOMS,
    PerAtomCoherence,
    per_atom_coherence,
    quantile_table,
)
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.dictionary import DUPLICATE_TOL, Dictionary, as_dictionary
from rip_atoms.errors import ParameterError, ShapeMismatchError
from rip_atoms.geometry import UNSET, Geometry
from rip_atoms.metric import AIPMetric
from rip_atoms.theory import uniqueness_holds

__all__ = ["L1Certified", "QStarQuantile", "QStarSupport", "StabilityResult",
           "l1_certified_fraction", "q_star_quantile", "q_star_support", "sample_tokens",
           "stability", "support_coherence"]


# =============================================================================== support coherence
def support_coherence(codes: Codes, per_atom: PerAtomCoherence | np.ndarray) -> np.ndarray:
    """Per token, μ^{(i)} = max_{j∈Sᵢ} μⱼ = max_{j∈Sᵢ, l≠j} |⟨d̃ⱼ, d̃ₗ⟩| (l over all atoms);
    0 for an empty support; dead atoms in a support count as 1.

    Parameters
    ----------
    codes : array_like or scipy sparse
        Tokens × atoms codes.
    per_atom : PerAtomCoherence or array_like
        Per-atom coherences (a :class:`~rip_atoms.coherence.PerAtomCoherence` gives its
        certified upper bounds, :meth:`~rip_atoms.coherence.PerAtomCoherence.for_supports`).

    Returns
    -------
    numpy.ndarray
        float64, one value per token.

    Examples
    --------
    >>> support_coherence(np.array([[1.0, 0, 2.0], [0, 0, 0]]), np.array([0.1, 0.5, 0.3])).tolist()
    [0.3, 0.0]
    """
    mu = per_atom.for_supports() if isinstance(per_atom, PerAtomCoherence) else (
        np.asarray(per_atom, dtype=np.float64))
    C = codes_csr(codes, len(mu), "codes")
    out = np.zeros(C.shape[0])
    if C.nnz:
        vals = mu[C.indices]
        nonempty = np.diff(C.indptr) > 0
        out[nonempty] = np.maximum.reduceat(vals, C.indptr[:-1][nonempty])
    return out



# =============================================================================== q* readings
@dataclass(frozen=True)
class QStarQuantile:
    """The paper's q* = sup{q : μ_q < 1/(2K_q − 1)} (reading "quantile").

    ``value`` is q*; ``mu_at``/``K_at`` the quantiles at q* (None when q* = 0);
    ``first_failure`` the first grid level where the condition fails (None when it holds for
    every q ∈ (0, 1], i.e. q* = 1). ``per_atom_mu`` and ``l0`` are the distributions used.
    """

    value: float
    mu_at: float | None
    K_at: int | None
    first_failure: dict | None
    n_atoms: int
    n_tokens: int
    per_atom_mu: np.ndarray = field(repr=False)
    l0: np.ndarray = field(repr=False)
    reading: str = ("quantile: μ_q = q-quantile of per-atom AIP coherence μⱼ over live atoms, "
                    "K_q = q-quantile of per-token L0; quantiles are the inverse empirical CDF; "
                    "q* = the largest order-statistic level q with (2K_q − 1)·μ_q < 1 (0 if none)")

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "reading": self.reading,
            "mu_at": self.mu_at,
            "K_at": self.K_at,
            "first_failure": self.first_failure,
            "n_atoms": self.n_atoms,
            "n_tokens": self.n_tokens,
            "per_atom_mu_quantiles": quantile_table(self.per_atom_mu),
            "l0_quantiles": quantile_table(self.l0),
        }


def q_star_quantile(per_atom_mu: np.ndarray | PerAtomCoherence, l0: np.ndarray
                    ) -> QStarQuantile:
    """q* = sup{q ∈ (0, 1] : (2K_q − 1)·μ_q < 1}, exactly, on finite samples.

    μ_q is the q-quantile of the per-atom coherences {μⱼ} (m live atoms) and K_q that of the
    per-token L0 {Kᵢ} (n tokens), both as the inverse empirical CDF Q(q) = the ⌈q·m⌉-th smallest
    value (the smallest sample value with at least a fraction q of the sample at or below it).
    Both are non-decreasing, left-continuous step functions, constant on the cells of the
    merged grid {i/m} ∪ {j/n}; so (2K_q − 1)·μ_q is non-decreasing wherever K_q ≥ 1 (and the
    condition holds wherever K_q = 0), the set where the condition holds is an initial interval,
    and its sup is the right end of the last grid cell where it holds. Conventions: q* = 0 when
    it fails on the first cell (0, g₁] (in particular when μ_min·(2K_min − 1) ≥ 1), and q* = 1
    when it holds at q = 1 (μ_max·(2K_max − 1) < 1).

    Parameters
    ----------
    per_atom_mu : PerAtomCoherence or array_like
        μⱼ of the live atoms (a :class:`~rip_atoms.coherence.PerAtomCoherence` gives its
        certified upper bounds, :meth:`~rip_atoms.coherence.PerAtomCoherence.decision_values`;
        non-finite values, i.e. dead atoms, are dropped).
    l0 : array_like of int
        Kᵢ, the L0 of every token's code.

    Returns
    -------
    QStarQuantile

    Examples
    --------
    μ_q ≤ 0.2 for q ≤ 1/2 and K_q = 2 for q ≤ 1/2: (2·2 − 1)·0.2 < 1 holds up to q = 1/2, and
    at q > 1/2, μ_q = 0.4 fails it.

    >>> r = q_star_quantile(np.array([0.1, 0.2, 0.4, 0.5]), np.array([1, 2, 3, 3]))
    >>> r.value, r.mu_at, r.K_at
    (0.5, 0.2, 2)
    """
    mu = per_atom_mu.decision_values() if isinstance(per_atom_mu, PerAtomCoherence) else (
        np.asarray(per_atom_mu, dtype=np.float64))
    mu = np.sort(mu[np.isfinite(mu)])
    K = np.sort(np.asarray(l0, dtype=np.int64).reshape(-1))
    if mu.size == 0:
        raise ParameterError("q*: no live atoms (no per-atom coherence to take quantiles of)")
    if K.size == 0:
        raise ParameterError("q*: no tokens (no L0 values to take quantiles of)")
    if K[0] < 0 or mu[0] < 0:
        raise ParameterError("q*: L0 and coherences must be non-negative")
    m, n = mu.size, K.size
    # grid levels q = num / (m n): the i/m and the j/n
    num = np.unique(np.concatenate([np.arange(1, m + 1, dtype=np.int64) * n,
                                    np.arange(1, n + 1, dtype=np.int64) * m]))
    mi = (num + n - 1) // n - 1  # ⌈q m⌉ − 1
    ki = (num + m - 1) // m - 1  # ⌈q n⌉ − 1
    cond = uniqueness_holds(mu[mi], K[ki])
    n_true = int(cond.sum())
    if n_true and not cond[:n_true].all():  # cannot happen for sorted inputs; guard anyway
        n_true = int(np.argmin(cond))
    denom = float(m) * float(n)
    if n_true == 0:
        value, mu_at, K_at = 0.0, None, None
    else:
        g = n_true - 1
        value = float(num[g]) / denom
        mu_at, K_at = float(mu[mi[g]]), int(K[ki[g]])
    first = None
    if n_true < len(num):
        g = n_true
        first = {"q": float(num[g]) / denom, "mu_q": float(mu[mi[g]]), "K_q": int(K[ki[g]]),
                 "threshold": float(1.0 / (2 * K[ki[g]] - 1)) if K[ki[g]] > 0 else None}
    return QStarQuantile(value=min(value, 1.0), mu_at=mu_at, K_at=K_at, first_failure=first,
                         n_atoms=m, n_tokens=n, per_atom_mu=mu, l0=K)


@dataclass(frozen=True)
class QStarSupport:
    """Reading "support": the fraction of tokens whose own support S satisfies
    (2|S| − 1)·max_{j∈S, l≠j} |⟨d̃ⱼ, d̃ₗ⟩| < 1 (l over all atoms; empty supports hold)."""

    value: float
    n_tokens: int
    n_holding: int
    by_l0: dict[int, tuple[int, int]]  # L0 → (tokens, holding), for the 64 most common L0
    support_mu: np.ndarray = field(repr=False)
    l0: np.ndarray = field(repr=False)
    reading: str = ("support: fraction of tokens i with (2|Sᵢ| − 1)·max_{j∈Sᵢ, l≠j} "
                    "|⟨d̃ⱼ, d̃ₗ⟩| < 1, l over all atoms (per-token form of the uniqueness "
                    "condition; by Tropp's ERC bound it certifies exact ℓ1 and OMP recovery of "
                    "every code on Sᵢ)")

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "reading": self.reading,
            "n_tokens": self.n_tokens,
            "n_holding": self.n_holding,
            "by_l0": {str(k): {"tokens": t, "holding": h} for k, (t, h) in self.by_l0.items()},
            "support_mu_quantiles": quantile_table(self.support_mu),
            "l0_quantiles": quantile_table(self.l0),
        }


def q_star_support(support_mu: np.ndarray, l0: np.ndarray) -> QStarSupport:
    """Fraction of tokens with (2Kᵢ − 1)·μ^{(i)} < 1, from the per-token support coherences
    μ^{(i)} (:func:`support_coherence`) and L0 Kᵢ.

    Parameters
    ----------
    support_mu : array_like
        μ^{(i)}, one per token.
    l0 : array_like of int
        Kᵢ, one per token.

    Returns
    -------
    QStarSupport

    Examples
    --------
    >>> r = q_star_support(np.array([0.3, 0.3, 0.0]), np.array([2, 3, 0]))
    >>> r.value, r.n_holding
    (0.6666666666666666, 2)
    """
    smu = np.asarray(support_mu, dtype=np.float64).reshape(-1)
    K = np.asarray(l0, dtype=np.int64).reshape(-1)
    if smu.shape != K.shape:
        raise ShapeMismatchError(f"q*_support: {smu.size} support coherences for {K.size} L0s")
    if K.size == 0:
        raise ParameterError("q*_support: no tokens")
    ok = uniqueness_holds(smu, K)
    vals, inv, counts = np.unique(K, return_inverse=True, return_counts=True)
    hold = np.bincount(inv, weights=ok.astype(np.float64), minlength=len(vals))
    top = np.argsort(-counts, kind="stable")[:64]
    by = {int(vals[t]): (int(counts[t]), int(hold[t])) for t in sorted(top, key=lambda t: vals[t])}
    return QStarSupport(value=float(ok.mean()), n_tokens=int(K.size), n_holding=int(ok.sum()),
                        by_l0=by, support_mu=smu, l0=K)


# =============================================================================== ℓ1 certificates
@dataclass(frozen=True)
class L1Certified:
    """Reading "ℓ1": the fraction of (sampled) tokens whose code is certified by the exact ℓ1
    test (:func:`rip_atoms.recovery.classify_recovery`): the code is the unique solution of
    basis pursuit over the AIP-normalised atoms (non-negative basis pursuit when ``nonneg``).
    Empty codes are certified trivially (y = 0 has the unique solution 0); "invalid" codes (a
    non-zero on a dead atom, whose coefficient is not identifiable) are not certified. When the
    live atoms are linearly independent (e.g. the neuron basis) every code is certified at once
    (method "full_column_rank": D̃x = y has a single solution)."""

    value: float
    n_tokens: int
    certified: int
    failed: int
    undetermined: int
    invalid: int
    empty: int
    nonneg: bool
    tokens: np.ndarray = field(repr=False)  # indices (into the codes given) of the sample
    status: np.ndarray = field(repr=False)  # per sampled token: certified/failed/undetermined
    sampled_from: int = 0
    seed: int | None = None
    methods: dict = field(default_factory=dict)
    #: the classification of the non-empty sampled codes (a RecoveryResult, None when none was
    #: needed) and, per row of it, the token it is (for an independent re-check of its
    #: certificates and witnesses: :mod:`rip_atoms.report.self_check`)
    recovery: Any = field(default=None, repr=False)
    recovery_tokens: np.ndarray | None = field(default=None, repr=False)

    @property
    def decided_fraction(self) -> float:
        """certified / (certified + failed): the fraction among decided codes."""
        d = self.certified + self.failed
        return self.certified / d if d else float("nan")

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "reading": "l1: fraction of sampled tokens whose code is certified the unique "
                       "basis-pursuit solution (exact certificate)"
                       + (", non-negative BP" if self.nonneg else ", signed BP"),
            "n_tokens": self.n_tokens,
            "sampled_from": self.sampled_from,
            "seed": self.seed,
            "certified": self.certified,
            "failed": self.failed,
            "undetermined": self.undetermined,
            "invalid": self.invalid,
            "empty": self.empty,
            "nonneg": self.nonneg,
            "methods": self.methods,
        }


def sample_tokens(n: int, max_tokens: int | None, seed: int | None) -> np.ndarray:
    """Sorted indices of a seeded sample of at most ``max_tokens`` of n tokens (all when None).

    Parameters
    ----------
    n : int
        Number of tokens.
    max_tokens : int or None
        Sample size (≥ 1), or None for every token.
    seed : int or None
        Seed of the sample.

    Returns
    -------
    numpy.ndarray
        int64 indices in 0..n−1, sorted.
    """
    if max_tokens is None or max_tokens >= n:
        return np.arange(n)
    if max_tokens < 1:
        raise ParameterError(f"max_tokens must be ≥ 1, got {max_tokens}")
    return np.sort(np.random.default_rng(seed).choice(n, size=max_tokens, replace=False))


def l1_certified_fraction(
    geom: Geometry | Dictionary | np.ndarray,
    codes: Codes,
    *,
    metric: AIPMetric | str | None = UNSET,
    nonneg: bool | None = None,
    max_tokens: int | None = 256,
    seed: int | None = 0,
    **recovery_options: Any,
) -> L1Certified:
    """Fraction of tokens whose code is certified recovered by exact ℓ1 minimisation.

    A sample of at most ``max_tokens`` codes (seeded; all when None) is classified by
    :func:`rip_atoms.recovery.classify_recovery` under ``metric``; ``nonneg`` defaults to
    "every sampled code is ≥ 0". The value is certified / sampled; failed and undetermined
    codes are counted, never guessed.

    Parameters
    ----------
    geom : Geometry, Dictionary or array_like
        The :class:`~rip_atoms.geometry.Geometry` of the decoder (its recovery view is reused,
        as :func:`~rip_atoms.recovery.classify_recovery` does), or the dictionary (decoder),
        H×N, columns are atoms, with ``metric``.
    codes : array_like or scipy sparse
        Tokens × atoms codes.
    metric : AIPMetric, "self", "raw" or None
        With a dictionary (required there), the inner product of the corrected atoms (None and
        "raw": Euclidean); with a Geometry, left out (or its own).
    nonneg : bool, optional
        Non-negative basis pursuit (default: whether every sampled code is ≥ 0).
    max_tokens : int or None
        Sample size (None: every code).
    seed : int or None
        Seed of the sample.
    **recovery_options
        Passed to :func:`rip_atoms.recovery.classify_recovery`.

    Returns
    -------
    L1Certified
    """
    from rip_atoms.recovery import CERTIFIED, FAILED, INVALID, UNDETERMINED, classify_recovery

    geom = Geometry.of(geom, metric)
    d = geom.dictionary
    C = codes_csr(codes, d.n_atoms, "codes")
    n = C.shape[0]
    if n == 0:
        raise ParameterError("ℓ1-certified fraction: no codes")
    pick = sample_tokens(n, max_tokens, seed)
    Cs = C[pick]
    is_nonneg = bool(Cs.nnz == 0 or Cs.data.min() >= 0) if nonneg is None else bool(nonneg)
    l0 = np.diff(Cs.indptr)
    status = np.full(len(pick), "certified", dtype=object)  # empty codes: y = 0, unique x = 0
    nonempty = np.flatnonzero(l0 > 0)
    methods: dict = {"empty": int(len(pick) - nonempty.size)}
    res = None
    if nonempty.size and _independent_atoms(d, geom.metric):
        # D̃ has full column rank: D̃x = y has exactly one solution, so basis pursuit (signed or
        # non-negative) can only return δ — every code on live atoms is certified
        dead = np.zeros(d.n_atoms, dtype=bool)
        dead[d.dead_atoms] = True
        rows = Cs[nonempty]
        uses_dead = np.array([dead[rows.indices[a:b]].any()
                              for a, b in zip(rows.indptr[:-1], rows.indptr[1:], strict=True)])
        status[nonempty[uses_dead]] = "invalid"
        methods["full_column_rank"] = int((~uses_dead).sum())
    elif nonempty.size:
        res = classify_recovery(geom, Cs[nonempty], nonneg=is_nonneg, **recovery_options)
        names = {CERTIFIED: "certified", FAILED: "failed", UNDETERMINED: "undetermined",
                 INVALID: "invalid"}
        status[nonempty] = [names[int(s)] for s in res.status]
        methods.update(res.methods)
        if res.invalid:
            methods["invalid"] = res.invalid_examples()
        if res.reasons:  # undetermined codes the classifier can explain (near-parallel pairs)
            methods["undetermined_reasons"] = [
                {"token": int(pick[nonempty[e["index"]]]), "reason": e["reason"]}
                for e in res.undetermined_examples(5)]
    counts = {k: int(np.sum(status == k)) for k in ("certified", "failed", "undetermined",
                                                    "invalid")}
    return L1Certified(
        value=counts["certified"] / len(pick), n_tokens=int(len(pick)),
        certified=counts["certified"], failed=counts["failed"],
        undetermined=counts["undetermined"], invalid=counts["invalid"],
        empty=int(len(pick) - nonempty.size), nonneg=is_nonneg, tokens=pick,
        status=status.astype(str), sampled_from=n, seed=seed, methods=methods,
        recovery=res, recovery_tokens=pick[nonempty],
    )


def _independent_atoms(d: Dictionary, metric: AIPMetric | str | None) -> bool:
    """True when the live AIP-normalised atoms are linearly independent at the input's
    precision (N_live ≤ H, σ_min/σ_max of D̃ above :func:`rip_atoms.spark.rank_tolerance`,
    float64 SVD) and no pair is a duplicate (|cos| ≥ 1 − 1e-6, treated as parallel), e.g. the
    neuron basis."""
    live = d.live_atoms
    if len(live) > d.dim:
        return False
    from rip_atoms.spark import rank_tolerance

    atoms = CorrectedAtoms(d, metric, rows=False)
    V = atoms.vectors(live)
    gram = V.T @ V
    G = np.abs(gram)
    np.fill_diagonal(G, 0.0)
    if G.size and G.max() >= 1.0 - DUPLICATE_TOL:
        return False
    tol = rank_tolerance(d, atoms.metric)
    if _gram_certifies_rank(gram, V.shape[0], tol):
        return True
    s = np.linalg.svd(V, compute_uv=False)
    return bool(s[-1] > tol * s[0])


def _gram_certifies_rank(G: np.ndarray, h: int, tol: float) -> bool:
    """Cheap proof that σ_min(V) > tol·σ_max(V) for unit columns V ∈ R^{h×k}: with G = VᵀV as
    computed (float64, entrywise error ≤ γ_h, so ‖ΔG‖₂ ≤ γ_h·k), a certified λ̄ ≥ λmax(G) and
    t = tol²·λ̄ + γ_h·k + slack, a successful Cholesky of G − t·I shows λmin(G) > tol²·λmax(G).
    False means "not shown" (the SVD decides)."""
    from scipy.linalg import cho_factor

    from rip_atoms.corrected_atoms import lambda_max_upper
    from rip_atoms.precision import gamma

    k = G.shape[0]
    if k == 0:
        return False
    err = gamma(h) * k
    lam_max = lambda_max_upper(G) + err
    slack = 4 * k * np.finfo(np.float64).eps * float(np.linalg.norm(G))
    t = tol * tol * lam_max + err + slack
    try:
        cho_factor(G - t * np.eye(k), check_finite=False)
    except np.linalg.LinAlgError:
        return False
    return True



# =============================================================================== stability
@dataclass(frozen=True)
class StabilityResult:
    """The three stability readings and the distributions they were computed from."""

    q_star_quantile: QStarQuantile
    q_star_support: QStarSupport
    l1: L1Certified | None
    per_atom: PerAtomCoherence
    l0: np.ndarray = field(repr=False)
    support_mu: np.ndarray = field(repr=False)
    nonneg: bool = True

    def to_dict(self) -> dict:
        return {
            "q_star_quantile": self.q_star_quantile.to_dict(),
            "q_star_support": self.q_star_support.to_dict(),
            "l1_certified": None if self.l1 is None else self.l1.to_dict(),
            "per_atom_coherence": self.per_atom.to_dict(),
            "l0_mean": float(self.l0.mean()),
            "nonneg_codes": self.nonneg,
        }


def stability(
    D: Dictionary | np.ndarray,
    codes: Codes,
    *,
    metric: AIPMetric | str | None,
    l1: bool = True,
    l1_max_tokens: int | None = 256,
    seed: int | None = 0,
    nonneg: bool | None = None,
    exact_max_atoms: int = EXACT_MAX_ATOMS,
) -> StabilityResult:
    """Stability of a unit set's codes: q*_quantile, q*_support and the ℓ1-certified fraction.

    ``codes`` are the n×N codes of the tokens to assess (from the unit set's own encoder).
    ``metric`` is required: the AIP metric of the data (an :class:`AIPMetric`, usually fitted on
    activations), ``"self"`` ((D Dᵀ)⁻¹; note that it makes the neuron basis orthonormal), or
    ``"raw"``/None (Euclidean). See :func:`q_star_quantile`, :func:`q_star_support`,
    :func:`l1_certified_fraction`.

    Parameters
    ----------
    D : Dictionary or array_like
        The dictionary (decoder), H×N, columns are atoms.
    codes : array_like or scipy sparse
        n×N codes.
    metric : AIPMetric, "self", "raw" or None
        See above.
    l1 : bool
        Run the exact ℓ1 test.
    l1_max_tokens : int or None
        Its sample size.
    seed : int or None
        Its seed.
    nonneg : bool, optional
        Non-negative codes (default: whether every code is ≥ 0).
    exact_max_atoms : int
        Per-atom coherences in float64 for all pairs up to this many live atoms.

    Returns
    -------
    StabilityResult
    """
    d = as_dictionary(D)
    C = codes_csr(codes, d.n_atoms, "codes")
    if C.shape[0] == 0:
        raise ParameterError("stability: no codes")
    pac = per_atom_coherence(d, metric, exact_max_atoms=exact_max_atoms)
    l0 = np.diff(C.indptr).astype(np.int64)
    smu = support_coherence(C, pac)
    is_nonneg = bool(C.nnz == 0 or C.data.min() >= 0) if nonneg is None else bool(nonneg)
    cert = None
    if l1:
        cert = l1_certified_fraction(d, C, metric=metric, nonneg=is_nonneg,
                                     max_tokens=l1_max_tokens, seed=seed)
    return StabilityResult(
        q_star_quantile=q_star_quantile(pac, l0), q_star_support=q_star_support(smu, l0),
        l1=cert, per_atom=pac, l0=l0, support_mu=smu, nonneg=is_nonneg,
    )

