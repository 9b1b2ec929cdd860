"""Batched kernels for exact ℓ1 recovery: the min-ℓ2 (Fuchs) certificate of many codes at once,
and a batched ADMM search for basis-pursuit points that beat a code (failure witnesses).

Notation (docs/design.md): D ∈ R^{H×N} with unit columns dⱼ, a code δ with support S (|S| = k) and
signs s = sign(δ_S) (s = 𝟙 for non-negative codes). Everything here is float64 unless stated;
nothing here *decides* anything — :mod:`rip_atoms.recovery` verifies every candidate in float64
before it is reported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: codes whose Gram matrix has λmin(G_S) ≤ GRAM_RANK_SUSPECT·λmax(G_S) (σ ratio ≤ 1e-5) are
#: handed to an SVD of D_S for the rank decision instead of being solved through G_S.
GRAM_RANK_SUSPECT = 1e-10


#: u₃₂ = 2⁻²⁴, the unit roundoff of float32
U32 = 2.0**-24
#: the fast path of :func:`fuchs_batch` (G_S⁻¹ by an explicit inverse, λmin bounded below
#: through it) is taken when its lower bound on λmin(G_S) exceeds FAST_COND·tr(G_S); other codes
#: take the eigendecomposition path (rank checks exactly as before)
FAST_COND = 1e-6


@dataclass(frozen=True)
class FuchsBatch:
    """Per-code output of :func:`fuchs_batch` (arrays of length B, in input order).

    value : ‖D_{Sᶜ}ᵀ y₀‖_∞ (signed) or max_{j∈Sᶜ} dⱼᵀ y₀ (non-negative), computed in float64;
        NaN for rank suspects.
    eq_residual : ‖D_Sᵀ y₀ − s‖₂ as computed in float64.
    lam_min : a lower bound on λmin(G_S) (G_S = D_Sᵀ D_S; σmin(D_S)²): the eigenvalue itself on
        the eigendecomposition path, 1/min(‖G_S⁻¹‖_F, ‖G_S⁻¹‖_∞)·(1 − 1e-6) on the fast path.
    lam_max : an upper bound on λmax(G_S): the eigenvalue, or tr(G_S) on the fast path.
    exact_lam : True where lam_min/lam_max are the eigenvalues (eigendecomposition path).
    y_norm : ‖y₀‖₂.
    rank_suspect : λmin ≤ GRAM_RANK_SUSPECT·λmax (or k > H): decide the rank by SVD instead.
    """

    value: np.ndarray
    eq_residual: np.ndarray
    lam_min: np.ndarray
    lam_max: np.ndarray
    y_norm: np.ndarray
    rank_suspect: np.ndarray
    exact_lam: np.ndarray


@dataclass
class SolvedBlock:
    """What the solve-and-screen step of one block of codes (all of support size k) returns, on
    the host, for the fast-path codes ``fast`` (a boolean mask over the block):

    Y0 : (b, H) float64 certificates y₀ = D_S G_S⁻¹ s of the fast codes;
    eq_residual, y_norm, lam_lo, lam_hi : per fast code (see :class:`FuchsBatch`);
    cand_j, cand_b : the (atom, fast-code) pairs that may hold the certificate value, from the
        float32 screen (every atom whose screened value is within 2·e₃₂ of the screened max;
        :func:`screen_error`), or None when the block was not screened (all values in float64).
    values : the full float64 values when not screened, else None.
    """

    fast: np.ndarray
    Y0: np.ndarray
    eq_residual: np.ndarray
    y_norm: np.ndarray
    lam_lo: np.ndarray
    lam_hi: np.ndarray
    cand_j: np.ndarray | None = None
    cand_b: np.ndarray | None = None
    values: np.ndarray | None = None


def screen_error(dim: int, y_norm: np.ndarray, col_norm: float = 1.0) -> np.ndarray:
    """Rigorous bound on |ĉⱼ − dⱼᵀy| for the float32 screen ĉⱼ = fl₃₂(fl₃₂(dⱼ)ᵀ fl₃₂(y)):

        e₃₂ = (γ₃₂(H) + 3u₃₂)·‖y‖₂·maxⱼ‖dⱼ‖·(1 + 10⁻⁶),   γ₃₂(H) = H u₃₂/(1 − H u₃₂),

    (the float32 dot product in any summation order, with or without FMA, errs by at most
    γ₃₂(H)·Σ|dᵢ||yᵢ| ≤ γ₃₂(H)‖fl(d)‖‖fl(y)‖; rounding d and y to float32 adds at most
    u₃₂‖d‖‖y‖ each; (1 + u₃₂)² and the rest are absorbed by the 3u₃₂ and the 10⁻⁶)."""
    g = dim * U32 / (1.0 - dim * U32)
    return (g + 3.0 * U32) * np.asarray(y_norm) * col_norm * (1.0 + 1e-6)


def _screen_candidates(C: np.ndarray, idx: np.ndarray, err: np.ndarray, nonneg: bool):
    """From a screened N×b matrix ĉ (float32, overwritten): mask the support entries, then the
    (atom, code) pairs with ĉⱼ ≥ maxⱼ ĉⱼ − 2·e (signed codes: |ĉⱼ|). The true maximiser of
    dⱼᵀy is among them: cⱼ ≥ c_max ≥ ĉ_max − e and cⱼ ≤ ĉⱼ + e."""
    if not nonneg:
        np.abs(C, out=C)
    C[idx, np.arange(idx.shape[0])[:, None]] = -np.inf
    top = C.max(axis=0)
    thr = (top - 2.0 * err).astype(C.dtype)
    thr = np.nextafter(thr, np.float32(-np.inf)).astype(C.dtype)  # rounding of thr itself
    cand_j, cand_b = np.nonzero(C >= thr[None, :])
    return cand_j, cand_b


#: floats per gathered D_S stack in :func:`solve_block_numpy` (16 MB of float64)
_GATHER_FLOATS = 1 << 21


def _solve_gram(DT: np.ndarray, idx: np.ndarray, s: np.ndarray):
    """G_S, X = G_S⁻¹, λmin bound, y₀ and e for a few codes (see :func:`solve_block_numpy`).
    Returns (fast mask, Y0, ‖e‖₂, ‖y₀‖₂, λmin lower bound, tr G_S), the last five for the fast
    codes only."""
    A = DT[idx]  # (b, k, H)
    G = A @ A.transpose(0, 2, 1)
    tr = np.trace(G, axis1=1, axis2=2)
    try:
        X = np.linalg.inv(G)
    except np.linalg.LinAlgError:
        X = np.full_like(G, np.nan)
        for b in range(len(G)):
            try:
                X[b] = np.linalg.inv(G[b])
            except np.linalg.LinAlgError:
                pass
    norm = np.minimum(np.sqrt(np.einsum("bij,bij->b", X, X)), np.abs(X).sum(axis=2).max(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_lo = (1.0 - 1e-6) / norm
    fast = np.isfinite(lam_lo) & (lam_lo > FAST_COND * tr)
    if not fast.all():
        A, X, s = A[fast], X[fast], s[fast]
    a = (X @ s[:, :, None])[:, :, 0]
    Y0 = (a[:, None, :] @ A)[:, 0, :]  # (b, H)
    e = (A @ Y0[:, :, None])[:, :, 0] - s
    return (fast, Y0, np.linalg.norm(e, axis=1), np.linalg.norm(Y0, axis=1), lam_lo[fast],
            tr[fast])


_SCREEN_BUFFER = threading.local()


def _buffer(n: int, b: int) -> np.ndarray:
    """An n×b float32 scratch array for the screen, reused across blocks by each thread (a
    fresh one per block costs page faults of the same order as the GEMM's memory traffic)."""
    buf = getattr(_SCREEN_BUFFER, "array", None)
    if buf is None or buf.size < n * b:
        buf = _SCREEN_BUFFER.array = np.empty(n * b, dtype=np.float32)
    return buf[: n * b].reshape(n, b)


def solve_block_numpy(DT: np.ndarray, DT32: np.ndarray | None, idx: np.ndarray, s: np.ndarray,
                      nonneg: bool, col_norm: float = 1.0) -> SolvedBlock:
    """The fast path of :func:`fuchs_batch` on one block (B codes, |S| = k each) with numpy.

    G_S = D_Sᵀ D_S (batched float64 GEMMs), X = G_S⁻¹ (batched inverse), a = X s,
    y₀ = D_S a, e = D_Sᵀ y₀ − s; λmin(G_S) ≥ 1/min(‖X‖_F, ‖X‖_∞) (both bound ‖G_S⁻¹‖₂; a
    relative 10⁻⁶ covers the inverse's rounding, which the FAST_COND gate keeps below 10⁻⁹)
    and λmax ≤ tr G_S. Codes with 1/min(…) ≤ FAST_COND·tr G_S are left to the
    eigendecomposition path (``fast`` False). Values: with ``DT32`` the float32 screen
    Ĉ = fl₃₂(Dᵀ) fl₃₂(Y₀) proposes candidates (:func:`_screen_candidates`); without it the
    float64 GEMM Dᵀ Y₀ gives every value.
    """
    n, k = idx.shape
    sub = max(1, _GATHER_FLOATS // (k * DT.shape[1]))  # D_S stacks of ~16 MB: heap reuse
    parts = [_solve_gram(DT, idx[i : i + sub], s[i : i + sub]) for i in range(0, n, sub)]
    fast = np.concatenate([p[0] for p in parts])
    Y0, eq_res, y_norm, lam_lo, tr = (np.concatenate([p[i] for p in parts])
                                      for i in range(1, 6))
    if not fast.all():
        idx = idx[fast]
    out = SolvedBlock(fast, Y0, eq_res, y_norm, lam_lo, tr)
    if not fast.any():
        return out
    if DT32 is None:
        C = DT @ Y0.T
        if not nonneg:
            C = np.abs(C)
        C[idx, np.arange(len(idx))[:, None]] = -np.inf
        out.values = C.max(axis=0)
        return out
    C = np.matmul(DT32, Y0.T.astype(np.float32), out=_buffer(DT32.shape[0], len(Y0)))
    out.cand_j, out.cand_b = _screen_candidates(
        C, idx, screen_error(DT.shape[1], out.y_norm, col_norm), nonneg)
    return out


def confirm_values(DT: np.ndarray, Y0: np.ndarray, cand_j: np.ndarray, cand_b: np.ndarray,
                   nonneg: bool) -> np.ndarray:
    """The float64 confirmation of a float32 screen: value_b = max over the candidate pairs
    (j, b) of fl₆₄(dⱼᵀ y_b) (signed codes: |dⱼᵀ y_b|), −inf for a code without candidates."""
    value = np.full(Y0.shape[0], -np.inf)
    if len(cand_j):
        c = np.einsum("ph,ph->p", DT[cand_j], Y0[cand_b])
        if not nonneg:
            c = np.abs(c)
        np.maximum.at(value, cand_b, c)
    return value


def _fuchs_eigh(DT: np.ndarray, idx: np.ndarray, s: np.ndarray, nonneg: bool):
    """The eigendecomposition path on one block: G_S = V Λ Vᵀ, a = V Λ⁻¹ Vᵀ s, y₀ = D_S a, the
    values from one float64 GEMM Dᵀ Y₀. Returns (value, eq_res, λmin, λmax, y_norm, suspect)."""
    n = len(idx)
    value, eq_res, y_norm = (np.full(n, np.nan) for _ in range(3))
    fill = -np.inf if nonneg else 0.0
    A = DT[idx]
    G = A @ A.transpose(0, 2, 1)
    lam, V = np.linalg.eigh(G)
    lo, hi = lam[:, 0], lam[:, -1]
    bad = ~(lo > GRAM_RANK_SUSPECT * hi)
    good = ~bad
    if good.any():
        Vg, lg, sg, Ag = V[good], lam[good], s[good], A[good]
        coef = np.einsum("bkj,bk->bj", Vg, sg) / lg
        a = np.einsum("bkj,bj->bk", Vg, coef)
        Y0 = np.einsum("bkh,bk->bh", Ag, a)
        e = np.einsum("bkh,bh->bk", Ag, Y0) - sg
        eq_res[good] = np.linalg.norm(e, axis=1)
        y_norm[good] = np.linalg.norm(Y0, axis=1)
        C = DT @ Y0.T
        C[idx[good], np.arange(int(good.sum()))[:, None]] = fill
        value[good] = C.max(axis=0) if nonneg else np.abs(C).max(axis=0)
    return value, eq_res, lo, hi, y_norm, bad


def gram_extremes(DT: np.ndarray, supports: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(λmin, λmax) of G_S = D_Sᵀ D_S per support (batched float64 ``eigvalsh`` by |S|)."""
    lo = np.full(len(supports), np.nan)
    hi = np.full(len(supports), np.nan)
    ks = np.array([len(S) for S in supports], dtype=np.int64)
    for k in np.unique(ks):
        members = np.flatnonzero(ks == k)
        if k == 0:
            continue
        A = DT[np.stack([supports[i] for i in members])]
        lam = np.linalg.eigvalsh(A @ A.transpose(0, 2, 1))
        lo[members], hi[members] = lam[:, 0], lam[:, -1]
    return lo, hi


def fuchs_batch(
    DT: np.ndarray,
    supports: list[np.ndarray],
    signs: list[np.ndarray],
    *,
    nonneg: bool,
    max_floats: int = 1 << 22,
    DT32: np.ndarray | None = None,
    col_norm: float = 1.0,
    solver=None,
) -> FuchsBatch:
    """Min-ℓ2 (Fuchs) dual certificates of many codes, batched as GEMMs.

    For each code: G_S = D_Sᵀ D_S, a = G_S⁻¹ s, y₀ = D_S a = D_S (D_Sᵀ D_S)⁻¹ s (the least-norm y
    with D_Sᵀ y = s), and the certificate value ‖D_{Sᶜ}ᵀ y₀‖_∞ (non-negative codes, s = 𝟙:
    max_{j∈Sᶜ} dⱼᵀ y₀). Codes are grouped by k = |S| and solved in blocks of B codes, the N×B
    values of a block at most ``max_floats`` entries:

    * fast path (:func:`solve_block_numpy`, or ``solver`` — e.g. the torch engine's — with the
      same contract): G_S⁻¹ by a batched inverse, which also bounds λmin(G_S) below;
    * eigendecomposition path (:func:`_fuchs_eigh`) for the codes the fast path leaves
      (λmin not clearly away from 0): the rank-suspect test λmin ≤ GRAM_RANK_SUSPECT·λmax.

    Values. Without ``DT32`` every dⱼᵀ y₀ comes from one float64 GEMM Dᵀ Y₀. With ``DT32``
    (Dᵀ rounded to float32) the GEMM is done in float32 as a *screen*: ĉⱼ errs by at most
    e₃₂ (:func:`screen_error`), so the atoms that can hold the maximum are those with
    ĉⱼ ≥ max ĉ − 2e₃₂; only these are recomputed in float64 (:func:`confirm_values`) and the
    value is their float64 maximum — the float64 value of the maximising atom, as without the
    screen (up to the summation order of one float64 dot product, which the rigorous bound's
    γ_H‖y₀‖ term covers either way).

    Parameters
    ----------
    DT : N×H float64, C-contiguous: the atoms as rows (Dᵀ).
    supports : per code, the sorted atom indices S.
    signs : per code, s = sign(δ_S) (±1; ones for non-negative codes).
    nonneg : one-sided value max_{j∈Sᶜ} dⱼᵀ y₀ instead of the max of |dⱼᵀ y₀|.
    DT32 : Dᵀ in float32 (N×H) for the screen, or None (float64 values throughout).
    col_norm : an upper bound on maxⱼ‖dⱼ‖₂ (1 for unit atoms).
    solver : callable(idx, s, nonneg) → :class:`SolvedBlock` replacing :func:`solve_block_numpy`.
    """
    n_codes = len(supports)
    dim = DT.shape[1]
    value = np.full(n_codes, np.nan)
    eq_res = np.full(n_codes, np.nan)
    lam_min = np.full(n_codes, np.nan)
    lam_max = np.full(n_codes, np.nan)
    y_norm = np.full(n_codes, np.nan)
    suspect = np.zeros(n_codes, dtype=bool)
    exact = np.zeros(n_codes, dtype=bool)
    ks = np.array([len(s) for s in supports], dtype=np.int64)
    if solver is None:
        def solver(idx, s, nonneg):
            return solve_block_numpy(DT, DT32, idx, s, nonneg, col_norm)
    for k in np.unique(ks):
        members = np.flatnonzero(ks == k)
        if k == 0:
            continue
        if k > dim:  # D_S has a non-trivial kernel: certainly rank-deficient
            suspect[members] = True
            exact[members] = True
            continue
        step = max(1, int(max_floats // DT.shape[0]))  # the N×B screen ≤ max_floats
        for start in range(0, len(members), step):
            sub = members[start : start + step]
            idx = np.stack([supports[i] for i in sub])  # (B, k)
            s = np.stack([signs[i] for i in sub]).astype(np.float64)  # (B, k)
            if k == DT.shape[0]:  # S = every atom: no off-support value
                blk = SolvedBlock(np.zeros(len(sub), dtype=bool), *(np.empty(0),) * 5)
            else:
                blk = solver(idx, s, nonneg)
            f = sub[blk.fast]
            if len(f):
                eq_res[f], y_norm[f] = blk.eq_residual, blk.y_norm
                lam_min[f], lam_max[f] = blk.lam_lo, blk.lam_hi
                value[f] = blk.values if blk.values is not None else confirm_values(
                    DT, blk.Y0, blk.cand_j, blk.cand_b, nonneg)
            slow = ~blk.fast
            if slow.any():
                w = sub[slow]
                (value[w], eq_res[w], lam_min[w], lam_max[w], y_norm[w],
                 suspect[w]) = _fuchs_eigh(DT, idx[slow], s[slow], nonneg)
                exact[w] = True
                if k == DT.shape[0]:
                    value[w[~suspect[w]]] = -np.inf if nonneg else 0.0
    return FuchsBatch(value, eq_res, lam_min, lam_max, y_norm, suspect, exact)


class RowSpaceProjector:
    """Projection onto the affine set {x : D x = y} of many right-hand sides at once.

    With G = D Dᵀ and a factor F with F Fᵀ = G⁺ and K = Dᵀ F (so K Kᵀ = Dᵀ (D Dᵀ)⁺ D, the
    orthogonal projector onto the row space of D):

        P(v) = v − K (Kᵀ v) + K (Fᵀ y) = v − Dᵀ (D Dᵀ)⁺ (D v − y).

    F is L⁻ᵀ from the Cholesky factor G = L Lᵀ when the Cholesky factorisation of
    G − rcond·tr(G)·I succeeds (then every eigenvalue of G exceeds rcond·λmax and an
    eigendecomposition would keep them all); otherwise Q Λ^{-1/2} from G = Q Λ Qᵀ with the
    eigenvalues ≤ rcond·λmax dropped. ``K`` is kept in ``dtype`` (float32 for the search), computed
    from ``Dt_low`` (D already rounded to that dtype, e.g. the certifier's float32 copy) when
    given — a proposal generator, so its rounding only steers the search; :meth:`project64` is
    the float64 form through D itself, used to re-verify candidates.
    """

    def __init__(self, Dt: np.ndarray, *, dtype: type = np.float32, rcond: float = 1e-12,
                 Dt_low: np.ndarray | None = None) -> None:
        from scipy.linalg import LinAlgError, cho_factor, solve_triangular

        gram = Dt @ Dt.T
        h = gram.shape[0]
        self.F = None
        try:
            cho_factor(gram - rcond * float(np.trace(gram)) * np.eye(h), lower=True,
                       check_finite=False)
            L, _ = cho_factor(gram, lower=True, check_finite=False)
            # F = L⁻ᵀ: solve Lᵀ F = I (upper triangular), so F Fᵀ = (L Lᵀ)⁻¹
            self.F = solve_triangular(np.tril(L), np.eye(h), lower=True, trans="T",
                                      check_finite=False)
        except LinAlgError:  # singular or ill-conditioned: the eigendecomposition drops λ ≈ 0
            pass
        if self.F is None or not np.isfinite(self.F).all():
            lam, Q = np.linalg.eigh(gram)
            keep = lam > rcond * lam[-1]
            self.F = Q[:, keep] / np.sqrt(lam[keep])
        self.Minv_factor = self.F  # (D Dᵀ)⁺ = F Fᵀ
        if Dt_low is not None and Dt_low.dtype == np.dtype(dtype) and Dt_low.shape == Dt.shape:
            self.K = np.ascontiguousarray(Dt_low.T @ self.F.astype(dtype))
        else:
            self.K = np.ascontiguousarray((Dt.T @ self.F).astype(dtype))
        self.Dt = Dt
        self.rank = int(self.F.shape[1])

    def particular(self, Y: np.ndarray) -> np.ndarray:
        """K Fᵀ Y = Dᵀ (D Dᵀ)⁺ Y: the least-norm solutions of D x = y (columns of Y)."""
        return self.K @ (self.F.T @ Y).astype(self.K.dtype)

    def project64(self, V: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """P(v) in float64 through D: v − Dᵀ (D Dᵀ)⁺ (D v − y) (columns of V and Y)."""
        R = self.Dt @ V - Y
        return V - self.Dt.T @ (self.F @ (self.F.T @ R))


def admm_bp_batch(
    proj: RowSpaceProjector,
    Y: np.ndarray,
    thresholds: np.ndarray,
    *,
    nonneg: bool,
    iters: int,
    check_every: int,
    accept: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
) -> None:
    """ADMM (Douglas–Rachford) on basis pursuit for B right-hand sides at once.

    Splitting min ‖z‖₁ (or 𝟙ᵀz with z ≥ 0) subject to x = z, D x = y, with scaled dual u:

        x ← P(z − u),   z ← soft_τ(x + u)  (non-negative: max(x + u − τ, 0)),   u ← u + x − z,

    where P is the projection onto {D x = y} (:class:`RowSpaceProjector`) and τ the per-code
    threshold. Every ``check_every`` iterations ``accept(cols, X, Z)`` is called with the
    indices (into the B codes) still running and their current x (feasible) and z (sparse)
    iterates; it returns a boolean mask of the codes it is done with, which leave the batch.
    Iterates are in the projector's dtype (float32 by default): they are proposals only.
    """
    dt = proj.K.dtype
    n_atoms = proj.K.shape[0]
    live = np.arange(Y.shape[1])
    PY = proj.particular(Y)
    Z = np.zeros((n_atoms, len(live)), dtype=dt)
    U = np.zeros_like(Z)
    tau = thresholds.astype(dt)[None, :]
    K = proj.K
    for it in range(1, iters + 1):
        V = Z - U
        X = V - K @ (K.T @ V) + PY
        W = X + U
        if nonneg:
            Z = np.maximum(W - tau, 0)
        else:
            Z = np.sign(W) * np.maximum(np.abs(W) - tau, 0)
        U = W - Z
        if it % check_every == 0 or it == iters:
            done = accept(live, X, Z)
            if done.any():
                keep = ~done
                live, PY, Z, U, tau = live[keep], PY[:, keep], Z[:, keep], U[:, keep], tau[:, keep]
                if len(live) == 0:
                    return
