"""All pairs of unit vectors within a cosine of ±1, without the N×N Gram: a certified screen.

For unit rows uᵢ, |⟨uᵢ, uⱼ⟩| ≥ 1 − t ⇔ ‖uᵢ − s·uⱼ‖₂ ≤ r₀ := √(2t) with s = sign⟨uᵢ, uⱼ⟩. A
Gaussian projection P (k×H) maps such a pair to ‖P uᵢ − s·P uⱼ‖ ≤ ‖P‖₂·r₀, so every such pair is
among the pairs of points of {P uᵢ} ∪ {−P uᵢ} within ‖P‖₂·r₀ (plus a float slack) of each
other — found by a k-d tree (scipy's ``cKDTree``: nearest-neighbour queries bounded by the
radius, then all neighbours of the points that have one) — and then each candidate is checked in
float64. No pair is missed (‖P‖₂ is computed exactly by an
SVD); the projection only decides how many non-pairs are checked.
"""

from __future__ import annotations

import numpy as np


def near_duplicate_pairs(U: np.ndarray, tol: float = 1e-6, *, k: int = 16, seed: int = 0
                         ) -> np.ndarray:
    """Every pair i < j of the unit rows of U (n×H, float64) with |⟨uᵢ, uⱼ⟩| ≥ 1 − tol.

    Returns an m×3 float64 array of rows (i, j, cos) with the signed float64 cosine.
    """
    from scipy.spatial import cKDTree

    U = np.asarray(U, dtype=np.float64)
    n, h = U.shape
    if n < 2:
        return np.empty((0, 3))
    k = max(1, min(k, h))
    P = np.random.default_rng(seed).standard_normal((k, h))
    radius = float(np.linalg.norm(P, 2)) * np.sqrt(2.0 * tol) * (1 + 1e-9) + 1e-9
    Z = U @ P.T
    pts = np.vstack([Z, -Z])
    tree = cKDTree(pts)
    # points with another point within the radius (nearest non-self neighbour, fast), then all
    # of their neighbours within it (exact)
    dist, _ = tree.query(pts[:n], k=2, distance_upper_bound=radius)
    close = np.flatnonzero(np.isfinite(dist[:, 1]))
    if close.size == 0:
        return np.empty((0, 3))
    a_list, b_list = [], []
    for a, nb in zip(close, tree.query_ball_point(pts[close], radius), strict=True):
        a_list.extend([a] * len(nb))
        b_list.extend(nb)
    a, b = np.asarray(a_list, dtype=np.int64) % n, np.asarray(b_list, dtype=np.int64) % n
    keep = a != b
    a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    key = np.unique(a.astype(np.int64) * n + b)
    i, j = key // n, key % n
    cos = np.einsum("ij,ij->i", U[i], U[j])
    hit = np.abs(cos) >= 1.0 - tol
    return np.column_stack([i[hit], j[hit], cos[hit]]).astype(np.float64)
