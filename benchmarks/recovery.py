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

Part 3 (``--per-code``; issue 13, certification speed): a Gaussian 2304×16384 dictionary,
``--l0-codes`` non-negative codes with L0 = 70 and ``--near-codes`` with L0 = 300 (near the
non-negative weak threshold), one BLAS thread, ms per code. ``--baseline TREE`` also runs the
same part with ``PYTHONPATH=TREE`` (a ``git worktree`` of the code before) in a subprocess of the
same run, and compares statuses, methods and witnesses code by code. ``--engine torch --device
cuda`` runs ours through the torch engine (the GPU figure: codes/s at L0 = 70):

    .venv/bin/python benchmarks/recovery.py --per-code --baseline TREE
    .venv/bin/python benchmarks/recovery.py --per-code --near-codes 0 --engine torch --device cuda
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


def per_code_run(args, out_npz: str | None) -> dict:
    """Part 3 with whatever rip_atoms is importable (ours, or the baseline tree's)."""
    import inspect

    from threadpoolctl import threadpool_limits

    H, N = 2304, 16384
    D = gaussian(H, N, args.seed + 20)
    extra = {}
    if args.engine != "numpy":  # only ours has the engine option
        extra = {"engine": args.engine, "device": args.device}
    assert not extra or "engine" in inspect.signature(classify_recovery).parameters
    report, arrays = {}, {}
    for name, k, n in (("l0_70", 70, args.l0_codes), ("l0_300", 300, args.near_codes)):
        if n <= 0:
            continue
        C = codes(N, np.full(n, k), True, args.seed + 21 + k)
        with threadpool_limits(1):
            t = time.perf_counter()
            res = classify_recovery(D, C, nonneg=True, metric=None, **extra)
            sec = time.perf_counter() - t
        report[name] = {"k": k, "codes": n, "ms_per_code": 1e3 * sec / n,
                        "codes_per_s": n / sec, **summary(res)}
        W = res.witnesses.tocsr()
        arrays.update({f"{name}_status": res.status, f"{name}_method": res.method,
                       f"{name}_w_data": W.data, f"{name}_w_indices": W.indices,
                       f"{name}_w_indptr": W.indptr})
        print(f"  {name}: {n} codes, {sec:.2f} s = {1e3 * sec / n:.3f} ms/code "
              f"({n / sec:.0f} codes/s); certified {res.certified}, failed {res.failed}, "
              f"undetermined {res.undetermined}; {res.methods}; stages {res.stage_seconds}",
              flush=True)
    if out_npz:
        np.savez(out_npz, **arrays)
    return report


def part3(args) -> dict:
    import os
    import subprocess
    import sys
    import tempfile

    print(f"part 3: Gaussian 2304×16384, non-negative codes, L0 = 70 ({args.l0_codes}) and "
          f"L0 = 300 ({args.near_codes}), one BLAS thread, engine {args.engine}", flush=True)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        ours_npz = os.path.join(tmp, "ours.npz")
        if args.baseline:
            base_npz = os.path.join(tmp, "base.npz")
            env = dict(os.environ, PYTHONPATH=args.baseline)
            cmd = [sys.executable, __file__, "--per-code-child", base_npz, "--seed",
                   str(args.seed), "--l0-codes", str(args.l0_codes), "--near-codes",
                   str(args.near_codes)]
            print(f"  before (PYTHONPATH={args.baseline}):", flush=True)
            child = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            print(child.stdout, end="", flush=True)
            out["before"] = json.loads(child.stdout.strip().splitlines()[-1].split("JSON ", 1)[1])
        print("  after (this tree):", flush=True)
        out["after"] = per_code_run(args, ours_npz)
        if args.baseline:
            a, b = np.load(ours_npz), np.load(base_npz)
            for name in out["after"]:
                st = a[f"{name}_status"], b[f"{name}_status"]
                diff = np.flatnonzero(st[0] != st[1])
                same_w = all(np.array_equal(a[f"{name}_w_{x}"], b[f"{name}_w_{x}"])
                             for x in ("indptr", "indices"))
                ratio = out["before"][name]["ms_per_code"] / out["after"][name]["ms_per_code"]
                out[name] = {"status_differences": diff.tolist(),
                             "same_witness_supports": bool(same_w), "speedup": ratio}
                print(f"  {name}: before {out['before'][name]['ms_per_code']:.3f} ms/code, "
                      f"after {out['after'][name]['ms_per_code']:.3f} ms/code ({ratio:.2f}×); "
                      f"status differences: {len(diff)} {diff.tolist()[:10]}; witness "
                      f"supports identical: {same_w}", flush=True)
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
    ap.add_argument("--per-code", action="store_true",
                    help="part 3 only: ms per code at 2304×16384, L0 = 70 and 300")
    ap.add_argument("--l0-codes", type=int, default=2000, help="part 3 codes at L0 = 70")
    ap.add_argument("--near-codes", type=int, default=10, help="part 3 codes at L0 = 300")
    ap.add_argument("--baseline", metavar="TREE",
                    help="part 3: also run with PYTHONPATH=TREE (the code before) and compare")
    ap.add_argument("--engine", default="numpy", choices=("numpy", "torch"))
    ap.add_argument("--device", default=None, help="torch device for --engine torch")
    ap.add_argument("--per-code-child", metavar="NPZ", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.per_code_child:
        args.engine = "numpy"
        rep = per_code_run(args, args.per_code_child)
        print("JSON " + json.dumps(rep, default=float), flush=True)
        return
    report = {"methods": list(METHOD_NAMES[1:])}
    if args.per_code:
        report["part3"] = part3(args)
        args.skip_medium = args.skip_big = True
    if not args.skip_medium:
        report["part1"] = part1(args)
    if not args.skip_big:
        report["part2"] = part2(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, default=float)


if __name__ == "__main__":
    main()
