"""Blocked reductions over the Gram matrix G = A Aᵀ of unit rows, without ever holding G.

A is N×H (one unit-norm atom per row, float32). The pass visits block pairs (I, J) with I ≤ J,
forms G_IJ = A_I A_Jᵀ with one float32 GEMM (B×B memory), and folds |G_IJ| into running
reductions:

* per row j, the P largest |G_jl| over l ≠ j, with their column indices (sorted, descending) —
  this gives the per-atom coherence μⱼ (entry 0), the Babel function μ₁(p) = maxⱼ Σ_{t<p} top_jt
  for every p ≤ P, and the globally most coherent pairs (a pair in the global top r is in the
  top r of its own row);
* a histogram of |G_jl| over unordered pairs j < l.

Each off-diagonal block updates the rows of I (its rows) and the rows of J (its columns), so the
symmetric half suffices. Memory: O(N·P + B²) beyond A. The merges are numba kernels that only
touch an entry when it beats the row's current P-th value, so after the first blocks they cost a
compare per entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from rip_atoms.errors import ParameterError


@dataclass(frozen=True)
class GramReduction:
    """Raw output of :func:`blocked_gram_reduce` (float32 values, indices into the rows of A)."""

    top_values: np.ndarray  # (N, P) float32, descending per row
    top_indices: np.ndarray  # (N, P) int32
    histogram: np.ndarray  # (bins,) int64 counts of |G_jl| for j < l over [0, 1]
    bin_edges: np.ndarray  # (bins + 1,)


@njit(cache=True, inline="always")
def _insert(topv, topi, r, v, idx):
    """Insert (v, idx) into row r of a descending top list (caller checked v > last)."""
    pos = topv.shape[1] - 1
    while pos > 0 and topv[r, pos - 1] < v:
        topv[r, pos] = topv[r, pos - 1]
        topi[r, pos] = topi[r, pos - 1]
        pos -= 1
    topv[r, pos] = v
    topi[r, pos] = idx


@njit(parallel=True, cache=True)
def _merge_rows(G, row0, col0, diagonal, topv, topi, hist):
    """Fold the rows of block G (rows row0.., columns col0..) into the per-row top lists and
    count each unordered pair once in ``hist`` (one histogram row per chunk of rows)."""
    bi, bj = G.shape
    n_chunks, n_bins = hist.shape
    last = topv.shape[1] - 1
    step = (bi + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = c * step
        hi = min(bi, lo + step)
        for i in range(lo, hi):
            r = row0 + i
            thr = topv[r, last]
            for j in range(bj):
                if diagonal and j == i:
                    continue
                v = abs(G[i, j])
                if (not diagonal) or j > i:
                    b = int(v * n_bins)
                    if b >= n_bins:
                        b = n_bins - 1
                    hist[c, b] += 1
                if v > thr:
                    _insert(topv, topi, r, v, col0 + j)
                    thr = topv[r, last]


@njit(parallel=True, cache=True)
def _merge_columns(G, row0, col0, topv, topi, tile):
    """Fold the columns of an off-diagonal block G into the top lists of rows col0.. (G's
    columns are those atoms); threads own disjoint tiles of columns, so no write conflicts."""
    bi, bj = G.shape
    last = topv.shape[1] - 1
    n_tiles = (bj + tile - 1) // tile
    for t in prange(n_tiles):
        j0 = t * tile
        j1 = min(bj, j0 + tile)
        for i in range(bi):
            for j in range(j0, j1):
                v = abs(G[i, j])
                r = col0 + j
                if v > topv[r, last]:
                    _insert(topv, topi, r, v, row0 + i)


def blocked_gram_reduce(
    A: np.ndarray,
    n_top: int,
    *,
    bins: int = 200,
    block_size: int = 2048,
    progress: bool = False,
) -> GramReduction:
    """Top-``n_top`` |⟨aⱼ, aₗ⟩| per row (l ≠ j) and a histogram of all |⟨aⱼ, aₗ⟩|, j < l.

    ``A`` is N×H, C-contiguous float32, rows of unit norm. ``n_top`` must be ≤ N − 1. Cost:
    about N²H/2 multiply-adds in float32 GEMM plus one compare per Gram entry (twice for
    off-diagonal blocks); memory O(N·n_top + block_size²).
    """
    A = np.ascontiguousarray(A, dtype=np.float32)
    n = A.shape[0]
    if not 1 <= n_top <= n - 1:
        raise ParameterError(f"n_top must be in [1, N-1] = [1, {n - 1}], got {n_top}")
    topv = np.full((n, n_top), -1.0, dtype=np.float32)
    topi = np.full((n, n_top), -1, dtype=np.int32)
    n_chunks = max(1, numba.get_num_threads()) * 4
    hist = np.zeros((n_chunks, bins), dtype=np.int64)
    starts = list(range(0, n, block_size))
    pairs = [(a, b) for ai, a in enumerate(starts) for b in starts[ai:]]
    buf = np.empty((min(block_size, n), min(block_size, n)), dtype=np.float32)
    bar = None
    if progress and len(pairs) > 4:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pairs), desc="gram blocks", unit="block", leave=False)
    for a, b in pairs:
        ia = A[a : a + block_size]
        ib = A[b : b + block_size]
        G = buf[: ia.shape[0], : ib.shape[0]]
        np.matmul(ia, ib.T, out=G)
        _merge_rows(G, a, b, a == b, topv, topi, hist)
        if a != b:
            _merge_columns(G, a, b, topv, topi, 64)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return GramReduction(
        top_values=topv,
        top_indices=topi,
        histogram=hist.sum(axis=0),
        bin_edges=np.linspace(0.0, 1.0, bins + 1),
    )
