"""``rip-atoms theory …``: closed forms (ρ_W, k_W, Welch, Gaussian coherence)."""

from __future__ import annotations

import argparse

from rip_atoms import theory
from rip_atoms.cli.common import UsageError, add_output_args, emit_json
from rip_atoms.errors import ParameterError


def run(args: argparse.Namespace) -> int:
    try:
        out = _compute(args)
    except ParameterError as exc:  # name the options: H is --dim, N is --atoms, δ is --delta
        given = (f"--delta {args.delta}" if args.what == "rho-weak"
                 else f"--dim {args.dim} (H), --atoms {args.atoms} (N)")
        raise type(exc)(f"theory {args.what} ({given}): {exc}") from exc
    if args.json:
        emit_json(out)
    else:
        for k, v in out.items():
            print(f"{k:14s} {v}")
    return 0


def _compute(args: argparse.Namespace) -> dict:
    if args.what == "rho-weak":
        if args.delta is None:
            raise UsageError("theory rho-weak: --delta is required")
        out = {"delta": args.delta, "nonneg": args.nonneg,
               "rho_weak": theory.rho_weak(args.delta, nonneg=args.nonneg)}
    else:
        if args.dim is None or args.atoms is None:
            raise UsageError(f"theory {args.what}: --dim and --atoms are required")
        if args.what == "k-weak":
            out = {"dim": args.dim, "n_atoms": args.atoms, "nonneg": args.nonneg,
                   "k_weak": theory.k_weak(args.dim, args.atoms, nonneg=args.nonneg)}
        elif args.what == "welch":
            out = {"dim": args.dim, "n_atoms": args.atoms,
                   "welch_bound": theory.welch_bound(args.dim, args.atoms)}
        else:  # gaussian-coherence
            out = theory.gaussian_coherence(args.dim, args.atoms).to_dict()
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("theory", help="closed forms: rho-weak, k-weak, welch, gaussian-coherence")
    p.add_argument("what", choices=["rho-weak", "k-weak", "welch", "gaussian-coherence"])
    p.add_argument("--delta", type=float, help="undersampling δ = H/N (rho-weak)")
    p.add_argument("--dim", type=int, help="H")
    p.add_argument("--atoms", type=int, help="N")
    p.add_argument("--nonneg", action="store_true", help="non-negative codes (ℓ1+ cone)")
    add_output_args(p)
    p.set_defaults(func=run)
