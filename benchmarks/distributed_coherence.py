"""Distributed coherence: the 2304×65536 pass with 1 worker vs 2 workers on a LocalCluster.

Each worker is one process with one BLAS/numba thread (``dask_client(blas_threads=1)``), so the
figure is how the pass scales with equal workers (on this 2-core machine a 1-worker cluster
sized by default would take both cores). The rows are scattered once; the tiles run as pure
tasks whose partial lists are merged on the driver. Also the single-process pass for reference.
All three results must be bit-identical (checked, printed).

    .venv/bin/python benchmarks/distributed_coherence.py                  # 2304×65536
    .venv/bin/python benchmarks/distributed_coherence.py --atoms 16384    # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _key(res) -> tuple:
    d = res.to_dict()
    d.pop("seconds")
    return (repr(d), res.per_atom.tobytes(), res.per_atom_partner.tobytes(),
            res.babel_upper.tobytes(), res.histogram_counts.tobytes())


def main() -> None:
    from rip_atoms import coherence
    from rip_atoms.cluster import dask_client

    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=2304)
    ap.add_argument("--atoms", type=int, default=65536)
    args = ap.parse_args()
    H, N = args.dim, args.atoms
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((N, H), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    D = rows.T
    coherence(np.ascontiguousarray(D[:, :300]), "raw")  # JIT warm-up
    kw = dict(babel_p=64, top=100)
    out = {}
    t = time.perf_counter()
    out["single process (2 threads)"] = (coherence(D, "raw", **kw), time.perf_counter() - t)
    for w in (1, 2):
        with dask_client(workers=w, blas_threads=1, quiet=True) as client:
            client.submit(int, 0).result()  # workers up
            t = time.perf_counter()
            res = coherence(D, "raw", client=client, **kw)
            out[f"LocalCluster {w} worker(s) x 1 thread"] = (res, time.perf_counter() - t)
    ref = _key(out["single process (2 threads)"][0])
    print(f"shape {H}x{N} float32, raw coherence (Babel p = 64, top 100)")
    for name, (res, sec) in out.items():
        print(f"  {name:36s} {sec:8.1f} s   mu={res.mu:.6f} pair={res.pair} "
              f"identical={_key(res) == ref}")
    one = out["LocalCluster 1 worker(s) x 1 thread"][1]
    two = out["LocalCluster 2 worker(s) x 1 thread"][1]
    print(f"  speedup 2 workers / 1 worker: {one / two:.2f}")


if __name__ == "__main__":
    main()
