"""Distributed ℓ1 certification (issue 13): ``classify_recovery(..., client=...)`` on a local Dask
cluster of 1 and of 2 worker processes, same codes, same run.

A Gaussian 2304×16384 dictionary with unit columns and ``--codes`` (default 4,000) non-negative
codes with L0 = 70 (magnitudes uniform in [1, 2]); each worker has one thread and ⌊cores/w⌋
BLAS threads (:func:`rip_atoms.cluster.dask_client`). Reported: wall seconds of each run (the
dictionary's scatter and the workers' set-up included, the cluster's start not), the speedup
2 workers vs 1 (target ≥ 1.6× on 2 cores), and whether the per-code statuses, methods and
witnesses are identical. By default twice: with the workers mapping the D̃ the driver wrote
once to shared memory (what a LocalCluster gets), then with D scattered to every worker and D̃
built on each (what workers on other machines get; ``--transport`` picks one).

    .venv/bin/python benchmarks/distributed_recovery.py
    .venv/bin/python benchmarks/distributed_recovery.py --blas-threads 1   # equal workers
    .venv/bin/python benchmarks/distributed_recovery.py --codes 400 --dim 256 --atoms 2048
    .venv/bin/python benchmarks/distributed_recovery.py --per-task   # where the time goes

``--per-task`` submits the same chunk tasks by hand with D scattered (the scatter transport; one
BLAS thread per worker) and prints, for 1 and 2 workers, the broadcast scatter of D and each
task's D̃ set-up, classification seconds, Fuchs seconds and start time; then two plain processes
certifying half the codes each, alone and at once (does the work itself scale on this machine?).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
from recovery import codes, gaussian

from rip_atoms.cluster import dask_client
from rip_atoms.recovery import classify_recovery


def run(D, C, workers: int, chunk_size: int, blas_threads: int | None = None,
        transport: str = "shared"):
    """One timed ``classify_recovery(..., client=)``; ``transport="scatter"`` makes the driver
    skip the shared files (what a cluster on other machines gets)."""
    from unittest import mock

    from rip_atoms.recovery import distributed

    with dask_client(workers=workers, quiet=True, blas_threads=blas_threads) as client:
        client.wait_for_workers(workers)
        patch = (mock.patch.object(distributed, "_share", lambda *a: (None, None))
                 if transport == "scatter" else contextlib.nullcontext())
        with patch:
            t = time.perf_counter()
            res = classify_recovery(D, C, nonneg=True, metric=None, chunk_size=chunk_size,
                                    client=client)
            sec = time.perf_counter() - t
    print(f"  {transport:7s} {workers} worker(s): {sec:7.2f} s = "
          f"{1e3 * sec / C.shape[0]:.3f} ms/code; "
          f"certified {res.certified}, failed {res.failed}, undetermined {res.undetermined}; "
          f"{res.methods}", flush=True)
    return res, sec


def _timed_task(token, D, rows, opts):
    """One chunk task with its timings (the work of rip_atoms.recovery.distributed)."""
    from rip_atoms.recovery.classify import _classify_rows
    from rip_atoms.recovery.distributed import _worker_atoms

    t0 = time.perf_counter()
    atoms = _worker_atoms(token, D, None)
    t1 = time.perf_counter()
    _, sec = _classify_rows(atoms, "sparse", rows, rows.shape[0], opts, None)
    return {"setup": t1 - t0, "rows": time.perf_counter() - t1, "fuchs": sec["fuchs"],
            "start": t0}


_ALONE = r"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
from recovery import codes, gaussian
from rip_atoms.recovery import classify_recovery
H, N, n, l0, seed, chunk = map(int, sys.argv[2:8])
D = gaussian(H, N, seed + 30)
C = codes(N, np.full(n, l0), True, seed + 31)
classify_recovery(D, C[:20], nonneg=True, metric=None)  # warm-up
t = time.perf_counter()
r = classify_recovery(D, C, nonneg=True, metric=None, chunk_size=chunk, blas_threads=1)
print(f"{time.perf_counter() - t:.2f} {r.stage_seconds['fuchs']:.2f}")
"""


def per_task(args, D, C) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from rip_atoms.recovery.options import ClassifyOptions

    opts = ClassifyOptions(nonneg=True, margin=0.01, max_iter=8 * max(args.dim, 100),
                           witness_iters=100, lp=True, lp_time_limit=60.0,
                           lp_max_size=20_000_000, blas_threads=1, engine="numpy", device=None,
                           chunk_size=args.chunk_size)
    for w in (1, 2):
        with dask_client(workers=w, quiet=True, blas_threads=1) as client:
            client.wait_for_workers(w)
            t = time.perf_counter()
            Df = client.scatter(D, broadcast=True, hash=False)
            t_sc = time.perf_counter() - t
            futs = [client.submit(_timed_task, f"per-task-{w}", Df, C[a: a + args.chunk_size],
                                  opts, pure=False)
                    for a in range(0, C.shape[0], args.chunk_size)]
            res = client.gather(futs)
            wall = time.perf_counter() - t
        t0 = min(r["start"] for r in res)
        print(f"  {w} worker(s): wall {wall:.2f} s, scatter {t_sc:.2f} s; tasks (set-up, "
              "classify, Fuchs, start) s:", flush=True)
        print("    " + ", ".join(f"({r['setup']:.2f}, {r['rows']:.2f}, {r['fuchs']:.2f}, "
                                 f"{r['start'] - t0:.1f})" for r in res), flush=True)
    here = str(Path(__file__).resolve().parent)
    half = [str(v) for v in (args.dim, args.atoms, C.shape[0] // 2, args.l0, args.seed,
                             args.chunk_size)]
    for n_proc in (1, 2):
        procs = [subprocess.Popen([sys.executable, "-c", _ALONE, here, *half],
                                  stdout=subprocess.PIPE, text=True) for _ in range(n_proc)]
        outs = [p.communicate()[0].split() for p in procs]
        print(f"  {n_proc} plain process(es) at once, {C.shape[0] // 2} codes each: (wall, "
              f"Fuchs) s = {outs}", flush=True)


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
    ap.add_argument("--transport", choices=("shared", "scatter", "both"), default="both",
                    help="how the workers get D̃: memory-mapped files the driver wrote once "
                         "(what a LocalCluster gets), a broadcast scatter of D with D̃ built on "
                         "each worker (a cluster on other machines), or both in turn")
    ap.add_argument("--per-task", action="store_true",
                    help="per-task timings and the plain-process scaling check (module doc)")
    args = ap.parse_args()
    D = gaussian(args.dim, args.atoms, args.seed + 30)
    C = codes(args.atoms, np.full(args.codes, args.l0), True, args.seed + 31)
    if args.per_task:
        per_task(args, D, C)
        return
    print(f"distributed certification: Gaussian {args.dim}×{args.atoms}, {args.codes} "
          f"non-negative codes, L0 = {args.l0}, chunks of {args.chunk_size}", flush=True)
    figures = {}
    first = None
    for transport in (("shared", "scatter") if args.transport == "both" else (args.transport,)):
        r1, s1 = run(D, C, 1, args.chunk_size, args.blas_threads, transport)
        r2, s2 = run(D, C, 2, args.chunk_size, args.blas_threads, transport)
        first = first or r1
        same = all(np.array_equal(first.status, r.status) and np.array_equal(first.method, r.method)
                   and (first.witnesses != r.witnesses).nnz == 0 for r in (r1, r2))
        print(f"  {transport}: speedup 2 vs 1 worker: {s1 / s2:.2f}×  (target ≥ 1.6×); identical "
              f"statuses, methods and witnesses (every run so far): {same}", flush=True)
        figures[transport] = {"seconds_1": s1, "seconds_2": s2, "speedup": s1 / s2,
                              "identical": bool(same)}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"codes": args.codes, "shape": [args.dim, args.atoms], "l0": args.l0,
                       **figures}, fh, indent=2)


if __name__ == "__main__":
    main()
