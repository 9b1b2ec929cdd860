"""Large copies (with a transpose or a cast) in cache-sized tiles over the machine's cores.

``np.copyto(out, D.T)`` of a 2304×16384 float64 dictionary into N×H rows runs at ~0.3 s on one
core: the transposed source is read one element per cache line. Copying 128×128 tiles keeps
both sides in cache, and row slabs on separate threads (numpy releases the GIL while it
copies) also share out the page faults of a fresh destination (a new array, or a memory-mapped
file in shared memory), which on some machines cost as much as the copy itself. The values are
those of ``np.copyto`` (a copy or an IEEE cast is exact or correctly rounded, element by element).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["copy_threads", "parallel_copyto"]

#: edge of the square tiles a transposed source is copied in
TILE = 128
#: below this many elements a copy runs on the calling thread alone
_SERIAL_BELOW = 1 << 20


def copy_threads() -> int:
    """Threads for a copy: the cores this process may use, capped by ``OMP_NUM_THREADS`` when it
    is set (a Dask worker of :func:`rip_atoms.cluster.dask_client` has its share of the cores
    there)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        cores = os.cpu_count() or 1
    try:
        cap = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        cap = 0
    return max(1, min(cores, cap) if cap > 0 else cores)


def parallel_copyto(out: np.ndarray, src: np.ndarray, threads: int | None = None) -> None:
    """``out[...] = src`` (cast to ``out.dtype`` with ``same_kind`` rules) for 2-D arrays of the
    same shape, ``out`` C-contiguous: row slabs on ``threads`` threads (default
    :func:`copy_threads`), tile by tile when ``src`` is not C-contiguous (e.g. ``D.T``)."""
    if out.ndim != 2 or src.shape != out.shape or not out.flags.c_contiguous:
        raise ValueError(f"parallel_copyto needs a C-contiguous 2-D out of the source's shape; "
                         f"got out {out.shape} (C: {out.flags.c_contiguous}), src {src.shape}")
    n, m = out.shape
    tiled = not src.flags.c_contiguous

    def slab(lo: int, hi: int) -> None:
        for a in range(lo, hi, TILE):
            b = min(hi, a + TILE)
            if tiled:
                for c in range(0, m, TILE):
                    np.copyto(out[a:b, c:c + TILE], src[a:b, c:c + TILE], casting="same_kind")
            else:
                np.copyto(out[a:b], src[a:b], casting="same_kind")

    t = threads if threads is not None else copy_threads()
    t = max(1, min(t, -(-n // TILE)))
    if t == 1 or out.size < _SERIAL_BELOW:
        slab(0, n)
        return
    cuts = [round(i * n / t / TILE) * TILE for i in range(t)] + [n]
    with ThreadPoolExecutor(max_workers=t) as pool:
        slabs = [pool.submit(slab, lo, hi)
                 for lo, hi in zip(cuts[:-1], cuts[1:], strict=True) if hi > lo]
        for f in slabs:
            f.result()
