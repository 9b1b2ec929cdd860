"""D̃, the unit atoms under a metric: float32 rows for blocked passes, float64 on demand.

For a dictionary D (columns dᵢ) and an AIP metric with whitening W = S̃^{1/2} (or none: raw
Euclidean geometry), the corrected atoms are d̃ᵢ = W dᵢ / ‖W dᵢ‖₂ (DESIGN.md, "AIP-corrected
dictionary"). Passes over many atoms use float32 rows ``rows`` (N_live×H, C-contiguous; the
whitening itself is done in float64 and then rounded, so ill-conditioned metrics lose nothing);
every reported number is recomputed in float64 from the atoms as given with
cos(j, l) = dⱼᵀ S̃ dₗ / (‖dⱼ‖_S ‖dₗ‖_S) (:meth:`CorrectedAtoms.gram`, :meth:`cosines_row`).
Exact ℓ1 recovery (:mod:`rip_atoms.recovery`) and the theorem suite need D̃ itself in float64:
built with ``rows64=True``, ``rows64`` holds every atom's float64 unit row (N×H; dead atoms zero)
from one unchunked float64 pass, and ``norms`` comes from that same pass.

``tolerance`` bounds |float32 row cosine − exact cosine|: γ_H + 2.5u (u = 2⁻²⁴, γ_H = Hu/(1−Hu);
rounding of unit rows plus the GEMM's accumulation bound for unit vectors), plus twice the largest
deviation of a row's squared norm from 1 when rows are reused without renormalising.
"""

from __future__ import annotations

import numpy as np

from rip_atoms.dictionary import Dictionary, as_dictionary
from rip_atoms.errors import (
    EmptyDictionaryError,
    ParameterError,
    ParameterTypeError,
    ShapeMismatchError,
)
from rip_atoms.metric import AIPMetric, metric_description

_U32 = 2.0**-24


def float32_cosine_tolerance(dim: int) -> float:
    """Bound on |float32 cosine − exact cosine| for unit rows of length H: γ_H + 2.5u."""
    hu = dim * _U32
    return hu / (1.0 - hu) + 2.5 * _U32


def float64_cosine_tolerance(dim: int, condition_number: float = 1.0) -> float:
    """Bound on |float64 cosine − exact cosine| of cos(j, l) = dⱼᵀ S̃ dₗ / (‖dⱼ‖_S ‖dₗ‖_S) for
    the atoms and S̃ as stored: 4(H + 2)·ε₆₄·κ(S̃) (ε₆₄ = 2⁻⁵²; the products S̃d and dᵀ(S̃d) carry
    relative error ≤ (H + 1)ε₆₄‖S̃‖‖d‖², which is ≤ (H + 1)ε₆₄·κ(S̃) relative to ‖d‖²_S ≥
    λmin(S̃)‖d‖²; the two norms and the division add a few ε₆₄; κ = 1 for raw cosines)."""
    return 4.0 * (dim + 2) * float(np.finfo(np.float64).eps) * max(1.0, float(condition_number))


def resolve_metric(d: Dictionary, metric: AIPMetric | str | None) -> AIPMetric | None:
    """``"raw"``/None → Euclidean (None); ``"self"`` → (D Dᵀ)⁻¹; an AIPMetric is checked.

    Any other string is a :class:`ParameterError`, any other object a
    :class:`ParameterTypeError` (both name the value and the accepted ones)."""
    if metric is None or (isinstance(metric, str) and metric == "raw"):
        return None
    if isinstance(metric, str):
        if metric == "self":
            return AIPMetric.from_dictionary(d)
        raise ParameterError(
            f"metric must be 'raw', 'self', None or an AIPMetric, not {metric!r}")
    if not isinstance(metric, AIPMetric):
        raise ParameterTypeError(
            f"metric must be 'raw', 'self', None or an AIPMetric, not a "
            f"{type(metric).__name__}")
    if metric.dim != d.dim:
        raise ShapeMismatchError(
            f"{d.provenance.source}: the metric is for H = {metric.dim} but the dictionary has "
            f"H = {d.dim}"
        )
    return metric


def _lambda_max_upper(M: np.ndarray) -> float:
    """A certified upper bound on λmax of a symmetric PSD matrix M (float64).

    Lanczos (scipy eigsh) gives θ ≈ λmax; t = θ(1 + 1e-9) + 4·H·ε₆₄·‖M‖_F is certified when the
    Cholesky factorisation of t·I − M succeeds (it exists iff t·I − M is positive definite, and
    Cholesky is backward stable within the added slack). Falls back to a full eigensolve.
    """
    from scipy.linalg import cho_factor
    from scipy.sparse.linalg import eigsh

    h = M.shape[0]
    slack = 4 * h * np.finfo(np.float64).eps * float(np.linalg.norm(M))
    if h > 64:
        try:
            theta = float(eigsh(M, k=1, which="LA", return_eigenvectors=False, tol=1e-10)[0])
            t = theta * (1 + 1e-9) + slack
            cho_factor(t * np.eye(h) - M, check_finite=False)
            return t
        except (np.linalg.LinAlgError, ArithmeticError, RuntimeError, ValueError):
            pass
    return float(np.linalg.eigvalsh(M)[-1]) + slack


class CorrectedAtoms:
    """The unit atoms d̃ᵢ = W dᵢ/‖W dᵢ‖ of a dictionary under a metric (None = raw).

    Attributes
    ----------
    dictionary : the :class:`Dictionary` as given.
    metric : the :class:`AIPMetric` applied, or None for Euclidean geometry.
    live : indices (into the dictionary) of live atoms; row r of ``rows`` is atom ``live[r]``.
    norms : float64 ‖dᵢ‖_S = ‖W dᵢ‖₂ for every atom (0 for dead atoms). Cosines are computed
        from the atoms scaled by exact powers of two (:meth:`Dictionary.scaled_columns`, the
        atoms as given unless they are tiny or huge), so they never underflow.
    rows : float32 N_live×H unit rows (None when built with ``rows=False``).
    rows64 : float64 N×H unit rows of *all* atoms, C order, zero rows for dead atoms (None unless
        built with ``rows64=True``); ``cols64`` is its H×N transpose (a view, Fortran order).
    dead : boolean mask over all N atoms: dead in the dictionary, or ‖W dᵢ‖ = 0.
    tolerance : bound on the error of a float32 row cosine.
    tolerance64 : bound on the error of a float64 cosine (:func:`float64_cosine_tolerance`).
    """

    def __init__(
        self,
        D: Dictionary | np.ndarray,
        metric: AIPMetric | str | None = None,
        *,
        rows: bool = True,
        rows64: bool = False,
        chunk: int = 4096,
        min_live: int = 1,
    ) -> None:
        d = as_dictionary(D)
        self.dictionary = d
        self.live = d.live_atoms
        if len(self.live) < min_live:
            dead = d.dead_summary(with_source=False)
            raise EmptyDictionaryError(
                f"{d.provenance.source}: needs at least {min_live} live atoms, found "
                f"{len(self.live)}" + (f" ({dead})" if dead else "")
            )
        self.metric = resolve_metric(d, metric)
        self.tolerance = float32_cosine_tolerance(d.dim)
        self.tolerance64 = float64_cosine_tolerance(
            d.dim, 1.0 if self.metric is None else self.metric.condition_number)
        self.rows = None
        self.rows64: np.ndarray | None = None
        self.norms = np.zeros(d.n_atoms)
        self._snorms = np.zeros(d.n_atoms)  # ‖W 2^−eᵢ dᵢ‖₂, the norms of the scaled atoms
        exps = d.column_exponents
        if rows64:
            self._float64_pass()
            if rows:
                self.rows = self.rows64[self.live].astype(np.float32)
            self.rows_are_input = False
            return
        reuse = (
            rows and self.metric is None and len(d.dead_atoms) == 0
            and d.atoms.dtype == np.float32 and d.atoms.T.flags.c_contiguous
            and np.abs(d.norms - 1.0).max() <= 1e-5
        )
        self.rows_are_input = reuse
        if reuse:  # unit float32 N×H rows already: use them in place, widen the tolerance
            self.rows = d.atoms.T
            self.norms[:] = d.norms
            self._snorms[:] = d.norms
            self.tolerance += 2 * float(np.abs(d.norms**2 - 1.0).max())
            return
        if rows:
            self.rows = np.empty((len(self.live), d.dim), dtype=np.float32)
        for s in range(0, len(self.live), chunk):
            idx = self.live[s : s + chunk]
            X = d.scaled_columns(idx)
            if self.metric is not None:
                X = self.metric.W @ X
            nx = np.linalg.norm(X, axis=0)
            self._snorms[idx] = nx
            with np.errstate(over="ignore", under="ignore"):
                self.norms[idx] = np.ldexp(nx, exps[idx])
            if rows:
                self.rows[s : s + len(idx)] = (X / nx).T

    def _float64_pass(self) -> None:
        """``rows64`` and ``norms`` in one unchunked float64 pass over the atoms scaled by exact
        powers of two (:meth:`Dictionary.scaled_columns`): X = W D', nᵢ = ‖xᵢ‖₂,
        rows64 = (X·diag(1/nᵢ))ᵀ with dead atoms (in the dictionary, or nᵢ = 0) zero."""
        d = self.dictionary
        X = d.scaled_columns(np.arange(d.n_atoms))
        if self.metric is not None:
            X = self.metric.W @ X
        snorms = np.sqrt(np.einsum("ij,ij->j", X, X))
        dead = np.zeros(d.n_atoms, dtype=bool)
        dead[d.dead_atoms] = True
        dead |= ~(snorms > 0)
        self._snorms = np.where(dead, 0.0, snorms)
        with np.errstate(over="ignore", under="ignore"):
            self.norms = np.where(dead, 0.0, np.ldexp(snorms, d.column_exponents))
        inv = np.zeros_like(snorms)
        inv[~dead] = 1.0 / snorms[~dead]
        X *= inv
        self.rows64 = np.ascontiguousarray(X.T)

    @property
    def dim(self) -> int:
        return self.dictionary.dim

    @property
    def n_atoms(self) -> int:
        return self.dictionary.n_atoms

    @property
    def dead(self) -> np.ndarray:
        """Boolean mask over all atoms: dead in the dictionary, or ‖W dᵢ‖ = 0."""
        mask = np.ones(self.n_atoms, dtype=bool)
        mask[self.live] = False
        return mask | ~(self.norms > 0)

    @property
    def cols64(self) -> np.ndarray:
        """D̃ as an H×N float64 matrix (columns d̃ᵢ; a Fortran-order view of ``rows64``)."""
        if self.rows64 is None:
            raise ParameterError("cols64 needs the float64 rows: build CorrectedAtoms with "
                                 "rows64=True")
        return self.rows64.T

    @property
    def n_live(self) -> int:
        return len(self.live)

    def spectral_norm_sq_upper(self, chunk: int = 8192) -> float:
        """A certified upper bound on ‖D̃‖₂² = λmax(D̃ D̃ᵀ) over the live atoms.

        Computed from the float32 rows A as λmax(AᵀA) in float64 (accumulated over chunks), then
        corrected for the rows' rounding: fresh rows satisfy |A − D̃| ≤ u|D̃| entrywise, so
        ‖D̃‖₂ ≤ ‖A‖₂ + u·sqrt(N); rows reused from the input are exact up to their norms nᵢ, so
        ‖D̃‖₂ ≤ ‖A‖₂ · maxᵢ 1/nᵢ. A relative slack of 1e-12 covers the float64 eigensolve.
        """
        if self.rows is None:
            raise ParameterError(
                "spectral_norm_sq_upper needs the float32 rows: build CorrectedAtoms with "
                "rows=True")
        M = np.zeros((self.dim, self.dim))
        for s in range(0, self.rows.shape[0], chunk):
            X = self.rows[s : s + chunk].astype(np.float64)
            M += X.T @ X
        a = float(np.sqrt(max(_lambda_max_upper(M), 0.0)))
        if self.rows_are_input:
            a /= float(self.norms[self.live].min())
        else:
            a += _U32 * np.sqrt(self.n_live) * 1.0001
        return a * a * (1 + 1e-12)

    def metric_info(self) -> dict:
        """:func:`rip_atoms.metric.metric_description` of the metric in use."""
        return metric_description(self.metric)

    def vectors(self, atoms) -> np.ndarray:
        """float64 H×k matrix of d̃ᵢ for the given atom indices (exact)."""
        atoms = np.asarray(atoms, dtype=np.int64)
        X = self.dictionary.scaled_columns(atoms)
        if self.metric is not None:
            X = self.metric.W @ X
        return X / np.linalg.norm(X, axis=0)

    def gram(self, atoms) -> np.ndarray:
        """float64 G_S = D̃_Sᵀ D̃_S for a support S (atom indices as given)."""
        atoms = np.asarray(atoms, dtype=np.int64)
        X = self.dictionary.scaled_columns(atoms)
        SX = X if self.metric is None else self.metric.S @ X
        G = (X.T @ SX) / np.outer(self._snorms[atoms], self._snorms[atoms])
        G = 0.5 * (G + G.T)
        np.fill_diagonal(G, 1.0)
        return G

    def cosines_row(self, j: int, cols) -> np.ndarray:
        """float64 |cos(j, l)| for l in ``cols`` (atom indices as given)."""
        cols = np.asarray(cols, dtype=np.int64)
        dj = self.dictionary.scaled_columns([j])[:, 0]
        v = dj if self.metric is None else self.metric.S @ dj
        vals = self.dictionary.scaled_columns(cols).T @ v
        return np.abs(vals) / (self._snorms[j] * self._snorms[cols])

    def cosines_pairs(self, pairs: np.ndarray) -> np.ndarray:
        """float64 |cos(i, j)| for an m×2 array of atom-index pairs."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        out = np.empty(len(pairs))
        if len(pairs) == 0:
            return out
        order = np.argsort(pairs[:, 0], kind="stable")
        p = pairs[order]
        firsts, starts = np.unique(p[:, 0], return_index=True)
        bounds = list(starts) + [len(p)]
        for k, j in enumerate(firsts):
            sl = slice(bounds[k], bounds[k + 1])
            out[order[sl]] = self.cosines_row(int(j), p[sl, 1])
        return out
