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


@njit(cache=True, nogil=True)
def _merge_tile(G, row0, col0, diagonal, topv, topi, hist):
    """Fold tile G (rows row0.., columns col0..; the upper triangle j > i only when
    ``diagonal``) into the top lists of its rows and of its columns, and count each pair once in
    ``hist``. Serial and without the GIL: the threads of :func:`reduce_tiles` each fold their own
    tiles into their own lists."""
    bi, bj = G.shape
    n_bins = hist.shape[0]
    last = topv.shape[1] - 1
    for i in range(bi):
        r = row0 + i
        for j in range(bj):
            if diagonal and j <= i:
                continue
            v = abs(G[i, j])
            b = int(v * n_bins)
            if b >= n_bins:
                b = n_bins - 1
            hist[b] += 1
            if v >= topv[r, last] and _before(v, col0 + j, topv[r, last], topi[r, last]):
                _insert(topv, topi, r, v, col0 + j)
            c = col0 + j
            if v >= topv[c, last] and _before(v, r, topv[c, last], topi[c, last]):
                _insert(topv, topi, c, v, r)


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


_ALIGNED: list = []  # (the array as received, its aligned copy): the last one a worker saw


def _aligned_copy(A: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy of A starting at a 64-byte boundary."""
    raw = np.empty(A.size * 4 + 64, dtype=np.uint8)
    off = (-raw.ctypes.data) % 64
    out = raw[off: off + A.size * 4].view(np.float32).reshape(A.shape)
    out[...] = A
    return out


def _check(A: np.ndarray, n_top: int) -> np.ndarray:
    """A as a C-contiguous float32 array at a 64-byte boundary. An array Dask deserialised can
    sit at any address, and numpy's matmul then takes other paths (without BLAS when it is not
    even 4-byte aligned) with other rounding; so such an array is copied (once per worker: the
    copy is kept for the next task on the same array), and every pass, local or distributed,
    multiplies the same bytes at the same alignment."""
    if not (A.dtype == np.float32 and A.flags.c_contiguous and A.ctypes.data % 64 == 0):
        if _ALIGNED and _ALIGNED[0][0] is A:
            A = _ALIGNED[0][1]
        else:
            copy = _aligned_copy(np.asarray(A))
            _ALIGNED[:] = [(A, copy)]
            A = copy
    n = A.shape[0]
    if not 1 <= n_top <= n - 1:
        raise ParameterError(f"n_top must be in [1, N-1] = [1, {n - 1}], got {n_top}")
    return A


def _reduce_serial(A, tiles, n_top, bins, block_size, bar):
    n = A.shape[0]
    topv = np.full((n, n_top), -1.0, dtype=np.float32)
    topi = np.full((n, n_top), -1, dtype=np.int32)
    hist = np.zeros(bins, dtype=np.int64)
    buf = np.empty((min(block_size, n), min(block_size, n)), dtype=np.float32)
    for a, b in tiles:
        ia = A[a : a + block_size]
        ib = A[b : b + block_size]
        G = buf[: ia.shape[0], : ib.shape[0]]
        np.matmul(ia, ib.T, out=G)
        _merge_tile(G, a, b, a == b, topv, topi, hist)
        if bar is not None:
            bar.update(1)
    return topv, topi, hist


def reduce_tiles(
    A: np.ndarray,
    tiles: Sequence[tuple[int, int]],
    n_top: int,
    *,
    bins: int = 200,
    block_size: int = 2048,
    bar=None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top_values, top_indices, histogram) of the tiles given: each row's top-``n_top`` list
    over the entries of those tiles (sorted, see the module docstring; unfilled slots are
    (−1, −1)) and the (bins,) counts of their pairs j < l. A pure function of its arguments: a
    Dask task that runs it twice (a retry) returns the same bytes.

    Every tile is one *single-threaded* float32 GEMM (a multi-threaded BLAS rounds differently
    with another thread count, so a pass on a 2-core driver and one on 1-core workers would not
    agree); ``threads`` Python threads (default: the BLAS's thread count here, i.e. the cores
    this process is given, :func:`rip_atoms.kernels.threads.given_threads`) share the tiles in
    contiguous runs, each with its own lists, merged at the end. Same bytes for any ``threads``,
    any process.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from rip_atoms.kernels.threads import given_threads

    A = _check(A, n_top)
    tiles = list(tiles)
    if threads is None:
        threads = given_threads()
    runs = split_tiles(tiles, max(1, int(threads)))
    with threadpool_limits(1, user_api="blas"):
        if len(runs) == 1:
            parts = [_reduce_serial(A, runs[0], n_top, bins, block_size, bar)]
        else:
            with ThreadPoolExecutor(len(runs)) as pool:
                parts = list(pool.map(lambda run: _reduce_serial(A, run, n_top, bins,
                                                                  block_size, bar), runs))
    acc = parts[0]
    for part in parts[1:]:
        merge_reductions(acc, part)
    return acc


def merge_reductions(acc: tuple[np.ndarray, np.ndarray, np.ndarray],
                     part: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Fold a partial reduction ``part`` of disjoint tiles into ``acc`` (in place)."""
    _merge_lists(acc[0], acc[1], part[0], part[1])
    acc[2][:] += part[2]


def split_tiles(tiles: list[tuple[int, int]], n_tasks: int) -> list[list[tuple[int, int]]]:
    """Contiguous runs of the tile list, of (nearly) equal length: one per task."""
    n_tasks = max(1, min(n_tasks, max(1, len(tiles))))
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
