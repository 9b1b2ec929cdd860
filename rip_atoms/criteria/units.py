"""Units and tokens: a unit set (a decoder D, a way to get codes δ, a decoder bias b) and the
split of tokens into metric-fitting and evaluated (held-out) ones.

Notation (docs/design.md, "The paper's criteria"): activations xᵢ ∈ R^H, a decoder D ∈ R^{H×N}
(columns are atoms), codes δᵢ ∈ R^N and the reconstruction x̂ᵢ = D δᵢ + b.

* :class:`UnitSet` — neurons (D = I, δ = x), an SAE (:meth:`UnitSet.from_sae`), an encoder
  callable, precomputed codes, or a plain dictionary coded by non-negative least squares.
* :func:`token_split` — the one token split of the library: seeded random, the tail in file
  order, whole contexts (every k-th context held out), or all tokens; ``rip-atoms criteria``,
  ``rip-atoms verify``, :meth:`rip_atoms.sae.harvest.ActivationStore.split` and the reports
  all call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from rip_atoms.codes import Codes, Encoder, codes_csr
from rip_atoms.dictionary import Dictionary, as_dictionary
from rip_atoms.errors import NonFiniteError, ParameterError, ShapeMismatchError

NNLS_ZERO_RTOL = 1e-10
SPLIT_MODES = ("random", "tail", "contexts", "all")

__all__ = ["NNLS_ZERO_RTOL", "SPLIT_MODES", "TokenSplit", "UnitSet", "as_unit_set",
           "neuron_codes", "token_split"]


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
            object.__setattr__(self, "codes", codes_csr(self.codes, self.decoder.n_atoms,
                                                      f"unit set {self.name!r}"))

    # ------------------------------------------------------------------ construction
    @classmethod
    def neurons(cls, dim: int, name: str = "neurons") -> UnitSet:
        """The neuron basis: D = I_H, code δ = x (dense), no bias; R² = 1 by construction."""
        return cls(name=name, decoder=Dictionary.neurons(dim), encoder=neuron_codes,
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

    @classmethod
    def from_sae(cls, name: str, sae: Any, kind: str = "features") -> UnitSet:
        """An SAE (:class:`rip_atoms.sae.SparseAutoencoder`) as a unit set: its folded encoder,
        D = W_decᵀ and the decoder bias b = b_dec, so that x̂ = D δ + b.

        SAEs with a per-token input normalisation ("constant_norm_rescale", "layer_norm") have
        no fixed decoder bias and are refused (:class:`~rip_atoms.errors.ParameterError`). The
        SAE is used through its methods only (this module never imports torch).
        """
        if sae.normalize_activations in ("constant_norm_rescale", "layer_norm"):
            raise ParameterError(
                f"{sae.source}: a per-token input normalisation ({sae.normalize_activations}) has "
                "no fixed decoder bias; the unit-set criteria need x̂ = D δ + b"
            )
        sae = sae.folded()
        return cls.from_encoder(name, sae.dictionary(), sae.encoder(),
                                decoder_bias=sae.b_dec.double().numpy(), kind=kind,
                                coder=f"{sae.architecture} SAE encoder ({sae.format})")

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
        C = codes_csr(out, self.decoder.n_atoms, f"unit set {self.name!r} (encoder output)")
        if C.shape[0] != len(rows):
            raise ShapeMismatchError(f"unit set {self.name!r}: the encoder returned "
                                     f"{C.shape[0]} codes for {len(rows)} tokens")
        return C

    def decode(self, codes: Codes) -> np.ndarray:
        """x̂ = D δ + b for each row δ of ``codes`` (float64 for float64 decoders)."""
        C = codes_csr(codes, self.decoder.n_atoms, f"unit set {self.name!r}")
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


def neuron_codes(X: np.ndarray) -> np.ndarray:
    """The neurons' encoder: δ = x (float64).

    Parameters
    ----------
    X : array_like
        m×H activations.

    Returns
    -------
    numpy.ndarray
        The codes, X as float64.
    """
    return np.asarray(X, dtype=np.float64)


def as_unit_set(name: str, spec: UnitSet | Dictionary | np.ndarray) -> UnitSet:
    """``spec`` itself when it is a :class:`UnitSet`; a plain dictionary as
    :meth:`UnitSet.from_dictionary` (codes by NNLS).

    Parameters
    ----------
    name : str
        The unit set's name (for a plain dictionary and for errors).
    spec : UnitSet, Dictionary or array_like
        The units.

    Returns
    -------
    UnitSet
    """
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
    neighbouring tokens come from the same document), "contexts" (whole contexts of
    ``tokens_per_context`` tokens; every k-th context is evaluated, k = max(2, round(1/held_out)))
    or "all" (fit = eval = every token; no hold-out). Indices are sorted.
    """

    n_tokens: int
    fit: np.ndarray = field(repr=False)
    eval: np.ndarray = field(repr=False)
    held_out: float
    mode: str
    seed: int | None
    tokens_per_context: int | None = None

    def describe(self) -> str:
        """One line: how many tokens are evaluated and fit the metric, and how they were chosen."""
        if self.mode == "all":
            return (f"all {self.n_tokens} tokens (no hold-out: the metric and the criteria use "
                    "the same tokens)")
        how = {"random": f"random split, seed {self.seed}", "tail": "last tokens in order",
               "contexts": f"whole contexts of {self.tokens_per_context} tokens"
               }.get(self.mode, self.mode)
        return (f"{len(self.eval)} held-out tokens evaluated, {len(self.fit)} fit the metric "
                f"({how}, held_out = {self.held_out:g})")

    def mask(self) -> np.ndarray:
        """Boolean mask over the n tokens: True for evaluated (held-out) tokens."""
        out = np.zeros(self.n_tokens, dtype=bool)
        out[self.eval] = True
        return out

    def to_dict(self) -> dict:
        out = {"n_tokens": self.n_tokens, "n_fit": int(len(self.fit)),
               "n_eval": int(len(self.eval)), "held_out": self.held_out, "mode": self.mode,
               "seed": self.seed, "description": self.describe()}
        if self.tokens_per_context is not None:
            out["tokens_per_context"] = self.tokens_per_context
        return out


def token_split(n_tokens: int, held_out: float = 0.5, *, mode: str = "random",
                seed: int | None = 0, rounding: str = "up",
                tokens_per_context: int | None = None) -> TokenSplit:
    """Split token indices 0..n−1 into metric-fitting and evaluated (held-out) tokens.

    The library's one token split: ``rip-atoms criteria`` (random), ``rip-atoms verify`` (tail,
    ``rounding="nearest"``) and the activation store of :mod:`rip_atoms.sae.harvest` (contexts)
    all call it.

    Parameters
    ----------
    n_tokens : int
        n, the number of tokens.
    held_out : float
        The evaluated fraction, in (0, 1) (ignored by ``mode="all"``).
    mode : {"random", "tail", "contexts", "all"}
        See :class:`TokenSplit`.
    seed : int or None
        The seed of ``mode="random"``.
    rounding : {"up", "nearest"}
        "random" and "tail" evaluate ⌈held_out·n⌉ tokens ("up") or n − round((1 − held_out)·n)
        ("nearest": the fitting share rounded to the nearest integer); at least 1 token is
        evaluated and at least 1 fits.
    tokens_per_context : int or None
        The context length of ``mode="contexts"`` (required there). That mode holds out every
        k-th context, k = max(2, round(1/held_out)), and may hold out no token at all when
        n is shorter than k contexts (the caller decides whether that is enough).

    Returns
    -------
    TokenSplit

    Examples
    --------
    >>> token_split(10, 0.3, mode="tail").eval.tolist()
    [7, 8, 9]
    >>> token_split(8, 0.5, mode="contexts", tokens_per_context=2).eval.tolist()
    [2, 3, 6, 7]
    """
    if mode not in SPLIT_MODES:
        raise ParameterError(f"token split: mode must be 'random', 'tail', 'contexts' or 'all', "
                             f"not {mode!r}")
    if mode == "contexts":
        if not 0 < held_out < 1:
            raise ParameterError(f"held_out must be in (0, 1), got {held_out}")
        if tokens_per_context is None or tokens_per_context < 1:
            raise ParameterError(f"token split: mode 'contexts' needs tokens_per_context ≥ 1, "
                                 f"got {tokens_per_context}")
        k = max(2, round(1.0 / held_out))
        held = (np.arange(n_tokens) // tokens_per_context) % k == (k - 1)
        return TokenSplit(n_tokens, np.flatnonzero(~held), np.flatnonzero(held),
                          float(held_out), mode, None, int(tokens_per_context))
    if n_tokens < 1:
        raise ParameterError(f"token split: need at least one token, got {n_tokens}")
    if mode == "all":
        idx = np.arange(n_tokens)
        return TokenSplit(n_tokens, idx, idx, 1.0, "all", None)
    if not 0.0 < held_out < 1.0:
        raise ParameterError(f"token split: held_out must be in (0, 1), got {held_out}")
    if rounding not in ("up", "nearest"):
        raise ParameterError(f"token split: rounding must be 'up' or 'nearest', not {rounding!r}")
    if n_tokens < 2:
        raise ParameterError("token split: a hold-out needs at least 2 tokens (use mode='all')")
    share = (math.ceil(held_out * n_tokens) if rounding == "up"
             else n_tokens - int(round(n_tokens * (1 - held_out))))
    n_eval = min(n_tokens - 1, max(1, share))
    order = (np.random.default_rng(seed).permutation(n_tokens) if mode == "random"
             else np.arange(n_tokens))
    return TokenSplit(n_tokens, np.sort(order[: n_tokens - n_eval]),
                      np.sort(order[n_tokens - n_eval:]), float(held_out), mode,
                      seed if mode == "random" else None)
