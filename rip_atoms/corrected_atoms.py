"""D̃, the unit atoms under a metric: float32 rows for blocked passes, float64 on demand.

For a dictionary D (columns dᵢ) and an AIP metric with whitening W = S̃^{1/2} (or none: raw
Euclidean geometry), the corrected atoms are d̃ᵢ = W dᵢ / ‖W dᵢ‖₂ (docs/design.md, "AIP-corrected
dictionary"). Passes over many atoms use float32 rows ``rows`` (N_live×H, C-contiguous): any
factor F with FᵀF = S̃ gives the same inner products, so the rows are the unit atoms
F dᵢ/‖F dᵢ‖ of the upper-triangular Cholesky factor F = U (S̃ = UᵀU; W itself only if Cholesky
fails), a rotation of the d̃ᵢ. They are computed block by block of atoms (4096 at a time) with
one float64 ``dtrmm`` per block — H²/2 multiply-adds per atom, half of W dᵢ — then rounded to
float32, so ill-conditioned metrics lose nothing. Every reported number is recomputed in float64
from the atoms as given with cos(j, l) = dⱼᵀ S̃ dₗ / (‖dⱼ‖_S ‖dₗ‖_S) (:meth:`CorrectedAtoms.gram`,
:meth:`cosines_row`). Exact ℓ1 recovery (:mod:`rip_atoms.recovery`) and the theorem suite need
D̃ itself in float64: built with ``rows64=True``, ``rows64`` holds every atom's float64 unit row
W dᵢ/‖W dᵢ‖ (N×H; dead atoms zero) from one unchunked float64 pass, and ``norms`` comes from that
same pass; built with both, the float32 rows are those float64 rows rounded (F = W, with η and
δ of W: one whitening serves the blocked passes and the float64 certificates alike).

``tolerance`` bounds |float32 row cosine − exact cosine| (tol32):

    tol32 = γ_H + 2.5u + 4η + 3δ

* γ_H + 2.5u (u = 2⁻²⁴, γ_H = Hu/(1−Hu)): the float32 GEMM's accumulation bound for unit
  vectors, plus rounding the unit rows to float32;
* η = maxᵢ γ⁽⁶⁴⁾_H‖F‖_F‖xᵢ‖/‖F xᵢ‖ (γ⁽⁶⁴⁾ the float64 γ): the float64 whitening's relative
  error, |fl(F x) − F x| ≤ γ⁽⁶⁴⁾_H|F||x| entrywise, so ‖fl(F x) − F x‖ ≤ γ⁽⁶⁴⁾_H‖F‖_F‖x‖;
  normalising doubles it (a row is within u + 2η of the exact unit vector, which moves a cosine
  by at most 2(u + 2η) + (u + 2η)²); η ≤ γ⁽⁶⁴⁾_H·sqrt(H·κ(S̃)) ≈ 1e-11·sqrt(κ) at H = 2304;
* δ ≤ γ⁽⁶⁴⁾_{H+1}‖U‖_F²/λmin(S̃) ≤ γ⁽⁶⁴⁾_{H+1}·H·κ(S̃): the Cholesky factor's backward error
  (|cos_U − cos_S| ≤ 3δ; see :func:`_whitening_factor`), ≈ 6e-10·κ(S̃) at H = 2304.

Raw rows have η = δ = 0. Rows reused from a unit float32 input add twice the largest deviation
of a row's squared norm from 1 instead.
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
from rip_atoms.kernels.parallel_copy import parallel_copyto
from rip_atoms.kernels.threads import accumulate_gram, fixed_matmul
from rip_atoms.metric import AIPMetric, metric_description
from rip_atoms.precision import U32, float32_cosine_tolerance, float64_cosine_tolerance, gamma


class _Factor:
    """x ↦ F x for a whitening factor F with FᵀF = S̃ (up to ``tolerance``, see
    :func:`_whitening_factor`); ``frobenius`` = ‖F‖_F."""

    def __init__(self, F: np.ndarray, triangular: bool) -> None:
        self.F = np.asfortranarray(F)
        self.triangular = triangular
        self.frobenius = float(np.linalg.norm(F))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if self.triangular:
            from scipy.linalg import blas

            return blas.dtrmm(1.0, self.F, X, lower=0, overwrite_b=1)
        return self.F @ X


def _whitening_factor(metric: AIPMetric | None) -> tuple[_Factor | None, float]:
    """The factor the blocked pass whitens with, and δ bounding its effect on cosines.

    Any F with FᵀF = S̃ gives the same cosines ⟨F x, F y⟩/(‖F x‖‖F y‖) = cos_S(x, y), so the
    pass uses the upper-triangular Cholesky factor U of S̃ (S̃ = UᵀU): U x costs H²/2
    multiply-adds per atom, half of W x, in float64 (one ``dtrmm`` per block of atoms). The
    computed U satisfies UᵀU = S̃ + ΔS with |ΔS| ≤ γ_{H+1}|Uᵀ||U| (Higham, Thm 10.3), so
    ‖ΔS‖₂ ≤ γ_{H+1}‖U‖_F²; relative to ‖x‖²_S ≥ λmin(S̃)‖x‖² that is
    δ = γ_{H+1}‖U‖_F²/λmin(S̃), and |cos_U − cos_S| ≤ 3δ (δ ≤ 1/3). λmin(S̃) is taken as
    (1 − 4(H + 2)ε₆₄κ)/λmax(Σ) (the eigenvalues of S̃ as stored are those of Σ⁻¹ to that
    relative accuracy). Should Cholesky fail (S̃ numerically indefinite), W itself is used and
    δ = ‖WᵀW − S̃‖_F (computed in float64, plus its own rounding γ_H‖W‖_F²) / λmin(S̃).
    Rows are the raw atoms (no factor, δ = 0) without a metric.
    """
    if metric is None:
        return None, 0.0
    from scipy.linalg import cholesky

    h = metric.dim
    lam_min = _min_eigenvalue_lower(metric)
    try:
        U = cholesky(metric.S, lower=False, check_finite=False)
        if not np.isfinite(U).all():
            raise np.linalg.LinAlgError("non-finite Cholesky factor")
        f = _Factor(U, triangular=True)
        delta = gamma(h + 1) * f.frobenius**2 / lam_min
    except (np.linalg.LinAlgError, ValueError):
        f = _Factor(metric.W, triangular=False)
        delta = _symmetric_factor_delta(metric, lam_min)
    return f, (delta if delta <= 1.0 / 3.0 else 1.0)


def _min_eigenvalue_lower(metric: AIPMetric) -> float:
    """A lower bound on λmin(S̃) as stored: (1 − 4(H + 2)ε₆₄κ)/λmax(Σ)."""
    shrink = 1.0 - 4.0 * (metric.dim + 2) * float(np.finfo(np.float64).eps) \
        * metric.condition_number
    return max(shrink, 1e-300) / float(metric.moment_eigenvalues[-1])


def _symmetric_factor_delta(metric: AIPMetric, lam_min: float | None = None) -> float:
    """δ of the symmetric whitening W as stored: (‖WᵀW − S̃‖_F + γ_H‖W‖_F²)/λmin(S̃), the
    residual computed in float64 plus its own rounding (so |cos_W − cos_S| ≤ 3δ)."""
    if lam_min is None:
        lam_min = _min_eigenvalue_lower(metric)
    W = metric.W
    resid = float(np.linalg.norm(W.T @ W - metric.S))
    return (resid + gamma(metric.dim) * float(np.linalg.norm(W)) ** 2) / lam_min


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


def lambda_max_upper(M: np.ndarray) -> float:
    """A certified upper bound on λmax of a symmetric PSD matrix M (float64).

    Lanczos (scipy eigsh, from a seeded start so the bound is the same on every run) gives
    θ ≈ λmax; t = θ(1 + 1e-9) + 4·H·ε₆₄·‖M‖_F is certified when the
    Cholesky factorisation of t·I − M succeeds (it exists iff t·I − M is positive definite, and
    Cholesky is backward stable within the added slack). Falls back to a full eigensolve.
    """
    from scipy.linalg import cho_factor
    from scipy.sparse.linalg import eigsh

    h = M.shape[0]
    slack = 4 * h * np.finfo(np.float64).eps * float(np.linalg.norm(M))
    if h > 64:
        try:
            v0 = np.random.default_rng(0).standard_normal(h)  # ARPACK's own start is random
            theta = float(eigsh(M, k=1, which="LA", v0=v0, return_eigenvectors=False,
                                tol=1e-10)[0])
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

    ``rows64_out`` (with ``rows64=True``): a writeable C-order float64 N×H array that receives
    ``rows64`` instead of a new one, e.g. a memory-mapped file in shared memory that other
    processes map (:mod:`rip_atoms.recovery.shared_atoms`); the values are the same.
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
        rows64_out: np.ndarray | None = None,
    ) -> None:
        d = as_dictionary(D)
        self.dictionary = d
        self._spectral: tuple[int, float] | None = None  # (chunk, ‖D̃‖₂² bound), computed once
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
        self.whitening_error = 0.0  # η: relative float64 error of the whitened atoms
        self.factor_tolerance = 0.0  # δ: cosine error of the whitening factor (FᵀF vs S̃)
        self.norms = np.zeros(d.n_atoms)
        self._snorms = np.zeros(d.n_atoms)  # ‖W 2^−eᵢ dᵢ‖₂, the norms of the scaled atoms
        exps = d.column_exponents
        if rows64_out is not None and (
                not rows64 or rows64_out.shape != (d.n_atoms, d.dim)
                or rows64_out.dtype != np.float64 or not rows64_out.flags.c_contiguous
                or not rows64_out.flags.writeable):
            raise ParameterError(
                f"rows64_out must be a writeable C-order float64 array of shape "
                f"({d.n_atoms}, {d.dim}) given with rows64=True")
        if rows64:
            self._float64_pass(rows64_out)
            if rows:  # rows of W: within u + 2η of the unit atoms, W's backward error δ
                self.rows = (self.rows64 if len(self.live) == d.n_atoms
                             else self.rows64[self.live]).astype(np.float32)
                if self.metric is not None:
                    d_ = _symmetric_factor_delta(self.metric)
                    self.factor_tolerance = d_ if d_ <= 1.0 / 3.0 else 1.0
                self.tolerance += 4.0 * self.whitening_error + 3.0 * self.factor_tolerance
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
        factor, self.factor_tolerance = _whitening_factor(self.metric)
        if rows:
            self.rows = np.empty((len(self.live), d.dim), dtype=np.float32)
        eta = 0.0
        gamma64 = gamma(d.dim)
        live = self.live
        contiguous = len(live) > 0 and live[-1] - live[0] == len(live) - 1 and not exps.any()
        for s in range(0, len(live), chunk):
            idx = live[s : s + chunk]
            if contiguous:  # a plain slice (no gather); float64, Fortran order for the BLAS
                X = np.array(d.atoms[:, idx[0] : idx[-1] + 1], dtype=np.float64, order="F")
            else:
                X = np.asfortranarray(d.scaled_columns(idx))
            xnorm = np.sqrt(np.einsum("ij,ij->j", X, X))
            if factor is not None:
                X = factor(X)
            nx = np.sqrt(np.einsum("ij,ij->j", X, X))
            self._snorms[idx] = nx
            with np.errstate(over="ignore", under="ignore"):
                self.norms[idx] = np.ldexp(nx, exps[idx])
            if factor is not None:
                ok = nx > 0
                if ok.any():
                    eta = max(eta, float(np.max(gamma64 * factor.frobenius * xnorm[ok]
                                                / nx[ok])))
            if rows:
                self.rows[s : s + len(idx)] = (X / nx).T
        self.whitening_error = eta
        # float32 rows of the whitened unit atoms: ‖row − d̃ᵢ‖ ≤ u + 2η (module docstring)
        self.tolerance += 4.0 * eta + 3.0 * self.factor_tolerance

    def _float64_pass(self, out: np.ndarray | None = None) -> None:
        """``rows64`` and ``norms`` in one unchunked float64 pass over the atoms scaled by exact
        powers of two (:meth:`Dictionary.scaled_columns`): X = W D', nᵢ = ‖xᵢ‖₂,
        rows64 = (X·diag(1/nᵢ))ᵀ with dead atoms (in the dictionary, or nᵢ = 0) zero.
        Computed as D'ᵀWᵀ, so the N×H rows come out of one GEMM in C order (no transpose copy;
        no copy of D' at all when it is float64 and unscaled). ``out`` (the constructor's
        ``rows64_out``, e.g. a memory-mapped file that other processes read) receives the rows
        instead of a new array; the values are the same."""
        d = self.dictionary
        if d.column_exponents.any():
            Xt = d.scaled_columns(np.arange(d.n_atoms)).T
        else:
            Xt = np.asarray(d.atoms, dtype=np.float64).T  # a view when D is float64
        if self.metric is not None:
            R = fixed_matmul(Xt, self.metric.W.T, out=out)  # same bytes on any thread count
        else:  # the transpose, tile by tile on every core (kernels.parallel_copy)
            R = out if out is not None else np.empty(Xt.shape, dtype=np.float64)
            parallel_copyto(R, Xt)
        snorms = np.sqrt(np.einsum("ij,ij->i", R, R))
        if self.metric is not None:  # η = max γ⁽⁶⁴⁾_H‖W‖_F‖xᵢ‖/‖W xᵢ‖ (module docstring)
            xnorm = np.asarray(d.scaled_norms, dtype=np.float64)
            ok = snorms > 0
            if ok.any():
                self.whitening_error = float(np.max(
                    gamma(d.dim) * float(np.linalg.norm(self.metric.W)) * xnorm[ok]
                    / snorms[ok]))
        dead = np.zeros(d.n_atoms, dtype=bool)
        dead[d.dead_atoms] = True
        dead |= ~(snorms > 0)
        self._snorms = np.where(dead, 0.0, snorms)
        with np.errstate(over="ignore", under="ignore"):
            self.norms = np.where(dead, 0.0, np.ldexp(snorms, d.column_exponents))
        inv = np.zeros_like(snorms)
        inv[~dead] = 1.0 / snorms[~dead]
        R *= inv[:, None]
        self.rows64 = R

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
        corrected for the rows' rounding: fresh rows are within u + 2η of the unit whitened atoms
        (rows of the factor F, a rotation of D̃ᵀ up to δ), so
        ‖D̃‖₂² ≤ (‖A‖₂ + (u + 2η)·sqrt(N))² + 3δN; rows reused from the input are exact up
        to their norms nᵢ, so ‖D̃‖₂ ≤ ‖A‖₂ · maxᵢ 1/nᵢ. A relative slack of 1e-12 covers the
        float64 eigensolve.
        """
        if self.rows is None:
            raise ParameterError(
                "spectral_norm_sq_upper needs the float32 rows: build CorrectedAtoms with "
                "rows=True")
        cached = self._spectral
        if cached is not None and cached[0] == chunk:  # computed once per instance
            return cached[1]
        M = np.zeros((self.dim, self.dim))
        for s in range(0, self.rows.shape[0], chunk):  # the same bytes on any thread count
            accumulate_gram(M, self.rows[s : s + chunk].astype(np.float64))
        a = float(np.sqrt(max(lambda_max_upper(M), 0.0)))
        if self.rows_are_input:
            a /= float(self.norms[self.live].min())
        else:
            a += (U32 + 2 * self.whitening_error) * np.sqrt(self.n_live) * 1.0001
        # the factor's Gram differs from D̃ᵀD̃ by at most 3δ per entry: ‖E‖₂ ≤ 3δ·N
        value = a * a * (1 + 1e-12) + 3 * self.factor_tolerance * self.n_live
        self._spectral = (chunk, value)
        return value

    def metric_info(self) -> dict:
        """:func:`rip_atoms.metric.metric_description` of the metric in use."""
        return metric_description(self.metric)

    def vectors(self, atoms) -> np.ndarray:
        """float64 H×k matrix of d̃ᵢ for the given atom indices (exact; taken from ``rows64``
        when the instance has them and the atoms are live, else whitened now)."""
        atoms = np.asarray(atoms, dtype=np.int64)
        if self.rows64 is not None and not self.dead[atoms].any():
            return np.ascontiguousarray(self.rows64[atoms].T)
        X = self.dictionary.scaled_columns(atoms)
        if self.metric is not None:
            X = self.metric.W @ X
        return X / np.linalg.norm(X, axis=0)

    def gram(self, atoms) -> np.ndarray:
        """float64 G_S = D̃_Sᵀ D̃_S for a support S (atom indices as given): Gᵢⱼ = dᵢᵀ S̃ dⱼ /
        (‖dᵢ‖_S ‖dⱼ‖_S), symmetrised, with unit diagonal and entries clamped to [−1, 1] (a cosine
        of unit vectors lies there; rounding can push it out by a few ulps)."""
        atoms = np.asarray(atoms, dtype=np.int64)
        X = self.dictionary.scaled_columns(atoms)
        SX = X if self.metric is None else self.metric.S @ X
        G = (X.T @ SX) / np.outer(self._snorms[atoms], self._snorms[atoms])
        G = np.clip(0.5 * (G + G.T), -1.0, 1.0)
        np.fill_diagonal(G, 1.0)
        return G

    def cosines_row(self, j: int, cols) -> np.ndarray:
        """float64 |cos(j, l)| = |dⱼᵀ S̃ dₗ| / (‖dⱼ‖_S ‖dₗ‖_S) for l in ``cols`` (atom indices as
        given), clamped to ≤ 1: every reported cosine, and every bound taken from one, is a
        cosine of unit vectors (rounding can exceed 1 by a few ulps)."""
        cols = np.asarray(cols, dtype=np.int64)
        dj = self.dictionary.scaled_columns([j])[:, 0]
        v = dj if self.metric is None else self.metric.S @ dj
        vals = self.dictionary.scaled_columns(cols).T @ v
        return np.minimum(np.abs(vals) / (self._snorms[j] * self._snorms[cols]), 1.0)

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
