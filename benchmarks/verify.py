"""The whole verification report vs the cheapest thing that answers one of its questions.

Peer: numpy's float32 ``D̃ᵀD̃`` (the full N×N Gram of the unit atoms, from which μ alone could be
read). Ours: :func:`rip_atoms.report.build_report` — representation shift, coherence raw and AIP
with Babel to k = 64, the Gaussian reference dictionary, RIP brackets at k = 2…64, spark,
uniqueness, the ℓ1 probe — plus rendering ``report.html`` with its six figures. Each shape runs in
its own subprocess (peak RSS is its own), the peer in the same invocation. ``--budget-s B`` is
the report's wall time as in ``rip-atoms verify``: counted from fitting the metric, the exact
parts first, the searches in what is left (writing ``report.html`` comes after B); the timed
region is the metric fit, the report and writing it.

    .venv/bin/python benchmarks/verify.py                    # 576×2304 (SmolLM2 TSAE shape)
    .venv/bin/python benchmarks/verify.py --gemma            # also 2304×16384 (Gemma Scope 16k)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, tempfile, time
import numpy as np
H, N, which, budget = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
from rip_atoms.synthetic import planted_atoms
n = max(2000, int(2.5 * H))  # the metric Σ⁻¹ is fitted on the first 80 %
p = planted_atoms(H, N, 32, n, mixing="random", offset=2.0, seed=0)
n_fit = int(0.8 * n)
X = np.asarray(p.activations, dtype=np.float32)
if which == "ours":
    from rip_atoms import coherence
    coherence(np.ascontiguousarray(p.dictionary.atoms[:, :300]), "raw")  # JIT warm-up
import gc; gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
t = time.perf_counter()
if which == "numpy":
    D = np.asarray(p.dictionary.atoms, dtype=np.float32)
    D = D / np.linalg.norm(D, axis=0)
    G = D.T @ D
    np.fill_diagonal(G, 0)
    out = {"mu": float(np.abs(G).max())}
else:
    from rip_atoms.report import VerifyTarget, build_report, write_report
    from rip_atoms.criteria import UnitSet
    from rip_atoms.metric import fit_metric
    unit = UnitSet.from_codes("planted", p.dictionary, p.codes[n_fit:],
                              decoder_bias=p.offset_vector, kind="atoms")
    rep = build_report(VerifyTarget(p.dictionary, "benchmark", activations=X[n_fit:],
                                    metric=fit_metric(X[:n_fit]), unit=unit), budget_s=budget,
                       started=t)  # as the CLI: B counts fitting the metric
    t_build = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        write_report(rep, tmp)
    out = {"mu_raw": rep["coherence"]["raw"]["mu"], "mu_aip": rep["coherence"]["aip"]["mu"],
           "sections": {k: round(v, 2) for k, v in rep["seconds"].items()},
           "budget": {k: {n: round(v, 2) for n, v in rep["search_budget"][k].items()}
                      for k in ("granted_s", "used_s")},
           "build_seconds": t_build}
sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": sec, "peak_gb": peak, "baseline_gb": base, **out}))
"""


def run(H: int, N: int, which: str, budget: float) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(H), str(N), which, str(budget)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemma", action="store_true", help="also run 2304×16384")
    ap.add_argument("--budget-s", type=float, default=60.0)
    args = ap.parse_args()
    shapes = [(576, 2304)] + ([(2304, 16384)] if args.gemma else [])
    for H, N in shapes:
        peer = run(H, N, "numpy", args.budget_s)
        ours = run(H, N, "ours", args.budget_s)
        print(f"shape {H}x{N} (planted atoms, K = 32, anisotropic map + offset), search budget "
              f"{args.budget_s:g} s")
        print(f"  numpy float32 Gram + max|offdiag|  {peer['seconds']:8.2f} s   peak RSS "
              f"{peer['peak_gb']:.2f} GB (before: {peer['baseline_gb']:.2f})   "
              f"mu(raw) = {peer['mu']:.6f}")
        print(f"  rip_atoms report (json + html)     {ours['seconds']:8.2f} s   peak RSS "
              f"{ours['peak_gb']:.2f} GB (before: {ours['baseline_gb']:.2f})   "
              f"mu(raw) = {ours['mu_raw']:.6f}  mu(AIP) = {ours['mu_aip']:.6f}")
        print(f"  sections (s): {ours['sections']}")
        print(f"  budget (s): {ours['budget']}")
        print(f"  ratio report / Gram: {ours['seconds'] / peer['seconds']:.1f}")


if __name__ == "__main__":
    main()
