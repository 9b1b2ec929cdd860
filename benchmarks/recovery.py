"""Exact ℓ1 recovery at SAE scale: ``classify_recovery`` vs cvxpy, same run, same codes.

Part 1 (SmolLM2-135M residual width, an 8× SAE): a Gaussian 576×4608 dictionary with unit
columns and 1000 non-negative codes with K uniform in [20, 40] non-zeros (magnitudes uniform in
[1, 2]). Ours classifies all 1000 (certified / failed / undetermined, each with its proof); the
peer solves basis pursuit min 𝟙ᵀx s.t. D x = y, x ≥ 0 with cvxpy's default solver on the first
``--cvxpy-codes`` of the same codes and says "recovered" when ‖x − δ‖₂ ≤ 1e-6‖δ‖₂ (status
"optimal" or "optimal_inaccurate"; the latter is counted and reported). Reported:
per-code time of each, the throughput ratio, and disagreements on codes both decide (ours
certified ⇔ cvxpy recovered).

Part 2 (Gemma-2-2B width, a 16k SAE): a Gaussian 2304×16384 dictionary and signed codes at
k = 0.85·k_W and k = 1.15·k_W (k_W = ρ_W(H/N)·H ≈ 490), ``--big-codes`` of each; target: at least
9 of 10 certified below, at least 9 of 10 failed (not undetermined) above; time per code.

    .venv/bin/python benchmarks/recovery.py                  # both parts (~15-25 min, 2 cores)
    .venv/bin/python benchmarks/recovery.py --skip-big       # part 1 only
    .venv/bin/python benchmarks/recovery.py --json out.json  # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import scipy.sparse as sp

from rip_atoms.recovery import METHOD_NAMES, STATUS_NAMES, classify_recovery
from rip_atoms.theory import k_weak


def gaussian(H: int, N: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((H, N))
    return D / np.linalg.norm(D, axis=0)


def codes(N: int, ks: np.ndarray, nonneg: bool, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for i, k in enumerate(ks):
        S = rng.choice(N, size=int(k), replace=False)
        v = rng.uniform(1.0, 2.0, size=int(k))
        if not nonneg:
            v *= rng.choice([-1.0, 1.0], size=int(k))
        rows.append(np.full(int(k), i))
        cols.append(S)
        vals.append(v)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(ks), N))


def cvxpy_decide(D: np.ndarray, delta: np.ndarray, nonneg: bool) -> tuple[str, float]:
    """cvxpy's verdict on one code: "recovered" / "not recovered" / "error", and seconds."""
    import cvxpy as cp

    t = time.perf_counter()
    x = cp.Variable(D.shape[1], nonneg=nonneg)
    obj = cp.sum(x) if nonneg else cp.norm1(x)
    prob = cp.Problem(cp.Minimize(obj), [D @ x == D @ delta])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prob.solve()
        except cp.SolverError:
            return "error", time.perf_counter() - t
    sec = time.perf_counter() - t
    if prob.status not in ("optimal", "optimal_inaccurate") or x.value is None:
        return "error", sec
    err = np.linalg.norm(x.value - delta) / np.linalg.norm(delta)
    verdict = "recovered" if err <= 1e-6 else "not recovered"
    if prob.status == "optimal_inaccurate":  # cvxpy's own warning; still judged at 1e-6
        verdict += " (inaccurate)"
    return verdict, sec


def summary(res) -> dict:
    return {"certified": res.certified, "failed": res.failed,
            "undetermined": res.undetermined, "invalid": res.invalid,
            "methods": res.methods, "seconds": res.seconds,
            "stage_seconds": res.stage_seconds}


def part1(args) -> dict:
    import cvxpy

    H, N = 576, 4608
    D = gaussian(H, N, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    ks = rng.integers(20, 41, size=args.codes)
    C = codes(N, ks, True, args.seed + 2)
    print(f"part 1: Gaussian {H}×{N}, {args.codes} non-negative codes, K in [20, 40] "
          f"(k_W⁺ = {k_weak(H, N, nonneg=True):.1f})", flush=True)
    res = classify_recovery(D, C, nonneg=True, metric=None)
    ours_per_code = res.seconds / args.codes
    print(f"  ours   classify_recovery: {res.seconds:8.2f} s for {args.codes} codes = "
          f"{1e3 * ours_per_code:8.2f} ms/code   {summary(res)['methods']}", flush=True)
    m = args.cvxpy_codes
    sub = classify_recovery(D, C[:m], nonneg=True, metric=None)
    print(f"  ours   on the first {m} codes alone: {sub.seconds:.2f} s = "
          f"{1e3 * sub.seconds / m:.2f} ms/code", flush=True)
    verdicts, secs = [], []
    for i in range(m):
        v, s = cvxpy_decide(D, C[i].toarray().ravel(), True)
        verdicts.append(v)
        secs.append(s)
    cv_per_code = float(np.mean(secs))
    both, disagree = 0, []
    for i, v in enumerate(verdicts):
        ours = STATUS_NAMES[res.status[i]]
        if v == "error" or ours not in ("certified", "failed"):
            continue
        both += 1
        if (ours == "certified") != v.startswith("recovered"):
            disagree.append(i)
    print(f"  cvxpy  {cvxpy.__version__} default solver: {sum(secs):8.2f} s for {m} codes = "
          f"{1e3 * cv_per_code:8.1f} ms/code  (verdicts: "
          f"{ {v: verdicts.count(v) for v in sorted(set(verdicts))} })", flush=True)
    ratio = cv_per_code / ours_per_code
    print(f"  throughput ratio ours/cvxpy: {ratio:.0f}×  (all {args.codes} codes for ours); "
          f"{cv_per_code / (sub.seconds / m):.0f}× on the same {m} codes alone", flush=True)
    print(f"  decisions compared on {both} codes both decide: {len(disagree)} disagree "
          f"{disagree if disagree else ''}", flush=True)
    return {"shape": [H, N], "n_codes": args.codes, "ours": summary(res),
            "ours_ms_per_code": 1e3 * ours_per_code,
            "ours_subset_ms_per_code": 1e3 * sub.seconds / m,
            "cvxpy_codes": m, "cvxpy_ms_per_code": 1e3 * cv_per_code,
            "cvxpy_verdicts": {v: verdicts.count(v) for v in set(verdicts)},
            "throughput_ratio": ratio, "compared": both, "disagreements": disagree}


def part2(args) -> dict:
    H, N = 2304, 16384
    kw = k_weak(H, N)
    D = gaussian(H, N, args.seed + 10)
    out = {"shape": [H, N], "k_weak": kw}
    print(f"part 2: Gaussian {H}×{N}, signed codes, k_W = {kw:.1f}", flush=True)
    for name, fac in (("below", 0.85), ("above", 1.15)):
        k = int(round(fac * kw))
        C = codes(N, np.full(args.big_codes, k), False, args.seed + 11 + int(100 * fac))
        res = classify_recovery(D, C, nonneg=False, metric=None, progress=args.progress)
        per = res.seconds / args.big_codes
        iters = [int(v) for v in res.homotopy_iters]
        print(f"  k = {k} ({fac:.2f}·k_W): certified {res.certified}, failed {res.failed}, "
              f"undetermined {res.undetermined} of {args.big_codes};  {res.seconds:.1f} s = "
              f"{per:.1f} s/code;  decided by {res.methods};  stages {res.stage_seconds}",
              flush=True)
        cert = res.certificate[res.status == 1]
        if cert.size:
            print(f"      certificate bounds of certified codes: max {cert.max():.6f}, "
                  f"min {cert.min():.6f}", flush=True)
        out[name] = {"k": k, **summary(res), "seconds_per_code": per,
                     "homotopy_iters": iters,
                     "max_certified_bound": float(cert.max()) if cert.size else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codes", type=int, default=1000, help="part 1 codes")
    ap.add_argument("--cvxpy-codes", type=int, default=50, help="codes timed with cvxpy")
    ap.add_argument("--big-codes", type=int, default=10, help="part 2 codes per k")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-medium", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--progress", action="store_true", help="progress bars (part 2)")
    ap.add_argument("--json", metavar="FILE", help="write the figures to this JSON file")
    args = ap.parse_args()
    report = {"methods": list(METHOD_NAMES[1:])}
    if not args.skip_medium:
        report["part1"] = part1(args)
    if not args.skip_big:
        report["part2"] = part2(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, default=float)


if __name__ == "__main__":
    main()
