"""The atomic inner product (AIP) metric S̃, whitening, AIP cosines and the representation shift.

Notation (docs/design.md): activations x ∈ R^H are the rows of X (n×H). The paper's estimator is
S̃ = Σ⁻¹ with Σ = E[x xᵀ] the *uncentred* second moment (``center=True`` uses the covariance
E[(x − x̄)(x − x̄)ᵀ] instead). A ridge adds λ·(tr Σ / H)·I before inverting; λ is reported.
The closed form of the paper is S̃ = (D Dᵀ)⁻¹ (:meth:`AIPMetric.from_dictionary`).

With the eigendecomposition Σ = V Λ Vᵀ (float64), S̃ = V Λ⁻¹ Vᵀ and the whitening is the
symmetric square root W = S̃^{1/2} = V Λ^{-1/2} Vᵀ. Then

* AIP inner product ⟨u, v⟩ = uᵀ S̃ v = (W u)ᵀ (W v),
* AIP norm ‖v‖_S = sqrt(vᵀ S̃ v) = ‖W v‖₂,
* AIP cosine ⟨u, v⟩_S = uᵀ S̃ v / (‖u‖_S ‖v‖_S),
* the AIP-corrected dictionary D̃ has columns d̃ᵢ = W dᵢ / ‖W dᵢ‖₂.

Invariance: fitting on X Aᵀ (each x ↦ A x, A invertible) gives S̃' = A⁻ᵀ S̃ A⁻¹, so the AIP
cosine of (A u, A v) under S̃' equals that of (u, v) under S̃ (exactly when the ridge is 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from rip_atoms.dictionary import Dictionary, as_dictionary
from rip_atoms.errors import (
    NonFiniteError,
    ParameterError,
    ParameterTypeError,
    ShapeMismatchError,
    SingularMetricError,
)

RCOND = 1e-10
# the matrix inverted must have its largest eigenvalue in [2^-900, 2^900]: then it, its inverse
# and the whitening (with condition number ≤ 1/rcond) are normal float64 numbers, computed to
# full precision
_EIG_RANGE = (2.0**-900, 2.0**900)


def check_ridge(ridge: float) -> float:
    """λ as a float: a finite number ≥ 0, else :class:`ParameterError` naming ``ridge``."""
    try:
        v = float(ridge)
    except (TypeError, ValueError):
        raise ParameterTypeError(f"ridge must be a finite number ≥ 0, got {ridge!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise ParameterError(f"ridge must be a finite number ≥ 0, got {ridge!r}")
    return v


def _check_rcond(rcond: float) -> float:
    try:
        v = float(rcond)
    except (TypeError, ValueError):
        raise ParameterTypeError(f"rcond must be a number in (0, 1), got {rcond!r}") from None
    if not 0.0 < v < 1.0:
        raise ParameterError(f"rcond must be a number in (0, 1), got {rcond!r}")
    return v


def _real_array(v, what: str) -> np.ndarray:
    """``v`` as an ndarray of real numbers (complex, string or object input is refused rather
    than silently cast, which would drop imaginary parts)."""
    arr = np.asarray(v)
    if np.iscomplexobj(arr):
        raise ParameterError(
            f"{what}: complex values (dtype {arr.dtype}); the AIP metric is defined for real "
            "vectors: pass the real part (or stack real and imaginary parts) explicitly"
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise ParameterTypeError(f"{what}: expected real numbers, got dtype {arr.dtype}")
    return arr


@dataclass(frozen=True)
class AIPMetric:
    """A fitted AIP metric S̃ (H×H, symmetric positive definite) and its whitening W = S̃^{1/2}.

    Attributes
    ----------
    S : the metric S̃ (float64).
    W : the symmetric whitening S̃^{1/2} (float64).
    moment_eigenvalues : eigenvalues of the matrix that was inverted (Σ + ridge, or D Dᵀ),
        ascending.
    kind : ``"activations"``, ``"dictionary"`` or ``"identity"``.
    ridge : λ, relative to tr Σ / H; ``ridge_absolute`` = λ·tr Σ / H actually added.
    center : whether the covariance (True) or the uncentred second moment (False) was used.
    n_samples : number of activations the moment was estimated from (None for other kinds).
    mean : the activation mean (float64), always recorded for activation fits.
    """

    S: np.ndarray
    W: np.ndarray
    moment_eigenvalues: np.ndarray
    kind: str
    ridge: float = 0.0
    ridge_absolute: float = 0.0
    center: bool = False
    n_samples: int | None = None
    mean: np.ndarray | None = field(default=None, repr=False)
    source: str | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_moment(
        cls,
        sigma: np.ndarray,
        *,
        kind: str = "activations",
        ridge: float = 0.0,
        rcond: float = RCOND,
        what: str = "second moment",
        **info,
    ) -> AIPMetric:
        """S̃ = (Σ + λ·(tr Σ/H)·I)⁻¹ from a symmetric moment matrix Σ.

        Raises :class:`SingularMetricError` when the smallest eigenvalue of the regularised
        matrix is ≤ rcond × the largest (the inverse would be meaningless in float64), or when
        its largest eigenvalue lies outside [2⁻⁹⁰⁰, 2⁹⁰⁰] (its inverse would underflow or
        overflow float64: the data are too small or too large; cosines do not depend on their
        scale, so rescaling them is harmless). ``ridge`` must be finite and ≥ 0 and ``rcond`` in
        (0, 1), else :class:`ParameterError`.
        """
        ridge = check_ridge(ridge)
        rcond = _check_rcond(rcond)
        sigma = _real_array(sigma, what).astype(np.float64, copy=False)
        if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
            raise ShapeMismatchError(f"{what}: expected a square matrix, got {sigma.shape}")
        if not np.isfinite(sigma).all():
            raise NonFiniteError(f"{info.get('source') or what}: the {what} holds non-finite "
                                 "values")
        h = sigma.shape[0]
        sigma = 0.5 * (sigma + sigma.T)
        ridge_abs = ridge * float(np.trace(sigma)) / h
        lam, vec = np.linalg.eigh(sigma + ridge_abs * np.eye(h))
        top = float(lam[-1])
        if top > 0 and not _EIG_RANGE[0] <= top <= _EIG_RANGE[1]:
            side = "small" if top < _EIG_RANGE[0] else "large"
            raise SingularMetricError(
                f"{info.get('source') or what}: the {what} has eigenvalues of order {top:.3g}, "
                f"too {side} for float64: its inverse cannot be computed accurately; rescale "
                "the data (AIP cosines, μ, RIP and spark do not depend on their scale) or use "
                "the raw (Euclidean) metric"
            )
        if top <= 0 or lam[0] <= rcond * top:
            cond = np.inf if lam[0] <= 0 else top / float(lam[0])
            n_small = int(np.sum(lam <= rcond * max(top, 0.0)))
            raise SingularMetricError(
                f"{info.get('source') or what}: the {what} is singular or too ill-conditioned "
                f"to invert (condition number {cond:.3g}, {n_small} of {h} eigenvalues ≤ "
                f"{rcond:g}·max); add a ridge (e.g. ridge=1e-6) or use more activations"
            )
        S = (vec / lam) @ vec.T
        W = (vec / np.sqrt(lam)) @ vec.T
        S = 0.5 * (S + S.T)
        W = 0.5 * (W + W.T)
        return cls(
            S=S, W=W, moment_eigenvalues=lam, kind=kind, ridge=ridge, ridge_absolute=ridge_abs,
            **info,
        )

    @classmethod
    def identity(cls, dim: int) -> AIPMetric:
        """The Euclidean metric S̃ = I (raw cosines)."""
        eye = np.eye(dim)
        return cls(S=eye, W=eye.copy(), moment_eigenvalues=np.ones(dim), kind="identity")

    @classmethod
    def from_dictionary(
        cls,
        D: Dictionary | np.ndarray,
        *,
        atoms: str = "raw",
        ridge: float = 0.0,
        rcond: float = RCOND,
    ) -> AIPMetric:
        """The paper's closed form S̃ = (D Dᵀ)⁻¹.

        Reading: by default D is used as given (``atoms="raw"``, docs/design.md's contract). This is
        the reading under which the AIP is invariant: for x ↦ A x the dictionary becomes A D and
        (A D Dᵀ Aᵀ)⁻¹ = A⁻ᵀ S̃ A⁻¹, so AIP cosines do not change. ``atoms="unit"`` first
        normalises the columns to Euclidean unit length (dᵢ/‖dᵢ‖) — the same for decoders that
        are already unit-norm, but Euclidean normalisation is not invariant under A, so neither
        is that metric (smallest counterexample: H = 2, N = 3; see rip_atoms.theorems). Dead
        atoms contribute nothing either way. Needs D of full row rank (N ≥ H), else
        :class:`SingularMetricError`.
        With W = (D Dᵀ)^{-1/2}, the whitened W D is a Parseval frame: (W D)(W D)ᵀ = I_H.
        """
        if atoms not in ("unit", "raw"):
            raise ParameterError(f"atoms must be 'unit' or 'raw', not {atoms!r}")
        ridge = check_ridge(ridge)
        d = as_dictionary(D)
        if len(d.live_atoms) < d.dim:
            dead = d.dead_summary(with_source=False)
            raise SingularMetricError(
                f"{d.provenance.source}: D Dᵀ is singular: {len(d.live_atoms)} live atoms "
                f"cannot span H = {d.dim} dimensions; use the raw (Euclidean) metric or "
                "activations" + (f" ({dead})" if dead else "")
            )
        mat = d.unit(np.float64) if atoms == "unit" else np.asarray(d.atoms, dtype=np.float64)
        peak = float(np.max(np.abs(mat)))
        if not _EIG_RANGE[0] <= peak * peak <= _EIG_RANGE[1]:
            side = "small" if peak * peak < _EIG_RANGE[0] else "large"
            raise SingularMetricError(
                f"{d.provenance.source}: the atoms are too {side} for the self metric "
                f"(D Dᵀ)⁻¹ to be computed in float64 (largest |entry| of D is {peak:.3g}: "
                f"D Dᵀ would {'underflow' if side == 'small' else 'overflow'}); rescale the "
                "dictionary (AIP cosines, μ, RIP and spark do not depend on its scale) or use "
                "the raw (Euclidean) metric"
            )
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            moment = mat @ mat.T
        if not np.isfinite(moment).all():
            raise SingularMetricError(
                f"{d.provenance.source}: D Dᵀ overflows float64 (largest |entry| of D is "
                f"{peak:.3g}); rescale the dictionary (AIP cosines, μ, RIP and spark do not "
                "depend on its scale) or use the raw (Euclidean) metric"
            )
        return cls.from_moment(
            moment, kind="dictionary", ridge=ridge, rcond=rcond, what="D Dᵀ",
            source=d.provenance.source,
        )

    # ------------------------------------------------------------------ geometry
    @property
    def dim(self) -> int:
        return int(self.S.shape[0])

    @property
    def condition_number(self) -> float:
        """λmax/λmin of the inverted matrix (equal to that of S̃)."""
        return float(self.moment_eigenvalues[-1] / self.moment_eigenvalues[0])

    def _check(self, v: np.ndarray, what: str) -> np.ndarray:
        v = _real_array(v, what).astype(np.float64, copy=False)
        if v.shape[0] != self.dim:
            raise ShapeMismatchError(
                f"{what}: has {v.shape[0]} rows but the metric is for H = {self.dim}"
            )
        return v

    def whiten(self, v: np.ndarray) -> np.ndarray:
        """W v for a vector (H,) or the columns of a matrix (H×m)."""
        return self.W @ self._check(v, "vectors")

    def inner(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """uᵀ S̃ v (column-wise for H×m inputs)."""
        u = self._check(u, "u")
        v = self._check(v, "v")
        return np.sum(u * (self.S @ v), axis=0)

    def norm(self, v: np.ndarray) -> np.ndarray:
        """‖v‖_S = sqrt(vᵀ S̃ v) (column-wise for H×m)."""
        return np.linalg.norm(self.whiten(v), axis=0)

    def cosine(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """AIP cosine uᵀ S̃ v / (‖u‖_S ‖v‖_S) (column-wise for H×m inputs), clamped to [−1, 1]
        (rounding can leave it an ulp outside)."""
        wu = self.whiten(u)
        wv = self.whiten(v)
        return np.clip(np.sum(wu * wv, axis=0) / (
            np.linalg.norm(wu, axis=0) * np.linalg.norm(wv, axis=0)
        ), -1.0, 1.0)

    def corrected(self, D: Dictionary | np.ndarray) -> Dictionary:
        """The AIP-corrected dictionary D̃ with columns W dᵢ / ‖W dᵢ‖₂ (dead atoms stay 0)."""
        d = as_dictionary(D)
        wd = self.whiten(d.scaled_columns(np.arange(d.n_atoms)))  # exact 2^k scaling per atom
        norms = np.linalg.norm(wd, axis=0)
        scale = np.zeros_like(norms)
        live = np.setdiff1d(np.flatnonzero(norms > 0), d.dead_atoms)
        scale[live] = 1.0 / norms[live]
        return Dictionary(
            wd * scale, source=d.provenance.source, note=f"AIP-corrected ({self.kind} metric)"
        )

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "center": self.center,
            "ridge": self.ridge,
            "ridge_absolute": self.ridge_absolute,
            "n_samples": self.n_samples,
            "condition_number": self.condition_number,
            "source": self.source,
        }


def metric_description(metric: AIPMetric | None) -> dict:
    """The JSON description of a metric as every result records it: ``metric.to_dict()``, or
    ``{"kind": "raw"}`` for None (Euclidean cosines, no metric).

    Parameters
    ----------
    metric : AIPMetric or None
        The metric, or None for the Euclidean inner product.

    Returns
    -------
    dict

    Examples
    --------
    >>> metric_description(None)
    {'kind': 'raw'}
    >>> metric_description(AIPMetric.identity(3))["kind"]
    'identity'
    """
    return {"kind": "raw"} if metric is None else metric.to_dict()


def _iter_chunks(activations, chunk_size: int):
    if isinstance(activations, np.ndarray):
        if activations.ndim != 2:
            raise ShapeMismatchError(
                f"activations: expected an n×H matrix, got shape {activations.shape}"
            )
        for start in range(0, activations.shape[0], chunk_size):
            yield activations[start : start + chunk_size]
    else:
        yield from activations


def fit_metric(
    activations: np.ndarray | Iterable[np.ndarray],
    *,
    center: bool = False,
    ridge: float = 0.0,
    chunk_size: int = 65536,
    rcond: float = RCOND,
    source: str | None = None,
) -> AIPMetric:
    """Fit S̃ = Σ⁻¹ from activations, streaming over row chunks (n ≫ memory works).

    ``activations`` is an n×H array (a memory map is read chunk by chunk) or any iterable of
    m×H chunks. Σ = (1/n) Σᵢ xᵢxᵢᵀ (uncentred, the paper's estimator) or, with ``center=True``,
    the covariance, accumulated chunk by chunk in float64 with the pairwise (Chan et al.) update
    C = C_a + C_b + (n_a n_b / n)(x̄_a − x̄_b)(x̄_a − x̄_b)ᵀ, which avoids the cancellation of
    E[xxᵀ] − x̄x̄ᵀ when the mean is large (as it is for LLM residual streams).
    Then S̃ = (Σ + λ·(tr Σ/H)·I)⁻¹.

    Raises :class:`NonFiniteError` naming the first non-finite row, :class:`ShapeMismatchError`
    on inconsistent widths, :class:`SingularMetricError` when Σ cannot be inverted (including
    n < H, when Σ has rank ≤ n).

    Examples
    --------
    Activations x = A z with z isotropic: Σ = A Aᵀ, so the AIP undoes A — the cosine of A u and
    A v under S̃ = Σ⁻¹ is the Euclidean cosine of u and v (here 0).

    >>> import numpy as np
    >>> from rip_atoms.metric import fit_metric
    >>> A = np.array([[3.0, 1.0], [0.0, 0.5]])
    >>> Z = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> m = fit_metric(Z @ A.T)
    >>> u, v = A @ [1.0, 0.0], A @ [0.0, 1.0]
    >>> round(float(u @ m.S @ v), 12)
    0.0
    """
    label = source or "activations"
    ridge = check_ridge(ridge)
    _check_rcond(rcond)
    if not isinstance(chunk_size, int | np.integer) or isinstance(chunk_size, bool):
        raise ParameterTypeError(f"chunk_size must be an integer ≥ 1, got {chunk_size!r}")
    if chunk_size < 1:
        raise ParameterError(f"chunk_size must be an integer ≥ 1, got {chunk_size}")
    n = 0
    h = None
    mean = None
    scatter = None  # Σ (x − x̄)(x − x̄)ᵀ if center else Σ x xᵀ
    for chunk in _iter_chunks(activations, chunk_size):
        c = _real_array(chunk, label).astype(np.float64, copy=False)
        if c.ndim != 2:
            raise ShapeMismatchError(f"{label}: expected n×H chunks, got shape {c.shape}")
        if h is None:
            h = c.shape[1]
            mean = np.zeros(h)
            scatter = np.zeros((h, h))
        elif c.shape[1] != h:
            raise ShapeMismatchError(f"{label}: chunk of width {c.shape[1]} after width {h}")
        if c.shape[0] == 0:
            continue
        finite = np.isfinite(c).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise NonFiniteError(f"{label}: row {n + bad} holds a non-finite value")
        m = c.shape[0]
        # overflow (entries near 1e300) becomes inf/NaN in the moment, which from_moment
        # reports as one error; numpy's RuntimeWarnings would only add lines to it
        with np.errstate(over="ignore", invalid="ignore"):
            cmean = c.mean(axis=0)
            if center:
                cc = c - cmean
                delta = cmean - mean
                scatter += cc.T @ cc + (n * m / (n + m)) * np.outer(delta, delta)
            else:
                scatter += c.T @ c
            mean += (cmean - mean) * (m / (n + m))
        n += m
    if h is None or n == 0:
        raise ShapeMismatchError(f"{label}: no activations")
    if n < h and ridge == 0:
        raise SingularMetricError(
            f"{label}: only {n} activations for H = {h}: the second moment has rank ≤ {n} < H "
            "and cannot be inverted; use more activations or a ridge"
        )
    sigma = scatter / n
    return AIPMetric.from_moment(
        sigma, kind="activations", ridge=ridge, rcond=rcond,
        what="covariance" if center else "second moment",
        center=center, n_samples=n, mean=mean, source=label,
    )


# ---------------------------------------------------------------------- representation shift
@dataclass(frozen=True)
class CosineDistribution:
    """Summary of a sample of pairwise cosines: mean, std, quantiles, mean angle, histogram."""

    mean: float
    std: float
    quantiles: dict[float, float]
    mean_angle_deg: float
    counts: np.ndarray
    edges: np.ndarray

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "quantiles": {str(q): v for q, v in self.quantiles.items()},
            "mean_angle_deg": self.mean_angle_deg,
            "histogram": {"counts": self.counts.tolist(), "edges": self.edges.tolist()},
        }


@dataclass(frozen=True)
class RepresentationShift:
    """Pairwise cosines of a sample of activations, Euclidean (``raw``) and under the AIP
    (``aip``). A raw distribution centred away from 0 (angles away from 90°) is the paper's
    representation shift; the AIP distribution shows what the metric makes of it."""

    n_vectors: int
    n_pairs: int
    raw: CosineDistribution
    aip: CosineDistribution
    metric: dict

    def to_dict(self) -> dict:
        return {
            "n_vectors": self.n_vectors,
            "n_pairs": self.n_pairs,
            "raw": self.raw.to_dict(),
            "aip": self.aip.to_dict(),
            "metric": self.metric,
        }


QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _cosine_distribution(V: np.ndarray, bins: int) -> CosineDistribution:
    """All pairwise cosines (i < j) of the rows of V."""
    U = V / np.linalg.norm(V, axis=1, keepdims=True)
    C = U @ U.T
    iu = np.triu_indices(C.shape[0], k=1)
    cos = np.clip(C[iu], -1.0, 1.0)
    counts, edges = np.histogram(cos, bins=bins, range=(-1.0, 1.0))
    return CosineDistribution(
        mean=float(cos.mean()),
        std=float(cos.std()),
        quantiles=dict(zip(QUANTILES, np.quantile(cos, QUANTILES).tolist(), strict=True)),
        mean_angle_deg=float(np.degrees(np.arccos(cos)).mean()),
        counts=counts,
        edges=edges,
    )


def representation_shift(
    activations: np.ndarray,
    metric: AIPMetric,
    *,
    n_vectors: int = 2000,
    bins: int = 80,
    seed: int = 0,
) -> RepresentationShift:
    """Distribution of pairwise cosines cos(xᵢ, xⱼ), i < j, over a random sample of
    ``n_vectors`` activations: Euclidean, and under the AIP (cosines of W xᵢ). Zero rows are
    skipped. Returns mean, std, quantiles, mean angle and a histogram over [−1, 1] for each."""
    X = _real_array(activations, "activations")
    if X.ndim != 2 or X.shape[1] != metric.dim:
        raise ShapeMismatchError(
            f"activations: shape {X.shape} does not match the metric's H = {metric.dim}"
        )
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(X.shape[0], size=min(n_vectors, X.shape[0]), replace=False))
    V = np.asarray(X[idx], dtype=np.float64)
    if not np.isfinite(V).all():
        raise NonFiniteError("activations: the sample holds non-finite values")
    V = V[np.linalg.norm(V, axis=1) > 0]
    if V.shape[0] < 2:
        raise ShapeMismatchError("activations: fewer than two non-zero activations to compare")
    return RepresentationShift(
        n_vectors=int(V.shape[0]),
        n_pairs=int(V.shape[0] * (V.shape[0] - 1) // 2),
        raw=_cosine_distribution(V, bins),
        aip=_cosine_distribution(V @ metric.W, bins),
        metric=metric.to_dict(),
    )
