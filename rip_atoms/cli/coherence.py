"""``rip-atoms coherence DICT``: μ, per-atom μⱼ, Babel, top pairs, Welch bound."""

from __future__ import annotations

import argparse
import math

from rip_atoms import theory
from rip_atoms.cli.common import (
    METRIC_NAMES,
    add_dictionary_args,
    add_metric_args,
    add_output_args,
    emit_json,
    load_dictionary,
    load_metric,
    show_progress,
)
from rip_atoms.coherence import CoherenceResult, coherence
from rip_atoms.proof import witness_proof


def uniqueness_phrase(mu_upper: float) -> str:
    """What coherence certifies about uniqueness, in words, from a *certified upper bound* on μ
    (never from the float value: see :attr:`CoherenceResult.mu_upper`)."""
    k = theory.coherence_certified_k(mu_upper)
    if k == 0:
        return ("nothing certified: μ ≤ 1 cannot be bounded below 1 (a duplicate pair, "
                "|cos| ≥ 1 − 1e-6, counts as parallel), so coherence certifies not even 1-sparse "
                "codes unique (exact certificates may: recover)")
    if math.isinf(k):
        return "μ = 0: every code is unique and recovered by ℓ1 (orthogonal atoms)"
    return (f"every code with K ≤ {k} non-zeros is the unique K-sparse code and ℓ1 recovers "
            f"it ((2K−1)·μ < 1 with the certified μ ≤ {mu_upper:.9g})")


def summarize(res: CoherenceResult, source: str) -> str:
    q = res.per_atom_quantiles
    metric = METRIC_NAMES[res.metric["kind"]]
    if "condition_number" in res.metric:
        metric += f" (condition number {res.metric['condition_number']:.3g})"
    mu_line = f"coherence    μ = {res.mu:.6f} at atoms {res.pair[0]}, {res.pair[1]}"
    if res.welch_bound > 0:
        mu_line += (f"   (Welch bound {res.welch_bound:.6f}, "
                    f"ratio {res.mu / res.welch_bound:.2f})")
    babel = "  ".join(f"p={p}: {res.babel[p - 1]:.4f}" for p in (1, 2, 4, 8, 16, 32, 64)
                      if p <= len(res.babel))
    return "\n".join([
        f"dictionary   {source}: H = {res.dim}, N = {res.n_atoms} ({res.n_live} live)",
        f"metric       {metric}",
        mu_line,
        f"per-atom μⱼ  min {q[0.0]:.4f}  median {q[0.5]:.4f}  p95 {q[0.95]:.4f}  "
        f"max {q[1.0]:.4f}",
        f"Babel μ₁(p)  {babel}",
        f"uniqueness   {uniqueness_phrase(res.mu_upper)}",
        f"spark        ≥ {theory.spark_lower_from_coherence(res.mu_upper)} (from 1 + 1/μ, "
        "certified μ)",
        f"dead atoms   {len(res.dead_atoms)}    duplicate pairs (|cos| ≥ 1−1e-6) "
        f"{len(res.duplicate_pairs)}",
    ])


def run(args: argparse.Namespace) -> int:
    d = load_dictionary(args)
    m = load_metric(args, d)
    res = coherence(d, m, babel_p=args.babel, top=args.top, block_size=args.block_size,
                    backend=args.backend, device=args.device, progress=show_progress(args))
    if args.json:
        out = res.to_dict()
        out["source"] = d.provenance.to_dict()
        out["proof"] = witness_proof(d, m, [res.pair] if res.pair is not None else [])
        emit_json(out)
    else:
        print(summarize(res, d.provenance.source))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("coherence", help="μ, per-atom μⱼ, Babel, top pairs, Welch bound")
    add_dictionary_args(p)
    add_metric_args(p)
    p.add_argument("--babel", type=int, default=64, metavar="P", help="Babel up to p = P")
    p.add_argument("--top", type=int, default=100, metavar="R", help="most coherent pairs")
    p.add_argument("--block-size", type=int, default=2048, help="GEMM block edge")
    p.add_argument("--backend", choices=["numpy", "torch"], default="numpy",
                   help="numpy/numba (reference) or torch (GPU; needs the torch extra)")
    p.add_argument("--device", help="torch device for --backend torch (default: cuda if any)")
    add_output_args(p)
    p.set_defaults(func=run)
