"""Batched kernels for exact ℓ1 recovery: the min-ℓ2 (Fuchs) certificate of many codes at once,
and a batched ADMM search for basis-pursuit points that beat a code (failure witnesses).

Notation (DESIGN.md): D ∈ R^{H×N} with unit columns dⱼ, a code δ with support S (|S| = k) and
signs s = sign(δ_S) (s = 𝟙 for non-negative codes). Everything here is float64 unless stated;
nothing here *decides* anything — :mod:`rip_atoms.recovery` verifies every candidate in float64
before it is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: codes whose Gram matrix has λmin(G_S) ≤ GRAM_RANK_SUSPECT·λmax(G_S) (σ ratio ≤ 1e-5) are
#: handed to an SVD of D_S for the rank decision instead of being solved through G_S.
GRAM_RANK_SUSPECT = 1e-10


@dataclass(frozen=True)
class FuchsBatch:
    """Per-code output of :func:`fuchs_batch` (arrays of length B, in input order).

    value : ‖D_{Sᶜ}ᵀ y₀‖_∞ (signed) or max_{j∈Sᶜ} dⱼᵀ y₀ (non-negative); NaN for rank suspects.
    eq_residual : ‖D_Sᵀ y₀ − s‖₂ as computed in float64.
    lam_min, lam_max : extreme eigenvalues of G_S = D_Sᵀ D_S (σ² of D_S).
    y_norm : ‖y₀‖₂.
    rank_suspect : λmin ≤ GRAM_RANK_SUSPECT·λmax (or k > H): decide the rank by SVD instead.
    """

    value: np.ndarray
    eq_residual: np.ndarray
    lam_min: np.ndarray
    lam_max: np.ndarray
    y_norm: np.ndarray
    rank_suspect: np.ndarray


def fuchs_batch(
    DT: np.ndarray,
    supports: list[np.ndarray],
    signs: list[np.ndarray],
    *,
    nonneg: bool,
    max_floats: int = 1 << 24,
) -> FuchsBatch:
    """Min-ℓ2 (Fuchs) dual certificates of many codes, batched as GEMMs.

    For each code: G_S = D_Sᵀ D_S, a = G_S⁻¹ s, y₀ = D_S a = D_S (D_Sᵀ D_S)⁻¹ s (the least-norm y
    with D_Sᵀ y = s), and the certificate value ‖D_{Sᶜ}ᵀ y₀‖_∞ (non-negative codes, s = 𝟙:
    max_{j∈Sᶜ} dⱼᵀ y₀). Codes are grouped by k = |S|; within a group D_S is gathered as a
    (B, k, H) stack (at most ``max_floats`` entries at a time), G_S and its eigendecomposition
    are batched, and all D_{Sᶜ}ᵀ y₀ come from one GEMM Dᵀ Y₀ (N×H times H×B).

    Parameters
    ----------
    DT : N×H float64, C-contiguous: the atoms as rows (Dᵀ).
    supports : per code, the sorted atom indices S.
    signs : per code, s = sign(δ_S) (±1; ones for non-negative codes).
    nonneg : one-sided value max_{j∈Sᶜ} dⱼᵀ y₀ instead of the max of |dⱼᵀ y₀|.
    """
    n_codes = len(supports)
    n_atoms, dim = DT.shape
    value = np.full(n_codes, np.nan)
    eq_res = np.full(n_codes, np.nan)
    lam_min = np.full(n_codes, np.nan)
    lam_max = np.full(n_codes, np.nan)
    y_norm = np.full(n_codes, np.nan)
    suspect = np.zeros(n_codes, dtype=bool)
    ks = np.array([len(s) for s in supports], dtype=np.int64)
    fill = -np.inf if nonneg else 0.0
    for k in np.unique(ks):
        members = np.flatnonzero(ks == k)
        if k == 0:
            continue
        if k > dim:  # D_S has a non-trivial kernel: certainly rank-deficient
            suspect[members] = True
            continue
        step = max(1, int(max_floats // (k * dim)))
        for start in range(0, len(members), step):
            sub = members[start : start + step]
            idx = np.stack([supports[i] for i in sub])  # (B, k)
            s = np.stack([signs[i] for i in sub]).astype(np.float64)  # (B, k)
            A = DT[idx]  # (B, k, H)
            G = A @ A.transpose(0, 2, 1)
            lam, V = np.linalg.eigh(G)
            lo, hi = lam[:, 0], lam[:, -1]
            lam_min[sub] = lo
            lam_max[sub] = hi
            bad = ~(lo > GRAM_RANK_SUSPECT * hi)
            suspect[sub[bad]] = True
            good = ~bad
            if not good.any():
                continue
            gsub = sub[good]
            Vg, lg, sg, Ag = V[good], lam[good], s[good], A[good]
            coef = np.einsum("bkj,bk->bj", Vg, sg) / lg
            a = np.einsum("bkj,bj->bk", Vg, coef)
            Y0 = np.einsum("bkh,bk->bh", Ag, a)  # (B, H)
            e = np.einsum("bkh,bh->bk", Ag, Y0) - sg
            eq_res[gsub] = np.linalg.norm(e, axis=1)
            y_norm[gsub] = np.linalg.norm(Y0, axis=1)
            C = DT @ Y0.T  # (N, B)
            C[idx[good], np.arange(len(gsub))[:, None]] = fill
            if k == n_atoms:
                value[gsub] = 0.0 if not nonneg else -np.inf
            elif nonneg:
                value[gsub] = C.max(axis=0)
            else:
                value[gsub] = np.abs(C).max(axis=0)
    return FuchsBatch(value, eq_res, lam_min, lam_max, y_norm, suspect)


class RowSpaceProjector:
    """Projection onto the affine set {x : D x = y} of many right-hand sides at once.

    With D Dᵀ = Q Λ Qᵀ (float64 eigendecomposition; eigenvalues ≤ rcond·λmax dropped),
    F = Q Λ^{-1/2} and K = Dᵀ F (so K Kᵀ = Dᵀ (D Dᵀ)⁺ D, the orthogonal projector onto the
    row space of D):

        P(v) = v − K (Kᵀ v) + K (Fᵀ y) = v − Dᵀ (D Dᵀ)⁺ (D v − y).

    ``K`` is kept in ``dtype`` (float32 for the search); :meth:`project64` is the float64 form
    through D itself, used to re-verify candidates.
    """

    def __init__(self, Dt: np.ndarray, *, dtype: type = np.float32, rcond: float = 1e-12) -> None:
        gram = Dt @ Dt.T
        lam, Q = np.linalg.eigh(gram)
        keep = lam > rcond * lam[-1]
        self.F = Q[:, keep] / np.sqrt(lam[keep])
        self.Minv_factor = self.F  # (D Dᵀ)⁺ = F Fᵀ
        self.K = np.ascontiguousarray((Dt.T @ self.F).astype(dtype))
        self.Dt = Dt
        self.rank = int(keep.sum())

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
