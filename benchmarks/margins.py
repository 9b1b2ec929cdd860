"""Uniqueness margins: the smoothed certificate of ``certificate_margins`` vs the exact
certificate LP solved by HiGHS, same run, same codes.

A Gaussian H×N dictionary with unit columns (default 576×2304, the SmolLM2 TSAE's shape) and
``--codes`` non-negative codes with K uniform in [20, 40]. Peer: scipy's HiGHS on the whole
certificate LP t* = min max_{j∉S} dⱼᵀy s.t. D_Sᵀy = 𝟙 (:func:`rip_atoms.recovery.dual_certificate`,
the exact value). Ours: :func:`rip_atoms.recovery.margins.certificate_margins` with the smoothed
path forced (its default on problems this large), whose margin is a rigorous upper bound on t*.
Reported: seconds per code of each, the time ratio, margin − t* (max and median), and whether
every margin ≥ t* − 1e-7 and ≤ the classifier's bound.

    .venv/bin/python benchmarks/margins.py              # 6 codes (~3 min on 2 cores)
    .venv/bin/python benchmarks/margins.py --codes 3 --dim 256 --atoms 1024
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from rip_atoms.recovery import dual_certificate
from rip_atoms.recovery.margins import certificate_margins


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=576)
    ap.add_argument("--atoms", type=int, default=2304)
    ap.add_argument("--codes", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    D = rng.standard_normal((args.dim, args.atoms))
    D /= np.linalg.norm(D, axis=0)
    C = sp.lil_matrix((args.codes, args.atoms))
    for i in range(args.codes):
        k = int(rng.integers(20, 41))
        C[i, rng.choice(args.atoms, size=k, replace=False)] = rng.uniform(1, 2, size=k)
    C = C.tocsr()
    print(f"Gaussian {args.dim}×{args.atoms}, {args.codes} non-negative codes, K in [20, 40]",
          flush=True)
    t = time.perf_counter()
    res = certificate_margins(D, C, metric="raw", nonneg=True, max_codes=None, budget_s=None)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    exact = [dual_certificate(D, C.indices[C.indptr[i]:C.indptr[i + 1]], nonneg=True).lp_value
             for i in range(args.codes)]
    peer = time.perf_counter() - t
    gap = res.margin - np.asarray(exact)
    sound = bool(np.all(gap >= -1e-7) and np.all(res.margin <= res.certificate_bound + 1e-12))
    print(f"  ours  certificate_margins (incl. the classifier): {ours / args.codes:.2f} s/code")
    print(f"  peer  exact LP (HiGHS):                         {peer / args.codes:.2f} s/code")
    print(f"  time ratio peer/ours: {peer / ours:.1f}×")
    print(f"  margin − t*: max {gap.max():.4f}, median {np.median(gap):.4f}; t* median "
          f"{np.median(exact):.4f}; classifier's bound median "
          f"{np.median(res.certificate_bound):.4f}; sound (t* ≤ margin ≤ bound): {sound}")


if __name__ == "__main__":
    main()
