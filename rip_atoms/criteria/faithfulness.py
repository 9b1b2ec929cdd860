"""Faithfulness R² of a unit set, in the AIP norm and the Euclidean norm, and the streaming pass
over tokens that it (and the other criteria) need.

R² = 1 − Σᵢ‖xᵢ − x̂ᵢ‖² / Σᵢ‖xᵢ − x̄‖², pooled over the evaluated tokens, x̄ their mean,
x̂ᵢ = D δᵢ + b, in the AIP norm ‖v‖²_S = vᵀS̃v and in the Euclidean norm (docs/design.md, "The paper's
criteria"). Held-out tokens by default (:func:`rip_atoms.criteria.units.token_split`).

:func:`stream_tokens` is one pass over the evaluated tokens, ``chunk_size`` at a time (a memory
map is never read whole): residual sums for R², per-token L0 and support coherence, the atoms
ever active, the sign and magnitude range of the codes, a sample of codes for the ℓ1 test, and
per-token relative residuals for the atom-set check.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rip_atoms.corrected_atoms import resolve_metric
from rip_atoms.criteria.stability import support_coherence
from rip_atoms.criteria.units import TokenSplit, UnitSet, neuron_codes, token_split
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import NonFiniteError, ParameterError, ShapeMismatchError
from rip_atoms.metric import AIPMetric, fit_metric, metric_description
from rip_atoms.strict_json import fields_dict

#: tokens encoded, decoded and reduced at a time
DEFAULT_CHUNK_SIZE = 4096

__all__ = ["DEFAULT_CHUNK_SIZE", "FaithfulnessResult", "TokenStats", "faithfulness_r2",
           "stream_tokens"]


# =============================================================================== streaming
@dataclass
class TokenStats:
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


def check_activations(X: np.ndarray, dim: int | None, what: str = "activations") -> np.ndarray:
    """``X`` as an n×H array (a memory map stays one), checking the width against ``dim``.

    Parameters
    ----------
    X : array_like
        The activations.
    dim : int or None
        The width H they must have (None: any).
    what : str
        Their name in error messages.

    Returns
    -------
    numpy.ndarray
    """
    if isinstance(X, np.ndarray) and X.ndim == 2:
        if dim is not None and X.shape[1] != dim:
            raise ShapeMismatchError(f"{what}: width {X.shape[1]} but the unit set has "
                                     f"H = {dim}")
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"{what}: expected an n×H matrix, got shape {arr.shape}")
    return check_activations(arr, dim, what)


def rows_of(X: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The rows ``r`` of X as float64, checked finite (the error names the first bad row).

    Parameters
    ----------
    X : array_like
        n×H activations.
    r : array_like of int
        Row indices.

    Returns
    -------
    numpy.ndarray
        len(r)×H, float64.
    """
    Xc = np.asarray(X[r], dtype=np.float64)
    if not np.isfinite(Xc).all():
        bad = int(r[np.flatnonzero(~np.isfinite(Xc).all(axis=1))[0]])
        raise NonFiniteError(f"activations: row {bad} holds a non-finite value")
    return Xc


def stream_tokens(
    unit: UnitSet,
    X: np.ndarray | None,
    rows: np.ndarray,
    *,
    metric: AIPMetric | None,
    mean: np.ndarray | None,
    atom_mu: np.ndarray | None,
    atom_norms: np.ndarray | None,
    sample: np.ndarray | None,
    chunk_size: int,
    relative: bool = False,
) -> TokenStats:
    """One pass over the tokens ``rows``: residual sums for R², per-token L0 and support
    coherence, atoms ever active, the sign of the codes, normalised magnitude range, the codes
    of the ``sample`` tokens (positions into ``rows``), and per-token relative residuals.

    Parameters
    ----------
    unit : UnitSet
        The units.
    X : array_like or None
        n×H activations (None: precomputed codes only, no residuals).
    rows : array_like of int
        The tokens, in order.
    metric : AIPMetric or None
        The AIP metric of the AIP sums (None: Euclidean sums only).
    mean : array_like or None
        x̄ for the R² denominators (None: no R² sums).
    atom_mu : array_like or None
        Per-atom coherences for :func:`support_coherence` (None: not computed).
    atom_norms : array_like or None
        Scales of the code magnitudes (AIP norms of the atoms), or None.
    sample : array_like of int or None
        Positions into ``rows`` whose codes are kept.
    chunk_size : int
        Tokens encoded at a time.
    relative : bool
        Record per-token relative residuals ‖xᵢ − x̂ᵢ‖/‖xᵢ‖.

    Returns
    -------
    TokenStats
    """
    st = TokenStats()
    N = unit.decoder.n_atoms
    st.active = np.zeros(N, dtype=bool)
    W = None if metric is None else metric.W
    want_res = X is not None and mean is not None
    is_neurons = unit.kind == "neurons" and unit.encoder is neuron_codes
    for s in range(0, len(rows), chunk_size):
        r = rows[s: s + chunk_size]
        Xc = rows_of(X, r) if X is not None else None
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
        return fields_dict(self)


def resolve_split(n: int, split: TokenSplit | None) -> TokenSplit:
    """``split``, checked against n tokens; by default :func:`token_split` (n).

    Parameters
    ----------
    n : int
        The number of tokens.
    split : TokenSplit or None
        The split to check, or None for the default.

    Returns
    -------
    TokenSplit
    """
    if split is None:
        return token_split(n)
    if split.n_tokens != n:
        raise ShapeMismatchError(f"token split is for {split.n_tokens} tokens but there are "
                                 f"{n} activations")
    return split


def data_metric(X: np.ndarray, split: TokenSplit, metric: AIPMetric | str | None,
                ridge: float, center: bool, D: Dictionary | None = None,
                source: str = "activations") -> AIPMetric | None:
    """The metric of a criterion on activations, following the glossary of ``docs/api.md``:
    ``"fit"`` → Σ⁻¹ fitted on the split's ``fit`` tokens (``ridge``, ``center`` as in
    :func:`rip_atoms.metric.fit_metric`); an :class:`AIPMetric` → itself (its H checked);
    ``"self"`` → (D Dᵀ)⁻¹ of ``D``; None or ``"raw"`` → None (Euclidean).

    Parameters
    ----------
    X : array_like
        n×H activations.
    split : TokenSplit
        Its ``fit`` tokens fit the metric for ``"fit"``.
    metric : "fit", AIPMetric, "self", "raw" or None
        See above.
    ridge, center :
        As in :func:`rip_atoms.metric.fit_metric`.
    D : Dictionary, optional
        The dictionary of ``"self"`` (refused without one).
    source : str
        Names the activations in error messages (e.g. their file).

    Returns
    -------
    AIPMetric or None
    """
    if metric is None or (isinstance(metric, str) and metric == "raw"):
        return None
    if isinstance(metric, str):
        if metric == "fit":
            fit_rows = split.fit
            return fit_metric(_ChunkRows(X, fit_rows), ridge=ridge, center=center,
                              source=f"{source} ({len(fit_rows)} metric-fitting tokens; rows "
                                     "counted within them)")
        if metric == "self" and D is not None:
            return resolve_metric(D, "self")
        also = "" if D is None else " or 'self'"
        raise ParameterError(f"metric must be 'fit', an AIPMetric, None/'raw' (Euclidean)"
                             f"{also}, not {metric!r}")
    if metric.dim != X.shape[1]:
        raise ShapeMismatchError(f"the metric is for H = {metric.dim} but the activations "
                                 f"have width {X.shape[1]}")
    return metric


class _ChunkRows:
    """Iterable of row chunks X[rows] (for fit_metric over a subset without a copy)."""

    def __init__(self, X: np.ndarray, rows: np.ndarray, chunk_size: int = 16384) -> None:
        self.X, self.rows, self.chunk_size = X, rows, chunk_size

    def __iter__(self) -> Iterator[np.ndarray]:
        for s in range(0, len(self.rows), self.chunk_size):
            yield np.asarray(self.X[self.rows[s: s + self.chunk_size]], dtype=np.float64)


def eval_mean(X: np.ndarray, rows: np.ndarray, chunk_size: int) -> np.ndarray:
    """x̄, the mean of the rows ``rows`` of X, read ``chunk_size`` rows at a time.

    Parameters
    ----------
    X : array_like
        n×H activations.
    rows : array_like of int
        The rows to average.
    chunk_size : int
        Rows read at a time.

    Returns
    -------
    numpy.ndarray
        H, float64.
    """
    total = np.zeros(X.shape[1])
    for s in range(0, len(rows), chunk_size):
        total += rows_of(X, rows[s: s + chunk_size]).sum(axis=0)
    return total / len(rows)


def r2_value(res: float, tot: float) -> float:
    """1 − res/tot (a ParameterError when the evaluated tokens have no variance).

    Parameters
    ----------
    res : float
        Σᵢ‖xᵢ − x̂ᵢ‖².
    tot : float
        Σᵢ‖xᵢ − x̄‖².

    Returns
    -------
    float
    """
    if not tot > 0:
        raise ParameterError("R²: the evaluated activations have zero variance about their mean")
    return 1.0 - res / tot


def faithfulness_result(st: TokenStats, split: TokenSplit, metric: AIPMetric | None
                        ) -> FaithfulnessResult:
    """The :class:`FaithfulnessResult` of a streaming pass (the Euclidean sums stand for the
    AIP ones when ``metric`` is None).

    Parameters
    ----------
    st : TokenStats
        The sums of :func:`stream_tokens` (with ``mean`` given).
    split : TokenSplit
        The split whose ``eval`` tokens were streamed.
    metric : AIPMetric or None
        The metric of the AIP sums.

    Returns
    -------
    FaithfulnessResult
    """
    res_aip, tot_aip = (st.res_euc, st.tot_euc) if metric is None else (st.res_aip, st.tot_aip)
    return FaithfulnessResult(
        r2_aip=r2_value(res_aip, tot_aip), r2_euclidean=r2_value(st.res_euc, st.tot_euc),
        n_tokens=len(split.eval), residual_aip=res_aip, total_aip=tot_aip,
        residual_euclidean=st.res_euc, total_euclidean=st.tot_euc, split=split.to_dict(),
        metric=metric_description(metric))


def faithfulness_r2(
    activations: np.ndarray,
    unit: UnitSet,
    *,
    metric: AIPMetric | str | None = "fit",
    split: TokenSplit | None = None,
    ridge: float = 0.0,
    center: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> FaithfulnessResult:
    """Faithfulness R² of a unit set, in the AIP norm and the Euclidean norm, on held-out tokens.

    R² = 1 − Σᵢ‖xᵢ − x̂ᵢ‖² / Σᵢ‖xᵢ − x̄‖² with x̂ᵢ = D δᵢ + b, pooled over the evaluated tokens
    ``split.eval`` and x̄ their mean; ‖v‖² is vᵀS̃v (AIP) or vᵀv (Euclidean). Neurons give
    R² = 1 exactly.

    Parameters
    ----------
    activations : array_like
        X, n×H (a memory map is read ``chunk_size`` rows at a time).
    unit : UnitSet
        The units: decoder, encoder or codes aligned with the activations, bias.
    metric : "fit", AIPMetric, "self", "raw" or None
        The AIP metric: ``"fit"`` (default) Σ⁻¹ fitted on the split's ``fit`` tokens
        (``ridge``, ``center`` as in :func:`rip_atoms.metric.fit_metric`); an
        :class:`AIPMetric`; ``"self"`` the unit's (D Dᵀ)⁻¹; None or ``"raw"`` Euclidean (then
        ``r2_aip`` is the Euclidean R²).
    split : TokenSplit, optional
        Which tokens fit the metric and which are evaluated (default :func:`token_split` (n):
        a seeded random half held out).
    ridge, center :
        Passed to :func:`rip_atoms.metric.fit_metric` for ``metric="fit"``.
    chunk_size : int
        Tokens encoded and decoded at a time.

    Returns
    -------
    FaithfulnessResult

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((40, 3))
    >>> r = faithfulness_r2(X, UnitSet.neurons(3), metric=None)
    >>> r.r2_aip, r.r2_euclidean, r.n_tokens
    (1.0, 1.0, 20)
    """
    X = check_activations(activations, unit.decoder.dim)
    sp_ = resolve_split(X.shape[0], split)
    m = data_metric(X, sp_, metric, ridge, center, D=unit.decoder)
    mean = eval_mean(X, sp_.eval, chunk_size)
    st = stream_tokens(unit, X, sp_.eval, metric=m, mean=mean, atom_mu=None, atom_norms=None,
                       sample=None, chunk_size=chunk_size)
    return faithfulness_result(st, sp_, m)
