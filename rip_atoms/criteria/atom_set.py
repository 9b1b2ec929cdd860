"""The atom-set check: whether a unit set is an atom set for the activations, and at which ε, K.

The definition (docs/design.md, "The paper's criteria") has three conditions on
activations xᵢ, codes δᵢ and corrected atoms d̃ⱼ:

1. representability xᵢ = D δᵢ (+ b), up to a relative residual ``rtol``;
2. sparsity ‖δᵢ‖₀ ≤ K;
3. separability |⟨d̃ᵢ, d̃ⱼ⟩| ≤ ε for i ≠ j (AIP cosines).

:func:`atom_set_check` reports each, the smallest ε, K at which 2 and 3 hold, and the TSAE window
(:func:`rip_atoms.criteria.tsae.tsae_window`) at that (ε, K).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rip_atoms.coherence import EXACT_MAX_ATOMS, per_atom_coherence, quantile_table
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.criteria.faithfulness import DEFAULT_CHUNK_SIZE, check_activations, stream_tokens
from rip_atoms.criteria.tsae import TSAEWindow, tsae_window
from rip_atoms.criteria.units import UnitSet
from rip_atoms.errors import ParameterError
from rip_atoms.metric import AIPMetric, metric_description
from rip_atoms.theory import uniqueness_holds

__all__ = ["AtomSetCheck", "atom_set_check"]


@dataclass(frozen=True)
class AtomSetCheck:
    """The atom-set definition (the paper's; docs/design.md) checked on activations M and codes:

    1. representability xᵢ = D δᵢ (+ b): max relative residual ‖xᵢ − x̂ᵢ‖/‖xᵢ‖ ≤ ``rtol``
       (AIP norm when a metric is given, else Euclidean);
    2. sparsity ‖δᵢ‖₀ ≤ K;
    3. separability |⟨d̃ᵢ, d̃ⱼ⟩| ≤ ε for i ≠ j (AIP cosines).

    ``K`` and ``eps`` are the values asked for, or the smallest at which 2 and 3 hold (max L0
    and μ). ``window`` is the TSAE window at (ε, K) with [δ_min, δ_max] the range of non-zero
    magnitudes over AIP-normalised atoms (|δⱼ|·‖dⱼ‖_S).
    """

    representability: bool
    sparsity: bool
    separability: bool
    eps: float
    K: int
    rtol: float
    max_relative_residual_aip: float | None
    max_relative_residual_euclidean: float
    relative_residual_aip_quantiles: dict | None
    l0_quantiles: dict | None
    K_observed: int
    mu: float
    pair: tuple[int, int] | None
    delta_min: float | None
    delta_max: float | None
    nonneg: bool
    window: TSAEWindow | None
    n_tokens: int
    metric: dict
    l0: np.ndarray = field(repr=False)

    @property
    def is_atom_set(self) -> bool:
        return self.representability and self.sparsity and self.separability

    @property
    def uniqueness(self) -> bool:
        """(2K − 1)ε < 1: every K-sparse code over the set is unique (and ℓ1-recoverable)."""
        return bool(uniqueness_holds(self.eps, self.K))

    @property
    def rip_bound(self) -> float | None:
        """δ_K ≤ (K − 1)ε when (K − 1)ε < 1 (else None: no RIP from coherence)."""
        b = (self.K - 1) * self.eps
        return b if b < 1 else None

    def to_dict(self) -> dict:
        return {
            "is_atom_set": self.is_atom_set,
            "conditions": {
                "representability": {"holds": self.representability, "rtol": self.rtol,
                                     "max_relative_residual_aip": self.max_relative_residual_aip,
                                     "max_relative_residual_euclidean":
                                         self.max_relative_residual_euclidean,
                                     "relative_residual_aip_quantiles":
                                         self.relative_residual_aip_quantiles},
                "sparsity": {"holds": self.sparsity, "K": self.K,
                             "K_observed": self.K_observed, "l0_quantiles": self.l0_quantiles},
                "separability": {"holds": self.separability, "eps": self.eps, "mu": self.mu,
                                 "pair": None if self.pair is None else list(self.pair)},
            },
            "eps": self.eps,
            "K": self.K,
            "uniqueness": self.uniqueness,
            "rip_bound": self.rip_bound,
            "delta_min": self.delta_min,
            "delta_max": self.delta_max,
            "nonneg": self.nonneg,
            "tsae_window": None if self.window is None else self.window.to_dict(),
            "n_tokens": self.n_tokens,
            "metric": self.metric,
        }


def atom_set_check(
    activations: np.ndarray,
    unit: UnitSet,
    *,
    metric: AIPMetric | str | None,
    eps: float | None = None,
    K: int | None = None,
    rtol: float = 1e-6,
    rows: np.ndarray | None = None,
    exact_max_atoms: int = EXACT_MAX_ATOMS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> AtomSetCheck:
    """Check whether a unit set is an atom set for the activations (all tokens, or ``rows``).

    ``metric``: the AIP metric (an :class:`AIPMetric`, ``"self"`` or ``"raw"``/None). ``eps``
    and ``K``: the values to test (default: the smallest at which the conditions hold, i.e.
    ε = the certified upper bound on μ (:attr:`PerAtomCoherence.mu_upper`: μ plus its float64
    error bound, 1 with a duplicate pair) and K = max L0). ``rtol``: representability
    tolerance on the relative residual.

    Parameters
    ----------
    activations : array_like
        X, n×H.
    unit : UnitSet
        The units (encoder or codes aligned with X, decoder, bias).
    metric : AIPMetric, "self", "raw" or None
        The AIP metric (None and "raw": Euclidean).
    eps : float, optional
        ε to test (default: the certified upper bound on μ).
    K : int, optional
        K to test (default: the largest L0 on the tokens).
    rtol : float
        Tolerance on the largest relative residual ‖xᵢ − x̂ᵢ‖/‖xᵢ‖.
    rows : array_like of int, optional
        The tokens to check (default: all).
    exact_max_atoms : int
        Per-atom coherences in float64 for all pairs up to this many live atoms.
    chunk_size : int
        Tokens encoded at a time.

    Returns
    -------
    AtomSetCheck

    Examples
    --------
    Two orthogonal atoms, codes with one non-zero each, x = D δ exactly:

    >>> D = np.eye(2)
    >>> codes = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> chk = atom_set_check(codes @ D.T, UnitSet.from_codes("u", D, codes), metric=None)
    >>> chk.is_atom_set, chk.K, chk.eps < 1e-12, chk.window.feasible  # ε: μ = 0 + float error
    (True, 1, True, True)
    """
    X = check_activations(activations, unit.decoder.dim)
    idx = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    if idx.size == 0:
        raise ParameterError("atom-set check: no tokens")
    if not rtol >= 0:
        raise ParameterError(f"atom-set check: rtol must be ≥ 0, got {rtol}")
    atoms = CorrectedAtoms(unit.decoder, metric, rows=False)
    m = atoms.metric
    pac = per_atom_coherence(unit.decoder, m, exact_max_atoms=exact_max_atoms)
    norms = np.where(atoms.norms > 0, atoms.norms, 0.0)
    st = stream_tokens(unit, X, idx, metric=m, mean=None, atom_mu=None, atom_norms=norms,
                       sample=None, chunk_size=chunk_size, relative=True)
    l0 = np.concatenate(st.l0).astype(np.int64)
    K_obs = int(l0.max())
    K_use = K_obs if K is None else int(K)
    if K is not None and K_use < 1:
        raise ParameterError(f"atom-set check: K must be ≥ 1, got {K}")
    eps_use = pac.mu_upper if eps is None else float(eps)
    rel = st.rel_aip_max if m is not None else st.rel_euc_max
    have_mags = st.mag_max > 0
    window = None
    if have_mags and K_use >= 1 and 0 <= eps_use <= 1:
        window = tsae_window(eps_use, K_use, st.mag_min, st.mag_max)
    rel_aip = np.concatenate(st.rel_aip) if st.rel_aip else None
    return AtomSetCheck(
        representability=bool(rel <= rtol), sparsity=bool(K_obs <= K_use),
        separability=bool(pac.mu <= eps_use), eps=float(eps_use), K=K_use, rtol=float(rtol),
        max_relative_residual_aip=st.rel_aip_max if m is not None else None,
        max_relative_residual_euclidean=st.rel_euc_max,
        relative_residual_aip_quantiles=None if rel_aip is None else quantile_table(rel_aip),
        l0_quantiles=quantile_table(l0), K_observed=K_obs, mu=pac.mu, pair=pac.pair,
        delta_min=st.mag_min if have_mags else None, delta_max=st.mag_max if have_mags else None,
        nonneg=st.nonneg, window=window, n_tokens=int(idx.size), metric=metric_description(m),
        l0=l0,
    )

