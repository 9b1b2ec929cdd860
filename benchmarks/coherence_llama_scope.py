"""The coherence report at Llama Scope 128k size vs a products-only blocked pass, same tiles.

Peer: the float32 GEMMs of the blocked pass alone — every tile G_IJ = A_I A_Jᵀ, I ≤ J, of the
same 2048-blocking, written into one B×B buffer and thrown away (the floor any blocked
coherence pass pays). Ours: :func:`rip_atoms.coherence` on the same rows (μ with its pair,
per-atom μⱼ, Babel to p = 64, the top 100 pairs, histogram, duplicates; extremes recomputed in
float64). The dictionary is deterministic: N×H float32 Gaussian rows (seed 0) normalised to
unit length, given as the H×N view D = rowsᵀ. Each side runs in its own subprocess; both in the
same invocation.

    .venv/bin/python benchmarks/coherence_llama_scope.py              # 4096×131072 (~20 min)
    .venv/bin/python benchmarks/coherence_llama_scope.py --dim 2304 --atoms 16384   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
H, N, which, B = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(0)
rows = np.empty((N, H), dtype=np.float32)
for s in range(0, N, 8192):
    blk = rng.standard_normal((min(8192, N - s), H), dtype=np.float32)
    blk /= np.linalg.norm(blk, axis=1, keepdims=True)
    rows[s: s + len(blk)] = blk
D = rows.T  # H×N, atoms as columns (a view)
if which == "ours":
    from rip_atoms import coherence
    coherence(np.ascontiguousarray(D[:, :300]), "raw")  # JIT warm-up (cached after first run)
t = time.perf_counter()
if which == "products":
    from rip_atoms.kernels.gram_blocks import tile_pairs
    buf = np.empty((B, B), dtype=np.float32)
    tiles = tile_pairs(N, B)
    for a, b in tiles:
        ia, ib = rows[a: a + B], rows[b: b + B]
        np.matmul(ia, ib.T, out=buf[: ia.shape[0], : ib.shape[0]])
    out = {"tiles": len(tiles), "checksum": float(buf[0, 0])}
else:
    res = coherence(D, "raw", babel_p=64, top=100, block_size=B)
    out = {"mu": res.mu, "pair": list(res.pair), "babel64": float(res.babel[-1]),
           "mu_upper": res.mu_upper, "n_dup": len(res.duplicate_pairs)}
sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": sec, "peak_gb": peak, **out}))
"""


def run(H: int, N: int, which: str, block: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(H), str(N), which, str(block)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--atoms", type=int, default=131072)
    ap.add_argument("--block-size", type=int, default=2048)
    args = ap.parse_args()
    H, N, B = args.dim, args.atoms, args.block_size
    peer = run(H, N, "products", B)
    print(f"shape {H}x{N} float32, block {B}", flush=True)
    print(f"  products-only blocked pass ({peer['tiles']} tiles)  {peer['seconds']:8.1f} s   "
          f"peak RSS {peer['peak_gb']:.2f} GB", flush=True)
    ours = run(H, N, "ours", B)
    print(f"  rip_atoms coherence report (raw)        {ours['seconds']:8.1f} s   "
          f"peak RSS {ours['peak_gb']:.2f} GB   mu={ours['mu']:.6f} pair={ours['pair']} "
          f"babel64={ours['babel64']:.4f} mu_upper={ours['mu_upper']:.6f}")
    print(f"  ratio report / products-only: {ours['seconds'] / peer['seconds']:.3f}")


if __name__ == "__main__":
    main()
