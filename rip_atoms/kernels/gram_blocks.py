"""Blocked reductions over the Gram matrix G = A Aᵀ of unit rows, without ever holding G.

A is N×H (one unit-norm atom per row, float32). The pass visits block pairs (I, J) with I ≤ J
(the *tiles*), forms G_IJ = A_I A_Jᵀ with one float32 GEMM (B×B memory), and folds |G_IJ| into
running reductions:

* per row j, the P largest |G_jl| over l ≠ j, with their column indices — this gives the
  per-atom coherence μⱼ (entry 0), the Babel function μ₁(p) = maxⱼ Σ_{t<p} top_jt for every
  p ≤ P, and the globally most coherent pairs (a pair in the global top r is in the top r of its
  own row);
* a histogram of |G_jl| over unordered pairs j < l.

Order. Each row's list holds the P largest entries under the total order "larger |G_jl| first,
equal values by smaller column index l" (the list is sorted in that order). The list is
therefore a function of the set {(|G_jl|, l)} alone, not of the order the tiles are visited in:
any partition of the tiles into groups, each reduced on its own (:func:`reduce_tiles`, e.g. one
Dask task per group) and merged with :func:`merge_reductions`, gives bit-identical lists (every
|G_jl| comes from the same float32 GEMM of the same tile) and the same integer histogram.

Each off-diagonal tile updates the rows of I (its rows) and the rows of J (its columns), so the
symmetric half suffices. Memory: O(N·P + B²) beyond A. The merges are numba kernels that only
touch an entry when it beats the row's current P-th entry, so after the first tiles they cost a
compare per entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from rip_atoms.errors import ParameterError


@dataclass(frozen=True)
class GramReduction:
    """Raw output of :func:`blocked_gram_reduce` (float32 values, indices into the rows of A)."""

    top_values: np.ndarray  # (N, P) float32, descending per row (ties: smaller index first)
    top_indices: np.ndarray  # (N, P) int32
    histogram: np.ndarray  # (bins,) int64 counts of |G_jl| for j < l over [0, 1]
    bin_edges: np.ndarray  # (bins + 1,)


@njit(cache=True, inline="always")
def _before(v, idx, w, jdx):
    """(v, idx) comes before (w, jdx): larger value first, equal values by smaller index."""
    return v > w or (v == w and idx < jdx)


@njit(cache=True, inline="always")
def _insert(topv, topi, r, v, idx):
    """Insert (v, idx) into row r of a sorted top list (caller checked it beats the last)."""
    pos = topv.shape[1] - 1
    while pos > 0 and _before(v, idx, topv[r, pos - 1], topi[r, pos - 1]):
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
                if v >= thr and _before(v, col0 + j, thr, topi[r, last]):
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
                if v >= topv[r, last] and _before(v, row0 + i, topv[r, last], topi[r, last]):
                    _insert(topv, topi, r, v, row0 + i)


@njit(parallel=True, cache=True)
def _merge_lists(topv, topi, pv, pi):
    """Merge the sorted partial lists (pv, pi) into (topv, topi), row by row, keeping the P
    first entries of the union under the total order (the two lists hold disjoint columns)."""
    n, p = topv.shape
    for r in prange(n):
        if not _before(pv[r, 0], pi[r, 0], topv[r, p - 1], topi[r, p - 1]):
            continue
        outv = np.empty(p, dtype=topv.dtype)
        outi = np.empty(p, dtype=topi.dtype)
        a = 0
        b = 0
        for k in range(p):
            if _before(pv[r, b], pi[r, b], topv[r, a], topi[r, a]):
                outv[k] = pv[r, b]
                outi[k] = pi[r, b]
                b += 1
            else:
                outv[k] = topv[r, a]
                outi[k] = topi[r, a]
                a += 1
        topv[r, :] = outv
        topi[r, :] = outi


def tile_pairs(n: int, block_size: int) -> list[tuple[int, int]]:
    """The tiles (a, b), a ≤ b, of the upper triangle: starts of the row and column blocks."""
    starts = list(range(0, n, block_size))
    return [(a, b) for ai, a in enumerate(starts) for b in starts[ai:]]


def _check(A: np.ndarray, n_top: int) -> np.ndarray:
    A = np.ascontiguousarray(A, dtype=np.float32)
    n = A.shape[0]
    if not 1 <= n_top <= n - 1:
        raise ParameterError(f"n_top must be in [1, N-1] = [1, {n - 1}], got {n_top}")
    return A


def reduce_tiles(
    A: np.ndarray,
    tiles: Sequence[tuple[int, int]],
    n_top: int,
    *,
    bins: int = 200,
    block_size: int = 2048,
    bar=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top_values, top_indices, histogram) of the tiles given: each row's top-``n_top`` list
    over the entries of those tiles (sorted, see the module docstring; unfilled slots are
    (−1, −1)) and the (bins,) counts of their pairs j < l. A pure function of its arguments: a
    Dask task that runs it twice (a retry) returns the same bytes."""
    A = _check(A, n_top)
    n = A.shape[0]
    topv = np.full((n, n_top), -1.0, dtype=np.float32)
    topi = np.full((n, n_top), -1, dtype=np.int32)
    n_chunks = max(1, numba.get_num_threads()) * 4
    hist = np.zeros((n_chunks, bins), dtype=np.int64)
    buf = np.empty((min(block_size, n), min(block_size, n)), dtype=np.float32)
    for a, b in tiles:
        ia = A[a : a + block_size]
        ib = A[b : b + block_size]
        G = buf[: ia.shape[0], : ib.shape[0]]
        np.matmul(ia, ib.T, out=G)
        _merge_rows(G, a, b, a == b, topv, topi, hist)
        if a != b:
            _merge_columns(G, a, b, topv, topi, 64)
        if bar is not None:
            bar.update(1)
    return topv, topi, hist.sum(axis=0)


def merge_reductions(acc: tuple[np.ndarray, np.ndarray, np.ndarray],
                     part: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Fold a partial reduction ``part`` of disjoint tiles into ``acc`` (in place)."""
    _merge_lists(acc[0], acc[1], part[0], part[1])
    acc[2][:] += part[2]


def split_tiles(tiles: list[tuple[int, int]], n_tasks: int) -> list[list[tuple[int, int]]]:
    """Contiguous runs of the tile list, of (nearly) equal length: one per task."""
    n_tasks = max(1, min(n_tasks, len(tiles)))
    bounds = np.linspace(0, len(tiles), n_tasks + 1).round().astype(int)
    return [tiles[bounds[k]: bounds[k + 1]] for k in range(n_tasks)]


def blocked_gram_reduce(
    A: np.ndarray,
    n_top: int,
    *,
    bins: int = 200,
    block_size: int = 2048,
    progress: bool = False,
    client=None,
    tasks_per_worker: int = 4,
) -> GramReduction:
    """Top-``n_top`` |⟨aⱼ, aₗ⟩| per row (l ≠ j) and a histogram of all |⟨aⱼ, aₗ⟩|, j < l.

    ``A`` is N×H, C-contiguous float32, rows of unit norm. ``n_top`` must be ≤ N − 1. Cost:
    about N²H/2 multiply-adds in float32 GEMM plus one compare per Gram entry (twice for
    off-diagonal blocks); memory O(N·n_top + block_size²).

    ``client``: a ``distributed.Client`` (:func:`rip_atoms.cluster.dask_client`). A is
    scattered once to every worker; the tile list is cut into ``tasks_per_worker`` × workers
    contiguous runs, one pure task each (:func:`reduce_tiles`); the partial lists are merged on
    this process (:func:`merge_reductions`). The result is bit-identical to the local pass (the
    module docstring says why); a task whose worker dies is rerun by Dask with the same result.
    """
    A = _check(A, n_top)
    n = A.shape[0]
    tiles = tile_pairs(n, block_size)
    bar = None
    if client is None:
        if progress and len(tiles) > 4:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tiles), desc="gram blocks", unit="block", leave=False)
        topv, topi, hist = reduce_tiles(A, tiles, n_top, bins=bins, block_size=block_size,
                                        bar=bar)
    else:
        from distributed import as_completed

        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        runs = split_tiles(tiles, max(1, tasks_per_worker) * n_workers)
        [a_future] = client.scatter([A], broadcast=True)
        futures = [client.submit(reduce_tiles, a_future, run, n_top, bins=bins,
                                 block_size=block_size, pure=True, retries=3)
                   for run in runs]
        if progress and len(runs) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(runs), desc="gram tasks", unit="task", leave=False)
        acc = None
        try:
            for fut in as_completed(futures):
                part = fut.result()
                if acc is None:
                    acc = (part[0].copy(), part[1].copy(), part[2].copy())
                else:
                    merge_reductions(acc, part)
                fut.release()
                if bar is not None:
                    bar.update(1)
        finally:
            client.cancel(futures + [a_future])
        topv, topi, hist = acc
    if bar is not None:
        bar.close()
    return GramReduction(
        top_values=topv,
        top_indices=topi,
        histogram=hist,
        bin_edges=np.linspace(0.0, 1.0, bins + 1),
    )
