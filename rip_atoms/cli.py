"""The ``rip-atoms`` command.

Every command takes ``--json`` and then prints exactly one JSON object on stdout; progress and
logs go to stderr. Exit status: 0 on success, 2 on bad input with one line naming the file and
the problem.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from rip_atoms import theory
from rip_atoms.coherence import CoherenceResult, coherence
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import RipAtomsError
from rip_atoms.matrix_files import load_matrix
from rip_atoms.metric import AIPMetric, fit_metric


class UsageError(RipAtomsError):
    """A command-line argument is malformed."""


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def _finite(o):
    """Replace non-finite floats by None so the output is strict JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def emit_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(_finite(obj), default=_json_default) + "\n")


def log(args: argparse.Namespace, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr)


# ---------------------------------------------------------------------- shared arguments
def _add_dict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dict", metavar="DICT",
                   help="dictionary: .npy/.safetensors (H×N, columns are atoms) or neurons:H")
    p.add_argument("--tensor", help="tensor name inside a .safetensors file")
    p.add_argument("--rows-are-atoms", action="store_true",
                   help="the matrix is N×H (e.g. an SAE's W_dec)")


def _add_metric_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--metric", default="self", metavar="ACTS|self",
                   help="AIP metric: 'self' for (D Dᵀ)⁻¹ (default) or an n×H activations file "
                        "(.npy, memory-mapped, or .safetensors) to fit Σ⁻¹ from")
    g.add_argument("--raw", action="store_true", help="Euclidean cosines (no metric)")
    p.add_argument("--center", action="store_true",
                   help="fit the metric on the covariance instead of the uncentred second moment")
    p.add_argument("--ridge", type=float, default=0.0,
                   help="ridge λ: invert Σ + λ·(tr Σ/H)·I (default 0)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress or logs on stderr")


def load_dictionary(args: argparse.Namespace) -> Dictionary:
    return Dictionary.load(args.dict, tensor=args.tensor, rows_are_atoms=args.rows_are_atoms)


def load_metric(args: argparse.Namespace, d: Dictionary) -> AIPMetric | str | None:
    if args.raw:
        return None
    if args.metric == "self":
        return AIPMetric.from_dictionary(d, ridge=args.ridge)
    path = Path(args.metric)
    X = load_matrix(path, mmap=True)
    if X.shape[1] != d.dim:
        raise RipAtomsError(
            f"{path}: activations have width {X.shape[1]} but the dictionary has H = {d.dim}"
        )
    log(args, f"fitting the AIP metric on {X.shape[0]} activations from {path}")
    return fit_metric(X, center=args.center, ridge=args.ridge, source=str(path))


# ---------------------------------------------------------------------- coherence
METRIC_NAMES = {
    "raw": "raw (Euclidean cosines)",
    "identity": "identity (Euclidean cosines)",
    "dictionary": "AIP, self metric (D Dᵀ)⁻¹",
    "activations": "AIP, fitted on activations",
}


def _uniqueness_phrase(mu: float) -> str:
    k = theory.coherence_certified_k(mu)
    if k == 0:
        return "μ = 1: not even 1-sparse codes are unique (duplicate atoms)"
    if math.isinf(k):
        return "μ = 0: every code is unique and recovered by ℓ1 (orthogonal atoms)"
    return (f"every code with K ≤ {k} non-zeros is the unique K-sparse code and ℓ1 recovers "
            f"it (μ < 1/(2K−1))")


def summarize_coherence(res: CoherenceResult, source: str) -> str:
    q = res.per_atom_quantiles
    lines = [
        f"dictionary   {source}: H = {res.dim}, N = {res.n_atoms} ({res.n_live} live)",
        f"metric       {METRIC_NAMES[res.metric['kind']]}"
        + (f" (condition number {res.metric['condition_number']:.3g})"
           if "condition_number" in res.metric else ""),
        f"coherence    μ = {res.mu:.6f} at atoms {res.pair[0]}, {res.pair[1]}   "
        f"(Welch bound {res.welch_bound:.6f}, ratio {res.mu / res.welch_bound:.2f})"
        if res.welch_bound > 0 else f"coherence    μ = {res.mu:.6f} at atoms {res.pair}",
        f"per-atom μⱼ  min {q[0.0]:.4f}  median {q[0.5]:.4f}  p95 {q[0.95]:.4f}  "
        f"max {q[1.0]:.4f}",
        "Babel μ₁(p)  " + "  ".join(
            f"p={p}: {res.babel[p - 1]:.4f}" for p in (1, 2, 4, 8, 16, 32, 64)
            if p <= len(res.babel)
        ),
        f"uniqueness   {_uniqueness_phrase(res.mu)}",
        f"spark        ≥ {theory.spark_lower_from_coherence(res.mu)} (from 1 + 1/μ)",
        f"dead atoms   {len(res.dead_atoms)}    duplicate pairs (|cos| ≥ 1−1e-6) "
        f"{len(res.duplicate_pairs)}",
    ]
    return "\n".join(lines)


def cmd_coherence(args: argparse.Namespace) -> int:
    d = load_dictionary(args)
    m = load_metric(args, d)
    res = coherence(d, m, babel_p=args.babel, top=args.top, block_size=args.block_size,
                    progress=not (args.quiet or args.json))
    if args.json:
        out = res.to_dict()
        out["source"] = d.provenance.to_dict()
        emit_json(out)
    else:
        print(summarize_coherence(res, d.provenance.source))
    return 0


# ---------------------------------------------------------------------- theory
def cmd_theory(args: argparse.Namespace) -> int:
    if args.what == "rho-weak":
        if args.delta is None:
            raise UsageError("theory rho-weak: --delta is required")
        out = {"delta": args.delta, "nonneg": args.nonneg,
               "rho_weak": theory.rho_weak(args.delta, nonneg=args.nonneg)}
    elif args.what == "k-weak":
        out = {"dim": args.dim, "n_atoms": args.atoms, "nonneg": args.nonneg,
               "k_weak": theory.k_weak(args.dim, args.atoms, nonneg=args.nonneg)}
    elif args.what == "welch":
        out = {"dim": args.dim, "n_atoms": args.atoms,
               "welch_bound": theory.welch_bound(args.dim, args.atoms)}
    else:  # gaussian-coherence
        out = theory.gaussian_coherence(args.dim, args.atoms).to_dict()
    if args.json:
        emit_json(out)
    else:
        for k, v in out.items():
            print(f"{k:14s} {v}")
    return 0


# ---------------------------------------------------------------------- verify
def cmd_verify(args: argparse.Namespace) -> int:
    from rip_atoms.verify import run_verify

    return run_verify(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rip-atoms",
        description="Certified compressed-sensing checks for dictionaries and SAE decoders.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("coherence", help="μ, per-atom μⱼ, Babel, top pairs, Welch bound")
    _add_dict_args(p)
    _add_metric_args(p)
    p.add_argument("--babel", type=int, default=64, metavar="P", help="Babel up to p = P")
    p.add_argument("--top", type=int, default=100, metavar="R", help="most coherent pairs")
    p.add_argument("--block-size", type=int, default=2048, help="GEMM block edge")
    _common(p)
    p.set_defaults(func=cmd_coherence)

    p = sub.add_parser("theory", help="closed forms: rho-weak, k-weak, welch, gaussian-coherence")
    p.add_argument("what", choices=["rho-weak", "k-weak", "welch", "gaussian-coherence"])
    p.add_argument("--delta", type=float, help="undersampling δ = H/N (rho-weak)")
    p.add_argument("--dim", type=int, help="H")
    p.add_argument("--atoms", type=int, help="N")
    p.add_argument("--nonneg", action="store_true", help="non-negative codes (ℓ1+ cone)")
    _common(p)
    p.set_defaults(func=cmd_theory)

    p = sub.add_parser("verify", help="verify a dictionary (no TARGET: the built-in default)")
    p.add_argument("target", nargs="?", metavar="TARGET",
                   help="dictionary (.npy/.safetensors/neurons:H); default: built-in")
    p.add_argument("--acts", help="n×H activations (.npy) to fit the AIP metric on")
    p.add_argument("--tensor", help="tensor name inside a .safetensors file")
    p.add_argument("--rows-are-atoms", action="store_true", help="the matrix is N×H")
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    p.set_defaults(func=cmd_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "theory" and args.what != "rho-weak" and (
        args.dim is None or args.atoms is None
    ):
        parser.error(f"theory {args.what}: --dim and --atoms are required")
    try:
        return args.func(args)
    except RipAtomsError as exc:
        msg = " ".join(str(exc).split())
        print(f"rip-atoms: error: {msg}", file=sys.stderr)
        return 2
    except (ValueError, OverflowError) as exc:  # argument values the maths rejects
        msg = " ".join(str(exc).split())
        print(f"rip-atoms: error: {msg}", file=sys.stderr)
        return 2
