"""The paper's criteria for a set of units: faithfulness R², stability q*, the atom-set check, the
TSAE identifiability window, and the comparison table neurons / features / atoms.

Notation (DESIGN.md, "The paper's criteria"): activations xᵢ ∈ R^H (rows of X), a unit set is a
decoder D ∈ R^{H×N} (columns are atoms), an encoder giving codes δᵢ ∈ R^N, and an optional
decoder bias b, with reconstruction x̂ᵢ = D δᵢ + b. S̃ is the AIP metric, W = S̃^{1/2}, and
d̃ⱼ = W dⱼ / ‖W dⱼ‖ are the AIP-normalised atoms; Kᵢ = ‖δᵢ‖₀; μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| is the
per-atom AIP coherence and μ = maxⱼ μⱼ. The uniqueness condition for sparsity k is written
(2k − 1)·μ < 1 (⇔ μ < 1/(2k − 1) for k ≥ 1; it holds trivially for the empty code, k = 0).

* :func:`faithfulness_r2` — R² = 1 − Σᵢ‖xᵢ − x̂ᵢ‖² / Σᵢ‖xᵢ − x̄‖², pooled over the evaluated
  tokens, x̄ their mean, in the AIP norm ‖v‖²_S = vᵀS̃v and in the Euclidean norm.
* :func:`q_star_quantile` — the paper's q* = sup{q : μ_q < 1/(2K_q − 1)} with μ_q the q-quantile
  of {μⱼ : j live} and K_q the q-quantile of {Kᵢ}; quantiles are the inverse empirical CDF and
  the sup is exact over the merged grid of order statistics (see the function).
* :func:`q_star_support` — the fraction of tokens whose own support S satisfies
  (2|S| − 1)·max_{j∈S, l≠j} |⟨d̃ⱼ, d̃ₗ⟩| < 1 (l over *all* atoms).
* :func:`l1_certified_fraction` — the fraction of tokens whose code is certified by the exact
  ℓ1 test of :mod:`rip_atoms.recovery` (non-negative basis pursuit where the codes are ≥ 0).
* :func:`atom_set_check` — the three defining conditions (representability, K-sparsity,
  ε-separability under the AIP) and at which ε, K they hold.
* :func:`tsae_window`, :func:`check_thresholds`, :func:`tsae_encoder` — the identifiability
  window εKδ_max < τ < δ_min − ε(K − 1)δ_max and a trained TSAE's thresholds against it.
* :func:`compare_units` — the headline table: per unit set R² (AIP, Euclidean), q* (both
  readings), ℓ1-certified fraction, μ, mean L0, dead and never-active atoms.

Precision. Per-atom coherences are exact float64 values for up to ``exact_max_atoms`` live atoms;
above that they come from the blocked float32 pass (error ≤ its stated tolerance) and every atom
whose value lies within that tolerance of some threshold 1/(2k − 1) is recomputed in float64, so
every comparison (2k − 1)·μⱼ < 1 that q* makes is decided as in exact arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from rip_atoms.coherence import coherence
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.dictionary import DUPLICATE_TOL, Dictionary, as_dictionary
from rip_atoms.errors import (
    NonFiniteError,
    ParameterError,
    ShapeMismatchError,
)
from rip_atoms.metric import AIPMetric, fit_metric

Codes = np.ndarray | sp.spmatrix | sp.sparray
Encoder = Callable[[np.ndarray], Codes]

QUANTILE_LEVELS = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
EXACT_MAX_ATOMS = 4096
NNLS_ZERO_RTOL = 1e-10
DEFAULT_CHUNK = 4096

__all__ = [
    "AtomSetCheck",
    "FaithfulnessResult",
    "L1Certified",
    "PerAtomCoherence",
    "QStarQuantile",
    "QStarSupport",
    "StabilityResult",
    "TSAEWindow",
    "ThresholdCheck",
    "TokenSplit",
    "UnitComparison",
    "UnitRow",
    "UnitSet",
    "atom_set_check",
    "check_thresholds",
    "compare_units",
    "faithfulness_r2",
    "l0_counts",
    "l1_certified_fraction",
    "per_atom_coherence",
    "q_star_quantile",
    "q_star_support",
    "stability",
    "support_coherence",
    "token_split",
    "tsae_encoder",
    "tsae_window",
    "uniqueness_holds",
]


# =============================================================================== small helpers
def uniqueness_holds(mu: np.ndarray | float, k: np.ndarray | int) -> np.ndarray | bool:
    """The uniqueness condition (2k − 1)·μ < 1, elementwise (k = 0, the empty code, holds)."""
    return (2.0 * np.asarray(k, dtype=np.float64) - 1.0) * np.asarray(mu, dtype=np.float64) < 1.0


def _quantile_table(values: np.ndarray) -> dict[str, float] | None:
    """Inverse-empirical-CDF quantiles at :data:`QUANTILE_LEVELS` (None for an empty sample)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    qs = np.quantile(v, QUANTILE_LEVELS, method="inverted_cdf")
    return {str(q): float(x) for q, x in zip(QUANTILE_LEVELS, qs, strict=True)}


def _to_csr(codes: Codes, n_atoms: int, what: str) -> sp.csr_matrix:
    """Codes (dense or scipy sparse, tokens × atoms) as float64 CSR with explicit zeros removed;
    checks the width and finiteness."""
    if sp.issparse(codes):
        C = sp.csr_matrix(codes, dtype=np.float64)
    else:
        arr = np.asarray(codes)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ShapeMismatchError(f"{what}: codes must be a tokens×atoms matrix, got shape "
                                     f"{arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
                or arr.dtype == bool):
            raise ShapeMismatchError(f"{what}: codes must be real numbers, got {arr.dtype}")
        C = sp.csr_matrix(arr.astype(np.float64, copy=False))
    if C.shape[1] != n_atoms:
        raise ShapeMismatchError(f"{what}: codes have {C.shape[1]} columns but the decoder has "
                                 f"N = {n_atoms} atoms")
    if C.nnz and not np.isfinite(C.data).all():
        bad = int(np.searchsorted(C.indptr, np.flatnonzero(~np.isfinite(C.data))[0],
                                  side="right") - 1)
        raise NonFiniteError(f"{what}: the code of token {bad} holds a non-finite value")
    C.eliminate_zeros()
    C.sort_indices()
    return C


def l0_counts(codes: Codes) -> np.ndarray:
    """Kᵢ = ‖δᵢ‖₀ for every row of a dense or sparse tokens×atoms code matrix (exact zeros)."""
    if sp.issparse(codes):
        C = sp.csr_matrix(codes)
        C.eliminate_zeros()
        return np.diff(C.indptr).astype(np.int64)
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    return np.count_nonzero(arr, axis=1).astype(np.int64)


def _metric_dict(metric: AIPMetric | None) -> dict:
    return {"kind": "raw"} if metric is None else metric.to_dict()


# =============================================================================== unit sets
def _nnls_encoder(D: Dictionary, bias: np.ndarray | None) -> Encoder:
    from scipy.optimize import nnls

    A = np.asarray(D.atoms, dtype=np.float64)

    def encode(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        Y = X - bias if bias is not None else X
        out = np.zeros((X.shape[0], A.shape[1]))
        for i, y in enumerate(Y):
            c = nnls(A, y, maxiter=50 * A.shape[1])[0]
            c[c <= NNLS_ZERO_RTOL * c.max(initial=0.0)] = 0.0  # round-off in the passive set
            out[i] = c
        return out

    return encode


@dataclass(frozen=True)
class UnitSet:
    """A set of units: a decoder D (H×N, columns are atoms), a way to get codes, and a bias.

    Exactly one of ``encoder`` (a callable mapping an m×H block of activations to m×N codes,
    dense or scipy sparse) and ``codes`` (precomputed n×N codes whose rows are aligned with the
    activations they will be evaluated on) is set. The reconstruction is x̂ = D δ + b
    (``decoder_bias`` b, default 0). ``kind`` labels the row of the comparison table
    ("neurons", "features", "atoms", or anything else). Build one with :meth:`neurons`,
    :meth:`from_codes`, :meth:`from_encoder` or :meth:`from_dictionary`.

    This is the plug for SAEs: an SAE with ``W_enc`` (H×N), ``b_enc``, ``W_dec`` (N×H), ``b_dec``
    and an activation σ is ``UnitSet.from_encoder(name, Dictionary(W_dec, rows_are_atoms=True),
    lambda X: σ((X − b_dec) @ W_enc + b_enc), decoder_bias=b_dec)``.
    """

    name: str
    decoder: Dictionary
    encoder: Encoder | None = field(default=None, repr=False)
    codes: Codes | None = field(default=None, repr=False)
    decoder_bias: np.ndarray | None = field(default=None, repr=False)
    kind: str = "features"
    coder: str = "encoder"

    def __post_init__(self) -> None:
        if (self.encoder is None) == (self.codes is None):
            raise ParameterError(f"unit set {self.name!r}: give exactly one of an encoder and "
                                 "precomputed codes")
        if self.decoder_bias is not None:
            b = np.asarray(self.decoder_bias, dtype=np.float64).reshape(-1)
            if b.shape != (self.decoder.dim,):
                raise ShapeMismatchError(f"unit set {self.name!r}: the decoder bias has "
                                         f"{b.size} entries but H = {self.decoder.dim}")
            if not np.isfinite(b).all():
                raise NonFiniteError(f"unit set {self.name!r}: the decoder bias is not finite")
            object.__setattr__(self, "decoder_bias", b)
        if self.codes is not None:
            object.__setattr__(self, "codes", _to_csr(self.codes, self.decoder.n_atoms,
                                                      f"unit set {self.name!r}"))

    # ------------------------------------------------------------------ construction
    @classmethod
    def neurons(cls, dim: int, name: str = "neurons") -> UnitSet:
        """The neuron basis: D = I_H, code δ = x (dense), no bias; R² = 1 by construction."""
        return cls(name=name, decoder=Dictionary.neurons(dim), encoder=_identity,
                   kind="neurons", coder="identity (δ = x)")

    @classmethod
    def from_codes(cls, name: str, decoder: Dictionary | np.ndarray, codes: Codes, *,
                   decoder_bias: np.ndarray | None = None, kind: str = "features") -> UnitSet:
        """Precomputed codes (n×N, rows aligned with the activations)."""
        return cls(name=name, decoder=as_dictionary(decoder), codes=codes,
                   decoder_bias=decoder_bias, kind=kind, coder="precomputed codes")

    @classmethod
    def from_encoder(cls, name: str, decoder: Dictionary | np.ndarray, encoder: Encoder, *,
                     decoder_bias: np.ndarray | None = None, kind: str = "features",
                     coder: str = "encoder") -> UnitSet:
        """An encoder callable X (m×H) → codes (m×N)."""
        return cls(name=name, decoder=as_dictionary(decoder), encoder=encoder,
                   decoder_bias=decoder_bias, kind=kind, coder=coder)

    @classmethod
    def from_dictionary(cls, name: str, decoder: Dictionary | np.ndarray, *,
                        decoder_bias: np.ndarray | None = None, kind: str = "dictionary"
                        ) -> UnitSet:
        """A plain dictionary: codes by non-negative least squares, δ = argmin_{δ≥0}
        ‖x − b − D δ‖₂ (scipy's active-set NNLS, one token at a time: small N only). NNLS
        returns a vertex solution (at most H non-zeros) but not necessarily the sparsest;
        coefficients ≤ 1e-10 × the code's largest are round-off of the active set and are set to
        0 (they would otherwise count in L0)."""
        d = as_dictionary(decoder)
        return cls(name=name, decoder=d, encoder=_nnls_encoder(d, decoder_bias),
                   decoder_bias=decoder_bias, kind=kind, coder="nnls")

    # ------------------------------------------------------------------ use
    def codes_for(self, X_rows: np.ndarray | None, rows: np.ndarray) -> sp.csr_matrix:
        """The codes of the tokens ``rows`` (float64 CSR), from the encoder applied to
        ``X_rows`` (the activations of those rows) or from the precomputed codes."""
        if self.codes is not None:
            if len(rows) and int(np.max(rows)) >= self.codes.shape[0]:
                raise ShapeMismatchError(
                    f"unit set {self.name!r}: {self.codes.shape[0]} precomputed codes but token "
                    f"{int(np.max(rows))} was asked for (codes must align with the activations)")
            return self.codes[rows]
        out = self.encoder(X_rows)
        C = _to_csr(out, self.decoder.n_atoms, f"unit set {self.name!r} (encoder output)")
        if C.shape[0] != len(rows):
            raise ShapeMismatchError(f"unit set {self.name!r}: the encoder returned "
                                     f"{C.shape[0]} codes for {len(rows)} tokens")
        return C

    def decode(self, codes: Codes) -> np.ndarray:
        """x̂ = D δ + b for each row δ of ``codes`` (float64 for float64 decoders)."""
        C = _to_csr(codes, self.decoder.n_atoms, f"unit set {self.name!r}")
        D = self.decoder.atoms
        Xh = np.asarray(C.astype(D.dtype) @ D.T, dtype=np.float64)
        if self.decoder_bias is not None:
            Xh += self.decoder_bias
        return Xh

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "coder": self.coder,
            "decoder": self.decoder.to_dict(),
            "decoder_bias": self.decoder_bias is not None,
        }


def _identity(X: np.ndarray) -> np.ndarray:
    return np.asarray(X, dtype=np.float64)


def _as_unit_set(name: str, spec: UnitSet | Dictionary | np.ndarray) -> UnitSet:
    if isinstance(spec, UnitSet):
        return spec
    if isinstance(spec, Dictionary | np.ndarray):
        return UnitSet.from_dictionary(name, spec)
    raise ParameterError(f"unit set {name!r}: expected a UnitSet or a dictionary, got "
                         f"{type(spec).__name__}")


# =============================================================================== token split
@dataclass(frozen=True)
class TokenSplit:
    """Which tokens fit the AIP metric (``fit``) and which are evaluated (``eval``).

    ``mode``: "random" (a seeded random permutation; the last ``held_out`` fraction is
    evaluated), "tail" (the last ``held_out`` fraction in file order is evaluated — use it when
    neighbouring tokens come from the same document), or "all" (fit = eval = every token; no
    hold-out). Indices are sorted.
    """

    n_tokens: int
    fit: np.ndarray = field(repr=False)
    eval: np.ndarray = field(repr=False)
    held_out: float
    mode: str
    seed: int | None

    def describe(self) -> str:
        if self.mode == "all":
            return (f"all {self.n_tokens} tokens (no hold-out: the metric and the criteria use "
                    "the same tokens)")
        how = f"random split, seed {self.seed}" if self.mode == "random" else "last tokens in order"
        return (f"{len(self.eval)} held-out tokens evaluated, {len(self.fit)} fit the metric "
                f"({how}, held_out = {self.held_out:g})")

    def to_dict(self) -> dict:
        return {"n_tokens": self.n_tokens, "n_fit": int(len(self.fit)),
                "n_eval": int(len(self.eval)), "held_out": self.held_out, "mode": self.mode,
                "seed": self.seed, "description": self.describe()}


def token_split(n_tokens: int, held_out: float = 0.5, *, mode: str = "random",
                seed: int | None = 0) -> TokenSplit:
    """Split token indices 0..n−1 into metric-fitting and evaluated (held-out) tokens.

    ``held_out`` ∈ (0, 1) is the evaluated fraction (⌈held_out·n⌉ tokens, at least 1, and at
    least 1 left to fit); ``mode`` is "random" (seeded), "tail" or "all" (see
    :class:`TokenSplit`).
    """
    if n_tokens < 1:
        raise ParameterError(f"token split: need at least one token, got {n_tokens}")
    if mode == "all":
        idx = np.arange(n_tokens)
        return TokenSplit(n_tokens, idx, idx, 1.0, "all", None)
    if mode not in ("random", "tail"):
        raise ParameterError(f"token split: mode must be 'random', 'tail' or 'all', not {mode!r}")
    if not 0.0 < held_out < 1.0:
        raise ParameterError(f"token split: held_out must be in (0, 1), got {held_out}")
    if n_tokens < 2:
        raise ParameterError("token split: a hold-out needs at least 2 tokens (use mode='all')")
    n_eval = min(n_tokens - 1, max(1, math.ceil(held_out * n_tokens)))
    order = (np.random.default_rng(seed).permutation(n_tokens) if mode == "random"
             else np.arange(n_tokens))
    return TokenSplit(n_tokens, np.sort(order[: n_tokens - n_eval]),
                      np.sort(order[n_tokens - n_eval:]), float(held_out), mode,
                      seed if mode == "random" else None)


# =============================================================================== coherence
@dataclass(frozen=True)
class PerAtomCoherence:
    """Per-atom AIP coherence μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| over the live atoms.

    ``values`` (N,) float64, NaN for dead atoms; ``partner`` the l attaining it (−1 if none);
    ``exact`` marks values computed in float64 (within ``tolerance64`` of the truth; the others
    are float32 values within ``tolerance`` of the truth, and at least ``tolerance`` away from
    every threshold 1/(2k − 1), so each uniqueness comparison is decided exactly). ``mu`` and
    ``pair`` are the float64 maximum and its pair. A single live atom has μⱼ = 0 (no other
    atom).

    Decisions (q* readings, the atom-set check) use upper bounds (:meth:`decision_values`,
    :meth:`for_supports`, :attr:`mu_upper`): the float64 values raised by ``tolerance64``, so a
    value that only rounding puts below a threshold 1/(2k − 1) never passes it, and 1 for atoms
    in a duplicate pair (|cos| ≥ 1 − 1e-6: treated as parallel, as in
    :mod:`rip_atoms.coherence`).
    """

    values: np.ndarray = field(repr=False)
    partner: np.ndarray = field(repr=False)
    exact: np.ndarray = field(repr=False)
    tolerance: float
    mu: float
    pair: tuple[int, int] | None
    n_atoms: int
    n_live: int
    metric: dict
    method: str
    tolerance64: float = 0.0

    @property
    def mu_upper(self) -> float:
        """Certified upper bound on μ: min(μ + tolerance64, 1); 1 with a duplicate pair."""
        return 1.0 if self.mu >= 1.0 - DUPLICATE_TOL else min(1.0, self.mu + self.tolerance64)

    def live_values(self) -> np.ndarray:
        """μⱼ of the live atoms."""
        return self.values[np.isfinite(self.values)]

    def _upper(self) -> np.ndarray:
        up = np.where(self.exact, np.minimum(self.values + self.tolerance64, 1.0), self.values)
        return np.where(self.values >= 1.0 - DUPLICATE_TOL, 1.0, up)  # NaN stays NaN

    def decision_values(self) -> np.ndarray:
        """Upper bounds on μⱼ of the live atoms for uniqueness decisions: float64 values plus
        ``tolerance64`` (capped at 1), float32 values as they are (already decided exactly),
        1 for atoms in a duplicate pair."""
        up = self._upper()
        return up[np.isfinite(up)]

    def for_supports(self) -> np.ndarray:
        """Upper bounds on μⱼ (as :meth:`decision_values`) for every atom, dead atoms set to 1:
        a code that uses a zero atom is never unique (its coefficient can be changed freely), so
        it fails every uniqueness condition."""
        up = self._upper()
        return np.where(np.isfinite(up), up, 1.0)

    def to_dict(self) -> dict:
        return {
            "mu": self.mu,
            "pair": None if self.pair is None else list(self.pair),
            "n_atoms": self.n_atoms,
            "n_live": self.n_live,
            "quantiles": _quantile_table(self.live_values()),
            "n_exact": int(self.exact.sum()),
            "tolerance": self.tolerance,
            "method": self.method,
            "metric": self.metric,
        }


def _near_thresholds(f: np.ndarray, tol: float) -> np.ndarray:
    """Mask of values within ``tol`` of some threshold 1/(2k − 1), k ≥ 1 (or of 0)."""
    band = tol * (1 + 1e-6) + 1e-15
    mask = f <= 3 * band
    safe = np.where(mask, 1.0, f)
    k0 = np.floor(0.5 * (1.0 / safe + 1.0))
    for dk in (-1.0, 0.0, 1.0, 2.0):
        k = np.maximum(k0 + dk, 1.0)
        mask |= np.abs(f - 1.0 / (2.0 * k - 1.0)) <= band
    return mask


def _exact_rows(atoms: CorrectedAtoms, J: np.ndarray, live: np.ndarray, block: int = 2048,
                V_live: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """float64 max_{l live, l≠j} |⟨d̃ⱼ, d̃ₗ⟩| and its argmax, for the atoms J."""
    best = np.full(len(J), -1.0)
    arg = np.full(len(J), -1, dtype=np.int64)
    for js in range(0, len(J), block):
        Jb = J[js: js + block]
        VJ = atoms.vectors(Jb)
        bb = np.full(len(Jb), -1.0)
        ab = np.full(len(Jb), -1, dtype=np.int64)
        for cs in range(0, len(live), block):
            cols = live[cs: cs + block]
            Vc = V_live[:, cs: cs + block] if V_live is not None else atoms.vectors(cols)
            C = np.abs(Vc.T @ VJ)  # (cols, Jb)
            C[cols[:, None] == Jb[None, :]] = -1.0
            r = np.argmax(C, axis=0)
            v = C[r, np.arange(len(Jb))]
            upd = v > bb
            bb[upd] = v[upd]
            ab[upd] = cols[r[upd]]
        best[js: js + len(Jb)] = bb
        arg[js: js + len(Jb)] = ab
    return np.minimum(best, 1.0), arg


def per_atom_coherence(
    D: Dictionary | np.ndarray,
    metric: AIPMetric | str | None,
    *,
    exact_max_atoms: int = EXACT_MAX_ATOMS,
    progress: bool = False,
) -> PerAtomCoherence:
    """μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| for every live atom under ``metric`` (an :class:`AIPMetric`,
    ``"self"`` for (D Dᵀ)⁻¹, or ``"raw"``/None for Euclidean cosines).

    Up to ``exact_max_atoms`` live atoms: all pairs in float64. Above: the blocked float32 pass
    of :func:`rip_atoms.coherence.coherence`, then float64 recomputation of every atom within the
    float32 tolerance of a threshold 1/(2k − 1) (see :class:`PerAtomCoherence`).
    """
    atoms = CorrectedAtoms(D, metric, rows=False)
    d = atoms.dictionary
    live = atoms.live
    n = len(live)
    values = np.full(d.n_atoms, np.nan)
    partner = np.full(d.n_atoms, -1, dtype=np.int64)
    exact = np.zeros(d.n_atoms, dtype=bool)
    tol = 0.0
    if n == 1:
        values[live] = 0.0
        exact[live] = True
        mu, pair, method = 0.0, None, "single live atom (μⱼ = 0)"
    elif n <= exact_max_atoms:
        V = atoms.vectors(live)
        vals, part = _exact_rows(atoms, live, live, V_live=V)
        values[live], partner[live], exact[live] = vals, part, True
        r = int(np.argmax(vals))
        mu, pair = float(vals[r]), (int(min(live[r], part[r])), int(max(live[r], part[r])))
        method = "float64, all pairs"
    else:
        coh = coherence(d, atoms.metric, babel_p=1, top=1, progress=progress)
        tol = float(coh.float32_tolerance)
        values[live] = coh.per_atom[live]
        partner[live] = coh.per_atom_partner[live]
        J = live[_near_thresholds(values[live], tol)]
        if J.size:
            vals, part = _exact_rows(atoms, J, live)
            values[J], partner[J], exact[J] = vals, part, True
        mu, pair = float(coh.mu), (int(coh.pair[0]), int(coh.pair[1]))
        method = (f"float32 blocked pass (tolerance {tol:.2g}); {int(J.size)} atoms near a "
                  "threshold 1/(2k−1) recomputed in float64")
    if np.any(values >= 1.0 - DUPLICATE_TOL):  # NaN (dead) compares False
        method += "; atoms in a duplicate pair (|cos| ≥ 1 − 1e-6) decide as μⱼ = 1"
    return PerAtomCoherence(
        values=values, partner=partner, exact=exact, tolerance=tol, mu=mu, pair=pair,
        n_atoms=d.n_atoms, n_live=n, metric=atoms.metric_info(), method=method,
        tolerance64=atoms.tolerance64,
    )


def support_coherence(codes: Codes, per_atom: PerAtomCoherence | np.ndarray) -> np.ndarray:
    """Per token, μ^{(i)} = max_{j∈Sᵢ} μⱼ = max_{j∈Sᵢ, l≠j} |⟨d̃ⱼ, d̃ₗ⟩| (l over all atoms);
    0 for an empty support; dead atoms in a support count as 1."""
    mu = per_atom.for_supports() if isinstance(per_atom, PerAtomCoherence) else (
        np.asarray(per_atom, dtype=np.float64))
    C = _to_csr(codes, len(mu), "codes")
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
            "per_atom_mu_quantiles": _quantile_table(self.per_atom_mu),
            "l0_quantiles": _quantile_table(self.l0),
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
            "support_mu_quantiles": _quantile_table(self.support_mu),
            "l0_quantiles": _quantile_table(self.l0),
        }


def q_star_support(support_mu: np.ndarray, l0: np.ndarray) -> QStarSupport:
    """Fraction of tokens with (2Kᵢ − 1)·μ^{(i)} < 1, from the per-token support coherences
    μ^{(i)} (:func:`support_coherence`) and L0 Kᵢ."""
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


def _sample_rows(n: int, max_tokens: int | None, seed: int | None) -> np.ndarray:
    if max_tokens is None or max_tokens >= n:
        return np.arange(n)
    if max_tokens < 1:
        raise ParameterError(f"max_tokens must be ≥ 1, got {max_tokens}")
    return np.sort(np.random.default_rng(seed).choice(n, size=max_tokens, replace=False))


def l1_certified_fraction(
    decoder: Dictionary | np.ndarray,
    codes: Codes,
    *,
    metric: AIPMetric | str | None,
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
    """
    from rip_atoms.recovery import CERTIFIED, FAILED, INVALID, UNDETERMINED, classify_recovery

    d = as_dictionary(decoder)
    C = _to_csr(codes, d.n_atoms, "codes")
    n = C.shape[0]
    if n == 0:
        raise ParameterError("ℓ1-certified fraction: no codes")
    pick = _sample_rows(n, max_tokens, seed)
    Cs = C[pick]
    is_nonneg = bool(Cs.nnz == 0 or Cs.data.min() >= 0) if nonneg is None else bool(nonneg)
    l0 = np.diff(Cs.indptr)
    status = np.full(len(pick), "certified", dtype=object)  # empty codes: y = 0, unique x = 0
    nonempty = np.flatnonzero(l0 > 0)
    methods: dict = {"empty": int(len(pick) - nonempty.size)}
    if nonempty.size and _independent_atoms(d, metric):
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
        res = classify_recovery(d, Cs[nonempty], nonneg=is_nonneg, metric=metric,
                                **recovery_options)
        names = {CERTIFIED: "certified", FAILED: "failed", UNDETERMINED: "undetermined",
                 INVALID: "invalid"}
        status[nonempty] = [names[int(s)] for s in res.status]
        methods.update(res.methods)
        if res.invalid:
            methods["invalid"] = res.invalid_examples()
    counts = {k: int(np.sum(status == k)) for k in ("certified", "failed", "undetermined",
                                                    "invalid")}
    return L1Certified(
        value=counts["certified"] / len(pick), n_tokens=int(len(pick)),
        certified=counts["certified"], failed=counts["failed"],
        undetermined=counts["undetermined"], invalid=counts["invalid"],
        empty=int(len(pick) - nonempty.size), nonneg=is_nonneg, tokens=pick,
        status=status.astype(str), sampled_from=n, seed=seed, methods=methods,
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
    G = np.abs(V.T @ V)
    np.fill_diagonal(G, 0.0)
    if G.size and G.max() >= 1.0 - DUPLICATE_TOL:
        return False
    s = np.linalg.svd(V, compute_uv=False)
    return bool(s[-1] > rank_tolerance(d, atoms.metric) * s[0])


# =============================================================================== streaming
@dataclass
class _Stats:
    """Accumulated over the evaluated tokens of one unit set."""

    res_aip: float = 0.0
    tot_aip: float = 0.0
    res_euc: float = 0.0
    tot_euc: float = 0.0
    l0: list = field(default_factory=list)
    support_mu: list = field(default_factory=list)
    active: np.ndarray | None = None
    nonneg: bool = True
    mag_min: float = math.inf
    mag_max: float = 0.0
    rel_aip_max: float = 0.0
    rel_euc_max: float = 0.0
    rel_aip: list = field(default_factory=list)
    sample_codes: list = field(default_factory=list)


def _check_activations(X: np.ndarray, dim: int | None, what: str = "activations") -> np.ndarray:
    if isinstance(X, np.ndarray) and X.ndim == 2:
        if dim is not None and X.shape[1] != dim:
            raise ShapeMismatchError(f"{what}: width {X.shape[1]} but the unit set has "
                                     f"H = {dim}")
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"{what}: expected an n×H matrix, got shape {arr.shape}")
    return _check_activations(arr, dim, what)


def _rows_of(X: np.ndarray, r: np.ndarray) -> np.ndarray:
    Xc = np.asarray(X[r], dtype=np.float64)
    if not np.isfinite(Xc).all():
        bad = int(r[np.flatnonzero(~np.isfinite(Xc).all(axis=1))[0]])
        raise NonFiniteError(f"activations: row {bad} holds a non-finite value")
    return Xc


def _stream(
    unit: UnitSet,
    X: np.ndarray | None,
    rows: np.ndarray,
    *,
    metric: AIPMetric | None,
    mean: np.ndarray | None,
    atom_mu: np.ndarray | None,
    atom_norms: np.ndarray | None,
    sample: np.ndarray | None,
    chunk: int,
    relative: bool = False,
) -> _Stats:
    """One pass over the tokens ``rows``: residual sums for R², per-token L0 and support
    coherence, atoms ever active, the sign of the codes, normalised magnitude range, the codes
    of the ``sample`` tokens (positions into ``rows``), and per-token relative residuals."""
    st = _Stats()
    N = unit.decoder.n_atoms
    st.active = np.zeros(N, dtype=bool)
    W = None if metric is None else metric.W
    want_res = X is not None and mean is not None
    is_neurons = unit.kind == "neurons" and unit.encoder is _identity
    for s in range(0, len(rows), chunk):
        r = rows[s: s + chunk]
        Xc = _rows_of(X, r) if X is not None else None
        C = unit.codes_for(Xc, r)
        if C.nnz:
            st.active[np.unique(C.indices)] = True
            if C.data.min() < 0:
                st.nonneg = False
            mags = np.abs(C.data)
            if atom_norms is not None:
                mags = mags * atom_norms[C.indices]
            st.mag_min = min(st.mag_min, float(mags.min()))
            st.mag_max = max(st.mag_max, float(mags.max()))
        st.l0.append(np.diff(C.indptr))
        if atom_mu is not None:
            st.support_mu.append(support_coherence(C, atom_mu))
        if sample is not None:
            pos = sample[(sample >= s) & (sample < s + len(r))] - s
            if pos.size:
                st.sample_codes.append(C[pos])
        if want_res or relative:
            Xh = Xc.copy() if is_neurons else unit.decode(C)
            E = Xc - Xh
            if want_res:
                T = Xc - mean
                st.res_euc += float(np.einsum("ij,ij->", E, E))
                st.tot_euc += float(np.einsum("ij,ij->", T, T))
                if W is not None:
                    EW, TW = E @ W, T @ W
                    st.res_aip += float(np.einsum("ij,ij->", EW, EW))
                    st.tot_aip += float(np.einsum("ij,ij->", TW, TW))
            if relative:
                nx = np.linalg.norm(Xc, axis=1)
                ne = np.linalg.norm(E, axis=1)
                floor = 1e-300 + 1e-12 * max(float(nx.max()), 0.0)
                st.rel_euc_max = max(st.rel_euc_max, float((ne / np.maximum(nx, floor)).max()))
                if W is not None:
                    nxa = np.linalg.norm(Xc @ W, axis=1)
                    nea = np.linalg.norm(E @ W, axis=1)
                    ra = nea / np.maximum(nxa, 1e-300 + 1e-12 * float(nxa.max()))
                    st.rel_aip.append(ra)
                    st.rel_aip_max = max(st.rel_aip_max, float(ra.max()))
    return st


# =============================================================================== faithfulness
@dataclass(frozen=True)
class FaithfulnessResult:
    """R² = 1 − Σᵢ‖xᵢ − x̂ᵢ‖² / Σᵢ‖xᵢ − x̄‖² pooled over the evaluated tokens (x̄ their mean), in
    the AIP norm (``r2_aip``, ‖v‖²_S = vᵀS̃v) and the Euclidean norm (``r2_euclidean``)."""

    r2_aip: float
    r2_euclidean: float
    n_tokens: int
    residual_aip: float
    total_aip: float
    residual_euclidean: float
    total_euclidean: float
    split: dict
    metric: dict
    reading: str = ("pooled over held-out tokens, centred by their mean: R² = 1 − Σ‖x − x̂‖² / "
                    "Σ‖x − x̄‖², in the AIP norm vᵀS̃v and in the Euclidean norm")

    def to_dict(self) -> dict:
        return {
            "r2_aip": self.r2_aip,
            "r2_euclidean": self.r2_euclidean,
            "n_tokens": self.n_tokens,
            "residual_aip": self.residual_aip,
            "total_aip": self.total_aip,
            "residual_euclidean": self.residual_euclidean,
            "total_euclidean": self.total_euclidean,
            "split": self.split,
            "metric": self.metric,
            "reading": self.reading,
        }


def _resolve_split(n: int, split: TokenSplit | None) -> TokenSplit:
    if split is None:
        return token_split(n)
    if split.n_tokens != n:
        raise ShapeMismatchError(f"token split is for {split.n_tokens} tokens but there are "
                                 f"{n} activations")
    return split


def _fit_data_metric(X: np.ndarray, split: TokenSplit, metric: AIPMetric | None,
                     ridge: float, center: bool) -> AIPMetric:
    if metric is not None:
        if metric.dim != X.shape[1]:
            raise ShapeMismatchError(f"the metric is for H = {metric.dim} but the activations "
                                     f"have width {X.shape[1]}")
        return metric
    fit_rows = split.fit
    return fit_metric(_ChunkRows(X, fit_rows), ridge=ridge, center=center,
                      source=f"activations ({len(fit_rows)} metric-fitting tokens)")


class _ChunkRows:
    """Iterable of row chunks X[rows] (for fit_metric over a subset without a copy)."""

    def __init__(self, X: np.ndarray, rows: np.ndarray, chunk: int = 16384) -> None:
        self.X, self.rows, self.chunk = X, rows, chunk

    def __iter__(self) -> Iterator[np.ndarray]:
        for s in range(0, len(self.rows), self.chunk):
            yield np.asarray(self.X[self.rows[s: s + self.chunk]], dtype=np.float64)


def _eval_mean(X: np.ndarray, rows: np.ndarray, chunk: int) -> np.ndarray:
    total = np.zeros(X.shape[1])
    for s in range(0, len(rows), chunk):
        total += _rows_of(X, rows[s: s + chunk]).sum(axis=0)
    return total / len(rows)


def _r2(res: float, tot: float) -> float:
    if not tot > 0:
        raise ParameterError("R²: the evaluated activations have zero variance about their mean")
    return 1.0 - res / tot


def faithfulness_r2(
    activations: np.ndarray,
    unit: UnitSet,
    *,
    metric: AIPMetric | None = None,
    split: TokenSplit | None = None,
    ridge: float = 0.0,
    center: bool = False,
    chunk: int = DEFAULT_CHUNK,
) -> FaithfulnessResult:
    """Faithfulness R² of a unit set, in the AIP norm and the Euclidean norm, on held-out tokens.

    R² = 1 − Σᵢ‖xᵢ − x̂ᵢ‖² / Σᵢ‖xᵢ − x̄‖² with x̂ᵢ = D δᵢ + b, pooled over the evaluated tokens
    ``split.eval`` and x̄ their mean; ‖v‖² is vᵀS̃v (AIP) or vᵀv (Euclidean). ``split`` defaults
    to :func:`token_split` (a seeded random half held out). ``metric`` defaults to Σ⁻¹ fitted on
    the split's ``fit`` tokens (``ridge``, ``center`` as in :func:`rip_atoms.metric.fit_metric`).
    Neurons give R² = 1 exactly.
    """
    X = _check_activations(activations, unit.decoder.dim)
    sp_ = _resolve_split(X.shape[0], split)
    m = _fit_data_metric(X, sp_, metric, ridge, center)
    mean = _eval_mean(X, sp_.eval, chunk)
    st = _stream(unit, X, sp_.eval, metric=m, mean=mean, atom_mu=None, atom_norms=None,
                 sample=None, chunk=chunk)
    return FaithfulnessResult(
        r2_aip=_r2(st.res_aip, st.tot_aip), r2_euclidean=_r2(st.res_euc, st.tot_euc),
        n_tokens=len(sp_.eval), residual_aip=st.res_aip, total_aip=st.tot_aip,
        residual_euclidean=st.res_euc, total_euclidean=st.tot_euc, split=sp_.to_dict(),
        metric=m.to_dict(),
    )


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
    decoder: Dictionary | np.ndarray,
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
    """
    d = as_dictionary(decoder)
    C = _to_csr(codes, d.n_atoms, "codes")
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


# =============================================================================== TSAE window
@dataclass(frozen=True)
class TSAEWindow:
    """The TSAE identifiability window for AIP-normalised atoms with coherence ε, K-sparse codes
    and non-zero magnitudes in [δ_min, δ_max]: every threshold τ with
    ``lower`` = εKδ_max < τ < ``upper`` = δ_min − ε(K − 1)δ_max recovers every support with
    W_enc = D̃ᵀ (i.e. Dᵀ S̃ for AIP-unit atoms), W_dec = D. Feasible iff
    δ_min > ε(2K − 1)δ_max (``margin`` = upper − lower = δ_min − ε(2K − 1)δ_max > 0)."""

    eps: float
    K: int
    delta_min: float
    delta_max: float
    lower: float
    upper: float
    feasible: bool
    margin: float

    @property
    def statement(self) -> str:
        if self.feasible:
            return (f"thresholds τ in ({self.lower:.6g}, {self.upper:.6g}) recover every support "
                    f"(ε = {self.eps:.6g}, K = {self.K}, δ ∈ [{self.delta_min:.6g}, "
                    f"{self.delta_max:.6g}])")
        return (f"infeasible: δ_min = {self.delta_min:.6g} ≤ ε(2K − 1)δ_max = "
                f"{self.eps * (2 * self.K - 1) * self.delta_max:.6g} (ε = {self.eps:.6g}, "
                f"K = {self.K}); no threshold is guaranteed to recover every support")

    def contains(self, tau: np.ndarray | float) -> np.ndarray | bool:
        """lower < τ < upper (elementwise)."""
        t = np.asarray(tau, dtype=np.float64)
        out = (t > self.lower) & (t < self.upper)
        return bool(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        return {
            "eps": self.eps, "K": self.K, "delta_min": self.delta_min,
            "delta_max": self.delta_max, "lower": self.lower, "upper": self.upper,
            "feasible": self.feasible, "margin": self.margin, "statement": self.statement,
        }


def tsae_window(eps: float, K: int, delta_min: float, delta_max: float) -> TSAEWindow:
    """The feasible threshold interval εKδ_max < τ < δ_min − ε(K − 1)δ_max (or infeasibility).

    Hypotheses of the theorem it comes from (paper-digest §4.5): AIP-unit atoms with
    |⟨d̃ᵢ, d̃ⱼ⟩| ≤ ε (i ≠ j), codes with at most K non-zeros, each non-zero δⱼ ∈ [δ_min, δ_max]
    (non-negative codes with σ_τ(z) = z·1[z > τ]; for signed codes the same window applies to
    |z|). Pre-activations z = D̃ᵀD̃δ satisfy zⱼ ≥ δ_min − (K − 1)εδ_max on the support and
    |zⱼ| ≤ Kεδ_max off it.
    """
    if isinstance(K, bool) or not float(K).is_integer() or K < 1:
        raise ParameterError(f"TSAE window: K must be an integer ≥ 1, got {K}")
    for name, v in (("eps", eps), ("delta_min", delta_min), ("delta_max", delta_max)):
        if not np.isfinite(v):
            raise ParameterError(f"TSAE window: {name} must be finite, got {v}")
    if not 0.0 <= eps <= 1.0:
        raise ParameterError(f"TSAE window: eps must be in [0, 1], got {eps}")
    if not 0.0 < delta_min <= delta_max:
        raise ParameterError(f"TSAE window: need 0 < delta_min ≤ delta_max, got "
                             f"[{delta_min}, {delta_max}]")
    K = int(K)
    lower = eps * K * delta_max
    upper = delta_min - eps * (K - 1) * delta_max
    margin = delta_min - eps * (2 * K - 1) * delta_max
    return TSAEWindow(eps=float(eps), K=K, delta_min=float(delta_min),
                      delta_max=float(delta_max), lower=float(lower), upper=float(upper),
                      feasible=bool(margin > 0), margin=float(margin))


@dataclass(frozen=True)
class ThresholdCheck:
    """A trained TSAE's thresholds against the identifiability window (in AIP-normalised code
    units: τ̂ⱼ = τⱼ·‖dⱼ‖_S when atom norms were given). ``below``: τ̂ⱼ ≤ lower (cross-talk may
    pass); ``above``: τ̂ⱼ ≥ upper (true atoms may be cut). When the window is infeasible
    (upper < lower) a threshold in [upper, lower] is both, counted in ``n_both``."""

    window: TSAEWindow
    n_latents: int
    n_inside: int
    n_below: int
    n_above: int
    below: np.ndarray = field(repr=False)
    above: np.ndarray = field(repr=False)
    tau_min: float = 0.0
    tau_max: float = 0.0
    scaled: bool = False
    n_both: int = 0  # below and above at once: only when the window is infeasible

    @property
    def fraction_inside(self) -> float:
        return self.n_inside / self.n_latents

    @property
    def all_inside(self) -> bool:
        return self.n_inside == self.n_latents

    def to_dict(self) -> dict:
        return {
            "window": self.window.to_dict(),
            "n_latents": self.n_latents,
            "n_inside": self.n_inside,
            "n_below": self.n_below,
            "n_above": self.n_above,
            "n_both": self.n_both,
            "fraction_inside": self.fraction_inside,
            "all_inside": self.all_inside,
            "below": self.below[:100].tolist(),
            "above": self.above[:100].tolist(),
            "tau_min": self.tau_min,
            "tau_max": self.tau_max,
            "scaled_by_atom_norms": self.scaled,
        }


def check_thresholds(
    thresholds: np.ndarray | float,
    window: TSAEWindow | None = None,
    *,
    eps: float | None = None,
    K: int | None = None,
    delta_min: float | None = None,
    delta_max: float | None = None,
    atom_norms: np.ndarray | None = None,
) -> ThresholdCheck:
    """Compare a TSAE's thresholds (a scalar or one per latent) with the window.

    Give the ``window`` or its four parameters. The window is in units of codes over
    AIP-normalised atoms; a TSAE whose decoder atoms dⱼ have AIP norms nⱼ = ‖dⱼ‖_S thresholds
    codes in its own units, and its τⱼ corresponds to τⱼ·nⱼ — pass ``atom_norms`` to rescale.
    Latents below the window may let cross-talk through (spurious support), latents above it may
    cut true atoms (missed support). Torch-free: the adapter passes numpy arrays.
    """
    if window is None:
        if None in (eps, K, delta_min, delta_max):
            raise ParameterError("check_thresholds: give a window or eps, K, delta_min and "
                                 "delta_max")
        window = tsae_window(eps, K, delta_min, delta_max)
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64)).reshape(-1)
    if t.size == 0:
        raise ParameterError("check_thresholds: no thresholds")
    if not np.isfinite(t).all():
        raise NonFiniteError("check_thresholds: the thresholds hold non-finite values")
    scaled = atom_norms is not None
    if scaled:
        n = np.asarray(atom_norms, dtype=np.float64).reshape(-1)
        if t.size == 1:
            t = np.full(n.size, t[0])
        if n.shape != t.shape:
            raise ShapeMismatchError(f"check_thresholds: {t.size} thresholds for {n.size} "
                                     "atom norms")
        t = t * n
    below = np.flatnonzero(t <= window.lower)
    above = np.flatnonzero(t >= window.upper)
    inside = int(t.size - len(np.union1d(below, above)))
    return ThresholdCheck(window=window, n_latents=int(t.size), n_inside=inside,
                          n_below=int(below.size), n_above=int(above.size), below=below,
                          above=above, tau_min=float(t.min()), tau_max=float(t.max()),
                          scaled=scaled, n_both=int(np.intersect1d(below, above).size))


def tsae_encoder(
    decoder: Dictionary | np.ndarray,
    metric: AIPMetric | str | None,
    thresholds: np.ndarray | float,
    *,
    signed: bool = False,
) -> Encoder:
    """The identifiable TSAE encoder of the theorem, in numpy.

    With AIP-normalised atoms d̂ⱼ = dⱼ/‖dⱼ‖_S, W_enc = D̂ᵀS̃ (so z = D̂ᵀS̃x = D̃ᵀ(Wx)) and
    ĉ = σ_τ(z) = z·1[z > τ] (``signed``: z·1[|z| > τ]); τ is in normalised units (scalar or one
    per atom). Returns codes for the atoms as given, cⱼ = ĉⱼ/‖dⱼ‖_S, so x̂ = D c = D̂ ĉ. Dead
    atoms get code 0.
    """
    atoms = CorrectedAtoms(decoder, metric, rows=False)
    d = atoms.dictionary
    norms = atoms.norms
    live = atoms.live
    Dn = np.zeros((d.dim, d.n_atoms))
    Dn[:, live] = d.columns(live) / norms[live]
    S = np.eye(d.dim) if atoms.metric is None else atoms.metric.S
    W_enc = Dn.T @ S  # N×H
    tau = np.asarray(thresholds, dtype=np.float64)
    if tau.ndim and tau.shape != (d.n_atoms,):
        raise ShapeMismatchError(f"tsae_encoder: {tau.size} thresholds for N = {d.n_atoms}")
    inv = np.zeros(d.n_atoms)
    inv[live] = 1.0 / norms[live]

    def encode(X: np.ndarray) -> np.ndarray:
        Z = np.asarray(X, dtype=np.float64) @ W_enc.T
        keep = (np.abs(Z) > tau) if signed else (Z > tau)
        return np.where(keep, Z, 0.0) * inv

    return encode


# =============================================================================== atom-set check
@dataclass(frozen=True)
class AtomSetCheck:
    """The atom-set definition (paper-digest §3.4) checked on activations M and codes:

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
    chunk: int = DEFAULT_CHUNK,
) -> AtomSetCheck:
    """Check whether a unit set is an atom set for the activations (all tokens, or ``rows``).

    ``metric``: the AIP metric (an :class:`AIPMetric`, ``"self"`` or ``"raw"``/None). ``eps``
    and ``K``: the values to test (default: the smallest at which the conditions hold, i.e.
    ε = the certified upper bound on μ (:attr:`PerAtomCoherence.mu_upper`: μ plus its float64
    error bound, 1 with a duplicate pair) and K = max L0). ``rtol``: representability
    tolerance on the relative residual.
    """
    X = _check_activations(activations, unit.decoder.dim)
    idx = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    if idx.size == 0:
        raise ParameterError("atom-set check: no tokens")
    if not rtol >= 0:
        raise ParameterError(f"atom-set check: rtol must be ≥ 0, got {rtol}")
    atoms = CorrectedAtoms(unit.decoder, metric, rows=False)
    m = atoms.metric
    pac = per_atom_coherence(unit.decoder, m, exact_max_atoms=exact_max_atoms)
    norms = np.where(atoms.norms > 0, atoms.norms, 0.0)
    st = _stream(unit, X, idx, metric=m, mean=None, atom_mu=None, atom_norms=norms,
                 sample=None, chunk=chunk, relative=True)
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
        relative_residual_aip_quantiles=None if rel_aip is None else _quantile_table(rel_aip),
        l0_quantiles=_quantile_table(l0), K_observed=K_obs, mu=pac.mu, pair=pac.pair,
        delta_min=st.mag_min if have_mags else None, delta_max=st.mag_max if have_mags else None,
        nonneg=st.nonneg, window=window, n_tokens=int(idx.size), metric=_metric_dict(m), l0=l0,
    )


# =============================================================================== comparison
@dataclass(frozen=True)
class UnitRow:
    """One row of the comparison table (see :func:`compare_units`)."""

    name: str
    kind: str
    n_atoms: int
    n_live: int
    r2_aip: float
    r2_euclidean: float
    q_star_quantile: float
    q_star_support: float
    l1_certified_fraction: float | None
    l1_sampled: int
    mu: float
    mean_l0: float
    dead_atoms: int
    never_active: int
    nonneg_codes: bool
    faithfulness: FaithfulnessResult = field(repr=False)
    stability: StabilityResult = field(repr=False)
    unit: dict = field(default_factory=dict, repr=False)

    def to_dict(self, detail: bool = True) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "n_atoms": self.n_atoms,
            "n_live": self.n_live,
            "r2_aip": self.r2_aip,
            "r2_euclidean": self.r2_euclidean,
            "q_star_quantile": self.q_star_quantile,
            "q_star_support": self.q_star_support,
            "l1_certified_fraction": self.l1_certified_fraction,
            "l1_sampled": self.l1_sampled,
            "mu": self.mu,
            "mean_l0": self.mean_l0,
            "dead_atoms": self.dead_atoms,
            "never_active": self.never_active,
            "nonneg_codes": self.nonneg_codes,
        }
        if detail:
            out["unit"] = self.unit
            out["faithfulness"] = self.faithfulness.to_dict()
            out["stability"] = self.stability.to_dict()
        return out


@dataclass(frozen=True)
class UnitComparison:
    """The comparison table: one :class:`UnitRow` per unit set, evaluated on the same held-out
    tokens under the same AIP metric."""

    rows: tuple[UnitRow, ...]
    split: dict
    metric: dict
    readings: dict
    seconds: float = 0.0

    def __getitem__(self, name: str) -> UnitRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self, detail: bool = True) -> dict:
        return {
            "rows": [r.to_dict(detail) for r in self.rows],
            "split": self.split,
            "metric": self.metric,
            "readings": self.readings,
            "seconds": self.seconds,
        }

    def render(self) -> str:
        """The table as fixed-width text."""
        head = (f"{'unit set':<14s} {'kind':<10s} {'N':>7s} {'R² AIP':>8s} {'R² Euc':>8s} "
                f"{'q*quant':>8s} {'q*supp':>8s} {'ℓ1-cert':>8s} {'μ':>7s} {'mean L0':>8s} "
                f"{'dead':>5s} {'inactive':>8s}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            l1 = "—" if r.l1_certified_fraction is None else f"{r.l1_certified_fraction:.4f}"
            lines.append(
                f"{r.name[:14]:<14s} {r.kind[:10]:<10s} {r.n_atoms:>7d} {r.r2_aip:>8.4f} "
                f"{r.r2_euclidean:>8.4f} {r.q_star_quantile:>8.4f} {r.q_star_support:>8.4f} "
                f"{l1:>8s} {r.mu:>7.4f} {r.mean_l0:>8.2f} {r.dead_atoms:>5d} "
                f"{r.never_active:>8d}")
        lines.append("")
        lines.append(f"tokens: {self.split['description']}")
        lines.append(f"metric: AIP, {self.metric.get('kind')} "
                     f"(condition number {self.metric.get('condition_number', float('nan')):.3g})")
        lines.append("q*quant: " + self.readings["q_star_quantile"])
        lines.append("q*supp:  " + self.readings["q_star_support"])
        lines.append("ℓ1-cert: " + self.readings["l1_certified_fraction"])
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def compare_units(
    activations: np.ndarray,
    units: Mapping[str, UnitSet | Dictionary | np.ndarray] | Sequence[UnitSet] = (),
    *,
    neurons: bool = True,
    metric: AIPMetric | None = None,
    split: TokenSplit | None = None,
    ridge: float = 0.0,
    center: bool = False,
    l1: bool = True,
    l1_max_tokens: int | None = 256,
    seed: int = 0,
    exact_max_atoms: int = EXACT_MAX_ATOMS,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[str], None] | None = None,
) -> UnitComparison:
    """The paper's headline table: for each unit set, R² (AIP, Euclidean), q*_quantile,
    q*_support, ℓ1-certified fraction, μ, mean L0, dead and never-active atoms.

    Parameters
    ----------
    activations : n×H array (a memory map is read in chunks).
    units : name → :class:`UnitSet` (or a plain dictionary, coded by NNLS), or a sequence of
        unit sets. ``neurons=True`` prepends the neuron basis (D = I, δ = x).
    metric : the AIP metric shared by every row; default Σ⁻¹ fitted on the split's ``fit``
        tokens (``ridge``, ``center``). One metric for all rows keeps the rows comparable; the
        self metric (D Dᵀ)⁻¹ would make the neuron basis orthonormal (μ = 0).
    split : which tokens fit the metric and which are evaluated (default: :func:`token_split`,
        a seeded random half held out). Every criterion is computed on ``split.eval``.
    l1, l1_max_tokens, seed : the ℓ1 test on a seeded sample of at most ``l1_max_tokens``
        evaluated tokens (it solves an LP per code: sample accordingly).
    progress : optional callable receiving one line per step (e.g. a logger).
    """
    import time

    t0 = time.perf_counter()
    if isinstance(units, Mapping):
        unit_list = [_as_unit_set(str(k), v) for k, v in units.items()]
    else:
        unit_list = [_as_unit_set(getattr(u, "name", str(i)), u) for i, u in enumerate(units)]
    if not unit_list and not neurons:
        raise ParameterError("compare_units: no unit sets to compare")
    X = _check_activations(activations, None)
    H = X.shape[1]
    for u in unit_list:
        if u.decoder.dim != H:
            raise ShapeMismatchError(f"unit set {u.name!r}: decoder has H = {u.decoder.dim} but "
                                     f"the activations have width {H}")
    if neurons and not any(u.kind == "neurons" for u in unit_list):
        unit_list.insert(0, UnitSet.neurons(H))
    names = [u.name for u in unit_list]
    if len(set(names)) != len(names):
        raise ParameterError(f"compare_units: unit-set names repeat: {names}")
    sp_ = _resolve_split(X.shape[0], split)
    say = progress or (lambda _msg: None)
    m = _fit_data_metric(X, sp_, metric, ridge, center)
    say(f"metric: {m.kind}, condition number {m.condition_number:.3g}; {sp_.describe()}")
    mean = _eval_mean(X, sp_.eval, chunk)
    n_eval = len(sp_.eval)
    sample = _sample_rows(n_eval, l1_max_tokens, seed) if l1 else None
    rows = []
    for u in unit_list:
        say(f"{u.name}: per-atom coherence of {u.decoder.n_atoms} atoms")
        pac = per_atom_coherence(u.decoder, m, exact_max_atoms=exact_max_atoms)
        say(f"{u.name}: encoding {n_eval} tokens")
        st = _stream(u, X, sp_.eval, metric=m, mean=mean, atom_mu=pac.for_supports(),
                     atom_norms=None, sample=sample, chunk=chunk)
        l0 = np.concatenate(st.l0).astype(np.int64)
        smu = np.concatenate(st.support_mu)
        faith = FaithfulnessResult(
            r2_aip=_r2(st.res_aip, st.tot_aip), r2_euclidean=_r2(st.res_euc, st.tot_euc),
            n_tokens=n_eval, residual_aip=st.res_aip, total_aip=st.tot_aip,
            residual_euclidean=st.res_euc, total_euclidean=st.tot_euc, split=sp_.to_dict(),
            metric=m.to_dict())
        cert = None
        if l1:
            say(f"{u.name}: exact ℓ1 test on {len(sample)} sampled tokens")
            codes = sp.vstack(st.sample_codes, format="csr") if st.sample_codes else (
                sp.csr_matrix((0, u.decoder.n_atoms)))
            cert = l1_certified_fraction(u.decoder, codes, metric=m, nonneg=st.nonneg,
                                         max_tokens=None, seed=None)
            cert = _replace_sample_info(cert, sp_.eval[sample], n_eval, seed)
        stab = StabilityResult(q_star_quantile=q_star_quantile(pac, l0),
                               q_star_support=q_star_support(smu, l0), l1=cert, per_atom=pac,
                               l0=l0, support_mu=smu, nonneg=st.nonneg)
        live_mask = np.zeros(u.decoder.n_atoms, dtype=bool)
        live_mask[u.decoder.live_atoms] = True
        rows.append(UnitRow(
            name=u.name, kind=u.kind, n_atoms=u.decoder.n_atoms, n_live=pac.n_live,
            r2_aip=faith.r2_aip, r2_euclidean=faith.r2_euclidean,
            q_star_quantile=stab.q_star_quantile.value, q_star_support=stab.q_star_support.value,
            l1_certified_fraction=None if cert is None else cert.value,
            l1_sampled=0 if cert is None else cert.n_tokens, mu=pac.mu,
            mean_l0=float(l0.mean()), dead_atoms=int(len(u.decoder.dead_atoms)),
            never_active=int(np.sum(live_mask & ~st.active)), nonneg_codes=st.nonneg,
            faithfulness=faith, stability=stab, unit=u.to_dict()))
    readings = {
        "r2": FaithfulnessResult.reading,
        "q_star_quantile": QStarQuantile.reading,
        "q_star_support": QStarSupport.reading,
        "l1_certified_fraction": "fraction of a seeded sample of held-out tokens whose code is "
                                 "certified the unique basis-pursuit solution over the "
                                 "AIP-normalised atoms (non-negative BP where codes are ≥ 0)",
        "mu": "AIP coherence max_{i≠j} |⟨d̃ᵢ, d̃ⱼ⟩| over live atoms (float64)",
        "dead_atoms": "zero decoder columns",
        "never_active": "live atoms with no non-zero code on the evaluated tokens",
    }
    return UnitComparison(rows=tuple(rows), split=sp_.to_dict(), metric=m.to_dict(),
                          readings=readings, seconds=time.perf_counter() - t0)


def _replace_sample_info(cert: L1Certified, tokens: np.ndarray, n_from: int,
                         seed: int | None) -> L1Certified:
    from dataclasses import replace

    return replace(cert, tokens=tokens, sampled_from=n_from, seed=seed)
