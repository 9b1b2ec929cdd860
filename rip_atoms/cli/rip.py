"""``rip-atoms rip``, ``rip-atoms spark`` and ``rip-atoms witness``: RIP brackets, spark
bounds, and the float64 re-check of any support we print."""

from __future__ import annotations

import argparse
import math

from rip_atoms.cli.common import (
    UsageError,
    add_dictionary_args,
    add_metric_args,
    add_output_args,
    emit_json,
    int_list,
    load_dictionary,
    load_metric,
    show_progress,
)
from rip_atoms.kernels.threads import with_fixed_thread_sums
from rip_atoms.proof import rip_supports, spark_supports, witness_proof
from rip_atoms.rip import rip_bounds, witness_eigenvalues
from rip_atoms.spark import spark_bounds


def _check_search_args(args: argparse.Namespace) -> None:
    if args.budget_s is not None and not (math.isfinite(args.budget_s) and args.budget_s > 0):
        raise UsageError(f"--budget-s must be a positive number of seconds, got {args.budget_s}")
    if args.seed < 0:
        raise UsageError(f"--seed must be ≥ 0, got {args.seed}")
    if args.effort is not None and args.effort < 1:
        raise UsageError(f"--effort must be ≥ 1 (units of search work), got {args.effort}")


def _budget(args: argparse.Namespace) -> dict:
    """--effort N: a work budget (no clock; --budget-s then caps it, default no cap), else
    --budget-s seconds (default 10; :func:`rip_atoms.deadline.search_seconds`)."""
    return {"budget_s": args.budget_s, "effort": args.effort}


def _fmt(x: float) -> str:
    return "∞" if math.isinf(x) else f"{x:.6f}"


@with_fixed_thread_sums
def run_rip(args: argparse.Namespace) -> int:
    _check_search_args(args)
    ks = int_list(args.k, "-k")
    d = load_dictionary(args)
    m = load_metric(args, d)
    res = rip_bounds(d, ks, m, **_budget(args), seed=args.seed,
                     drop_dead=args.drop_dead, backend=args.backend, device=args.device,
                     progress=show_progress(args))
    if args.json:
        out = res.to_dict()
        out["source"] = d.provenance.to_dict()
        out["proof"] = witness_proof(d, m, rip_supports(res))  # for `rip-atoms check`
        emit_json(out)
        return 0
    print(f"dictionary {d.provenance.source}: H = {res.dim}, N = {res.n_atoms}; "
          f"μ = {res.mu:.6f}; ‖D̃‖₂² ≤ {res.spectral_norm_sq_upper:.4f}")
    for b in res.brackets:
        tag = "exact" if b.exact else b.search
        print(f"k = {b.k:4d}  δ_k ∈ [{_fmt(b.delta_lower)}, {_fmt(b.delta_upper)}]  "
              f"U_k ∈ [{_fmt(b.U_lower)}, {_fmt(b.U_upper)}]  "
              f"L_k ∈ [{_fmt(b.L_lower)}, {_fmt(b.L_upper)}]  ({tag})")
        print(f"          U: lower by {b.methods['U_lower']}; upper by {b.methods['U_upper']}")
        print(f"          L: lower by {b.methods['L_lower']}; upper by {b.methods['L_upper']}")
        print(f"          witnesses: U {list(b.witness_U)}  L {list(b.witness_L)}")
        for note in b.notes:
            print(f"          note: {note}")
    print(budget_line(res.budget))
    return 0


@with_fixed_thread_sums
def run_spark(args: argparse.Namespace) -> int:
    _check_search_args(args)
    d = load_dictionary(args)
    use_self = not args.raw and args.metric == "self" and args.ridge == 0
    m = "self" if use_self else load_metric(args, d)  # load_metric checks --ridge
    res = spark_bounds(d, m, **_budget(args), seed=args.seed, drop_dead=args.drop_dead,
                       progress=show_progress(args))
    if args.json:
        emit_json({**res.to_dict(),
                   "proof": witness_proof(d, m, spark_supports(res, d.dim))})
        return 0
    print(f"spark ∈ [{_fmt(res.lower)}, {_fmt(res.upper)}]{'  (exact)' if res.exact else ''}")
    print(f"  lower by {res.methods['lower']}; upper by {res.methods['upper']}")
    if res.witness is not None:
        print(f"  witness: atoms {list(res.witness)} are dependent in float64 "
              f"(null-vector residual {res.residual:.2e} ≤ {res.proof_rtol:g})")
    if res.upper_within_precision < res.upper:
        w = list(res.witness_within_precision)
        print(f"  within the input's precision ({res.precision}): {len(w)} atoms {w} are "
              f"dependent (null-vector residual "
              f"{res.residual_within_precision:.2e} ≤ {res.rank_rtol:.2e}, by "
              f"{res.methods['upper_within_precision']}); not proven in float64")
    print(f"  {res.statement}")
    print(budget_line(res.budget))
    return 0


def run_witness(args: argparse.Namespace) -> int:
    support = int_list(args.support, "--support")
    d = load_dictionary(args)
    m = load_metric(args, d)
    w = witness_eigenvalues(d, support, m)
    if args.json:
        emit_json(w.to_dict())
        return 0
    print(f"support {list(w.support)} (k = {len(w.support)}), float64:")
    print(f"  λmin(G_S) = {w.lambda_min:.15g}   → L_k ≥ 1 − λmin = {w.L:.15g}")
    print(f"  λmax(G_S) = {w.lambda_max:.15g}   → U_k ≥ λmax − 1 = {w.U:.15g}")
    return 0


def budget_line(budget: dict) -> str:
    """What the search's budget was, and whether its result can depend on the machine."""
    if budget.get("kind") == "effort":
        cap = (" — the wall-clock cap stopped it: this result can depend on the machine"
               if budget["cap_hit"] else ": no clock, the same result on every run")
        return f"budget: {budget['used']:g} of {budget['effort']} units of effort{cap}"
    return (f"budget: {budget.get('budget_s', 0):g} s of wall clock (how far the search got "
            "depends on the machine; --effort N makes it reproducible)")


def add_effort_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--effort", type=int, default=None, metavar="N",
                   help="a work budget instead of seconds: N units of search work (no clock: "
                        "the same input, seed and options give the same bracket on any "
                        "machine)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rip", help="brackets of the restricted isometry constants U_k, L_k, δ_k")
    add_dictionary_args(p)
    add_metric_args(p)
    p.add_argument("-k", required=True, help="sparsities, comma-separated (e.g. 2,3,4)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="seconds of the call, all k together (default 10; the coherence pass "
                        "before the search included); with --effort, a wall-clock cap")
    add_effort_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop-dead", action="store_true", help="leave dead (zero) atoms out")
    p.add_argument("--backend", choices=["numpy", "torch"], default="numpy",
                   help="engine of the coherence/Babel pass (torch: GPU)")
    p.add_argument("--device", help="torch device for --backend torch")
    add_output_args(p)
    p.set_defaults(func=run_rip)

    p = sub.add_parser("spark", help="spark bounds with a null-vector witness; uniqueness")
    add_dictionary_args(p)
    add_metric_args(p)
    p.add_argument("--budget-s", type=float, default=None,
                   help="search seconds (default 10); with --effort, a wall-clock cap")
    add_effort_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop-dead", action="store_true", help="leave dead (zero) atoms out")
    add_output_args(p)
    p.set_defaults(func=run_spark)

    p = sub.add_parser("witness", help="float64 extreme eigenvalues of G_S for a support")
    add_dictionary_args(p)
    add_metric_args(p)
    p.add_argument("--support", required=True, help="atom indices, comma-separated")
    add_output_args(p)
    p.set_defaults(func=run_witness)
