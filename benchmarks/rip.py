"""RIP brackets: search quality against enumeration, and against random supports at SAE scale.

    .venv/bin/python benchmarks/rip.py small      # 20 Gaussian 32×128 at k = 3, 4 vs enumeration
    .venv/bin/python benchmarks/rip.py gemma      # 2304×16384, k = 8, 32, 64, 60 s per k, vs random
    .venv/bin/python benchmarks/rip.py large      # 4096×131072 float32 at k = 32: peak memory

Peer for "gemma": uniformly random supports (the method of Peyré's numerical tour and of most
RIC scripts) given the same wall time as our search for U_k, in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.rip import _enumerate, random_supports_lower_bound, rip_bounds
from rip_atoms.synthetic import gaussian_dictionary


def small() -> None:
    for k in (3, 4):
        hits_u = hits_l = 0
        t_search = t_enum = 0.0
        for seed in range(20):
            d = gaussian_dictionary(32, 128, seed=seed)
            t = time.perf_counter()
            lmax, _, lmin, _ = _enumerate(CorrectedAtoms(d, None).gram(np.arange(128)), k)
            t_enum += time.perf_counter() - t
            t = time.perf_counter()
            b = rip_bounds(d, [k], "raw", budget_s=4, enumerate_max=0, seed=seed)[k]
            t_search += time.perf_counter() - t
            hits_u += abs(b.U_lower - (lmax - 1)) <= 1e-9
            hits_l += b.L_lower >= 0.99 * (1 - lmin)
            assert b.U_lower <= lmax - 1 + 1e-9 <= b.U_upper + 2e-9
            assert b.L_lower <= 1 - lmin + 1e-9 <= b.L_upper + 2e-9
        print(f"32x128 k={k}: exact U_k found in {hits_u}/20, L_k within 1% in {hits_l}/20; "
              f"search {t_search / 20:.2f} s/dictionary, enumeration {t_enum / 20:.2f} s")


def gemma(budget: float = 60.0) -> None:
    H, N = 2304, 16384
    d = gaussian_dictionary(H, N, seed=0, dtype=np.float32)
    t = time.perf_counter()
    res = rip_bounds(d, [8, 32, 64], "raw", budget_s=budget, seed=0)
    total = time.perf_counter() - t
    print(f"{H}x{N} raw, budget {budget:.0f} s per k: total {total:.0f} s "
          f"(coherence/Babel pass included)")
    atoms = CorrectedAtoms(d, None)
    for b in res.brackets:
        # our U side had budget/2 of search (L had the other half); random gets the whole budget
        r, _, tried = random_supports_lower_bound(atoms, b.k, budget, seed=1)
        print(f"  k={b.k:3d}  U in [{b.U_lower:.4f}, {b.U_upper:.4f}]  L in [{b.L_lower:.4f}, "
              f"{b.L_upper:.4f}]  delta in [{b.delta_lower:.4f}, {b.delta_upper:.4f}]  "
              f"({b.search}; U by {b.methods['U_lower']})")
        print(f"         random supports ({tried} in {budget:.0f} s): U >= {r:.4f}   "
              f"ratio ours/random = {b.U_lower / r:.2f}")


CHILD = r"""
import json, resource, sys, time
import numpy as np
from rip_atoms import Dictionary
from rip_atoms.rip import rip_bounds
rng = np.random.default_rng(0)
H, N = 4096, 131072
W = np.empty((N, H), dtype=np.float32)          # W_dec layout: rows are atoms (2.1 GB)
for s in range(0, N, 8192):
    blk = rng.standard_normal((min(8192, N - s), H), dtype=np.float32)
    blk /= np.linalg.norm(blk, axis=1, keepdims=True)
    W[s:s + len(blk)] = blk
d = Dictionary(W, rows_are_atoms=True)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
t = time.perf_counter()
b = rip_bounds(d, [32], "raw", budget_s=float(sys.argv[1]), seed=0, progress=True)[32]
sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({**b.to_dict(), "total_seconds": sec, "peak_gb": peak, "baseline_gb": base}))
"""


def large(budget: float = 60.0) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(budget)], capture_output=True,
                          text=True, check=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"4096x131072 float32 (raw, unit rows reused), k=32, budget {budget:.0f} s: "
          f"{r['total_seconds']:.0f} s in all ({r['seconds']:.0f} s of search), "
          f"peak RSS {r['peak_gb']:.2f} GB (dictionary alone {r['baseline_gb']:.2f} GB)")
    print(f"  U in [{r['U_lower']:.4f}, {r['U_upper']:.4f}]  L in [{r['L_lower']:.4f}, "
          f"{r['L_upper']:.4f}]  ({r['search']})")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "small"
    {"small": small, "gemma": gemma, "large": large}[what]()
