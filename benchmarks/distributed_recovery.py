"""Distributed ℓ1 certification (issue 13): ``classify_recovery(..., client=...)`` on a local Dask
cluster of 1 and of 2 worker processes, same codes, same run.

A Gaussian 2304×16384 dictionary with unit columns and ``--codes`` (default 4,000) non-negative
codes with L0 = 70 (magnitudes uniform in [1, 2]); each worker has one thread and ⌊cores/w⌋
BLAS threads (:func:`rip_atoms.cluster.dask_client`). Reported: wall seconds of each run (the
dictionary's scatter and the workers' set-up included, the cluster's start not), the speedup
2 workers vs 1 (target ≥ 1.6× on 2 cores), and whether the per-code statuses, methods and
witnesses are identical.

    .venv/bin/python benchmarks/distributed_recovery.py
    .venv/bin/python benchmarks/distributed_recovery.py --blas-threads 1   # equal workers
    .venv/bin/python benchmarks/distributed_recovery.py --codes 400 --dim 256 --atoms 2048
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from recovery import codes, gaussian

from rip_atoms.cluster import dask_client
from rip_atoms.recovery import classify_recovery


def run(D, C, workers: int, chunk_size: int, blas_threads: int | None = None):
    with dask_client(workers=workers, quiet=True, blas_threads=blas_threads) as client:
        client.wait_for_workers(workers)
        t = time.perf_counter()
        res = classify_recovery(D, C, nonneg=True, metric=None, chunk_size=chunk_size,
                                client=client)
        sec = time.perf_counter() - t
    print(f"  {workers} worker(s): {sec:7.2f} s = {1e3 * sec / C.shape[0]:.3f} ms/code; "
          f"certified {res.certified}, failed {res.failed}, undetermined {res.undetermined}; "
          f"{res.methods}", flush=True)
    return res, sec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codes", type=int, default=4000)
    ap.add_argument("--dim", type=int, default=2304)
    ap.add_argument("--atoms", type=int, default=16384)
    ap.add_argument("--l0", type=int, default=70)
    ap.add_argument("--chunk-size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="BLAS threads per worker (default ⌊cores / workers⌋: one worker then "
                         "uses every core in its GEMMs; 1 measures how the work scales with "
                         "equal workers, as benchmarks/distributed_coherence.py does)")
    args = ap.parse_args()
    D = gaussian(args.dim, args.atoms, args.seed + 30)
    C = codes(args.atoms, np.full(args.codes, args.l0), True, args.seed + 31)
    print(f"distributed certification: Gaussian {args.dim}×{args.atoms}, {args.codes} "
          f"non-negative codes, L0 = {args.l0}, chunks of {args.chunk_size}", flush=True)
    r1, s1 = run(D, C, 1, args.chunk_size, args.blas_threads)
    r2, s2 = run(D, C, 2, args.chunk_size, args.blas_threads)
    same = (np.array_equal(r1.status, r2.status) and np.array_equal(r1.method, r2.method)
            and (r1.witnesses != r2.witnesses).nnz == 0)
    print(f"  speedup 2 vs 1 worker: {s1 / s2:.2f}×  (target ≥ 1.6×); identical statuses, "
          f"methods and witnesses: {same}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"codes": args.codes, "shape": [args.dim, args.atoms], "l0": args.l0,
                       "seconds_1": s1, "seconds_2": s2, "speedup": s1 / s2,
                       "identical": bool(same)}, fh, indent=2)


if __name__ == "__main__":
    main()
