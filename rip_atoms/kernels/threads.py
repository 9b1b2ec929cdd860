"""Thread counts and reproducible sums.

A multi-threaded BLAS splits some sums across its threads: OpenBLAS's level-2 routines (GEMV,
SYMV), its SYRK (``X.T @ X``) and the LAPACK drivers built on them (``eigh`` at H = 576,
``lstsq``) round differently with 1 and 2 threads, so a float64 metric fitted on 2 cores differs
from one fitted on 1 in the last bits, and so does everything after it.

:func:`fixed_thread_sums` runs a section (the report, the commands that whiten) on one BLAS
thread. Inside it the big products that must stay fast are tiled so that their bytes depend on
the shapes alone: :func:`fixed_matmul` and :func:`accumulate_gram` cut the output into tiles of
:data:`TILE` rows or columns, each one single-threaded GEMM, and hand the tiles to
:func:`given_threads` Python threads (as the Gram tiles of :mod:`rip_atoms.kernels.gram_blocks`
do): the same tiles are computed the same way whatever the number of threads.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

_GIVEN: contextvars.ContextVar[int | None] = contextvars.ContextVar("rip_atoms_threads",
                                                                   default=None)


def given_threads() -> int:
    """The BLAS threads this process was given: the BLAS's thread count outside any
    :func:`fixed_thread_sums` section."""
    outer = _GIVEN.get()
    if outer is not None:
        return outer
    blas = [p.get("num_threads", 1) for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(blas) if blas else 1


@contextlib.contextmanager
def fixed_thread_sums() -> Iterator[None]:
    """One BLAS thread inside: every level-2 BLAS and LAPACK call rounds the same whatever the
    machine's thread count (module docstring)."""
    token = _GIVEN.set(given_threads())
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        _GIVEN.reset(token)


#: rows (or columns) of output per single-threaded GEMM tile
TILE = 512


def _run_tiles(work: Callable[[int, int], None], n: int) -> None:
    """``work(a, b)`` for the tiles [a, b) of range(n) of :data:`TILE`, on :func:`given_threads`
    Python threads, each GEMM on one BLAS thread."""
    tiles = [(a, min(n, a + TILE)) for a in range(0, n, TILE)]
    threads = min(given_threads(), len(tiles))
    with threadpool_limits(1, user_api="blas"):
        if threads <= 1:
            for a, b in tiles:
                work(a, b)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda t: work(*t), tiles))


def fixed_matmul(A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A @ B, tile by tile of :data:`TILE` rows of A (so the bytes do not depend on the thread
    count; module docstring). ``out`` receives the product (e.g. a memory-mapped file)."""
    if out is None:
        out = np.empty((A.shape[0], B.shape[1]), dtype=np.result_type(A, B))

    def tile(a: int, b: int) -> None:
        np.matmul(A[a:b], B, out=out[a:b])

    _run_tiles(tile, A.shape[0])
    return out


def accumulate_gram(M: np.ndarray, X: np.ndarray) -> None:
    """M += XᵀX (float64, M of shape H×H), tile by tile of :data:`TILE` columns of M, so the
    bytes do not depend on the thread count (module docstring)."""
    def tile(a: int, b: int) -> None:
        M[:, a:b] += X.T @ X[:, a:b]

    _run_tiles(tile, M.shape[1])


F = TypeVar("F", bound=Callable)


def with_fixed_thread_sums(func: F) -> F:
    """Decorator: ``func`` runs inside :func:`fixed_thread_sums`."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with fixed_thread_sums():
            return func(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


__all__ = ["TILE", "accumulate_gram", "fixed_matmul", "fixed_thread_sums", "given_threads",
           "with_fixed_thread_sums"]
