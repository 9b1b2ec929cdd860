"""Coherence report vs the bare numpy Gram, at SAE scale.

Peer: numpy's ``D.T @ D`` (float32, the full N×N Gram, nothing else). Ours: the full coherence
report (μ with its pair, per-atom μⱼ for all N atoms, Babel to p = 64, top 100 pairs, histogram,
duplicates; extremes recomputed in float64), blocked, never holding the Gram. Each measurement
runs in its own subprocess so its peak RSS is its own; both run in the same invocation so the
ratio compares like with like.

    .venv/bin/python benchmarks/coherence.py                 # 2304×16384 (+ AIP self metric)
    .venv/bin/python benchmarks/coherence.py --large         # also the 2304×65536 report
    .venv/bin/python benchmarks/coherence.py --aip           # AIP vs raw coherence, 2304×16384

``--aip`` (issue 13, "AIP at the raw price"): raw coherence, AIP coherence with the self metric
fitted beforehand (the report's case: the metric is an input), and AIP with "self" (fitting
S̃ = (D Dᵀ)⁻¹ inside the call), alternating, best of ``--repeat``; prints AIP/raw.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
H, N, which, metric = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
D = rng.standard_normal((H, N), dtype=np.float32)
D /= np.linalg.norm(D, axis=0)
if which == "ours":
    from rip_atoms import coherence
    coherence(np.ascontiguousarray(D[:, :300]), "raw")  # JIT warm-up (cached after first run)
    if metric == "given":  # the self metric (D Dᵀ)⁻¹ fitted before the clock starts
        from rip_atoms.metric import AIPMetric
        metric = AIPMetric.from_dictionary(D)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
t = time.perf_counter()
if which == "numpy":
    G = D.T @ D
    out = {"checksum": float(G[0, 1])}
else:
    res = coherence(D, None if metric == "raw" else metric, babel_p=64, top=100)
    out = {"mu": res.mu, "pair": list(res.pair), "babel64": float(res.babel[-1]),
           "welch": res.welch_bound, "tol32": res.float32_tolerance, "mu_upper": res.mu_upper}
sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": sec, "peak_gb": peak, "baseline_gb": base, **out}))
"""


def run(H: int, N: int, which: str, metric: str = "raw") -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(H), str(N), which, metric],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large", action="store_true", help="also run 2304×65536")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--aip", action="store_true", help="AIP vs raw coherence only")
    args = ap.parse_args()
    H, N = 2304, 16384
    if args.aip:
        rows = {"raw": [], "given": [], "self": []}
        for _ in range(args.repeat):
            for m in rows:
                rows[m].append(run(H, N, "ours", m))
        best = {m: min(rows[m], key=lambda r: r["seconds"]) for m in rows}
        print(f"shape {H}x{N} float32, best of {args.repeat}")
        for m, label in (("raw", "raw"), ("given", "AIP, metric given"),
                         ("self", "AIP self (fit inside)")):
            r = best[m]
            print(f"  coherence {label:24s} {r['seconds']:7.2f} s  (all: "
                  f"{[round(x['seconds'], 2) for x in rows[m]]})  mu={r['mu']:.6f} "
                  f"mu_upper={r['mu_upper']:.6f} tol32={r['tol32']:.3g}")
        print(f"  ratio AIP (metric given) / raw: "
              f"{best['given']['seconds'] / best['raw']['seconds']:.2f}")
        print(f"  ratio AIP self (fit inside) / raw: "
              f"{best['self']['seconds'] / best['raw']['seconds']:.2f}")
        return
    rows = []
    for _ in range(args.repeat):
        rows.append(("numpy D.T @ D", run(H, N, "numpy")))
        rows.append(("rip_atoms coherence (raw)", run(H, N, "ours", "raw")))
    rows.append(("rip_atoms coherence (AIP self)", run(H, N, "ours", "self")))
    print(f"shape {H}x{N} float32")
    for name, r in rows:
        print(f"  {name:32s} {r['seconds']:7.2f} s   peak RSS {r['peak_gb']:.2f} GB "
              f"(before the call {r['baseline_gb']:.2f} GB)" +
              (f"   mu={r['mu']:.6f} babel64={r['babel64']:.4f}" if "mu" in r else ""))
    best_np = min(r["seconds"] for n, r in rows if n.startswith("numpy"))
    best_ours = min(r["seconds"] for n, r in rows if n.endswith("(raw)"))
    print(f"  ratio ours/numpy (best of {args.repeat}): {best_ours / best_np:.2f}")
    if args.large:
        r = run(H, 65536, "ours", "raw")
        print(f"shape {H}x65536 float32\n  rip_atoms coherence (raw)        {r['seconds']:7.2f} s"
              f"   peak RSS {r['peak_gb']:.2f} GB (before the call {r['baseline_gb']:.2f} GB)"
              f"   mu={r['mu']:.6f}")


if __name__ == "__main__":
    main()
