"""SAEBench-comparable statistics of a unit set on given (held-out) tokens: explained variance,
L0, shrinkage (``l2_ratio``, relative reconstruction bias), latent densities with their log10
histogram and dense / dead counts, the per-latent encoder–decoder cosine, and the per-latent
max decoder cosine both signed (SAEBench's) and absolute (ours), with the antipodal pairs the
signed one misses.

Notation (docs/design.md, "The paper's criteria"): tokens xᵢ ∈ R^H (i = 1..n), codes δᵢ ∈ R^N,
reconstructions x̂ᵢ = D δᵢ + b, atoms dⱼ (columns of D). The definitions follow SAELens
6.54.12, ``sae_lens/evals.py`` (``ExplainedVarianceCalculator``,
``get_sparsity_and_variance_metrics``, ``get_featurewise_weight_based_metrics``) and SAEBench,
``sae_bench/evals/core/main.py`` (``calculate_max_cosine_sim``, ``calculate_misc_metrics``);
each docstring below says where it differs. The library never imports torch: the cross-check
against SAELens's own functions is in ``tests/criteria/test_sae_statistics.py``.

Nothing here enters the report, the criteria table or the CLI yet (issue 24, item 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rip_atoms.codes import Codes, codes_csr
from rip_atoms.criteria.faithfulness import DEFAULT_CHUNK_SIZE, check_activations, rows_of
from rip_atoms.criteria.units import UnitSet, neuron_codes
from rip_atoms.dictionary import Dictionary, as_dictionary
from rip_atoms.errors import NonFiniteError, ParameterError, ShapeMismatchError
from rip_atoms.strict_json import fields_dict

#: SAEBench's dense latents: density above 10 % (``freq_over_10_percent``)
DENSE_THRESHOLD = 0.1
#: a pair of atoms with cos(dᵢ, dⱼ) ≤ −ANTIPODAL_COS is antipodal
ANTIPODAL_COS = 0.99
#: log10(density + 1e-10) histogram edges: −10 (dead latents) to 0 in steps of 0.5
LOG10_DENSITY_EDGES = tuple(float(e) for e in np.linspace(-10.0, 0.0, 21))
#: SAELens's floor of ‖x‖ in l2_ratio: norms below it divide by 1
L2_NORM_FLOOR = 1e-4
#: SAELens's floor of the total variance of explained variance
VARIANCE_FLOOR = 1e-10
#: atoms per block of the max-cosine pass (a block×N Gram block, never N×N)
COSINE_BLOCK = 256

__all__ = ["ANTIPODAL_COS", "COSINE_BLOCK", "DENSE_THRESHOLD", "LOG10_DENSITY_EDGES",
           "MaxDecoderCosine", "SAEStatistics", "encoder_decoder_cosine", "max_decoder_cosine",
           "sae_statistics", "unit_set_statistics"]


# =============================================================================== results
@dataclass(frozen=True)
class MaxDecoderCosine:
    """Per latent i: ``signed`` = max_{j≠i} cos(dᵢ, dⱼ) (SAEBench's ``max_decoder_cosine_sim``)
    and ``absolute`` = max_{j≠i} |cos(dᵢ, dⱼ)| (ours, the per-atom Euclidean coherence).
    ``n_antipodal_pairs`` counts pairs i < j with cos(dᵢ, dⱼ) ≤ −τ (τ = ``antipodal_cos``);
    ``n_missed_by_signed`` counts latents with absolute ≥ τ but signed < τ: redundant latents
    that only the |cos| flags."""

    signed: np.ndarray = field(repr=False)
    absolute: np.ndarray = field(repr=False)
    n_antipodal_pairs: int
    n_missed_by_signed: int
    antipodal_cos: float

    def to_dict(self) -> dict:
        return {"mean_signed": float(np.mean(self.signed)) if self.signed.size else None,
                "mean_absolute": float(np.mean(self.absolute)) if self.absolute.size else None,
                "signed": self.signed, "absolute": self.absolute,
                "n_antipodal_pairs": self.n_antipodal_pairs,
                "n_missed_by_signed": self.n_missed_by_signed,
                "antipodal_cos": self.antipodal_cos}


@dataclass(frozen=True)
class SAEStatistics:
    """SAEBench's core statistics of one unit set on ``n_tokens`` tokens.

    * ``explained_variance`` = 1 − (1/n)Σᵢ‖xᵢ − x̂ᵢ‖² / ((1/n)Σᵢ‖xᵢ − x̄‖²), x̄ = (1/n)Σᵢxᵢ
      (SAELens ``ExplainedVarianceCalculator``: 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²), the same
      quantity; when the total variance is < 1e-10 it is 1 if the MSE is < 1e-10, else 0). It is
      the Euclidean R² of :func:`rip_atoms.criteria.faithfulness.faithfulness_r2`.
    * ``explained_variance_legacy`` = (1/n)Σᵢ [1 − ‖xᵢ − x̂ᵢ‖² / ‖xᵢ − x̄‖²] (SAELens
      ``explained_variance_legacy``, SAEBench ≤ 0125 ``explained_variance``; x̄ over all n
      tokens, SAELens's over each batch — equal for one batch; a token at x̄ makes it
      non-finite, as in SAELens, and ``to_dict`` writes it as null).
    * ``l0`` = (1/n)Σᵢ #{j : δᵢⱼ ≠ 0}.
    * ``l2_ratio`` = (1/n)Σᵢ ‖x̂ᵢ‖ / ‖xᵢ‖′, ‖xᵢ‖′ = 1 where ‖xᵢ‖ < 1e-4, else ‖xᵢ‖ (SAELens).
    * ``relative_reconstruction_bias`` = ((1/n)Σᵢ‖x̂ᵢ‖²) / ((1/n)Σᵢ⟨xᵢ, x̂ᵢ⟩) (SAELens, eq. 10
      of arXiv:2404.16014; SAELens takes it per batch and averages the batches — equal for
      one batch).
    * ``density`` ρⱼ = #{i : δᵢⱼ ≠ 0} / n (SAELens ``feature_density``; SAEBench's older
      ``> 0`` is the same for non-negative codes); ``n_dense`` = #{j : ρⱼ > 0.1} (SAEBench
      ``freq_over_10_percent`` × N), ``n_dead`` = #{j : ρⱼ = 0} (N × (1 − ``frac_alive``));
      ``log10_density_counts`` is the histogram of min(0, log10(ρⱼ + 1e-10)) on
      ``log10_density_edges`` (dead latents in the first bin, ρⱼ = 1 in the last). SAELens
      accumulates the counts in float32 and divides in float32: its densities are ours
      rounded to float32.
    * ``encoder_decoder_cosine`` (or None): cos(eⱼ, dⱼ) per latent, eⱼ the j-th encoder column.
    * ``max_decoder_cosine``: :class:`MaxDecoderCosine`.
    """

    name: str
    n_tokens: int
    n_latents: int
    explained_variance: float
    explained_variance_legacy: float
    l0: float
    l2_ratio: float
    relative_reconstruction_bias: float
    density: np.ndarray = field(repr=False)
    n_dense: int
    n_dead: int
    dense_threshold: float
    log10_density_edges: tuple
    log10_density_counts: tuple
    encoder_decoder_cosine: np.ndarray | None = field(repr=False)
    max_decoder_cosine: MaxDecoderCosine
    reading: str = ("SAEBench / SAELens definitions (sae_lens 6.54.12 evals.py, "
                    "sae_bench/evals/core/main.py), pooled over the given tokens as one batch")

    def to_dict(self) -> dict:
        out = fields_dict(self, exclude=("max_decoder_cosine",))
        out["max_decoder_cosine"] = self.max_decoder_cosine.to_dict()
        return out


# =============================================================================== cosines
def _unit_columns(A: np.ndarray) -> np.ndarray:
    """A with each column divided by its Euclidean norm; zero columns stay zero (as
    ``torch.nn.functional.normalize``, eps 1e-12)."""
    n = np.linalg.norm(A, axis=0)
    return A / np.maximum(n, 1e-12)


def max_decoder_cosine(decoder: Dictionary | np.ndarray, *, antipodal_cos: float = ANTIPODAL_COS,
                       block_size: int = COSINE_BLOCK) -> MaxDecoderCosine:
    """Per atom, the largest signed and absolute cosine with any other atom, in blocks.

    signedᵢ = max_{j≠i} ⟨dᵢ/‖dᵢ‖, dⱼ/‖dⱼ‖⟩ (SAEBench ``calculate_max_cosine_sim(W_dec.T)``:
    columns normalised, self-similarity set to −∞, blocks of columns against all), absoluteᵢ =
    max_{j≠i} |⟨·,·⟩|, antipodal pairs i < j with cos ≤ −τ. A block of ``block_size`` atoms
    against all N is computed at a time (``block_size`` × N, in the decoder's dtype: float32
    for a float32 SAE, as SAEBench), never the N×N Gram matrix. Zero atoms have cosine 0 with
    every atom. With N = 1 both maxima are −∞ (no other atom).

    Parameters
    ----------
    decoder : Dictionary or array_like
        D, H×N (columns are atoms).
    antipodal_cos : float
        τ in (0, 1].
    block_size : int
        Atoms per block (≥ 1).

    Returns
    -------
    MaxDecoderCosine
    """
    if not 0.0 < antipodal_cos <= 1.0:
        raise ParameterError(f"max decoder cosine: antipodal_cos must be in (0, 1], got "
                             f"{antipodal_cos}")
    if int(block_size) != block_size or block_size < 1:
        raise ParameterError(f"max decoder cosine: block_size must be an integer ≥ 1, got "
                             f"{block_size}")
    A = np.asarray(as_dictionary(decoder).atoms)
    A = A if A.dtype in (np.float32, np.float64) else A.astype(np.float64)
    U = _unit_columns(A)
    N = U.shape[1]
    signed = np.empty(N, dtype=np.float64)
    absolute = np.empty(N, dtype=np.float64)
    n_pairs = 0
    for s in range(0, N, int(block_size)):
        e = min(N, s + int(block_size))
        G = U[:, s:e].T @ U                                  # (e − s) × N
        k = np.arange(e - s)
        later = np.arange(N)[None, :] > (s + k)[:, None]    # j > i: each pair once
        n_pairs += int(np.count_nonzero((G <= -antipodal_cos) & later))
        G[k, s + k] = -np.inf
        signed[s:e] = G.max(axis=1)
        np.abs(G, out=G)
        G[k, s + k] = -np.inf
        absolute[s:e] = G.max(axis=1)
    missed = int(np.count_nonzero((absolute >= antipodal_cos) & (signed < antipodal_cos)))
    return MaxDecoderCosine(signed, absolute, n_pairs, missed, float(antipodal_cos))


def encoder_decoder_cosine(encoder_matrix: np.ndarray, decoder: Dictionary | np.ndarray
                           ) -> np.ndarray:
    """cos(eⱼ, dⱼ) = ⟨eⱼ, dⱼ⟩ / (‖eⱼ‖ ‖dⱼ‖) per latent j, eⱼ the j-th column of the H×N encoder
    matrix (SAELens's ``W_enc``) and dⱼ the j-th atom (SAELens
    ``get_featurewise_weight_based_metrics``: ``encoder_decoder_cosine_sim``). A zero column
    gives 0 (SAELens: NaN).

    Parameters
    ----------
    encoder_matrix : array_like
        H×N, column j reads latent j (for an SAE, W_enc of x ↦ σ(x W_enc + b_enc)).
    decoder : Dictionary or array_like
        D, H×N.

    Returns
    -------
    numpy.ndarray
        N cosines (float64).
    """
    D = np.asarray(as_dictionary(decoder).atoms, dtype=np.float64)
    E = np.asarray(encoder_matrix, dtype=np.float64)
    if E.shape != D.shape:
        raise ShapeMismatchError(f"encoder–decoder cosine: the encoder matrix is "
                                 f"{E.shape[0]}×{E.shape[1] if E.ndim > 1 else 1} but the "
                                 f"decoder is {D.shape[0]}×{D.shape[1]} (expected H×N, W_enc)")
    if not np.isfinite(E).all():
        raise NonFiniteError("encoder–decoder cosine: the encoder matrix is not finite")
    return np.einsum("hj,hj->j", _unit_columns(E), _unit_columns(D))


# =============================================================================== token sums
@dataclass
class _Sums:
    """Sums over tokens, accumulated one block at a time (second pass, x̄ known)."""

    mean: np.ndarray
    n: int = 0
    residual: float = 0.0
    total: float = 0.0
    legacy: float = 0.0
    l0: float = 0.0
    l2_ratio: float = 0.0
    out_sq: float = 0.0
    dot: float = 0.0
    active: np.ndarray | None = None

    def add(self, X: np.ndarray, C: sp.csr_matrix, Xh: np.ndarray) -> None:
        E = X - Xh
        res = np.einsum("ij,ij->i", E, E)
        T = X - self.mean
        tot = np.einsum("ij,ij->i", T, T)
        self.n += X.shape[0]
        self.residual += float(res.sum())
        self.total += float(tot.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            self.legacy += float(np.sum(1.0 - res / tot))
        self.l0 += float(np.diff(C.indptr).sum())
        nx = np.linalg.norm(X, axis=1)
        nx[np.abs(nx) < L2_NORM_FLOOR] = 1.0
        self.l2_ratio += float(np.sum(np.linalg.norm(Xh, axis=1) / nx))
        self.out_sq += float(np.einsum("ij,ij->", Xh, Xh))
        self.dot += float(np.einsum("ij,ij->", X, Xh))
        nz = C.indices[C.data != 0]
        self.active += np.bincount(nz, minlength=self.active.size)


def _finish(name: str, sums: _Sums, D: Dictionary, encoder_matrix: np.ndarray | None,
            dense_threshold: float, antipodal_cos: float, block_size: int) -> SAEStatistics:
    n = sums.n
    mse, var = sums.residual / n, sums.total / n
    ev = (1.0 if mse < VARIANCE_FLOOR else 0.0) if var < VARIANCE_FLOOR else 1.0 - mse / var
    density = sums.active / n
    logs = np.clip(np.log10(density + 1e-10), -10.0, 0.0)  # ρ = 1 in the last bin
    counts, _ = np.histogram(logs, bins=np.asarray(LOG10_DENSITY_EDGES))
    with np.errstate(divide="ignore", invalid="ignore"):
        rrb = float(np.float64(sums.out_sq) / np.float64(sums.dot))
    return SAEStatistics(
        name=name, n_tokens=n, n_latents=D.n_atoms, explained_variance=float(ev),
        explained_variance_legacy=sums.legacy / n, l0=sums.l0 / n, l2_ratio=sums.l2_ratio / n,
        relative_reconstruction_bias=rrb, density=density,
        n_dense=int(np.count_nonzero(density > dense_threshold)),
        n_dead=int(np.count_nonzero(density == 0)), dense_threshold=float(dense_threshold),
        log10_density_edges=LOG10_DENSITY_EDGES,
        log10_density_counts=tuple(int(c) for c in counts),
        encoder_decoder_cosine=(None if encoder_matrix is None
                                else encoder_decoder_cosine(encoder_matrix, D)),
        max_decoder_cosine=max_decoder_cosine(D, antipodal_cos=antipodal_cos,
                                              block_size=block_size))


def _check_threshold(dense_threshold: float) -> None:
    if not 0.0 <= dense_threshold < 1.0:
        raise ParameterError(f"SAE statistics: dense_threshold must be in [0, 1), got "
                             f"{dense_threshold}")


# =============================================================================== entry points
def sae_statistics(X: np.ndarray, codes: Codes, reconstruction: np.ndarray,
                   decoder: Dictionary | np.ndarray, *, encoder_matrix: np.ndarray | None = None,
                   name: str = "sae", dense_threshold: float = DENSE_THRESHOLD,
                   antipodal_cos: float = ANTIPODAL_COS, block_size: int = COSINE_BLOCK
                   ) -> SAEStatistics:
    """SAEBench's core statistics from in-memory tokens X (n×H), their codes δ (n×N) and
    reconstructions X̂ (n×H); formulas in :class:`SAEStatistics`.

    Parameters
    ----------
    X : array_like
        n×H activations xᵢ (the held-out tokens).
    codes : array_like or scipy sparse
        n×N codes δᵢ (a code is active where δᵢⱼ ≠ 0).
    reconstruction : array_like
        n×H reconstructions x̂ᵢ = D δᵢ + b.
    decoder : Dictionary or array_like
        D, H×N (columns are atoms).
    encoder_matrix : array_like or None
        H×N W_enc for the encoder–decoder cosine (None: not computed).
    name : str
        The unit set's name.
    dense_threshold : float
        Latents with density above it are dense (SAEBench: 0.1).
    antipodal_cos, block_size
        As in :func:`max_decoder_cosine`.

    Returns
    -------
    SAEStatistics
    """
    _check_threshold(dense_threshold)
    D = as_dictionary(decoder)
    Xa = check_activations(X, D.dim)
    Xh = check_activations(reconstruction, D.dim, "reconstruction")
    if Xa.shape[0] < 1 or Xh.shape[0] != Xa.shape[0]:
        raise ShapeMismatchError(f"SAE statistics: {Xa.shape[0]} tokens but "
                                 f"{Xh.shape[0]} reconstructions (need n ≥ 1, equal)")
    C = codes_csr(codes, D.n_atoms, f"SAE statistics {name!r}")
    if C.shape[0] != Xa.shape[0]:
        raise ShapeMismatchError(f"SAE statistics: {C.shape[0]} codes for {Xa.shape[0]} tokens")
    rows = np.arange(Xa.shape[0])
    Xa, Xh = rows_of(Xa, rows), np.asarray(Xh, dtype=np.float64)
    if not np.isfinite(Xh).all():
        raise NonFiniteError("SAE statistics: the reconstruction is not finite")
    sums = _Sums(mean=Xa.mean(axis=0), active=np.zeros(D.n_atoms))
    sums.add(Xa, C, Xh)
    return _finish(name, sums, D, encoder_matrix, dense_threshold, antipodal_cos, block_size)


def unit_set_statistics(unit: UnitSet, X: np.ndarray, rows: np.ndarray | None = None, *,
                        encoder_matrix: np.ndarray | None = None,
                        dense_threshold: float = DENSE_THRESHOLD,
                        antipodal_cos: float = ANTIPODAL_COS, block_size: int = COSINE_BLOCK,
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> SAEStatistics:
    """:func:`sae_statistics` of a :class:`~rip_atoms.criteria.units.UnitSet` on the tokens
    ``rows`` of X (default all; pass ``token_split(...).eval`` for the held-out ones), streamed
    ``chunk_size`` tokens at a time: codes δᵢ from ``unit.codes_for``, x̂ᵢ = D δᵢ + b from
    ``unit.decode`` (neurons: x̂ᵢ = xᵢ). Two passes over X: x̄ first, then the sums. All tokens
    pooled as one batch (SAELens's batches of a few prompts give the same explained variance,
    L0, l2_ratio and densities; legacy explained variance and relative reconstruction bias
    are per-batch in SAELens).

    Parameters
    ----------
    unit : UnitSet
        The units.
    X : array_like
        n×H activations (a memory map is read ``chunk_size`` rows at a time).
    rows : array_like of int or None
        The tokens evaluated (None: all).
    encoder_matrix, dense_threshold, antipodal_cos, block_size
        As in :func:`sae_statistics`.
    chunk_size : int
        Tokens encoded at a time (≥ 1).

    Returns
    -------
    SAEStatistics
    """
    _check_threshold(dense_threshold)
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ParameterError(f"SAE statistics: chunk_size must be an integer ≥ 1, got "
                             f"{chunk_size}")
    D = unit.decoder
    Xa = check_activations(X, D.dim)
    rows = np.arange(Xa.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    if rows.size < 1:
        raise ShapeMismatchError(f"SAE statistics {unit.name!r}: no tokens to evaluate")
    if rows.min() < 0 or rows.max() >= Xa.shape[0]:
        raise ShapeMismatchError(f"SAE statistics {unit.name!r}: token index out of range "
                                 f"0..{Xa.shape[0] - 1}")
    total = np.zeros(D.dim)
    for s in range(0, rows.size, int(chunk_size)):
        total += rows_of(Xa, rows[s: s + int(chunk_size)]).sum(axis=0)
    sums = _Sums(mean=total / rows.size, active=np.zeros(D.n_atoms))
    is_neurons = unit.kind == "neurons" and unit.encoder is neuron_codes
    for s in range(0, rows.size, int(chunk_size)):
        r = rows[s: s + int(chunk_size)]
        Xc = rows_of(Xa, r)
        C = unit.codes_for(Xc, r)
        sums.add(Xc, C, Xc.copy() if is_neurons else unit.decode(C))
    return _finish(unit.name, sums, D, encoder_matrix, dense_threshold, antipodal_cos,
                   block_size)
